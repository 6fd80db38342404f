"""Real-image preprocessing for restoration, and its inverse.

A real photo or scan of one character is turned into what the models were trained on — a
``uint8`` (S, S) glyph, **white ink (255) on a black background (0)**, centred with a margin — and
the model's S×S answer is mapped back into the input's frame, polarity and grey levels:

1. :func:`~restoreae.imageio.load_image`: any image file → ``uint8`` (H, W) grey, own polarity.
2. :func:`~restoreae.imageio.detect_polarity`: dark ink on paper, or light strokes on a rubbing.
3. :func:`prepare`: uneven lighting levelled (the paper level estimated from paper pixels
   only; only when the light varies by at least :data:`LIGHTING_RANGE` grey levels across the
   picture, so that grey patches on an evenly lit scan reach the model as damage), contrast
   stretch between the background's median grey and the ink's 95th percentile (damaged ink is
   mostly dimmer than the true ink), glyph box from the Otsu ink mask
   (specks dropped) plus a margin, square crop around it (padded with background where it leaves
   the image; the whole picture when the glyph already fills it), resize to S×S.
4. :func:`finish`: the model's restored S×S content and its restoration mask (composite models;
   for others, what the model changed) are enlarged to the square at the input's own resolution;
   only where the mask says so is the input replaced, by the restored ink drawn on a background
   estimated from the input itself, in its polarity, grey levels or RGB colour. Everything else
   (intact strokes, paper texture, lighting, the picture outside the square) is the input's own.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

import cv2
import numpy as np

from restoreae.errors import RestoreAEError
from restoreae.imageio import (  # noqa: F401  (re-exported for the restore API)
    IMAGE_EXTENSIONS,
    MAX_PIXELS,
    ImageError,
    detect_polarity,
    load_image,
    otsu_threshold,
)

#: Glyph box margin (fraction of the box's longer side, each side): the ink then spans ~77% of S,
#: like the corpus glyphs (drawn at an em of 0.8 S).
MARGIN: float = 0.15
#: A square crop at least this fraction of the picture's longer side becomes the whole picture.
FULL_FRAME: float = 0.85
#: Width of the blending band at the edge of the restored square (fraction of its side).
FEATHER: float = 0.06
#: Lighting is levelled only when the paper's light varies by at least this many grey levels
#: (0–255) across the picture (a quadratic fit): photos, not evenly lit scans, whose grey patches
#: and stains are damage the model must see as it was trained to.
LIGHTING_RANGE: float = 48.0

Polarity = Literal["auto", "dark-on-light", "light-on-dark"]


# --------------------------------------------------------------------------- forward mapping
@dataclass
class Prepared:
    """A preprocessed image and what is needed to map the model's output back.

    ``glyph``: uint8 (S, S) model input, white ink on black. ``grey``: uint8 (H, W) input in its
    own polarity. ``norm``: uint8 (H, W), the input in model polarity after lighting
    flattening and the contrast stretch (0 paper, 255 ink). ``colour``: the input's uint8
    (H, W, 3) RGB pixels for a colour picture, else None. ``square``: (x0, y0, side) of the
    square crop in input coordinates (it may extend beyond the image; that part was padded with
    background). ``box``: (x0, y0, x1, y1) of
    the ink, exclusive ends. ``lo``/``hi``: the background / ink grey levels in model polarity
    (ink bright) that were stretched to 0 / 255.
    """

    glyph: np.ndarray
    grey: np.ndarray
    dark_on_light: bool
    lo: float
    hi: float
    box: tuple[int, int, int, int]
    square: tuple[int, int, int]
    colour: np.ndarray | None = None
    norm: np.ndarray | None = None


def _stretch_levels(g: np.ndarray, t: float) -> tuple[float, float]:
    """Background and ink grey levels (model polarity, ink bright) of ``g`` given threshold t."""
    bg = g[g <= t]
    ink = g[g > t]
    if bg.size and ink.size:
        lo = float(np.median(bg))
        hi = float(np.percentile(ink, 95))
    else:
        lo, hi = float(np.percentile(g, 1)), float(np.percentile(g, 99))
    if hi - lo < 16:  # no usable contrast: keep the grey levels as they are
        lo, hi = 0.0, 255.0
    return lo, hi


def _glyph_box(mask: np.ndarray) -> tuple[int, int, int, int]:
    """Bounding box (x0, y0, x1, y1) of the ink ``mask`` ignoring specks; whole image if none."""
    h, w = mask.shape
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return 0, 0, w, h
    areas = stats[1:, cv2.CC_STAT_AREA]
    min_area = max(3, int(round(areas.max() * 0.02)), int(round(h * w * 2e-4)))
    keep = stats[1:][areas >= min_area]
    if keep.size == 0:
        keep = stats[1:][areas == areas.max()]
    x0 = int(keep[:, cv2.CC_STAT_LEFT].min())
    y0 = int(keep[:, cv2.CC_STAT_TOP].min())
    x1 = int((keep[:, cv2.CC_STAT_LEFT] + keep[:, cv2.CC_STAT_WIDTH]).max())
    y1 = int((keep[:, cv2.CC_STAT_TOP] + keep[:, cv2.CC_STAT_HEIGHT]).max())
    return x0, y0, x1, y1


def _flatten_lighting(g: np.ndarray, t: float) -> np.ndarray:
    """Remove uneven lighting from ``g`` (uint8 (H, W), model polarity: ink bright): the paper
    level, estimated from the pixels under the Otsu threshold ``t`` only (so strokes, however
    heavy, do not count), is levelled to its median. Returns float32 (H, W)."""
    g = g.astype(np.float32)
    paper = (g <= t).astype(np.float32)
    if t >= 255.0 or paper.mean() < 0.2:
        return g  # no contrast, or too little paper to see the lighting
    paper = cv2.erode(paper, np.ones((3, 3), np.uint8))
    if _lighting_range(g, paper > 0) < LIGHTING_RANGE:
        return g  # evenly lit: grey patches on the paper are damage to restore, not light
    level = _fill_background(g[..., None], paper, 0.08 * max(g.shape))[..., 0]
    return g - level + float(np.median(g[paper > 0]))


def _lighting_range(g: np.ndarray, paper: np.ndarray) -> float:
    """Range (grey levels) over the picture of a quadratic surface fitted to ``g`` float32 (H, W)
    on the ``paper`` pixels (bool (H, W)): the large-scale unevenness of the light. Pictures
    larger than 256 px are fitted at 256 px (the surface is smooth; memory stays small)."""
    scale = 256.0 / max(g.shape)
    if scale < 1.0:
        size = (max(1, round(g.shape[1] * scale)), max(1, round(g.shape[0] * scale)))
        g = cv2.resize(g, size, interpolation=cv2.INTER_AREA)
        paper = cv2.resize(paper.astype(np.float32), size, interpolation=cv2.INTER_AREA) > 0.999
    if paper.sum() < 6:
        return 0.0
    h, w = g.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u, v = xx * (2.0 / max(w - 1, 1)) - 1.0, yy * (2.0 / max(h - 1, 1)) - 1.0
    terms = [np.ones_like(u), u, v, u * u, u * v, v * v]
    coef, *_ = np.linalg.lstsq(np.stack([t[paper] for t in terms], 1), g[paper], rcond=None)
    surface = sum(c * t for c, t in zip(coef, terms, strict=True))
    return float(surface.max() - surface.min())


def prepare(
    grey: np.ndarray,
    size: int,
    polarity: Polarity = "auto",
    colour: np.ndarray | None = None,
) -> Prepared:
    """Map ``grey`` (uint8 (H, W), any polarity) to the model's input glyph (uint8 (S, S), white
    ink on black, contrast-stretched, centred in a square around the ink with a margin).
    ``colour``: the same picture's uint8 (H, W, 3) RGB pixels when it has colour (kept for
    :func:`finish`), else None."""
    if grey.ndim != 2 or grey.dtype != np.uint8 or grey.size == 0:
        raise ImageError(f"expected a non-empty uint8 (H, W) image, got {grey.dtype} {grey.shape}")
    if polarity == "auto":
        polarity = detect_polarity(grey)
    elif polarity not in ("dark-on-light", "light-on-dark"):
        raise RestoreAEError(f"polarity must be auto, dark-on-light or light-on-dark: {polarity!r}")
    dark_on_light = polarity == "dark-on-light"
    g = (255 - grey) if dark_on_light else grey  # model polarity: ink bright
    t = otsu_threshold(g) if int(g.max()) - int(g.min()) >= 8 else 255.0
    g = _flatten_lighting(g, t)
    lo, hi = _stretch_levels(g, t)
    norm = np.clip((g.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255)
    norm = np.rint(norm).astype(np.uint8)

    h, w = grey.shape
    mask = norm > 127
    box = _glyph_box(mask) if mask.any() else (0, 0, w, h)
    x0, y0, x1, y1 = box
    bw, bh = x1 - x0, y1 - y0
    side = int(round(max(bw, bh) * (1.0 + 2.0 * MARGIN)))
    side = max(side, bw, bh, 1)
    sx0 = (x0 + x1 - side) // 2
    sy0 = (y0 + y1 - side) // 2
    if side >= FULL_FRAME * max(h, w):
        # The glyph (with its margin) fills the picture, as in a cropped character image: take the
        # whole picture, padded to a square, rather than cutting it around its ink — and still
        # with the margin around the ink, padded with background, so the glyph has the size the
        # models were trained on (a glyph touching the frame reads to them as damage).
        cx, cy = w / 2.0, h / 2.0
        pad = MARGIN * max(bw, bh)
        half = max(x1 - cx, cx - x0, y1 - cy, cy - y0) + pad
        side = max(h, w, int(np.ceil(2.0 * half)))
        sx0, sy0 = int(np.floor(cx - side / 2.0)), int(np.floor(cy - side / 2.0))
    ix0, iy0 = max(sx0, 0), max(sy0, 0)
    ix1, iy1 = min(sx0 + side, w), min(sy0 + side, h)
    if _square_fits(side, h, w, size):
        square = np.zeros((side, side), np.uint8)
        square[iy0 - sy0 : iy1 - sy0, ix0 - sx0 : ix1 - sx0] = norm[iy0:iy1, ix0:ix1]
        interp = cv2.INTER_AREA if side >= size else cv2.INTER_CUBIC
        glyph = cv2.resize(square, (size, size), interpolation=interp)
    else:  # a long thin picture: never build its side×side square
        glyph = _shrink_into_square(norm[iy0:iy1, ix0:ix1], (ix0 - sx0, iy0 - sy0), side, size)
    return Prepared(
        norm=norm,
        glyph=np.ascontiguousarray(glyph, dtype=np.uint8),
        grey=grey,
        dark_on_light=dark_on_light,
        lo=lo,
        hi=hi,
        box=box,
        square=(sx0, sy0, side),
        colour=colour,
    )


def _square_fits(side: int, h: int, w: int, size: int) -> bool:
    """Whether a side×side working square is affordable: at most 4× the input's own pixels (or
    4 S×S). Larger squares (a 1×20000 strip gives a 20000² one) take the bounded paths, whose
    memory grows with the input's real size only."""
    return side * side <= 4 * max(h * w, size * size)


