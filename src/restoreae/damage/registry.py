"""Registry of damage ops.

A damage op has a name, default parameters and two implementations of the same kind of damage:

- numpy/OpenCV: ``fn(img, rng, **params) -> img`` on ``uint8 (H, W)`` glyphs, white ink (255) on
  black background (0); ``rng`` is a :class:`numpy.random.Generator`.
- torch (optional, attached on import of :mod:`restoreae.damage.torch_ops`, from
  :mod:`~restoreae.damage.torch_seed_ops` and :mod:`~restoreae.damage.torch_real_ops`):
  ``torch_fn(x, generator, **params) -> x`` on ``float32 (B, 1, H, W)`` in ``[0, 1]`` (same
  polarity), batched on ``x.device``; every sample draws its own random parameters from ``generator``.

Default parameters are the numpy function's keyword-only arguments; the torch twin declares the
same ones with the same annotations and defaults (checked when it is attached, so the two cannot
drift apart). A parameter that is a ``(lo, hi)`` tuple (:data:`Range`) is a range sampled per
image. Sizes are given relative to a 128 px image (or as fractions of the image side) so every op
works from 32 to 256 px.
"""

from __future__ import annotations

import dataclasses
import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from restoreae.registry import Registry

NumpyDamageFn = Callable[..., np.ndarray]
#: A damage parameter sampled per image: ``(lo, hi)`` (uniform; integers when both are ints) or a
#: fixed value.
Range = tuple[float, float] | float

__all__ = [
    "DAMAGE_OPS",
    "DamageOp",
    "Range",
    "get_damage_op",
    "list_damage_ops",
    "register_damage",
    "register_torch_damage",
]


@dataclasses.dataclass(frozen=True)
class DamageOp:
    """One registered damage op: ``fn`` (numpy), ``torch_fn`` (batched torch, or None),
    ``defaults`` (parameter name -> default value) and a one-line ``doc``."""

    name: str
    fn: NumpyDamageFn
    defaults: dict[str, Any]
    torch_fn: Callable[..., Any] | None = None
    doc: str = ""


def _ensure_builtin_ops() -> None:
    # The built-in ops register themselves on import of ops.py (no folder auto-import).
    from restoreae.damage import ops  # noqa: F401


#: The registered damage ops (a :class:`restoreae.registry.Registry` of :class:`DamageOp`).
DAMAGE_OPS: Registry[DamageOp] = Registry("damage op", loader=_ensure_builtin_ops)


def _keyword_defaults(fn: Callable[..., Any]) -> dict[str, Any]:
    params = inspect.signature(fn).parameters
    defaults: dict[str, Any] = {}
    for p in params.values():
        if p.kind is inspect.Parameter.KEYWORD_ONLY:
            if p.default is inspect.Parameter.empty:
                raise TypeError(f"damage op {fn.__name__}: parameter {p.name!r} needs a default")
            defaults[p.name] = p.default
    return defaults


def _keyword_signature(fn: Callable[..., Any]) -> dict[str, tuple[str, Any]]:
    """Keyword-only parameter name → (annotation as written, default)."""

    def written(a: Any) -> str:  # a string under ``from __future__ import annotations``
        return a if isinstance(a, str) else getattr(a, "__name__", str(a))

    return {
        p.name: (written(p.annotation), p.default)
        for p in inspect.signature(fn).parameters.values()
        if p.kind is inspect.Parameter.KEYWORD_ONLY
    }


def register_damage(name: str) -> Callable[[NumpyDamageFn], NumpyDamageFn]:
    """Decorator registering a numpy damage op under ``name``.

    The op's parameters are its keyword-only arguments with their defaults. The batched torch
    version is attached with :func:`register_torch_damage` (in :mod:`restoreae.damage.torch_seed_ops`
    or :mod:`restoreae.damage.torch_real_ops`, the torch twin's family).
    """

    def deco(fn: NumpyDamageFn) -> NumpyDamageFn:
        doc = (inspect.getdoc(fn) or "").split("\n\n")[0].replace("\n", " ")
        DAMAGE_OPS.register(name, DamageOp(name, fn, _keyword_defaults(fn), None, doc))
        return fn

    return deco


def register_torch_damage(name: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Decorator attaching a batched torch implementation to the already registered op ``name``.

    The torch function declares the numpy op's keyword-only parameters with the same annotations
    and defaults (it receives all of them); ``TypeError`` names the difference otherwise.
    """

    def deco(fn: Callable[..., Any]) -> Callable[..., Any]:
        op = DAMAGE_OPS.get_entry(name, where="register_torch_damage (no numpy op to attach to)")
        numpy_sig, torch_sig = _keyword_signature(op.fn), _keyword_signature(fn)
        if torch_sig != numpy_sig:
            diff = sorted(
                k
                for k in numpy_sig.keys() | torch_sig.keys()
                if numpy_sig.get(k) != torch_sig.get(k)
            )
            raise TypeError(
                f"torch damage op {name!r}: keyword parameters {diff} differ from the numpy op's "
                f"(numpy {[(k, *numpy_sig[k]) for k in diff if k in numpy_sig]}, "
                f"torch {[(k, *torch_sig[k]) for k in diff if k in torch_sig]})"
            )
        DAMAGE_OPS.replace(name, dataclasses.replace(op, torch_fn=fn))
        return fn

    return deco


def list_damage_ops() -> list[str]:
    """Names of all registered damage ops, in registration order."""
    return DAMAGE_OPS.names()


def get_damage_op(name: str) -> DamageOp:
    """The :class:`DamageOp` registered as ``name``; ``UnknownNameError`` (a ``KeyError`` and a
    ``ConfigError``) with a "did you mean" hint and the known ops otherwise."""
    return DAMAGE_OPS[name]
