"""Convolutional autoencoders on timm encoders: bottleneck AEs (symmetric / asymmetric) and U-Nets.

One class, :class:`ConvAutoencoder`, covers all of them:

* encoder: ``timm.create_model(<encoder>, features_only=True, in_chans=..., pretrained=False)``
  (MobileNetV3 / EfficientNetV2 / ConvNeXt-T), total stride 32;
* bottleneck AEs (``skips=False``): the stride-32 map goes through a :class:`LatentBottleneck`
  (global latent vector of ``latent_dim``), then a decoder that never sees the input again;
* U-Nets (``skips=True``): no latent vector; every decoder stage concatenates the encoder feature
  of the same stride, and the full-resolution head concatenates the (padded) input image;
* the decoder stages up-sample ×2 from stride 32 to stride 2 with blocks of the encoder's family
  (see :mod:`restoreae.models.blocks`), and a head brings stride 2 back to full resolution.

Input float ``(B, in_chans, H, W)`` in [0, 1] (channel 0 damaged glyph, channel 1 optional
reference; white ink on black) → output ``(B, 1, H, W)`` in [0, 1]; any ``H, W`` (padded to a
multiple of 32 and cropped back by :class:`RestoreNet`).

Each registered model is one row of :data:`VARIANTS` (kind, encoder, decoder shape) plus a
three-line entry point, as timm does; a new variant is a new row and a new entry point.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import timm
import torch
from timm.layers import LayerNorm2d
from torch import nn

from restoreae.errors import ConfigError
from restoreae.models.blocks import (
    ConvNormAct,
    DecoderStage,
    Head,
    LatentBottleneck,
    RestoreNet,
    _act,
    make_block,
)
from restoreae.models.registry import register_model

DEC_STRIDES = (16, 8, 4, 2)


class ConvAutoencoder(RestoreNet):
    """timm encoder + mirrored decoder, with a latent bottleneck or with U-Net skips.

    ``encoder``: a timm model name. ``dec_chans``/``dec_depths``: decoder channels / number of
    blocks at strides (32, 16, 8, 4, 2). ``head_chans``: channels of the full-resolution head.
    ``light``: smaller expansion ratios in decoder blocks. ``latent_dim``: size of the global
    latent vector and ``latent_chans``: channels of the map flattened into it (bottleneck AEs
    only; ignored by U-Nets). ``subpixel_head``: run the head at stride 2 and
    ``pixel_shuffle`` its output (see :class:`Head`).
    """

    def __init__(
        self,
        *,
        family: str,
        encoder: str,
        in_chans: int,
        img_size: int,
        dec_chans: Sequence[int],
        dec_depths: Sequence[int],
        head_chans: int,
        skips: bool,
        light: bool = False,
        latent_dim: int = 512,
        latent_chans: int = 32,
        residual: bool = False,
        subpixel_head: bool = False,
        pad_mode: str = "zeros",
        drop_path_rate: float = 0.0,
        output: str = "direct",
    ) -> None:
        super().__init__(in_chans, stride=32, pad_mode=pad_mode, residual=residual, output=output)
        if len(dec_chans) != 5 or len(dec_depths) != 5:
            raise ValueError("dec_chans and dec_depths need 5 entries (strides 32, 16, 8, 4, 2)")
        for key, val in (("latent_dim", latent_dim), ("latent_chans", latent_chans)):
            if not isinstance(val, int) or isinstance(val, bool) or val < 1:
                raise ConfigError(f"{key} must be a positive integer, got {val!r}")
        self.skips = skips
        self.encoder = timm.create_model(
            encoder,
            features_only=True,
            in_chans=in_chans,
            pretrained=False,
            drop_path_rate=drop_path_rate,
        )
        enc_chans = self.encoder.feature_info.channels()
        enc_red = self.encoder.feature_info.reduction()
        if enc_red[-1] != 32:
            raise ValueError(f"encoder {encoder!r} has total stride {enc_red[-1]}, expected 32")
        by_stride = {r: i for i, r in enumerate(enc_red)}

        if skips:
            self.bottleneck = None
            if family == "convnext":
                self.proj = nn.Sequential(
                    LayerNorm2d(enc_chans[-1]), nn.Conv2d(enc_chans[-1], dec_chans[0], 1)
                )
            else:
                self.proj = ConvNormAct(enc_chans[-1], dec_chans[0], 1, act=_act(family))
        else:
            self.proj = None
            self.bottleneck = LatentBottleneck(
                family,
                enc_chans[-1],
                dec_chans[0],
                latent_dim,
                grid=max(1, img_size // 32),
                latent_chans=latent_chans,
            )
        self.blocks32 = nn.Sequential(
            *[make_block(family, dec_chans[0], 32, light=light) for _ in range(dec_depths[0])]
        )
        self.skip_index: list[int] = []
        stages = []
        for i, r in enumerate(DEC_STRIDES):
            idx = by_stride.get(r, -1) if skips else -1
            self.skip_index.append(idx)
            stages.append(
                DecoderStage(
                    family,
                    dec_chans[i],
                    dec_chans[i + 1],
                    dec_depths[i + 1],
                    reduction=r,
                    skip_c=enc_chans[idx] if idx >= 0 else 0,
                    light=light,
                )
            )
        self.stages = nn.ModuleList(stages)
        self.head = Head(
            family,
            dec_chans[-1],
            head_chans,
            scale=2,
            in_skip=in_chans if skips else 0,
            light=light,
            subpixel=subpixel_head,
            out_chans=self.out_chans,
        )

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """Bottleneck AEs: padded input (B, in_chans, H, W) → latent vector (B, latent_dim)."""
        if self.bottleneck is None:
            raise RuntimeError("U-Net models have no latent vector")
        return self.bottleneck.encode(self.encoder(x)[-1])

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        feats = self.encoder(x)
        top = feats[-1]
        y = self.proj(top) if self.bottleneck is None else self.bottleneck(top)
        y = self.blocks32(y)
        for stage, idx in zip(self.stages, self.skip_index, strict=True):
            y = stage(y, feats[idx] if idx >= 0 else None)
        return self.head(y, x)


# --------------------------------------------------------------------------- the variant table
@dataclass(frozen=True)
class ConvVariant:
    """One registered conv model: its ``kind``, timm encoder and decoder shape (data, not code).

    ``latent_chans`` set → bottleneck AE (global latent vector, no skips); ``None`` → U-Net.
    ``residual`` is the default of the ``residual`` kwarg; ``residual`` and ``output`` (direct or
    composite, see :class:`RestoreNet`) are U-Net options only: a bottleneck AE must not see its
    input again. See :class:`ConvAutoencoder` for the other fields.
    """

    kind: str
    family: str
    encoder: str
    dec_chans: tuple[int, int, int, int, int]
    dec_depths: tuple[int, int, int, int, int]
    head_chans: int
    light: bool = False
    latent_chans: int | None = None
    residual: bool = False
    subpixel_head: bool = False

    def options(self) -> dict[str, Any]:
        """The model-specific keyword arguments of ``create_model`` and their defaults."""
        opts: dict[str, Any] = {"head_chans": self.head_chans}
        if self.latent_chans is not None:
            opts.update(latent_dim=512, latent_chans=self.latent_chans)
        else:
            opts.update(residual=self.residual, output="direct")
        return {**opts, "pad_mode": "zeros", "drop_path_rate": 0.0}


_MNV3_L, _MNV3_S = "mobilenetv3_large_100", "mobilenetv3_small_100"
_EFFV2, _CNX = "efficientnetv2_rw_t", "convnext_tiny"
_MNV3_LIGHT = ((96, 48, 24, 16, 16), (1, 1, 1, 1, 0))  # one narrow block per stride

VARIANTS: dict[str, ConvVariant] = {
    # symmetric bottleneck AEs: the seed's sizes and cost (docs/MODELS.md)
    "ae_mobilenetv3": ConvVariant(
        "symmetric", "mobilenetv3", _MNV3_S, (96, 48, 24, 16, 16), (3, 2, 2, 1, 0), 8,
        light=True, latent_chans=64, subpixel_head=True,
    ),
    "ae_efficientnetv2": ConvVariant(
        "symmetric", "efficientnetv2", _EFFV2, (208, 128, 48, 40, 24), (3, 4, 3, 2, 1), 24,
        latent_chans=32,
    ),
    "ae_convnext_t": ConvVariant(
        "symmetric", "convnext", _CNX, (768, 384, 192, 96, 48), (2, 6, 2, 2, 1), 32,
        latent_chans=64,
    ),
    # heavier or lighter decoders than the encoder
    "ae_mobilenetv3_large": ConvVariant(
        "asymmetric", "mobilenetv3", _MNV3_L, (160, 112, 40, 24, 16), (1, 2, 2, 2, 1), 16,
        latent_chans=16,
    ),
    "ae_mobilenetv3_light": ConvVariant(
        "asymmetric", "mobilenetv3", _MNV3_L, *_MNV3_LIGHT, 16, light=True, latent_chans=16
    ),
    "ae_efficientnetv2_light": ConvVariant(
        "asymmetric", "efficientnetv2", _EFFV2, (128, 64, 32, 24, 16), (1, 1, 1, 1, 0), 16,
        light=True, latent_chans=32,
    ),
    "ae_convnext_t_light": ConvVariant(
        "asymmetric", "convnext", _CNX, (256, 128, 64, 32, 16), (1, 1, 1, 1, 0), 16,
        light=True, latent_chans=64,
    ),
    # U-Nets
    "unet_mobilenetv3": ConvVariant(
        "unet", "mobilenetv3", _MNV3_L, (160, 112, 40, 24, 16), (1, 2, 2, 1, 1), 16
    ),
    "unet_efficientnetv2": ConvVariant(
        "unet", "efficientnetv2", _EFFV2, (208, 128, 48, 40, 24), (2, 3, 2, 1, 1), 24
    ),
    "unet_convnext_t": ConvVariant(
        "unet", "convnext", _CNX, (768, 384, 192, 96, 48), (1, 3, 2, 2, 1), 32
    ),
    "unet_mobilenetv3_small": ConvVariant(
        "unet", "mobilenetv3", _MNV3_S, *_MNV3_LIGHT, 16, light=True, residual=True,
        subpixel_head=True,
    ),
}  # fmt: skip


def _create(name: str, *, in_chans: int, img_size: int, **kwargs: Any) -> ConvAutoencoder:
    """Build table entry ``name``; ``kwargs`` override :meth:`ConvVariant.options`."""
    v = VARIANTS[name]
    opts = {**v.options(), **kwargs}
    return ConvAutoencoder(
        family=v.family,
        encoder=v.encoder,
        in_chans=in_chans,
        img_size=img_size,
        dec_chans=v.dec_chans,
        dec_depths=v.dec_depths,
        skips=v.latent_chans is None,
        light=v.light,
        subpixel_head=v.subpixel_head,
        **opts,
    )


def _entry(fn: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
    """Register an entry point with the kind and options of its row in :data:`VARIANTS`."""
    v = VARIANTS[fn.__name__]
    return register_model(kind=v.kind, options=v.options())(fn)


# --------------------------------------------------------------------------- entry points
@_entry
def ae_mobilenetv3(**kwargs: Any) -> ConvAutoencoder:
    """MobileNetV3-Small encoder, decoder of the same cost, latent vector: the seed's AE."""
    return _create("ae_mobilenetv3", **kwargs)


