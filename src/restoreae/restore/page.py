"""Find the characters of a page: a rubbing, an inscription or a manuscript sheet.

Input: a page as ``uint8`` (H, W) grey (and optionally the same page as (H, W, 3) RGB, used only
to find red seals). Output: the character boxes in reading order — vertical columns read top to
bottom, right to left (``layout="columns"``, the default), or horizontal rows read left to right,
top to bottom (``layout="rows"``).

The steps (all on a working copy whose longer side is at most :data:`WORK_SIDE` pixels):

1. **Polarity**: dark ink on light paper, or light strokes on a dark rubbing
   (:func:`~restoreae.imageio.detect_polarity`); the page is turned ink-bright.
2. **Seals**: red pixels (HSV hue within 12° of red, saturated) are painted as background, with
   the whole box of each red blob (its paper-coloured strokes included).
3. **Background**: uneven paper / stone tone and broad stains are removed with a white top-hat
   (the page minus its morphological opening by a square about 4 stroke widths wide); Otsu's
   threshold then gives the ink mask; specks smaller than a stroke are dropped.
4. **Ruled lines**: lines longer than :data:`~restoreae.restore.page_mask.LINE_FRACTION` of the page side (grids, frames,
   margins of a scan) are found by morphological opening with long thin kernels and erased.
5. **Lines of text**: the ink projection across the reading direction splits the page into
   columns (or rows); narrow slivers are merged into their neighbour.
6. **Characters**: Chinese characters are near-square, so the column's width is the expected
   character height. Along each column the runs of ink are grouped by dynamic programming (a
   character may be several runs, as in 三 or 旦: a group costs 1, plus its largest internal gap,
   plus its distance from the expected height; groups much taller than a character are not
   allowed) and runs much taller than a character (touching characters) are cut at the
   projection's minima.
7. Solid square blobs (stamped "yin" seals on grey pages) and specks are dropped.

:func:`count_characters` reuses it to tell a single-character image from a page.
Steps 1–4 and the solid blobs of step 7 (the page's ink mask) are in
:mod:`restoreae.restore.page_mask`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from restoreae.errors import RestoreAEError
from restoreae.restore.page_mask import ink_mask

LayoutName = Literal["columns", "rows"]
LAYOUTS: tuple[str, ...] = ("columns", "rows")

#: Longer side of the working copy the layout is found on (boxes are mapped back to the page).
WORK_SIDE: int = 1600
#: A group of ink taller than this many expected character heights is never one character.
MAX_GROUP: float = 1.3
#: A single run of ink taller than this many character heights is cut into several characters.
SPLIT_RUN: float = 1.45


@dataclass(frozen=True)
class CharBox:
    """One found character: ``box`` (x0, y0, x1, y1) in page pixels, exclusive ends; ``line``:
    the index of its column (or row) in reading order."""

    box: tuple[int, int, int, int]
    line: int


@dataclass
class PageLayout:
    """The characters of a page in reading order, and what was learnt on the way.

    ``char_size``: the expected character size in page pixels; ``dark_on_light``: the page's
    polarity; ``mask``: bool (h, w) ink mask of the working copy (lines and seals removed) and
    ``scale``: working copy / page size ratio (≤ 1).
    """

    boxes: list[CharBox]
    layout: str
    dark_on_light: bool
    char_size: float
    scale: float
    mask: np.ndarray = field(repr=False)
    seals_removed: int = 0

    def as_array(self) -> np.ndarray:
        """int64 (N, 4) boxes (x0, y0, x1, y1) in reading order."""
        return np.array([b.box for b in self.boxes], np.int64).reshape(-1, 4)


# --------------------------------------------------------------------------- steps
def _runs(profile: np.ndarray, thr: float) -> list[tuple[int, int]]:
    """Half-open runs [s, e) where ``profile > thr``."""
    on = np.concatenate([[False], profile > thr, [False]])
    d = np.flatnonzero(np.diff(on.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(d[::2], d[1::2], strict=True)]


def text_lines(mask: np.ndarray, axis: int, sw: float) -> list[tuple[int, int]]:
    """Bands [a, b) of the page's columns (``axis=0``: projection on x) or rows (``axis=1``).

    Runs of the projection are taken; a run narrower than half the median width merges with
    its nearest neighbour when the gap between them is under a third of the median width.
    """
    profile = mask.sum(axis=axis).astype(np.float32)
    k = max(1, int(round(sw)))
    profile = np.convolve(profile, np.ones(k, np.float32) / k, mode="same")
    thr = max(0.5, 0.02 * float(np.percentile(profile, 95)))
    bands = _runs(profile, thr)
    if len(bands) < 2:
        return bands
    changed = True
    while changed and len(bands) > 1:
        changed = False
        widths = np.array([b - a for a, b in bands], np.float64)
        med = float(np.median(widths))
        order = np.argsort(widths)
        for i in order:
            if widths[i] >= 0.5 * med:
                break
            left = bands[i][0] - bands[i - 1][1] if i > 0 else np.inf
            right = bands[i + 1][0] - bands[i][1] if i + 1 < len(bands) else np.inf
            j = i - 1 if left <= right else i + 1
            if min(left, right) < med / 3:
                lo, hi = min(i, j), max(i, j)
                bands[lo : hi + 1] = [(bands[lo][0], bands[hi][1])]
                changed = True
                break
    return bands


def _split_run(profile: np.ndarray, s: int, e: int, h_e: float) -> list[tuple[int, int]]:
    """Cut a run [s, e) much taller than a character at the profile's minima."""
    span = e - s
    k = max(2, int(round(span / h_e)))
    cuts = [s]
    for i in range(1, k):
        ideal = s + i * span / k
        lo = int(max(cuts[-1] + 1, ideal - 0.3 * span / k))
        hi = int(min(e - 1, ideal + 0.3 * span / k))
        if hi <= lo:
            continue
        seg = profile[lo:hi]
        cuts.append(lo + int(np.argmin(seg)))
    cuts.append(e)
    return [(a, b) for a, b in zip(cuts[:-1], cuts[1:], strict=True) if b > a]


