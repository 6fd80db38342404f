"""Real-image preprocessing for restoration, and its inverse.

A real photo or scan of one character is turned into what the models were trained on — a
``uint8`` (S, S) glyph, **white ink (255) on a black background (0)**, centred with a margin — and
the model's S×S answer is mapped back into the input's frame, polarity and grey levels:

1. :func:`load_image`: any PNG / JPEG / TIFF / BMP / WebP (grey, RGB, RGBA, palette, 16-bit) →
   ``uint8`` (H, W) grey. Transparent pixels are composited on the background colour opposite
   to the opaque content (dark ink on transparency → white paper). 16-bit images are scaled to
   8-bit (``v / 257``). EXIF orientation is applied, so the output looks like the input did.
2. :func:`detect_polarity`: the background is the majority class after Otsu's threshold,
   weighted towards the image border (the glyph seldom fills the border).
3. :func:`prepare`: contrast stretch between the background's and the ink's median grey, glyph box
   from the Otsu ink mask (specks dropped) plus a margin, square crop around it (padded with
   background where it leaves the image), resize to S×S with ``INTER_AREA``.
4. :func:`finish`: restored S×S → square → cropped to the image → blended into the original
   (full weight on the glyph box, feathered over the margin; outside the square the input is
   kept unchanged) → the input's polarity and ink / paper grey levels.
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import cv2
import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from restoreae.errors import RestoreAEError

#: File extensions treated as images when a folder is searched.
IMAGE_EXTENSIONS: frozenset[str] = frozenset(
    {".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp", ".webp"}
)
#: Largest accepted image, in pixels (guards against decompression bombs).
MAX_PIXELS: int = 50_000_000
#: Glyph box margin (fraction of the box's longer side, each side): the ink then spans ~77% of S,
#: like the corpus glyphs (drawn at an em of 0.8 S).
MARGIN: float = 0.15

Polarity = Literal["auto", "dark-on-light", "light-on-dark"]


class ImageError(RestoreAEError):
    """An input image is missing, unreadable, empty or too large; the message names it."""


# --------------------------------------------------------------------------- loading
def _describe(source: object) -> str:
    if isinstance(source, str | os.PathLike):
        return str(source)
    if isinstance(source, np.ndarray):
        return f"array of shape {source.shape}"
    return type(source).__name__


def _to_uint8(arr: np.ndarray) -> np.ndarray:
    """Scale an integer / float array to uint8 0–255 (16-bit: ``v / 257``; float: 0–1 or 0–255)."""
    if arr.dtype == np.uint8:
        return arr
    if arr.dtype == np.bool_:
        return arr.astype(np.uint8) * 255
    if np.issubdtype(arr.dtype, np.integer):
        a = arr.astype(np.float64)
        vmax = float(a.max()) if a.size else 0.0
        scale = 255.0 / 65535.0 if vmax > 255 else 1.0
        return np.clip(np.rint(a * scale), 0, 255).astype(np.uint8)
    if np.issubdtype(arr.dtype, np.floating):
        a = np.nan_to_num(arr.astype(np.float64), nan=0.0, posinf=0.0, neginf=0.0)
        if a.size and float(a.max()) <= 1.0:
            a = a * 255.0
        return np.clip(np.rint(a), 0, 255).astype(np.uint8)
    raise ImageError(f"unsupported pixel type {arr.dtype}")


def _composite_alpha(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Composite grey (H,W) uint8 with alpha (H,W) uint8 on white or black.

    The background is chosen opposite to the (alpha-weighted) brightness of the opaque content:
    dark ink on a transparent sheet goes on white paper, light strokes go on black.
    """
    a = alpha.astype(np.float64) / 255.0
    if a.min() >= 1.0:
        return grey
    weight = a.sum()
    content = float((grey * a).sum() / weight) if weight > 0 else 0.0
    # When nearly everything is opaque the "content" is mostly background: then keep its level.
    opaque_fraction = float((a > 0.5).mean())
    if opaque_fraction > 0.5:
        bg = 255.0 if content >= 128 else 0.0
    else:
        bg = 255.0 if content < 128 else 0.0
    out = grey.astype(np.float64) * a + bg * (1.0 - a)
    return np.clip(np.rint(out), 0, 255).astype(np.uint8)


def _pil_to_grey(img: Image.Image) -> np.ndarray:
    """PIL image of any mode → uint8 (H, W) grey (16-bit scaled, alpha composited)."""
    mode = img.mode
    if mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
        mode = img.mode
    if mode in ("I;16", "I;16B", "I;16L", "I;16N", "I", "F"):
        return _to_uint8(np.asarray(img))
    if mode == "1":
        return np.asarray(img.convert("L"))
    alpha = None
    if mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        alpha = np.asarray(img.getchannel("A"))
    grey = np.asarray(img.convert("L"))
    return grey if alpha is None else _composite_alpha(grey, alpha)


def _array_to_grey(arr: np.ndarray) -> np.ndarray:
    """numpy (H,W), (H,W,1), (H,W,3) RGB or (H,W,4) RGBA of any numeric dtype → uint8 grey."""
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        return _to_uint8(arr)
    if arr.ndim == 3 and arr.shape[2] in (3, 4):
        rgb = _to_uint8(arr[:, :, :3])
        grey = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2GRAY)
        if arr.shape[2] == 4:
            return _composite_alpha(grey, _to_uint8(arr[:, :, 3]))
        return grey
    raise ImageError(f"expected an (H, W), (H, W, 3) or (H, W, 4) image array, got {arr.shape}")