@_entry
def ae_efficientnetv2(**kwargs: Any) -> ConvAutoencoder:
    """EfficientNetV2-RW-T encoder, mirrored MBConv+SE / fused-MBConv decoder, latent vector."""
    return _create("ae_efficientnetv2", **kwargs)


@_entry
def ae_convnext_t(**kwargs: Any) -> ConvAutoencoder:
    """ConvNeXt-T encoder, mirrored ConvNeXtBlock decoder (transposed-conv up), latent vector."""
    return _create("ae_convnext_t", **kwargs)


@_entry
def ae_mobilenetv3_large(**kwargs: Any) -> ConvAutoencoder:
    """MobileNetV3-Large encoder, 2x heavier InvertedResidual+SE decoder, latent vector."""
    return _create("ae_mobilenetv3_large", **kwargs)


@_entry
def ae_mobilenetv3_light(**kwargs: Any) -> ConvAutoencoder:
    """MobileNetV3-Large encoder, light decoder (one narrow block per stride), latent vector."""
    return _create("ae_mobilenetv3_light", **kwargs)


@_entry
def ae_efficientnetv2_light(**kwargs: Any) -> ConvAutoencoder:
    """EfficientNetV2-RW-T encoder, light decoder, latent vector."""
    return _create("ae_efficientnetv2_light", **kwargs)


