"""Batched damage for training: :class:`TorchDamage` applies a :class:`DamageConfig`'s ops on the
device.

The batched torch twins of the numpy ops (:mod:`restoreae.damage.ops`) live by family in
:mod:`restoreae.damage.torch_seed_ops` (the seed's ops) and :mod:`restoreae.damage.torch_real_ops`
(real stone/paper damage); importing this module attaches them to :data:`DAMAGE_OPS`. Every op is
``fn(x, generator, **params) -> x`` on ``float32 (B, 1, H, W)`` in ``[0, 1]``, white ink (1) on
black (0), computed on ``x.device``; each sample draws its own random parameters from
``generator`` (drawn on the generator's device, so a CPU generator also drives GPU tensors).
"""

from __future__ import annotations

import torch

from restoreae.damage import torch_real_ops as torch_real_ops  # attaches the real-damage twins
from restoreae.damage import torch_seed_ops as torch_seed_ops  # attaches the seed ops' twins
from restoreae.damage.pipeline import DamageConfig
from restoreae.damage.registry import get_damage_op
from restoreae.damage.torch_kernels import rand, randint

Tensor = torch.Tensor


class TorchDamage:
    """Batched damage for training: ``damage(x, generator) -> float (B, 1, H, W)`` in [0, 1].

    ``x`` is ``float (B, 1, H, W)`` in [0, 1], white ink on black, on any device; it is not
    modified (computed in float32, returned in ``x``'s dtype). Each sample gets its own random choice of ``k`` distinct ops of the config's pool
    (``k`` per sample when the config gives a range), applied in a random order; the ops run on
    the sub-batch of samples that chose them at each step, so there is no loop over samples.
    Deterministic for a given generator state.
    """

    def __init__(self, config: DamageConfig | None = None) -> None:
        self.config = config if config is not None else DamageConfig()
        self.ops = list(self.config.ops)
        self._fns = []
        for name in self.ops:
            spec = get_damage_op(name)
            if spec.torch_fn is None:
                raise ValueError(f"damage op {name!r} has no torch implementation")
            self._fns.append(spec.torch_fn)
        self._params = [self.config.op_params(name) for name in self.ops]

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return self.apply(x, generator)[0]

    def apply(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``(damaged (B, 1, H, W), chosen (B, k_max) int64)``: the op indices (into
        ``self.ops``) each sample got, in order of application; -1 marks unused steps."""
        if x.ndim != 4 or x.shape[1] != 1 or not x.is_floating_point():
            raise ValueError(f"expected float (B, 1, H, W), got {x.dtype} {tuple(x.shape)}")
        b, dev = x.shape[0], x.device
        lo, hi = self.config.k_range
        order = torch.argsort(rand(generator, (b, len(self.ops)), dev), dim=1)[:, :hi]
        k = randint(generator, (b,), (lo, hi), dev)
        chosen = torch.where(torch.arange(hi, device=dev)[None] < k[:, None], order, -1)
        out = x.float().clone()  # the ops compute in float32; the result is cast back
        for step in range(hi):
            col = chosen[:, step]
            for j, (fn, params) in enumerate(zip(self._fns, self._params, strict=True)):
                idx = torch.nonzero(col == j).squeeze(1)
                if idx.numel():
                    out[idx] = fn(out[idx], generator, **params).clamp(0.0, 1.0)
        return out.to(x.dtype), chosen

    def apply_op(self, name: str, x: Tensor, generator: torch.Generator) -> Tensor:
        """Apply the single op ``name`` (with this config's parameters) to every sample."""
        spec = get_damage_op(name)
        if spec.torch_fn is None:
            raise ValueError(f"damage op {name!r} has no torch implementation")
        out = spec.torch_fn(x.float(), generator, **self.config.op_params(name))
        return out.clamp(0.0, 1.0).to(x.dtype)


class TorchDamageMix:
    """Several damage configs in one batch: ``damage(x, generator) -> float (B, 1, H, W)``.

    ``parts``: ``[(config, share), …]`` with shares summing to 1 (see
    :func:`~restoreae.damage.pipeline.resolve_mix`). Each sample draws which config damages it
    (one uniform draw per sample), then each config's :class:`TorchDamage` runs on the sub-batch
    that drew it. ``x``: float (B, 1, H, W) in [0, 1], white ink on black, not modified.
    Deterministic for a given generator state.
    """

    def __init__(self, parts: list[tuple[DamageConfig, float]]) -> None:
        if not parts:
            raise ValueError("a damage mix needs at least one config")
        self.damages = [TorchDamage(cfg) for cfg, _ in parts]
        shares = torch.tensor([share for _, share in parts], dtype=torch.float64)
        self._edges = (torch.cumsum(shares, 0) / shares.sum()).float()

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 1 or not x.is_floating_point():
            raise ValueError(f"expected float (B, 1, H, W), got {x.dtype} {tuple(x.shape)}")
        u = rand(generator, (x.shape[0],), x.device)
        part = torch.bucketize(u, self._edges.to(x.device), right=True).clamp(
            max=len(self.damages) - 1
        )
        out = x.clone()
        for j, damage in enumerate(self.damages):
            idx = torch.nonzero(part == j).squeeze(1)
            if idx.numel():
                out[idx] = damage(x[idx], generator)
        return out


def build_torch_damage(parts: list[tuple[DamageConfig, float]]) -> TorchDamage | TorchDamageMix:
    """:class:`TorchDamage` for one config, :class:`TorchDamageMix` for several."""
    return TorchDamage(parts[0][0]) if len(parts) == 1 else TorchDamageMix(parts)
