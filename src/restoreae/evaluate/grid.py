"""The seed's picture: a grid of glyphs, one row per sample, labelled columns.

Columns follow the seed's figure: damaged | standard font | ground truth | restored (one restored
column per model). Glyphs keep the project's polarity (white ink on black); cells are separated by
a grey gutter and each column has a short ASCII label on top.
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from restoreae.utils import atomic_write

__all__ = ["make_grid", "encode_png", "save_png"]

GUTTER = 4
GUTTER_VALUE = 96
HEADER = 16
LABEL_CHARS_PER_PX = 1 / 6  # the PIL default bitmap font is ~6 px per character


def make_grid(columns: Mapping[str, np.ndarray], labels: bool = True) -> np.ndarray:
    """Lay out ``columns`` (label → uint8 ``(N, S, S)`` glyphs, all the same shape) as a grid.

    Returns a uint8 grey image ``(HEADER + N*(S+g) + g, C*(S+g) + g)`` (``g`` the gutter); the
    header row is omitted when ``labels`` is False. Labels longer than a cell are cut.
    """
    if not columns:
        raise ValueError("make_grid needs at least one column")
    arrays = [np.asarray(a) for a in columns.values()]
    shape = arrays[0].shape
    for name, a in zip(columns, arrays, strict=True):
        if a.shape != shape:
            raise ValueError(f"column {name!r} has shape {a.shape}, expected {shape}")
        if a.dtype != np.uint8:
            raise ValueError(f"column {name!r} has dtype {a.dtype}, expected uint8")
    if len(shape) != 3:
        raise ValueError(f"columns must be (N, S, S) glyph stacks, got shape {shape}")
    n, h, w = shape
    top = HEADER if labels else 0
    height = top + n * (h + GUTTER) + GUTTER
    width = len(arrays) * (w + GUTTER) + GUTTER
    canvas = np.full((height, width), GUTTER_VALUE, dtype=np.uint8)
    for c, a in enumerate(arrays):
        x0 = GUTTER + c * (w + GUTTER)
        for r in range(n):
            y0 = top + GUTTER + r * (h + GUTTER)
            canvas[y0 : y0 + h, x0 : x0 + w] = a[r]
    if labels:
        canvas[:top] = 255
        pil = Image.fromarray(canvas)
        draw = ImageDraw.Draw(pil)
        font = ImageFont.load_default()
        max_chars = max(1, int((w + GUTTER) * LABEL_CHARS_PER_PX))
        for c, name in enumerate(columns):
            text = name.encode("ascii", "replace").decode("ascii")
            if len(text) > max_chars:
                text = text[: max_chars - 1] + "~"
            draw.text((GUTTER + c * (w + GUTTER), 2), text, fill=0, font=font)
        canvas = np.asarray(pil, dtype=np.uint8)
    return canvas


def encode_png(image: np.ndarray) -> bytes:
    """A uint8 grey ``(H, W)`` image as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write a uint8 grey image as PNG atomically."""
    return atomic_write(path, encode_png(image))
