"""One object for the optimizer step: backward (loss-scaled under fp16), unscale, clip, step.

As MAE's ``NativeScalerWithGradNormCount`` and timm's ``NativeScaler``: the training loop calls
:meth:`OptimizerStep.backward` once per micro-batch and :meth:`OptimizerStep.step` once per
optimizer step, and never asks whether a gradient scaler is in use. Without ``train.amp: fp16``
the scaler is a disabled ``torch.amp.GradScaler``, whose ``scale``/``unscale_``/``update`` do
nothing and whose ``step`` is ``optimizer.step()``: the same arithmetic as no scaler at all.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import torch
from torch import Tensor


class OptimizerStep:
    """Backward, gradient clipping and the optimizer step, with an fp16 loss scaler or without.

    ``params``: the parameters whose global gradient norm ``clip_grad`` caps (None: no clipping).
    ``fp16``: scale the loss with a ``torch.amp.GradScaler`` on ``device_type``.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        params: Iterable[torch.nn.Parameter],
        *,
        clip_grad: float | None,
        fp16: bool,
        device_type: str,
    ) -> None:
        self.optimizer = optimizer
        self.params = list(params)
        self.clip_grad = clip_grad
        self.scaler = torch.amp.GradScaler(device_type, enabled=fp16)

    def backward(self, loss: Tensor) -> None:
        """Accumulate the gradients of ``loss`` (scaled when fp16)."""
        self.scaler.scale(loss).backward()

    def step(self) -> float | None:
        """Unscale, clip, step, update the scale, zero the gradients.

        Returns the global gradient norm before clipping (None when not clipping). Under fp16 a
        step whose gradients overflowed is skipped by the scaler, which lowers its scale.
        """
        grad_norm = None
        if self.clip_grad is not None:
            self.scaler.unscale_(self.optimizer)
            grad_norm = float(torch.nn.utils.clip_grad_norm_(self.params, self.clip_grad))
        self.scaler.step(self.optimizer)
        self.scaler.update()
        self.optimizer.zero_grad(set_to_none=True)
        return grad_norm

    def state_dict(self) -> dict[str, Any] | None:
        """The scaler's state for the training state file (None without fp16, as before)."""
        return self.scaler.state_dict() if self.scaler.is_enabled() else None

    def load_state_dict(self, state: dict[str, Any] | None) -> None:
        """Restore :meth:`state_dict` (ignored without fp16 or when the saved run had none)."""
        if self.scaler.is_enabled() and state:
            self.scaler.load_state_dict(state)
