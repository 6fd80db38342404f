"""Exponential moving average of a model's weights (its copy is what best/last export).

Not timm's ``ModelEmaV3``: its decay warm-up (``1 - (1 + n / gamma) ** -power``) differs from
ours (``(1 + n) / (10 + n)``), which the shipped recipe and the exact-resume tests rely on.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn


class ModelEma:
    """Keeps ``module``, an EMA copy of a model: ``ema = d * ema + (1 - d) * weights``.

    The effective decay warms up as ``min(decay, (1 + n) / (10 + n))`` after ``n`` updates so
    short runs are not dominated by the initial weights. Integer buffers (e.g. BatchNorm's
    ``num_batches_tracked``) are copied.
    """

    def __init__(self, model: nn.Module, decay: float) -> None:
        self.module = copy.deepcopy(model).eval()
        for p in self.module.parameters():
            p.requires_grad_(False)
        self.decay = decay
        self.num_updates = 0

    def current_decay(self) -> float:
        n = self.num_updates
        return min(self.decay, (1.0 + n) / (10.0 + n))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        d = self.current_decay()
        src = model.state_dict()
        for name, ema_v in self.module.state_dict().items():
            v = src[name].detach()
            if ema_v.is_floating_point():
                ema_v.lerp_(v.to(ema_v.dtype), 1.0 - d)
            else:
                ema_v.copy_(v)
        self.num_updates += 1

    def state_dict(self) -> dict[str, Any]:
        return {
            "module": self.module.state_dict(),
            "decay": self.decay,
            "num_updates": self.num_updates,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.module.load_state_dict(state["module"])
        self.num_updates = int(state["num_updates"])
