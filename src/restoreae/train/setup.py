"""Setting up a training run: everything the step loop needs, built once, in a fixed order.

:func:`setup_run` resolves the resume, checks the saved config, builds the data loader, the model
(resumed, or ``output.init_from``), EMA, AdamW, the LR/WD schedule and the optimizer step, and
restores their state; it returns a :class:`RunState`. :func:`prepare_run_folder`,
:func:`wrap_model` and :func:`restoreae.train.validate.build_val_set` follow. The order of the
random draws is part of exact resume: keep it.
"""

from __future__ import annotations

import copy
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader
from torch.utils.data.distributed import DistributedSampler

from restoreae.errors import ConfigError, DataError
from restoreae.train import checkpoint as ckpt
from restoreae.train.batches import GlyphPairs, ResumableSampler, load_damage, load_style
from restoreae.train.build import build_model, init_weights_from, param_groups, unused_parameters
from restoreae.train.config import TrainConfig, config_differences
from restoreae.train.distributed import DistInfo, barrier
from restoreae.train.ema import ModelEma
from restoreae.train.logger import log_main
from restoreae.train.losses import CompositeLoss, build_loss
from restoreae.train.saver import CheckpointSaver
from restoreae.train.schedule import LrWdScheduler
from restoreae.train.step import OptimizerStep
from restoreae.utils import atomic_write


@dataclass
class RunState:
    """A training run in progress: where it stands (``step``, ``epoch``, ``pos`` = optimizer
    steps done in the epoch) and what it trains with.

    ``model`` is trained; ``forward`` is what the loop calls (``model``, DDP- and/or
    ``torch.compile``-wrapped); ``export_model`` is what is validated and saved (the EMA copy
    when ``train.ema`` is set). ``resumed``: the training state the run resumed from, or None.
    """

    cfg: TrainConfig
    info: DistInfo
    paths: ckpt.RunPaths
    manifest: dict
    loader: DataLoader
    sampler: ResumableSampler
    damage: Any
    style: Any
    reference_style: Any
    criterion: CompositeLoss
    model: nn.Module
    ema: ModelEma | None
    optimizer: torch.optim.Optimizer
    scheduler: LrWdScheduler
    stepper: OptimizerStep
    steps_per_epoch: int
    total_steps: int
    global_batch: int
    resumed: dict[str, Any] | None = None
    step: int = 0
    epoch: int = 0
    pos: int = 0
    forward: nn.Module | None = None
    ddp: Any = field(default=None, repr=False)

    @property
    def export_model(self) -> nn.Module:
        return self.ema.module if self.ema is not None else self.model

    @property
    def accum(self) -> int:
        return self.cfg.optim.grad_accum_steps


def resolve_resume(cfg: TrainConfig, resume: Path | None) -> tuple[Path | None, Path]:
    """``(state file or None, run folder)`` for an explicit or automatic resume."""
    run_dir = Path(cfg.output.run_dir)
    if resume is not None:
        state_path = ckpt.find_state(Path(resume))
        if state_path.parent.name == "state":
            run_dir = state_path.parent.parent
        return state_path, run_dir
    auto = ckpt.RunPaths(run_dir).last_state
    return (auto if auto.is_file() else None), run_dir


def _load_resumed_state(cfg: TrainConfig, state_path: Path | None) -> dict[str, Any] | None:
    if state_path is None:
        return None
    state = ckpt.load_state(state_path)
    diffs = config_differences(state["config"], cfg.to_dict())
    if diffs:
        raise ConfigError(
            f"cannot resume '{state_path}': the config differs in {', '.join(diffs)} "
            f"(in {cfg.source}); use another output.run_dir to start a new run"
        )
    return state


