"""The glyph corpus: builder (``restoreae build-data``) and reader (:class:`Corpus`).

Layout (see docs/ARCHITECTURE.md)::

    CORPUS/
      manifest.json                 chars, writers, reference font, splits (written last)
      images/<char>/<writer_id>.png uint8 grey, white ink on black
      glyphs.npy                    uint8 [n_writers, n_chars, S, S]; zeros where not covered
      coverage.npy                  bool  [n_writers, n_chars]
      reference.npy                 uint8 [n_chars, S, S] standard-font reference glyphs

Building is restartable: PNGs already present are not rendered again, the arrays are rebuilt only
when missing or when the writer / character set changed, and every file is written to a temporary
name and renamed, so a crash never leaves a corrupt corpus (the manifest is written last).
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np

from restoreae.data.fonts import FontFace, centre_glyph, load_face, render_glyph
from restoreae.data.reference import ReferenceRenderer, is_traditional_form, to_traditional
from restoreae.errors import DataError
from restoreae.imageio import ImageError, detect_polarity, load_image
from restoreae.utils import atomic_write

__all__ = [
    "FORMAT",
    "IMAGE_EXTENSIONS",
    "SPLITS",
    "Corpus",
    "build_corpus",
    "build_data_command",
    "format_summary",
    "load_writer_image",
]

FORMAT = 1
SPLITS = ("train", "val", "heldout-writers", "heldout-chars")
IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff", ".webp")
_FORBIDDEN_CHARS = set("/\\.\0")
_CHUNK = 256  # characters per rendering task


# --------------------------------------------------------------------------- writers
@dataclass
class _Writer:
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


def _scan_image_dirs(roots: Sequence[str | os.PathLike], chars: str) -> list[_Writer]:
    """Writers from folders laid out as ``root/<char>/<writer>.<ext>`` (the seed's layout)."""
    wanted = set(chars)
    writers: dict[str, _Writer] = {}
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
                w = writers.setdefault(wid, _Writer(wid, wid, wid, "images", str(root)))
                if ch in w.images:
                    raise DataError(
                        f"two images for writer {wid!r}, character {ch!r}: {w.images[ch]} and {img}"
                    )
                w.images[ch] = str(img)
    if skipped:
        warnings.warn(
            f"image folders hold {len(skipped)} character folder(s) outside the charset "
            f"(ignored): {''.join(sorted(skipped))[:40]}",
            stacklevel=3,
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
def _png_path(images_dir: Path, char: str, writer_id: str) -> Path:
    return images_dir / char / f"{writer_id}.png"


def _write_png(path: Path, img: np.ndarray) -> None:
    """Write a PNG atomically, without fsync (a damaged glyph is re-rendered by the next build)."""
    ok, buf = cv2.imencode(".png", img)
    if not ok:
        raise DataError(f"cannot encode PNG {path}")
    try:
        atomic_write(path, buf.tobytes(), durable=False)
    except OSError as exc:
        raise DataError(f"cannot write {path}: {exc}") from exc


def _draw(writer: _Writer, char: str, size: int) -> np.ndarray | None:
    if writer.source == "font":
        return render_glyph(writer.face, char, size)
    src = writer.images.get(char)
    return None if src is None else load_writer_image(src, size)


def _render_task(args: tuple[_Writer, str, str, int]) -> tuple[str, np.ndarray, int]:
    """Render the PNGs of ``chars`` for one writer; return (writer id, covered mask, n rendered)."""
    writer, chars, images_dir, size = args
    covered = np.zeros(len(chars), bool)
    rendered = 0
    for i, ch in enumerate(chars):
        png = _png_path(Path(images_dir), ch, writer.id)
        if png.is_file():
            covered[i] = True
            continue
        img = _draw(writer, ch, size)
        if img is None:
            continue
        _write_png(png, img)
        covered[i] = True
        rendered += 1
    return writer.id, covered, rendered


def _read_png(path: Path, size: int) -> np.ndarray | None:
    try:
        buf = np.fromfile(path, dtype=np.uint8)
    except OSError:
        return None
    img = cv2.imdecode(buf, cv2.IMREAD_GRAYSCALE) if buf.size else None
    if img is None or img.shape != (size, size):
        return None
    return img


# --------------------------------------------------------------------------- splits
def _choose_splits(
    writers: list[_Writer],
    chars: str,
    reference_family: str | None,
    val_writers: int | Sequence[str],
    test_writers: int | Sequence[str],
    heldout_chars: float,
    seed: int,
) -> dict:
    """Pick val/test writer families and held-out characters with ``seed`` (whole families).

    ``val_writers`` / ``test_writers``: a number of families drawn at random, or the family names
    themselves (pinned splits keep the same held-out writers when fonts are added).
    """
    families = sorted({w.family for w in writers})
    for key, value in (("val", val_writers), ("test", test_writers)):
        if isinstance(value, int):
            if value < 0:
                raise DataError(f"--{key}-writers must be >= 0")
        else:
            unknown = sorted(set(value) - set(families))
            if unknown:
                raise DataError(
                    f"--{key}-writers: unknown writer famil{'y' if len(unknown) == 1 else 'ies'} "
                    f"{', '.join(unknown)}; known: {', '.join(families)}"
                )
    if not 0.0 <= heldout_chars < 1.0:
        raise DataError(f"--heldout-chars must be a fraction in [0, 1), got {heldout_chars}")
    n_val = val_writers if isinstance(val_writers, int) else len(set(val_writers))
    n_test = test_writers if isinstance(test_writers, int) else len(set(test_writers))
    if n_val + n_test >= len(families):
        raise DataError(
            f"only {len(families)} writer families ({', '.join(families)}): cannot hold out "
            f"{n_val} for validation and {n_test} for test and keep one for training"
        )
    rng = np.random.default_rng(seed)
    if isinstance(test_writers, int):
        test_pool = [f for f in families if f != reference_family]
        if test_writers > len(test_pool):
            raise DataError(
                f"not enough writer families besides the reference font for {test_writers} test"
            )
        test = (
            sorted(rng.choice(test_pool, size=test_writers, replace=False).tolist())
            if test_writers
            else []
        )
    else:
        test = sorted(set(test_writers))
        if reference_family in test:
            raise DataError(f"--test-writers: {reference_family} is the reference font's family")
    if isinstance(val_writers, int):
        rest = [f for f in families if f not in test]
        val = (
            sorted(rng.choice(rest, size=val_writers, replace=False).tolist())
            if val_writers
            else []
        )
    else:
        val = sorted(set(val_writers))
        if set(val) & set(test):
            raise DataError(f"families both in validation and test: {sorted(set(val) & set(test))}")
    n_held = round(heldout_chars * len(chars))
    if heldout_chars > 0 and len(chars) >= 2:
        n_held = min(max(n_held, 1), len(chars) - 1)
    held_idx = np.sort(rng.permutation(len(chars))[:n_held]) if n_held else np.zeros(0, int)
    return {
        "val_writers": [w.id for w in writers if w.family in val],
        "test_writers": [w.id for w in writers if w.family in test],
        "val_families": val,
        "test_families": test,
        "heldout_chars": "".join(chars[i] for i in held_idx),
        "seed": int(seed),
    }


# --------------------------------------------------------------------------- builder
def _prepare_out(out: Path) -> None:
    try:
        out.mkdir(parents=True, exist_ok=True)
        probe = out / f".write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise DataError(f"output folder {out} is not writable: {exc}") from exc


def _read_manifest(path: Path) -> dict | None:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def _save_npy(path: Path, arr: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as f:
            np.save(f, arr)

    atomic_write(path, write)


def _same_array(path: Path, arr: np.ndarray) -> bool:
    try:
        old = np.load(path, mmap_mode="r")
    except (OSError, ValueError):
        return False
    return old.shape == arr.shape and old.dtype == arr.dtype and bool(np.array_equal(old, arr))


def _arrays_current(out: Path, old: dict | None, new: dict, coverage: np.ndarray) -> bool:
    """True when glyphs.npy / coverage.npy already hold this exact writer and character set."""
    if not old:
        return False
    same = (
        old.get("size") == new["size"]
        and old.get("chars") == new["chars"]
        and [w.get("id") for w in old.get("writers", [])] == [w["id"] for w in new["writers"]]
    )
    if not same:
        return False
    try:
        glyphs = np.load(out / "glyphs.npy", mmap_mode="r")
        old_cov = np.load(out / "coverage.npy")
    except (OSError, ValueError):
        return False
    n_w, n_c, s = len(new["writers"]), len(new["chars"]), new["size"]
    return (
        glyphs.shape == (n_w, n_c, s, s)
        and glyphs.dtype == np.uint8
        and old_cov.shape == coverage.shape
        and bool(np.array_equal(old_cov, coverage))
    )


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit="glyph", file=sys.stderr, disable=not enabled, leave=False
    )


def build_corpus(
    out: str | os.PathLike,
    chars: str,
    faces: Sequence[FontFace],
    size: int,
    *,
    image_dirs: Sequence[str | os.PathLike] = (),
    reference: FontFace | str | os.PathLike | None = None,
    reference_face_index: int = 0,
    traditional: bool = False,
    val_writers: int | Sequence[str] = 2,
    test_writers: int | Sequence[str] = 2,
    heldout_chars: float = 0.05,
    seed: int = 0,
    workers: int = 1,
    charset_name: str = "custom",
    progress: bool = False,
) -> Path:
    """Render (or complete) a glyph corpus in ``out`` and return its path.

    ``chars``: the characters; ``faces``: font writers (from :func:`discover_fonts`); ``size``:
    glyph side in pixels; ``image_dirs``: user folders ``root/<char>/<writer>.png`` (each file stem
    is a writer). ``reference``: the standard-font face or file (default Kai font), rendered to
    ``reference.npy`` (traditional forms with ``traditional``). Splits hold out ``val_writers`` and
    ``test_writers`` whole font families (the reference font's family is never a test family) and
    a ``heldout_chars`` fraction of the characters, chosen with ``seed``. Raises DataError for an
    empty charset, an unwritable folder, characters no writer draws (all named), or bad settings.
    """
    out = Path(out)
    size = int(size)
    if size < 16:
        raise DataError(f"glyph size must be at least 16 pixels, got {size}")
    chars = "".join(dict.fromkeys(c for c in chars if not c.isspace()))
    if not chars:
        raise DataError("the charset is empty: no characters to render")
    bad = sorted(c for c in set(chars) if c in _FORBIDDEN_CHARS)
    if bad:
        raise DataError(f"characters not usable as folder names: {bad}")
    _prepare_out(out)
    old_manifest = _read_manifest(out / "manifest.json")
    if old_manifest and old_manifest.get("size") not in (None, size):
        raise DataError(
            f"corpus {out} was built at size {old_manifest.get('size')}, not {size}; "
            "use another output folder"
        )

    # writers
    writers: list[_Writer] = []
    for face in faces:
        writers.append(
            _Writer(face.writer_id, face.family, face.name, "font", str(face.path), face.face_index)
        )
    font_ids = {w.id for w in writers}
    if len(font_ids) != len(writers):
        raise DataError("two font faces share a writer id; pass each font once")
    for w in _scan_image_dirs(image_dirs, chars):
        if w.id in font_ids:
            raise DataError(f"image writer {w.id!r} has the same id as a font writer; rename it")
        writers.append(w)
    if not writers:
        raise DataError("no writers: no CJK fonts found and no image folders given")

    # reference font (check before the long rendering pass)
    if isinstance(reference, FontFace):
        ref = ReferenceRenderer(reference, traditional=traditional, size=size)
    else:
        ref = ReferenceRenderer(reference, reference_face_index, traditional=traditional, size=size)
    ref_real = (os.path.realpath(ref.font), ref.face_index)
    ref_writer = next(
        (
            w
            for w in writers
            if w.source == "font" and (os.path.realpath(w.path), w.face_index) == ref_real
        ),
        None,
    )
    ref_family = ref_writer.family if ref_writer else ref.face.family

    # pass 1: PNGs
    images_dir = out / "images"
    tasks = [
        (w, chars[i : i + _CHUNK], str(images_dir), size)
        for w in writers
        for i in range(0, len(chars), _CHUNK)
    ]
    cover_parts: dict[str, list[np.ndarray]] = {w.id: [] for w in writers}
    n_rendered = 0
    with _progress(len(writers) * len(chars), "render", progress) as bar:
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                results: Iterable = pool.map(_render_task, tasks)
                for wid, cov, n in results:
                    cover_parts[wid].append(cov)
                    n_rendered += n
                    bar.update(len(cov))
        else:
            for task in tasks:
                wid, cov, n = _render_task(task)
                cover_parts[wid].append(cov)
                n_rendered += n
                bar.update(len(cov))
    coverage = np.stack([np.concatenate(cover_parts[w.id]) for w in writers])

    uncovered = [c for c, hit in zip(chars, coverage.any(axis=0), strict=True) if not hit]
    if uncovered:
        shown = "".join(uncovered[:200]) + (" ..." if len(uncovered) > 200 else "")
        raise DataError(
            f"{len(uncovered)} character(s) are drawn by no writer: {shown} "
            "(add a font with --font or remove them from the charset)"
        )
    empty = [w.id for w, n in zip(writers, coverage.sum(axis=1), strict=True) if n == 0]
    if empty:
        warnings.warn(f"writers drawing none of the characters (dropped): {empty}", stacklevel=2)
        keep = coverage.sum(axis=1) > 0
        writers = [w for w, k in zip(writers, keep, strict=True) if k]
        coverage = coverage[keep]

    # reference glyphs: the given form of each character (the model's font, else the chain)
    missing_ref = []
    ref_fonts: dict[str, int] = {}
    reference_arr = np.zeros((len(chars), size, size), np.uint8)
    for i, ch in enumerate(chars):
        try:
            drawn = ref.draw(ch)
        except DataError:
            missing_ref.append(ch)
            continue
        reference_arr[i] = drawn.glyph
        ref_fonts[drawn.font] = ref_fonts.get(drawn.font, 0) + 1
    if traditional:
        simplified_only = [ch for ch in chars if ref.form(ch) == ch and to_traditional(ch) != ch]
        if simplified_only:
            warnings.warn(
                f"reference font {ref.font} lacks the traditional form of {len(simplified_only)} "
                f"character(s) ({''.join(simplified_only[:20])}...); drawn in simplified form",
                stacklevel=2,
            )
    if missing_ref:
        raise DataError(
            f"no installed font draws the reference of {len(missing_ref)} character(s): "
            f"{''.join(missing_ref[:200])} (tried {ref.face.name} and the fallback chain; "
            "choose another --reference-font or remove them from the charset)"
        )
    traditional_mask = np.array([is_traditional_form(c) for c in chars], bool)

    splits = _choose_splits(
        writers, chars, ref_family, val_writers, test_writers, heldout_chars, seed
    )
    manifest = {
        "format": FORMAT,
        "size": size,
        "charset": charset_name,
        "chars": chars,
        "writers": [
            {
                "id": w.id,
                "family": w.family,
                "name": w.name,
                "source": w.source,
                "path": w.path,
                "face_index": w.face_index,
                "n_covered": int(n),
                "n_covered_traditional": int(row[traditional_mask].sum()),
            }
            for w, n, row in zip(writers, coverage.sum(axis=1), coverage, strict=True)
        ],
        "n_traditional": int(traditional_mask.sum()),
        "reference": {
            "font": str(ref.font),
            "face_index": ref.face_index,
            "traditional": bool(traditional),
            "writer": ref_writer.id if ref_writer else None,
            "fonts": ref_fonts,
        },
        "splits": splits,
    }

    # pass 2: arrays (built under a temporary name, then renamed)
    if not _arrays_current(out, old_manifest, manifest, coverage):
        _build_glyph_array(out, writers, chars, size, coverage, progress)
        _save_npy(out / "coverage.npy", coverage)
    if not _same_array(out / "reference.npy", reference_arr):
        _save_npy(out / "reference.npy", reference_arr)
    text = json.dumps(manifest, ensure_ascii=False, indent=1) + "\n"
    atomic_write(out / "manifest.json", text.encode("utf-8"))
    return out


def _build_glyph_array(
    out: Path, writers: list[_Writer], chars: str, size: int, coverage: np.ndarray, progress: bool
) -> None:
    """Fill ``glyphs.npy`` from the PNGs (a damaged PNG is rendered again)."""
    images_dir = out / "images"

    def fill(tmp: Path) -> None:
        arr = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(len(writers), len(chars), size, size)
        )
        with _progress(int(coverage.sum()), "arrays", progress) as bar:
            for wi, w in enumerate(writers):
                for ci in np.flatnonzero(coverage[wi]):
                    ch = chars[ci]
                    png = _png_path(images_dir, ch, w.id)
                    img = _read_png(png, size)
                    if img is None:  # damaged or wrong-size leftover: draw it again
                        img = _draw(w, ch, size)
                        if img is None:
                            raise DataError(f"cannot read {png} and cannot render it again")
                        _write_png(png, img)
                    arr[wi, ci] = img
                    bar.update(1)
        arr.flush()
        del arr

    atomic_write(out / "glyphs.npy", fill)


# --------------------------------------------------------------------------- reader
_REQUIRED_KEYS = ("format", "size", "chars", "writers", "reference", "splits")


class Corpus:
    """A built corpus. Arrays: ``glyphs`` uint8 ``[n_writers, n_chars, S, S]`` (memory-mapped,
    white ink on black, zeros where not covered), ``coverage`` bool ``[n_writers, n_chars]``,
    ``reference`` uint8 ``[n_chars, S, S]``."""

    def __init__(
        self,
        path: Path,
        manifest: dict,
        glyphs: np.ndarray,
        coverage: np.ndarray,
        reference: np.ndarray,
    ) -> None:
        self.path = path
        self.manifest = manifest
        self.size: int = int(manifest["size"])
        self.chars: str = manifest["chars"]
        self.writers: list[dict] = manifest["writers"]
        self.glyphs = glyphs
        self.coverage = coverage
        self.reference = reference
        self.writer_ids: list[str] = [w["id"] for w in self.writers]
        self._writer_index = {wid: i for i, wid in enumerate(self.writer_ids)}
        self._char_index = {c: i for i, c in enumerate(self.chars)}

    @classmethod
    def open(cls, path: str | os.PathLike) -> Corpus:
        """Open a corpus folder; DataError names the missing or corrupt file or manifest key."""
        path = Path(path)
        mpath = path / "manifest.json"
        if not mpath.is_file():
            raise DataError(
                f"no corpus at {path}: {mpath.name} is missing (run restoreae build-data)"
            )
        try:
            manifest = json.loads(mpath.read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise DataError(f"corrupt corpus manifest {mpath}: {exc}") from exc
        if not isinstance(manifest, dict):
            raise DataError(f"corrupt corpus manifest {mpath}: not a JSON object")
        for key in _REQUIRED_KEYS:
            if key not in manifest:
                raise DataError(f"corpus manifest {mpath} lacks the key {key!r}")
        if manifest["format"] != FORMAT:
            raise DataError(
                f"corpus manifest {mpath} has format {manifest['format']}, expected {FORMAT}"
            )
        for key in ("val_writers", "test_writers", "heldout_chars"):
            if key not in manifest["splits"]:
                raise DataError(f"corpus manifest {mpath} lacks the key 'splits.{key}'")
        for i, w in enumerate(manifest["writers"]):
            if not isinstance(w, dict) or not {"id", "family"} <= set(w):
                raise DataError(f"corpus manifest {mpath}: writers[{i}] lacks 'id' or 'family'")
        n_w, n_c, s = len(manifest["writers"]), len(manifest["chars"]), int(manifest["size"])

        def load(name: str, shape: tuple, dtype, mmap: bool) -> np.ndarray:
            file = path / name
            try:
                arr = np.load(file, mmap_mode="r" if mmap else None)
            except (OSError, ValueError) as exc:
                raise DataError(f"cannot read corpus array {file}: {exc}") from exc
            if arr.shape != shape or arr.dtype != dtype:
                raise DataError(
                    f"corpus array {file} has shape {arr.shape} {arr.dtype}, "
                    f"expected {shape} {np.dtype(dtype)} from the manifest"
                )
            return arr

        glyphs = load("glyphs.npy", (n_w, n_c, s, s), np.uint8, True)
        coverage = load("coverage.npy", (n_w, n_c), np.bool_, False)
        reference = load("reference.npy", (n_c, s, s), np.uint8, False)
        ids = {w["id"] for w in manifest["writers"]}
        for key in ("val_writers", "test_writers"):
            unknown = set(manifest["splits"][key]) - ids
            if unknown:
                raise DataError(
                    f"corpus manifest {mpath}: splits.{key} names unknown writers {sorted(unknown)}"
                )
        return cls(path, manifest, glyphs, coverage, reference)

    # -- lookups
    def writer_index(self, writer_id: str) -> int:
        """Index of a writer id (KeyError if absent)."""
        return self._writer_index[writer_id]

    def char_index(self, char: str) -> int:
        """Index of a character (KeyError if absent)."""
        return self._char_index[char]

    def glyph(self, writer: int | str, char: int | str) -> np.ndarray:
        """One glyph, uint8 ``(S, S)`` white on black (zeros if that writer lacks the character)."""
        wi = self.writer_index(writer) if isinstance(writer, str) else int(writer)
        ci = self.char_index(char) if isinstance(char, str) else int(char)
        return np.asarray(self.glyphs[wi, ci])

    @property
    def splits(self) -> dict:
        return self.manifest["splits"]

    def split_writers(self, split: str) -> np.ndarray:
        """Writer indices taking part in ``split`` (int64)."""
        val = {self._writer_index[w] for w in self.splits["val_writers"]}
        test = {self._writer_index[w] for w in self.splits["test_writers"]}
        all_w = range(len(self.writers))
        if split == "val":
            chosen = val
        elif split == "heldout-writers":
            chosen = test
        elif split in ("train", "heldout-chars"):
            chosen = set(all_w) - val - test
        else:
            raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        return np.array(sorted(chosen), dtype=np.int64)

    def split_chars(self, split: str) -> np.ndarray:
        """Character indices taking part in ``split`` (int64)."""
        heldout = set(self.splits["heldout_chars"])
        held = np.array([c in heldout for c in self.chars], bool)
        if split in ("train", "val"):
            mask = ~held
        elif split == "heldout-chars":
            mask = held
        elif split == "heldout-writers":
            mask = np.ones(len(self.chars), bool)
        else:
            raise DataError(f"unknown split {split!r}; expected one of {', '.join(SPLITS)}")
        return np.flatnonzero(mask).astype(np.int64)

    def pairs(self, split: str) -> tuple[np.ndarray, np.ndarray]:
        """Covered ``(writer_idx, char_idx)`` int64 arrays of ``split`` (writer-major order)."""
        w, c = self.split_writers(split), self.split_chars(split)
        sub = self.coverage[np.ix_(w, c)]
        wi, ci = np.nonzero(sub)
        return w[wi], c[ci]

    def __repr__(self) -> str:
        return f"Corpus({str(self.path)!r}, writers={len(self.writers)}, chars={len(self.chars)}, size={self.size})"


def format_summary(corpus: Corpus) -> str:
    """A printable table of writers (family, coverage, split) and the split sizes."""
    sp = corpus.splits
    val, test = set(sp["val_writers"]), set(sp["test_writers"])
    ref_writer = corpus.manifest["reference"].get("writer")
    n_c = len(corpus.chars)
    width = max([len(w["id"]) for w in corpus.writers] + [6])
    fam_w = max([len(w["family"]) for w in corpus.writers] + [6])
    n_t = int(corpus.manifest.get("n_traditional") or 0)
    trad_col = f"  {'traditional':>13}" if n_t else ""
    lines = [
        f"corpus {corpus.path}: {len(corpus.writers)} writers in "
        f"{len({w['family'] for w in corpus.writers})} families, {n_c} chars"
        + (f" ({n_t} traditional forms)" if n_t else "")
        + f", size {corpus.size}",
        f"{'writer':<{width}}  {'family':<{fam_w}}  {'covered':>13}{trad_col}  split",
    ]
    for w in corpus.writers:
        role = "test" if w["id"] in test else "val" if w["id"] in val else "train"
        if w["id"] == ref_writer:
            role += " (reference font)"
        n = w["n_covered"]
        trad = ""
        if n_t:
            nt = int(w.get("n_covered_traditional", 0))
            trad = f"  {nt:>5} {100 * nt / n_t:5.1f}%"
        lines.append(
            f"{w['id']:<{width}}  {w['family']:<{fam_w}}  {n:>5} {100 * n / n_c:5.1f}%{trad}  {role}"
        )
    total = int(corpus.coverage.sum())
    lines.append(
        f"coverage: {total} of {corpus.coverage.size} writer x char pairs "
        f"({100 * total / corpus.coverage.size:.1f}%)"
    )
    ref = corpus.manifest["reference"]
    fonts = ref.get("fonts") or {}
    drawn_by = ", ".join(f"{name} {n}" for name, n in fonts.items())
    lines.append(
        f"reference: {ref['font']} (face {ref['face_index']}"
        f"{', traditional' if ref['traditional'] else ''})"
        + (f"; drawn by {drawn_by}" if len(fonts) > 1 else "")
    )
    lines.append(
        f"held-out chars: {len(sp['heldout_chars'])}; "
        + ", ".join(f"{s}: {len(corpus.pairs(s)[0])} pairs" for s in SPLITS)
    )
    return "\n".join(lines)


# --------------------------------------------------------------------------- command
def _resolve_reference(spec: str | None, faces: Sequence[FontFace]) -> FontFace | None:
    if spec is None:
        return None
    by_id = {f.writer_id: f for f in faces}
    if spec in by_id:
        return by_id[spec]
    path = Path(spec)
    if path.is_file():
        return load_face(path, 0)
    raise DataError(
        f"--reference-font {spec!r} is neither a font file nor a writer id "
        f"(writers: {', '.join(sorted(by_id)) or 'none'})"
    )


def build_data_command(args: argparse.Namespace) -> int:
    """``restoreae build-data``: discover fonts, build the corpus, print its summary."""
    from restoreae.data.charsets import charset_name as charset_label
    from restoreae.data.charsets import get_charset
    from restoreae.data.fonts import discover_fonts

    start = time.perf_counter()
    chars = get_charset(args.charset)
    faces = discover_fonts(args.font, args.font_dir, system=not args.no_system_fonts)
    if not faces and not args.images:
        raise DataError("no CJK writer fonts found; add fonts with --font/--font-dir or --images")
    reference = _resolve_reference(args.reference_font, faces)
    print(
        f"building {args.out}: {len(chars)} chars, {len(faces)} font writers, size {args.size}",
        file=sys.stderr,
    )
    charset_name = charset_label(args.charset)
    out = build_corpus(
        args.out,
        chars,
        faces,
        args.size,
        image_dirs=args.images,
        reference=reference,
        traditional=args.traditional,
        val_writers=args.val_writers,
        test_writers=args.test_writers,
        heldout_chars=args.heldout_chars,
        seed=args.seed,
        workers=max(1, args.workers),
        charset_name=charset_name,
        progress=True,
    )
    corpus = Corpus.open(out)
    print(format_summary(corpus))
    print(f"done in {time.perf_counter() - start:.1f} s")
    return 0
