"""Is there one character in this picture? A cheap check run before restoring it.

The single-character models restore whatever they are given: a blank sheet comes back with the
reference character drawn into it, a line of text comes back as one squashed glyph. Restoring
therefore first counts the characters (:func:`count_characters`) and :func:`check_one_character`
turns 0 or several into a message. The count is deliberately simple — the ink's connected
components, specks dropped, and the gaps along the long side of the ink's box — and the page
command (``restoreae restore-page``), which finds the characters of a page, may provide a better
``count_characters`` that then replaces this one.
"""

from __future__ import annotations

import cv2
import numpy as np

from restoreae.errors import RestoreAEError
from restoreae.imageio import detect_polarity, otsu_threshold

#: Grey levels between paper and ink below which a picture counts as blank.
MIN_CONTRAST: int = 24
#: A stroke component smaller than this fraction of the largest one is a speck.
SPECK_FRACTION: float = 0.02
#: The ink's box is a row or column of characters only when its long side is at least this many
#: times its short side (a single character is roughly square, even 一 has one run of ink).
LINE_ASPECT: float = 2.0
#: Along the long side, a blank gap of at least this fraction of the short side separates two
#: characters, and a run of ink shorter than ``MIN_RUN`` of it is punctuation or a speck.
MIN_GAP: float = 0.25
MIN_RUN: float = 0.5


class NotOneCharacterError(RestoreAEError):
    """The picture shows no ink (``count == 0``) or several characters (``count > 1``)."""

    def __init__(self, message: str, count: int) -> None:
        super().__init__(message)
        self.count = count


def _runs(profile: np.ndarray, min_gap: int, min_run: int) -> int:
    """Runs of ``True`` in a 1-D profile, merging runs split by gaps shorter than ``min_gap`` and
    ignoring runs shorter than ``min_run``."""
    idx = np.flatnonzero(profile)
    if idx.size == 0:
        return 0
    breaks = np.flatnonzero(np.diff(idx) > min_gap)
    starts = np.concatenate(([idx[0]], idx[breaks + 1]))
    ends = np.concatenate((idx[breaks], [idx[-1]]))
    return int(np.sum(ends - starts + 1 >= min_run))


def count_characters(grey: np.ndarray) -> int:
    """How many characters ``grey`` (uint8 (H, W), either polarity) shows: 0 when it holds no ink
    (flat, or only specks), otherwise the number of ink runs along the long side of the ink's box
    when that box is a row or column (at least :data:`LINE_ASPECT` long), else 1."""
    if grey.ndim != 2 or grey.size == 0:
        return 0
    if int(grey.max()) - int(grey.min()) < MIN_CONTRAST:
        return 0
    ink_bright = grey if detect_polarity(grey) == "light-on-dark" else 255 - grey
    t = otsu_threshold(ink_bright)
    mask = (ink_bright > t).astype(np.uint8)
    # Too little contrast between the two Otsu classes: paper texture, not ink.
    hi = float(np.median(ink_bright[mask > 0])) if mask.any() else 0.0
    lo = float(np.median(ink_bright[mask == 0])) if (mask == 0).any() else 255.0
    if hi - lo < MIN_CONTRAST:
        return 0
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask, connectivity=8)
    if n <= 1:
        return 0
    areas = stats[1:, cv2.CC_STAT_AREA]
    h, w = grey.shape
    keep = stats[1:][areas >= max(3, SPECK_FRACTION * areas.max(), 1e-4 * h * w)]
    if keep.size == 0:
        return 0
    x0, y0 = keep[:, cv2.CC_STAT_LEFT].min(), keep[:, cv2.CC_STAT_TOP].min()
    x1 = (keep[:, cv2.CC_STAT_LEFT] + keep[:, cv2.CC_STAT_WIDTH]).max()
    y1 = (keep[:, cv2.CC_STAT_TOP] + keep[:, cv2.CC_STAT_HEIGHT]).max()
    bw, bh = int(x1 - x0), int(y1 - y0)
    long_side, short_side = max(bw, bh), min(bw, bh)
    if long_side < LINE_ASPECT * max(short_side, 1):
        return 1
    box = mask[y0:y1, x0:x1] > 0
    profile = box.any(axis=0) if bw >= bh else box.any(axis=1)
    gap = max(1, int(round(MIN_GAP * short_side)))
    run = max(1, int(round(MIN_RUN * short_side)))
    return max(1, _runs(profile, gap, run))


def check_one_character(grey: np.ndarray, name: str) -> None:
    """Raise :class:`NotOneCharacterError` naming ``name`` unless ``grey`` shows one character."""
    count = count_characters(grey)
    if count == 0:
        raise NotOneCharacterError(
            f"{name}: no ink found (a blank or nearly flat picture); nothing to restore", 0
        )
    if count > 1:
        raise NotOneCharacterError(
            f"{name}: this picture seems to show {count} characters; `restoreae restore` takes "
            "one character per picture: crop each one, or use `restoreae restore-page` for a page",
            count,
        )
