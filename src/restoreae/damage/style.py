"""Style transforms: synthetic writers, applied to the *clean target* before damage.

Damage (:mod:`restoreae.damage.torch_ops`) only touches the model's input; a style transform
changes the glyph itself, so the training pair (damaged input → target) shows a hand that no
installed font has: heavier or lighter strokes that vary along the stroke, warped and sheared
shapes, rough brush edges, dry-brush gaps (飞白), paler ink, black-and-white scans. The reference
channel stays the standard font, so the model learns to restore the writer's shape rather than
copy the font's.

Every op is ``fn(x, generator, **params) -> x`` on ``float32 (B, 1, H, W)`` in ``[0, 1]``, white
ink (1) on black (0), batched on ``x.device``; each sample draws its own parameters from
``generator``. Pixel sizes are relative to a 128 px glyph and scale with the image.
:class:`StyleTransform` applies each op of a config to a random share ``p`` of the samples.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

import torch
import torch.nn.functional as F

from restoreae.damage.torch_kernels import (
    dilate,
    dilate_disc,
    erode,
    erode_disc,
    gaussian_blur,
    ink_points,
    per_sample,
    pixel_coords,
    rand,
    randint,
    size_scale,
    skeleton,
    smooth_noise,
    uniform,
)
from restoreae.errors import ConfigError
from restoreae.registry import Registry

Tensor = torch.Tensor
StyleFn = Callable[..., Tensor]


class StyleOp(NamedTuple):
    """A registered style op: the batched function and its default parameters."""

    fn: StyleFn
    defaults: dict[str, Any]


#: Registered style ops (a :class:`restoreae.registry.Registry` of :class:`StyleOp`), in the order
#: :class:`StyleTransform` applies them. The built-in ones are defined in this module.
STYLE_OPS: Registry[StyleOp] = Registry("style op")


def register_style(name: str, **defaults: Any) -> Callable[[StyleFn], StyleFn]:
    """Decorator registering a batched style op under ``name`` with its default parameters."""

    def deco(fn: StyleFn) -> StyleFn:
        STYLE_OPS.register(name, StyleOp(fn, dict(defaults)))
        return fn

    return deco


def list_style_ops() -> list[str]:
    """Names of the registered style ops, in the order :class:`StyleTransform` applies them."""
    return STYLE_OPS.names()


def _warp(x: Tensor, dx: Tensor, dy: Tensor) -> Tensor:
    """Sample ``x`` (B, 1, H, W) at pixel offsets ``dx``/``dy`` (B, 1, H, W), zero outside."""
    b, _, h, w = x.shape
    ys = torch.linspace(-1.0, 1.0, h, device=x.device).view(1, h, 1).expand(b, h, w)
    xs = torch.linspace(-1.0, 1.0, w, device=x.device).view(1, 1, w).expand(b, h, w)
    grid = torch.stack(
        [xs + dx[:, 0] * (2.0 / max(w - 1, 1)), ys + dy[:, 0] * (2.0 / max(h - 1, 1))], dim=-1
    )
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)


# ------------------------------------------------------------------------------------------ ops
@register_style("stroke_weight", radius=(-1.5, 2.5), vary=(0.3, 0.9), cells=(2, 5), shape="square")
def stroke_weight(
    x: Tensor, gen: torch.Generator, *, radius: Any, vary: Any, cells: Any, shape: str
) -> Tensor:
    """Thicker (radius > 0) or thinner (< 0) strokes, by ``|radius|`` px of grey-level dilation or
    erosion with a ``shape`` of ``"square"`` (a 2·|radius|+1 px window, like the seed's
    ``erode_dilate`` damage) or ``"disc"`` (a round brush: no square corners, diagonals no
    heavier than the rest; radii to the half pixel, under 1 px unchanged); the change fades in
    and out along the strokes (``vary`` of it follows smooth noise with ``cells`` blobs per
    side). Thinning never removes more than half of a glyph's ink."""
    if shape not in ("square", "disc"):
        raise ConfigError(f"stroke_weight: shape must be 'square' or 'disc', got {shape!r}")
    b, _, h, w = x.shape
    r = uniform(gen, (b,), radius, x.device) * size_scale(x)
    if shape == "square":  # odd-ish window of 2 r + 1 pixels; 1 px changes nothing
        size, smallest, thicken, thin = (2.0 * r.abs()).round() + 1, 2.0, dilate, erode
    else:  # radii to the half pixel: few distinct discs
        size, smallest, thicken, thin = (2.0 * r.abs()).round() / 2.0, 1.0, dilate_disc, erode_disc
    out = x.clone()
    for s in torch.unique(size).tolist():
        if s < smallest:
            continue
        for op, side in ((thicken, r > 0), (thin, r < 0)):
            idx = torch.nonzero((size == s) & side).squeeze(1)
            if idx.numel():
                out[idx] = op(x[idx], int(s) if shape == "square" else s)
    weight = 1.0 - per_sample(uniform(gen, (b,), vary, x.device)) * smooth_noise(
        gen, b, h, w, cells, x.device
    )
    # Partial weights would leave grey halos; a contrast ramp keeps edges 1-2 px soft, as drawn.
    out = ((x + weight * (out - x) - 0.5) * 3.0 + 0.5).clamp(0.0, 1.0)
    ink_before = x.flatten(1).sum(1)
    ink_after = out.flatten(1).sum(1)
    too_thin = ink_after < 0.5 * ink_before
    return torch.where(per_sample(too_thin), x, out)


