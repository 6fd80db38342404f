"""``CheckpointSaver``: the best validation PSNR, the best-k list, the last saved step, and saving.

As timm's ``CheckpointSaver``: the training loop reports validations and asks for checkpoints;
the saver decides what is best, what enters the best k (``train.keep_best_k``), and writes the
run folder through :mod:`restoreae.train.checkpoint` (weights first, state last, atomically) on
rank 0, then waits for every rank. The state file's keys and format are those of
:func:`restoreae.train.checkpoint.save_state` (runs started by earlier versions resume).
"""

from __future__ import annotations

import math
from typing import Any, Protocol

from torch import nn

from restoreae.train import checkpoint as ckpt
from restoreae.train.distributed import DistInfo, barrier
from restoreae.train.ema import ModelEma
from restoreae.train.schedule import LrWdScheduler
from restoreae.train.step import OptimizerStep


class Progress(Protocol):
    """Where training stands (the fields the saver reads from the run state)."""

    step: int
    epoch: int
    pos: int


class CheckpointSaver:
    """Owns ``best_psnr``, ``best_k`` (``[[psnr, step], ...]``, best first), ``last_val`` (the last
    validation's figures) and ``last_saved_step`` (None until something is saved or resumed).

    ``state``: the training state being resumed (its best figures carry on), or None.
    """

    def __init__(
        self,
        *,
        paths: ckpt.RunPaths,
        info: DistInfo,
        config: dict[str, Any],
        manifest: dict,
        img_size: int,
        in_chans: int,
        keep_best_k: int,
        model: nn.Module,
        export_model: nn.Module,
        optimizer: Any,
        scheduler: LrWdScheduler,
        stepper: OptimizerStep,
        ema: ModelEma | None,
        state: dict[str, Any] | None = None,
    ) -> None:
        self.paths, self.info, self.config = paths, info, config
        self.manifest, self.img_size, self.in_chans = manifest, img_size, in_chans
        self.keep_best_k = keep_best_k
        self.model, self.export_model = model, export_model
        self.optimizer, self.scheduler, self.stepper, self.ema = optimizer, scheduler, stepper, ema
        self.best_psnr = -math.inf
        self.best_k: list[list[float]] = []
        self.last_val: dict[str, float] | None = None
        self.last_saved_step: int | None = None
        if state is not None:
            self.best_psnr = float(state["best_psnr"])
            self.best_k = [list(e) for e in state.get("best_k", [])]
            self.last_val = state.get("last_val")
            self.last_saved_step = int(state["step"])

    def metadata(self, progress: Progress, val: dict[str, float] | None) -> dict[str, Any]:
        """Metadata of the exported weights at ``progress`` (see ``checkpoint.export_metadata``)."""
        return ckpt.export_metadata(
            img_size=self.img_size,
            in_chans=self.in_chans,
            manifest=self.manifest,
            step=progress.step,
            epoch=progress.epoch,
            val=val,
            ema=self.ema is not None,
            reference_fit="box" if self.config.get("data", {}).get("reference_fit") else None,
        )

    def ensure_last_weights(self, progress: Progress) -> None:
        """On resume (rank 0): rewrite ``weights/last`` when it is not from the state's step (a
        run killed between writing the weights and the state)."""
        meta = ckpt.read_weights_metadata(self.paths.last_weights)
        if meta is None or int(meta.get("step", -1)) != progress.step:
            ckpt.save_weights(
                self.export_model, self.paths.last_weights, self.metadata(progress, self.last_val)
            )

    def record_validation(self, step: int, val: dict[str, float]) -> tuple[bool, bool]:
        """Take a validation's figures; return ``(is_best, in_best_k)`` for this step."""
        is_best = val["psnr"] > self.best_psnr
        if is_best:
            self.best_psnr = val["psnr"]
        self.best_k, in_k = ckpt.update_best_k(self.best_k, step, val["psnr"], self.keep_best_k)
        self.last_val = val
        return is_best, in_k

    def save(
        self,
        progress: Progress,
        val: dict[str, float] | None = None,
        *,
        is_best: bool = False,
        in_best_k: bool = False,
    ) -> None:
        """Write the checkpoint at ``progress`` (rank 0), then wait for every rank."""
        if self.info.is_main:
            state = {
                "step": progress.step,
                "epoch": progress.epoch,
                "pos": progress.pos,
                "best_psnr": self.best_psnr,
                "best_k": self.best_k,
                "last_val": val,
                "model": self.model.state_dict(),
                "optimizer": self.optimizer.state_dict(),
                "scheduler": self.scheduler.state_dict(),
                "scaler": self.stepper.state_dict(),
                "ema": self.ema.state_dict() if self.ema is not None else None,
                "rng": ckpt.rng_state(),
                "config": self.config,
                "world_size": self.info.world_size,
            }
            ckpt.save_checkpoint(
                self.paths,
                self.export_model,
                state,
                self.metadata(progress, val),
                is_best=is_best,
                in_best_k=in_best_k,
            )
        self.last_saved_step = progress.step
        barrier(self.info)

    def save_latest(self, progress: Progress) -> None:
        """A checkpoint between validations (``train.save_every_steps``, ``stop_at_step``)."""
        self.save(progress, self.last_val)

    def where_to_resume(self) -> str:
        """For error messages: the last good checkpoint, or that none was saved yet."""
        if self.last_saved_step is None:
            return "no checkpoint had been saved yet"
        return f"the last good checkpoint is {self.paths.last_state} (step {self.last_saved_step})"
