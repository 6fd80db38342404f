"""Training and evaluation loops (single process or DDP under torchrun).

Data: clean glyphs (uint8, white on black) and their reference glyphs come from the corpus by
plain array indexing; damage is applied on the training device in batches
(:class:`restoreae.damage.torch_ops.TorchDamage`). If the corpus size differs from
``data.img_size`` the batch is resized on the device (bilinear, antialiased) before damage.

Determinism: the data order is a function of ``(seed, epoch)`` (DistributedSampler), the damage
of each micro-batch and the global torch RNG (dropout, drop-path, MAE masks) are re-seeded from
``(seed, rank, step, micro-step)``. With the state file holding model, optimizer, scheduler,
scaler and EMA, a resumed run continues exactly the loss curve of an uninterrupted one (CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import copy
import hashlib
import itertools
import json
import math
import os
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn
from torch.utils.data import DataLoader, Dataset, Sampler
from torch.utils.data.distributed import DistributedSampler

from restoreae.cpu import keep_freed_memory
from restoreae.errors import ConfigError, DataError, RestoreAEError
from restoreae.models.weights import ModelSource
from restoreae.train import checkpoint as ckpt
from restoreae.train.config import TrainConfig, config_differences, load_config
from restoreae.train.distributed import (
    DistInfo,
    all_reduce_sum,
    barrier,
    cleanup,
    init_distributed,
)
from restoreae.train.ema import ModelEma
from restoreae.train.losses import CompositeLoss, build_loss, composite_mask_loss
from restoreae.train.schedule import LrWdScheduler
from restoreae.utils import atomic_write

_DAMAGE_TAG = 1
_DROPOUT_TAG = 2
_VAL_TAG = 3


class NonFiniteLossError(RestoreAEError):
    """The training loss became NaN or infinite; the run stopped without saving."""


# --------------------------------------------------------------------------- data
class GlyphPairs(Dataset):
    """``(clean, reference)`` uint8 tensors ``(S, S)`` (white on black) for a corpus split.

    The corpus is opened lazily in each process (workers re-open the memory map).
    """

    def __init__(self, corpus_path: str | Path, split: str) -> None:
        from restoreae.data.corpus import Corpus

        self.corpus_path = Path(corpus_path)
        self.split = split
        self._corpus: Any = Corpus.open(self.corpus_path)
        self.writers, self.chars = self._corpus.pairs(split)

    def _open(self) -> Any:
        if self._corpus is None:
            from restoreae.data.corpus import Corpus

            self._corpus = Corpus.open(self.corpus_path)
        return self._corpus

    def __getstate__(self) -> dict:
        state = dict(self.__dict__)
        state["_corpus"] = None
        return state

    def __len__(self) -> int:
        return len(self.writers)

    def __getitem__(self, i: int) -> tuple[Tensor, Tensor]:
        corpus = self._open()
        w, c = int(self.writers[i]), int(self.chars[i])
        clean = torch.from_numpy(np.array(corpus.glyphs[w, c], dtype=np.uint8))
        ref = torch.from_numpy(np.array(corpus.reference[c], dtype=np.uint8))
        return clean, ref


class ResumableSampler(Sampler[int]):
    """A DistributedSampler whose epoch can start after the first ``skip`` indices (resume)."""

    def __init__(self, base: DistributedSampler) -> None:
        self.base = base
        self.skip = 0

    def set_epoch(self, epoch: int, skip: int = 0) -> None:
        self.base.set_epoch(epoch)
        self.skip = skip

    def __iter__(self) -> Iterator[int]:
        return itertools.islice(iter(self.base), self.skip, None)

    def __len__(self) -> int:
        return max(0, len(self.base) - self.skip)


def derive_seed(*parts: int) -> int:
    """A 63-bit seed that is a deterministic function of the integer ``parts``."""
    ss = np.random.SeedSequence([int(p) & 0xFFFFFFFF for p in parts])
    return int(ss.generate_state(1, dtype=np.uint64)[0] & 0x7FFFFFFFFFFFFFFF)


def _generator(device: torch.device, seed: int) -> torch.Generator:
    g = torch.Generator(device=device)
    g.manual_seed(seed)
    return g


def _to_float(x_u8: Tensor, device: torch.device, img_size: int) -> Tensor:
    """uint8 ``(B, S, S)`` → float ``(B, 1, img, img)`` in [0, 1] on ``device``."""
    x = x_u8.to(device, non_blocking=True).unsqueeze(1).float().div_(255.0)
    if x.shape[-1] != img_size or x.shape[-2] != img_size:
        x = F.interpolate(
            x, size=(img_size, img_size), mode="bilinear", antialias=True, align_corners=False
        ).clamp_(0.0, 1.0)
    return x


def make_batch(
    clean_u8: Tensor,
    ref_u8: Tensor,
    *,
    damage: Any,
    generator: torch.Generator,
    device: torch.device,
    img_size: int,
    use_reference: bool,
    reference_dropout: float = 0.0,
    style: Any = None,
    clean_fraction: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """Model input ``(B, 1|2, H, W)`` (damaged [+ reference]) and target ``(B, 1, H, W)``.

    ``style`` (a :class:`~restoreae.damage.style.StyleTransform`) first turns the clean glyph into
    a synthetic writer's: the target is the styled glyph, the reference stays the font's.
    With ``clean_fraction`` q > 0, each sample is left undamaged with probability q, so the model
    learns to return an intact glyph unchanged ("do no harm").
    With ``reference_dropout`` p > 0, each sample's reference channel is zeroed with probability p
    (drawn from ``generator``), teaching the model to restore without a known character too.
    """
    clean = _to_float(clean_u8, device, img_size)
    if style is not None:
        clean = style(clean, generator)
    damaged = damage(clean, generator)
    if clean_fraction > 0:
        intact = torch.rand(clean.shape[0], generator=generator, device=generator.device)
        intact = (intact < clean_fraction).to(device).view(-1, 1, 1, 1)
        damaged = torch.where(intact, clean, damaged)
    if use_reference:
        ref = _to_float(ref_u8, device, img_size)
        if reference_dropout > 0:
            keep = torch.rand(ref.shape[0], generator=generator, device=device) >= reference_dropout
            ref = ref * keep.view(-1, 1, 1, 1).to(ref.dtype)
        x = torch.cat([damaged, ref], dim=1)
    else:
        x = damaged
    return x, clean


def load_style(cfg: TrainConfig) -> Any:
    """The batched synthetic-writer transform for ``data.style`` (or None)."""
    from restoreae.damage.style import build_style

    try:
        return build_style(cfg.data.style)
    except ConfigError as exc:
        raise ConfigError(f"data.style (in {cfg.source}): {exc}") from None


def load_damage(cfg: TrainConfig) -> Any:
    """The batched torch damage for ``data.damage`` (see :meth:`DamageConfig.resolve`)."""
    from restoreae.damage.pipeline import DamageConfig
    from restoreae.damage.torch_ops import TorchDamage

    return TorchDamage(
        DamageConfig.resolve(cfg.data.damage, where=f"data.damage (in {cfg.source})")
    )


@dataclass
class ValSet:
    """Fixed damaged validation glyphs: inputs ``(N, C, H, W)`` and targets ``(N, 1, H, W)``."""

    inputs: Tensor
    targets: Tensor
    batch_size: int

    def __len__(self) -> int:
        return self.inputs.shape[0]


def build_val_set(cfg: TrainConfig, damage: Any, device: torch.device) -> ValSet:
    """``train.val_num`` glyphs of ``data.val_split`` damaged with seeds fixed by ``train.seed``.

    The same on every rank and for every world size; kept on the CPU, moved per batch.
    """
    ds = GlyphPairs(cfg.data.corpus, cfg.data.val_split)
    if len(ds) == 0:
        raise DataError(
            f"data.val_split: split '{cfg.data.val_split}' of corpus '{cfg.data.corpus}' is empty"
        )
    rng = np.random.default_rng(derive_seed(cfg.train.seed, _VAL_TAG))
    n = min(cfg.train.val_num, len(ds))
    idx = np.sort(rng.choice(len(ds), size=n, replace=False))
    bs = cfg.train.val_batch_size or cfg.train.batch_size
    xs, ys = [], []
    for b, start in enumerate(range(0, n, bs)):
        items = [ds[int(i)] for i in idx[start : start + bs]]
        clean = torch.stack([it[0] for it in items])
        ref = torch.stack([it[1] for it in items])
        x, y = make_batch(
            clean,
            ref,
            damage=damage,
            generator=_generator(device, derive_seed(cfg.train.seed, _VAL_TAG, b)),
            device=device,
            img_size=cfg.data.img_size,
            use_reference=cfg.data.use_reference,
        )
        xs.append(x.cpu())
        ys.append(y.cpu())
    return ValSet(torch.cat(xs), torch.cat(ys), bs)


@torch.no_grad()
def evaluate(
    model: nn.Module,
    val: ValSet,
    criterion: CompositeLoss,
    info: DistInfo,
    *,
    amp_dtype: torch.dtype | None = None,
    channels_last: bool = False,
) -> dict[str, float]:
    """Validation loss and mean per-image PSNR (dB, on float [0, 1]; capped at 100 dB).

    Batches are sharded over ranks and the sums all-reduced: every rank gets the same figures.
    """
    was_training = model.training
    was_parts = getattr(model, "return_parts", False)
    model.eval()
    if was_parts:
        model.return_parts = False  # validation scores the composite output
    sums = torch.zeros(3, dtype=torch.float64, device=info.device)  # loss*n, psnr sum, n
    n_batches = math.ceil(len(val) / val.batch_size)
    for b in range(info.rank, n_batches, info.world_size):
        sl = slice(b * val.batch_size, (b + 1) * val.batch_size)
        x = val.inputs[sl].to(info.device, non_blocking=True)
        y = val.targets[sl].to(info.device, non_blocking=True)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(info.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = model(x)
        out = out.float()
        loss, _ = criterion(out, y)
        mse = ((out - y) ** 2).flatten(1).mean(1).clamp_min(1e-10)
        psnr = 10.0 * torch.log10(1.0 / mse)
        n = float(x.shape[0])
        sums[0] += loss.double() * n
        sums[1] += psnr.double().sum()
        sums[2] += n
    all_reduce_sum(sums, info)
    model.train(was_training)
    if was_parts:
        model.return_parts = True
    n = max(1.0, float(sums[2]))
    return {"loss": float(sums[0]) / n, "psnr": float(sums[1]) / n}


# --------------------------------------------------------------------------- model / optim
def build_model(cfg: TrainConfig) -> nn.Module:
    """``create_model(model.name, in_chans, img_size, **model.kwargs)``; errors name the key."""
    from restoreae.models.registry import create_model

    try:
        return create_model(
            cfg.model.name,
            in_chans=cfg.in_chans,
            img_size=cfg.data.img_size,
            **cfg.model.kwargs,
        )
    except ConfigError as exc:
        raise ConfigError(f"model (in {cfg.source}): {exc}") from None


def init_weights_from(model: nn.Module, path: Path, cfg: TrainConfig) -> None:
    """Load ``output.init_from`` into ``model``, widening 1-channel weights to 2 channels and
    adding the damage-mask channel when a direct-output model starts a composite one."""
    from restoreae.models.io import add_damage_mask, load_model, widen_input

    src, _ = load_model(path, device="cpu")
    src_out = src.config.get("output", "direct")
    if src_out == "direct" and getattr(model, "output", "direct") == "composite":
        src = add_damage_mask(src)
    src_in = int(src.config.get("in_chans", 1))
    if src_in < cfg.in_chans:
        src = widen_input(src, in_chans=cfg.in_chans)
    elif src_in > cfg.in_chans:
        raise ConfigError(
            f"output.init_from: '{path}' takes {src_in} input channels but the config trains "
            f"{cfg.in_chans} (data.use_reference={cfg.data.use_reference}) (in {cfg.source})"
        )
    try:
        model.load_state_dict(src.state_dict(), strict=True)
    except RuntimeError as exc:
        raise ConfigError(
            f"output.init_from: '{path}' ({src.config.get('name')}) does not fit model "
            f"'{cfg.model.name}': {str(exc).splitlines()[0]} (in {cfg.source})"
        ) from None


def param_groups(model: nn.Module) -> list[dict[str, Any]]:
    """AdamW groups: weight decay on weights; none on norms, biases, embeddings and tokens."""
    decay, no_decay = [], []
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        if p.ndim <= 1 or name.endswith(".bias") or "pos_embed" in name or "token" in name:
            no_decay.append(p)
        else:
            decay.append(p)
    return [
        {"params": decay, "apply_wd": True},
        {"params": no_decay, "apply_wd": False, "weight_decay": 0.0},
    ]


def unused_parameters(model: nn.Module, in_chans: int, img_size: int) -> list[str]:
    """Names of trainable parameters that get no gradient from a forward/backward pass.

    Probed on a copy of the model (batch of 2 random inputs, train mode) so the model's buffers
    and the global RNG are left untouched. DDP needs ``find_unused_parameters`` for these.
    """
    probe = copy.deepcopy(model).train()
    rng = torch.get_rng_state()
    try:
        p = next(probe.parameters())
        x = torch.rand(2, in_chans, img_size, img_size, device=p.device)
        probe(x).float().mean().backward()
    finally:
        torch.set_rng_state(rng)
    return [n for n, q in probe.named_parameters() if q.requires_grad and q.grad is None]


def parameter_digest(model: nn.Module) -> str:
    """sha256 (first 16 hex digits) of the parameters, in ``named_parameters`` order.

    Buffers are left out on purpose: under DDP each rank updates its own BatchNorm running
    statistics in its forward pass (rank 0's are broadcast at the start of the next forward
    only), so after the last step they differ between ranks that are perfectly in sync.
    """
    h = hashlib.sha256()
    for name, t in model.named_parameters():
        h.update(name.encode())
        h.update(t.detach().to("cpu").contiguous().numpy().tobytes())
    return h.hexdigest()[:16]


# --------------------------------------------------------------------------- the loop
def _log_main(info: DistInfo, msg: str) -> None:
    if info.is_main:
        from tqdm import tqdm

        tqdm.write(msg, file=sys.stderr)


def _resolve_resume(cfg: TrainConfig, resume: Path | None) -> tuple[Path | None, Path]:
    """``(state file or None, run folder)`` for an explicit or automatic resume."""
    run_dir = Path(cfg.output.run_dir)
    if resume is not None:
        state_path = ckpt.find_state(Path(resume))
        if state_path.parent.name == "state":
            run_dir = state_path.parent.parent
        return state_path, run_dir
    auto = ckpt.RunPaths(run_dir).last_state
    return (auto if auto.is_file() else None), run_dir


def train(
    config: TrainConfig,
    *,
    resume: Path | None = None,
    stop_at_step: int | None = None,
) -> Path:
    """Train per ``config``; return the run folder.

    Resumes from ``resume`` (a run folder or state file) or, automatically, from
    ``RUN_DIR/state/last.pt`` when it exists (the config must match except for the keys in
    ``RESUME_MUTABLE_KEYS``). ``stop_at_step``: save and return once that optimizer step is
    reached, without changing the schedule (time-sliced training; resume later).
    Raises ``NonFiniteLossError`` when the loss becomes NaN/inf (nothing saved for that step).
    """
    if config.train.threads is not None:
        torch.set_num_threads(config.train.threads)
    info = init_distributed(config.train.device)
    try:
        return _train(config, info, resume, stop_at_step)
    finally:
        cleanup(info)


def _train(
    cfg: TrainConfig,
    info: DistInfo,
    resume: Path | None,
    stop_at_step: int | None,
) -> Path:
    from tqdm import tqdm

    from restoreae.data.corpus import Corpus

    cfg = copy.deepcopy(cfg)  # run_dir may be redirected by --resume
    device = info.device
    t_cfg, o_cfg = cfg.train, cfg.optim
    state_path, run_dir = _resolve_resume(cfg, resume)
    cfg.output.run_dir = str(run_dir)
    paths = ckpt.RunPaths(run_dir)

    state: dict[str, Any] | None = None
    if state_path is not None:
        state = ckpt.load_state(state_path)
        diffs = config_differences(state["config"], cfg.to_dict())
        if diffs:
            raise ConfigError(
                f"cannot resume '{state_path}': the config differs in {', '.join(diffs)} "
                f"(in {cfg.source}); use another output.run_dir to start a new run"
            )

    corpus = Corpus.open(cfg.data.corpus)
    damage = load_damage(cfg)
    style = load_style(cfg)
    criterion = build_loss(t_cfg.loss)
    amp_dtype = cfg.amp_dtype

    # ---- data
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
    accum = o_cfg.grad_accum_steps
    micro_per_epoch = len(base_sampler) // t_cfg.batch_size
    steps_per_epoch = micro_per_epoch // accum
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
        pin_memory=device.type == "cuda",
        persistent_workers=False,
    )
    total_steps = min(
        t_cfg.max_steps if t_cfg.max_steps is not None else sys.maxsize,
        t_cfg.epochs * steps_per_epoch if t_cfg.epochs is not None else sys.maxsize,
    )
    warmup = o_cfg.warmup_steps + round(o_cfg.warmup_epochs * steps_per_epoch)
    global_batch = t_cfg.batch_size * accum * info.world_size
    lr = o_cfg.lr * (global_batch / o_cfg.lr_base_batch if o_cfg.lr_base_batch else 1.0)

    # ---- model, EMA, optimizer
    torch.manual_seed(t_cfg.seed)
    model = build_model(cfg)
    if state is not None:
        model.load_state_dict(state["model"])
    elif cfg.output.init_from:
        init_weights_from(model, Path(cfg.output.init_from), cfg)
    model.to(device)
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
    scaler = torch.amp.GradScaler(device.type) if t_cfg.amp == "fp16" else None

    step, epoch, pos = 0, 0, 0
    best_psnr, best_k, last_val = -math.inf, [], None
    if state is not None:
        optimizer.load_state_dict(state["optimizer"])
        scheduler.load_state_dict(state["scheduler"])
        if scaler is not None and state.get("scaler"):
            scaler.load_state_dict(state["scaler"])
        if ema is not None and state.get("ema"):
            ema.load_state_dict(state["ema"])
        ckpt.set_rng_state(state["rng"])
        step, epoch, pos = int(state["step"]), int(state["epoch"]), int(state["pos"])
        best_psnr = float(state["best_psnr"])
        best_k = [list(e) for e in state.get("best_k", [])]
        last_val = state.get("last_val")
        changed = config_differences(state["config"], cfg.to_dict(), mutable=True)
        changed = [k for k in changed if k not in ("output.run_dir", "train.progress")]
        if changed:
            _log_main(info, f"resuming with changed settings: {', '.join(changed)}")
        if int(state.get("world_size", 1)) != info.world_size:
            _log_main(
                info,
                f"warning: resuming a {state.get('world_size')}-process run with "
                f"{info.world_size}: the data order differs from the original run",
            )
        if pos >= steps_per_epoch:  # e.g. resumed with more processes than before
            epoch, pos = epoch + 1, 0
    export_model = ema.module if ema is not None else model
    if t_cfg.mask_weight > 0:
        if getattr(model, "output", "direct") != "composite":
            raise ConfigError(
                f"train.mask_weight={t_cfg.mask_weight} needs a model with a damage mask "
                f"(model.kwargs.output: composite) (in {cfg.source})"
            )
        model.return_parts = True  # the training forward gives (content, mask); EMA untouched

    def metadata(val: dict[str, float] | None) -> dict[str, Any]:
        return ckpt.export_metadata(
            img_size=cfg.data.img_size,
            in_chans=cfg.in_chans,
            manifest=corpus.manifest,
            step=step,
            epoch=epoch,
            val=val,
            ema=ema is not None,
        )

    # ---- run folder (rank 0)
    if info.is_main:
        paths.root.mkdir(parents=True, exist_ok=True)
        ckpt.clean_temp_files(paths)
        atomic_write(paths.config, cfg.to_yaml().encode("utf-8"))
        ckpt.truncate_log(paths.log, step)
        if state is not None:
            _log_main(info, f"resuming {paths.root} from step {step} (epoch {epoch})")
            meta = ckpt.read_weights_metadata(paths.last_weights)
            if meta is None or int(meta.get("step", -1)) != step:
                ckpt.save_weights(export_model, paths.last_weights, metadata(last_val))
    barrier(info)

    tb = None
    if info.is_main:
        from torch.utils.tensorboard import SummaryWriter

        # Events after the checkpoint (from a killed run) are dropped and replayed.
        tb = SummaryWriter(str(paths.tb), purge_step=step + 1)

    # ---- wrappers
    fwd: nn.Module = model
    ddp = None
    if info.enabled:
        from torch.nn.parallel import DistributedDataParallel as DDP

        find_unused = t_cfg.find_unused_parameters
        if not find_unused:
            unused = unused_parameters(model, cfg.in_chans, cfg.data.img_size)
            if unused:
                find_unused = True
                _log_main(
                    info,
                    f"DDP: {len(unused)} parameter(s) get no gradient ({', '.join(unused[:3])}"
                    f"{', ...' if len(unused) > 3 else ''}): using find_unused_parameters",
                )
        ddp = DDP(
            model,
            device_ids=[device.index] if device.type == "cuda" else None,
            find_unused_parameters=find_unused,
        )
        fwd = ddp
    if t_cfg.compile:
        fwd = torch.compile(fwd)

    val_set = build_val_set(cfg, damage, device)
    last_saved_step = step if state is not None else None

    def save(val: dict[str, float] | None, is_best: bool, in_best_k: bool) -> None:
        nonlocal last_saved_step
        if info.is_main:
            st = {
                "step": step,
                "epoch": epoch,
                "pos": pos,
                "best_psnr": best_psnr,
                "best_k": best_k,
                "last_val": val,
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(),
                "scaler": scaler.state_dict() if scaler is not None else None,
                "ema": ema.state_dict() if ema is not None else None,
                "rng": ckpt.rng_state(),
                "config": cfg.to_dict(),
                "world_size": info.world_size,
            }
            ckpt.save_checkpoint(
                paths, export_model, st, metadata(val), is_best=is_best, in_best_k=in_best_k
            )
        last_saved_step = step
        barrier(info)

    def validate_and_save() -> None:
        nonlocal best_psnr, best_k, last_val
        val = evaluate(
            export_model,
            val_set,
            criterion,
            info,
            amp_dtype=amp_dtype,
            channels_last=t_cfg.channels_last,
        )
        is_best = val["psnr"] > best_psnr
        if is_best:
            best_psnr = val["psnr"]
        best_k, in_k = ckpt.update_best_k(best_k, step, val["psnr"], t_cfg.keep_best_k)
        last_val = val
        if info.is_main:
            rec = {"type": "val", "step": step, "epoch": epoch, **val, "best": is_best}
            ckpt.append_log(paths.log, rec)
            tb.add_scalar("val/loss", val["loss"], step)
            tb.add_scalar("val/psnr", val["psnr"], step)
            _log_main(
                info,
                f"step {step} epoch {epoch}: val loss {val['loss']:.5f} "
                f"PSNR {val['psnr']:.2f} dB" + (" (best)" if is_best else ""),
            )
        save(val, is_best, in_k)

    bar = tqdm(
        total=total_steps,
        initial=step,
        disable=not (info.is_main and t_cfg.progress),
        dynamic_ncols=True,
        unit="step",
        file=sys.stderr,
    )
    img_per_s = 0.0
    stop = stop_at_step is not None and step >= stop_at_step
    try:
        while step < total_steps and not stop:
            sampler.set_epoch(epoch, skip=pos * accum * t_cfg.batch_size)
            micro = 0
            loss_acc = torch.zeros((), device=device, dtype=torch.float32)
            t0 = time.perf_counter()
            epoch_done = False
            for clean_u8, ref_u8 in loader:
                if micro == 0:
                    lr_now, wd_now = scheduler.set_step(step)
                torch.manual_seed(derive_seed(t_cfg.seed, _DROPOUT_TAG, info.rank, step, micro))
                gen = _generator(
                    device, derive_seed(t_cfg.seed, _DAMAGE_TAG, info.rank, step, micro)
                )
                x, target = make_batch(
                    clean_u8,
                    ref_u8,
                    damage=damage,
                    generator=gen,
                    device=device,
                    img_size=cfg.data.img_size,
                    use_reference=cfg.data.use_reference,
                    reference_dropout=cfg.data.reference_dropout,
                    style=style,
                    clean_fraction=cfg.data.clean_fraction,
                )
                if t_cfg.channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                last_micro = micro == accum - 1
                sync_ctx = (
                    ddp.no_sync()
                    if (ddp is not None and not last_micro)
                    else contextlib.nullcontext()
                )
                with sync_ctx:
                    with torch.autocast(
                        device.type, dtype=amp_dtype, enabled=amp_dtype is not None
                    ):
                        out = fwd(x)
                    if t_cfg.mask_weight > 0:
                        loss = composite_mask_loss(out, x, target, criterion, t_cfg.mask_weight)
                    else:
                        loss, _ = criterion(out, target)
                    scaled = loss / accum
                    if scaler is not None:
                        scaler.scale(scaled).backward()
                    else:
                        scaled.backward()
                loss_acc += loss.detach()
                micro += 1
                if not last_micro:
                    continue
                micro = 0

                # ---- one optimizer step
                stat = (loss_acc / accum).reshape(1).double()
                loss_acc = torch.zeros((), device=device, dtype=torch.float32)
                all_reduce_sum(stat, info)
                loss_value = float(stat.item()) / info.world_size
                if not math.isfinite(loss_value):
                    where = (
                        f"the last good checkpoint is {paths.last_state} (step {last_saved_step})"
                        if last_saved_step is not None
                        else "no checkpoint had been saved yet"
                    )
                    raise NonFiniteLossError(
                        f"non-finite training loss ({loss_value}) at step {step + 1} "
                        f"(epoch {epoch}); stopped without saving: {where}. Lower optim.lr, "
                        "set optim.clip_grad or use train.amp=none/bf16, then resume."
                    )
                grad_norm = None
                if o_cfg.clip_grad is not None:
                    if scaler is not None:
                        scaler.unscale_(optimizer)
                    grad_norm = float(
                        torch.nn.utils.clip_grad_norm_(model.parameters(), o_cfg.clip_grad)
                    )
                if scaler is not None:
                    scaler.step(optimizer)
                    scaler.update()
                else:
                    optimizer.step()
                optimizer.zero_grad(set_to_none=True)
                if ema is not None:
                    ema.update(model)
                step += 1
                pos += 1
                dt = time.perf_counter() - t0
                t0 = time.perf_counter()
                rate = global_batch / max(dt, 1e-9)
                img_per_s = rate if img_per_s == 0 else 0.9 * img_per_s + 0.1 * rate
                epoch_done = pos >= steps_per_epoch
                if epoch_done:
                    epoch += 1
                    pos = 0

                if info.is_main:
                    bar.update(1)
                    bar.set_postfix(
                        loss=f"{loss_value:.4f}", lr=f"{lr_now:.2e}", img_s=f"{img_per_s:.0f}"
                    )
                    if step % t_cfg.log_every == 0 or step == 1:
                        rec = {
                            "type": "train",
                            "step": step,
                            "epoch": epoch,
                            "loss": loss_value,
                            "lr": lr_now,
                            "wd": wd_now,
                            "img_per_s": img_per_s,
                        }
                        if grad_norm is not None:
                            rec["grad_norm"] = grad_norm
                        ckpt.append_log(paths.log, rec)
                        tb.add_scalar("train/loss", loss_value, step)
                        tb.add_scalar("train/lr", lr_now, step)
                        tb.add_scalar("train/wd", wd_now, step)
                        tb.add_scalar("train/img_per_s", img_per_s, step)
                        if grad_norm is not None:
                            tb.add_scalar("train/grad_norm", grad_norm, step)

                finished = step >= total_steps
                stop = stop_at_step is not None and step >= stop_at_step
                val_due = (
                    (t_cfg.val_every is not None and step % t_cfg.val_every == 0)
                    or (t_cfg.val_every is None and epoch_done)
                    or finished
                )
                if val_due:
                    validate_and_save()
                elif stop or (
                    t_cfg.save_every_steps is not None and step % t_cfg.save_every_steps == 0
                ):
                    save(last_val, False, False)
                if finished or stop or epoch_done:
                    break
            else:  # the loader ran out before the epoch's last step (cannot happen normally)
                if not epoch_done:
                    epoch, pos = epoch + 1, 0
    finally:
        bar.close()
        if tb is not None:
            tb.close()

    digest = parameter_digest(model)
    print(
        f"[rank {info.rank}/{info.world_size}] finished at step {step} (epoch {epoch}); "
        f"parameter sha256 {digest}",
        file=sys.stderr,
        flush=True,
    )
    return paths.root


# --------------------------------------------------------------------------- eval-only
def _weights_for_eval(cfg: TrainConfig, checkpoint: Path | None) -> ModelSource:
    """``--resume`` of ``--eval-only`` (any ``.safetensors`` model spec; default: the config's
    run folder) → the weights to evaluate."""
    from restoreae.models.weights import resolve_weights

    source = resolve_weights(checkpoint if checkpoint is not None else cfg.output.run_dir)
    if source.format != "safetensors":
        raise ConfigError(f"--resume for --eval-only: '{source.path}' is not a .safetensors file")
    return source


def evaluate_checkpoint(cfg: TrainConfig, checkpoint: Path | None = None) -> dict[str, Any]:
    """Validation metrics of a checkpoint on ``data.val_split`` (the config's fixed val set).

    ``checkpoint``: a ``.safetensors`` file or a run folder (its best, else last weights);
    default ``output.run_dir``. Writes ``eval-<split>.json`` next to the run's weights folder.
    """
    from restoreae.models.io import load_model

    info = init_distributed(cfg.train.device)
    try:
        source = _weights_for_eval(cfg, checkpoint)
        path = source.path
        model, meta = load_model(path, device=info.device, arch=source.arch)
        in_chans = int(model.config.get("in_chans", meta.get("in_chans", 1)))
        if in_chans != cfg.in_chans:
            raise ConfigError(
                f"'{path}' takes {in_chans} input channels; data.use_reference="
                f"{cfg.data.use_reference} gives {cfg.in_chans} (in {cfg.source})"
            )
        damage = load_damage(cfg)
        val_set = build_val_set(cfg, damage, info.device)
        metrics = evaluate(
            model, val_set, build_loss(cfg.train.loss), info, amp_dtype=cfg.amp_dtype
        )
        result = {
            "weights": str(path),
            "split": cfg.data.val_split,
            "num": len(val_set),
            "step": meta.get("step"),
            **metrics,
        }
        if info.is_main:
            out = path.parent.parent if path.parent.name == "weights" else path.parent
            atomic_write(
                out / f"eval-{cfg.data.val_split}.json",
                (json.dumps(result, indent=2) + "\n").encode("utf-8"),
            )
        return result
    finally:
        cleanup(info)


def train_command(args: argparse.Namespace) -> int:
    """``restoreae train -c CONFIG [--set k=v ...] [--resume PATH] [--eval-only]``."""
    cfg = load_config(args.config, list(getattr(args, "overrides", []) or []))
    resume = getattr(args, "resume", None)
    if getattr(args, "eval_only", False):
        result = evaluate_checkpoint(cfg, resume)
        print(json.dumps(result, indent=2))
        return 0
    # Reuse freed activation memory instead of re-faulting fresh pages every step (restoreae.cpu;
    # docs/PERFORMANCE.md, "Where the time goes"). Set for the whole process, so only here.
    keep_freed_memory()
    run_dir = train(cfg, resume=resume, stop_at_step=getattr(args, "stop_at_step", None))
    if os.environ.get("RANK", "0") == "0":
        print(f"run folder: {run_dir}")
    return 0