@register_style("pen", radius=(1.0, 2.0), swell=(0.0, 0.6), cells=(2, 5), soften=(0.3, 0.8))
def pen(
    x: Tensor, gen: torch.Generator, *, radius: Any, swell: Any, cells: Any, soften: Any
) -> Tensor:
    """A hard pen's hand: the glyph's medial lines (:func:`~restoreae.damage.torch_kernels.
    skeleton` of its ink > 0.5) redrawn with a round nib of ``radius`` px — the uniform thin
    strokes of pen handwriting, which no installed font draws. The nib widens by up to ``swell``
    × radius where smooth noise (``cells`` blobs per side) says the pen pressed harder; outlines
    are softened by a Gaussian of ``soften`` px, as a grey scan shows. Radii to the half pixel;
    a glyph without ink stays as it is. Runs after ``stroke_weight``: strokes that a heavy weight
    has merged give medial lines that loop through the merged ink."""
    b, _, h, w = x.shape
    dev = x.device
    lines = skeleton(x)
    r = uniform(gen, (b,), radius, dev) * size_scale(x)
    wide = r * (1.0 + uniform(gen, (b,), swell, dev))
    nibs = []
    for radii in (r, wide):
        radii = (2.0 * radii).round() / 2.0
        drawn = lines.clone()
        for s in torch.unique(radii).tolist():
            idx = torch.nonzero(radii == s).squeeze(1)
            drawn[idx] = dilate_disc(lines[idx], s)
        nibs.append(drawn)
    press = smooth_noise(gen, b, h, w, cells, dev)
    out = ((nibs[0] + press * (nibs[1] - nibs[0]) - 0.5) * 3.0 + 0.5).clamp(0.0, 1.0)
    sigma = uniform(gen, (b,), soften, dev).clamp(min=0.05) * size_scale(x)
    out = gaussian_blur(out, sigma)
    has_ink = lines.flatten(1).amax(1) > 0
    return torch.where(per_sample(has_ink), out, x)


