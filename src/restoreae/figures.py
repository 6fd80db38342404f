"""Labelled pictures: the one place that lays out glyph grids and panel rows and draws labels.

- :func:`glyph_grid`: columns of same-size glyphs under a header of column labels (the seed's
  4-column figure in ``evaluate``, ``preview-damage``).
- :func:`panel_row`: one row of labelled panels of any size, scaled to one height (``restore
  --side-by-side``, ``restoreae demo``).
- :func:`label_font`: a font that draws CJK of every form as well as Latin labels (the installed
  fonts of the reference chain, :func:`restoreae.data.reference.installed_chain`, Noto Sans CJK
  first; Pillow's Latin-only default when none is installed), so a label may name a character
  or the font of a reference instead of being forced to ASCII.

Images are uint8 grey ``(H, W)``; glyphs keep whatever polarity the caller gives (the project's
is white ink on black). Imports no torch.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

__all__ = ["glyph_grid", "label_faces", "label_font", "label_strip", "panel_row"]

_MIN_LABEL_PX = 8


@functools.lru_cache(maxsize=1)
def label_faces() -> tuple[tuple[Path, int], ...]:
    """``(font file, face index)`` of the installed CJK label fonts, best first: the reference
    chain's faces (:func:`restoreae.data.reference.installed_chain`), Noto Sans CJK first."""
    from restoreae.data.reference import installed_chain

    faces = sorted(installed_chain(), key=lambda f: not f.name.startswith("Noto Sans CJK"))
    return tuple((Path(f.path), int(f.face_index)) for f in faces)


@functools.lru_cache(maxsize=32)
def label_font(size: int) -> ImageFont.FreeTypeFont | ImageFont.ImageFont:
    """A ``size``-pixel label font that draws CJK (the first of :func:`label_faces` that loads);
    Pillow's default font (Latin only) when none is installed."""
    for path, index in label_faces():
        try:
            return ImageFont.truetype(str(path), size=size, index=index)
        except OSError:
            continue
    try:
        return ImageFont.load_default(size=size)
    except TypeError:  # Pillow < 10.1: fixed-size bitmap font
        return ImageFont.load_default()


def _fit(
    text: str, width: int, size: int
) -> tuple[str, ImageFont.FreeTypeFont | ImageFont.ImageFont]:
    """``text`` and a font no larger than ``size`` px in which it fits ``width`` px: the font
    shrinks down to 8 px, then the text is cut with "…"."""
    size = max(_MIN_LABEL_PX, size)
    font = label_font(size)
    while font.getlength(text) > width and size > _MIN_LABEL_PX:
        size -= 1
        font = label_font(size)
    if font.getlength(text) > width:
        while text and font.getlength(text + "…") > width:
            text = text[:-1]
        text = text + "…" if text else ""
    return text, font