def load_image(source: np.ndarray | Image.Image | str | os.PathLike) -> tuple[np.ndarray, dict]:
    """Load an image file, PIL image or array as ``uint8`` (H, W) grey in its own polarity.

    Returns ``(grey, info)`` where ``info`` has ``bits`` (8 or 16: the source's bit depth per
    channel) and ``format`` (PIL's format name, or None for in-memory images).
    Raises :class:`ImageError` (naming the file) for a missing, corrupt, empty, non-image or
    larger than :data:`MAX_PIXELS` input.
    """
    name = _describe(source)
    info: dict = {"bits": 8, "format": None}
    if isinstance(source, np.ndarray):
        if source.size == 0 or source.ndim < 2:
            raise ImageError(f"{name}: empty image")
        if source.shape[0] * source.shape[1] > MAX_PIXELS:
            raise ImageError(f"{name}: image too large (limit {MAX_PIXELS} pixels)")
        if source.dtype.itemsize > 1 and np.issubdtype(source.dtype, np.integer):
            info["bits"] = 16
        return _array_to_grey(source), info
    if isinstance(source, Image.Image):
        img = source
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            raise ImageError(f"{path}: no such file")
        try:
            data = path.read_bytes()
        except OSError as exc:
            raise ImageError(f"{path}: cannot read ({exc.strerror or exc})") from exc
        if not data:
            raise ImageError(f"{path}: empty file")
        try:
            with warnings.catch_warnings():
                warnings.simplefilter("error", Image.DecompressionBombWarning)
                img = Image.open(io.BytesIO(data))
                w, h = img.size
                if w * h > MAX_PIXELS:
                    raise ImageError(
                        f"{path}: image too large ({w}x{h} = {w * h} pixels; limit {MAX_PIXELS})"
                    )
                img.load()
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
            raise ImageError(f"{path}: image too large (decompression bomb guard: {exc})") from exc
        except UnidentifiedImageError as exc:
            raise ImageError(f"{path}: not an image file (or an unsupported format)") from exc
        except (OSError, ValueError, SyntaxError, EOFError) as exc:
            raise ImageError(f"{path}: corrupt or truncated image ({exc})") from exc
        info["format"] = img.format
    else:
        raise ImageError(f"unsupported image input of type {type(source).__name__}")

    w, h = img.size
    if w == 0 or h == 0:
        raise ImageError(f"{name}: empty image ({w}x{h})")
    if w * h > MAX_PIXELS:
        raise ImageError(f"{name}: image too large ({w}x{h}; limit {MAX_PIXELS} pixels)")
    if img.mode in ("I;16", "I;16B", "I;16L", "I;16N", "I"):
        info["bits"] = 16
    # A broken EXIF block must not make the image unusable: then the pixels are used as stored.
    with contextlib.suppress(Exception):
        img = ImageOps.exif_transpose(img) or img
    try:
        grey = _pil_to_grey(img)
    except (OSError, ValueError) as exc:
        raise ImageError(f"{name}: cannot decode pixels ({exc})") from exc
    return np.ascontiguousarray(grey), info


# --------------------------------------------------------------------------- polarity
def _otsu(grey: np.ndarray) -> float:
    """Otsu's threshold of a uint8 image (pixels > t are the light class)."""
    t, _ = cv2.threshold(grey, 0, 255, cv2.THRESH_BINARY + cv2.THRESH_OTSU)
    return float(t)


def detect_polarity(grey: np.ndarray) -> Literal["dark-on-light", "light-on-dark"]:
    """Guess whether ``grey`` (uint8 (H, W)) shows dark ink on light paper or light on dark.

    The background is the majority class after Otsu's threshold; the border ring (outer 10%),
    where a single character seldom reaches, counts for 60% of the vote and the whole image 40%.
    A flat image counts as paper when its mean is ≥ 128.
    """
    if int(grey.max()) - int(grey.min()) < 8:
        return "dark-on-light" if float(grey.mean()) >= 128 else "light-on-dark"
    t = _otsu(grey)
    light = grey > t
    h, w = grey.shape
    bh, bw = max(1, h // 10), max(1, w // 10)
    ring = np.ones_like(light)
    if h > 2 * bh and w > 2 * bw:
        ring[bh : h - bh, bw : w - bw] = False
    score = 0.6 * float(light[ring].mean()) + 0.4 * float(light.mean())
    return "dark-on-light" if score >= 0.5 else "light-on-dark"


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
        hi = float(np.percentile(ink, 75))
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
    t = _otsu(g) if int(g.max()) - int(g.min()) >= 8 else 255.0
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
def _feather(side: int, box: tuple[int, int, int, int], sx0: int, sy0: int) -> np.ndarray:
    """Blend weights (side, side) float32: 1 on the glyph box, ramping to 0 at the square edge."""
    x0, y0, x1, y1 = box
    ys = np.arange(side, dtype=np.float32)[:, None] + sy0 + 0.5
    xs = np.arange(side, dtype=np.float32)[None, :] + sx0 + 0.5

    def ramp(c: np.ndarray, a: int, b: int, lo_edge: int, hi_edge: int) -> np.ndarray:
        left = np.clip((c - lo_edge) / max(a - lo_edge, 1), 0, 1)
        right = np.clip((hi_edge - c) / max(hi_edge - b, 1), 0, 1)
        return np.minimum(left, right)

    wy = ramp(ys, y0, y1, sy0, sy0 + side)
    wx = ramp(xs, x0, x1, sx0, sx0 + side)
    return (wy * wx).astype(np.float32)


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
    weight = _feather(side, prep.box, sx0, sy0)
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
