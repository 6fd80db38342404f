"""Damage stage: a registry of damage ops with numpy/OpenCV (uint8) and batched torch versions.

Importing this package registers the built-in numpy ops; ``TorchDamage`` (which imports torch and
attaches the torch versions) is loaded lazily.
"""

from __future__ import annotations

from restoreae.damage import ops as ops  # registers the built-in numpy ops
from restoreae.damage.pipeline import (
    PRESETS,
    REAL_WORLD_OPS,
    SEED_OPS,
    DamageConfig,
    DamagePipeline,
)
from restoreae.damage.registry import (
    DAMAGE_OPS,
    DamageOp,
    get_damage_op,
    list_damage_ops,
    register_damage,
    register_torch_damage,
)
from restoreae.lazy import lazy_exports

__all__ = [
    "DAMAGE_OPS",
    "PRESETS",
    "REAL_WORLD_OPS",
    "SEED_OPS",
    "DamageConfig",
    "DamageOp",
    "DamagePipeline",
    "TorchDamage",
    "get_damage_op",
    "list_damage_ops",
    "register_damage",
    "register_torch_damage",
]


__getattr__, __dir__ = lazy_exports(globals(), {"TorchDamage": "torch_ops"})