def _draw_label(
    draw: ImageDraw.ImageDraw,
    box: tuple[int, int, int, int],
    text: str,
    *,
    fill: int,
    align: str = "left",
) -> None:
    """Draw ``text`` inside ``box`` = (x, y, width, height): as tall as the box allows (shrunk
    to fit its width), vertically centred, left-aligned or centred."""
    x, y, width, height = box
    if not text or width <= 0 or height <= 0:
        return
    text, font = _fit(text, width, height - 2)
    left, top, right, bottom = draw.textbbox((0, 0), text, font=font)
    tx = x - left + (max(0, (width - (right - left)) // 2) if align == "center" else 0)
    ty = y - top + max(0, (height - (bottom - top)) // 2)
    draw.text((tx, ty), text, fill=fill, font=font)


def label_strip(
    text: str, width: int, height: int, *, background: int = 255, ink: int = 0, align: str = "left"
) -> np.ndarray:
    """``text`` on a uint8 ``(height, width)`` strip (shrunk to fit; CJK drawn)."""
    strip = Image.new("L", (width, height), background)
    _draw_label(ImageDraw.Draw(strip), (0, 0, width, height), text, fill=ink, align=align)
    return np.asarray(strip, dtype=np.uint8)


def glyph_grid(
    columns: Mapping[str, Sequence[np.ndarray] | np.ndarray]
    | Sequence[tuple[str, Sequence[np.ndarray] | np.ndarray]],
    *,
    gutter: int = 4,
    gutter_value: int = 96,
    header: int = 16,
    outer: bool = True,
    header_background: int = 255,
    label_ink: int = 0,
    align: str = "left",
) -> np.ndarray:
    """Lay out ``columns`` (label → N uint8 glyphs ``(S, S)``, all one shape; a mapping or
    ``(label, glyphs)`` pairs, labels may repeat) as a grid.

    Cell ``(r, c)`` is at ``y = header + gutter + r (S + gutter)``, ``x = o + c (S + gutter)``
    with ``o = gutter`` when ``outer`` (a gutter on every side) else 0 (a gutter right of each
    column only). Size: ``(header + N (S + gutter) + [gutter], C (S + gutter) + [gutter])``.
    ``header`` = 0 leaves the labels out; each label is drawn over its column, shrunk to fit.
    Raises ValueError for no columns or mismatched shapes / dtypes (naming the column).
    """
    items = list(columns.items()) if isinstance(columns, Mapping) else list(columns)
    if not items:
        raise ValueError("a glyph grid needs at least one column")
    names = [str(name) for name, _ in items]
    arrays = [np.asarray(a) for _, a in items]
    shape = arrays[0].shape
    for name, a in zip(names, arrays, strict=True):
        if a.shape != shape:
            raise ValueError(f"column {name!r} has shape {a.shape}, expected {shape}")
        if a.dtype != np.uint8:
            raise ValueError(f"column {name!r} has dtype {a.dtype}, expected uint8")
    if len(shape) != 3:
        raise ValueError(f"columns must be (N, S, S) glyph stacks, got shape {shape}")
    n, h, w = shape
    edge = gutter if outer else 0
    height = header + n * (h + gutter) + edge
    width = len(arrays) * (w + gutter) + edge
    canvas = np.full((height, width), gutter_value, dtype=np.uint8)
    for c, a in enumerate(arrays):
        x0 = edge + c * (w + gutter)
        for r in range(n):
            y0 = header + gutter + r * (h + gutter)
            canvas[y0 : y0 + h, x0 : x0 + w] = a[r]
    if header:
        canvas[:header] = header_background
        pil = Image.fromarray(canvas)
        draw = ImageDraw.Draw(pil)
        for c, name in enumerate(names):
            box = (edge + c * (w + gutter), 0, w + (gutter if outer else 0), header)
            _draw_label(draw, box, name, fill=label_ink, align=align)
        canvas = np.asarray(pil, dtype=np.uint8)
    return canvas


def panel_row(
    panels: Sequence[np.ndarray | None],
    labels: Sequence[str],
    height: int = 192,
    square: bool = False,
) -> np.ndarray:
    """One row of labelled panels: uint8 grey images (None: a blank grey panel), each scaled to
    ``height`` pixels (aspect kept, never wider than 8 heights; with ``square`` letterboxed into
    height×height cells on grey), framed, labels above (a label may have several lines, ``\n``;
    CJK drawn). Returns uint8 (h, w).
    """
    n_lines = max([len(label.split("\n")) for label in labels if label] or [0])
    line_h = max(14, height // 10)
    pad, label_h = 6, line_h * n_lines
    scaled: list[np.ndarray] = []
    for panel in panels:
        if panel is None:
            scaled.append(np.full((height, height), 200, np.uint8))
            continue
        ph, pw = panel.shape[:2]
        scale = height / max(ph, pw) if square else min(height / ph, 8 * height / pw)
        nh, nw = max(1, round(ph * scale)), max(1, round(pw * scale))
        resample = Image.Resampling.LANCZOS if scale < 1 else Image.Resampling.NEAREST
        img = np.asarray(Image.fromarray(panel).resize((nw, nh), resample))
        if square:
            cell = np.full((height, height), 200, np.uint8)
            top, left = (height - nh) // 2, (height - nw) // 2
            cell[top : top + nh, left : left + nw] = img
            img = cell
        if img.shape[0] != height:  # a panel shorter than ``height``: centred on grey
            cell = np.full((height, img.shape[1], *img.shape[2:]), 200, np.uint8)
            top = (height - img.shape[0]) // 2
            cell[top : top + img.shape[0]] = img
            img = cell
        scaled.append(img)
    total_w = sum(p.shape[1] for p in scaled) + pad * (len(scaled) + 1)
    canvas = Image.new("L", (total_w, height + label_h + 2 * pad), 255)
    draw = ImageDraw.Draw(canvas)
    x = pad
    for panel, label in zip(scaled, labels, strict=True):
        canvas.paste(Image.fromarray(panel), (x, label_h + pad))
        draw.rectangle(
            (x - 1, label_h + pad - 1, x + panel.shape[1], label_h + pad + height), outline=128
        )
        for i, line in enumerate(label.split("\n") if label else []):
            _draw_label(draw, (x, 2 + i * line_h, panel.shape[1], line_h - 2), line, fill=0)
        x += panel.shape[1] + pad
    return np.asarray(canvas)
