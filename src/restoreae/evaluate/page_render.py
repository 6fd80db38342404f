"""How a laid-out synthetic page looks (:func:`restoreae.evaluate.pages.make_page` lays it out).

The page is given as coverage maps, float ``(H, W)`` in ``[0, 1]``: ink (glyphs, grid lines) and
seal. :func:`render_page` draws them as dark ink on light paper or light strokes on a dark rubbing,
grey or in colour (red seals); :func:`damage_maps` adds page-level damage to the maps (cracks
across characters, a lost corner, uneven wear) and, given a generator, :func:`render_page` adds
texture, grain and stains. :func:`seal_image` draws a seal. Everything is seeded by the
``numpy.random.Generator`` passed in.
"""

from __future__ import annotations

import cv2
import numpy as np

__all__ = ["damage_maps", "render_page", "seal_image"]


def _smooth_noise(rng: np.random.Generator, shape: tuple[int, int], cells: int) -> np.ndarray:
    """Smooth noise in [0, 1] of ``shape``: a random (cells, cells) grid resized with cubic
    interpolation."""
    h, w = shape
    grid = rng.random((max(2, cells), max(2, round(cells * w / max(h, 1)))), dtype=np.float32)
    n = cv2.resize(grid, (w, h), interpolation=cv2.INTER_CUBIC)
    n -= n.min()
    return n / max(float(n.max()), 1e-6)


def _polyline(rng: np.random.Generator, h: int, w: int, steps: int) -> np.ndarray:
    """A wandering line across the page (int32 (steps, 2) points x, y)."""
    if rng.random() < 0.5:  # left edge to right edge
        p = np.array([0.0, rng.uniform(0, h)])
        d = np.array([w / steps, rng.uniform(-0.4, 0.4) * h / steps])
    else:
        p = np.array([rng.uniform(0, w), 0.0])
        d = np.array([rng.uniform(-0.4, 0.4) * w / steps, h / steps])
    pts = [p.copy()]
    for _ in range(steps):
        p = p + d + rng.normal(0, 0.25, 2) * np.abs(d).max()
        pts.append(p.copy())
    return np.rint(np.array(pts)).astype(np.int32)


