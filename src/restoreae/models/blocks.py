"""Building blocks shared by the model zoo.

* :class:`RestoreNet` — the base class of every model: checks the input, pads it to a multiple of
  the network stride (zeros = background by default, since glyphs are white ink on black), runs
  the network, optionally adds a residual "start from the damaged image" term to the logits,
  applies the sigmoid and crops back to the input size.
* Decoder blocks built from timm's own blocks, one family per encoder:
  MobileNetV3 (``InvertedResidual`` + ``SqueezeExcite``, hard-swish), EfficientNetV2
  (``EdgeResidual`` = fused-MBConv at high resolution, ``InvertedResidual`` + SE below) and
  ConvNeXt (``ConvNeXtBlock`` + ``LayerNorm2d``, transposed-conv upsampling).
* :class:`LatentBottleneck` — the global latent vector of the bottleneck autoencoders.

Every op used here exports to ONNX (opset 17): no custom autograd, LayerNorm via timm's
``LayerNorm2d``, upsampling with ``F.interpolate`` (bilinear) or ``ConvTranspose2d``.
"""

from __future__ import annotations

from functools import partial

import torch
import torch.nn.functional as F
from timm.layers import LayerNorm2d
from timm.models._efficientnet_blocks import EdgeResidual, InvertedResidual, SqueezeExcite
from timm.models.convnext import ConvNeXtBlock
from torch import nn

FAMILIES = ("mobilenetv3", "efficientnetv2", "convnext")
PAD_MODES = ("zeros", "replicate")
#: What the network's logits mean (see :class:`RestoreNet`).
OUTPUTS = ("direct", "composite")


def _act(family: str) -> type[nn.Module]:
    return {"mobilenetv3": nn.Hardswish, "efficientnetv2": nn.SiLU, "convnext": nn.GELU}[family]


