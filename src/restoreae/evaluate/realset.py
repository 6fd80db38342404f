"""Labelled real images of single characters as an evaluation set.

Two layouts are read (:func:`load_labelled`):

- a **labels CSV** with a header row naming at least ``path`` and ``char``; optional columns
  ``alt`` (another form of the character the image may show, e.g. the traditional one; empty
  when none), ``set`` (the subset the image belongs to: results are reported per set) and
  ``polarity`` (``light-on-dark`` / ``dark-on-light``; empty or ``auto`` → detected). Other
  columns are allowed and ignored. ``path`` is relative to the CSV's folder. A folder holding a
  ``labels.csv`` is read as that CSV.
- a **folder in the seed layout** ``root/<char>/<writer>.<ext>`` (any image extension of
  :data:`restoreae.imageio.IMAGE_EXTENSIONS`); every image belongs to the set named after
  ``root``.

Each image is turned into a clean ground truth by :func:`normalise`:

1. decoded by :func:`restoreae.imageio.load_image` (any format → uint8 grey, own polarity);
2. put in the project's polarity, **white ink (255) on black (0)**: inverted when it is
   ``dark-on-light`` (the CSV's ``polarity`` column, else :func:`restoreae.imageio.detect_polarity`);
3. contrast-stretched: the median grey of the background class (pixels ≤ Otsu's threshold) → 0,
   the 99th percentile of the ink class → 255 (clipped); kept as is when the image has no
   contrast (< 16 grey levels between the two);
4. cropped to a square around the ink (its Otsu mask, specks below 1 % of the ink area dropped)
   with a margin of :data:`restoreae.restore.preprocess.MARGIN` (15 %) of the ink box's longer side
   on each side, so the ink spans ≈ 77 % of the side like the corpus glyphs; where the square
   leaves the image it is padded with black;
5. resized only when the square's side is outside ``[MIN_SIDE, MAX_SIDE]`` = [64, 256] px (cubic
   up, area down): the image otherwise keeps its own resolution.

The result is uint8 ``(s, s)`` with ``64 <= s <= 256``. Sampling (:func:`sample_items`) is
deterministic in the seed and the set name.
"""

from __future__ import annotations

import zlib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import cv2
import numpy as np

from restoreae.errors import DataError
from restoreae.imageio import (
    IMAGE_EXTENSIONS,
    ImageError,
    detect_polarity,
    load_image,
    otsu_threshold,
)
from restoreae.restore.preprocess import MARGIN
from restoreae.utils import read_user_csv

__all__ = [
    "LabelledImage",
    "MIN_SIDE",
    "MAX_SIDE",
    "POLARITIES",
    "REQUIRED_COLUMNS",
    "OPTIONAL_COLUMNS",
    "load_labels_csv",
    "scan_folder",
    "load_labelled",
    "normalise",
    "load_normalised",
    "sample_items",
]

#: Bounds of the normalised image's side in pixels.
MIN_SIDE = 64
MAX_SIDE = 256
#: Accepted values of the CSV ``polarity`` column ("" and "auto" mean: detect).
POLARITIES = ("light-on-dark", "dark-on-light")
REQUIRED_COLUMNS = ("path", "char")
OPTIONAL_COLUMNS = ("alt", "set", "polarity")
#: Ink components smaller than this share of the total ink area are specks (ignored by the crop).
SPECK_FRACTION = 0.01


@dataclass(frozen=True)
class LabelledImage:
    """One labelled image: ``path`` (absolute or as resolved), ``char`` (one character), ``alt``
    (another accepted reading, "" if none), ``set`` (subset name), ``polarity`` (one of
    :data:`POLARITIES` or None = detect), ``index`` (position in the whole labelled list: the
    image's identity for seeding), ``where`` (CSV file and line, or the file itself, for errors)."""

    path: Path
    char: str
    alt: str
    set: str
    polarity: str | None
    index: int
    where: str


def _check_char(value: str, where: str, column: str, required: bool) -> str:
    c = value.strip()
    if not c and not required:
        return ""
    if len(c) != 1:
        raise DataError(f"{where}: column {column!r} must be one character, got {value!r}")
    return c


