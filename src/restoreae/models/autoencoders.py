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
"""

from __future__ import annotations

from collections.abc import Sequence

import timm
import torch
from timm.layers import LayerNorm2d
from torch import nn

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

ENCODERS = {
    "mobilenetv3": "mobilenetv3_large_100",
    "mobilenetv3_small": "mobilenetv3_small_100",
    "efficientnetv2": "efficientnetv2_rw_t",
    "convnext": "convnext_tiny",
}
DEC_STRIDES = (16, 8, 4, 2)


class ConvAutoencoder(RestoreNet):
    """timm encoder + mirrored decoder, with a latent bottleneck or with U-Net skips.

    ``dec_chans``/``dec_depths``: decoder channels / number of blocks at strides
    (32, 16, 8, 4, 2). ``head_chans``: channels of the full-resolution head. ``light``: smaller
    expansion ratios in decoder blocks. ``latent_chans``: channels of the map flattened into the
    latent vector (bottleneck AEs only). ``subpixel_head``: run the head at stride 2 and
    ``pixel_shuffle`` its output (see :class:`Head`).
    """

    def __init__(
        self,
        *,
        family: str,
        encoder: str,
        in_chans: int,
        img_size: int,
        latent_dim: int,
        dec_chans: Sequence[int],
        dec_depths: Sequence[int],
        head_chans: int,
        skips: bool,
        light: bool = False,
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


def _build(
    family: str,
    encoder_key: str,
    *,
    in_chans: int,
    img_size: int,
    latent_dim: int,
    dec_chans: Sequence[int],
    dec_depths: Sequence[int],
    head_chans: int,
    skips: bool,
    light: bool,
    **kw,
) -> ConvAutoencoder:
    return ConvAutoencoder(
        family=family,
        encoder=ENCODERS[encoder_key],
        in_chans=in_chans,
        img_size=img_size,
        latent_dim=latent_dim,
        dec_chans=dec_chans,
        dec_depths=dec_depths,
        head_chans=head_chans,
        skips=skips,
        light=light,
        **kw,
    )


# --------------------------------------------------------------------------- symmetric AEs
@register_model(kind="symmetric")
def ae_mobilenetv3(
    in_chans: int = 2,
    img_size: int = 224,
    latent_dim: int = 512,
    latent_chans: int = 16,
    pad_mode: str = "zeros",
    drop_path_rate: float = 0.0,
) -> ConvAutoencoder:
    """MobileNetV3-Large encoder, mirrored InvertedResidual+SE decoder, global latent vector."""
    return _build(
        "mobilenetv3",
        "mobilenetv3",
        in_chans=in_chans,
        img_size=img_size,
        latent_dim=latent_dim,
        dec_chans=(160, 112, 40, 24, 16),
        dec_depths=(1, 2, 2, 2, 1),
        head_chans=16,
        skips=False,
        light=False,
        latent_chans=latent_chans,
        pad_mode=pad_mode,
        drop_path_rate=drop_path_rate,
    )


@register_model(kind="symmetric")
def ae_efficientnetv2(
    in_chans: int = 2,
    img_size: int = 224,
    latent_dim: int = 512,
    latent_chans: int = 32,
    pad_mode: str = "zeros",
    drop_path_rate: float = 0.0,
) -> ConvAutoencoder:
    """EfficientNetV2-RW-T encoder, mirrored MBConv+SE / fused-MBConv decoder, latent vector."""
    return _build(
        "efficientnetv2",
        "efficientnetv2",
        in_chans=in_chans,
        img_size=img_size,
        latent_dim=latent_dim,
        dec_chans=(208, 128, 48, 40, 24),
        dec_depths=(3, 4, 3, 2, 1),
        head_chans=24,
        skips=False,
        light=False,
        latent_chans=latent_chans,
        pad_mode=pad_mode,
        drop_path_rate=drop_path_rate,
    )


@register_model(kind="symmetric")
def ae_convnext_t(
    in_chans: int = 2,
    img_size: int = 224,
    latent_dim: int = 512,
    latent_chans: int = 64,
    pad_mode: str = "zeros",
    drop_path_rate: float = 0.0,
) -> ConvAutoencoder:
    """ConvNeXt-T encoder, mirrored ConvNeXtBlock decoder (transposed-conv up), latent vector."""
    return _build(
        "convnext",
        "convnext",
        in_chans=in_chans,
        img_size=img_size,
        latent_dim=latent_dim,
        dec_chans=(768, 384, 192, 96, 48),
        dec_depths=(2, 6, 2, 2, 1),
        head_chans=32,
        skips=False,
        light=False,
        latent_chans=latent_chans,
        pad_mode=pad_mode,
        drop_path_rate=drop_path_rate,
    )


# --------------------------------------------------------------------------- asymmetric AEs
@register_model(kind="asymmetric")
def ae_mobilenetv3_light(
    in_chans: int = 2,
    img_size: int = 224,
    latent_dim: int = 512,
    latent_chans: int = 16,
    pad_mode: str = "zeros",
    drop_path_rate: float = 0.0,
) -> ConvAutoencoder:
    """MobileNetV3-Large encoder, light decoder (one narrow block per stride), latent vector."""
    return _build(
        "mobilenetv3",
        "mobilenetv3",
        in_chans=in_chans,
        img_size=img_size,
        latent_dim=latent_dim,
        dec_chans=(96, 48, 24, 16, 16),
        dec_depths=(1, 1, 1, 1, 0),
        head_chans=16,
        skips=False,
        light=True,
        latent_chans=latent_chans,
        pad_mode=pad_mode,
        drop_path_rate=drop_path_rate,
    )


@register_model(kind="asymmetric")
def ae_efficientnetv2_light(
    in_chans: int = 2,
    img_size: int = 224,
    latent_dim: int = 512,
    latent_chans: int = 32,
    pad_mode: str = "zeros",
    drop_path_rate: float = 0.0,
) -> ConvAutoencoder:
    """EfficientNetV2-RW-T encoder, light decoder, latent vector."""
    return _build(
        "efficientnetv2",
        "efficientnetv2",
        in_chans=in_chans,
        img_size=img_size,
        latent_dim=latent_dim,
        dec_chans=(128, 64, 32, 24, 16),
        dec_depths=(1, 1, 1, 1, 0),
        head_chans=16,
        skips=False,
        light=True,
        latent_chans=latent_chans,
        pad_mode=pad_mode,
        drop_path_rate=drop_path_rate,
    )


@register_model(kind="asymmetric")
def ae_convnext_t_light(
    in_chans: int = 2,
    img_size: int = 224,
    latent_dim: int = 512,
    latent_chans: int = 64,
    pad_mode: str = "zeros",
    drop_path_rate: float = 0.0,
) -> ConvAutoencoder:
    """ConvNeXt-T encoder, light ConvNeXtBlock decoder (one narrow block per stride), latent."""
    return _build(
        "convnext",
        "convnext",
        in_chans=in_chans,
        img_size=img_size,
        latent_dim=latent_dim,
        dec_chans=(256, 128, 64, 32, 16),
        dec_depths=(1, 1, 1, 1, 0),
        head_chans=16,
        skips=False,
        light=True,
        latent_chans=latent_chans,
        pad_mode=pad_mode,
        drop_path_rate=drop_path_rate,
    )


# --------------------------------------------------------------------------- U-Nets
@register_model(kind="unet")
def unet_mobilenetv3(
    in_chans: int = 2,
    img_size: int = 224,
    latent_dim: int = 512,
    residual: bool = False,
    pad_mode: str = "zeros",
    drop_path_rate: float = 0.0,
    output: str = "direct",
) -> ConvAutoencoder:
    """MobileNetV3-Large encoder, mirrored decoder with skip connections at every stride."""
    return _build(
        "mobilenetv3",
        "mobilenetv3",
        in_chans=in_chans,
        img_size=img_size,
        latent_dim=latent_dim,
        dec_chans=(160, 112, 40, 24, 16),
        dec_depths=(1, 2, 2, 1, 1),
        head_chans=16,
        skips=True,
        light=False,
        residual=residual,
        pad_mode=pad_mode,
        drop_path_rate=drop_path_rate,
        output=output,
    )


@register_model(kind="unet")
def unet_efficientnetv2(
    in_chans: int = 2,
    img_size: int = 224,
    latent_dim: int = 512,
    residual: bool = False,
    pad_mode: str = "zeros",
    drop_path_rate: float = 0.0,
    output: str = "direct",
) -> ConvAutoencoder:
    """EfficientNetV2-RW-T encoder, mirrored decoder with skip connections at every stride."""
    return _build(
        "efficientnetv2",
        "efficientnetv2",
        in_chans=in_chans,
        img_size=img_size,
        latent_dim=latent_dim,
        dec_chans=(208, 128, 48, 40, 24),
        dec_depths=(2, 3, 2, 1, 1),
        head_chans=24,
        skips=True,
        light=False,
        residual=residual,
        pad_mode=pad_mode,
        drop_path_rate=drop_path_rate,
        output=output,
    )


@register_model(kind="unet")
def unet_convnext_t(
    in_chans: int = 2,
    img_size: int = 224,
    latent_dim: int = 512,
    residual: bool = False,
    pad_mode: str = "zeros",
    drop_path_rate: float = 0.0,
    output: str = "direct",
) -> ConvAutoencoder:
    """ConvNeXt-T encoder, ConvNeXtBlock decoder with skips (strides 16–4), input skip at 1."""
    return _build(
        "convnext",
        "convnext",
        in_chans=in_chans,
        img_size=img_size,
        latent_dim=latent_dim,
        dec_chans=(768, 384, 192, 96, 48),
        dec_depths=(1, 3, 2, 2, 1),
        head_chans=32,
        skips=True,
        light=False,
        residual=residual,
        pad_mode=pad_mode,
        drop_path_rate=drop_path_rate,
        output=output,
    )


@register_model(kind="unet")
def unet_mobilenetv3_small(
    in_chans: int = 2,
    img_size: int = 224,
    latent_dim: int = 512,
    residual: bool = True,
    head_chans: int = 16,
    pad_mode: str = "zeros",
    drop_path_rate: float = 0.0,
    output: str = "direct",
) -> ConvAutoencoder:
    """Small fast U-Net (MobileNetV3-Small encoder, light decoder, residual output); CPU default."""
    return _build(
        "mobilenetv3",
        "mobilenetv3_small",
        in_chans=in_chans,
        img_size=img_size,
        latent_dim=latent_dim,
        dec_chans=(96, 48, 24, 16, 16),
        dec_depths=(1, 1, 1, 1, 0),
        head_chans=head_chans,
        skips=True,
        light=True,
        residual=residual,
        subpixel_head=True,
        pad_mode=pad_mode,
        drop_path_rate=drop_path_rate,
        output=output,
    )
