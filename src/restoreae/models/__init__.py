"""restoreae.models: model registry + factory, timm-block autoencoders, U-Nets, ViT-MAE, weights I/O.

``create_model(name, in_chans=2, img_size=224, **options)`` builds any registered
model; every model maps float ``(B, in_chans, H, W)`` in [0, 1] (white ink on black; channel 0
damaged glyph, channel 1 optional reference) to ``(B, K, H, W)`` in [0, 1] (K = 1: the restored
glyph), for any ``H, W``. :mod:`restoreae.models.weights` resolves model specs (shipped names, run
folders, files) without importing torch. The public names below are imported lazily.
"""

from __future__ import annotations

from restoreae.lazy import lazy_exports

#: The architecture of the CPU default model (a registry name, not a weights file).
DEFAULT_MODEL = "unet_mobilenetv3_small"

_EXPORTS = {
    "count_params": "io",
    "gflops": "io",
    "load_model": "io",
    "save_model": "io",
    "widen_input": "io",
    "create_model": "registry",
    "list_models": "registry",
    "register_model": "registry",
    "ModelSource": "weights",
    "RunPaths": "weights",
    "resolve_weights": "weights",
}

__all__ = ["DEFAULT_MODEL", *sorted(_EXPORTS)]


__getattr__, __dir__ = lazy_exports(globals(), _EXPORTS)
