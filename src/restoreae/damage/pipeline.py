"""Damage configuration and the numpy damage pipeline.

A :class:`DamageConfig` names a pool of ops, how many of them each image gets (``k``: a number,
or ``[lo, hi]`` for a random count) and per-op parameter overrides. :class:`DamagePipeline` picks
``k`` distinct ops of the pool per image and applies them in random order.

YAML form::

    ops: [erode_dilate, rectangles, blur, blob_noise]
    k: 3
    params:
      blur: {kernel: [3, 11]}
"""

from __future__ import annotations

import dataclasses
import os
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import yaml

from restoreae.damage.registry import DAMAGE_OPS, get_damage_op
from restoreae.errors import ConfigError

#: The seed's pool (RestoreAE-Zi: "3 of 4"); ``polygons`` is available but not in it.
SEED_OPS: tuple[str, ...] = ("erode_dilate", "rectangles", "blur", "blob_noise")
#: Real stone/paper damage added by restoreae.
REAL_WORLD_OPS: tuple[str, ...] = (
    "weathering",
    "cracks",
    "missing_chunk",
    "rubbing_grain",
    "ink_bleed",
    "low_contrast",
)
#: Built-in configs by name (mirrored by ``configs/damage/<name>.yaml``).
PRESETS: dict[str, dict[str, Any]] = {
    "seed": {"ops": list(SEED_OPS), "k": 3},
    "real": {"ops": [*SEED_OPS, "polygons", *REAL_WORLD_OPS], "k": [2, 4]},
}

_KEYS = ("ops", "k", "params")


def _normalise_value(where: str, default: Any, value: Any) -> Any:
    """Check an override against the default's form: a number or a ``[lo, hi]`` range."""

    def is_num(v: Any) -> bool:
        return isinstance(v, int | float) and not isinstance(v, bool)

    if isinstance(default, tuple):
        if is_num(value):
            return value
        if isinstance(value, list | tuple) and len(value) == 2 and all(map(is_num, value)):
            if value[0] > value[1]:
                raise ConfigError(f"{where}: range {list(value)} has lo > hi")
            return tuple(value)
        raise ConfigError(f"{where}: expected a number or [lo, hi], got {value!r}")
    if is_num(default):
        if not is_num(value):
            raise ConfigError(f"{where}: expected a number, got {value!r}")
        return value
    return value


