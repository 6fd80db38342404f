"""The one PSNR, shared by validation during training and the evaluation metric.

``PSNR = 10 log10(L² / MSE)`` per image, with ``L`` the data range and the MSE over all of an
image's values; identical images give ``inf`` unless ``max_db`` caps the figure (validation caps
at 100 dB so that a mean over a batch stays finite). Computed in the inputs' dtype on their
device: the evaluation metric (:func:`restoreae.evaluate.metrics.psnr`) passes float64 arrays,
validation (:func:`restoreae.train.validate.evaluate`) float32 model outputs.
"""

from __future__ import annotations

import torch
from torch import Tensor


def psnr_per_image(
    x: Tensor, y: Tensor, data_range: float = 1.0, max_db: float | None = None
) -> Tensor:
    """PSNR in dB of each image of two batches ``(B, ...)`` (same shape, values in
    ``[0, data_range]``, any polarity) → ``(B,)``; ``inf`` where identical, at most ``max_db``
    when it is given."""
    if x.shape != y.shape:
        raise ValueError(f"PSNR: shapes differ: {tuple(x.shape)} vs {tuple(y.shape)}")
    mse = ((x - y) ** 2).flatten(1).mean(1)
    if max_db is not None:
        mse = mse.clamp_min(data_range * data_range * 10.0 ** (-max_db / 10.0))
    return 10.0 * torch.log10((data_range * data_range) / mse)
