"""Synthetic pages with truth, for the page benchmark and the page tests.

A page is laid out from single glyphs (uint8 (S, S), white ink on black: rendered from fonts of
held-out writers, or real written characters read from a folder such as ``../shared/real-dev``)
into vertical columns read top to bottom, right to left (``layout="columns"``) or horizontal rows
read left to right, top to bottom (``layout="rows"``), with jitter of size and position, varied
spacing, optional ruled grid lines and seals, then drawn either as dark ink on light paper
(optionally in colour, with red seals) or as light strokes on a dark rubbing (the drawing and the
page-level damage: :mod:`restoreae.evaluate.page_render`). Page-level damage
(stone / paper texture, cracks across characters, lost corners, stains) is optional; the glyphs can
be damaged beforehand with the project's damage pipeline.

:func:`make_page` returns a :class:`SyntheticPage`: the damaged page, the clean page (same layout,
undamaged glyphs, no page damage), the true character boxes in reading order and their characters.
Everything is seeded by the ``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import csv
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import cv2
import numpy as np

from restoreae.errors import DataError
from restoreae.evaluate.page_render import damage_maps, render_page, seal_image

Layout = Literal["columns", "rows"]

#: Test writers of the shipped model (held out of training): the default glyph fonts.
HELDOUT_FONTS: tuple[tuple[str, int], ...] = (
    ("/usr/share/fonts/opentype/noto/NotoSerifCJK-Regular.ttc", 2),  # Noto Serif CJK SC
    ("/usr/share/fonts/truetype/smiley-sans/SmileySans-Oblique.ttf", 0),
)


#: Damage applied to every glyph of a damaged benchmark page: ops that act on the strokes only (the
#: ops that change a glyph's whole square, such as low contrast or blob noise, would draw squares
#: on the page, which no real page shows).
PAGE_GLYPH_DAMAGE: dict = {
    "ops": ["erode_dilate", "weathering", "cracks", "missing_chunk", "ink_bleed"],
    "k": [1, 3],
    "params": {"missing_chunk": {"p_texture": 0.0, "p_bright": 0.0}},
}


@dataclass
class SyntheticPage:
    """One generated page.

    ``image``: uint8 (H, W) grey or (H, W, 3) RGB, the page as given to the page restorer.
    ``clean``: the same page without any damage (same shape). ``boxes``: int (N, 4) true character
    boxes (x0, y0, x1, y1, exclusive ends) in reading order; ``chars``: their characters (N);
    ``columns``: the column (or row) index of each. ``dark_on_light``: paper (True) or rubbing.
    """

    image: np.ndarray
    clean: np.ndarray
    boxes: np.ndarray
    chars: str
    columns: np.ndarray
    layout: Layout
    dark_on_light: bool
    meta: dict = field(default_factory=dict)


# --------------------------------------------------------------------------- glyph sources
class GlyphSource:
    """Glyphs (uint8 (S, S), white on black) of a list of characters, cycled through writers."""

    def __init__(self, glyphs: Sequence[np.ndarray], chars: str) -> None:
        if len(glyphs) != len(chars) or not glyphs:
            raise DataError(
                f"glyph source needs one glyph per character ({len(glyphs)} vs {len(chars)})"
            )
        self.glyphs = list(glyphs)
        self.chars = chars

    def __len__(self) -> int:
        return len(self.glyphs)

    @classmethod
    def from_fonts(
        cls,
        chars: str,
        size: int = 128,
        fonts: Sequence[tuple[str, int]] = HELDOUT_FONTS,
    ) -> GlyphSource:
        """Render ``chars`` with each font in turn (characters a font lacks are skipped)."""
        from restoreae.data.fonts import load_face, render_glyph

        faces = [load_face(p, i) for p, i in fonts if Path(p).is_file()]
        if not faces:
            raise DataError(f"none of the page fonts is installed: {[p for p, _ in fonts]}")
        glyphs, kept = [], []
        for k, ch in enumerate(chars):
            g = render_glyph(faces[k % len(faces)], ch, size)
            if g is not None:
                glyphs.append(g)
                kept.append(ch)
        return cls(glyphs, "".join(kept))

    @classmethod
    def from_folder(
        cls, folder: str | Path, limit: int, rng: np.random.Generator, size: int = 128
    ) -> GlyphSource:
        """Real written characters from a folder with ``labels.csv`` (``path,char,...,polarity``
        columns, as in ``../shared/real-dev``): ``limit`` images drawn at random, made white on
        black, cropped to the ink and centred in (size, size)."""
        from restoreae.data.fonts import centre_glyph
        from restoreae.imageio import detect_polarity, load_image, otsu_threshold

        folder = Path(folder)
        labels = folder / "labels.csv"
        if not labels.is_file():
            raise DataError(f"{labels}: no such file (a glyph folder needs labels.csv)")
        with labels.open(encoding="utf-8") as f:
            rows = [r for r in csv.DictReader(f) if r.get("path") and r.get("char")]
        if not rows:
            raise DataError(f"{labels}: no path,char rows")
        pick = rng.choice(len(rows), size=min(limit, len(rows)), replace=False)
        glyphs, chars = [], []
        for i in pick:
            grey, _ = load_image(folder / rows[i]["path"])
            pol = rows[i].get("polarity") or detect_polarity(grey)
            ink = 255 - grey if pol == "dark-on-light" else grey
            mask = ink > otsu_threshold(ink)
            ys, xs = np.nonzero(mask)
            if ys.size < 20:
                continue
            crop = np.where(mask, ink, 0).astype(np.uint8)[
                ys.min() : ys.max() + 1, xs.min() : xs.max() + 1
            ]
            scale = 0.8 * size / max(crop.shape)
            crop = cv2.resize(
                crop,
                (max(1, round(crop.shape[1] * scale)), max(1, round(crop.shape[0] * scale))),
                interpolation=cv2.INTER_AREA,
            )
            glyphs.append(centre_glyph(crop, size))
            chars.append(rows[i]["char"][0])
        return cls(glyphs, "".join(chars))


# --------------------------------------------------------------------------- layout helpers
def _place(canvas: np.ndarray, glyph: np.ndarray, x: int, y: int) -> None:
    """Max-composite ``glyph`` (uint8) onto ``canvas`` with its top-left corner at (x, y)."""
    h, w = glyph.shape
    H, W = canvas.shape
    x0, y0, x1, y1 = max(x, 0), max(y, 0), min(x + w, W), min(y + h, H)
    if x1 <= x0 or y1 <= y0:
        return
    sub = glyph[y0 - y : y1 - y, x0 - x : x1 - x]
    np.maximum(canvas[y0:y1, x0:x1], sub, out=canvas[y0:y1, x0:x1])


def _ink_crop(glyph: np.ndarray) -> np.ndarray | None:
    ys, xs = np.nonzero(glyph > 96)
    if ys.size == 0:
        return None
    return glyph[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1]


# --------------------------------------------------------------------------- the page
def make_page(
    source: GlyphSource,
    rng: np.random.Generator,
    *,
    n_lines: int = 4,
    per_line: int = 6,
    char_size: int = 64,
    layout: Layout = "columns",
    dark_on_light: bool = True,
    colour: bool = False,
    grid: bool = False,
    seal: bool = False,
    damage: bool = False,
    glyph_damage: str | dict | None = None,
    jitter: float = 0.06,
    spacing: tuple[float, float] = (0.15, 0.45),
    margin: float = 0.6,
) -> SyntheticPage:
    """Lay out ``n_lines`` columns (or rows) of ``per_line`` characters each.

    ``char_size``: the em of a character in pixels (each glyph is scaled to 0.8–1.0 of it);
    ``spacing``: the gap between characters along a line and between lines, as a fraction of
    ``char_size`` (drawn per page within this range); ``jitter``: random offset of each character
    (fraction of ``char_size``); ``margin``: the page margin (fraction of ``char_size``).
    ``grid``: ruled lines around every cell; ``seal``: one seal in a free spot at the end of a
    line (red, solid or a frame, when ``colour``; a solid stamped square on grey pages). ``damage``: page-level damage (texture, cracks, lost corner,
    stains); ``glyph_damage``: a damage preset / YAML applied to every glyph first.
    """
    if layout not in ("columns", "rows"):
        raise DataError(f"layout must be 'columns' or 'rows', got {layout!r}")
    n = n_lines * per_line
    order = rng.permutation(len(source))
    if len(order) < n:
        order = np.resize(order, n)
    order = order[:n]
    gap_along = char_size * rng.uniform(*spacing)
    gap_across = char_size * rng.uniform(*spacing) * 1.5
    pitch_along = char_size + gap_along
    pitch_across = char_size + gap_across
    m = round(margin * char_size)
    # The free room at the end of the last line holds the seal.
    length = round(2 * m + per_line * pitch_along - gap_along + (pitch_along if seal else 0))
    breadth = round(2 * m + n_lines * pitch_across - gap_across)
    H, W = (length, breadth) if layout == "columns" else (breadth, length)
    ink = np.zeros((H, W), np.uint8)
    clean_ink = np.zeros((H, W), np.uint8)
    pipeline = None
    if glyph_damage:
        from restoreae.damage.pipeline import DamageConfig, DamagePipeline

        pipeline = DamagePipeline(DamageConfig.resolve(glyph_damage, where="glyph_damage"))
    boxes, chars, lines, cells = [], [], [], []
    for k, gi in enumerate(order):
        line, pos = divmod(k, per_line)
        glyph = source.glyphs[int(gi)]
        crop = _ink_crop(glyph)
        if crop is None:
            continue
        scale = char_size * rng.uniform(0.8, 1.0) / (0.8 * glyph.shape[0])
        size = max(8, round(glyph.shape[0] * scale))
        big = cv2.resize(glyph, (size, size), interpolation=cv2.INTER_AREA)
        damaged = big
        if pipeline is not None:
            damaged, _ = pipeline(big, rng)
        across = m + line * pitch_across
        along = m + pos * pitch_along
        if layout == "columns":  # right to left
            cx = W - across - char_size / 2
            cy = along + char_size / 2
        else:
            cx = along + char_size / 2
            cy = across + char_size / 2
        cx += rng.uniform(-jitter, jitter) * char_size
        cy += rng.uniform(-jitter, jitter) * char_size
        x, y = round(cx - size / 2), round(cy - size / 2)
        _place(clean_ink, big, x, y)
        _place(ink, damaged, x, y)
        ys, xs = np.nonzero(big > 96)
        boxes.append((x + xs.min(), y + ys.min(), x + xs.max() + 1, y + ys.max() + 1))
        chars.append(source.chars[int(gi)])
        lines.append(line)
        if layout == "columns":
            cells.append((W - across - char_size - gap_across / 2, along - gap_along / 2))
        else:
            cells.append((along - gap_along / 2, across - gap_across / 2))
    boxes_a = np.array(boxes, dtype=np.int64).reshape(-1, 4)
    boxes_a[:, [0, 2]] = boxes_a[:, [0, 2]].clip(0, W)
    boxes_a[:, [1, 3]] = boxes_a[:, [1, 3]].clip(0, H)

    # Decorations drawn in ink on both pages: grid lines and the seal.
    deco = np.zeros((H, W), np.uint8)
    seal_mask = np.zeros((H, W), np.uint8)
    if grid:
        t = max(1, round(0.025 * char_size))
        cw = char_size + gap_across if layout == "columns" else pitch_along
        ch = pitch_along if layout == "columns" else char_size + gap_across
        for cx, cy in cells:
            cv2.rectangle(deco, (round(cx), round(cy)), (round(cx + cw), round(cy + ch)), 200, t)
    if seal:
        side = round(char_size * rng.uniform(0.8, 1.0))
        # Frame seals only in colour: on a grey page a frame seal looks like 口 or 国 and the
        # finder cannot tell it from a character (see restoreae.restore.page).
        s = seal_image(rng, side, frame=colour and rng.random() < 0.5)
        if layout == "columns":  # below the last (leftmost) column
            sx = round(m + rng.uniform(0, 0.1) * char_size)
            sy = round(H - m - side)
        else:  # after the last (bottom) row
            sx = round(W - m - side)
            sy = round(H - m - side - rng.uniform(0, 0.1) * char_size)
        _place(seal_mask, s, sx, sy)

    seed = int(rng.integers(2**31))
    rng_d = np.random.default_rng(seed)
    a_clean = np.maximum(clean_ink, deco).astype(np.float32) / 255.0
    s_clean = seal_mask.astype(np.float32) / 255.0
    a_dam, s_dam, lost = np.maximum(ink, deco).astype(np.float32) / 255.0, s_clean, None
    if damage:
        a_dam, s_dam, lost = damage_maps(rng_d, a_dam, s_clean, char_size)
    clean = render_page(a_clean, s_clean, None, dark_on_light, colour, None, char_size)
    image = render_page(
        a_dam, s_dam, lost, dark_on_light, colour, rng_d if damage else None, char_size
    )
    keep = np.ones(len(boxes_a), bool)
    if lost is not None:
        # A character mostly inside the lost corner is gone from the page: no longer findable.
        for i, (x0, y0, x1, y1) in enumerate(boxes_a):
            was = clean_ink[y0:y1, x0:x1] > 96
            keep[i] = bool(was.any()) and float(lost[y0:y1, x0:x1][was].mean()) < 0.6
    return SyntheticPage(
        image=image,
        clean=clean,
        boxes=boxes_a[keep],
        chars="".join(c for c, k in zip(chars, keep, strict=True) if k),
        columns=np.array(lines, np.int64)[keep],
        layout=layout,
        dark_on_light=dark_on_light,
        meta={"char_size": char_size, "grid": grid, "seal": seal, "damage": damage},
    )


def match_pairs(found: np.ndarray, truth: np.ndarray) -> list[tuple[int, int]]:
    """The (found index, true index) pairs of :func:`boxes_match`'s one-to-one matching."""
    found = np.asarray(found, np.float64).reshape(-1, 4)
    truth = np.asarray(truth, np.float64).reshape(-1, 4)
    if len(found) == 0 or len(truth) == 0:
        return []
    fc = np.stack([(found[:, 0] + found[:, 2]) / 2, (found[:, 1] + found[:, 3]) / 2], 1)
    tc = np.stack([(truth[:, 0] + truth[:, 2]) / 2, (truth[:, 1] + truth[:, 3]) / 2], 1)
    inside = (
        (fc[:, None, 0] >= truth[None, :, 0])
        & (fc[:, None, 0] < truth[None, :, 2])
        & (fc[:, None, 1] >= truth[None, :, 1])
        & (fc[:, None, 1] < truth[None, :, 3])
    )
    dist = np.hypot(fc[:, None, 0] - tc[None, :, 0], fc[:, None, 1] - tc[None, :, 1])
    cand = sorted(zip(*np.nonzero(inside), strict=True), key=lambda p: dist[p])
    used_f, used_t, out = set(), set(), []
    for f, t in cand:
        if f not in used_f and t not in used_t:
            used_f.add(f)
            used_t.add(t)
            out.append((int(f), int(t)))
    return out


def precision_recall(found: np.ndarray, truth: np.ndarray) -> tuple[float, float]:
    """Detection precision and recall (0–1) under :func:`match_pairs`' matching."""
    m = len(match_pairs(found, truth))
    nf, nt = len(np.asarray(found).reshape(-1, 4)), len(np.asarray(truth).reshape(-1, 4))
    p = m / nf if nf else (1.0 if nt == 0 else 0.0)
    r = m / nt if nt else 1.0
    return p, r


__all__ = [
    "GlyphSource",
    "SyntheticPage",
    "make_page",
    "match_pairs",
    "precision_recall",
    "HELDOUT_FONTS",
    "PAGE_GLYPH_DAMAGE",
]
