"""Model registry and factory (timm style: ``@register_model`` + ``create_model``).

A registered factory is ``fn(in_chans, img_size, latent_dim, **kwargs) -> nn.Module``.
:func:`create_model` calls it and records ``model.config`` (the name and every argument) so that
``create_model(**model.config)`` rebuilds the same architecture.
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from restoreae.errors import ConfigError

# Modules that register models; imported explicitly (no folder auto-import).
_MODEL_MODULES = ("restoreae.models.autoencoders", "restoreae.models.vit_mae")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its factory, ``kind`` and a one-line description."""

    name: str
    fn: Callable[..., nn.Module]
    kind: str
    description: str


_REGISTRY: dict[str, ModelSpec] = {}
KINDS = ("symmetric", "asymmetric", "unet", "vit")


def register_model(
    name: str | None = None, *, kind: str, description: str = ""
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering a model factory under ``name`` (default: the function's name)."""
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        if key in _REGISTRY and _REGISTRY[key].fn is not fn:
            raise ValueError(f"model {key!r} is already registered")
        doc = description or (inspect.getdoc(fn) or "").split("\n")[0]
        _REGISTRY[key] = ModelSpec(key, fn, kind, doc)
        return fn

    return deco


def _ensure_registered() -> None:
    for mod in _MODEL_MODULES:
        importlib.import_module(mod)


def list_models() -> list[str]:
    """Names of all registered models, sorted."""
    _ensure_registered()
    return sorted(_REGISTRY)


def get_model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; ``ConfigError`` listing the known names otherwise."""
    _ensure_registered()
    try:
        return _REGISTRY[name]
    except KeyError:
        raise ConfigError(
            f"unknown model {name!r}; available: {', '.join(sorted(_REGISTRY))}"
        ) from None


def create_model(
    name: str, in_chans: int = 2, img_size: int = 224, latent_dim: int = 512, **kwargs
) -> nn.Module:
    """Build the registered model ``name``.

    ``in_chans``: 1 (damaged glyph) or 2 (damaged + standard-font reference). ``img_size``: the
    training size (fixes the latent grid of the bottleneck AEs and the ViT positional grid; any
    input size still works). ``latent_dim``: size of the global latent vector (bottleneck AEs;
    recorded but unused by U-Nets and the ViT). Extra ``kwargs`` are model-specific; an unknown
    one raises ``ConfigError``. The model is returned in train mode with ``model.config`` set.
    """
    spec = get_model_spec(name)
    if in_chans not in (1, 2):
        raise ConfigError(f"in_chans must be 1 or 2, got {in_chans!r}")
    if not isinstance(img_size, int) or img_size < 32 or img_size % 32:
        raise ConfigError(f"img_size must be a positive multiple of 32, got {img_size!r}")
    if not isinstance(latent_dim, int) or latent_dim < 1:
        raise ConfigError(f"latent_dim must be a positive integer, got {latent_dim!r}")
    params = inspect.signature(spec.fn).parameters
    unknown = sorted(k for k in kwargs if k not in params)
    if unknown:
        allowed = sorted(k for k in params if k not in ("in_chans", "img_size", "latent_dim"))
        raise ConfigError(
            f"model {name!r} got unknown argument(s) {unknown}; allowed: {allowed or 'none'}"
        )
    model = spec.fn(in_chans=in_chans, img_size=img_size, latent_dim=latent_dim, **kwargs)
    model.config = {
        "name": name,
        "in_chans": in_chans,
        "img_size": img_size,
        "latent_dim": latent_dim,
        **kwargs,
    }
    model.kind = spec.kind
    return model