def load_labels_csv(path: str | Path) -> list[LabelledImage]:
    """Read a labels CSV (see the module docstring); image paths are relative to its folder.

    Raises :class:`DataError` naming the file (and the line) for a missing or unreadable CSV, a
    header without the required columns, a bad ``char`` / ``alt`` / ``polarity`` value or an
    image file that does not exist.
    """
    path = Path(path)
    rows = read_user_csv(path, "labels CSV", DataError)
    if not rows:
        raise DataError(
            f"{path}: empty CSV; expected a header with columns "
            f"{','.join(REQUIRED_COLUMNS)}[,{','.join(OPTIONAL_COLUMNS)}]"
        )
    header = [h.strip().lower() for h in rows[0]]
    missing = [c for c in REQUIRED_COLUMNS if c not in header]
    if missing:
        raise DataError(
            f"{path}: header {','.join(rows[0])!r} lacks column(s) {', '.join(missing)}; "
            f"expected columns {','.join(REQUIRED_COLUMNS)} and optionally "
            f"{', '.join(OPTIONAL_COLUMNS)} (other columns are ignored)"
        )
    col = {
        name: header.index(name)
        for name in (*REQUIRED_COLUMNS, *OPTIONAL_COLUMNS)
        if name in header
    }
    default_set = path.parent.name or path.stem
    items: list[LabelledImage] = []
    for lineno, row in enumerate(rows[1:], start=2):
        if not row or all(not v.strip() for v in row):
            continue
        where = f"{path}, line {lineno}"
        if len(row) < len(header):
            row = row + [""] * (len(header) - len(row))

        def get(name: str, row: list[str] = row) -> str:
            return row[col[name]].strip() if name in col else ""

        rel = get("path")
        if not rel:
            raise DataError(f"{where}: empty 'path'")
        char = _check_char(get("char"), where, "char", required=True)
        alt = _check_char(get("alt"), where, "alt", required=False)
        polarity = get("polarity").lower() or None
        if polarity == "auto":
            polarity = None
        if polarity is not None and polarity not in POLARITIES:
            raise DataError(
                f"{where}: polarity {polarity!r} is not one of {', '.join(POLARITIES)}, auto or empty"
            )
        file = path.parent / rel
        if not file.is_file():
            raise DataError(f"{where}: image not found: {file}")
        items.append(
            LabelledImage(
                path=file,
                char=char,
                alt=alt if alt != char else "",
                set=get("set") or default_set,
                polarity=polarity,
                index=len(items),
                where=where,
            )
        )
    if not items:
        raise DataError(f"{path}: no image rows after the header")
    return items


def scan_folder(root: str | Path) -> list[LabelledImage]:
    """Images of a folder in the seed layout ``root/<char>/<writer>.<ext>``, sorted by character
    folder then file name; the set is named after ``root``. Raises :class:`DataError` when the
    folder is missing, a character folder's name is not one character, or no image is found."""
    root = Path(root)
    if not root.is_dir():
        raise DataError(f"image folder not found: {root}")
    items: list[LabelledImage] = []
    for char_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        if char_dir.name.startswith("."):
            continue
        char = _check_char(char_dir.name, str(char_dir), "folder name", required=True)
        for img in sorted(char_dir.iterdir()):
            if not img.is_file() or img.suffix.lower() not in IMAGE_EXTENSIONS:
                continue
            items.append(
                LabelledImage(img, char, "", root.resolve().name, None, len(items), str(img))
            )
    if not items:
        raise DataError(
            f"{root}: no images in the layout root/<char>/<writer>.png and no labels.csv"
        )
    return items


def load_labelled(path: str | Path) -> list[LabelledImage]:
    """A labels CSV, a folder holding ``labels.csv``, or a seed-layout folder (see the module
    docstring)."""
    path = Path(path)
    if path.is_file():
        return load_labels_csv(path)
    if (path / "labels.csv").is_file():
        return load_labels_csv(path / "labels.csv")
    if path.is_dir():
        return scan_folder(path)
    raise DataError(f"labelled images not found: {path} (expected a CSV file or a folder)")


