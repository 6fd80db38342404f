"""Image quality metrics: PSNR, SSIM and MAE on glyph images.

Conventions (the BasicSR / MATLAB reference conventions, spelled out):

- Inputs are two arrays of the same shape, ``(H, W)`` for one image or ``(N, H, W)`` for a batch,
  both ``uint8`` (range 0–255) or both floating point (range ``[0, 1]`` unless ``data_range`` is
  given). Mixing ``uint8`` with floats is refused: it is nearly always a range bug.
- Argument order does not matter (all three metrics are symmetric); by convention the first one is
  the restored image and the second the ground truth.
- All arithmetic is done in ``float64`` on the raw values; there is **no crop border**, no colour
  conversion, no rounding of float inputs.
- ``data_range`` (``L``) is 255 for ``uint8`` input and 1.0 for float input by default.
- PSNR ``= 10 log10(L² / MSE)`` per image; identical images give ``inf``.
- SSIM: the usual Gaussian window 11×11, σ = 1.5, ``K1 = 0.01``, ``K2 = 0.03``,
  ``C1 = (K1 L)²``, ``C2 = (K2 L)²``; the SSIM map is computed at "valid" window positions only
  (no padding, as in Wang et al.'s reference code) and averaged. Identical images give 1.0.
  Images smaller than 11×11 are refused.
- MAE ``= mean |a − b|`` in the data's own units (grey levels 0–255 for ``uint8``).

A single image returns a Python ``float``; a batch returns a ``float64`` array of shape ``(N,)``
with one value per image (average them yourself: the mean of per-image values is the usual
reported figure).
"""

from __future__ import annotations

import numpy as np

__all__ = ["psnr", "ssim", "mae", "gaussian_window", "SSIM_WINDOW", "SSIM_SIGMA"]

from restoreae.ssim import SSIM_SIGMA, SSIM_WINDOW


def _prepare(
    a: np.ndarray, b: np.ndarray, data_range: float | None
) -> tuple[np.ndarray, np.ndarray, float, bool]:
    """Validate a pair, return float64 ``(N, H, W)`` copies, the data range and 'was single'."""
    a = np.asarray(a)
    b = np.asarray(b)
    if a.shape != b.shape:
        raise ValueError(f"image shapes differ: {a.shape} vs {b.shape}")
    if a.size == 0:
        raise ValueError(f"empty input: shape {a.shape}")
    if a.ndim not in (2, 3):
        raise ValueError(f"expected (H, W) or (N, H, W) arrays, got shape {a.shape}")
    a_int = a.dtype == np.uint8
    b_int = b.dtype == np.uint8
    for arr in (a, b):
        if not (arr.dtype == np.uint8 or np.issubdtype(arr.dtype, np.floating)):
            raise ValueError(f"unsupported dtype {arr.dtype}: use uint8 (0-255) or float (0-1)")
    if a_int != b_int:
        raise ValueError(f"dtypes differ: {a.dtype} vs {b.dtype} (convert both to one range)")
    if data_range is None:
        data_range = 255.0 if a_int else 1.0
    if data_range <= 0:
        raise ValueError(f"data_range must be positive, got {data_range}")
    single = a.ndim == 2
    a64 = a.astype(np.float64)
    b64 = b.astype(np.float64)
    if single:
        a64 = a64[None]
        b64 = b64[None]
    return a64, b64, float(data_range), single


def _out(values: np.ndarray, single: bool) -> float | np.ndarray:
    return float(values[0]) if single else values


def mae(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """Mean absolute error per image, in the input's units (grey levels for uint8).

    ``a``, ``b``: ``(H, W)`` or ``(N, H, W)``, same shape and dtype family. Returns a float for one
    image, a ``(N,)`` float64 array for a batch.
    """
    x, y, _, single = _prepare(a, b, None)
    return _out(np.abs(x - y).mean(axis=(1, 2)), single)


def psnr(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float | np.ndarray:
    """Peak signal-to-noise ratio in dB per image; ``inf`` where the images are identical.

    ``a``, ``b``: ``(H, W)`` or ``(N, H, W)``; ``data_range`` defaults to 255 (uint8) or 1 (float).
    """
    x, y, rng, single = _prepare(a, b, data_range)
    mse = ((x - y) ** 2).mean(axis=(1, 2))
    with np.errstate(divide="ignore"):
        values = 10.0 * np.log10((rng * rng) / mse)
    values[mse == 0] = np.inf
    return _out(values, single)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The normalised 1-D Gaussian (float64, sums to 1); SSIM's 2-D window is its outer product."""
    import torch

    from restoreae.ssim import gaussian_1d

    return gaussian_1d(size, sigma, torch.zeros((), dtype=torch.float64)).numpy()


def ssim(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float | np.ndarray:
    """Structural similarity per image (Gaussian 11×11, σ=1.5, K1=0.01, K2=0.03, valid region).

    ``a``, ``b``: ``(H, W)`` or ``(N, H, W)`` with ``H, W >= 11``; ``data_range`` defaults to 255
    (uint8) or 1 (float). The map is :func:`restoreae.ssim.ssim_map` (the training loss's SSIM)
    in float64. Identical images give exactly 1.0 up to rounding.
    """
    import torch

    from restoreae.ssim import ssim_map

    x, y, rng, single = _prepare(a, b, data_range)
    if x.shape[1] < SSIM_WINDOW or x.shape[2] < SSIM_WINDOW:
        raise ValueError(
            f"images of shape {x.shape[1:]} are smaller than the {SSIM_WINDOW}x{SSIM_WINDOW} "
            "SSIM window"
        )
    with torch.no_grad():
        values = ssim_map(torch.from_numpy(x[:, None]), torch.from_numpy(y[:, None]), rng)
    return _out(values.mean(dim=(1, 2, 3)).numpy(), single)