def split_characters(profile: np.ndarray, h_e: float) -> list[tuple[int, int]]:
    """Spans [s, e) of the characters along one column (or row) from its ink profile.

    ``profile``: float (L,) ink pixels per position along the line; ``h_e``: the expected
    character height in pixels. Runs of ink are grouped by dynamic programming: a group costs
    1 + 3.3 × (largest gap inside) / h_e + 0.5 × |span / h_e − 0.9|, and spans over
    :data:`MAX_GROUP` × h_e are not allowed; runs over :data:`SPLIT_RUN` × h_e are cut first.
    """
    runs: list[tuple[int, int]] = []
    for s, e in _runs(profile, 0.0):
        if e - s > SPLIT_RUN * h_e:
            runs.extend(_split_run(profile, s, e, h_e))
        else:
            runs.append((s, e))
    n = len(runs)
    if n == 0:
        return []
    best = np.full(n + 1, np.inf)
    best[0] = 0.0
    back = np.zeros(n + 1, np.int64)
    for j in range(1, n + 1):
        gap = 0.0
        for i in range(j - 1, -1, -1):
            if i < j - 1:
                gap = max(gap, runs[i + 1][0] - runs[i][1])
            span = runs[j - 1][1] - runs[i][0]
            if i < j - 1 and span > MAX_GROUP * h_e:
                break
            cost = 1.0 + 3.3 * gap / h_e + 0.5 * abs(span / h_e - 0.9)
            if best[i] + cost < best[j]:
                best[j] = best[i] + cost
                back[j] = i
    spans = []
    j = n
    while j > 0:
        i = int(back[j])
        spans.append((runs[i][0], runs[j - 1][1]))
        j = i
    return _merge_fragments(spans[::-1], profile, h_e)


def _merge_fragments(
    spans: list[tuple[int, int]], profile: np.ndarray, h_e: float
) -> list[tuple[int, int]]:
    """Merge a fragment — short (< 0.3 h_e) with little ink (< 15% of the column's median
    character) — into its nearest neighbour when the gap is under 0.25 h_e and the result stays
    under 1.6 h_e: a piece of a damaged character split off by a crack or a lost chunk."""
    spans = list(spans)
    while len(spans) > 1:
        mass = np.array([profile[s:e].sum() for s, e in spans])
        med = float(np.median(mass))
        merged = False
        for i in np.argsort(mass):
            s, e = spans[i]
            if mass[i] >= 0.15 * med or e - s >= 0.3 * h_e:
                break
            gaps = []
            if i > 0:
                gaps.append((s - spans[i - 1][1], i - 1))
            if i + 1 < len(spans):
                gaps.append((spans[i + 1][0] - e, i + 1))
            gap, j = min(gaps)
            lo, hi = min(i, j), max(i, j)
            if gap < 0.25 * h_e and spans[hi][1] - spans[lo][0] <= 1.6 * h_e:
                spans[lo : hi + 1] = [(spans[lo][0], spans[hi][1])]
                merged = True
                break
        if not merged:
            break
    return spans


