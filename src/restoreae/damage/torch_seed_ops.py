"""The seed's damage ops (RestoreAE-Zi), batched in torch: ``erode_dilate``, ``rectangles``,
``polygons``, ``blur``, ``blob_noise``, each the twin of the numpy op of the same name in
:mod:`restoreae.damage.ops` (same parameters; damage of the same kind and strength, not
bit-identical). The contract of a torch op is in :mod:`restoreae.damage.torch_ops`.
"""

from __future__ import annotations

import math

import torch

from restoreae.damage import torch_kernels as tk
from restoreae.damage.registry import Range, register_torch_damage

Tensor = torch.Tensor


@register_torch_damage("erode_dilate")
def erode_dilate(
    x: Tensor, gen: torch.Generator, *, kernel: Range = (2, 5), p_dilate: float = 0.5
) -> Tensor:
    """Per-sample erosion or dilation (square kernel ≥ 2), grouped by kernel size."""
    b, dev = x.shape[0], x.device
    k = (
        torch.round(tk.randint(gen, (b,), kernel, dev).float() * tk.size_scale(x))
        .long()
        .clamp(min=2)
    )
    dil = tk.rand(gen, (b,), dev) < p_dilate
    out = x.clone()
    for kv in torch.unique(k).tolist():
        for d in (True, False):
            idx = torch.nonzero((k == kv) & (dil == d)).squeeze(1)
            if idx.numel():
                out[idx] = tk.dilate(x[idx], kv) if d else tk.erode(x[idx], kv)
    return out


@register_torch_damage("rectangles")
def rectangles(
    x: Tensor,
    gen: torch.Generator,
    *,
    n: Range = 10,
    size: Range = (0.05, 0.4),
    shift: Range = (8, 51),
) -> Tensor:
    """``n`` axis-aligned rectangles per sample shifting the level by ±shift/255; the shifts
    are summed, then clipped once (the numpy op clips after each rectangle)."""
    b, _, h, w = x.shape
    dev = x.device
    count = tk.randint(gen, (b,), n, dev)
    nmax = int(count.max())
    sizes = tk.uniform(gen, (b, nmax, 2), size, dev)
    corners = tk.rand(gen, (b, nmax, 2), dev)
    sign = torch.where(tk.rand(gen, (b, nmax), dev) < 0.5, -1.0, 1.0)
    active = torch.arange(nmax, device=dev)[None] < count[:, None]
    shifts = tk.randint(gen, (b, nmax), shift, dev).float() * sign / 255.0 * active
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
    n: Range = (1, 3),
    vertices: Range = (3, 8),
    radius: Range = (0.06, 0.2),
    p_black: float = 0.6,
    grey: Range = (128, 255),
) -> Tensor:
    """Random convex polygons (vertices on a circle), inside test by half-plane intersection;
    black ones centred on an ink pixel, grey/white ones anywhere."""
    b, _, h, w = x.shape
    dev = x.device
    side = min(h, w)
    count = tk.randint(gen, (b,), n, dev)
    pmax = int(count.max())
    mmax = max(3, round(tk.bounds(vertices)[1]))
    yy, xx = tk.pixel_coords(h, w, dev)
    iys, ixs = tk.ink_points(gen, x, pmax)
    out = x
    for p in range(pmax):
        black = tk.rand(gen, (b,), dev) < p_black
        uy, ux = tk.rand(gen, (b,), dev) * h, tk.rand(gen, (b,), dev) * w
        cy, cx = torch.where(black, iys[:, p], uy), torch.where(black, ixs[:, p], ux)
        value = torch.where(black, 0.0, tk.randint(gen, (b,), grey, dev).float() / 255.0)
        m = tk.randint(gen, (b,), vertices, dev).clamp(min=3)
        # jittered even angles (every gap < pi: the centre is inside); unused vertices repeat
        # the last one (zero-length edges do not cut)
        slot = torch.arange(mmax, device=dev, dtype=torch.float32)[None]
        slot = torch.minimum(slot, (m - 1)[:, None].float())
        slot = slot + 0.4 * (tk.rand(gen, (b, mmax), dev) - 0.5)
        used = torch.arange(mmax, device=dev)[None] < m[:, None]
        slot = torch.where(used, slot, slot.gather(1, (m - 1)[:, None]))
        ang = tk.rand(gen, (b, 1), dev) * (2 * math.pi) + 2 * math.pi * slot / m[:, None]
        r = tk.uniform(gen, (b,), radius, dev)[:, None] * side
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
        out = torch.where(inside, tk.per_sample(value), out)
    return out


@register_torch_damage("blur")
def blur(x: Tensor, gen: torch.Generator, *, kernel: Range = (3, 11)) -> Tensor:
    """Gaussian blur, per-sample odd kernel (sigma from the kernel size, as OpenCV)."""
    b, dev = x.shape[0], x.device
    k = torch.round(tk.randint(gen, (b,), kernel, dev).float() * tk.size_scale(x)).long()
    k = (k | 1).clamp(min=3)
    sigma = 0.3 * ((k.float() - 1) * 0.5 - 1) + 0.8
    return tk.gaussian_blur(x, sigma, k // 2)


@register_torch_damage("blob_noise")
def blob_noise(
    x: Tensor,
    gen: torch.Generator,
    *,
    points: Range = (6, 20),
    kernel: float = 15,
    amount: Range = (32, 64),
) -> Tensor:
    """Sparse points scattered into a +plane and a -plane, dilated by max-pooling into blobs."""
    b, _, h, w = x.shape
    dev = x.device
    s = tk.size_scale(x)
    count = torch.round(tk.randint(gen, (b,), points, dev).float() * s * s).long().clamp(min=1)
    nmax = int(count.max())
    flat = (tk.rand(gen, (b, nmax), dev) * h).long().clamp(max=h - 1) * w
    flat = flat + (tk.rand(gen, (b, nmax), dev) * w).long().clamp(max=w - 1)
    active = torch.arange(nmax, device=dev)[None] < count[:, None]
    values = tk.randint(gen, (b, nmax), amount, dev).float() / 255.0 * active
    positive = (tk.rand(gen, (b, nmax), dev) < 0.5) & active
    positive[:, 0] |= ~positive.any(dim=1)  # at least one raising blob per sample
    plane = (~positive).long()  # plane 0: raise, plane 1: lower
    planes = torch.zeros(b, 2 * h * w, device=dev, dtype=x.dtype)
    planes.scatter_reduce_(1, plane * (h * w) + flat, values.to(x.dtype), reduce="amax")
    k = max(3, round(kernel * s) | 1)
    blobs = tk.dilate(planes.view(b, 2, h, w), k)
    return (x + blobs[:, :1] - blobs[:, 1:]).clamp(0.0, 1.0)