def _data(cfg: TrainConfig, info: DistInfo) -> tuple[DataLoader, ResumableSampler, int]:
    """The training loader, its resumable sampler and the optimizer steps per epoch."""
    t_cfg = cfg.train
    train_ds = GlyphPairs(cfg.data.corpus, cfg.data.train_split)
    base_sampler = DistributedSampler(
        train_ds,
        num_replicas=info.world_size,
        rank=info.rank,
        shuffle=True,
        seed=t_cfg.seed,
        drop_last=True,
    )
    sampler = ResumableSampler(base_sampler)
    accum = cfg.optim.grad_accum_steps
    steps_per_epoch = len(base_sampler) // t_cfg.batch_size // accum
    if steps_per_epoch < 1:
        raise DataError(
            f"split '{cfg.data.train_split}' of '{cfg.data.corpus}' has {len(train_ds)} glyphs: "
            f"too few for train.batch_size={t_cfg.batch_size} x optim.grad_accum_steps={accum} "
            f"x {info.world_size} process(es)"
        )
    loader = DataLoader(
        train_ds,
        batch_size=t_cfg.batch_size,
        sampler=sampler,
        drop_last=True,
        num_workers=t_cfg.num_workers,
        pin_memory=info.device.type == "cuda",
        persistent_workers=t_cfg.num_workers > 0,  # workers outlive an epoch (no restart cost)
    )
    return loader, sampler, steps_per_epoch


def setup_run(cfg: TrainConfig, info: DistInfo, resume: Path | None) -> RunState:
    """Build the run state of ``cfg`` on ``info.device``, resumed from ``resume`` (a run folder
    or state file) or from ``RUN_DIR/state/last.pt`` when it exists."""
    from restoreae.data.corpus import Corpus

    cfg = copy.deepcopy(cfg)  # run_dir may be redirected by --resume
    t_cfg, o_cfg = cfg.train, cfg.optim
    state_path, run_dir = resolve_resume(cfg, resume)
    cfg.output.run_dir = str(run_dir)
    state = _load_resumed_state(cfg, state_path)

    corpus = Corpus.open(cfg.data.corpus)
    damage, style, criterion = load_damage(cfg), load_style(cfg), build_loss(t_cfg.loss)

    loader, sampler, steps_per_epoch = _data(cfg, info)
    total_steps = min(
        t_cfg.max_steps if t_cfg.max_steps is not None else sys.maxsize,
        t_cfg.epochs * steps_per_epoch if t_cfg.epochs is not None else sys.maxsize,
    )
    warmup = o_cfg.warmup_steps + round(o_cfg.warmup_epochs * steps_per_epoch)
    global_batch = t_cfg.batch_size * o_cfg.grad_accum_steps * info.world_size
    lr = o_cfg.lr * (global_batch / o_cfg.lr_base_batch if o_cfg.lr_base_batch else 1.0)

    torch.manual_seed(t_cfg.seed)
    model = build_model(cfg)
    if state is not None:
        model.load_state_dict(state["model"])
    elif cfg.output.init_from:
        init_weights_from(model, Path(cfg.output.init_from), cfg)
    model.to(info.device)
    if t_cfg.channels_last:
        model.to(memory_format=torch.channels_last)
    model.train()
    ema = ModelEma(model, t_cfg.ema) if t_cfg.ema is not None else None
    optimizer = torch.optim.AdamW(
        param_groups(model), lr=lr, betas=tuple(o_cfg.betas), eps=o_cfg.eps
    )
    scheduler = LrWdScheduler(
        optimizer,
        lr=lr,
        min_lr=o_cfg.min_lr,
        weight_decay=o_cfg.weight_decay,
        weight_decay_end=o_cfg.weight_decay_end,
        total_steps=total_steps,
        warmup_steps=warmup,
    )
    stepper = OptimizerStep(
        optimizer,
        model.parameters(),
        clip_grad=o_cfg.clip_grad,
        fp16=t_cfg.amp == "fp16",
        device_type=info.device.type,
    )
    run = RunState(
        cfg=cfg,
        info=info,
        paths=ckpt.RunPaths(run_dir),
        manifest=corpus.manifest,
        loader=loader,
        sampler=sampler,
        damage=damage,
        style=style,
        reference_style=load_style(cfg, "reference_style"),
        criterion=criterion,
        model=model,
        ema=ema,
        optimizer=optimizer,
        scheduler=scheduler,
        stepper=stepper,
        steps_per_epoch=steps_per_epoch,
        total_steps=total_steps,
        global_batch=global_batch,
        resumed=state,
    )
    if state is not None:
        _restore_progress(run, state)
    if t_cfg.mask_weight > 0:
        if getattr(model, "output", "direct") != "composite":
            raise ConfigError(
                f"train.mask_weight={t_cfg.mask_weight} needs a model with a damage mask "
                f"(model.kwargs.output: composite) (in {cfg.source})"
            )
        model.return_parts = True  # the training forward gives (content, mask); EMA untouched
    return run


