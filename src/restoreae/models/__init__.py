"""restoreae.models: model registry + factory, timm-block autoencoders, U-Nets, ViT-MAE, weights I/O.

``create_model(name, in_chans=2, img_size=224, **options)`` builds any registered
model; every model maps float ``(B, in_chans, H, W)`` in [0, 1] (white ink on black; channel 0
damaged glyph, channel 1 optional reference) to ``(B, 1, H, W)`` in [0, 1], for any ``H, W``.
"""

from restoreae.models.io import count_params, gflops, load_model, save_model, widen_input
from restoreae.models.registry import create_model, list_models, register_model

DEFAULT_MODEL = "unet_mobilenetv3_small"

__all__ = [
    "DEFAULT_MODEL",
    "count_params",
    "create_model",
    "gflops",
    "list_models",
    "load_model",
    "register_model",
    "save_model",
    "widen_input",
]
