"""Model registry and factory (timm style: ``@register_model`` + ``create_model``).

A registered entry point is ``fn(*, in_chans, img_size, **options) -> nn.Module``; its ``kind``
(``symmetric``, ``asymmetric``, ``unet``, ``restoration``, ``vit``) and its model-specific
``options`` (keyword → default) are stored here, in its :class:`ModelSpec`, and nowhere else. :func:`create_model` checks
the arguments, calls it and records ``model.config`` (the name, ``in_chans``, ``img_size`` and the
options given) so that ``create_model(**model.config)`` rebuilds the same architecture.

Adding a model: write the entry point in a module of this package, decorate it with
``@register_model(kind=...)`` and list that module in :data:`MODEL_MODULES` (imported on the first
registry lookup, so that ``import restoreae.models`` stays light).
"""

from __future__ import annotations

import importlib
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from torch import nn

from restoreae.errors import ConfigError
from restoreae.registry import Registry

# Modules whose import registers models (explicit: no folder scan).
MODEL_MODULES = (
    "restoreae.models.autoencoders",
    "restoreae.models.nafnet",
    "restoreae.models.vit_mae",
)
KINDS = ("symmetric", "asymmetric", "unet", "restoration", "vit")
_UNIVERSAL = ("in_chans", "img_size")


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: entry point, ``kind``, description and its own options (→ default)."""

    name: str
    fn: Callable[..., nn.Module]
    kind: str
    description: str
    options: Mapping[str, Any] = field(default_factory=dict)


def _ensure_registered() -> None:
    for mod in MODEL_MODULES:
        importlib.import_module(mod)


#: The registered models (a :class:`restoreae.registry.Registry` of :class:`ModelSpec`).
MODELS: Registry[ModelSpec] = Registry("model", loader=_ensure_registered)


def signature_options(fn: Callable[..., nn.Module]) -> dict[str, Any]:
    """Keyword parameters of ``fn`` (a function or class) → defaults, without the universal ones."""
    params = inspect.signature(fn).parameters.values()
    return {
        p.name: p.default
        for p in params
        if p.name not in _UNIVERSAL and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY)
    }


def register_model(
    name: str | None = None,
    *,
    kind: str,
    description: str = "",
    options: Mapping[str, Any] | None = None,
) -> Callable[[Callable[..., nn.Module]], Callable[..., nn.Module]]:
    """Decorator registering an entry point under ``name`` (default: the function's name).

    ``options``: the model-specific keyword arguments and their defaults (default: read from the
    function's signature, without ``in_chans`` and ``img_size``). ``description`` defaults to the
    first line of the docstring.
    """
    if kind not in KINDS:
        raise ValueError(f"kind must be one of {KINDS}, got {kind!r}")

    def deco(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        key = name or fn.__name__
        doc = description or (inspect.getdoc(fn) or "").split("\n")[0]
        opts = dict(options) if options is not None else signature_options(fn)
        MODELS.register(key, ModelSpec(key, fn, kind, doc, opts))
        return fn

    return deco


def list_models(pattern: str | None = None) -> list[str]:
    """Names of the registered models, sorted; with ``pattern`` only those matching it as a
    shell-style wildcard (``fnmatch``, case-sensitive), as in ``timm.list_models("unet*")``."""
    return sorted(MODELS.names(pattern))


def get_model_spec(name: str) -> ModelSpec:
    """The :class:`ModelSpec` of ``name``; ``UnknownNameError`` (a ``ConfigError``) with a "did
    you mean" hint and the known names otherwise."""
    return MODELS[name]


def create_model(name: str, in_chans: int = 2, img_size: int = 224, **kwargs: Any) -> nn.Module:
    """Build the registered model ``name``.

    ``in_chans``: 1 (damaged glyph) or 2 (damaged + standard-font reference). ``img_size``: the
    training size (fixes the latent grid of the bottleneck AEs and the ViT positional grid; any
    input size still works). ``kwargs``: the model's own options (``get_model_spec(name).options``,
    e.g. ``latent_dim`` of the bottleneck AEs, ``residual`` of the U-Nets); an unknown one raises
    ``ConfigError`` listing the allowed ones. The model is returned in train mode with
    ``model.config`` and ``model.kind`` set.
    """
    spec = get_model_spec(name)
    if in_chans not in (1, 2):
        raise ConfigError(f"in_chans must be 1 or 2, got {in_chans!r}")
    if not isinstance(img_size, int) or img_size < 32 or img_size % 32:
        raise ConfigError(f"img_size must be a positive multiple of 32, got {img_size!r}")
    unknown = sorted(k for k in kwargs if k not in spec.options)
    if unknown:
        raise ConfigError(
            f"model {name!r} got unknown argument(s) {unknown}; "
            f"allowed: {sorted(spec.options) or 'none'}"
        )
    model = spec.fn(in_chans=in_chans, img_size=img_size, **kwargs)
    model.config = {"name": name, "in_chans": in_chans, "img_size": img_size, **kwargs}
    model.kind = spec.kind
    return model


def upgrade_config(config: Mapping[str, Any]) -> dict[str, Any]:
    """A model config written by an older version → one :func:`create_model` accepts.

    Before ``latent_dim`` became an option of the bottleneck AEs, every config carried it (U-Nets
    and the ViT ignored it): it is dropped for models without that option. Unknown names are left
    for :func:`create_model` to report.
    """
    config = dict(config)
    name = config.get("name")
    if "latent_dim" in config and isinstance(name, str):
        spec = MODELS.get(name)
        if spec is not None and "latent_dim" not in spec.options:
            del config["latent_dim"]
    return config


# Names whose architecture was redefined: weights saved under the key before the change fit the
# model now registered under the value (ae_mobilenetv3 became the seed-cost MobileNetV3-Small AE;
# the MobileNetV3-Large one it used to be is ae_mobilenetv3_large).
REDEFINED = {"ae_mobilenetv3": "ae_mobilenetv3_large"}
