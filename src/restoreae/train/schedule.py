"""Per-optimizer-step schedules: cosine learning rate with linear warm-up, cosine weight decay.

Schedules are pure functions of the step, so a resumed run sets exactly the values an
uninterrupted run would have used. Not timm's ``CosineLRScheduler``: it has no weight-decay
schedule and warms up from ``warmup_lr_init`` with another formula, so recipes would change.
"""

from __future__ import annotations

import math
from typing import Any

import torch


def cosine_with_warmup(
    step: int, *, base: float, final: float, total_steps: int, warmup_steps: int = 0
) -> float:
    """Value at optimizer step ``step`` (0-based) of a linear warm-up then cosine schedule.

    - warm-up (``step < warmup_steps``): ``base * (step + 1) / warmup_steps`` (reaches ``base`` at
      ``warmup_steps - 1``);
    - then a half cosine from ``base`` at ``warmup_steps`` to ``final`` at ``total_steps - 1``;
    - ``final`` from ``total_steps - 1`` on.
    """
    if total_steps < 1:
        raise ValueError(f"total_steps must be >= 1, got {total_steps}")
    warmup_steps = max(0, min(warmup_steps, total_steps))
    if step < warmup_steps:
        return base * (step + 1) / warmup_steps
    span = total_steps - warmup_steps - 1
    if span <= 0:
        return base if step < total_steps else final
    t = min(1.0, max(0.0, (step - warmup_steps) / span))
    return final + 0.5 * (base - final) * (1.0 + math.cos(math.pi * t))


class LrWdScheduler:
    """Sets learning rate and weight decay of an optimizer's parameter groups for each step.

    Groups with ``apply_wd=False`` (norms, biases) keep weight decay 0. A group's ``lr_scale``
    (default 1) multiplies the learning rate.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        *,
        lr: float,
        min_lr: float,
        weight_decay: float,
        weight_decay_end: float | None,
        total_steps: int,
        warmup_steps: int,
    ) -> None:
        self.optimizer = optimizer
        self.lr = lr
        self.min_lr = min(min_lr, lr)
        self.weight_decay = weight_decay
        self.weight_decay_end = weight_decay if weight_decay_end is None else weight_decay_end
        self.total_steps = total_steps
        self.warmup_steps = warmup_steps
        self.last_step = -1

    def lr_at(self, step: int) -> float:
        return cosine_with_warmup(
            step,
            base=self.lr,
            final=self.min_lr,
            total_steps=self.total_steps,
            warmup_steps=self.warmup_steps,
        )

    def wd_at(self, step: int) -> float:
        return cosine_with_warmup(
            step, base=self.weight_decay, final=self.weight_decay_end, total_steps=self.total_steps
        )

    def set_step(self, step: int) -> tuple[float, float]:
        """Apply the values for optimizer step ``step``; return ``(lr, weight_decay)``."""
        lr, wd = self.lr_at(step), self.wd_at(step)
        for group in self.optimizer.param_groups:
            group["lr"] = lr * group.get("lr_scale", 1.0)
            group["weight_decay"] = wd if group.get("apply_wd", True) else 0.0
        self.last_step = step
        return lr, wd

    def state_dict(self) -> dict[str, Any]:
        return {
            "lr": self.lr,
            "min_lr": self.min_lr,
            "weight_decay": self.weight_decay,
            "weight_decay_end": self.weight_decay_end,
            "total_steps": self.total_steps,
            "warmup_steps": self.warmup_steps,
            "last_step": self.last_step,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the position only; the schedule's shape comes from the (current) config."""
        self.last_step = int(state.get("last_step", -1))
