"""The ink mask of a page (steps 1–4 of :mod:`restoreae.restore.page`): polarity, red seals,
background, ruled lines, solid "yin" seal blobs and specks.

Input: uint8 (H, W) grey (and optionally (H, W, 3) RGB for the seals). Output: a bool ink mask
(ink True) with seals and ruled lines erased, the page's polarity and its stroke width.
"""

from __future__ import annotations

import cv2
import numpy as np

from restoreae.errors import RestoreAEError
from restoreae.imageio import detect_polarity, otsu_threshold

#: A straight line at least this fraction of the page's side (along it) is a ruled line.
LINE_FRACTION: float = 0.3


def red_mask(rgb: np.ndarray) -> np.ndarray:
    """bool (H, W): seal-red pixels of an RGB uint8 (H, W, 3) image (hue within ~12° of red,
    saturation ≥ 90/255, value ≥ 60/255)."""
    hsv = cv2.cvtColor(np.ascontiguousarray(rgb), cv2.COLOR_RGB2HSV)
    h, s, v = hsv[..., 0], hsv[..., 1], hsv[..., 2]
    return ((h <= 6) | (h >= 174)) & (s >= 90) & (v >= 60)


def stroke_width(mask: np.ndarray) -> float:
    """Typical stroke width in pixels of a bool ink mask: the median over components (area ≥ 20)
    of 2 × area / boundary length. 3.0 when there is no ink."""
    m = mask.astype(np.uint8)
    edge = m & ~cv2.erode(m, np.ones((3, 3), np.uint8))
    n, labels, stats, _ = cv2.connectedComponentsWithStats(m, connectivity=8)
    if n <= 1:
        return 3.0
    edges = np.bincount(labels.ravel(), weights=edge.ravel(), minlength=n)[1:]
    areas = stats[1:, cv2.CC_STAT_AREA].astype(np.float64)
    ok = (areas >= 20) & (edges > 0)
    if not ok.any():
        return 3.0
    widths = 2.0 * areas[ok] / edges[ok]
    return float(max(1.0, np.median(widths)))


def ruled_lines(mask: np.ndarray, sw: float, fraction: float = LINE_FRACTION) -> np.ndarray:
    """bool (h, w): ruled lines of ``mask`` (a bool ink mask), to be erased.

    Straight horizontal or vertical runs at least ``fraction`` of the image's width (height) long
    are found by morphological opening with long thin kernels, after bridging gaps of up to ~3
    stroke widths along them (cracks, wear). Each found line is then extended along its own
    direction across the whole image (a ruled line goes on where wear broke it into short pieces),
    as a strip 2 pixels wider than the line.
    """
    h, w = mask.shape
    m = mask.astype(np.uint8)
    g = max(3, int(round(3 * sw)))
    rect = cv2.MORPH_RECT
    out = np.zeros_like(m)
    for horizontal in (True, False):
        length = max(15, int(fraction * (w if horizontal else h)))
        k_open = (length, 1) if horizontal else (1, length)
        k_close = (g, 1) if horizontal else (1, g)
        closed = cv2.morphologyEx(m, cv2.MORPH_CLOSE, cv2.getStructuringElement(rect, k_close))
        opened = cv2.morphologyEx(closed, cv2.MORPH_OPEN, cv2.getStructuringElement(rect, k_open))
        n, labels, stats, _ = cv2.connectedComponentsWithStats(opened, connectivity=8)
        for i in range(1, n):
            x, y, bw, bh = (int(v) for v in stats[i, :4])
            ys, xs = np.nonzero(labels[y : y + bh, x : x + bw] == i)
            xs, ys = xs + x, ys + y
            if horizontal:  # y = a + b x, drawn from x = 0 to w
                b, a = np.polyfit(xs, ys, 1) if np.ptp(xs) > 0 else (0.0, float(ys.mean()))
                thick = stats[i, cv2.CC_STAT_AREA] / max(1, stats[i, cv2.CC_STAT_WIDTH])
                p0, p1 = (0, a), (w - 1, a + b * (w - 1))
            else:  # x = a + b y
                b, a = np.polyfit(ys, xs, 1) if np.ptp(ys) > 0 else (0.0, float(xs.mean()))
                thick = stats[i, cv2.CC_STAT_AREA] / max(1, stats[i, cv2.CC_STAT_HEIGHT])
                p0, p1 = (a, 0), (a + b * (h - 1), h - 1)
            t = max(1, int(round(thick)) + 2)
            pt0 = (int(round(p0[0])), int(round(p0[1])))
            pt1 = (int(round(p1[0])), int(round(p1[1])))
            cv2.line(out, pt0, pt1, 1, t)
    return out.astype(bool)