@dataclasses.dataclass
class DamageConfig:
    """Damage pool: ``ops`` (registered names), ``k`` ops per image (int or ``(lo, hi)``
    inclusive), ``params`` (op name -> {param: value} overrides of the op's defaults)."""

    ops: list[str] = dataclasses.field(default_factory=lambda: list(SEED_OPS))
    k: int | tuple[int, int] = 3
    params: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)

    def __post_init__(self) -> None:
        self.validate()

    # ---------------------------------------------------------------- validation / resolution
    def validate(self, where: str = "damage") -> None:
        """Raise :class:`ConfigError` naming the key of any problem (``where`` prefixes it)."""
        if isinstance(self.ops, str) or not isinstance(self.ops, Sequence) or not self.ops:
            raise ConfigError(f"{where}.ops: expected a non-empty list of op names")
        for name in self.ops:
            DAMAGE_OPS.get_entry(name, where=f"{where}.ops")
        if len(set(self.ops)) != len(self.ops):
            raise ConfigError(f"{where}.ops: duplicate op names in {list(self.ops)}")
        self.ops = list(self.ops)
        k = self.k
        if isinstance(k, list | tuple):
            if len(k) != 2 or not all(isinstance(v, int) and not isinstance(v, bool) for v in k):
                raise ConfigError(f"{where}.k: expected an integer or [lo, hi], got {k!r}")
            lo, hi = k
            self.k = (lo, hi) if lo != hi else lo
        elif isinstance(k, int) and not isinstance(k, bool):
            lo, hi = k, k
        else:
            raise ConfigError(f"{where}.k: expected an integer or [lo, hi], got {k!r}")
        if lo < 1 or lo > hi:
            raise ConfigError(f"{where}.k: {k!r} must be >= 1 (and lo <= hi)")
        if hi > len(self.ops):
            raise ConfigError(f"{where}.k: {k!r} is more than the {len(self.ops)} ops in the pool")
        if not isinstance(self.params, Mapping):
            raise ConfigError(f"{where}.params: expected a mapping op -> {{param: value}}")
        clean: dict[str, dict[str, Any]] = {}
        for op_name, overrides in self.params.items():
            DAMAGE_OPS.get_entry(op_name, where=f"{where}.params.{op_name}")
            if overrides is None:
                overrides = {}
            if not isinstance(overrides, Mapping):
                raise ConfigError(f"{where}.params.{op_name}: expected a mapping param -> value")
            defaults = get_damage_op(op_name).defaults
            clean[op_name] = {}
            for key, value in overrides.items():
                if key not in defaults:
                    raise ConfigError(
                        f"{where}.params.{op_name}.{key}: unknown parameter of {op_name} "
                        f"(known: {', '.join(defaults)})"
                    )
                loc = f"{where}.params.{op_name}.{key}"
                clean[op_name][key] = _normalise_value(loc, defaults[key], value)
        self.params = clean

    @property
    def k_range(self) -> tuple[int, int]:
        """``(lo, hi)`` number of ops per image, inclusive."""
        return (self.k, self.k) if isinstance(self.k, int) else self.k

    def op_params(self, name: str) -> dict[str, Any]:
        """All parameters of op ``name``: its defaults updated by this config's overrides."""
        return {**get_damage_op(name).defaults, **self.params.get(name, {})}

    def only(self, name: str) -> DamageConfig:
        """One op alone: ``ops = [name]``, ``k = 1``, with this config's overrides of ``name``
        (its defaults otherwise) — the single-damage sets of eval and the quality suite."""
        params = {name: dict(self.params[name])} if name in self.params else {}
        return DamageConfig.from_dict({"ops": [name], "k": 1, "params": params})

    # ---------------------------------------------------------------------------- loading
    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, where: str = "damage") -> DamageConfig:
        """Build from a mapping with keys ``ops``, ``k``, ``params`` (all optional)."""
        data = dict(data or {})
        unknown = [key for key in data if key not in _KEYS]
        if unknown:
            raise ConfigError(f"{where}.{unknown[0]}: unknown key (expected one of {_KEYS})")
        cfg = cls.__new__(cls)
        cfg.ops = data.get("ops", list(SEED_OPS))
        cfg.k = data.get("k", 3)
        cfg.params = data.get("params") or {}
        cfg.validate(where)
        return cfg

    @classmethod
    def from_yaml(cls, path: str | os.PathLike) -> DamageConfig:
        """Load a YAML file; errors name the file and the key."""
        path = Path(path)
        try:
            data = yaml.safe_load(path.read_text(encoding="utf-8"))
        except OSError as exc:
            raise ConfigError(f"{path}: cannot read damage config ({exc.strerror})") from exc
        except yaml.YAMLError as exc:
            raise ConfigError(f"{path}: invalid YAML ({exc})") from exc
        if data is not None and not isinstance(data, Mapping):
            raise ConfigError(f"{path}: expected a mapping with keys {_KEYS}")
        return cls.from_dict(data, where=str(path))

    @classmethod
    def preset(cls, name: str) -> DamageConfig:
        """A built-in config: ``seed`` (the seed's 3 of 4) or ``real`` (all ops, 2-4 each)."""
        if name not in PRESETS:
            raise ConfigError(f"unknown damage preset {name!r} (known: {', '.join(PRESETS)})")
        return cls.from_dict(PRESETS[name], where=f"preset {name}")

    @classmethod
    def resolve(
        cls,
        spec: DamageConfig | Mapping[str, Any] | str | os.PathLike | None,
        where: str = "damage",
    ) -> DamageConfig:
        """The one damage-config resolver (CLI ``--damage``/``--config``, ``data.damage``).

        Precedence: ``None`` → the seed default (its 3 of 4 ops); a :class:`DamageConfig` → itself;
        a mapping → :meth:`from_dict`; a string or path whose text is a preset name (``seed``,
        ``real``) → that preset, even if a file of that name exists; ``"op:NAME"`` → op ``NAME``
        alone with the seed preset's parameters (:meth:`only`; the quality suite's one-op sets);
        any other string or path → a YAML file, which must exist. Errors are ``ConfigError`` and
        start with ``where``.
        """
        if spec is None:
            return cls()
        if isinstance(spec, DamageConfig):
            return spec
        if isinstance(spec, Mapping):
            return cls.from_dict(spec, where=where)
        if not isinstance(spec, str | os.PathLike):
            raise ConfigError(
                f"{where}: expected a preset name, a YAML path or a mapping, got {spec!r}"
            )
        if str(spec) in PRESETS:
            return cls.preset(str(spec))
        if isinstance(spec, str) and spec.startswith("op:"):
            DAMAGE_OPS.get_entry(spec[3:], where=f"{where}: '{spec}'")
            return cls.preset("seed").only(spec[3:])
        if not Path(spec).is_file():
            raise ConfigError(
                f"{where}: '{spec}' is neither a damage preset ({', '.join(PRESETS)}) "
                "nor an existing YAML file"
            )
        return cls.from_yaml(spec)

    def to_dict(self) -> dict[str, Any]:
        """Plain-YAML form (lists instead of tuples); ``from_dict(to_dict())`` round-trips."""

        def plain(v: Any) -> Any:
            return list(v) if isinstance(v, tuple) else v

        return {
            "ops": list(self.ops),
            "k": plain(self.k),
            "params": {
                op: {key: plain(v) for key, v in kv.items()} for op, kv in self.params.items()
            },
        }