# --------------------------------------------------------------------------- the finder
def _to_grey_rgb(image: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
    a = np.asarray(image)
    if a.dtype != np.uint8:
        raise RestoreAEError(f"expected a uint8 page image, got {a.dtype}")
    if a.ndim == 2:
        return a, None
    if a.ndim == 3 and a.shape[2] == 3:
        return cv2.cvtColor(np.ascontiguousarray(a), cv2.COLOR_RGB2GRAY), a
    raise RestoreAEError(f"expected a (H, W) or (H, W, 3) page image, got shape {a.shape}")


def find_characters(
    image: np.ndarray,
    layout: str = "columns",
    polarity: str = "auto",
    work_side: int = WORK_SIDE,
) -> PageLayout:
    """Find the characters of a page (see the module docstring for the steps).

    ``image``: uint8 (H, W) grey or (H, W, 3) RGB, either polarity. ``layout``: ``"columns"``
    (vertical, right to left) or ``"rows"`` (horizontal, top to bottom). Returns the boxes in
    reading order, in page pixels.
    """
    if layout not in LAYOUTS:
        raise RestoreAEError(f"layout must be one of {', '.join(LAYOUTS)}, got {layout!r}")
    grey, rgb = _to_grey_rgb(image)
    H, W = grey.shape
    if H < 8 or W < 8:
        raise RestoreAEError(f"page image too small to hold characters ({W}×{H} pixels)")
    scale = min(1.0, work_side / max(H, W))
    if scale < 1.0:
        size = (max(1, round(W * scale)), max(1, round(H * scale)))
        grey_w = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
        rgb_w = None if rgb is None else cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    else:
        grey_w, rgb_w = grey, rgb
    mask, dark_on_light, sw, seals = ink_mask(grey_w, rgb_w, polarity)
    m = mask if layout == "columns" else mask.T  # columns: bands on x, characters along y
    bands = text_lines(m, axis=0, sw=sw)
    if not bands:
        return PageLayout([], layout, dark_on_light, 0.0, scale, mask, seals)
    widths = np.array([b - a for a, b in bands], np.float64)
    h_page = float(np.median(widths[widths >= 0.5 * widths.max()]))
    per_band: list[list[tuple[int, int, int, int]]] = []
    for a, b in bands:
        h_e = float(np.clip(b - a, 0.9 * h_page, 1.3 * h_page))
        strip = m[:, a:b]
        profile = strip.sum(axis=1).astype(np.float32)
        found = []
        for s, e in split_characters(profile, h_e):
            sub = strip[s:e]
            cols = np.flatnonzero(sub.any(axis=0))
            rows = np.flatnonzero(sub.any(axis=1))
            if cols.size == 0:
                continue
            x0, x1 = a + int(cols[0]), a + int(cols[-1]) + 1
            y0, y1 = s + int(rows[0]), s + int(rows[-1]) + 1
            bw, bh = x1 - x0, y1 - y0
            ink = int(sub.sum())
            if ink < 0.01 * h_e * h_e and max(bw, bh) < 0.25 * h_e:
                continue  # a speck
            if min(bw, bh) >= 0.5 * h_e and 0.7 <= bw / bh <= 1.4 and ink > 0.8 * bw * bh:
                continue  # a solid square blob: a stamped seal
            found.append((x0, y0, x1, y1))
        per_band.append(found)
    # Reading order: columns right to left (bands were found left to right), rows top down.
    if layout == "columns":
        per_band = per_band[::-1]
    inv = 1.0 / scale
    boxes: list[CharBox] = []
    line = 0
    for found in per_band:
        if not found:
            continue
        for x0, y0, x1, y1 in found:
            if layout == "rows":  # back from the transposed mask
                x0, y0, x1, y1 = y0, x0, y1, x1
            box = (
                int(np.floor(x0 * inv)),
                int(np.floor(y0 * inv)),
                min(W, int(np.ceil(x1 * inv))),
                min(H, int(np.ceil(y1 * inv))),
            )
            boxes.append(CharBox(box, line))
        line += 1
    return PageLayout(boxes, layout, dark_on_light, h_page * inv, scale, mask, seals)


def _xy_cut(mask: np.ndarray, min_gap: float) -> list[tuple[int, int, int, int]]:
    """Recursive XY-cut of a bool mask: boxes (x0, y0, x1, y1) of the blocks left when the ink is
    cut at every blank gap at least ``min_gap`` × the block's extent across the cut."""
    ys, xs = np.nonzero(mask)
    if ys.size == 0:
        return []
    stack = [(int(xs.min()), int(ys.min()), int(xs.max()) + 1, int(ys.max()) + 1)]
    leaves = []
    while stack:
        x0, y0, x1, y1 = stack.pop()
        sub = mask[y0:y1, x0:x1]
        cut = False
        for axis in (1, 0):  # axis 1: profile along y (cut rows); axis 0: along x
            prof = sub.sum(axis=axis)
            across = (x1 - x0) if axis == 1 else (y1 - y0)
            runs = _runs(prof.astype(np.float32), 0.0)
            pieces = [runs[0]]
            for r in runs[1:]:
                if r[0] - pieces[-1][1] >= min_gap * across:
                    pieces.append(r)
                else:
                    pieces[-1] = (pieces[-1][0], r[1])
            if len(pieces) < 2:
                continue
            for a, b in pieces:
                part = sub[a:b, :] if axis == 1 else sub[:, a:b]
                py, px = np.nonzero(part)
                if axis == 1:
                    stack.append(
                        (
                            x0 + int(px.min()),
                            y0 + a + int(py.min()),
                            x0 + int(px.max()) + 1,
                            y0 + a + int(py.max()) + 1,
                        )
                    )
                else:
                    stack.append(
                        (
                            x0 + a + int(px.min()),
                            y0 + int(py.min()),
                            x0 + a + int(px.max()) + 1,
                            y0 + int(py.max()) + 1,
                        )
                    )
            cut = True
            break
        if not cut:
            leaves.append((x0, y0, x1, y1))
    return leaves


def count_characters(grey: np.ndarray) -> int:
    """How many separate characters an image holds, to tell a page from one character's image.

    ``grey``: uint8 (H, W), either polarity. The ink (as the layout finder sees it, ruled lines
    kept) is cut recursively at blank gaps of at least a quarter of the block's width (XY-cut);
    the blocks that look like whole characters — near-square (width / height 0.55–1.8) and at least
    0.6 × the largest block's size — are counted. The parts of one character (林's halves, 三's
    strokes, the pieces of a cursive character) are seldom near-square blocks of equal size with
    such wide gaps, so a single character gives 1 (0: no ink); a column, row or page of characters gives
    their number (characters touching or closer than the gap are counted as one).
    """
    grey, _ = _to_grey_rgb(grey)
    h, w = grey.shape
    if h < 8 or w < 8:
        return 0
    scale = min(1.0, WORK_SIDE / max(h, w))
    if scale < 1.0:
        size = (max(1, round(w * scale)), max(1, round(h * scale)))
        grey = cv2.resize(grey, size, interpolation=cv2.INTER_AREA)
    mask, _, sw, _ = ink_mask(grey, lines=False)
    total = int(mask.sum())
    if total == 0:
        return 0
    blocks = [
        (x1 - x0, y1 - y0)
        for x0, y0, x1, y1 in _xy_cut(mask, 0.25)
        if mask[y0:y1, x0:x1].sum() >= 0.02 * total
    ]
    # Large pages: the XY-cut's gaps (relative to the block) are too wide there; blobs of ink
    # merged over 3 stroke widths are the characters.
    d = max(3, int(round(3 * sw)) | 1)
    merged = cv2.dilate(mask.astype(np.uint8), cv2.getStructuringElement(cv2.MORPH_RECT, (d, d)))
    n, _, stats, _ = cv2.connectedComponentsWithStats(merged, connectivity=8)
    blobs = [
        (int(st[cv2.CC_STAT_WIDTH]) - d + 1, int(st[cv2.CC_STAT_HEIGHT]) - d + 1)
        for st in stats[1:]
        if st[cv2.CC_STAT_AREA] >= 0.02 * total
    ]
    return max(1, _whole_characters(blocks), _whole_characters(blobs, at_least=3))


def _whole_characters(blocks: list[tuple[int, int]], at_least: int = 2) -> int:
    """How many of the blocks (width, height) look like whole characters: near-square (width /
    height 0.55–1.8) and at least 0.6 × the largest block's size; 0 or 1 when fewer than
    ``at_least`` do."""
    blocks = [(max(1, w), max(1, h)) for w, h in blocks]
    if not blocks:
        return 0
    largest = max(max(w, h) for w, h in blocks)
    n = sum(1 for w, h in blocks if 0.55 <= w / h <= 1.8 and max(w, h) >= 0.6 * largest)
    return n if n >= at_least else min(n, 1)
