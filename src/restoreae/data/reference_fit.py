"""Fitting the reference glyph to the glyph being restored (``data.reference_fit: box``).

The reference is a standard font's drawing of the character at the corpus's em size; the glyph to
restore is another writer's, and fonts and hands fill the em box differently (a Kai font draws
smaller than Noto Serif; a hand runs wide or tall). Before the reference reaches the model it is
scaled and shifted, per axis, so that its ink box matches the glyph's — the box between the
``FIT_QUANTILE`` and ``1 − FIT_QUANTILE`` quantiles of the ink along each axis, robust to specks
and to strokes the damage took away. On the quality suite's glyphs this brings the reference's ink
closer to the clean glyph's: mean chamfer distance 2.66 → 1.92 px on held-out fonts at 128 px,
real-dev calligraphy 3.24 → 2.82, handwriting 2.99 → 2.68 (``benchmarks/probe_reference_fit.py``;
docs/RESULTS.md, "Strokes with no trace").

Training (:func:`restoreae.train.batches.make_batch`) and restoration
(:meth:`restoreae.restore.api.Restorer.model_input`, the model-space evaluation) fit the same
way, to the *damaged* glyph, when the model's metadata says ``reference_fit: box``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from torch import Tensor

#: The ink box spans these quantiles of the ink along each axis (and 1 − this).
FIT_QUANTILE = 0.02
#: Ink level (float [0, 1]) above which a pixel counts as ink for the box.
FIT_INK = 0.5
#: Per-axis scale of the fit is kept within this range (a damaged glyph's box can mislead).
FIT_SCALE = (0.75, 1.33)
#: Fewer ink pixels than this in either glyph: the reference is left as it is.
FIT_MIN_INK = 16
#: Values of the weights metadata key ``reference_fit``.
REFERENCE_FITS = ("box",)


def _axis_fit(ref_profile: Any, glyph_profile: Any, xp: Any) -> tuple[Any, Any]:
    """Per-sample ``(a, t)`` of one axis from ``(B, L)`` ink profiles: output pixel p samples the
    reference at ``a · p + t`` (pixel centres at whole numbers), so the reference's ink box (its
    ``FIT_QUANTILE`` quantiles) lands on the glyph's. ``xp``: the ``numpy`` or ``torch`` module
    (the profiles' kind), so that training and restoration compute the same fit."""

    def box(profile: Any) -> tuple[Any, Any]:
        total = profile.sum(1, keepdims=True) if xp is np else profile.sum(1, keepdim=True)
        cdf = profile.cumsum(1) / xp.clip(total, 1e-6, None)
        lo = (cdf < FIT_QUANTILE).sum(1) * 1.0
        hi = (cdf < 1.0 - FIT_QUANTILE).sum(1) * 1.0
        return (lo + hi) / 2.0, hi - lo + 1.0

    c_ref, e_ref = box(ref_profile)
    c_gly, e_gly = box(glyph_profile)
    a = 1.0 / xp.clip(e_gly / e_ref, *FIT_SCALE)
    return a, c_ref - a * c_gly


def fit_reference(reference: Tensor, glyph: Tensor) -> Tensor:
    """``reference`` float ``(B, 1, H, W)`` in [0, 1] (white ink on black) scaled and shifted per
    axis so that its ink box matches ``glyph``'s (same shape); bilinear, paper (0) outside.
    Samples where either has under ``FIT_MIN_INK`` ink pixels (a blanked reference) are returned
    unchanged. Batched on the tensors' device (training); :func:`fit_reference_np` is the same
    fit in numpy (restoration, no torch)."""
    import torch
    import torch.nn.functional as F

    if reference.shape != glyph.shape or reference.ndim != 4 or reference.shape[1] != 1:
        raise ValueError(
            f"expected two (B, 1, H, W) tensors, got {tuple(reference.shape)} {tuple(glyph.shape)}"
        )
    b, _, h, w = reference.shape
    ref_ink = (reference[:, 0] > FIT_INK).float()
    glyph_ink = (glyph[:, 0] > FIT_INK).float()
    theta = torch.zeros(b, 2, 3, device=reference.device)
    for axis, size, dim in ((0, w, 1), (1, h, 2)):  # x: ink summed over rows; y: over columns
        a, t = _axis_fit(ref_ink.sum(dim), glyph_ink.sum(dim), torch)
        # grid_sample's normalised coordinates (align_corners=False): x_n = (2 p + 1) / size - 1
        theta[:, axis, axis] = a
        theta[:, axis, 2] = a - 1.0 + (2.0 * t + 1.0 - a) / size
    grid = F.affine_grid(theta.to(reference.dtype), list(reference.shape), align_corners=False)
    fitted = F.grid_sample(
        reference, grid, mode="bilinear", padding_mode="zeros", align_corners=False
    )
    enough = (ref_ink.flatten(1).sum(1) >= FIT_MIN_INK) & (
        glyph_ink.flatten(1).sum(1) >= FIT_MIN_INK
    )
    return torch.where(enough.view(-1, 1, 1, 1), fitted, reference)


def fit_reference_np(reference: np.ndarray, glyph: np.ndarray) -> np.ndarray:
    """:func:`fit_reference` for one float32 ``(H, W)`` reference and glyph in [0, 1], in numpy
    and OpenCV (the restore path imports no torch)."""
    import cv2

    if reference.shape != glyph.shape or reference.ndim != 2:
        raise ValueError(f"expected two (H, W) arrays, got {reference.shape} {glyph.shape}")
    ref_ink = (reference > FIT_INK).astype(np.float32)
    glyph_ink = (glyph > FIT_INK).astype(np.float32)
    if ref_ink.sum() < FIT_MIN_INK or glyph_ink.sum() < FIT_MIN_INK:
        return reference
    ax, tx = _axis_fit(ref_ink.sum(0)[None], glyph_ink.sum(0)[None], np)
    ay, ty = _axis_fit(ref_ink.sum(1)[None], glyph_ink.sum(1)[None], np)
    m = np.array([[ax[0], 0.0, tx[0]], [0.0, ay[0], ty[0]]], np.float64)
    h, w = reference.shape
    return cv2.warpAffine(
        np.ascontiguousarray(reference, np.float32),
        m,
        (w, h),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_CONSTANT,
        borderValue=0.0,
    )
