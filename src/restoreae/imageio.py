"""Reading user images: any common file format to ``uint8`` (H, W) grey, and their polarity.

Shared by the corpus builder (user image folders) and restoration (real photos and scans):

- :func:`load_image`: any PNG / JPEG / TIFF / BMP / WebP (grey, RGB, RGBA, palette, 16-bit) or
  an array / PIL image → ``uint8`` (H, W) grey in the image's own polarity. Transparent pixels are
  composited on the background colour opposite to the opaque content (dark ink on transparency →
  white paper). 16-bit images are scaled to 8-bit (``v / 257``). EXIF orientation is applied.
- :func:`detect_polarity`: the background is the majority class after Otsu's threshold,
  weighted towards the image border (a single glyph seldom fills the border).
"""

from __future__ import annotations

import contextlib
import io
import os
import warnings
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


class ImageError(RestoreAEError):
    """An input image is missing, unreadable, empty or too large; the message names it."""


# --------------------------------------------------------------------------- loading
def describe_non_file(path: Path) -> str:
    """What an existing path that is not a regular file is: ``a folder``, ``a FIFO (named
    pipe)``, ``a socket``, ``a device`` or ``not a regular file`` (never opened: a FIFO blocks)."""
    import stat

    try:
        mode = path.stat().st_mode
    except OSError:
        return "not a regular file"
    if stat.S_ISDIR(mode):
        return "a folder"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISSOCK(mode):
        return "a socket"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    return "not a regular file"


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


def _colour_of(rgb: np.ndarray, alpha: np.ndarray | None) -> np.ndarray | None:
    """uint8 (H, W, 3) RGB when the picture has colour and no transparency, else None."""
    if alpha is not None and int(alpha.min()) < 255:
        return None  # transparent pixels have no colour of their own: restore in grey
    spread = rgb.max(axis=2).astype(np.int16) - rgb.min(axis=2).astype(np.int16)
    return np.ascontiguousarray(rgb) if int(spread.max()) > 2 else None


def _pil_colour(img: Image.Image) -> np.ndarray | None:
    """The RGB pixels of a colour PIL image (see :func:`_colour_of`), else None."""
    if img.mode in ("L", "1", "I", "F", "LA", "La") or img.mode.startswith("I;16"):
        return None
    if img.mode == "P":
        img = img.convert("RGBA" if "transparency" in img.info else "RGB")
    alpha = np.asarray(img.getchannel("A")) if "A" in img.getbands() else None
    return _colour_of(np.asarray(img.convert("RGB")), alpha)


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
    channel), ``format`` (PIL's format name, or None for in-memory images) and ``rgb``: the
    uint8 (H, W, 3) colour pixels when the source is an opaque colour picture, else None.
    Raises :class:`ImageError` (naming the file) for a missing, corrupt, empty, non-image or
    larger than :data:`MAX_PIXELS` input.
    """
    name = _describe(source)
    info: dict = {"bits": 8, "format": None, "rgb": None}
    if isinstance(source, np.ndarray):
        if source.size == 0 or source.ndim < 2:
            raise ImageError(f"{name}: empty image")
        if source.shape[0] * source.shape[1] > MAX_PIXELS:
            raise ImageError(f"{name}: image too large (limit {MAX_PIXELS} pixels)")
        if source.dtype.itemsize > 1 and np.issubdtype(source.dtype, np.integer):
            info["bits"] = 16
        grey = _array_to_grey(source)
        if source.ndim == 3 and source.shape[2] in (3, 4):
            alpha = _to_uint8(source[:, :, 3]) if source.shape[2] == 4 else None
            info["rgb"] = _colour_of(_to_uint8(source[:, :, :3]), alpha)
        return grey, info
    if isinstance(source, Image.Image):
        img = source
    elif isinstance(source, str | os.PathLike):
        path = Path(source)
        if not path.is_file():
            if path.exists():
                raise ImageError(f"{path}: {describe_non_file(path)}, not an image file")
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
        info["rgb"] = _pil_colour(img)
    except (OSError, ValueError) as exc:
        raise ImageError(f"{name}: cannot decode pixels ({exc})") from exc
    return np.ascontiguousarray(grey), info


# --------------------------------------------------------------------------- polarity
def otsu_threshold(grey: np.ndarray) -> float:
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
    t = otsu_threshold(grey)
    light = grey > t
    h, w = grey.shape
    bh, bw = max(1, h // 10), max(1, w // 10)
    ring = np.ones_like(light)
    if h > 2 * bh and w > 2 * bw:
        ring[bh : h - bh, bw : w - bw] = False
    score = 0.6 * float(light[ring].mean()) + 0.4 * float(light.mean())
    return "dark-on-light" if score >= 0.5 else "light-on-dark"