def _ink_box(mask: np.ndarray) -> tuple[int, int, int, int] | None:
    """(x0, y0, x1, y1), exclusive ends, of the ink ``mask`` without specks; None if no ink."""
    n, _, stats, _ = cv2.connectedComponentsWithStats(mask.astype(np.uint8), connectivity=8)
    if n <= 1:
        return None
    comps = stats[1:]
    areas = comps[:, cv2.CC_STAT_AREA]
    keep = comps[areas >= max(1.0, SPECK_FRACTION * float(areas.sum()))]
    if keep.size == 0:
        keep = comps[areas == areas.max()]
    x0 = int(keep[:, cv2.CC_STAT_LEFT].min())
    y0 = int(keep[:, cv2.CC_STAT_TOP].min())
    x1 = int((keep[:, cv2.CC_STAT_LEFT] + keep[:, cv2.CC_STAT_WIDTH]).max())
    y1 = int((keep[:, cv2.CC_STAT_TOP] + keep[:, cv2.CC_STAT_HEIGHT]).max())
    return x0, y0, x1, y1


def normalise(grey: np.ndarray, polarity: str | None = None) -> np.ndarray:
    """A grey image of one character → the clean ground truth (see the module docstring).

    ``grey``: uint8 ``(H, W)`` in its own polarity; ``polarity``: ``"light-on-dark"``,
    ``"dark-on-light"`` or None (detect). Returns uint8 ``(s, s)``, white ink on black, ink
    ≈ 77 % of the side, ``MIN_SIDE <= s <= MAX_SIDE``.
    """
    grey = np.asarray(grey)
    if grey.ndim != 2 or grey.dtype != np.uint8 or grey.size == 0:
        raise ValueError(f"expected a non-empty uint8 (H, W) image, got {grey.dtype} {grey.shape}")
    if polarity is None:
        polarity = detect_polarity(grey)
    elif polarity not in POLARITIES:
        raise ValueError(f"polarity must be one of {POLARITIES} or None, got {polarity!r}")
    g = 255 - grey if polarity == "dark-on-light" else grey
    if int(g.max()) - int(g.min()) >= 8:
        t = otsu_threshold(g)
        bg, ink = g[g <= t], g[g > t]
        lo = float(np.median(bg)) if bg.size else 0.0
        hi = float(np.percentile(ink, 99)) if ink.size else 255.0
        if hi - lo >= 16:
            g = np.clip((g.astype(np.float32) - lo) * (255.0 / (hi - lo)), 0, 255)
            g = np.rint(g).astype(np.uint8)
    h, w = g.shape
    box = _ink_box(g > 127)
    if box is None:
        box = (0, 0, w, h)
    x0, y0, x1, y1 = box
    side = max(1, int(round(max(x1 - x0, y1 - y0) * (1.0 + 2.0 * MARGIN))))
    sx0, sy0 = (x0 + x1 - side) // 2, (y0 + y1 - side) // 2
    square = np.zeros((side, side), np.uint8)
    ix0, iy0 = max(sx0, 0), max(sy0, 0)
    ix1, iy1 = min(sx0 + side, w), min(sy0 + side, h)
    square[iy0 - sy0 : iy1 - sy0, ix0 - sx0 : ix1 - sx0] = g[iy0:iy1, ix0:ix1]
    target = min(max(side, MIN_SIDE), MAX_SIDE)
    if target != side:
        interp = cv2.INTER_AREA if target < side else cv2.INTER_CUBIC
        square = cv2.resize(square, (target, target), interpolation=interp)
    return np.ascontiguousarray(square, dtype=np.uint8)


def load_normalised(item: LabelledImage) -> np.ndarray:
    """Load and :func:`normalise` one labelled image; errors name the file and its CSV line."""
    try:
        grey, _ = load_image(item.path)
    except ImageError as exc:
        raise DataError(f"{item.where}: {exc}") from exc
    return normalise(grey, item.polarity)


def sample_items(items: Sequence[LabelledImage], num: int | None, seed: int) -> list[LabelledImage]:
    """Up to ``num`` images of each set (all when None or when a set has fewer), drawn without
    replacement with ``default_rng([seed, crc32(set name)])`` and kept in their listed order.

    Returns the sample grouped by set, sets in order of first appearance."""
    if num is not None and num <= 0:
        raise DataError(f"--num must be positive, got {num}")
    by_set: dict[str, list[LabelledImage]] = {}
    for it in items:
        by_set.setdefault(it.set, []).append(it)
    out: list[LabelledImage] = []
    for name, group in by_set.items():
        if num is None or num >= len(group):
            out.extend(group)
            continue
        rng = np.random.default_rng([seed, zlib.crc32(name.encode("utf-8"))])
        idx = np.sort(rng.choice(len(group), size=num, replace=False))
        out.extend(group[i] for i in idx)
    return out
