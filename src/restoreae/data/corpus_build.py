"""Building a glyph corpus (``restoreae build-data``), one step per function.

:func:`build_corpus` checks its inputs, gathers the writers, opens the reference font (before
the long pass, so a bad font fails fast), renders the PNGs, drops what no writer draws, renders
the reference glyphs, chooses the splits, then writes the arrays and, last, the manifest.

Building is restartable: PNGs already present are not rendered again, the arrays are rebuilt only
when missing or when the writer / character set changed, and every file is written to a temporary
name and renamed, so a crash never leaves a corrupt corpus (the manifest is written last).
"""

from __future__ import annotations

import json
import os
import sys
import warnings
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np

from restoreae.data.fonts import FontFace
from restoreae.data.reference import ReferenceRenderer, is_traditional_form, to_traditional
from restoreae.data.splits import choose_splits
from restoreae.data.writers import (
    Writer,
    draw_glyph,
    png_path,
    read_png,
    render_task,
    scan_image_dirs,
    write_png,
)
from restoreae.errors import DataError
from restoreae.utils import atomic_write

FORMAT = 1  # manifest.json "format"
_FORBIDDEN_CHARS = set("/\\.\0")
_CHUNK = 256  # characters per rendering task


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
    out, size = Path(out), int(size)
    chars = _check_chars(chars, size)
    _prepare_out(out)
    old_manifest = _read_manifest(out / "manifest.json")
    if old_manifest and old_manifest.get("size") not in (None, size):
        raise DataError(
            f"corpus {out} was built at size {old_manifest.get('size')}, not {size}; "
            "use another output folder"
        )
    writers = _collect_writers(faces, image_dirs, chars)
    if isinstance(reference, FontFace):
        ref = ReferenceRenderer(reference, traditional=traditional, size=size)
    else:
        ref = ReferenceRenderer(reference, reference_face_index, traditional=traditional, size=size)
    ref_writer = _reference_writer(ref, writers)
    ref_family = ref_writer.family if ref_writer else ref.face.family

    coverage = _render_pngs(out / "images", writers, chars, size, workers, progress)
    writers, coverage = _drop_uncovered(writers, chars, coverage)
    reference_arr, ref_fonts = _reference_glyphs(ref, chars, size, traditional)
    splits = choose_splits(
        writers, chars, ref_family, val_writers, test_writers, heldout_chars, seed
    )
    manifest = _manifest(
        size, charset_name, chars, writers, coverage, ref, ref_writer, ref_fonts, splits
    )

    if not _arrays_current(out, old_manifest, manifest, coverage):
        _build_glyph_array(out, writers, chars, size, coverage, progress)
        _save_npy(out / "coverage.npy", coverage)
    if not _same_array(out / "reference.npy", reference_arr):
        _save_npy(out / "reference.npy", reference_arr)
    text = json.dumps(manifest, ensure_ascii=False, indent=1) + "\n"
    atomic_write(out / "manifest.json", text.encode("utf-8"))
    return out


# --------------------------------------------------------------------------- steps
def _check_chars(chars: str, size: int) -> str:
    """The charset without whitespace or repeats (order kept); DataError for a bad size/char."""
    if size < 16:
        raise DataError(f"glyph size must be at least 16 pixels, got {size}")
    chars = "".join(dict.fromkeys(c for c in chars if not c.isspace()))
    if not chars:
        raise DataError("the charset is empty: no characters to render")
    bad = sorted(c for c in set(chars) if c in _FORBIDDEN_CHARS)
    if bad:
        raise DataError(f"characters not usable as folder names: {bad}")
    return chars


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


def _collect_writers(
    faces: Sequence[FontFace], image_dirs: Sequence[str | os.PathLike], chars: str
) -> list[Writer]:
    """Font writers, then image-folder writers; DataError for clashing ids or no writer."""
    writers = [
        Writer(face.writer_id, face.family, face.name, "font", str(face.path), face.face_index)
        for face in faces
    ]
    font_ids = {w.id for w in writers}
    if len(font_ids) != len(writers):
        raise DataError("two font faces share a writer id; pass each font once")
    for w in scan_image_dirs(image_dirs, chars):
        if w.id in font_ids:
            raise DataError(f"image writer {w.id!r} has the same id as a font writer; rename it")
        writers.append(w)
    if not writers:
        raise DataError("no writers: no CJK fonts found and no image folders given")
    return writers


def _reference_writer(ref: ReferenceRenderer, writers: list[Writer]) -> Writer | None:
    """The font writer that is the reference font itself (its family is never a test family)."""
    ref_real = (os.path.realpath(ref.font), ref.face_index)
    return next(
        (
            w
            for w in writers
            if w.source == "font" and (os.path.realpath(w.path), w.face_index) == ref_real
        ),
        None,
    )