@register_style("affine", rotate=(-6.0, 6.0), shear=(-0.2, 0.2), aspect=(0.85, 1.18))
def affine(x: Tensor, gen: torch.Generator, *, rotate: Any, shear: Any, aspect: Any) -> Tensor:
    """Rotation (degrees), horizontal shear and aspect ratio (width / height) about the centre;
    the glyph keeps its area, so its size in the frame stays about the same."""
    b = x.shape[0]
    dev = x.device
    a = uniform(gen, (b,), rotate, dev) * (math.pi / 180.0)
    s = uniform(gen, (b,), shear, dev)
    asp = uniform(gen, (b,), aspect, dev)
    sx, sy = asp.sqrt(), 1.0 / asp.sqrt()
    cos, sin = torch.cos(a), torch.sin(a)
    # forward map: rotate · shear · scale; grid_sample needs the inverse (output → input).
    fwd = torch.zeros(b, 2, 2, device=dev)
    fwd[:, 0, 0], fwd[:, 0, 1] = cos * sx, (cos * s - sin) * sy
    fwd[:, 1, 0], fwd[:, 1, 1] = sin * sx, (sin * s + cos) * sy
    theta = torch.zeros(b, 2, 3, device=dev)
    theta[:, :, :2] = torch.linalg.inv(fwd)
    grid = F.affine_grid(theta, list(x.shape), align_corners=False)
    return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


@register_style("elastic", amount=(1.0, 4.0), cells=(3, 6))
def elastic(x: Tensor, gen: torch.Generator, *, amount: Any, cells: Any) -> Tensor:
    """Smooth elastic warp: every pixel moves by up to ``amount`` px along a random smooth field
    (``cells`` blobs per side), bending strokes the way hands differ from a font."""
    b, _, h, w = x.shape
    amp = per_sample(uniform(gen, (b,), amount, x.device) * size_scale(x))
    dx = (smooth_noise(gen, b, h, w, cells, x.device) * 2.0 - 1.0) * amp
    dy = (smooth_noise(gen, b, h, w, cells, x.device) * 2.0 - 1.0) * amp
    return _warp(x, dx, dy)


@register_style("stroke_omission", n=(1, 2), radius=(7.0, 18.0), rounding=(1.2, 2.5), max_loss=0.35)
def stroke_omission(
    x: Tensor, gen: torch.Generator, *, n: Any, radius: Any, rounding: Any, max_loss: Any
) -> Tensor:
    """Strokes a fluent hand leaves out (running and cursive script draw fewer strokes than the
    standard form): the ink inside ``n`` irregular discs of ``radius`` px, centred on ink, is
    removed and the cut ends are rounded like drawn stroke ends (a blur of ``rounding`` px,
    re-thresholded, near the discs only; ink is never added). The reference keeps the standard
    form, so the model meets glyphs that lack strokes the reference has *without damage*, and
    must not redraw them. A sample that would lose more than ``max_loss`` of its ink is kept."""
    b, _, h, w = x.shape
    dev = x.device
    scale = size_scale(x)
    count = randint(gen, (b,), n, dev)
    nmax = max(1, int(count.max()))
    cy, cx = ink_points(gen, x, nmax)  # (B, n)
    r = uniform(gen, (b, nmax), radius, dev) * scale
    r = r * (torch.arange(nmax, device=dev)[None] < count[:, None])  # inactive discs: radius 0
    yy, xx = pixel_coords(h, w, dev)
    dist2 = (yy[None] - cy[..., None, None]) ** 2 + (xx[None] - cx[..., None, None]) ** 2
    wobble = 0.85 + 0.3 * smooth_noise(gen, b, h, w, (2, 4), dev)  # irregular outline
    inside = (dist2 < (r[..., None, None] * wobble) ** 2).any(dim=1, keepdim=True)
    cut = x * (~inside).to(x.dtype)
    sigma = uniform(gen, (b,), rounding, dev) * scale
    rounded = ((gaussian_blur(cut, sigma) - 0.45) * 4.0 + 0.5).clamp(0.0, 1.0)
    band = int(math.ceil(3.0 * float(sigma.max()))) * 2 + 1
    near = dilate(inside.to(x.dtype), band) > 0
    out = torch.where(near, torch.minimum(rounded, cut), cut)
    lost = 1.0 - out.flatten(1).sum(1) / x.flatten(1).sum(1).clamp(min=1e-6)
    keep = lost > uniform(gen, (b,), max_loss, dev)
    return torch.where(per_sample(keep), x, out)


