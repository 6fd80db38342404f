"""Reconstruction losses on model outputs: float ``(B, 1, H, W)`` in ``[0, 1]``, 1 = ink.

Terms: ``mse``, ``l1``, ``ssim`` (1 - mean SSIM, Gaussian window 11 / sigma 1.5), ``edge``
(L1 weighted by ``1 + 4 * Sobel magnitude`` of the target, so strokes' outlines count more),
``l1_coarse`` (L1 of the images blurred by a Gaussian of sigma 1/64 of their size, 2 px at 128 px:
a stroke drawn a pixel off its place costs little there, a stroke left out as much as in ``l1``).
A loss spec combines terms with weights: ``"mse"``, ``"l1+edge"``, ``"0.8*l1+0.2*ssim"`` or a
mapping ``{"l1": 0.8, "ssim": 0.2}``.
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from restoreae.registry import Registry
from restoreae.ssim import SSIM_WINDOW
from restoreae.ssim import ssim_map as shared_ssim_map

LossFn = Callable[[Tensor, Tensor], Tensor]

#: Loss terms by name (a :class:`restoreae.registry.Registry`), each ``fn(pred, target) -> scalar``.
LOSSES: Registry[LossFn] = Registry("loss term")


def register_loss(name: str) -> Callable[[LossFn], LossFn]:
    """Decorator registering ``fn(pred, target) -> scalar tensor`` as the loss term ``name``."""

    def deco(fn: LossFn) -> LossFn:
        LOSSES.register(name, fn)
        return fn

    return deco


@register_loss("mse")
def mse_loss(pred: Tensor, target: Tensor) -> Tensor:
    return F.mse_loss(pred, target)


@register_loss("l1")
def l1_loss(pred: Tensor, target: Tensor) -> Tensor:
    return F.l1_loss(pred, target)


def ssim_map(pred: Tensor, target: Tensor, window: int = SSIM_WINDOW) -> Tensor:
    """Per-pixel SSIM of float images in [0, 1] ``(B, C, H, W)`` (valid region only).

    :func:`restoreae.ssim.ssim_map` (the evaluation metric's SSIM) with the window shrunk to the
    image when the image is smaller than ``window``.
    """
    return shared_ssim_map(pred, target, 1.0, min(window, pred.shape[-1], pred.shape[-2]))


@register_loss("ssim")
def ssim_loss(pred: Tensor, target: Tensor) -> Tensor:
    return 1.0 - ssim_map(pred, target).mean()


def sobel_magnitude(x: Tensor) -> Tensor:
    """Sobel gradient magnitude of ``(B, C, H, W)`` images (same size, replicate padding)."""
    kx = torch.tensor([[-1.0, 0.0, 1.0], [-2.0, 0.0, 2.0], [-1.0, 0.0, 1.0]], device=x.device)
    k = torch.stack([kx, kx.t()]).unsqueeze(1).to(x.dtype)  # (2, 1, 3, 3)
    c = x.shape[1]
    xp = F.pad(x, (1, 1, 1, 1), mode="replicate").reshape(-1, 1, x.shape[-2] + 2, x.shape[-1] + 2)
    g = F.conv2d(xp, k)
    mag = torch.sqrt(g[:, 0] ** 2 + g[:, 1] ** 2 + 1e-12)
    return mag.reshape(x.shape[0], c, x.shape[-2], x.shape[-1])


@register_loss("edge")
def edge_loss(pred: Tensor, target: Tensor, alpha: float = 4.0) -> Tensor:
    """L1 weighted by ``1 + alpha * clamp(|Sobel(target)| / 4, 0, 1)``."""
    with torch.no_grad():
        weight = 1.0 + alpha * (sobel_magnitude(target) / 4.0).clamp(0.0, 1.0)
    return (weight * (pred - target).abs()).mean()


#: Blur of :func:`l1_coarse_loss`: the Gaussian's sigma as a share of the image size (2 px at 128 px).
COARSE_SIGMA = 1 / 64


@register_loss("l1_coarse")
def l1_coarse_loss(pred: Tensor, target: Tensor) -> Tensor:
    """L1 of ``pred`` and ``target`` both blurred by a Gaussian of ``COARSE_SIGMA`` × their size.
    Where the right place of a stroke is uncertain (a stroke the damage erased without a trace,
    drawn after the reference), plain L1 is least when nothing is drawn; this term costs a stroke
    left out as much as ``l1`` does and one drawn a pixel off its place little."""
    from restoreae.damage.torch_kernels import gaussian_blur

    b = pred.shape[0]
    sigma = torch.full((b,), COARSE_SIGMA * min(pred.shape[-2], pred.shape[-1]), device=pred.device)
    return F.l1_loss(gaussian_blur(pred, sigma), gaussian_blur(target, sigma))


def parse_loss_spec(spec: str | dict) -> dict[str, float]:
    """``"0.8*l1+0.2*ssim"`` / ``{"l1": 0.8}`` → ``{"l1": 0.8, "ssim": 0.2}``; ValueError if bad."""
    terms: dict[str, float] = {}
    if isinstance(spec, dict):
        items = list(spec.items())
    elif isinstance(spec, str):
        items = []
        for part in spec.replace(" ", "").split("+"):
            if not part:
                raise ValueError(f"empty term in loss '{spec}'")
            if "*" in part:
                w, _, name = part.partition("*")
                try:
                    items.append((name, float(w)))
                except ValueError:
                    raise ValueError(f"bad weight '{w}' in loss '{spec}'") from None
            else:
                items.append((part, 1.0))
    else:
        raise ValueError(f"loss must be a string or a mapping, got {type(spec).__name__}")
    for name, weight in items:
        if name not in LOSSES:  # UnknownNameError is a ValueError
            raise LOSSES.unknown(name)
        if isinstance(weight, bool) or not isinstance(weight, int | float) or weight <= 0:
            raise ValueError(f"loss weight of '{name}' must be a positive number, got {weight!r}")
        terms[name] = terms.get(name, 0.0) + float(weight)
    if not terms:
        raise ValueError("the loss has no terms")
    return terms


class CompositeLoss(nn.Module):
    """Weighted sum of loss terms; ``forward`` returns ``(total, {term: value})`` in float32."""

    def __init__(self, spec: str | dict) -> None:
        super().__init__()
        self.terms = parse_loss_spec(spec)

    def forward(self, pred: Tensor, target: Tensor) -> tuple[Tensor, dict[str, Tensor]]:
        pred, target = pred.float(), target.float()
        parts = {name: LOSSES[name](pred, target) for name in self.terms}
        total = sum(self.terms[name] * value for name, value in parts.items())
        return total, parts


def build_loss(spec: str | dict) -> CompositeLoss:
    """The loss module for a ``train.loss`` spec."""
    return CompositeLoss(spec)


#: A pixel counts as damaged when the damage moved it by more than this (float [0, 1] scale).
DAMAGE_MASK_THRESHOLD = 0.06


#: How :func:`damage_mask` forgives an outline within its tolerance: ``range``, a damaged value
#: within the clean glyph's local range (outline moves and blurs); ``moved``, a damaged value that
#: the clean glyph holds nearby (outline moves only: a blur's new grey levels stay marked);
#: ``outline``, as ``moved`` and the clean value also held nearby by the damaged glyph (the
#: outline moved and is still there: a stroke or gap no wider than 2r that vanished stays marked,
#: and so does a stroke dimmed all over); ``stroke``, as ``moved`` but a stroke (gap) of the clean
#: glyph with no ink (paper) of the damaged glyph within r px stays marked (a dimmed stroke that is
#: still ink is judged by ``moved`` alone).
MASK_FORGIVE = ("range", "moved", "outline", "stroke")

#: Ink level (float [0, 1]) that tells ink from paper for ``forgive="stroke"``.
INK_LEVEL = 0.5

#: How :func:`composite_mask_loss` supervises the pixels the tolerance forgives: ``intact``, as
#: not damaged (mask target 0); ``unsupervised``, not at all (left to the output loss).
MASK_FORGIVEN = ("intact", "unsupervised")


def damage_mask(
    damaged: Tensor,
    clean: Tensor,
    threshold: float = DAMAGE_MASK_THRESHOLD,
    tolerance: int = 0,
    forgive: str = "range",
) -> Tensor:
    """The pixels the damage changed: float ``(B, 1, H, W)`` in {0, 1} (1 = damaged).

    With ``tolerance`` r > 0 a changed pixel is not marked when the change is an outline moved by
    at most r pixels, since a hand varies that much: with ``forgive="range"`` when its damaged
    value lies within the clean glyph's range over r pixels (light erosion, dilation or blur),
    with ``forgive="moved"`` when the clean glyph holds that value (within ``threshold``) at most
    r pixels away (erosion and dilation; a blur's new grey levels stay marked), with
    ``forgive="outline"`` when, besides, the damaged glyph holds the clean value at most r pixels
    away: the outline moved but is still there. ``moved`` alone also forgives a stroke (or a gap
    between strokes) at most 2r px wide that the damage removed (filled) whole, since every pixel
    of it has paper (ink) within r px in the clean glyph; ``outline`` marks it, and also every
    pixel whose clean level the damage left nowhere near (a blur's dimmed strokes, and so a real
    hand's grey ink if it were taken for dimmed). ``forgive="stroke"`` marks only what vanished:
    clean ink (above :data:`INK_LEVEL`) with no damaged ink within r px, clean paper with no
    damaged paper within r px.
    """
    damaged, clean = damaged.float(), clean.float()
    if tolerance <= 0:
        return ((damaged - clean).abs() > threshold).float()
    r, k = tolerance, 2 * tolerance + 1
    if forgive == "range":
        hi = F.max_pool2d(clean, k, stride=1, padding=r)
        lo = -F.max_pool2d(-clean, k, stride=1, padding=r)
        return ((damaged > hi + threshold) | (damaged < lo - threshold)).float()
    if forgive not in MASK_FORGIVE:
        raise ValueError(f"forgive must be one of {MASK_FORGIVE}, got {forgive!r}")
    marked = _nearest_gap(damaged, clean, r) > threshold
    if forgive == "outline":
        marked |= _nearest_gap(clean, damaged, r) > threshold
    elif forgive == "stroke":
        near_ink = F.max_pool2d(damaged, k, stride=1, padding=r) > INK_LEVEL
        near_paper = -F.max_pool2d(-damaged, k, stride=1, padding=r) <= INK_LEVEL
        ink = clean > INK_LEVEL
        marked |= (ink & ~near_ink) | (~ink & ~near_paper)
    return marked.float()


def _nearest_gap(values: Tensor, field: Tensor, r: int) -> Tensor:
    """Per pixel, ``min |values(p) - field(q)|`` over q within r px (a (2r+1)² square) of p."""
    h, w = field.shape[-2:]
    padded = F.pad(field, (r, r, r, r), mode="replicate")
    nearest = torch.full_like(values, float("inf"))
    for dy in range(2 * r + 1):
        for dx in range(2 * r + 1):
            nearest = torch.minimum(nearest, (values - padded[..., dy : dy + h, dx : dx + w]).abs())
    return nearest


def composite_mask_loss(
    parts: Tensor,
    x: Tensor,
    target: Tensor,
    criterion: CompositeLoss,
    mask_weight: float,
    mask_tolerance: int = 0,
    mask_forgive: str = "range",
    mask_forgiven: str = "intact",
    content_weight: float = 0.0,
) -> Tensor:
    """Loss of a composite model from its ``(content, mask)`` output ``parts`` (B, 2, H, W).

    The output ``m * c + (1 - m) * x[:, :1]`` is scored by ``criterion`` against ``target``, and
    the mask ``m`` by binary cross-entropy against :func:`damage_mask` (weight ``mask_weight``;
    outlines moved by at most ``mask_tolerance`` px forgiven as ``mask_forgive`` says), so that
    ``m`` marks what the damage changed and nothing else. ``mask_forgiven``: the forgiven
    pixels (changed, but within the tolerance) are a target 0 (``intact``) or left out of the
    BCE (``unsupervised``; the mean still runs over all pixels, so the BCE's scale is kept).

    ``content_weight`` > 0 also scores the content ``c`` itself against ``target`` on every
    pixel (``criterion``, times that weight). Without it ``c`` is unsupervised wherever the mask
    is 0 — most of an intact glyph — and may drift there to anything; a mask that then fires a
    little (inside a wide stroke, say) lets that drift into the output.
    """
    if mask_forgiven not in MASK_FORGIVEN:
        raise ValueError(f"mask_forgiven must be one of {MASK_FORGIVEN}, got {mask_forgiven!r}")
    parts, x0, target = parts.float(), x[:, :1].float(), target.float()
    content, mask = parts[:, :1], parts[:, 1:2]
    restored = mask * content + (1.0 - mask) * x0
    loss, _ = criterion(restored, target)
    if content_weight > 0:
        loss = loss + content_weight * criterion(content, target)[0]
    marked = damage_mask(x0, target, tolerance=mask_tolerance, forgive=mask_forgive)
    weight = None
    if mask_forgiven == "unsupervised" and mask_tolerance > 0:
        forgiven = damage_mask(x0, target) * (1.0 - marked)
        weight = 1.0 - forgiven
    bce = F.binary_cross_entropy(mask.clamp(1e-6, 1.0 - 1e-6), marked, weight=weight)
    return loss + mask_weight * bce