def _progress(total: int, desc: str, enabled: bool):
    from tqdm import tqdm

    return tqdm(
        total=total, desc=desc, unit="glyph", file=sys.stderr, disable=not enabled, leave=False
    )


def _render_pngs(
    images_dir: Path, writers: list[Writer], chars: str, size: int, workers: int, progress: bool
) -> np.ndarray:
    """Pass 1: the missing PNGs of every writer (in ``workers`` processes); returns coverage,
    bool ``[n_writers, n_chars]``."""
    tasks = [
        (w, chars[i : i + _CHUNK], str(images_dir), size)
        for w in writers
        for i in range(0, len(chars), _CHUNK)
    ]
    cover_parts: dict[str, list[np.ndarray]] = {w.id: [] for w in writers}
    with _progress(len(writers) * len(chars), "render", progress) as bar:
        if workers > 1:
            with ProcessPoolExecutor(max_workers=workers) as pool:
                results: Iterable = pool.map(render_task, tasks)
                for wid, cov, _n in results:
                    cover_parts[wid].append(cov)
                    bar.update(len(cov))
        else:
            for task in tasks:
                wid, cov, _n = render_task(task)
                cover_parts[wid].append(cov)
                bar.update(len(cov))
    return np.stack([np.concatenate(cover_parts[w.id]) for w in writers])


def _drop_uncovered(
    writers: list[Writer], chars: str, coverage: np.ndarray
) -> tuple[list[Writer], np.ndarray]:
    """DataError naming the characters no writer draws; writers drawing none are dropped (with a
    warning)."""
    uncovered = [c for c, hit in zip(chars, coverage.any(axis=0), strict=True) if not hit]
    if uncovered:
        shown = "".join(uncovered[:200]) + (" ..." if len(uncovered) > 200 else "")
        raise DataError(
            f"{len(uncovered)} character(s) are drawn by no writer: {shown} "
            "(add a font with --font or remove them from the charset)"
        )
    empty = [w.id for w, n in zip(writers, coverage.sum(axis=1), strict=True) if n == 0]
    if empty:
        warnings.warn(f"writers drawing none of the characters (dropped): {empty}", stacklevel=3)
        keep = coverage.sum(axis=1) > 0
        writers = [w for w, k in zip(writers, keep, strict=True) if k]
        coverage = coverage[keep]
    return writers, coverage


def _reference_glyphs(
    ref: ReferenceRenderer, chars: str, size: int, traditional: bool
) -> tuple[np.ndarray, dict[str, int]]:
    """uint8 ``[n_chars, size, size]`` reference glyphs, each in the given form of its character
    (the reference font, else the fallback chain), and how many each font drew; DataError naming
    what no font can draw."""
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
                stacklevel=3,
            )
    if missing_ref:
        raise DataError(
            f"no installed font draws the reference of {len(missing_ref)} character(s): "
            f"{''.join(missing_ref[:200])} (tried {ref.face.name} and the fallback chain; "
            "choose another --reference-font or remove them from the charset)"
        )
    return reference_arr, ref_fonts


def _manifest(
    size: int,
    charset_name: str,
    chars: str,
    writers: list[Writer],
    coverage: np.ndarray,
    ref: ReferenceRenderer,
    ref_writer: Writer | None,
    ref_fonts: dict[str, int],
    splits: dict,
) -> dict:
    """``manifest.json`` (see docs/ARCHITECTURE.md, "Corpus on disk")."""
    traditional_mask = np.array([is_traditional_form(c) for c in chars], bool)
    return {
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
            "traditional": bool(ref.traditional),
            "writer": ref_writer.id if ref_writer else None,
            "fonts": ref_fonts,
        },
        "splits": splits,
    }


# --------------------------------------------------------------------------- arrays
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


def _build_glyph_array(
    out: Path, writers: list[Writer], chars: str, size: int, coverage: np.ndarray, progress: bool
) -> None:
    """Pass 2: fill ``glyphs.npy`` from the PNGs (a damaged PNG is rendered again)."""
    images_dir = out / "images"

    def fill(tmp: Path) -> None:
        arr = np.lib.format.open_memmap(
            tmp, mode="w+", dtype=np.uint8, shape=(len(writers), len(chars), size, size)
        )
        with _progress(int(coverage.sum()), "arrays", progress) as bar:
            for wi, w in enumerate(writers):
                for ci in np.flatnonzero(coverage[wi]):
                    ch = chars[ci]
                    png = png_path(images_dir, ch, w.id)
                    img = read_png(png, size)
                    if img is None:  # damaged or wrong-size leftover: draw it again
                        img = draw_glyph(w, ch, size)
                        if img is None:
                            raise DataError(f"cannot read {png} and cannot render it again")
                        write_png(png, img)
                    arr[wi, ci] = img
                    bar.update(1)
        arr.flush()
        del arr

    atomic_write(out / "glyphs.npy", fill)