def solid_blobs(rough: np.ndarray, sw: float) -> tuple[np.ndarray, int]:
    """bool (h, w) regions of broad solid ink — stamped seals, a lost piece of the stone showing
    blank paper, a dark scan border — and how many: the components left by opening ``rough`` (a
    bool ink mask) with a disc 5 stroke widths wide (strokes are thinner), each replaced by its
    convex hull, widened by a stroke width."""
    k = max(5, int(round(5 * sw)))
    disc = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (k, k))
    solid = cv2.morphologyEx(rough.astype(np.uint8), cv2.MORPH_OPEN, disc)
    out = np.zeros_like(solid)
    n = 0
    if solid.any():
        # Pieces of one blob (a seal cut by its strokes) are grouped before taking the hull.
        grouped = cv2.dilate(solid, disc)
        contours, _ = cv2.findContours(grouped, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_SIMPLE)
        for c in contours:
            if cv2.contourArea(c) < 4 * k * k:
                continue
            cv2.fillPoly(out, [cv2.convexHull(c)], 1)
            n += 1
    # Small stamps: a near-square component that fills over 70% of its box (characters fill at
    # most ~60% of theirs), at least 4 stroke widths wide.
    count, _, stats, _ = cv2.connectedComponentsWithStats(rough.astype(np.uint8), connectivity=8)
    for x, y, bw, bh, area in stats[1:]:
        if min(bw, bh) >= 4 * sw and 0.6 <= bw / bh <= 1.6 and area > 0.7 * bw * bh:
            out[y : y + bh, x : x + bw] = 1
            n += 1
    return out.astype(bool), n


def ink_mask(
    grey: np.ndarray, rgb: np.ndarray | None = None, polarity: str = "auto", lines: bool = True
) -> tuple[np.ndarray, bool, float, int]:
    """The ink of a page (steps 1–4): ``(mask, dark_on_light, stroke_width, seals)``.

    ``grey``: uint8 (h, w); ``rgb``: uint8 (h, w, 3) or None. ``mask``: bool (h, w), ink True,
    with ruled lines and seals erased; ``seals``: the number of red blobs erased.
    """
    if polarity == "auto":
        polarity = detect_polarity(grey)
    elif polarity not in ("dark-on-light", "light-on-dark"):
        raise RestoreAEError(f"polarity must be auto, dark-on-light or light-on-dark: {polarity!r}")
    dark_on_light = polarity == "dark-on-light"
    g = (255 - grey) if dark_on_light else grey.copy()
    seals = 0
    if rgb is not None:
        red = red_mask(rgb).astype(np.uint8)
        n, _, stats, _ = cv2.connectedComponentsWithStats(red, connectivity=8)
        bg = int(np.median(g))
        min_area = max(16, grey.size // 20000)
        for i in range(1, n):
            x, y, bw, bh, area = stats[i]
            if area >= min_area:
                g[y : y + bh, x : x + bw] = bg
                seals += 1
    rough = g > otsu_threshold(g)
    sw = stroke_width(rough)
    solid, n_solid = solid_blobs(rough, sw)
    if n_solid:
        g[solid] = int(np.median(g[~rough])) if (~rough).any() else 0
        seals += n_solid
    h, w = g.shape
    k = int(np.clip(4 * sw, 9, max(9, 0.15 * min(h, w))))
    f = 4 if min(h, w) >= 64 * 4 and k >= 16 else 1  # the opening on a quarter-size copy
    small = cv2.resize(g, (max(1, w // f), max(1, h // f)), interpolation=cv2.INTER_AREA)
    kernel = cv2.getStructuringElement(cv2.MORPH_RECT, (max(3, k // f), max(3, k // f)))
    bg_small = cv2.morphologyEx(small, cv2.MORPH_OPEN, kernel)
    bg = cv2.resize(bg_small, (w, h), interpolation=cv2.INTER_LINEAR)
    ink = cv2.subtract(g, bg)
    t = otsu_threshold(ink) if int(ink.max()) >= 16 else 255.0
    mask = (ink > max(t, 12)).astype(np.uint8)
    if lines:
        mask[ruled_lines(mask.astype(bool), sw)] = 0
    n, labels, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    small_ids = np.flatnonzero(stats[:, cv2.CC_STAT_AREA] < max(3.0, 0.6 * sw * sw))
    small_ids = small_ids[small_ids > 0]
    if small_ids.size:
        mask[np.isin(labels, small_ids)] = 0
    return mask.astype(bool), dark_on_light, sw, seals
