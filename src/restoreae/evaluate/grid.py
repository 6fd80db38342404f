"""The seed's picture: a grid of glyphs, one row per sample, labelled columns.

Columns follow the seed's figure: damaged | standard font | ground truth | restored (one restored
column per model). Glyphs keep the project's polarity (white ink on black); cells are separated by
a grey gutter and each column has its label on top (CJK drawn: :mod:`restoreae.figures`).
"""

from __future__ import annotations

import io
from collections.abc import Mapping
from pathlib import Path

import numpy as np
from PIL import Image

from restoreae.figures import glyph_grid
from restoreae.utils import atomic_write

__all__ = ["make_grid", "encode_png", "save_png"]

GUTTER = 4
GUTTER_VALUE = 96
HEADER = 16


def make_grid(columns: Mapping[str, np.ndarray], labels: bool = True) -> np.ndarray:
    """Lay out ``columns`` (label → uint8 ``(N, S, S)`` glyphs, all the same shape) as a grid.

    Returns a uint8 grey image ``(HEADER + N*(S+g) + g, C*(S+g) + g)`` (``g`` the gutter); the
    header row is omitted when ``labels`` is False. Labels (CJK drawn) shrink to fit a cell.
    Layout and labels: :func:`restoreae.figures.glyph_grid`.
    """
    return glyph_grid(
        columns, gutter=GUTTER, gutter_value=GUTTER_VALUE, header=HEADER if labels else 0
    )


def encode_png(image: np.ndarray) -> bytes:
    """A uint8 grey ``(H, W)`` image as PNG bytes."""
    buf = io.BytesIO()
    Image.fromarray(np.asarray(image, dtype=np.uint8)).save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def save_png(path: str | Path, image: np.ndarray) -> Path:
    """Write a uint8 grey image as PNG atomically."""
    return atomic_write(path, encode_png(image))