def _shrink_into_square(
    region: np.ndarray, offset: tuple[int, int], side: int, size: int
) -> np.ndarray:
    """The S×S glyph of a side×side square holding ``region`` (uint8) at ``offset`` (x, y) on a
    zero background, built without allocating the square: the region alone is resized."""
    scale = size / side
    rh, rw = region.shape
    gx0 = min(size - 1, int(np.floor(offset[0] * scale)))
    gy0 = min(size - 1, int(np.floor(offset[1] * scale)))
    gw = max(1, min(size - gx0, int(round(rw * scale))))
    gh = max(1, min(size - gy0, int(round(rh * scale))))
    glyph = np.zeros((size, size), np.uint8)
    glyph[gy0 : gy0 + gh, gx0 : gx0 + gw] = cv2.resize(
        region, (gw, gh), interpolation=cv2.INTER_AREA
    )
    return glyph


def _square_to_region(
    img: np.ndarray, side: int, offset: tuple[int, int], shape: tuple[int, int]
) -> np.ndarray:
    """The part of ``img`` (float32 (S, S)) scaled to side×side that lies at ``offset`` (x, y)
    with ``shape`` (h, w): float32 (h, w), computed without building the side×side image."""
    s = img.shape[0] / side
    m = np.array(
        [[s, 0.0, (offset[0] + 0.5) * s - 0.5], [0.0, s, (offset[1] + 0.5) * s - 0.5]], np.float64
    )
    return cv2.warpAffine(
        img,
        m,
        (shape[1], shape[0]),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _feather_region(side: int, offset: tuple[int, int], shape: tuple[int, int]) -> np.ndarray:
    """Blend weights of a side×side square — 1 inside, ramping to 0 over its outer
    :data:`FEATHER` band, so the restored square meets the untouched surroundings without a
    seam — cut to ``shape`` (h, w) at ``offset`` (x, y): float32, built from its two ramps."""
    band = max(1.0, FEATHER * side)

    def ramp(start: int, n: int) -> np.ndarray:
        c = np.arange(start, start + n, dtype=np.float32) + 0.5
        return np.clip(np.minimum(c, side - c) / band, 0.0, 1.0)

    return (ramp(offset[1], shape[0])[:, None] * ramp(offset[0], shape[1])[None, :]).astype(
        np.float32
    )


# --------------------------------------------------------------------------- inverse mapping
def _resize(a: np.ndarray, side: int) -> np.ndarray:
    """float32 (S, S) → (side, side): area when shrinking, bilinear when enlarging."""
    if a.shape[0] == side:
        return a
    interp = cv2.INTER_AREA if side < a.shape[0] else cv2.INTER_LINEAR
    return cv2.resize(a, (side, side), interpolation=interp)


def _frame_region(prep: Prepared) -> tuple[tuple[int, int], tuple[int, int]]:
    """``((x, y) offset in the square, (h, w))`` of the part of the square inside the image."""
    sx0, sy0, side = prep.square
    h, w = prep.grey.shape
    ix0, iy0 = max(sx0, 0), max(sy0, 0)
    ix1, iy1 = min(sx0 + side, w), min(sy0 + side, h)
    return (ix0 - sx0, iy0 - sy0), (iy1 - iy0, ix1 - ix0)


def _to_frame(a: np.ndarray, prep: Prepared) -> np.ndarray:
    """float32 (S, S) ``a`` enlarged to the square crop and cut to the part inside the image:
    float32 (h', w'). Memory grows with the input's size, never with the square's (which a long
    thin picture makes huge)."""
    (ox, oy), (rh, rw) = _frame_region(prep)
    side = prep.square[2]
    h, w = prep.grey.shape
    if not _square_fits(side, h, w, a.shape[0]):
        return _square_to_region(a.astype(np.float32), side, (ox, oy), (rh, rw))
    return _resize(a, side)[oy : oy + rh, ox : ox + rw]


def _feather_frame(prep: Prepared) -> np.ndarray:
    """The square's blend weights (:func:`_feather_region`), cut like :func:`_to_frame`."""
    offset, shape = _frame_region(prep)
    return _feather_region(prep.square[2], offset, shape)


def change_mask(restored: np.ndarray, glyph: np.ndarray) -> np.ndarray:
    """Where a direct-output model restored its input: float32 (S, S) in [0, 1].

    ``restored`` float (S, S) in [0, 1]; ``glyph`` the model input, uint8 (S, S). Two kinds of
    change count: areas (at least 3×3 pixels) changed by more than 0.04 — a grey patch, a blob or
    a stain removed, a lost stroke drawn — and any pixel the model turned from ink to paper or
    back (crossing 0.5 by more than 0.15 on both sides together: a thin stroke, a crack, an
    eroded edge). Thin slivers along the outlines where the model merely draws an intact edge
    softer than the writer's do not count: the writer's own edge is kept. The mask is widened by
    a pixel and softened so that restored parts blend in without a seam.
    """
    x = glyph.astype(np.float32) / 255.0
    diff = np.abs(restored - x)
    k3 = np.ones((3, 3), np.uint8)
    areas = cv2.morphologyEx((diff > 0.04).astype(np.uint8), cv2.MORPH_OPEN, k3)
    flipped = ((x - 0.5) * (restored - 0.5) < 0) & (diff > 0.15)
    m = np.maximum(areas, flipped.astype(np.uint8))
    m = cv2.dilate(m, k3).astype(np.float32)
    return cv2.GaussianBlur(m, (5, 5), 1.0)


def _upsample_guided(
    restored: np.ndarray,
    prep: Prepared,
    ink: np.ndarray,
    radius: int = 1,
    eps: float = 1e-3,
    fit_tolerance: float = 0.1,
) -> np.ndarray:
    """The restored glyph ``restored`` float32 (S, S) in [0, 1] enlarged to the input's frame
    region, float32 (h', w') in [0, 1], with the input's own detail where the model kept it.

    A guided upsampling (He & Sun, "Fast Guided Filter", 2015): in each (2·radius+1)² window of
    the S px frame the restoration is fitted as a linear function ``a · glyph + b`` of the model's
    input glyph; the averaged ``a``, ``b``, enlarged, are applied to ``ink`` — the input's prepared
    ink, float32 (h', w') in [0, 1], at full resolution — so an outline the model kept (or made
    steeper) keeps the input's own position and sharpness; what the fit misses at S px is added
    back enlarged. Where the fit misses by more than ``fit_tolerance`` (mean over the window) the
    model did more than keep or sharpen its input — filled a gap, moved an eroded outline — and
    the input's detail there is the damage's: the result fades to the plainly enlarged
    restoration. Equals ``restored`` when no resampling is needed."""
    g = prep.glyph.astype(np.float32) / 255.0
    k = (2 * radius + 1, 2 * radius + 1)

    def box(a: np.ndarray) -> np.ndarray:
        return cv2.blur(a, k, borderType=cv2.BORDER_REFLECT)

    mean_g, mean_r = box(g), box(restored)
    cov = box(g * restored) - mean_g * mean_r
    var = box(g * g) - mean_g * mean_g
    a = cov / (var + eps)
    a, b = box(a), box(mean_r - a * mean_g)
    miss = restored - (a * g + b)
    kept = 1.0 - np.clip(box(np.abs(miss)) / fit_tolerance, 0.0, 1.0)
    enlarged = _to_frame(restored, prep)
    guided = _to_frame(a, prep) * ink + _to_frame(b, prep) + _to_frame(miss, prep)
    out = enlarged + np.clip(_to_frame(kept, prep), 0.0, 1.0) * (guided - enlarged)
    return np.clip(out, 0.0, 1.0)


def _fill_background(src: np.ndarray, weight: np.ndarray, sigma: float) -> np.ndarray:
    """The paper (or stone) of ``src`` float32 (h, w, C) where ``weight`` (h, w) marks pixels
    known to be background: a normalised Gaussian convolution, computed at ≤ 128 px and
    enlarged, so uneven lighting and tint are followed but no stroke leaks in."""
    h, w = weight.shape
    k = min(1.0, 128.0 / max(h, w))
    sh, sw = max(1, round(h * k)), max(1, round(w * k))
    small_w = cv2.resize(weight, (sw, sh), interpolation=cv2.INTER_AREA)
    small_s = cv2.resize(src, (sw, sh), interpolation=cv2.INTER_AREA).reshape(sh, sw, -1)
    s = max(1.0, sigma * k)
    num = cv2.GaussianBlur(small_s * small_w[..., None], (0, 0), s).reshape(sh, sw, -1)
    den = cv2.GaussianBlur(small_w, (0, 0), s)[..., None]
    total = float(small_w.sum())
    if total > 1e-3:
        flat = (small_s * small_w[..., None]).reshape(-1, src.shape[2]).sum(0) / total
    else:
        flat = np.median(small_s.reshape(-1, src.shape[2]), axis=0)
    fill = np.where(den > 1e-3, num / np.maximum(den, 1e-6), flat)
    fill = cv2.resize(fill.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    return fill.reshape(h, w, -1)


def finish(
    prep: Prepared,
    restored: np.ndarray,
    mask: np.ndarray | None = None,
    colour: np.ndarray | None = None,
    keep_detail: bool = True,
) -> np.ndarray:
    """Map the model's output back into the input image, changing the strokes, not the paper.

    ``restored``: (S, S) uint8 0–255 or float 0–1, white ink on black (the model's content).
    ``mask``: float (S, S) in [0, 1], where the model restored (composite models give it; for
    others it is :func:`change_mask`, what the model changed). ``colour``: the input's uint8
    (H, W, 3) RGB pixels, or None for grey. Returns uint8 (H, W) — or (H, W, 3) with ``colour`` —
    at the input's own size and polarity: ``mask * redrawn + (1 - mask) * input`` at full
    resolution, where ``redrawn`` puts the restored ink on a background estimated from the input
    itself (its paper or stone colour and lighting, from pixels that are neither ink nor
    restored) with the input's own ink colour. Where the mask is 0 (intact strokes and paper,
    everything outside the glyph's square) the output is the input, pixel for pixel.

    ``keep_detail``: when the input's square is larger than the model's frame (the model saw it
    shrunk), the restored ink is enlarged guided by the input's own full-resolution ink
    (:func:`_upsample_guided`), so that where the model kept or only sharpened its input the
    input's outlines stay, even under the mask; otherwise, or with False, the ``restored``
    glyph is enlarged as it is (every outline the mask covers then goes through the S px round
    trip: a 128 px calligraphy crop, squared to 141 px, comes back at 24 dB even if the model
    changed nothing). Inputs smaller than the frame have no detail the model did not see.
    """
    r = np.asarray(restored)
    if r.ndim == 3:
        r = r[0]
    r = r.astype(np.float32)
    if not np.issubdtype(np.asarray(restored).dtype, np.floating):
        r = r / 255.0
    r = np.clip(r, 0.0, 1.0)
    m = change_mask(r, prep.glyph) if mask is None else np.asarray(mask, np.float32)
    m = np.clip(m.reshape(r.shape), 0.0, 1.0)
    sx0, sy0, side = prep.square
    h, w = prep.grey.shape
    ix0, iy0 = max(sx0, 0), max(sy0, 0)
    ix1, iy1 = min(sx0 + side, w), min(sy0 + side, h)
    m_big = _to_frame(m, prep) * _feather_frame(prep)
    # Ink strength of the input in model polarity (0 paper, 1 ink) as prepared.
    ink = prep.norm[iy0:iy1, ix0:ix1].astype(np.float32) / 255.0
    if keep_detail and side > r.shape[0]:
        r_big = _upsample_guided(r, prep, ink)
    else:
        r_big = _to_frame(r, prep)
    if colour is not None and colour.shape[:2] != (h, w):
        raise RestoreAEError(f"colour image {colour.shape[:2]} does not match the grey {h, w}")
    src_full = prep.grey[..., None] if colour is None else colour
    src = src_full[iy0:iy1, ix0:ix1].astype(np.float32)
    paper_w = np.clip(1.0 - 2.0 * ink, 0.0, 1.0) * np.clip(1.0 - 2.0 * m_big, 0.0, 1.0)
    paper_w = cv2.erode(paper_w, np.ones((3, 3), np.uint8))  # keep away from stroke edges
    paper = _fill_background(src, paper_w, sigma=0.05 * side)
    strong = (ink > 0.75) & (m_big < 0.5)
    if strong.sum() >= 8:
        ink_colour = np.median(src[strong], axis=0)
    else:  # no intact ink: the prepared ink grey level in the input's polarity
        level = 255.0 - prep.hi if prep.dark_on_light else prep.hi
        ink_colour = np.full(src.shape[2], level, np.float32)
    redrawn = paper * (1.0 - r_big[..., None]) + ink_colour * r_big[..., None]
    out = src_full.astype(np.float32).copy()
    out[iy0:iy1, ix0:ix1] = m_big[..., None] * redrawn + (1.0 - m_big[..., None]) * src
    out = np.clip(np.rint(out), 0, 255).astype(np.uint8)
    return out[..., 0] if colour is None else out


def to_input_polarity(glyph: np.ndarray, prep: Prepared) -> np.ndarray:
    """A white-on-black uint8 glyph shown in the input's polarity and grey levels (for panels)."""
    levels = prep.lo + glyph.astype(np.float32) * ((prep.hi - prep.lo) / 255.0)
    if prep.dark_on_light:
        levels = 255.0 - levels
    return np.clip(np.rint(levels), 0, 255).astype(np.uint8)
