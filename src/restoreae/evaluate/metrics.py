"""Image quality metrics: PSNR, SSIM and MAE on glyph images, and the metric registry.

Every metric is one function registered with :func:`register_metric` in :data:`METRICS` (a
:class:`~restoreae.registry.Registry`): ``restoreae eval`` scores each registered metric
(:mod:`restoreae.evaluate.runner`), the leaderboard and HTML report show it
(:mod:`restoreae.evaluate.report`), and the metrics given a ``table_fmt`` are also in the compact
per-damage cells and the quality table (:mod:`restoreae.evaluate.quality`,
:mod:`restoreae.evaluate.quality_report`).

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

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from restoreae.registry import Registry
from restoreae.ssim import SSIM_SIGMA, SSIM_WINDOW

__all__ = [
    "METRICS",
    "Metric",
    "register_metric",
    "table_metrics",
    "psnr",
    "ssim",
    "mae",
    "gaussian_window",
    "SSIM_WINDOW",
    "SSIM_SIGMA",
]

#: ``fn(restored, truth) -> float`` for one ``(H, W)`` image, ``(N,)`` float64 for a batch.
MetricFn = Callable[[np.ndarray, np.ndarray], "float | np.ndarray"]


@dataclass(frozen=True)
class Metric:
    """A registered metric: ``fn`` (see :data:`MetricFn`; uint8 or float images, the conventions
    of this module), column ``label`` ("NAME" or "NAME (unit)"), ``fmt`` (format spec in the
    leaderboard), ``table_fmt`` (format in the compact tables: per-damage cells and the quality
    table; None: leaderboard only), ``convention`` (one clause for the reports)."""

    name: str
    fn: MetricFn
    label: str
    fmt: str
    table_fmt: str | None
    convention: str

    @property
    def short(self) -> str:
        """The label without its unit ("PSNR" of "PSNR (dB)")."""
        return self.label.split(" (")[0]


#: The registered metrics, in column order (a :class:`~restoreae.registry.Registry` of
#: :class:`Metric`); the built-in ones are registered by this module.
METRICS: Registry[Metric] = Registry("metric")


def register_metric(
    name: str,
    *,
    label: str,
    fmt: str,
    table_fmt: str | None = None,
    convention: str = "",
) -> Callable[[MetricFn], MetricFn]:
    """Decorator registering ``fn(restored, truth)`` as the metric ``name``: every evaluation
    scores it and the reports show it (in the compact tables too when ``table_fmt`` is given)."""

    def deco(fn: MetricFn) -> MetricFn:
        METRICS.register(name, Metric(name, fn, label, fmt, table_fmt, convention))
        return fn

    return deco


def table_metrics() -> list[Metric]:
    """The metrics of the compact tables (those registered with a ``table_fmt``), in order."""
    return [m for m in METRICS.values() if m.table_fmt is not None]


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


_PSNR = (
    "PSNR = 10·log10(255²/MSE) per glyph on uint8 images, float64 arithmetic, no crop border, "
    "inf for identical images"
)
_SSIM = (
    "SSIM with an 11×11 Gaussian window (σ = 1.5), K1 = 0.01, K2 = 0.03, data range 255, valid "
    "window positions"
)


@register_metric("psnr", label="PSNR (dB)", fmt=".2f", table_fmt=".2f", convention=_PSNR)
def psnr(a: np.ndarray, b: np.ndarray, data_range: float | None = None) -> float | np.ndarray:
    """Peak signal-to-noise ratio in dB per image; ``inf`` where the images are identical.

    ``a``, ``b``: ``(H, W)`` or ``(N, H, W)``; ``data_range`` defaults to 255 (uint8) or 1 (float).
    Computed by :func:`restoreae.psnr.psnr_per_image` (validation's PSNR) in float64.
    """
    import torch

    from restoreae.psnr import psnr_per_image

    x, y, rng, single = _prepare(a, b, data_range)
    values = psnr_per_image(torch.from_numpy(x), torch.from_numpy(y), rng)
    return _out(values.numpy(), single)


def gaussian_window(size: int = SSIM_WINDOW, sigma: float = SSIM_SIGMA) -> np.ndarray:
    """The normalised 1-D Gaussian (float64, sums to 1); SSIM's 2-D window is its outer product."""
    import torch

    from restoreae.ssim import gaussian_1d

    return gaussian_1d(size, sigma, torch.zeros((), dtype=torch.float64)).numpy()


@register_metric("ssim", label="SSIM", fmt=".4f", table_fmt=".3f", convention=_SSIM)
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


@register_metric("mae", label="MAE", fmt=".2f", convention="MAE in grey levels (0–255)")
def mae(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """Mean absolute error per image, in the input's units (grey levels for uint8).

    ``a``, ``b``: ``(H, W)`` or ``(N, H, W)``, same shape and dtype family. Returns a float for one
    image, a ``(N,)`` float64 array for a batch.
    """
    x, y, _, single = _prepare(a, b, None)
    return _out(np.abs(x - y).mean(axis=(1, 2)), single)