@register_style("brush_edge", amount=(0.15, 0.4), cells=(16, 32))
def brush_edge(x: Tensor, gen: torch.Generator, *, amount: Any, cells: Any) -> Tensor:
    """Rough brush outlines: the glyph is re-thresholded at a level that wanders by ``amount``
    around 0.5 (fine noise of ``cells`` blobs per side) after a slight blur."""
    b, _, h, w = x.shape
    soft = gaussian_blur(x, torch.full((b,), 1.0 * size_scale(x), device=x.device))
    noise = smooth_noise(gen, b, h, w, cells, x.device) * 2.0 - 1.0
    level = 0.5 + per_sample(uniform(gen, (b,), amount, x.device)) * noise * 0.5
    return torch.sigmoid((soft - level) * 14.0) * (soft > 0.02)


@register_style("dry_brush", coverage=(0.2, 0.5), streak=(8.0, 24.0), gaps=(0.25, 0.5))
def dry_brush(x: Tensor, gen: torch.Generator, *, coverage: Any, streak: Any, gaps: Any) -> Tensor:
    """Dry-brush gaps (飞白): thin streaks without ink, ``streak`` px long along the stroke
    direction (horizontal or vertical per sample), over a smooth region covering about
    ``coverage`` of the glyph; ``gaps`` is the share of streak pixels left dry there."""
    b, _, h, w = x.shape
    dev = x.device
    length = uniform(gen, (b,), streak, dev) * size_scale(x)
    # Streak noise: random per row, smooth along the row (one sample = one length; grouped).
    lengths = length.round().clamp(min=2).long()
    field = torch.empty_like(x)
    for ln in torch.unique(lengths).tolist():
        idx = torch.nonzero(lengths == ln).squeeze(1)
        cols = max(2, w // int(ln) + 2)
        base = rand(gen, (idx.numel(), 1, h, cols), dev)
        field[idx] = F.interpolate(base, size=(h, w), mode="bilinear", align_corners=True)
    vertical = rand(gen, (b,), dev) < 0.5
    if h == w and bool(vertical.any()):
        field = torch.where(per_sample(vertical), field.transpose(-1, -2), field)
    dry = (field < per_sample(uniform(gen, (b,), gaps, dev))).float()
    region = smooth_noise(gen, b, h, w, (2, 4), dev)
    region = (region > 1.0 - per_sample(uniform(gen, (b,), coverage, dev))).float()
    return x * (1.0 - dry * region)


@register_style("ink_density", level=(0.8, 1.0), gamma=(0.7, 1.4))
def ink_density(x: Tensor, gen: torch.Generator, *, level: Any, gamma: Any) -> Tensor:
    """Paler or fuller ink: ``level * x ** gamma`` per sample."""
    b = x.shape[0]
    g = per_sample(uniform(gen, (b,), gamma, x.device))
    return per_sample(uniform(gen, (b,), level, x.device)) * x.clamp(min=0.0) ** g


@register_style("binarize", level=(0.35, 0.65), blur=(0.0, 1.2))
def binarize(x: Tensor, gen: torch.Generator, *, level: Any, blur: Any) -> Tensor:
    """A binarized scan: hard 0/1 ink at a per-sample threshold ``level``, after a blur of
    ``blur`` px (relative to 128 px) that rounds or thickens the outline the way a scanner's
    optics do before thresholding. Runs last, so paler ink (``ink_density``) becomes full ink,
    as in a black-and-white scan."""
    b = x.shape[0]
    sigma = uniform(gen, (b,), blur, x.device) * size_scale(x)
    soft = x
    if bool((sigma > 0.05).any()):
        soft = torch.where(per_sample(sigma > 0.05), gaussian_blur(x, sigma.clamp(min=0.05)), x)
    return (soft > per_sample(uniform(gen, (b,), level, x.device))).to(x.dtype)


@register_style("soft_edge", sigma=(0.4, 1.2))
def soft_edge(x: Tensor, gen: torch.Generator, *, sigma: Any) -> Tensor:
    """Soft outlines, as a pen or brush scanned in grey shows: a Gaussian blur of ``sigma`` px
    (relative to 128 px). Real handwriting's outlines ramp over ~2.2 px (mid-tone pixels per
    outline pixel, real-dev median) where the fonts' are ~0.7; a model trained only on the
    latter sharpens intact soft outlines as if they were blur damage. Runs after ``binarize``."""
    b = x.shape[0]
    s = uniform(gen, (b,), sigma, x.device).clamp(min=0.05) * size_scale(x)
    return gaussian_blur(x, s)


@register_style("ink_grain", speckle=(0.1, 0.35), depth=(0.3, 0.8), ragged=(0.15, 0.4))
def ink_grain(x: Tensor, gen: torch.Generator, *, speckle: Any, depth: Any, ragged: Any) -> Tensor:
    """Grainy ink, as a ballpoint or a dry pen scanned shows (real-dev handwriting): a share
    ``speckle`` of the ink pixels paler by up to ``depth``, and a share ``ragged`` of the
    outline's pixels moved by one pixel — an ink pixel on the outline lost or a paper pixel beside
    it inked (half each). Pixel-scale, so it runs last, after ``binarize`` and ``soft_edge``: the
    grain and the 1 px raggedness are the writer's, not an erosion's."""
    b, dev = x.shape[0], x.device
    ink = (x > 0.5).float()
    pale = (rand(gen, tuple(x.shape), dev) < per_sample(uniform(gen, (b,), speckle, dev))).float()
    out = x * (
        1.0 - pale * rand(gen, tuple(x.shape), dev) * per_sample(uniform(gen, (b,), depth, dev))
    )
    inner = erode(ink, 3)  # ink with no paper beside it
    outer = dilate(ink, 3)  # ink or paper beside ink
    edge_ink, edge_paper = ink * (1.0 - inner), (1.0 - ink) * outer
    move = (rand(gen, tuple(x.shape), dev) < per_sample(uniform(gen, (b,), ragged, dev))).float()
    lose = move * edge_ink * (rand(gen, tuple(x.shape), dev) < 0.5).float()
    gain = move * edge_paper * (rand(gen, tuple(x.shape), dev) < 0.5).float()
    level = (x * ink).flatten(1).sum(1) / ink.flatten(1).sum(1).clamp(min=1.0)  # mean ink level
    return out * (1.0 - lose) + gain * per_sample(level)


# ------------------------------------------------------------------------------------- config
@dataclass
class StyleConfig:
    """Which style ops run, on what share ``p`` of samples, with which parameters.

    ``ops``: ``{name: {"p": share, **params}}``; a missing parameter takes the op's default.
    """

    ops: dict[str, dict[str, Any]] = field(default_factory=dict)

    @classmethod
    def resolve(cls, spec: str | dict | None) -> StyleConfig | None:
        """``None``/``"none"`` → None; a preset name; a YAML path; or an inline mapping."""
        if spec is None or spec == "none":
            return None
        if isinstance(spec, str):
            if spec in STYLE_PRESETS:
                return cls.from_dict(STYLE_PRESETS[spec], where=f"style preset {spec!r}")
            path = Path(spec)
            if not path.is_file():
                raise ConfigError(
                    f"style {spec!r}: not a preset ({', '.join(STYLE_PRESETS)}) nor a YAML file"
                )
            import yaml

            try:
                raw = yaml.safe_load(path.read_text(encoding="utf-8"))
            except (OSError, yaml.YAMLError) as exc:
                raise ConfigError(f"style file {path}: cannot read ({exc})") from None
            return cls.from_dict(raw, where=str(path))
        if isinstance(spec, dict):
            return cls.from_dict(spec, where="style")
        raise ConfigError(f"style must be a preset name, a YAML path or a mapping, got {spec!r}")

    @classmethod
    def from_dict(cls, raw: Any, where: str) -> StyleConfig:
        """Validate ``{"ops": {name: {"p": ..., **params}}}`` (or the inner mapping itself)."""
        if not isinstance(raw, dict):
            raise ConfigError(f"{where}: expected a mapping, got {type(raw).__name__}")
        ops = raw.get("ops", raw)
        if not isinstance(ops, dict):
            raise ConfigError(f"{where}: 'ops' must map op names to settings")
        out: dict[str, dict[str, Any]] = {}
        for name, settings in ops.items():
            defaults = STYLE_OPS.get_entry(name, where).defaults
            settings = dict(settings or {})
            p = settings.pop("p", 0.5)
            if isinstance(p, bool) or not isinstance(p, int | float) or not 0.0 <= p <= 1.0:
                raise ConfigError(f"{where}: {name}.p must be a share in [0, 1], got {p!r}")
            unknown = sorted(set(settings) - set(defaults))
            if unknown:
                raise ConfigError(
                    f"{where}: {name} has no parameter(s) {unknown}; known: {sorted(defaults)}"
                )
            out[name] = {"p": float(p), **defaults, **settings}
        return cls(out)


# Heavier hands: brush calligraphy's strokes are up to 5 px (at 128 px) thicker than a font's and
# its outlines rough; intact heavy ink must not look like damage.
_BRUSH_OPS: dict[str, dict[str, Any]] = {
    "stroke_weight": {"p": 0.7, "radius": [-1.5, 5.0]},
    "affine": {"p": 0.5},
    "elastic": {"p": 0.6, "amount": [1.0, 5.0]},
    "brush_edge": {"p": 0.5},
    "dry_brush": {"p": 0.2},
    "ink_density": {"p": 0.2},
}

# Running script with a loaded brush has strokes up to ~25 px wide at 128 px (a Kai font's ~7), heavy
# downstrokes beside thin joins; this reaches ~22 px on a Kai stroke, the extra weight fading along
# it. Meant to stop wide solid strokes being erased as painted patches;
# measured, it helps combined damage on every held-out set but not that (docs/RESULTS.md, "Heavy
# strokes").
_HEAVY_WEIGHT: dict[str, dict[str, Any]] = {
    "stroke_weight": {"p": 0.7, "radius": [-1.5, 8.0], "vary": [0.7, 1.0], "cells": [3, 6]}
}

# ``calligraphy-heavy`` with the weight drawn by a round brush (the ``calligraphy-round`` preset).
_ROUND_OPS: dict[str, dict[str, Any]] = {
    **_BRUSH_OPS,
    "stroke_weight": {**_HEAVY_WEIGHT["stroke_weight"], "shape": "disc"},
    "binarize": {"p": 0.4},
}

#: Built-in style configs. ``writers``: a mild synthetic-writer mix (first `faithful` model);
#: ``brush``: heavy brush strokes too; ``calligraphy``: ``brush`` plus black-and-white scans
#: (hard, jagged outlines whose intact edges must not be taken for damage; `faithful` v2–v5);
#: ``calligraphy-heavy``: ``calligraphy`` with strokes up to 8 px heavier per side (`faithful` v6);
#: ``real-hands``: ``calligraphy-heavy`` with soft, grey-scanned outlines on a third of the glyphs
#: (candidate v8: better on real writing, leaves blurred fonts soft; docs/RESULTS.md, "Soft outlines");
#: ``calligraphy-round``: ``calligraphy-heavy`` with the weight drawn by a round brush (disc), so
#: that square corners and heavier diagonals mark the seed's ``erode_dilate`` damage, not a writer
#: (default v14 to v16; docs/RESULTS.md, "A round brush for the writers' weight");
#: ``calligraphy-grain``: ``calligraphy-round`` with grainy ink (speckle, ragged 1 px outlines) on
#: 35 % of the glyphs, as real pen handwriting shows (candidate f23; docs/RESULTS.md);
#: ``calligraphy-pen``: ``calligraphy-round`` with 30 % of the glyphs redrawn by a hard pen
#: (monoline strokes 2-5 px wide, as pen handwriting has; candidate f24; docs/RESULTS.md);
#: ``running-script``: ``calligraphy-heavy`` with strokes left out on 30 % of the glyphs (running
#: and cursive hands lack strokes the standard form has; a validation style: docs/RESULTS.md, "Ink
#: that leaves no trace").
STYLE_PRESETS: dict[str, dict[str, Any]] = {
    "writers": {
        "ops": {
            "stroke_weight": {"p": 0.6},
            "affine": {"p": 0.5},
            "elastic": {"p": 0.5},
            "brush_edge": {"p": 0.3},
            "dry_brush": {"p": 0.15},
            "ink_density": {"p": 0.2},
        }
    },
    "brush": {"ops": _BRUSH_OPS},
    "calligraphy": {"ops": {**_BRUSH_OPS, "binarize": {"p": 0.4}}},
    "calligraphy-heavy": {
        "ops": {**_BRUSH_OPS, **_HEAVY_WEIGHT, "binarize": {"p": 0.4}},
    },
    "calligraphy-round": {"ops": _ROUND_OPS},
    "calligraphy-grain": {"ops": {**_ROUND_OPS, "ink_grain": {"p": 0.35}}},
    "calligraphy-pen": {"ops": {**_ROUND_OPS, "pen": {"p": 0.3}}},
    "real-hands": {
        "ops": {**_BRUSH_OPS, **_HEAVY_WEIGHT, "binarize": {"p": 0.4}, "soft_edge": {"p": 0.35}},
    },
    "running-script": {
        "ops": {
            **_BRUSH_OPS,
            **_HEAVY_WEIGHT,
            "stroke_omission": {"p": 0.3},
            "binarize": {"p": 0.4},
        },
    },
}


class StyleTransform:
    """Batched synthetic-writer transform: ``style(x, generator) -> x`` on float (B, 1, H, W)
    in [0, 1], white on black. Ops run in registry order, each on its own random share ``p`` of
    the samples; deterministic for a given generator state."""

    def __init__(self, config: StyleConfig) -> None:
        self.config = config
        order = list(STYLE_OPS)
        self.ops = sorted(config.ops, key=order.index)

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        if x.ndim != 4 or x.shape[1] != 1 or not x.is_floating_point():
            raise ValueError(f"expected float (B, 1, H, W), got {x.dtype} {tuple(x.shape)}")
        out = x.float().clone()
        b = x.shape[0]
        for name in self.ops:
            settings = dict(self.config.ops[name])
            p = settings.pop("p")
            chosen = torch.nonzero(rand(generator, (b,), x.device) < p).squeeze(1)
            if chosen.numel():
                fn = STYLE_OPS[name].fn
                out[chosen] = fn(out[chosen], generator, **settings).clamp(0.0, 1.0)
        return out.to(x.dtype)


def build_style(spec: str | dict | None) -> StyleTransform | None:
    """The style transform of a ``data.style`` spec (preset, YAML path, mapping), or None."""
    cfg = StyleConfig.resolve(spec)
    return StyleTransform(cfg) if cfg is not None and cfg.ops else None


__all__ = [
    "STYLE_OPS",
    "STYLE_PRESETS",
    "StyleOp",
    "StyleConfig",
    "StyleTransform",
    "build_style",
    "list_style_ops",
    "register_style",
]