def _restore_progress(run: RunState, state: dict[str, Any]) -> None:
    """Optimizer, schedule, scaler, EMA, RNG and position from a saved training state."""
    info = run.info
    run.optimizer.load_state_dict(state["optimizer"])
    run.scheduler.load_state_dict(state["scheduler"])
    run.stepper.load_state_dict(state.get("scaler"))
    if run.ema is not None and state.get("ema"):
        run.ema.load_state_dict(state["ema"])
    ckpt.set_rng_state(state["rng"])
    run.step, run.epoch, run.pos = int(state["step"]), int(state["epoch"]), int(state["pos"])
    changed = config_differences(state["config"], run.cfg.to_dict(), mutable=True)
    changed = [k for k in changed if k not in ("output.run_dir", "train.progress")]
    if changed:
        log_main(info, f"resuming with changed settings: {', '.join(changed)}")
    if int(state.get("world_size", 1)) != info.world_size:
        log_main(
            info,
            f"warning: resuming a {state.get('world_size')}-process run with "
            f"{info.world_size}: the data order differs from the original run",
        )
    if run.pos >= run.steps_per_epoch:  # e.g. resumed with more processes than before
        run.epoch, run.pos = run.epoch + 1, 0


def make_saver(run: RunState) -> CheckpointSaver:
    """The run's :class:`CheckpointSaver` (its best figures carried over on resume)."""
    return CheckpointSaver(
        paths=run.paths,
        info=run.info,
        config=run.cfg.to_dict(),
        manifest=run.manifest,
        img_size=run.cfg.data.img_size,
        in_chans=run.cfg.in_chans,
        keep_best_k=run.cfg.train.keep_best_k,
        model=run.model,
        export_model=run.export_model,
        optimizer=run.optimizer,
        scheduler=run.scheduler,
        stepper=run.stepper,
        ema=run.ema,
        state=run.resumed,
    )


def prepare_run_folder(run: RunState, saver: CheckpointSaver) -> None:
    """Rank 0: create the folder, drop a killed writer's temporary files, write the resolved
    ``config.yaml``, cut ``log.jsonl`` back to the resumed step and make ``weights/last`` match
    the state. Every rank waits."""
    paths, info = run.paths, run.info
    if info.is_main:
        paths.root.mkdir(parents=True, exist_ok=True)
        ckpt.clean_temp_files(paths)
        atomic_write(paths.config, run.cfg.to_yaml().encode("utf-8"))
        ckpt.truncate_log(paths.log, run.step)
        if run.resumed is not None:
            log_main(info, f"resuming {paths.root} from step {run.step} (epoch {run.epoch})")
            saver.ensure_last_weights(run)
    barrier(info)


def wrap_model(run: RunState) -> None:
    """Set ``run.forward``: DDP around the model under torchrun (``find_unused_parameters``
    when a probe finds parameters without gradients), then ``torch.compile`` if asked."""
    cfg, info, model = run.cfg, run.info, run.model
    fwd: nn.Module = model
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        find_unused = cfg.train.find_unused_parameters
        if not find_unused:
            unused = unused_parameters(model, cfg.in_chans, cfg.data.img_size)
            if unused:
                find_unused = True
                log_main(
                    info,
                    f"DDP: {len(unused)} parameter(s) get no gradient ({', '.join(unused[:3])}"
                    f"{', ...' if len(unused) > 3 else ''}): using find_unused_parameters",
                )
        run.ddp = DDP(
            model,
            device_ids=[info.device.index] if info.device.type == "cuda" else None,
            find_unused_parameters=find_unused,
        )
        fwd = run.ddp
    if cfg.train.compile:
        fwd = torch.compile(fwd)
    run.forward = fwd