def resolve_mix(spec: Any, where: str = "damage") -> list[tuple[DamageConfig, float]]:
    """A training damage spec → ``[(config, share), …]``, shares summing to 1.

    ``{"mix": {SPEC: share, …}}`` (inline, or a YAML file holding it) draws each sample's damage
    from one of several configs — e.g. ``{"mix": {"seed": 0.5, "real": 0.5}}``: half the glyphs
    get the seed's 3 of 4 ops, half 2–4 of the real pool; each ``SPEC`` is anything
    :meth:`DamageConfig.resolve` takes. Any other spec is one config with share 1. Errors are
    ``ConfigError`` and start with ``where``.
    """
    data = spec
    if isinstance(spec, str | os.PathLike) and str(spec).endswith((".yaml", ".yml")):
        path = Path(spec)
        if path.is_file():
            try:
                data = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"{where}: cannot read {path} ({exc})") from exc
    if not (isinstance(data, Mapping) and "mix" in data):
        return [(DamageConfig.resolve(spec, where=where), 1.0)]
    if data is not spec:
        where = f"{where} ({spec})"
    if set(data) != {"mix"}:
        raise ConfigError(f"{where}: a damage mix has only the key 'mix', got {sorted(data)}")
    mix = data["mix"]
    if not isinstance(mix, Mapping) or not mix:
        raise ConfigError(f"{where}.mix: expected a mapping {{damage spec: share}}, got {mix!r}")
    parts = []
    for name, share in mix.items():
        if isinstance(share, bool) or not isinstance(share, int | float) or not share > 0:
            raise ConfigError(f"{where}.mix.{name}: share must be a positive number, got {share!r}")
        parts.append((DamageConfig.resolve(name, where=f"{where}.mix.{name}"), float(share)))
    total = sum(share for _, share in parts)
    return [(cfg, share / total) for cfg, share in parts]


class DamagePipeline:
    """Numpy damage: ``pipeline(img, rng) -> (damaged, applied)``.

    ``img`` is ``uint8 (H, W)`` white on black; ``damaged`` is a new ``uint8 (H, W)``; ``applied``
    lists the op names in the order they were applied (``k`` distinct ops of the pool).
    """

    def __init__(self, config: DamageConfig | None = None) -> None:
        self.config = config if config is not None else DamageConfig()
        self._ops = [get_damage_op(name) for name in self.config.ops]
        self._params = [self.config.op_params(name) for name in self.config.ops]

    def __call__(self, img: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, list[str]]:
        if img.dtype != np.uint8 or img.ndim != 2:
            raise ValueError(f"expected a uint8 (H, W) image, got {img.dtype} {img.shape}")
        lo, hi = self.config.k_range
        k = int(rng.integers(lo, hi + 1)) if hi > lo else lo
        chosen = rng.permutation(len(self._ops))[:k]
        out = img
        for i in chosen:
            out = self._ops[i].fn(out, rng, **self._params[i])
        if out is img:
            out = img.copy()
        return out, [self._ops[i].name for i in chosen]

    def apply_op(self, name: str, img: np.ndarray, rng: np.random.Generator) -> np.ndarray:
        """Apply the single op ``name`` with this config's parameters."""
        return get_damage_op(name).fn(img, rng, **self.config.op_params(name))
