"""NAFNet-style restoration network (after Chen et al., 2022, "Simple Baselines for Image
Restoration"), written for this project from the paper's description.

Unlike the U-Nets of :mod:`restoreae.models.autoencoders` it has no classification backbone: every
level is built of the same nonlinear-activation-free block, and the top level works at the full
input resolution, so thin strokes never have to survive a stride-2 stem.

* :class:`NAFBlock` — two residual halves on ``(B, C, h, w)`` float features:
  ``LayerNorm2d → 1×1 conv (C → 2C) → 3×3 depthwise conv → SimpleGate (→ C) → simplified channel
  attention → 1×1 conv``, added with a learned per-channel scale β (initially 0); then
  ``LayerNorm2d → 1×1 conv (C → 2C) → SimpleGate → 1×1 conv``, added with scale γ (initially 0).
  SimpleGate splits the channels in two halves and multiplies them (the only nonlinearity);
  simplified channel attention multiplies the features by a 1×1 conv of their global mean.
  With β = γ = 0 a fresh block is the identity.
* :class:`NAFNet` — ``3×3 conv (in_chans → width)`` at full resolution, an encoder of
  ``len(enc_blocks)`` levels (blocks, then a 2×2 stride-2 conv doubling the channels), middle
  blocks at the lowest resolution, a mirrored decoder (1×1 conv doubling the channels +
  ``pixel_shuffle(2)`` halving the resolution's stride and the channels, *added* to the encoder
  feature of that level, then blocks) and a ``3×3 conv (width → 1 or 2 logits)``.

Input float ``(B, in_chans, H, W)`` in [0, 1] (channel 0 damaged glyph, channel 1 optional
reference; white ink 1 on black 0) → output ``(B, 1, H, W)`` in [0, 1], or for
``output="composite"`` with ``return_parts`` the ``(B, 2, H, W)`` (content, damage mask) pair —
the padding, residual term, sigmoid and compositing are :class:`RestoreNet`'s, shared with the
U-Nets. ``residual=True`` (default) adds ``res_gain · (2·x₀ − 1)`` to the content logits: the
logit-space counterpart of the paper's global "output = input + prediction" skip.

Each registered variant is one row of :data:`NAF_VARIANTS` and a short entry point.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import torch
from timm.layers import LayerNorm2d
from torch import nn

from restoreae.errors import ConfigError
from restoreae.models.blocks import RestoreNet
from restoreae.models.registry import register_model


def simple_gate(x: torch.Tensor) -> torch.Tensor:
    """SimpleGate: ``(B, 2C, h, w)`` → ``(B, C, h, w)``, the first channel half times the second."""
    a, b = x.chunk(2, dim=1)
    return a * b


class NAFBlock(nn.Module):
    """Nonlinear-activation-free block on ``(B, chans, h, w)`` features (shape kept).

    ``dw_expand`` / ``ffn_expand``: channel expansion of the depthwise half and of the
    feed-forward half before their SimpleGate (2 in the paper). β and γ start at zero, so a fresh
    block is the identity and the network starts as its skip paths.
    """

    def __init__(self, chans: int, dw_expand: int = 2, ffn_expand: int = 2) -> None:
        super().__init__()
        dw_c, ffn_c = chans * dw_expand, chans * ffn_expand
        if dw_c % 2 or ffn_c % 2:
            raise ValueError("NAFBlock: expanded channels must be even for SimpleGate")
        self.norm1 = LayerNorm2d(chans)
        self.expand = nn.Conv2d(chans, dw_c, 1)
        self.dwconv = nn.Conv2d(dw_c, dw_c, 3, padding=1, groups=dw_c)
        self.sca = nn.Conv2d(dw_c // 2, dw_c // 2, 1)
        self.project = nn.Conv2d(dw_c // 2, chans, 1)
        self.norm2 = LayerNorm2d(chans)
        self.ffn_in = nn.Conv2d(chans, ffn_c, 1)
        self.ffn_out = nn.Conv2d(ffn_c // 2, chans, 1)
        self.beta = nn.Parameter(torch.zeros(1, chans, 1, 1))
        self.gamma = nn.Parameter(torch.zeros(1, chans, 1, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = simple_gate(self.dwconv(self.expand(self.norm1(x))))
        y = y * self.sca(y.mean(dim=(2, 3), keepdim=True))
        x = x + self.beta * self.project(y)
        y = self.ffn_out(simple_gate(self.ffn_in(self.norm2(x))))
        return x + self.gamma * y


class Down(nn.Sequential):
    """``(B, C, h, w)`` → ``(B, 2C, h/2, w/2)``: a 2×2 convolution of stride 2."""

    def __init__(self, chans: int) -> None:
        super().__init__(nn.Conv2d(chans, 2 * chans, 2, stride=2))


class Up(nn.Sequential):
    """``(B, C, h, w)`` → ``(B, C/2, 2h, 2w)``: 1×1 conv to ``2C`` (no bias), ``pixel_shuffle(2)``."""

    def __init__(self, chans: int) -> None:
        super().__init__(nn.Conv2d(chans, 2 * chans, 1, bias=False), nn.PixelShuffle(2))


class NAFNet(RestoreNet):
    """U-shaped NAFNet: full-resolution stem, encoder/decoder of :class:`NAFBlock` levels.

    ``width``: channels at full resolution (doubled at each of the ``len(enc_blocks)`` levels).
    ``enc_blocks`` / ``dec_blocks``: blocks per level, top (full resolution) first;
    ``middle_blocks``: blocks at stride ``2 ** len(enc_blocks)``, the network's stride (inputs are
    padded to a multiple of it). ``residual``, ``output``, ``pad_mode``: see :class:`RestoreNet`.
    """

    def __init__(
        self,
        *,
        in_chans: int,
        width: int,
        enc_blocks: Sequence[int],
        middle_blocks: int,
        dec_blocks: Sequence[int],
        residual: bool = True,
        output: str = "direct",
        pad_mode: str = "zeros",
    ) -> None:
        levels = len(enc_blocks)
        if levels < 1 or len(dec_blocks) != levels:
            raise ValueError("enc_blocks and dec_blocks need the same number (≥ 1) of levels")
        super().__init__(
            in_chans, stride=2**levels, pad_mode=pad_mode, residual=residual, output=output
        )
        self.intro = nn.Conv2d(in_chans, width, 3, padding=1)
        chans = width
        self.encoders = nn.ModuleList()
        self.downs = nn.ModuleList()
        for n in enc_blocks:
            self.encoders.append(nn.Sequential(*[NAFBlock(chans) for _ in range(n)]))
            self.downs.append(Down(chans))
            chans *= 2
        self.middle = nn.Sequential(*[NAFBlock(chans) for _ in range(middle_blocks)])
        self.ups = nn.ModuleList()
        self.decoders = nn.ModuleList()
        for n in reversed(list(dec_blocks)):  # lowest level first
            self.ups.append(Up(chans))
            chans //= 2
            self.decoders.append(nn.Sequential(*[NAFBlock(chans) for _ in range(n)]))
        self.ending = nn.Conv2d(width, self.out_chans, 3, padding=1)
        # Small logits at the start: with ``residual`` the fresh net outputs about its input.
        nn.init.normal_(self.ending.weight, std=1e-3)
        nn.init.zeros_(self.ending.bias)

    def forward_logits(self, x: torch.Tensor) -> torch.Tensor:
        """Padded input ``(B, in_chans, H, W)`` (H, W multiples of ``stride``) → logits
        ``(B, out_chans, H, W)`` (content, and damage mask for composite models)."""
        y = self.intro(x)
        skips = []
        for enc, down in zip(self.encoders, self.downs, strict=True):
            y = enc(y)
            skips.append(y)
            y = down(y)
        y = self.middle(y)
        for up, dec, skip in zip(self.ups, self.decoders, reversed(skips), strict=True):
            y = dec(up(y) + skip)
        return self.ending(y)


# --------------------------------------------------------------------------- the variant table
@dataclass(frozen=True)
class NAFVariant:
    """One registered NAFNet: default ``width`` and blocks per level (data, not code)."""

    width: int
    enc_blocks: tuple[int, ...]
    middle_blocks: int
    dec_blocks: tuple[int, ...]

    def options(self) -> dict[str, Any]:
        """The ``create_model`` keyword arguments of this variant and their defaults."""
        return {"width": self.width, "residual": True, "output": "direct", "pad_mode": "zeros"}


NAF_VARIANTS: dict[str, NAFVariant] = {
    # 1.29 M parameters, comparable to unet_mobilenetv3_small (1.14 M); docs/MODELS.md
    "nafnet_small": NAFVariant(16, (1, 1, 2, 2), 1, (1, 1, 1, 1)),
    # 5.08 M parameters: the same blocks at twice the width, for GPU-trained recipes
    "nafnet_base": NAFVariant(32, (1, 1, 2, 2), 1, (1, 1, 1, 1)),
}


def _create(name: str, *, in_chans: int, img_size: int, **kwargs: Any) -> NAFNet:
    """Build table entry ``name`` (``img_size`` does not change a NAFNet: fully convolutional)."""
    v = NAF_VARIANTS[name]
    opts = {**v.options(), **kwargs}
    width = opts.pop("width")
    if not isinstance(width, int) or isinstance(width, bool) or not 4 <= width <= 256 or width % 2:
        raise ConfigError(f"width must be an even whole number from 4 to 256, got {width!r}")
    return NAFNet(
        in_chans=in_chans,
        width=width,
        enc_blocks=v.enc_blocks,
        middle_blocks=v.middle_blocks,
        dec_blocks=v.dec_blocks,
        **opts,
    )


@register_model(kind="restoration", options=NAF_VARIANTS["nafnet_small"].options())
def nafnet_small(**kwargs: Any) -> NAFNet:
    """NAFNet-style restoration net: NAFBlocks on 4 levels from full resolution, width 16."""
    return _create("nafnet_small", **kwargs)


@register_model(kind="restoration", options=NAF_VARIANTS["nafnet_base"].options())
def nafnet_base(**kwargs: Any) -> NAFNet:
    """NAFNet-style restoration net: the blocks of nafnet_small at width 32 (GPU recipes)."""
    return _create("nafnet_base", **kwargs)


__all__ = ["NAFBlock", "NAFNet", "NAF_VARIANTS", "nafnet_base", "nafnet_small", "simple_gate"]
