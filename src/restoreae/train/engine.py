"""The training loop (single process or DDP under torchrun), as MAE's ``engine``: setup, steps,
validation and checkpoints, each in its own module.

- :mod:`restoreae.train.setup`: the run state (data, model, EMA, optimizer, schedule, resume).
- :mod:`restoreae.train.batches`: glyph pairs, the resumable sampler, seeds, the damaged batch.
- :mod:`restoreae.train.step`: ``OptimizerStep`` — backward, unscale, clip and step in one place.
- :mod:`restoreae.train.saver`: ``CheckpointSaver`` — best, best-k, last saved step, saving.
- :mod:`restoreae.train.validate`: the fixed validation set, validation, ``--eval-only``.
- :mod:`restoreae.train.logger`: progress bar, ``log.jsonl``, TensorBoard.

Determinism: the data order is a function of ``(seed, epoch)`` (DistributedSampler), the damage
of each micro-batch and the global torch RNG (dropout, drop-path, MAE masks) are re-seeded from
``(seed, rank, step, micro-step)``. With the state file holding model, optimizer, scheduler,
scaler and EMA, a resumed run continues exactly the loss curve of an uninterrupted one (CPU).
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import sys
from pathlib import Path

import torch
from torch import Tensor, nn

from restoreae.cpu import keep_freed_memory
from restoreae.errors import RestoreAEError
from restoreae.train.batches import (
    DAMAGE_TAG,
    DROPOUT_TAG,
    derive_seed,
    make_batch,
    make_generator,
)
from restoreae.train.config import TrainConfig, load_config
from restoreae.train.distributed import DistInfo, all_reduce_sum, cleanup, init_distributed
from restoreae.train.logger import RunLogger
from restoreae.train.losses import composite_mask_loss
from restoreae.train.saver import CheckpointSaver
from restoreae.train.setup import RunState, make_saver, prepare_run_folder, setup_run, wrap_model
from restoreae.train.validate import ValSet, build_val_sets, evaluate_checkpoint, evaluate_sets


class NonFiniteLossError(RestoreAEError):
    """The training loss became NaN or infinite; the run stopped without saving."""


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


def _train(cfg: TrainConfig, info: DistInfo, resume: Path | None, stop_at_step: int | None) -> Path:
    run = setup_run(cfg, info, resume)
    saver = make_saver(run)
    prepare_run_folder(run, saver)
    t_cfg = run.cfg.train
    logger = RunLogger(
        info,
        run.paths.log,
        run.paths.tb,
        step=run.step,
        total_steps=run.total_steps,
        log_every=t_cfg.log_every,
        global_batch=run.global_batch,
        progress=t_cfg.progress,
    )
    try:
        wrap_model(run)
        val_sets = build_val_sets(run.cfg, run.damage, info.device)
        _loop(run, saver, logger, val_sets, stop_at_step)
    finally:
        logger.close()
    print(
        f"[rank {info.rank}/{info.world_size}] finished at step {run.step} (epoch {run.epoch}); "
        f"parameter sha256 {parameter_digest(run.model)}",
        file=sys.stderr,
        flush=True,
    )
    return run.paths.root


# --------------------------------------------------------------------------- the step loop
def _loop(
    run: RunState,
    saver: CheckpointSaver,
    logger: RunLogger,
    val_sets: dict[str, ValSet],
    stop_at_step: int | None,
) -> None:
    """Optimizer steps until ``train.max_steps``/``epochs`` or ``stop_at_step``; each is
    ``grad_accum_steps`` micro-batches, then logging, validation and checkpoints when due."""
    t_cfg, accum = run.cfg.train, run.accum
    stop = stop_at_step is not None and run.step >= stop_at_step
    while run.step < run.total_steps and not stop:
        run.sampler.set_epoch(run.epoch, skip=run.pos * accum * t_cfg.batch_size)
        logger.start_epoch()
        micro = 0
        loss_acc = torch.zeros((), device=run.info.device, dtype=torch.float32)
        epoch_done = False
        for clean_u8, ref_u8 in run.loader:
            if micro == 0:
                lr_now, wd_now = run.scheduler.set_step(run.step)
            loss_acc += _micro_step(run, clean_u8, ref_u8, micro)
            micro += 1
            if micro < accum:
                continue
            micro = 0
            loss_value = _mean_loss(run, loss_acc / accum, saver)
            loss_acc = torch.zeros((), device=run.info.device, dtype=torch.float32)
            grad_norm = run.stepper.step()
            if run.ema is not None:
                run.ema.update(run.model)
            run.step += 1
            run.pos += 1
            epoch_done = run.pos >= run.steps_per_epoch
            if epoch_done:
                run.epoch, run.pos = run.epoch + 1, 0
            logger.train_step(
                run.step, run.epoch, loss=loss_value, lr=lr_now, wd=wd_now, grad_norm=grad_norm
            )
            finished = run.step >= run.total_steps
            stop = stop_at_step is not None and run.step >= stop_at_step
            val_due = (
                (t_cfg.val_every is not None and run.step % t_cfg.val_every == 0)
                or (t_cfg.val_every is None and epoch_done)
                or finished
            )
            if val_due:
                _validate_and_save(run, saver, logger, val_sets)
            elif stop or (
                t_cfg.save_every_steps is not None and run.step % t_cfg.save_every_steps == 0
            ):
                saver.save_latest(run)
            if finished or stop or epoch_done:
                break
        else:  # the loader ran out before the epoch's last step (cannot happen normally)
            if not epoch_done:
                run.epoch, run.pos = run.epoch + 1, 0


def _micro_step(run: RunState, clean_u8: Tensor, ref_u8: Tensor, micro: int) -> Tensor:
    """Forward and backward of one micro-batch (gradients synchronised under DDP on the last
    micro-batch of the step only); returns the detached loss."""
    cfg, info, t_cfg = run.cfg, run.info, run.cfg.train
    torch.manual_seed(derive_seed(t_cfg.seed, DROPOUT_TAG, info.rank, run.step, micro))
    gen = make_generator(
        info.device, derive_seed(t_cfg.seed, DAMAGE_TAG, info.rank, run.step, micro)
    )
    x, target = make_batch(
        clean_u8,
        ref_u8,
        damage=run.damage,
        generator=gen,
        device=info.device,
        img_size=cfg.data.img_size,
        use_reference=cfg.data.use_reference,
        reference_dropout=cfg.data.reference_dropout,
        reference_mismatch=cfg.data.reference_mismatch,
        style=run.style,
        clean_fraction=cfg.data.clean_fraction,
        reference_style=run.reference_style,
        reference_fit=cfg.data.reference_fit,
    )
    if t_cfg.channels_last:
        x = x.contiguous(memory_format=torch.channels_last)
    last_micro = micro == run.accum - 1
    no_sync = run.ddp is not None and not last_micro
    with run.ddp.no_sync() if no_sync else contextlib.nullcontext():
        amp_dtype = cfg.amp_dtype
        with torch.autocast(info.device.type, dtype=amp_dtype, enabled=amp_dtype is not None):
            out = run.forward(x)
        if t_cfg.mask_weight > 0:
            loss = composite_mask_loss(
                out,
                x,
                target,
                run.criterion,
                t_cfg.mask_weight,
                t_cfg.mask_tolerance,
                t_cfg.mask_forgive,
                t_cfg.mask_forgiven,
                t_cfg.content_weight,
            )
        else:
            loss, _ = run.criterion(out, target)
        run.stepper.backward(loss / run.accum)
    return loss.detach()


def _mean_loss(run: RunState, loss: Tensor, saver: CheckpointSaver) -> float:
    """The step's loss averaged over ranks; ``NonFiniteLossError`` (before any update) when it
    is NaN or infinite."""
    stat = loss.reshape(1).double()
    all_reduce_sum(stat, run.info)
    value = float(stat.item()) / run.info.world_size
    if not math.isfinite(value):
        raise NonFiniteLossError(
            f"non-finite training loss ({value}) at step {run.step + 1} "
            f"(epoch {run.epoch}); stopped without saving: {saver.where_to_resume()}. Lower "
            "optim.lr, set optim.clip_grad or use train.amp=none/bf16, then resume."
        )
    return value


def _validate_and_save(
    run: RunState, saver: CheckpointSaver, logger: RunLogger, val_sets: dict[str, ValSet]
) -> None:
    val = evaluate_sets(
        run.export_model,
        val_sets,
        run.criterion,
        run.info,
        amp_dtype=run.cfg.amp_dtype,
        channels_last=run.cfg.train.channels_last,
    )
    is_best, in_k = saver.record_validation(run.step, val)
    logger.validation(run.step, run.epoch, val, is_best)
    saver.save(run, val, is_best=is_best, in_best_k=in_k)


# --------------------------------------------------------------------------- command
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
