"""What a training run reports: the tqdm bar, ``log.jsonl``, TensorBoard and messages (rank 0).

Other ranks get a logger that writes nothing, so the loop never asks which rank it is on.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

from restoreae.train import checkpoint as ckpt
from restoreae.train.distributed import DistInfo


def log_main(info: DistInfo, msg: str) -> None:
    """Print ``msg`` on stderr from rank 0 (through tqdm, so a progress bar stays intact)."""
    if info.is_main:
        from tqdm import tqdm

        tqdm.write(msg, file=sys.stderr)


class RunLogger:
    """Progress bar, ``log.jsonl`` records, TensorBoard scalars and the images/s meter.

    ``step``: the step training starts from; TensorBoard events after it (written by a killed
    run after its last checkpoint) are dropped and replayed (``purge_step``).
    """

    def __init__(
        self,
        info: DistInfo,
        log_path: Path,
        tb_dir: Path,
        *,
        step: int,
        total_steps: int,
        log_every: int,
        global_batch: int,
        progress: bool,
    ) -> None:
        from tqdm import tqdm

        self.info, self.log_path = info, log_path
        self.log_every, self.global_batch = log_every, global_batch
        self.tb: Any = None
        if info.is_main:
            from torch.utils.tensorboard import SummaryWriter

            self.tb = SummaryWriter(str(tb_dir), purge_step=step + 1)
        self.bar = tqdm(
            total=total_steps,
            initial=step,
            disable=not (info.is_main and progress),
            dynamic_ncols=True,
            unit="step",
            file=sys.stderr,
        )
        self.img_per_s = 0.0
        self._t0 = time.perf_counter()

    def start_epoch(self) -> None:
        """Restart the step timer (the data loader's start-up is not a step's time)."""
        self._t0 = time.perf_counter()

    def message(self, msg: str) -> None:
        log_main(self.info, msg)

    def train_step(
        self,
        step: int,
        epoch: int,
        *,
        loss: float,
        lr: float,
        wd: float,
        grad_norm: float | None,
    ) -> None:
        """After optimizer step ``step``: update the meter; bar on rank 0, and every
        ``train.log_every`` steps (and step 1) a ``train`` record and TensorBoard scalars."""
        now = time.perf_counter()
        rate = self.global_batch / max(now - self._t0, 1e-9)
        self._t0 = now
        self.img_per_s = rate if self.img_per_s == 0 else 0.9 * self.img_per_s + 0.1 * rate
        if not self.info.is_main:
            return
        self.bar.update(1)
        self.bar.set_postfix(loss=f"{loss:.4f}", lr=f"{lr:.2e}", img_s=f"{self.img_per_s:.0f}")
        if step % self.log_every != 0 and step != 1:
            return
        rec: dict[str, Any] = {
            "type": "train",
            "step": step,
            "epoch": epoch,
            "loss": loss,
            "lr": lr,
            "wd": wd,
            "img_per_s": self.img_per_s,
        }
        if grad_norm is not None:
            rec["grad_norm"] = grad_norm
        ckpt.append_log(self.log_path, rec)
        scalars = {"loss": loss, "lr": lr, "wd": wd, "img_per_s": self.img_per_s}
        if grad_norm is not None:
            scalars["grad_norm"] = grad_norm
        for name, value in scalars.items():
            self.tb.add_scalar(f"train/{name}", value, step)

    def validation(self, step: int, epoch: int, val: dict[str, float], is_best: bool) -> None:
        """A ``val`` record, TensorBoard scalars and a message (rank 0)."""
        if not self.info.is_main:
            return
        ckpt.append_log(
            self.log_path, {"type": "val", "step": step, "epoch": epoch, **val, "best": is_best}
        )
        self.tb.add_scalar("val/loss", val["loss"], step)
        self.tb.add_scalar("val/psnr", val["psnr"], step)
        per_set = {k[5:-1]: v for k, v in val.items() if k.startswith("psnr[")}
        for name, value in per_set.items():
            self.tb.add_scalar(f"val/psnr/{name.replace(':', '_')}", value, step)
        sets = ", ".join(f"{name} {value:.2f}" for name, value in per_set.items())
        self.message(
            f"step {step} epoch {epoch}: val loss {val['loss']:.5f} "
            f"PSNR {val['psnr']:.2f} dB"
            + (f" (mean of {sets})" if sets else "")
            + (" (best)" if is_best else "")
        )

    def close(self) -> None:
        self.bar.close()
        if self.tb is not None:
            self.tb.close()