def seal_image(rng: np.random.Generator, side: int, frame: bool) -> np.ndarray:
    """A seal (uint8 (side, side), 255 = seal colour): a frame with blocky strokes inside
    (``frame``), or a solid square with the strokes cut out (a "yin" seal)."""
    seal = np.zeros((side, side), np.uint8)
    t = max(2, side // 14)
    strokes = np.zeros_like(seal)
    for _ in range(int(rng.integers(5, 9))):
        x0, y0 = (int(v) for v in rng.integers(2 * t, side - 3 * t, 2))
        if rng.random() < 0.5:
            cv2.rectangle(strokes, (x0, y0), (min(side - 2 * t, x0 + side // 3), y0 + t), 255, -1)
        else:
            cv2.rectangle(strokes, (x0, y0), (x0 + t, min(side - 2 * t, y0 + side // 3)), 255, -1)
    if frame:
        cv2.rectangle(seal, (0, 0), (side - 1, side - 1), 255, t)
        seal = np.maximum(seal, strokes)
    else:
        seal[:] = 255
        seal[strokes > 0] = 0
    return seal


def damage_maps(
    rng: np.random.Generator, a: np.ndarray, sm: np.ndarray, char_size: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Page-level damage on the ink coverage map ``a`` and seal map ``sm`` (float (H, W) in
    [0, 1]): cracks that cut through the strokes, a lost corner, and uneven wear of the ink.
    Returns the damaged maps and the lost corner's map (float (H, W) in [0, 1])."""
    H, W = a.shape
    a = a.copy()
    cut = np.zeros((H, W), np.uint8)
    for _ in range(int(rng.integers(2, 5))):
        pts = _polyline(rng, H, W, steps=int(rng.integers(6, 14)))
        t = max(1, round(char_size * rng.uniform(0.03, 0.07)))
        cv2.polylines(cut, [pts], False, 255, t, lineType=cv2.LINE_AA)
    a *= 1.0 - cut.astype(np.float32) / 255.0
    # A lost corner: a triangle of the page where the ink is gone.
    corner = np.zeros((H, W), np.uint8)
    cx, cy = (0 if rng.random() < 0.5 else W), (0 if rng.random() < 0.5 else H)
    rx, ry = rng.uniform(0.12, 0.25) * W, rng.uniform(0.12, 0.25) * H
    tri = np.array([[cx, cy], [abs(cx - rx), cy], [cx, abs(cy - ry)]], np.int32)
    cv2.fillPoly(corner, [tri], 255)
    lost = corner.astype(np.float32) / 255.0
    a *= 1.0 - lost
    sm = sm * (1.0 - lost)
    # Uneven wear: smooth noise thins the ink in places.
    wear = _smooth_noise(rng, (H, W), max(3, round(max(H, W) / char_size)))
    a *= np.clip(0.55 + 0.7 * wear, 0.0, 1.0)
    return a, sm, lost


def render_page(
    a: np.ndarray,
    sm: np.ndarray,
    lost: np.ndarray | None,
    dark_on_light: bool,
    colour: bool,
    rng: np.random.Generator | None,
    char_size: int,
) -> np.ndarray:
    """Ink coverage ``a`` and seal coverage ``sm`` (float (H, W) in [0, 1]) → the page: uint8
    (H, W) grey or (H, W, 3) RGB. With ``rng``: texture, grain and stains; ``lost``: a flat patch
    (blank paper showing where the stone is missing, or torn-off paper)."""
    if dark_on_light:
        paper = np.array([236, 228, 206] if colour else [232, 232, 232], np.float32)
        inkc = np.array([28, 24, 20] if colour else [26, 26, 26], np.float32)
        sealc = np.array([200, 40, 36] if colour else [40, 40, 40], np.float32)
    else:
        paper = np.array([34, 33, 31] if colour else [30, 30, 30], np.float32)
        inkc = np.array([222, 220, 212] if colour else [225, 225, 225], np.float32)
        sealc = np.array([200, 40, 36] if colour else [215, 215, 215], np.float32)
    img = paper[None, None, :] * (1 - a[..., None]) + inkc[None, None, :] * a[..., None]
    if rng is not None:
        img = _damage_colour(rng, img, char_size, dark_on_light)
    img = img * (1 - sm[..., None]) + sealc[None, None, :] * sm[..., None]
    if lost is not None:
        patch = np.array([250, 250, 250] if dark_on_light else [176, 174, 170], np.float32)
        img = img * (1 - lost[..., None]) + patch[None, None, :] * lost[..., None]
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)
    return img if colour else np.ascontiguousarray(img[..., 0])


def _damage_colour(
    rng: np.random.Generator, img: np.ndarray, char_size: int, dark_on_light: bool
) -> np.ndarray:
    """Texture, stains and grain on the rendered page (float (H, W, 3) 0–255)."""
    H, W = img.shape[:2]
    tex = _smooth_noise(rng, (H, W), max(4, round(3 * max(H, W) / char_size))) - 0.5
    grain = rng.normal(0.0, 1.0, (H, W)).astype(np.float32)
    grain = cv2.GaussianBlur(grain, (0, 0), max(0.6, char_size / 80))
    out = img + (28.0 * tex + 10.0 * grain)[..., None]
    # Stains: a few soft blobs of a darker (paper) or lighter (rubbing) tone.
    stain = np.zeros((H, W), np.float32)
    for _ in range(int(rng.integers(1, 4))):
        r = rng.uniform(0.5, 1.5) * char_size
        x, y = rng.uniform(0, W), rng.uniform(0, H)
        cv2.circle(stain, (round(x), round(y)), round(r), 1.0, -1)
    stain = cv2.GaussianBlur(stain, (0, 0), char_size / 4)
    tone = np.array([-45, -50, -70] if dark_on_light else [40, 38, 30], np.float32)
    return out + stain[..., None] * tone[None, None, :]
