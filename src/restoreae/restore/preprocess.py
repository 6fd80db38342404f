"""Real-image preprocessing for restoration, and its inverse.

A real photo or scan of one character is turned into what the models were trained on — a
``uint8`` (S, S) glyph, **white ink (255) on a black background (0)**, centred with a margin — and
the model's S×S answer is mapped back into the input's frame, polarity and grey levels:

1. :func:`~restoreae.imageio.load_image`: any image file → ``uint8`` (H, W) grey, own polarity.
2. :func:`~restoreae.imageio.detect_polarity`: dark ink on paper, or light strokes on a rubbing.
3. :func:`prepare`: contrast stretch between the background's median grey and the ink's 95th
   percentile (damaged ink is mostly dimmer than the true ink), glyph box from the Otsu ink mask
   (specks dropped) plus a margin, square crop around it (padded with background where it leaves
   the image; the whole picture when the glyph already fills it), resize to S×S.
4. :func:`finish`: restored S×S → square → cropped to the image → blended into the original
   (the whole square is replaced, blended over a thin band at its edge; outside the square the
   input is kept unchanged) → the input's polarity and ink / paper grey levels.
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

Polarity = Literal["auto", "dark-on-light", "light-on-dark"]


# --------------------------------------------------------------------------- forward mapping
@dataclass
class Prepared:
    """A preprocessed image and what is needed to map the model's output back.

    ``glyph``: uint8 (S, S) model input, white ink on black. ``grey``: uint8 (H, W) input in its
    own polarity. ``square``: (x0, y0, side) of the square crop in input coordinates (it may
    extend beyond the image; that part was padded with background). ``box``: (x0, y0, x1, y1) of
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


def prepare(grey: np.ndarray, size: int, polarity: Polarity = "auto") -> Prepared:
    """Map ``grey`` (uint8 (H, W), any polarity) to the model's input glyph (uint8 (S, S), white
    ink on black, contrast-stretched, centred in a square around the ink with a margin)."""
    if grey.ndim != 2 or grey.dtype != np.uint8 or grey.size == 0:
        raise ImageError(f"expected a non-empty uint8 (H, W) image, got {grey.dtype} {grey.shape}")
    if polarity == "auto":
        polarity = detect_polarity(grey)
    elif polarity not in ("dark-on-light", "light-on-dark"):
        raise RestoreAEError(f"polarity must be auto, dark-on-light or light-on-dark: {polarity!r}")
    dark_on_light = polarity == "dark-on-light"
    g = (255 - grey) if dark_on_light else grey  # model polarity: ink bright
    t = otsu_threshold(g) if int(g.max()) - int(g.min()) >= 8 else 255.0
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
        # whole picture, padded to a square, rather than shrinking it further around its ink.
        side = max(h, w)
        sx0, sy0 = (w - side) // 2, (h - side) // 2
    square = np.zeros((side, side), np.uint8)
    ix0, iy0 = max(sx0, 0), max(sy0, 0)
    ix1, iy1 = min(sx0 + side, w), min(sy0 + side, h)
    square[iy0 - sy0 : iy1 - sy0, ix0 - sx0 : ix1 - sx0] = norm[iy0:iy1, ix0:ix1]
    interp = cv2.INTER_AREA if side >= size else cv2.INTER_CUBIC
    glyph = cv2.resize(square, (size, size), interpolation=interp)
    return Prepared(
        glyph=np.ascontiguousarray(glyph, dtype=np.uint8),
        grey=grey,
        dark_on_light=dark_on_light,
        lo=lo,
        hi=hi,
        box=box,
        square=(sx0, sy0, side),
    )


# --------------------------------------------------------------------------- inverse mapping
def _feather(side: int) -> np.ndarray:
    """Blend weights (side, side) float32: 1 inside the square, ramping to 0 over its outer
    :data:`FEATHER` band, so the restored square meets the untouched surroundings without a seam.
    (Where the square extends beyond the image, the ramp falls outside and is never used.)"""
    band = max(1.0, FEATHER * side)
    c = np.arange(side, dtype=np.float32) + 0.5
    ramp = np.clip(np.minimum(c, side - c) / band, 0.0, 1.0)
    return (ramp[:, None] * ramp[None, :]).astype(np.float32)


def finish(prep: Prepared, restored: np.ndarray) -> np.ndarray:
    """Map the model's output back to the input frame.

    ``restored``: (S, S) uint8 0–255 or float 0–1, white ink on black. Returns uint8 (H, W) in the
    input's polarity and grey levels (ink at the input's ink level, background at its paper
    level); pixels outside the square crop are the input's own.
    """
    r = np.asarray(restored)
    if r.ndim == 3:
        r = r[0]
    r = r.astype(np.float32)
    if np.issubdtype(np.asarray(restored).dtype, np.floating):
        r = r * 255.0
    sx0, sy0, side = prep.square
    h, w = prep.grey.shape
    interp = cv2.INTER_AREA if side <= r.shape[0] else cv2.INTER_CUBIC
    big = cv2.resize(np.clip(r, 0, 255), (side, side), interpolation=interp)
    big = np.clip(big, 0, 255)
    # Back to model-polarity grey levels, then to the input's polarity.
    levels = prep.lo + big * ((prep.hi - prep.lo) / 255.0)
    if prep.dark_on_light:
        levels = 255.0 - levels
    weight = _feather(side)
    out = prep.grey.astype(np.float32)
    ix0, iy0 = max(sx0, 0), max(sy0, 0)
    ix1, iy1 = min(sx0 + side, w), min(sy0 + side, h)
    sl = np.s_[iy0 - sy0 : iy1 - sy0, ix0 - sx0 : ix1 - sx0]
    wgt = weight[sl]
    out[iy0:iy1, ix0:ix1] = wgt * levels[sl] + (1.0 - wgt) * out[iy0:iy1, ix0:ix1]
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def to_input_polarity(glyph: np.ndarray, prep: Prepared) -> np.ndarray:
    """A white-on-black uint8 glyph shown in the input's polarity and grey levels (for panels)."""
    levels = prep.lo + glyph.astype(np.float32) * ((prep.hi - prep.lo) / 255.0)
    if prep.dark_on_light:
        levels = 255.0 - levels
    return np.clip(np.rint(levels), 0, 255).astype(np.uint8)
