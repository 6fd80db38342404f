"""Numpy/OpenCV damage ops on ``uint8 (H, W)`` glyphs, white ink (255) on black (0).

Every op is ``fn(img, rng, **params) -> uint8 (H, W)`` (a new array; the input is not modified).
A parameter given as ``(lo, hi)`` is sampled per image (integers inclusive where the parameter is
a count or a kernel size); a single number fixes it. Pixel sizes are relative to a 128 px image
and scaled by ``min(H, W) / 128``; other sizes are fractions of the image side.

Seed ops (RestoreAE-Zi): ``erode_dilate``, ``rectangles``, ``polygons``, ``blur``,
``blob_noise``. Real stone/paper damage: ``weathering``, ``cracks``, ``missing_chunk``,
``rubbing_grain``, ``ink_bleed``, ``low_contrast``.
"""

from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from restoreae.damage.registry import Range, register_damage

# ---------------------------------------------------------------------------------------- helpers


def size_scale(img: np.ndarray) -> float:
    """Scale factor of pixel-sized parameters: ``min(H, W) / 128``."""
    return min(img.shape[:2]) / 128.0


def sample_uniform(rng: np.random.Generator, value: Any) -> float:
    """A float from a ``(lo, hi)`` range, or the number itself."""
    if isinstance(value, tuple | list):
        lo, hi = value
        return float(rng.uniform(lo, hi)) if hi > lo else float(lo)
    return float(value)


def sample_int(rng: np.random.Generator, value: Any) -> int:
    """An integer from an inclusive ``(lo, hi)`` range, or the number itself (rounded)."""
    if isinstance(value, tuple | list):
        lo, hi = round(value[0]), round(value[1])
        return int(rng.integers(lo, hi + 1)) if hi > lo else lo
    return round(value)


def smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Low-frequency noise ``float32 (H, W)`` in ``[0, 1]`` with about ``cells`` blobs per side."""
    h, w = shape
    cells = max(1, cells)
    gy, gx = cells + 1, max(1, round(cells * w / h)) + 1
    grid = rng.random((gy, gx), dtype=np.float32)
    field = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    lo, hi = float(field.min()), float(field.max())
    return (field - lo) / max(hi - lo, 1e-6)


def _random_ink_point(rng: np.random.Generator, img: np.ndarray) -> tuple[float, float]:
    """(y, x) of a random ink pixel (value > 127), or a uniform point when there is no ink."""
    ink = np.flatnonzero(img > 127)
    h, w = img.shape
    if ink.size == 0:
        return float(rng.uniform(0, h)), float(rng.uniform(0, w))
    i = int(ink[rng.integers(ink.size)])
    return float(i // w), float(i % w)


def _to_uint8(a: np.ndarray) -> np.ndarray:
    return np.clip(a + 0.5, 0, 255).astype(np.uint8)


# ------------------------------------------------------------------------------------- seed ops


@register_damage("erode_dilate")
def erode_dilate(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    kernel: Range = (2, 5),
    p_dilate: float = 0.5,
) -> np.ndarray:
    """Thin (erode) or thicken (dilate) the strokes with a square kernel of 2-5 px (at 128 px).

    The kernel is at least 2 px, so the image always changes when it has an ink edge.
    """
    k = max(2, round(sample_int(rng, kernel) * size_scale(img)))
    se = np.ones((k, k), np.uint8)
    if rng.random() < p_dilate:
        return cv2.dilate(img, se)
    return cv2.erode(img, se)


@register_damage("rectangles")
def rectangles(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    n: Range = 10,
    size: Range = (0.05, 0.4),
    shift: Range = (8, 51),
) -> np.ndarray:
    """Paint ``n`` random rectangles (sides a fraction ``size`` of the image), each shifting the
    grey level by ``±shift`` (random sign), clipped to 0-255 after each rectangle."""
    h, w = img.shape
    count = sample_int(rng, n)
    out = img.copy()
    lo, hi = size if isinstance(size, tuple | list) else (size, size)
    sizes = rng.uniform(lo, hi, size=(count, 2))
    corners = rng.random((count, 2))
    slo, shi = (
        (round(shift[0]), round(shift[1])) if isinstance(shift, tuple | list) else (shift,) * 2
    )
    shifts = rng.integers(slo, shi + 1, size=count) * rng.choice((-1, 1), size=count)
    for (fh, fw), (cy, cx), s in zip(sizes, corners, shifts, strict=True):
        rh, rw = max(1, round(fh * h)), max(1, round(fw * w))
        y0, x0 = int(cy * (h - rh + 1)), int(cx * (w - rw + 1))
        region = out[y0 : y0 + rh, x0 : x0 + rw]  # a view: saturating add/subtract in place
        if s > 0:
            cv2.add(region, int(s), dst=region)
        else:
            cv2.subtract(region, int(-s), dst=region)
    return out


@register_damage("polygons")
def polygons(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    n: Range = (1, 3),
    vertices: Range = (3, 8),
    radius: Range = (0.06, 0.2),
    p_black: float = 0.6,
    grey: Range = (128, 255),
) -> np.ndarray:
    """Paint ``n`` random convex polygons (``vertices`` corners on a circle of ``radius`` × side,
    around their centre).

    Black polygons (probability ``p_black``) are centred on an ink pixel and erase strokes; the
    others are grey/white blots anywhere.
    """
    h, w = img.shape
    side = min(h, w)
    out = img.copy()
    for _ in range(sample_int(rng, n)):
        black = rng.random() < p_black
        if black:
            cy, cx = _random_ink_point(rng, out)
            value = 0
        else:
            cy, cx = rng.uniform(0, h), rng.uniform(0, w)
            value = sample_int(rng, grey)
        m = max(3, sample_int(rng, vertices))
        r = sample_uniform(rng, radius) * side
        # jittered even angles: every gap < pi, so the polygon contains its centre
        slots = np.arange(m) + 0.4 * (rng.random(m) - 0.5)
        angles = rng.uniform(0, 2 * np.pi) + 2 * np.pi * slots / m
        pts = np.stack([cx + r * np.cos(angles), cy + r * np.sin(angles)], axis=1)
        cv2.fillPoly(out, [np.round(pts).astype(np.int32)], int(value))
    return out


@register_damage("blur")
def blur(img: np.ndarray, rng: np.random.Generator, *, kernel: Range = (3, 11)) -> np.ndarray:
    """Gaussian blur with an odd kernel of 3-11 px (at 128 px; sigma from the kernel size)."""
    k = round(sample_int(rng, kernel) * size_scale(img))
    k = max(3, k | 1)
    return cv2.GaussianBlur(img, (k, k), 0)


@register_damage("blob_noise")
def blob_noise(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    points: Range = (6, 20),
    kernel: float = 15,
    amount: Range = (32, 64),
) -> np.ndarray:
    """Sparse random points (``points`` per 128² px) dilated by a square ``kernel`` (15 px at
    128 px) into blobs that raise or lower the grey level by ``amount`` (random sign)."""
    h, w = img.shape
    s = size_scale(img)
    count = max(1, round(sample_int(rng, points) * s * s))
    k = max(3, round(kernel * s) | 1)
    alo, ahi = amount if isinstance(amount, tuple | list) else (amount, amount)
    values = rng.integers(round(alo), round(ahi) + 1, size=count).astype(np.uint8)
    ys, xs = rng.integers(0, h, size=count), rng.integers(0, w, size=count)
    positive = rng.random(count) < 0.5
    positive[0] |= not positive.any()  # at least one raising blob, so the image always changes
    se = np.ones((k, k), np.uint8)
    out = img.astype(np.int16)
    for sign, sel in ((1, positive), (-1, ~positive)):
        if sel.any():
            plane = np.zeros_like(img)
            np.maximum.at(plane, (ys[sel], xs[sel]), values[sel])
            out += sign * cv2.dilate(plane, se).astype(np.int16)
    return np.clip(out, 0, 255).astype(np.uint8)


# --------------------------------------------------------------------------- real-world damage


@register_damage("weathering")
def weathering(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    coverage: Range = (0.15, 0.45),
    cells: Range = (3, 8),
    depth: Range = (0.7, 1.0),
    edge: Range = (0.2, 0.5),
) -> np.ndarray:
    """Weathered stone: ink eaten away in patches and rough stroke edges.

    A low-frequency noise field (``cells`` blobs per side) thresholded at its ``coverage``
    quantile marks the eroded patches, where ink fades by ``depth``; a fraction ``edge`` of the
    stroke-edge pixels is knocked out by fine noise.
    """
    h, w = img.shape
    field = smooth_noise(rng, (h, w), sample_int(rng, cells))
    t = float(np.quantile(field, sample_uniform(rng, coverage)))
    soft = np.clip((field - t) * 25.0, 0.0, 1.0)
    keep = 1.0 - sample_uniform(rng, depth) * (1.0 - soft)
    out = img.astype(np.float32) * keep
    # rough edges: the edge band (ink minus its erosion) loses pixels where fine noise is low
    band = max(1, round(size_scale(img)))
    eroded = cv2.erode(img, np.ones((2 * band + 1, 2 * band + 1), np.uint8))
    edge_px = (img.astype(np.int16) - eroded) > 64
    fine = smooth_noise(rng, (h, w), max(4, round(min(h, w) / 3)))
    out[edge_px & (fine < sample_uniform(rng, edge))] = 0
    return _to_uint8(out)


@register_damage("cracks")
def cracks(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    n: Range = (1, 3),
    width: Range = (1.5, 3.0),
    length: Range = (0.5, 1.2),
    wiggle: float = 0.35,
    p_bright: float = 0.25,
    bright: Range = (0.3, 0.7),
) -> np.ndarray:
    """Thin random-walk cracks (``length`` × side, ``width`` px at 128) through an ink pixel.

    A crack cuts the ink (dark), or with probability ``p_bright`` shows as a light line
    (``bright`` × 255) the way a crack in the stone prints in a rubbing.
    """
    h, w = img.shape
    side = min(h, w)
    s = size_scale(img)
    out = img.astype(np.float32)
    for _ in range(sample_int(rng, n)):
        through = _random_ink_point(rng, img)
        pts = _crack_polyline(rng, h, w, sample_uniform(rng, length) * side, wiggle, through)
        mask = np.zeros((h, w), np.uint8)
        thick = max(1, round(sample_uniform(rng, width) * s))
        cv2.polylines(mask, [pts], False, 255, thickness=thick, lineType=cv2.LINE_AA)
        m = mask.astype(np.float32) / 255.0
        if rng.random() < p_bright:
            out = np.maximum(out, m * 255.0 * sample_uniform(rng, bright))
        else:
            out *= 1.0 - m
    return _to_uint8(out)


def _crack_polyline(
    rng: np.random.Generator,
    h: int,
    w: int,
    length: float,
    wiggle: float,
    through: tuple[float, float],
) -> np.ndarray:
    """Polyline ``int32 (M, 2)`` (x, y) of total ``length`` through the point ``through`` (y, x):
    two random walks from it in opposite directions, each wandering around its heading."""
    step = max(2.0, 0.06 * min(h, w))
    steps = max(2, round(length / step))
    heading = rng.uniform(0.0, 2.0 * math.pi)
    first = max(1, round(steps * rng.uniform(0.3, 0.7)))
    halves = []
    for n, direction in ((first, heading), (max(1, steps - first), heading + math.pi)):
        turn = rng.normal(0.0, wiggle, n)
        for i in range(1, n):  # AR(1): the direction wanders around the heading
            turn[i] += 0.6 * turn[i - 1]
        angles = direction + turn
        halves.append(np.cumsum(np.stack([np.cos(angles), np.sin(angles)], 1) * step, axis=0))
    centre = np.array([through[1], through[0]])
    pts = np.vstack([centre + halves[1][::-1], centre, centre + halves[0]])
    return np.round(pts).astype(np.int32)


@register_damage("missing_chunk")
def missing_chunk(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    size: Range = (0.15, 0.35),
    p_corner: float = 0.35,
    p_edge: float = 0.3,
    roughness: float = 0.25,
    p_texture: float = 0.35,
    p_bright: float = 0.15,
    texture_level: Range = (20, 90),
) -> np.ndarray:
    """A lost piece: a corner, an edge bite or an irregular hole (radius ``size`` × side).

    Filled with background (0), a grey stone texture (``texture_level``) or a light patch (the
    unprinted paper of a rubbing). A hole is centred on an ink pixel, and when a corner or edge
    region holds no ink and is filled with background, a hole is used instead, so the glyph is
    always hit.
    """
    h, w = img.shape
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    u = rng.random()
    kind = "corner" if u < p_corner else "edge" if u < p_corner + p_edge else "hole"
    fill_u = rng.random()
    fill = "texture" if fill_u < p_texture else "bright" if fill_u < p_texture + p_bright else "bg"
    mask = _chunk_mask(rng, img, yy, xx, kind, sample_uniform(rng, size), roughness)
    if fill == "bg" and not (img[mask] > 127).any():
        mask = _chunk_mask(rng, img, yy, xx, "hole", sample_uniform(rng, size), roughness)
    out = img.copy()
    if fill == "bg":
        out[mask] = 0
    else:
        level = sample_uniform(rng, texture_level) if fill == "texture" else rng.uniform(200, 255)
        tex = 0.6 + 0.4 * smooth_noise(rng, (h, w), 6)
        tex += rng.normal(0.0, 0.08, (h, w)).astype(np.float32)
        out[mask] = _to_uint8(level * tex)[mask]
    return out


def _chunk_mask(
    rng: np.random.Generator,
    img: np.ndarray,
    yy: np.ndarray,
    xx: np.ndarray,
    kind: str,
    size: float,
    roughness: float,
) -> np.ndarray:
    """Boolean (H, W) region inside an irregular closed curve r(θ) around a centre."""
    h, w = img.shape
    side = min(h, w)
    if kind == "corner":
        cy, cx = (0.0, h - 1.0)[rng.integers(2)], (0.0, w - 1.0)[rng.integers(2)]
        r = 2.2 * size * side
    elif kind == "edge":
        t = rng.uniform(0.15, 0.85)
        cy, cx = [(0.0, t * w), (h - 1.0, t * w), (t * h, 0.0), (t * h, w - 1.0)][rng.integers(4)]
        r = 1.6 * size * side
    else:
        cy, cx = _random_ink_point(rng, img)
        r = size * side
    dy, dx = yy - cy, xx - cx
    theta = np.arctan2(dy, dx)
    radius = np.ones_like(theta)
    for harmonic in range(2, 6):
        amp = rng.uniform(-roughness, roughness) / (harmonic - 1)
        radius += amp * np.cos(harmonic * theta + rng.uniform(0, 2 * np.pi))
    return dy * dy + dx * dx < (r * radius) ** 2


@register_damage("rubbing_grain")
def rubbing_grain(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    amount: Range = (0.15, 0.4),
    grain: Range = (0.7, 1.5),
    background: Range = (0, 30),
    salt: Range = (0.001, 0.006),
    pepper: Range = (0.005, 0.03),
) -> np.ndarray:
    """Speckle of an ink rubbing over the whole image.

    Multiplicative grain (``amount`` × smoothed Gaussian noise of ``grain`` px at 128) on the
    ink, additive grain up to ``background`` on the background, then salt (white) and pepper
    (black) pixels with the given probabilities.
    """
    h, w = img.shape
    sigma = sample_uniform(rng, grain) * size_scale(img)
    g = rng.standard_normal((h, w), dtype=np.float32)
    g = cv2.GaussianBlur(g, (0, 0), sigma)
    g /= max(float(g.std()), 1e-6)
    out = img.astype(np.float32) * (1.0 + sample_uniform(rng, amount) * g)
    out += sample_uniform(rng, background) * np.clip(g, 0.0, 2.0)
    u = rng.random((h, w), dtype=np.float32)
    out[u < sample_uniform(rng, pepper)] = 0
    out[u > 1.0 - sample_uniform(rng, salt)] = 255
    return _to_uint8(out)


@register_damage("ink_bleed")
def ink_bleed(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    sigma: Range = (1.5, 3.5),
    threshold: Range = (0.15, 0.35),
    irregularity: Range = (0.3, 0.6),
    cells: Range = (8, 20),
) -> np.ndarray:
    """Ink spreading into the paper: strokes grow where the blurred ink (``sigma`` px at 128)
    exceeds a ``threshold`` that noise varies by ``± irregularity`` (relative), with feathered
    edges."""
    h, w = img.shape
    s = sample_uniform(rng, sigma) * size_scale(img)
    spread = cv2.GaussianBlur(img.astype(np.float32) / 255.0, (0, 0), max(s, 0.5))
    noise = smooth_noise(rng, (h, w), sample_int(rng, cells)) - 0.5
    t = sample_uniform(rng, threshold) * (1.0 + 2.0 * sample_uniform(rng, irregularity) * noise)
    bled = np.clip((spread - t) / 0.08, 0.0, 1.0) * 255.0 * rng.uniform(0.8, 1.0)
    return _to_uint8(np.maximum(img.astype(np.float32), bled))


@register_damage("low_contrast")
def low_contrast(
    img: np.ndarray,
    rng: np.random.Generator,
    *,
    contrast: Range = (0.3, 0.65),
    background: Range = (0.05, 0.3),
    unevenness: Range = (0.3, 1.0),
    cells: Range = (2, 4),
) -> np.ndarray:
    """Faded image: ink reaches only ``contrast`` of the range above an uneven background level
    (``background`` × 255, varying by ``unevenness`` over ``cells`` blobs per side)."""
    h, w = img.shape
    field = smooth_noise(rng, (h, w), sample_int(rng, cells))
    u = sample_uniform(rng, unevenness)
    bg = 255.0 * sample_uniform(rng, background) * (1.0 - u + u * field)
    out = bg + img.astype(np.float32) * sample_uniform(rng, contrast) * (1.0 - bg / 255.0)
    return _to_uint8(out)