@_entry
def ae_convnext_t_light(**kwargs: Any) -> ConvAutoencoder:
    """ConvNeXt-T encoder, light ConvNeXtBlock decoder (one narrow block per stride), latent."""
    return _create("ae_convnext_t_light", **kwargs)


@_entry
def unet_mobilenetv3(**kwargs: Any) -> ConvAutoencoder:
    """MobileNetV3-Large encoder, mirrored decoder with skip connections at every stride."""
    return _create("unet_mobilenetv3", **kwargs)


@_entry
def unet_efficientnetv2(**kwargs: Any) -> ConvAutoencoder:
    """EfficientNetV2-RW-T encoder, mirrored decoder with skip connections at every stride."""
    return _create("unet_efficientnetv2", **kwargs)


@_entry
def unet_convnext_t(**kwargs: Any) -> ConvAutoencoder:
    """ConvNeXt-T encoder, ConvNeXtBlock decoder with skips (strides 16–4), input skip at 1."""
    return _create("unet_convnext_t", **kwargs)


@_entry
def unet_mobilenetv3_small(**kwargs: Any) -> ConvAutoencoder:
    """Small fast U-Net (MobileNetV3-Small encoder, light decoder, residual output); CPU default."""
    return _create("unet_mobilenetv3_small", **kwargs)
