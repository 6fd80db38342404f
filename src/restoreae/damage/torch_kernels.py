"""Batched random draws and image kernels shared by the torch damage ops and the style ops.

Tensors are ``float32 (B, 1, H, W)`` in ``[0, 1]``, white ink (1) on black (0), on any device.
Random numbers are drawn on the generator's device and moved to the tensor's device, so a CPU
``torch.Generator`` also drives GPU tensors; a parameter given as ``(lo, hi)`` is drawn per sample
and a single number fixes it. Pixel sizes are relative to a 128 px glyph (:func:`size_scale`).
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

Tensor = torch.Tensor


def rand(gen: torch.Generator, shape: tuple[int, ...], device: torch.device) -> Tensor:
    """Uniform floats in [0, 1) of ``shape`` on ``device``, drawn on ``gen``'s device."""
    return torch.rand(shape, generator=gen, device=gen.device).to(device)


def randn(gen: torch.Generator, shape: tuple[int, ...], device: torch.device) -> Tensor:
    """Standard normal floats of ``shape`` on ``device``, drawn on ``gen``'s device."""
    return torch.randn(shape, generator=gen, device=gen.device).to(device)


def bounds(value: Any) -> tuple[float, float]:
    """``(lo, hi)`` of a range parameter; a single number gives ``(v, v)``."""
    if isinstance(value, tuple | list):
        return float(value[0]), float(value[1])
    return float(value), float(value)


def uniform(
    gen: torch.Generator, shape: tuple[int, ...], value: Any, device: torch.device
) -> Tensor:
    """Floats of ``shape`` from a ``(lo, hi)`` range (or all equal to a number)."""
    lo, hi = bounds(value)
    return lo + (hi - lo) * rand(gen, shape, device)


def randint(
    gen: torch.Generator, shape: tuple[int, ...], value: Any, device: torch.device
) -> Tensor:
    """int64 of ``shape`` from an inclusive ``(lo, hi)`` range (or all equal to a number)."""
    lo, hi = (round(v) for v in bounds(value))
    return lo + (rand(gen, shape, device) * (hi - lo + 1)).long().clamp(max=hi - lo)


def size_scale(x: Tensor) -> float:
    """Scale factor of pixel-sized parameters: ``min(H, W) / 128``."""
    return min(x.shape[-2:]) / 128.0


def _max_filter(x: Tensor, k: int, dim: int) -> Tensor:
    """Running max over ``k`` pixels along ``dim`` (2 or 3) of ``x >= 0``, window anchored at
    ``k // 2`` like OpenCV, zero outside the image. Log-doubling: ~log2(k) ``maximum`` calls
    (much faster on CPU than ``max_pool2d`` with stride 1)."""
    if k <= 1:
        return x
    n = x.shape[dim]
    a, b = k // 2, k - 1 - k // 2
    m = F.pad(x, (a, b, 0, 0) if dim == 3 else (0, 0, a, b))
    span = 1
    while span * 2 <= k:  # m[i] = max(padded[i : i + span])
        length = m.shape[dim] - span
        m = torch.maximum(m.narrow(dim, 0, length), m.narrow(dim, span, length))
        span *= 2
    if span == k:
        return m.narrow(dim, 0, n)
    return torch.maximum(m.narrow(dim, 0, n), m.narrow(dim, k - span, n))


def dilate(x: Tensor, k: int) -> Tensor:
    """Grey dilation of ``x >= 0`` by a ``k × k`` square (anchor at ``k // 2``, like OpenCV)."""
    return _max_filter(_max_filter(x, k, 3), k, 2)


def erode(x: Tensor, k: int) -> Tensor:
    """Grey erosion of ``x`` in [0, 1] by a ``k × k`` square; the border does not erode."""
    return 1.0 - dilate(1.0 - x, k)


def dilate_disc(x: Tensor, radius: float) -> Tensor:
    """Grey dilation of ``x >= 0`` by a disc of ``radius`` px (the pixels within ``radius`` of the
    centre), zero outside the image: the weight a round brush adds, without the square corners
    and the √2-wider diagonals of :func:`dilate`. One horizontal running max per disc row."""
    reach = int(math.floor(radius))
    if reach < 1:
        return x
    h = x.shape[2]
    out = x
    for dy in range(-reach, reach + 1):
        half = int(math.floor(math.sqrt(max(radius * radius - dy * dy, 0.0))))
        row = _max_filter(x, 2 * half + 1, 3)
        if dy > 0:  # out[y] takes row[y - dy]: the disc reaches dy rows up
            row = F.pad(row, (0, 0, dy, 0)).narrow(2, 0, h)
        elif dy < 0:
            row = F.pad(row, (0, 0, 0, -dy)).narrow(2, -dy, h)
        out = torch.maximum(out, row)
    return out


def erode_disc(x: Tensor, radius: float) -> Tensor:
    """Grey erosion of ``x`` in [0, 1] by a disc of ``radius`` px; the border does not erode."""
    return 1.0 - dilate_disc(1.0 - x, radius)


