"""Batched torch damage ops and :class:`TorchDamage` (the damage used in training).

Every op is ``fn(x, generator, **params) -> x`` on ``float32 (B, 1, H, W)`` in ``[0, 1]``, white
ink (1) on black (0), computed on ``x.device`` without Python loops over samples. Each sample
draws its own random parameters from ``generator`` (random numbers are drawn on the generator's
device and moved to ``x.device``, so a CPU generator also drives GPU tensors). The parameters are
those of the numpy op of the same name (:mod:`restoreae.damage.ops`); the damage is of the same
kind and strength, not bit-identical.
"""

from __future__ import annotations

import math
from typing import Any

import torch
import torch.nn.functional as F

from restoreae.damage.pipeline import DamageConfig
from restoreae.damage.registry import get_damage_op, register_torch_damage

Tensor = torch.Tensor

# ---------------------------------------------------------------------------------------- helpers


def _rand(gen: torch.Generator, shape: tuple[int, ...], device: torch.device) -> Tensor:
    return torch.rand(shape, generator=gen, device=gen.device).to(device)


def _randn(gen: torch.Generator, shape: tuple[int, ...], device: torch.device) -> Tensor:
    return torch.randn(shape, generator=gen, device=gen.device).to(device)


def _bounds(value: Any) -> tuple[float, float]:
    if isinstance(value, tuple | list):
        return float(value[0]), float(value[1])
    return float(value), float(value)


def _uniform(
    gen: torch.Generator, shape: tuple[int, ...], value: Any, device: torch.device
) -> Tensor:
    """Floats of ``shape`` from a ``(lo, hi)`` range (or all equal to a number)."""
    lo, hi = _bounds(value)
    return lo + (hi - lo) * _rand(gen, shape, device)


def _randint(
    gen: torch.Generator, shape: tuple[int, ...], value: Any, device: torch.device
) -> Tensor:
    """int64 of ``shape`` from an inclusive ``(lo, hi)`` range (or all equal to a number)."""
    lo, hi = (round(v) for v in _bounds(value))
    return lo + (_rand(gen, shape, device) * (hi - lo + 1)).long().clamp(max=hi - lo)


def _scale(x: Tensor) -> float:
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


def _dilate(x: Tensor, k: int) -> Tensor:
    """Grey dilation of ``x >= 0`` by a ``k × k`` square (anchor at ``k // 2``, like OpenCV)."""
    return _max_filter(_max_filter(x, k, 3), k, 2)


def _erode(x: Tensor, k: int) -> Tensor:
    """Grey erosion of ``x`` in [0, 1] by a ``k × k`` square; the border does not erode."""
    return 1.0 - _dilate(1.0 - x, k)


def _ink_points(gen: torch.Generator, x: Tensor, n: int = 1) -> tuple[Tensor, Tensor]:
    """(y, x) float ``(B, n)`` of random ink pixels (> 0.5) per sample (uniform where a sample
    has no ink), by inverse-CDF sampling of the ink mask."""
    b, _, h, w = x.shape
    cum = torch.cumsum((x.reshape(b, -1) > 0.5).float(), dim=1)
    total = cum[:, -1:]
    u = _rand(gen, (b, n), x.device)
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
    c = _randint(gen, (b,), cells, device).clamp(min=1).float()
    cx = torch.round(c * w / h).clamp(min=1)
    gy, gx = int(c.max()) + 1, int(cx.max()) + 1
    base = _rand(gen, (b, 1, gy, gx), device)
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


def _coords(h: int, w: int, device: torch.device) -> tuple[Tensor, Tensor]:
    yy = torch.arange(h, device=device, dtype=torch.float32).view(1, h, 1)
    xx = torch.arange(w, device=device, dtype=torch.float32).view(1, 1, w)
    return yy, xx


def _col(t: Tensor) -> Tensor:
    """(B,) -> (B, 1, 1, 1) for broadcasting against images."""
    return t.view(-1, 1, 1, 1)


# ------------------------------------------------------------------------------------- seed ops


