"""Real stone and paper damage, batched in torch: ``weathering``, ``cracks``, ``missing_chunk``,
``rubbing_grain``, ``ink_bleed``, ``low_contrast``. Twins of the numpy ops of the same names in
:mod:`restoreae.damage.ops`, with their parameters; see :mod:`restoreae.damage.torch_ops` for
what a torch op takes and returns.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

from restoreae.damage import torch_kernels as tk
from restoreae.damage.registry import Range, register_torch_damage

Tensor = torch.Tensor


@register_torch_damage("weathering")
def weathering(
    x: Tensor,
    gen: torch.Generator,
    *,
    coverage: Range = (0.15, 0.45),
    cells: Range = (3, 8),
    depth: Range = (0.7, 1.0),
    edge: Range = (0.2, 0.5),
) -> Tensor:
    """Ink faded in patches below a per-sample quantile of a noise field; rough stroke edges."""
    b, _, h, w = x.shape
    dev = x.device
    field = tk.smooth_noise(gen, b, h, w, cells, dev)
    q = tk.uniform(gen, (b,), coverage, dev)
    step = max(1, min(h, w) // 32)  # the field is smooth: its quantile from a subsample
    ordered = field[:, :, ::step, ::step].reshape(b, -1).sort(dim=1).values
    t = ordered.gather(1, torch.round(q * (ordered.shape[1] - 1)).long()[:, None])
    soft = ((field - tk.per_sample(t)) * 25.0).clamp(0.0, 1.0)
    out = x * (1.0 - tk.per_sample(tk.uniform(gen, (b,), depth, dev)) * (1.0 - soft))
    band = max(1, round(tk.size_scale(x)))
    edge_px = (x - tk.erode(x, 2 * band + 1)) > 0.25
    fine = F.interpolate(
        tk.rand(gen, (b, 1, max(2, h // 3), max(2, w // 3)), dev), size=(h, w), mode="bilinear"
    )
    rough = edge_px & (fine < tk.per_sample(tk.uniform(gen, (b,), edge, dev)))
    return torch.where(rough, 0.0, out)


@register_torch_damage("cracks")
def cracks(
    x: Tensor,
    gen: torch.Generator,
    *,
    n: Range = (1, 3),
    width: Range = (1.5, 3.0),
    length: Range = (0.5, 1.2),
    wiggle: float = 0.35,
    p_bright: float = 0.25,
    bright: Range = (0.3, 0.7),
) -> Tensor:
    """Random-walk cracks through an ink pixel (two walks from it), rasterised as dense points
    dilated to the sample's width; dark (cut the ink) or, with probability ``p_bright``, light
    lines (the width is drawn per sample here, per crack in the numpy op)."""
    b, _, h, w = x.shape
    dev = x.device
    side = min(h, w)
    count = tk.randint(gen, (b,), n, dev)
    c = int(count.max())
    cy, cx = tk.ink_points(gen, x, c)  # every crack passes through an ink pixel
    step = max(2.0, 0.06 * side)
    steps = torch.round(tk.uniform(gen, (b, c), length, dev) * side / step).long().clamp(min=2)
    first = torch.round(steps * (0.3 + 0.4 * tk.rand(gen, (b, c), dev))).long()
    first = torch.minimum(first.clamp(min=1), steps - 1)
    heading = tk.rand(gen, (b, c), dev) * (2 * math.pi)
    mh = int(steps.max())
    # AR(1) direction deviations d_i = 0.6 d_(i-1) + wiggle * N(0, 1), two walks per crack
    i = torch.arange(mh, device=dev, dtype=torch.float32)
    decay = torch.tril(0.6 ** (i[:, None] - i[None]).clamp(min=0))
    turn = (tk.randn(gen, (b, c, 2, mh), dev) * wiggle) @ decay.T
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
    is_bright = tk.rand(gen, (b, c), dev) < p_bright
    level = torch.where(is_bright, tk.uniform(gen, (b, c), bright, dev), 1.0)
    value = ok * level[..., None, None, None]
    plane = is_bright.long()[..., None, None, None].expand_as(iy) * (h * w)
    flat = plane + iy.clamp(0, h - 1) * w + ix.clamp(0, w - 1)
    lines = torch.zeros(b, 2 * h * w, device=dev, dtype=x.dtype)
    lines.scatter_reduce_(1, flat.reshape(b, -1), value.reshape(b, -1).to(x.dtype), reduce="amax")
    lines = lines.view(b, 2, h, w)
    # width per sample; a half-strength rim one pixel wide, like an anti-aliased line
    thick = torch.round(tk.uniform(gen, (b,), width, dev) * tk.size_scale(x)).long().clamp(min=1)
    mask = torch.empty_like(lines)
    for kv in torch.unique(thick).tolist():
        idx = torch.nonzero(thick == kv).squeeze(1)
        sub_lines = lines[idx]
        mask[idx] = torch.maximum(tk.dilate(sub_lines, kv), 0.5 * tk.dilate(sub_lines, kv + 2))
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
    amp = (2.0 * tk.rand(gen, (b, 4), dev) - 1.0).view(b, 4, 1, 1) * roughness / (harmonic - 1)
    phase = (tk.rand(gen, (b, 4), dev) * (2 * math.pi)).view(b, 4, 1, 1)
    ch, cw = max(2, h // 4), max(2, w // 4)
    cyy = (torch.arange(ch, device=dev, dtype=torch.float32) + 0.5) * (h / ch) - 0.5
    cxx = (torch.arange(cw, device=dev, dtype=torch.float32) + 0.5) * (w / cw) - 0.5
    theta = torch.atan2(
        cyy.view(1, -1, 1) - cy.view(b, 1, 1), cxx.view(1, 1, -1) - cx.view(b, 1, 1)
    )
    wave = (amp * torch.cos(harmonic * theta[:, None] + phase)).sum(1, keepdim=True)
    radius = F.interpolate(1.0 + wave, size=(h, w), mode="bilinear") * tk.per_sample(r)
    yy, xx = tk.pixel_coords(h, w, dev)
    dist2 = ((yy - cy.view(b, 1, 1)) ** 2 + (xx - cx.view(b, 1, 1)) ** 2).unsqueeze(1)
    return dist2 < radius * radius


@register_torch_damage("missing_chunk")
def missing_chunk(
    x: Tensor,
    gen: torch.Generator,
    *,
    size: Range = (0.15, 0.35),
    p_corner: float = 0.35,
    p_edge: float = 0.3,
    roughness: float = 0.25,
    p_texture: float = 0.35,
    p_bright: float = 0.15,
    texture_level: Range = (20, 90),
) -> Tensor:
    """Lost corner / edge bite / hole with an irregular outline, filled with background, stone
    texture or a light patch; a background fill that would miss the ink becomes a hole on ink."""
    b, _, h, w = x.shape
    dev = x.device
    side = min(h, w)
    u = tk.rand(gen, (b,), dev)
    corner, edge = u < p_corner, (u >= p_corner) & (u < p_corner + p_edge)
    fu = tk.rand(gen, (b,), dev)
    texture, bright = fu < p_texture, (fu >= p_texture) & (fu < p_texture + p_bright)
    background = ~(texture | bright)
    size1, size2 = tk.uniform(gen, (b,), size, dev), tk.uniform(gen, (b,), size, dev)
    # corner centres
    ccy = (tk.rand(gen, (b,), dev) < 0.5).float() * (h - 1)
    ccx = (tk.rand(gen, (b,), dev) < 0.5).float() * (w - 1)
    # edge centres
    t = 0.15 + 0.7 * tk.rand(gen, (b,), dev)
    which = (tk.rand(gen, (b,), dev) * 4).long().clamp(max=3)
    ecy = torch.stack([torch.zeros_like(t), torch.full_like(t, h - 1.0), t * h, t * h])
    ecx = torch.stack([t * w, t * w, torch.zeros_like(t), torch.full_like(t, w - 1.0)])
    ecy, ecx = ecy.gather(0, which[None])[0], ecx.gather(0, which[None])[0]
    # holes on ink (the second point is for the fallback hole)
    hy, hx = tk.ink_points(gen, x, 2)
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
            tk.uniform(gen, (n,), texture_level, dev) / 255.0,
            tk.uniform(gen, (n,), (200, 255), dev) / 255.0,
        )
        tex = 0.6 + 0.4 * tk.smooth_noise(gen, n, h, w, 6, dev)
        tex = tex + 0.08 * tk.randn(gen, (n, 1, h, w), dev)
        fill = (tk.per_sample(level) * tex).clamp(0.0, 1.0)
        out[filled] = torch.where(mask[filled], fill, out[filled])
    return out


@register_torch_damage("rubbing_grain")
def rubbing_grain(
    x: Tensor,
    gen: torch.Generator,
    *,
    amount: Range = (0.15, 0.4),
    grain: Range = (0.7, 1.5),
    background: Range = (0, 30),
    salt: Range = (0.001, 0.006),
    pepper: Range = (0.005, 0.03),
) -> Tensor:
    """Multiplicative smoothed-Gaussian grain on ink, additive grain on background, salt/pepper."""
    b, _, h, w = x.shape
    dev = x.device
    sigma = tk.uniform(gen, (b,), grain, dev) * tk.size_scale(x)
    g = tk.gaussian_blur(tk.randn(gen, (b, 1, h, w), dev), sigma)
    g = g / g.flatten(1).std(dim=1).clamp(min=1e-6).view(b, 1, 1, 1)
    out = x * (1.0 + tk.per_sample(tk.uniform(gen, (b,), amount, dev)) * g)
    out = out + tk.per_sample(tk.uniform(gen, (b,), background, dev) / 255.0) * g.clamp(0.0, 2.0)
    u = tk.rand(gen, (b, 1, h, w), dev)
    out = torch.where(u < tk.per_sample(tk.uniform(gen, (b,), pepper, dev)), 0.0, out)
    out = torch.where(u > 1.0 - tk.per_sample(tk.uniform(gen, (b,), salt, dev)), 1.0, out)
    return out.clamp(0.0, 1.0)


@register_torch_damage("ink_bleed")
def ink_bleed(
    x: Tensor,
    gen: torch.Generator,
    *,
    sigma: Range = (1.5, 3.5),
    threshold: Range = (0.15, 0.35),
    irregularity: Range = (0.3, 0.6),
    cells: Range = (8, 20),
) -> Tensor:
    """Strokes grow where the blurred ink exceeds a noisy threshold, with feathered edges."""
    b, _, h, w = x.shape
    dev = x.device
    s = (tk.uniform(gen, (b,), sigma, dev) * tk.size_scale(x)).clamp(min=0.5)
    spread = tk.gaussian_blur(x, s)
    noise = tk.smooth_noise(gen, b, h, w, cells, dev) - 0.5
    irr = tk.per_sample(tk.uniform(gen, (b,), irregularity, dev))
    t = tk.per_sample(tk.uniform(gen, (b,), threshold, dev)) * (1.0 + 2.0 * irr * noise)
    strength = tk.per_sample(0.8 + 0.2 * tk.rand(gen, (b,), dev))
    bled = ((spread - t) / 0.08).clamp(0.0, 1.0) * strength
    return torch.maximum(x, bled)


@register_torch_damage("low_contrast")
def low_contrast(
    x: Tensor,
    gen: torch.Generator,
    *,
    contrast: Range = (0.3, 0.65),
    background: Range = (0.05, 0.3),
    unevenness: Range = (0.3, 1.0),
    cells: Range = (2, 4),
) -> Tensor:
    """Ink scaled to ``contrast`` above an uneven low-frequency background level."""
    b, _, h, w = x.shape
    dev = x.device
    field = tk.smooth_noise(gen, b, h, w, cells, dev)
    u = tk.per_sample(tk.uniform(gen, (b,), unevenness, dev))
    bg = tk.per_sample(tk.uniform(gen, (b,), background, dev)) * (1.0 - u + u * field)
    return (bg + x * tk.per_sample(tk.uniform(gen, (b,), contrast, dev)) * (1.0 - bg)).clamp(
        0.0, 1.0
    )