class RestoreNet(nn.Module):
    """Base class: pad-to-stride → ``forward_logits`` → (+ residual) → sigmoid → crop.

    Subclasses set ``stride`` (the total down-sampling of the network) and implement
    ``forward_logits(x)`` for
    ``x`` float ``(B, in_chans, H, W)`` with ``H, W`` multiples of ``stride``, returning logits
    ``(B, 1, H, W)``.

    ``residual=True`` adds ``res_gain * (2 * x[:, :1] - 1)`` to the logits (``res_gain`` is a
    learned scalar, initially 3): the untrained network then outputs roughly the damaged input and
    learns the correction — the usual trick of predicting the restored glyph *from* the damaged one.

    ``output="composite"`` (inpainting-style, faithful by construction): ``forward_logits`` gives
    two channels, content logits and damage-mask logits; with ``c = sigmoid(content)`` (plus the
    residual term when ``residual``) and ``m = sigmoid(mask)`` the output is
    ``m * c + (1 - m) * x[:, :1]``: pixels the network judges undamaged (m ≈ 0) are the input's
    own. ``return_parts = True`` makes ``forward`` return ``(B, 2, H, W)`` = (content, mask)
    instead, for restoring at the image's own resolution and for mask supervision in training
    (``mask`` is then the probability that a pixel was damaged).
    """

    def __init__(
        self,
        in_chans: int,
        stride: int,
        pad_mode: str = "zeros",
        residual: bool = False,
        output: str = "direct",
    ) -> None:
        super().__init__()
        if output not in OUTPUTS:
            raise ValueError(f"output must be one of {OUTPUTS}, got {output!r}")
        if in_chans not in (1, 2):
            raise ValueError(
                f"in_chans must be 1 (damaged) or 2 (damaged + reference), got {in_chans}"
            )
        if pad_mode not in PAD_MODES:
            raise ValueError(f"pad_mode must be one of {PAD_MODES}, got {pad_mode!r}")
        self.in_chans = in_chans
        self.stride = stride
        self.pad_mode = pad_mode
        self.residual = residual
        self.res_gain = nn.Parameter(torch.tensor(3.0)) if residual else None
        self.output = output
        self.return_parts = False
        self.config: dict = {}

    @property
    def out_chans(self) -> int:
        """Channels of ``forward_logits``: 1, or 2 (content, mask) for composite models."""
        return 2 if self.output == "composite" else 1

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:  # pragma: no cover - abstract
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` float (B, in_chans, H, W) in [0, 1], white ink on black → (B, 1, H, W) in [0, 1]."""
        if x.dim() != 4 or x.shape[1] != self.in_chans:
            raise ValueError(
                f"expected input of shape (B, {self.in_chans}, H, W), got {tuple(x.shape)}"
            )
        h, w = int(x.shape[-2]), int(x.shape[-1])
        ph, pw = (-h) % self.stride, (-w) % self.stride
        top, left = ph // 2, pw // 2
        if ph or pw:
            pad = (left, pw - left, top, ph - top)
            x = F.pad(x, pad) if self.pad_mode == "zeros" else F.pad(x, pad, mode="replicate")
        logits = self.forward_logits(x)
        content = logits[:, :1]
        if self.res_gain is not None:
            content = content + self.res_gain.to(logits.dtype) * (
                2.0 * x[:, :1].to(logits.dtype) - 1.0
            )
        y = torch.sigmoid(content)
        if self.output == "composite":
            mask = torch.sigmoid(logits[:, 1:2])
            if self.return_parts:
                y = torch.cat([y, mask], dim=1)
            else:
                y = mask * y + (1.0 - mask) * x[:, :1].to(y.dtype)
        if ph or pw:
            y = y[:, :, top : top + h, left : left + w]
        return y


# --------------------------------------------------------------------------- small layers
class ConvNormAct(nn.Sequential):
    """Conv2d (no bias) → BatchNorm2d → activation; for the MobileNet / EfficientNet families."""

    def __init__(self, in_c: int, out_c: int, k: int = 1, act: type[nn.Module] = nn.ReLU) -> None:
        super().__init__(
            nn.Conv2d(in_c, out_c, k, padding=k // 2, bias=False),
            nn.BatchNorm2d(out_c),
            act(),
        )


class Upsample(nn.Module):
    """×``scale`` up-sampling with a channel change ``in_c → out_c``.

    Conv families: 1×1 ConvNormAct at the low resolution, then bilinear interpolation (cheap).
    ConvNeXt: ``LayerNorm2d`` + ``ConvTranspose2d(k=s, stride=s)``, mirroring ConvNeXt's
    LayerNorm + strided-conv down-sampling layers.
    """

    def __init__(self, family: str, in_c: int, out_c: int, scale: int = 2) -> None:
        super().__init__()
        self.scale = scale
        self.family = family
        if family == "convnext":
            self.proj = nn.Sequential(
                LayerNorm2d(in_c), nn.ConvTranspose2d(in_c, out_c, scale, stride=scale)
            )
        else:
            self.proj = ConvNormAct(in_c, out_c, 1, act=_act(family))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.proj(x)
        if self.family != "convnext":
            x = F.interpolate(
                x, scale_factor=float(self.scale), mode="bilinear", align_corners=False
            )
        return x


def make_block(family: str, chs: int, reduction: int, light: bool = False) -> nn.Module:
    """One residual decoder block of ``family`` working at stride ``reduction`` (chs → chs).

    MobileNetV3: like the encoder, 3×3 without SE at strides ≤ 4, 5×5 with SE below.
    EfficientNetV2: fused-MBConv (``EdgeResidual``) at strides ≤ 8, MBConv + SE below.
    ConvNeXt: ``ConvNeXtBlock`` (7×7 depthwise, LayerNorm, MLP ×4, layer scale).
    ``light`` uses smaller expansion ratios (asymmetric / fast decoders).
    """
    if family == "mobilenetv3":
        deep = reduction >= 8
        se = partial(SqueezeExcite, gate_layer="hard_sigmoid", force_act_layer=nn.ReLU)
        return InvertedResidual(
            in_chs=chs,
            out_chs=chs,
            dw_kernel_size=5 if deep else 3,
            exp_ratio=(3.0 if light else 4.0) if deep else (2.0 if light else 3.0),
            act_layer=nn.Hardswish if deep else nn.ReLU,
            se_layer=se if deep else None,
        )
    if family == "efficientnetv2":
        if reduction <= 8:
            return EdgeResidual(
                in_chs=chs,
                out_chs=chs,
                exp_kernel_size=3,
                exp_ratio=2.0 if light else 4.0,
                act_layer=nn.SiLU,
            )
        se = partial(SqueezeExcite, rd_ratio=1.0 / 16, act_layer=nn.SiLU)
        return InvertedResidual(
            in_chs=chs,
            out_chs=chs,
            dw_kernel_size=3,
            exp_ratio=3.0 if light else 4.0,
            act_layer=nn.SiLU,
            se_layer=se,
        )
    if family == "convnext":
        return ConvNeXtBlock(
            in_chs=chs, out_chs=chs, kernel_size=7, mlp_ratio=2.0 if light else 4.0
        )
    raise ValueError(f"unknown block family {family!r}; expected one of {FAMILIES}")


class DecoderStage(nn.Module):
    """Up-sample ×2 (in_c → out_c), optionally concatenate a skip (U-Net) and fuse, then blocks."""

    def __init__(
        self,
        family: str,
        in_c: int,
        out_c: int,
        depth: int,
        reduction: int,
        skip_c: int = 0,
        light: bool = False,
    ) -> None:
        super().__init__()
        self.up = Upsample(family, in_c, out_c)
        self.fuse: nn.Module | None = None
        if skip_c:
            if family == "convnext":
                self.fuse = nn.Conv2d(out_c + skip_c, out_c, 1)
            else:
                self.fuse = ConvNormAct(out_c + skip_c, out_c, 1, act=_act(family))
        self.blocks = nn.Sequential(
            *[make_block(family, out_c, reduction, light=light) for _ in range(depth)]
        )

    def forward(self, x: torch.Tensor, skip: torch.Tensor | None = None) -> torch.Tensor:
        x = self.up(x)
        if self.fuse is not None:
            x = self.fuse(torch.cat([x, skip], dim=1))
        return self.blocks(x)


class Head(nn.Module):
    """Stride-``scale`` decoder features → full-resolution logit ``(B, 1, H, W)``.

    ``in_skip`` > 0 feeds the (padded) network input image to the head — U-Nets only; a
    bottleneck autoencoder must not see its input again after the latent.

    Default: ×``scale`` bilinear up-sampling, [concat the image], two 3×3 ConvNormAct layers (one
    when ``light``) and a 3×3 conv to one channel, all at full resolution.
    ``subpixel=True`` (fast CPU models): everything stays at stride ``scale``; the image enters
    losslessly through ``pixel_unshuffle`` (``in_skip · scale²`` channels) and a 3×3 conv predicts
    ``scale²`` sub-pixel logits put in place by ``pixel_shuffle`` — about 4× cheaper for scale 2.
    """

    def __init__(
        self,
        family: str,
        in_c: int,
        mid_c: int,
        scale: int,
        in_skip: int = 0,
        light: bool = False,
        subpixel: bool = False,
        out_chans: int = 1,
    ) -> None:
        super().__init__()
        self.scale = scale
        self.in_skip = in_skip
        self.subpixel = subpixel
        act = _act(family)
        skip_c = in_skip * scale * scale if subpixel else in_skip
        self.conv1 = ConvNormAct(in_c + skip_c, mid_c, 3, act=act)
        self.conv2 = nn.Identity() if light else ConvNormAct(mid_c, mid_c, 3, act=act)
        self.out = nn.Conv2d(mid_c, out_chans * (scale * scale if subpixel else 1), 3, padding=1)
        nn.init.normal_(self.out.weight, std=1e-3)
        nn.init.zeros_(self.out.bias)

    def forward(self, x: torch.Tensor, image: torch.Tensor | None = None) -> torch.Tensor:
        if self.subpixel:
            if self.in_skip:
                x = torch.cat([x, F.pixel_unshuffle(image.to(x.dtype), self.scale)], dim=1)
            return F.pixel_shuffle(self.out(self.conv2(self.conv1(x))), self.scale)
        if self.scale != 1:
            x = F.interpolate(
                x, scale_factor=float(self.scale), mode="bilinear", align_corners=False
            )
        if self.in_skip:
            x = torch.cat([x, image.to(x.dtype)], dim=1)
        return self.out(self.conv2(self.conv1(x)))


class LatentBottleneck(nn.Module):
    """Stride-32 feature map → global latent vector of ``latent_dim`` → decoder feature map.

    ``(B, in_c, h, w)`` → 1×1 ConvNormAct to ``latent_chans`` → adaptive average pooling to a
    fixed ``grid × grid`` (``grid = img_size // 32``, so at the configured size the pooling is the
    identity) → flatten → Linear → ``z`` ``(B, latent_dim)`` → Linear → ``(B, latent_chans, grid,
    grid)`` → BatchNorm + act → bilinear resize to ``(h, w)`` → 1×1 ConvNormAct to ``out_c``.
    Any input size works; the parameter count depends on ``img_size`` through ``grid``.
    """

    def __init__(
        self, family: str, in_c: int, out_c: int, latent_dim: int, grid: int, latent_chans: int
    ) -> None:
        super().__init__()
        self.grid = grid
        self.latent_chans = latent_chans
        act = _act(family)
        self.reduce = ConvNormAct(in_c, latent_chans, 1, act=act)
        self.to_latent = nn.Linear(latent_chans * grid * grid, latent_dim)
        self.from_latent = nn.Linear(latent_dim, latent_chans * grid * grid)
        self.post = nn.Sequential(nn.BatchNorm2d(latent_chans), act())
        self.expand = ConvNormAct(latent_chans, out_c, 1, act=act)

    def encode(self, f: torch.Tensor) -> torch.Tensor:
        """(B, in_c, h, w) → latent (B, latent_dim)."""
        z = self.reduce(f)
        if tuple(z.shape[-2:]) != (self.grid, self.grid):
            z = F.adaptive_avg_pool2d(z, self.grid)
        return self.to_latent(z.flatten(1))

    def decode(self, z: torch.Tensor, size: tuple[int, int]) -> torch.Tensor:
        """latent (B, latent_dim) → (B, out_c, *size)."""
        y = self.from_latent(z).reshape(-1, self.latent_chans, self.grid, self.grid)
        y = self.post(y)
        if tuple(size) != (self.grid, self.grid):
            y = F.interpolate(y, size=size, mode="bilinear", align_corners=False)
        return self.expand(y)

    def forward(self, f: torch.Tensor) -> torch.Tensor:
        return self.decode(self.encode(f), (int(f.shape[-2]), int(f.shape[-1])))