@register_torch_damage("erode_dilate")
def erode_dilate(x: Tensor, gen: torch.Generator, *, kernel: Any, p_dilate: float) -> Tensor:
    """Per-sample erosion or dilation (square kernel ≥ 2), grouped by kernel size."""
    b, dev = x.shape[0], x.device
    k = torch.round(_randint(gen, (b,), kernel, dev).float() * _scale(x)).long().clamp(min=2)
    dil = _rand(gen, (b,), dev) < p_dilate
    out = x.clone()
    for kv in torch.unique(k).tolist():
        for d in (True, False):
            idx = torch.nonzero((k == kv) & (dil == d)).squeeze(1)
            if idx.numel():
                out[idx] = _dilate(x[idx], kv) if d else _erode(x[idx], kv)
    return out


@register_torch_damage("rectangles")
def rectangles(x: Tensor, gen: torch.Generator, *, n: Any, size: Any, shift: Any) -> Tensor:
    """``n`` axis-aligned rectangles per sample shifting the level by ±shift/255; the shifts
    are summed, then clipped once (the numpy op clips after each rectangle)."""
    b, _, h, w = x.shape
    dev = x.device
    count = _randint(gen, (b,), n, dev)
    nmax = int(count.max())
    sizes = _uniform(gen, (b, nmax, 2), size, dev)
    corners = _rand(gen, (b, nmax, 2), dev)
    sign = torch.where(_rand(gen, (b, nmax), dev) < 0.5, -1.0, 1.0)
    active = torch.arange(nmax, device=dev)[None] < count[:, None]
    shifts = _randint(gen, (b, nmax), shift, dev).float() * sign / 255.0 * active
    rh = torch.round(sizes[..., 0] * h).clamp(min=1)
    rw = torch.round(sizes[..., 1] * w).clamp(min=1)
    y0 = torch.floor(corners[..., 0] * (h - rh + 1))
    x0 = torch.floor(corners[..., 1] * (w - rw + 1))
    yy = torch.arange(h, device=dev, dtype=torch.float32).view(1, 1, h)
    xx = torch.arange(w, device=dev, dtype=torch.float32).view(1, 1, w)
    my = ((yy >= y0[..., None]) & (yy < (y0 + rh)[..., None])).float()  # (B, n, H)
    mx = ((xx >= x0[..., None]) & (xx < (x0 + rw)[..., None])).float()  # (B, n, W)
    # all rectangles at once: sum_j shift_j * rowmask_j ⊗ colmask_j, one batched matmul
    delta = torch.bmm((my * shifts[..., None]).transpose(1, 2), mx)
    return (x + delta.unsqueeze(1).to(x.dtype)).clamp(0.0, 1.0)


