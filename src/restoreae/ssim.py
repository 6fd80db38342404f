"""The one SSIM (Wang et al. 2004), shared by the training loss and the evaluation metric.

Gaussian window ``size``×``size`` (11, σ = 1.5 by default), ``K1 = 0.01``, ``K2 = 0.03``,
``C1 = (K1 L)²``, ``C2 = (K2 L)²`` with ``L`` the data range; the map covers the "valid" window
positions only (no padding, as in the reference code). Differentiable; computed in the inputs'
dtype on their device (the metric passes float64, the loss float32).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

SSIM_WINDOW = 11
SSIM_SIGMA = 1.5
SSIM_K1 = 0.01
SSIM_K2 = 0.03


def gaussian_1d(size: int, sigma: float, like: Tensor) -> Tensor:
    """The normalised 1-D Gaussian ``(size,)`` (sums to 1) in ``like``'s dtype and device."""
    coords = torch.arange(size, dtype=like.dtype, device=like.device) - (size - 1) / 2
    g = torch.exp(-(coords**2) / (2 * sigma**2))
    return g / g.sum()


def _filter_valid(x: Tensor, g: Tensor) -> Tensor:
    """Separable 'valid' Gaussian filtering of ``(B, C, H, W)``, channel by channel."""
    c, k = x.shape[1], g.numel()
    rows = F.conv2d(x, g.view(1, 1, k, 1).expand(c, 1, k, 1), groups=c)
    return F.conv2d(rows, g.view(1, 1, 1, k).expand(c, 1, 1, k), groups=c)


def ssim_map(
    x: Tensor,
    y: Tensor,
    data_range: float = 1.0,
    window: int = SSIM_WINDOW,
    sigma: float = SSIM_SIGMA,
) -> Tensor:
    """Per-position SSIM of two ``(B, C, H, W)`` tensors → ``(B, C, H - window + 1, W - window + 1)``.

    ``x``, ``y``: same shape and dtype, values in ``[0, data_range]`` (any polarity: SSIM is
    symmetric in it); ``H, W >= window``. Identical images give 1 everywhere.
    """
    if x.shape != y.shape:
        raise ValueError(f"SSIM: shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    if x.shape[-2] < window or x.shape[-1] < window:
        raise ValueError(
            f"SSIM: images of shape {tuple(x.shape[-2:])} are smaller than the "
            f"{window}x{window} window"
        )
    g = gaussian_1d(window, sigma, x)
    c1 = (SSIM_K1 * data_range) ** 2
    c2 = (SSIM_K2 * data_range) ** 2
    mu_x = _filter_valid(x, g)
    mu_y = _filter_valid(y, g)
    mu_xx, mu_yy, mu_xy = mu_x * mu_x, mu_y * mu_y, mu_x * mu_y
    var_x = _filter_valid(x * x, g) - mu_xx
    var_y = _filter_valid(y * y, g) - mu_yy
    cov = _filter_valid(x * y, g) - mu_xy
    num = (2 * mu_xy + c1) * (2 * cov + c2)
    den = (mu_xx + mu_yy + c1) * (var_x + var_y + c2)
    return num / den
