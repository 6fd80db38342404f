"""Writers while building a corpus, and their glyph PNGs.

A writer is a font face or a folder of user images (``root/<char>/<writer>.<ext>``, the seed's
layout). :func:`render_task` draws one writer's glyphs into ``images/<char>/<writer_id>.png``
(uint8 grey, white ink on black), skipping PNGs already there, so a build can be restarted.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from restoreae.data.fonts import FontFace, centre_glyph, render_glyph
from restoreae.errors import DataError
from restoreae.imageio import ImageError, detect_polarity, load_image
from restoreae.utils import atomic_write

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")


@dataclass
class Writer:
    """A writer while building: a font face or a set of user images (char -> file)."""

    id: str
    family: str
    name: str
    source: str  # "font" | "images"
    path: str
    face_index: int | None = None
    images: dict[str, str] = field(default_factory=dict)

    @property
    def face(self) -> FontFace:
        return FontFace(Path(self.path), int(self.face_index or 0), self.name, self.family, self.id)


def _check_writer_id(name: str, where: Path) -> str:
    wid = name.strip()
    if not wid or wid.startswith(".") or any(c in wid for c in "/\\\0"):
        raise DataError(f"invalid writer name {name!r} in image folder {where}")
    return wid


def scan_image_dirs(roots: Sequence[str | os.PathLike], chars: str) -> list[Writer]:
    """Writers from folders laid out as ``root/<char>/<writer>.<ext>`` (the seed's layout)."""
    wanted = set(chars)
    writers: dict[str, Writer] = {}
    skipped: set[str] = set()
    for root in roots:
        root = Path(root)
        if not root.is_dir():
            raise DataError(f"image folder not found: {root}")
        for char_dir in sorted(p for p in root.iterdir() if p.is_dir()):
            ch = char_dir.name
            if ch not in wanted:
                skipped.add(ch)
                continue
            for img in sorted(char_dir.iterdir()):
                if not img.is_file() or img.suffix.lower() not in IMAGE_EXTENSIONS:
                    continue
                wid = _check_writer_id(img.stem, root)
                w = writers.setdefault(wid, Writer(wid, wid, wid, "images", str(root)))
                if ch in w.images:
                    raise DataError(
                        f"two images for writer {wid!r}, character {ch!r}: {w.images[ch]} and {img}"
                    )
                w.images[ch] = str(img)
    if skipped:
        warnings.warn(
            f"image folders hold {len(skipped)} character folder(s) outside the charset "
            f"(ignored): {''.join(sorted(skipped))[:40]}",
            stacklevel=4,  # the caller of build_corpus
        )
    return [writers[k] for k in sorted(writers)]


def load_writer_image(path: str | os.PathLike, size: int) -> np.ndarray | None:
    """Load a user glyph image as uint8 ``(size, size)`` white ink on black, centred.

    Decoding (any format, colour / alpha / 16-bit) and polarity detection are those of
    restoration (:mod:`restoreae.imageio`), so a writer's images are read exactly like the images a
    user restores. Dark ink on light paper is inverted; the background level is subtracted and the
    ink stretched to 255. The image is padded to a square, resized to ``size`` (keeping the
    writer's framing) and re-centred on its ink box, scaled down if that box exceeds
    ``0.92 * size``. Returns None when the image has no ink; raises DataError when the file cannot
    be decoded.
    """
    try:
        img, _info = load_image(path)
    except ImageError as exc:
        raise DataError(str(exc)) from exc
    if detect_polarity(img) == "dark-on-light":
        img = 255 - img
    h, w = img.shape
    bw = max(1, min(h, w) // 20)
    border = np.concatenate(
        [img[:bw].ravel(), img[-bw:].ravel(), img[:, :bw].ravel(), img[:, -bw:].ravel()]
    )
    bg = float(np.median(border))
    hi = float(img.max())
    if hi - bg < 16:
        return None
    img = np.clip((img.astype(np.float32) - bg) * (255.0 / (hi - bg)), 0, 255).astype(np.uint8)
    side = max(h, w)
    square = np.zeros((side, side), np.uint8)
    square[(side - h) // 2 : (side - h) // 2 + h, (side - w) // 2 : (side - w) // 2 + w] = img
    interp = cv2.INTER_AREA if side > size else cv2.INTER_LINEAR
    square = cv2.resize(square, (size, size), interpolation=interp)
    mask = square >= 32
    if not mask.any():
        return None
    rows, cols = np.flatnonzero(mask.any(axis=1)), np.flatnonzero(mask.any(axis=0))
    return centre_glyph(square[rows[0] : rows[-1] + 1, cols[0] : cols[-1] + 1], size)


# --------------------------------------------------------------------------- rendering tasks
def png_path(images_dir: Path, char: str, writer_id: str) -> Path:
    """``images/<char>/<writer_id>.png``: where the corpus keeps one glyph."""
    return images_dir / char / f"{writer_id}.png"


def write_png(path: Path, img: np.ndarray) -> None:
    """Write a PNG atomically, without fsync (a damaged glyph is re-rendered by the next build)."""
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise DataError(f"cannot encode PNG {path}")
    try:
        atomic_write(path, buf.tobytes(), durable=False)
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc}") from exc


def draw_glyph(writer: Writer, char: str, size: int) -> np.ndarray | None:
    """``writer``'s glyph of ``char``: uint8 (size, size) white on black, or None (not drawn)."""
    if writer.source == "font":
        return render_glyph(writer.face, char, size)
    src = writer.images.get(char)
    return None if src is None else load_writer_image(src, size)


def render_task(args: tuple[Writer, str, str, int]) -> tuple[str, np.ndarray, int]:
    """Render the PNGs of ``chars`` for one writer; return (writer id, covered mask, n rendered)."""
    writer, chars, images_dir, size = args
    covered = np.zeros(len(chars), bool)
    rendered = 0
    for i, ch in enumerate(chars):
        png = png_path(Path(images_dir), ch, writer.id)
        if png.is_file():
            covered[i] = True
            continue
        img = draw_glyph(writer, ch, size)
        if img is None:
            continue
        write_png(png, img)
        covered[i] = True
        rendered += 1
    return writer.id, covered, rendered


def read_png(path: Path, size: int) -> np.ndarray | None:
    """A stored glyph PNG as uint8 (size, size), or None when missing, damaged or another size."""
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if buf.size else None
    if img is None or img.shape != (size, size):
        return None
    return img