@register_torch_damage("polygons")
def polygons(
    x: Tensor,
    gen: torch.Generator,
    *,
    n: Any,
    vertices: Any,
    radius: Any,
    p_black: float,
    grey: Any,
) -> Tensor:
    """Random convex polygons (vertices on a circle), inside test by half-plane intersection;
    black ones centred on an ink pixel, grey/white ones anywhere."""
    b, _, h, w = x.shape
    dev = x.device
    side = min(h, w)
    count = _randint(gen, (b,), n, dev)
    pmax = int(count.max())
    mmax = max(3, round(_bounds(vertices)[1]))
    yy, xx = _coords(h, w, dev)
    iys, ixs = _ink_points(gen, x, pmax)
    out = x
    for p in range(pmax):
        black = _rand(gen, (b,), dev) < p_black
        uy, ux = _rand(gen, (b,), dev) * h, _rand(gen, (b,), dev) * w
        cy, cx = torch.where(black, iys[:, p], uy), torch.where(black, ixs[:, p], ux)
        value = torch.where(black, 0.0, _randint(gen, (b,), grey, dev).float() / 255.0)
        m = _randint(gen, (b,), vertices, dev).clamp(min=3)
        # jittered even angles (every gap < pi: the centre is inside); unused vertices repeat
        # the last one (zero-length edges do not cut)
        slot = torch.arange(mmax, device=dev, dtype=torch.float32)[None]
        slot = torch.minimum(slot, (m - 1)[:, None].float())
        slot = slot + 0.4 * (_rand(gen, (b, mmax), dev) - 0.5)
        used = torch.arange(mmax, device=dev)[None] < m[:, None]
        slot = torch.where(used, slot, slot.gather(1, (m - 1)[:, None]))
        ang = _rand(gen, (b, 1), dev) * (2 * math.pi) + 2 * math.pi * slot / m[:, None]
        r = _uniform(gen, (b,), radius, dev)[:, None] * side
        px, py = cx[:, None] + r * torch.cos(ang), cy[:, None] + r * torch.sin(ang)
        # vertices in increasing angle: the interior is left of every edge (cross >= 0)
        inner = None
        for e in range(mmax):
            x1, y1 = px[:, e, None, None], py[:, e, None, None]
            ex = px[:, (e + 1) % mmax, None, None] - x1
            ey = py[:, (e + 1) % mmax, None, None] - y1
            cross = ex * (yy - y1) - ey * (xx - x1)
            inner = cross if inner is None else torch.minimum(inner, cross)
        inside = ((inner >= 0) & (count > p)[:, None, None]).unsqueeze(1)
        out = torch.where(inside, _col(value), out)
    return out