def skeleton(ink: Tensor) -> Tensor:
    """Medial lines, 1 px wide and connected as the ink is, of a binary ``(B, 1, H, W)`` image
    (ink > 0.5): Zhang-Suen thinning (Zhang & Suen 1984, CACM 27(3)), both sub-iterations
    batched, repeated until no pixel changes. Returns float 0/1 of ``ink``'s shape."""
    x = (ink > 0.5).to(torch.float32)
    h, w = x.shape[-2:]
    while True:
        changed = False
        for step in (0, 1):
            p = F.pad(x, (1, 1, 1, 1))
            # neighbours P2..P9 (clockwise from north)
            n = [
                p[..., 0:h, 1 : w + 1],
                p[..., 0:h, 2:],
                p[..., 1 : h + 1, 2:],
                p[..., 2:, 2:],
                p[..., 2:, 1 : w + 1],
                p[..., 2:, 0:w],
                p[..., 1 : h + 1, 0:w],
                p[..., 0:h, 0:w],
            ]
            count = sum(n)
            rises = sum((1.0 - n[i]) * n[(i + 1) % 8] for i in range(8))
            if step == 0:
                gap = (n[0] * n[2] * n[4] == 0) & (n[2] * n[4] * n[6] == 0)
            else:
                gap = (n[0] * n[2] * n[6] == 0) & (n[0] * n[4] * n[6] == 0)
            delete = (x > 0) & (count >= 2) & (count <= 6) & (rises == 1) & gap
            if bool(delete.any()):
                x = x.masked_fill(delete, 0.0)
                changed = True
        if not changed:
            return x


def ink_points(gen: torch.Generator, x: Tensor, n: int = 1) -> tuple[Tensor, Tensor]:
    """(y, x) float ``(B, n)`` of random ink pixels (> 0.5) per sample (uniform where a sample
    has no ink), by inverse-CDF sampling of the ink mask."""
    b, _, h, w = x.shape
    cum = torch.cumsum((x.reshape(b, -1) > 0.5).float(), dim=1)
    total = cum[:, -1:]
    u = rand(gen, (b, n), x.device)
    idx = torch.searchsorted(cum, u * total, right=True).clamp(max=h * w - 1)
    idx = torch.where(total > 0, idx, (u * (h * w)).long().clamp(max=h * w - 1))
    return (idx // w).float(), (idx % w).float()


def gaussian_blur(x: Tensor, sigma: Tensor, radius: Tensor | None = None) -> Tensor:
    """Separable Gaussian blur of ``(B, 1, H, W)`` with per-sample ``sigma`` (B,) and kernel
    ``radius`` (B,) (default ``ceil(3 sigma)``); reflect border like OpenCV's default."""
    b, _, h, w = x.shape
    if radius is None:
        radius = torch.ceil(3.0 * sigma).long()
    big = max(1, min(int(radius.max()), h - 1, w - 1))
    j = torch.arange(-big, big + 1, device=x.device, dtype=x.dtype)
    kern = torch.exp(-(j[None] ** 2) / (2.0 * sigma[:, None].to(x.dtype) ** 2))
    kern = kern * (j[None].abs() <= radius[:, None])
    kern = kern / kern.sum(dim=1, keepdim=True)
    y = x.reshape(1, b, h, w)
    y = F.conv2d(F.pad(y, (big, big, 0, 0), mode="reflect"), kern.view(b, 1, 1, -1), groups=b)
    y = F.conv2d(F.pad(y, (0, 0, big, big), mode="reflect"), kern.view(b, 1, -1, 1), groups=b)
    return y.reshape(b, 1, h, w)


def smooth_noise(
    gen: torch.Generator, b: int, h: int, w: int, cells: Any, device: torch.device
) -> Tensor:
    """Low-frequency noise ``(B, 1, H, W)`` in [0, 1], ``cells`` blobs per side (per sample).

    A random grid is sampled bicubically over a per-sample sub-window, so samples with different
    cell counts are made in one batched ``grid_sample``.
    """
    c = randint(gen, (b,), cells, device).clamp(min=1).float()
    cx = torch.round(c * w / h).clamp(min=1)
    gy, gx = int(c.max()) + 1, int(cx.max()) + 1
    base = rand(gen, (b, 1, gy, gx), device)
    ax, ay = cx / (gx - 1), c / (gy - 1)
    theta = torch.zeros(b, 2, 3, device=device)
    theta[:, 0, 0], theta[:, 0, 2] = ax, ax - 1.0
    theta[:, 1, 1], theta[:, 1, 2] = ay, ay - 1.0
    mh, mw = min(h, 4 * gy + 4), min(w, 4 * gx + 4)  # bicubic at mid resolution, bilinear up
    grid = F.affine_grid(theta, [b, 1, mh, mw], align_corners=True)
    field = F.grid_sample(base, grid, mode="bicubic", align_corners=True)
    if (mh, mw) != (h, w):
        field = F.interpolate(field, size=(h, w), mode="bilinear", align_corners=True)
    flat = field.reshape(b, -1)
    lo, hi = flat.min(dim=1).values, flat.max(dim=1).values
    return ((field - lo.view(b, 1, 1, 1)) / (hi - lo).clamp(min=1e-6).view(b, 1, 1, 1)).clamp(0, 1)


def pixel_coords(h: int, w: int, device: torch.device) -> tuple[Tensor, Tensor]:
    """Row and column indices as float32 ``(1, H, 1)`` and ``(1, 1, W)`` for broadcasting."""
    yy = torch.arange(h, device=device, dtype=torch.float32).view(1, h, 1)
    xx = torch.arange(w, device=device, dtype=torch.float32).view(1, 1, w)
    return yy, xx


def per_sample(t: Tensor) -> Tensor:
    """(B,) -> (B, 1, 1, 1) for broadcasting against images."""
    return t.view(-1, 1, 1, 1)