@register_torch_damage("blur")
def blur(x: Tensor, gen: torch.Generator, *, kernel: Any) -> Tensor:
    """Gaussian blur, per-sample odd kernel (sigma from the kernel size, as OpenCV)."""
    b, dev = x.shape[0], x.device
    k = torch.round(_randint(gen, (b,), kernel, dev).float() * _scale(x)).long()
    k = (k | 1).clamp(min=3)
    sigma = 0.3 * ((k.float() - 1) * 0.5 - 1) + 0.8
    return gaussian_blur(x, sigma, k // 2)


@register_torch_damage("blob_noise")
def blob_noise(
    x: Tensor, gen: torch.Generator, *, points: Any, kernel: float, amount: Any
) -> Tensor:
    """Sparse points scattered into a +plane and a -plane, dilated by max-pooling into blobs."""
    b, _, h, w = x.shape
    dev = x.device
    s = _scale(x)
    count = torch.round(_randint(gen, (b,), points, dev).float() * s * s).long().clamp(min=1)
    nmax = int(count.max())
    flat = (_rand(gen, (b, nmax), dev) * h).long().clamp(max=h - 1) * w
    flat = flat + (_rand(gen, (b, nmax), dev) * w).long().clamp(max=w - 1)
    active = torch.arange(nmax, device=dev)[None] < count[:, None]
    values = _randint(gen, (b, nmax), amount, dev).float() / 255.0 * active
    positive = (_rand(gen, (b, nmax), dev) < 0.5) & active
    positive[:, 0] |= ~positive.any(dim=1)  # at least one raising blob per sample
    plane = (~positive).long()  # plane 0: raise, plane 1: lower
    planes = torch.zeros(b, 2 * h * w, device=dev, dtype=x.dtype)
    planes.scatter_reduce_(1, plane * (h * w) + flat, values.to(x.dtype), reduce="amax")
    k = max(3, round(kernel * s) | 1)
    blobs = _dilate(planes.view(b, 2, h, w), k)
    return (x + blobs[:, :1] - blobs[:, 1:]).clamp(0.0, 1.0)


# --------------------------------------------------------------------------- real-world damage


@register_torch_damage("weathering")
def weathering(
    x: Tensor, gen: torch.Generator, *, coverage: Any, cells: Any, depth: Any, edge: Any
) -> Tensor:
    """Ink faded in patches below a per-sample quantile of a noise field; rough stroke edges."""
    b, _, h, w = x.shape
    dev = x.device
    field = smooth_noise(gen, b, h, w, cells, dev)
    q = _uniform(gen, (b,), coverage, dev)
    step = max(1, min(h, w) // 32)  # the field is smooth: its quantile from a subsample
    ordered = field[:, :, ::step, ::step].reshape(b, -1).sort(dim=1).values
    t = ordered.gather(1, torch.round(q * (ordered.shape[1] - 1)).long()[:, None])
    soft = ((field - _col(t)) * 25.0).clamp(0.0, 1.0)
    out = x * (1.0 - _col(_uniform(gen, (b,), depth, dev)) * (1.0 - soft))
    band = max(1, round(_scale(x)))
    edge_px = (x - _erode(x, 2 * band + 1)) > 0.25
    fine = F.interpolate(
        _rand(gen, (b, 1, max(2, h // 3), max(2, w // 3)), dev), size=(h, w), mode="bilinear"
    )
    rough = edge_px & (fine < _col(_uniform(gen, (b,), edge, dev)))
    return torch.where(rough, 0.0, out)


@register_torch_damage("cracks")
def cracks(
    x: Tensor,
    gen: torch.Generator,
    *,
    n: Any,
    width: Any,
    length: Any,
    wiggle: float,
    p_bright: float,
    bright: Any,
) -> Tensor:
    """Random-walk cracks through an ink pixel (two walks from it), rasterised as dense points
    dilated to the sample's width; dark (cut the ink) or, with probability ``p_bright``, light
    lines (the width is drawn per sample here, per crack in the numpy op)."""
    b, _, h, w = x.shape
    dev = x.device
    side = min(h, w)
    count = _randint(gen, (b,), n, dev)
    c = int(count.max())
    cy, cx = _ink_points(gen, x, c)  # every crack passes through an ink pixel
    step = max(2.0, 0.06 * side)
    steps = torch.round(_uniform(gen, (b, c), length, dev) * side / step).long().clamp(min=2)
    first = torch.round(steps * (0.3 + 0.4 * _rand(gen, (b, c), dev))).long()
    first = torch.minimum(first.clamp(min=1), steps - 1)
    heading = _rand(gen, (b, c), dev) * (2 * math.pi)
    mh = int(steps.max())
    # AR(1) direction deviations d_i = 0.6 d_(i-1) + wiggle * N(0, 1), two walks per crack
    i = torch.arange(mh, device=dev, dtype=torch.float32)
    decay = torch.tril(0.6 ** (i[:, None] - i[None]).clamp(min=0))
    turn = (_randn(gen, (b, c, 2, mh), dev) * wiggle) @ decay.T
    ang = torch.stack([heading, heading + math.pi], dim=2)[..., None] + turn  # (B, C, 2, M)
    vx = torch.cumsum(step * torch.cos(ang), 3)
    vy = torch.cumsum(step * torch.sin(ang), 3)
    vx = torch.cat([torch.zeros_like(vx[..., :1]), vx], 3) + cx[..., None, None]
    vy = torch.cat([torch.zeros_like(vy[..., :1]), vy], 3) + cy[..., None, None]
    n_seg = torch.stack([first, steps - first], dim=2)  # (B, C, 2) segments per walk
    sub = max(2, math.ceil(step / 0.5))
    frac = torch.arange(sub, device=dev, dtype=torch.float32) / sub
    px = vx[..., :-1, None] + frac * (vx[..., 1:, None] - vx[..., :-1, None])  # (B,C,2,M,sub)
    py = vy[..., :-1, None] + frac * (vy[..., 1:, None] - vy[..., :-1, None])
    ix, iy = torch.round(px).long(), torch.round(py).long()
    ok = (ix >= 0) & (ix < w) & (iy >= 0) & (iy < h)
    ok &= torch.arange(mh, device=dev).view(1, 1, 1, -1, 1) < n_seg[..., None, None]
    ok &= torch.arange(c, device=dev).view(1, -1, 1, 1, 1) < count.view(-1, 1, 1, 1, 1)
    # two line planes per sample: dark cracks and light cracks (level = the light value)
    is_bright = _rand(gen, (b, c), dev) < p_bright
    level = torch.where(is_bright, _uniform(gen, (b, c), bright, dev), 1.0)
    value = ok * level[..., None, None, None]
    plane = is_bright.long()[..., None, None, None].expand_as(iy) * (h * w)
    flat = plane + iy.clamp(0, h - 1) * w + ix.clamp(0, w - 1)
    lines = torch.zeros(b, 2 * h * w, device=dev, dtype=x.dtype)
    lines.scatter_reduce_(1, flat.reshape(b, -1), value.reshape(b, -1).to(x.dtype), reduce="amax")
    lines = lines.view(b, 2, h, w)
    # width per sample; a half-strength rim one pixel wide, like an anti-aliased line
    thick = torch.round(_uniform(gen, (b,), width, dev) * _scale(x)).long().clamp(min=1)
    mask = torch.empty_like(lines)
    for kv in torch.unique(thick).tolist():
        idx = torch.nonzero(thick == kv).squeeze(1)
        sub_lines = lines[idx]
        mask[idx] = torch.maximum(_dilate(sub_lines, kv), 0.5 * _dilate(sub_lines, kv + 2))
    return torch.maximum(x * (1.0 - mask[:, :1]), mask[:, 1:])


def _chunk_mask(
    gen: torch.Generator, cy: Tensor, cx: Tensor, r: Tensor, roughness: float, h: int, w: int
) -> Tensor:
    """Bool (B, 1, H, W): inside the closed curve ``r(θ)`` (4 random harmonics) around (cy, cx).

    ``r(θ)`` is evaluated on a quarter-resolution grid and upsampled (it is smooth, and near the
    centre, where θ varies fast, every pixel is inside anyway: ``r >= 0.48 R``).
    """
    b, dev = cy.shape[0], cy.device
    harmonic = torch.arange(2, 6, device=dev, dtype=torch.float32).view(1, 4, 1, 1)
    amp = (2.0 * _rand(gen, (b, 4), dev) - 1.0).view(b, 4, 1, 1) * roughness / (harmonic - 1)
    phase = (_rand(gen, (b, 4), dev) * (2 * math.pi)).view(b, 4, 1, 1)
    ch, cw = max(2, h // 4), max(2, w // 4)
    cyy = (torch.arange(ch, device=dev, dtype=torch.float32) + 0.5) * (h / ch) - 0.5
    cxx = (torch.arange(cw, device=dev, dtype=torch.float32) + 0.5) * (w / cw) - 0.5
    theta = torch.atan2(
        cyy.view(1, -1, 1) - cy.view(b, 1, 1), cxx.view(1, 1, -1) - cx.view(b, 1, 1)
    )
    wave = (amp * torch.cos(harmonic * theta[:, None] + phase)).sum(1, keepdim=True)
    radius = F.interpolate(1.0 + wave, size=(h, w), mode="bilinear") * _col(r)
    yy, xx = _coords(h, w, dev)
    dist2 = ((yy - cy.view(b, 1, 1)) ** 2 + (xx - cx.view(b, 1, 1)) ** 2).unsqueeze(1)
    return dist2 < radius * radius


@register_torch_damage("missing_chunk")
def missing_chunk(
    x: Tensor,
    gen: torch.Generator,
    *,
    size: Any,
    p_corner: float,
    p_edge: float,
    roughness: float,
    p_texture: float,
    p_bright: float,
    texture_level: Any,
) -> Tensor:
    """Lost corner / edge bite / hole with an irregular outline, filled with background, stone
    texture or a light patch; a background fill that would miss the ink becomes a hole on ink."""
    b, _, h, w = x.shape
    dev = x.device
    side = min(h, w)
    u = _rand(gen, (b,), dev)
    corner, edge = u < p_corner, (u >= p_corner) & (u < p_corner + p_edge)
    fu = _rand(gen, (b,), dev)
    texture, bright = fu < p_texture, (fu >= p_texture) & (fu < p_texture + p_bright)
    background = ~(texture | bright)
    size1, size2 = _uniform(gen, (b,), size, dev), _uniform(gen, (b,), size, dev)
    # corner centres
    ccy = (_rand(gen, (b,), dev) < 0.5).float() * (h - 1)
    ccx = (_rand(gen, (b,), dev) < 0.5).float() * (w - 1)
    # edge centres
    t = 0.15 + 0.7 * _rand(gen, (b,), dev)
    which = (_rand(gen, (b,), dev) * 4).long().clamp(max=3)
    ecy = torch.stack([torch.zeros_like(t), torch.full_like(t, h - 1.0), t * h, t * h])
    ecx = torch.stack([t * w, t * w, torch.zeros_like(t), torch.full_like(t, w - 1.0)])
    ecy, ecx = ecy.gather(0, which[None])[0], ecx.gather(0, which[None])[0]
    # holes on ink (the second point is for the fallback hole)
    hy, hx = _ink_points(gen, x, 2)
    cy = torch.where(corner, ccy, torch.where(edge, ecy, hy[:, 0]))
    cx = torch.where(corner, ccx, torch.where(edge, ecx, hx[:, 0]))
    r = size1 * side * torch.where(corner, 2.2, torch.where(edge, 1.6, 1.0))
    mask = _chunk_mask(gen, cy, cx, r, roughness, h, w)
    miss = torch.nonzero(background & ~(mask & (x > 0.5)).flatten(1).any(dim=1)).squeeze(1)
    if miss.numel():
        mask[miss] = _chunk_mask(gen, hy[miss, 1], hx[miss, 1], size2[miss] * side, roughness, h, w)
    out = torch.where(mask, 0.0, x)
    filled = torch.nonzero(~background).squeeze(1)
    if filled.numel():
        n = filled.numel()
        level = torch.where(
            texture[filled],
            _uniform(gen, (n,), texture_level, dev) / 255.0,
            _uniform(gen, (n,), (200, 255), dev) / 255.0,
        )
        tex = 0.6 + 0.4 * smooth_noise(gen, n, h, w, 6, dev)
        tex = tex + 0.08 * _randn(gen, (n, 1, h, w), dev)
        fill = (_col(level) * tex).clamp(0.0, 1.0)
        out[filled] = torch.where(mask[filled], fill, out[filled])
    return out


@register_torch_damage("rubbing_grain")
def rubbing_grain(
    x: Tensor,
    gen: torch.Generator,
    *,
    amount: Any,
    grain: Any,
    background: Any,
    salt: Any,
    pepper: Any,
) -> Tensor:
    """Multiplicative smoothed-Gaussian grain on ink, additive grain on background, salt/pepper."""
    b, _, h, w = x.shape
    dev = x.device
    sigma = _uniform(gen, (b,), grain, dev) * _scale(x)
    g = gaussian_blur(_randn(gen, (b, 1, h, w), dev), sigma)
    g = g / g.flatten(1).std(dim=1).clamp(min=1e-6).view(b, 1, 1, 1)
    out = x * (1.0 + _col(_uniform(gen, (b,), amount, dev)) * g)
    out = out + _col(_uniform(gen, (b,), background, dev) / 255.0) * g.clamp(0.0, 2.0)
    u = _rand(gen, (b, 1, h, w), dev)
    out = torch.where(u < _col(_uniform(gen, (b,), pepper, dev)), 0.0, out)
    out = torch.where(u > 1.0 - _col(_uniform(gen, (b,), salt, dev)), 1.0, out)
    return out.clamp(0.0, 1.0)


@register_torch_damage("ink_bleed")
def ink_bleed(
    x: Tensor,
    gen: torch.Generator,
    *,
    sigma: Any,
    threshold: Any,
    irregularity: Any,
    cells: Any,
) -> Tensor:
    """Strokes grow where the blurred ink exceeds a noisy threshold, with feathered edges."""
    b, _, h, w = x.shape
    dev = x.device
    s = (_uniform(gen, (b,), sigma, dev) * _scale(x)).clamp(min=0.5)
    spread = gaussian_blur(x, s)
    noise = smooth_noise(gen, b, h, w, cells, dev) - 0.5
    irr = _col(_uniform(gen, (b,), irregularity, dev))
    t = _col(_uniform(gen, (b,), threshold, dev)) * (1.0 + 2.0 * irr * noise)
    strength = _col(0.8 + 0.2 * _rand(gen, (b,), dev))
    bled = ((spread - t) / 0.08).clamp(0.0, 1.0) * strength
    return torch.maximum(x, bled)


@register_torch_damage("low_contrast")
def low_contrast(
    x: Tensor,
    gen: torch.Generator,
    *,
    contrast: Any,
    background: Any,
    unevenness: Any,
    cells: Any,
) -> Tensor:
    """Ink scaled to ``contrast`` above an uneven low-frequency background level."""
    b, _, h, w = x.shape
    dev = x.device
    field = smooth_noise(gen, b, h, w, cells, dev)
    u = _col(_uniform(gen, (b,), unevenness, dev))
    bg = _col(_uniform(gen, (b,), background, dev)) * (1.0 - u + u * field)
    return (bg + x * _col(_uniform(gen, (b,), contrast, dev)) * (1.0 - bg)).clamp(0.0, 1.0)


# ---------------------------------------------------------------------------------- TorchDamage


class TorchDamage:
    """Batched damage for training: ``damage(x, generator) -> float (B, 1, H, W)`` in [0, 1].

    ``x`` is ``float (B, 1, H, W)`` in [0, 1], white ink on black, on any device; it is not
    modified (computed in float32, returned in ``x``'s dtype). Each sample gets its own random choice of ``k`` distinct ops of the config's pool
    (``k`` per sample when the config gives a range), applied in a random order; the ops run on
    the sub-batch of samples that chose them at each step, so there is no loop over samples.
    Deterministic for a given generator state.
    """

    def __init__(self, config: DamageConfig | None = None) -> None:
        self.config = config if config is not None else DamageConfig()
        self.ops = list(self.config.ops)
        self._fns = []
        for name in self.ops:
            spec = get_damage_op(name)
            if spec.torch_fn is None:
                raise ValueError(f"damage op {name!r} has no torch implementation")
            self._fns.append(spec.torch_fn)
        self._params = [self.config.op_params(name) for name in self.ops]

    def __call__(self, x: Tensor, generator: torch.Generator) -> Tensor:
        return self.apply(x, generator)[0]

    def apply(self, x: Tensor, generator: torch.Generator) -> tuple[Tensor, Tensor]:
        """``(damaged (B, 1, H, W), chosen (B, k_max) int64)``: the op indices (into
        ``self.ops``) each sample got, in order of application; -1 marks unused steps."""
        if x.ndim != 4 or x.shape[1] != 1 or not x.is_floating_point():
            raise ValueError(f"expected float (B, 1, H, W), got {x.dtype} {tuple(x.shape)}")
        b, dev = x.shape[0], x.device
        lo, hi = self.config.k_range
        order = torch.argsort(_rand(generator, (b, len(self.ops)), dev), dim=1)[:, :hi]
        k = _randint(generator, (b,), (lo, hi), dev)
        chosen = torch.where(torch.arange(hi, device=dev)[None] < k[:, None], order, -1)
        out = x.float().clone()  # the ops compute in float32; the result is cast back
        for step in range(hi):
            col = chosen[:, step]
            for j, (fn, params) in enumerate(zip(self._fns, self._params, strict=True)):
                idx = torch.nonzero(col == j).squeeze(1)
                if idx.numel():
                    out[idx] = fn(out[idx], generator, **params).clamp(0.0, 1.0)
        return out.to(x.dtype), chosen

    def apply_op(self, name: str, x: Tensor, generator: torch.Generator) -> Tensor:
        """Apply the single op ``name`` (with this config's parameters) to every sample."""
        spec = get_damage_op(name)
        if spec.torch_fn is None:
            raise ValueError(f"damage op {name!r} has no torch implementation")
        out = spec.torch_fn(x.float(), generator, **self.config.op_params(name))
        return out.clamp(0.0, 1.0).to(x.dtype)
