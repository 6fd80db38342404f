"""The glyph corpus: reader (:class:`Corpus`), summary, and ``restoreae build-data``.

Layout (see docs/ARCHITECTURE.md)::

    CORPUS/
      manifest.json                 chars, writers, reference font, splits (written last)
      images/<char>/<writer_id>.png uint8 grey, white ink on black
      glyphs.npy                    uint8 [n_writers, n_chars, S, S]; zeros where not covered
      coverage.npy                  bool  [n_writers, n_chars]
      reference.npy                 uint8 [n_chars, S, S] standard-font reference glyphs

The builder is :func:`restoreae.data.corpus_build.build_corpus` (re-exported here), its writers
and PNGs :mod:`restoreae.data.writers`, its splits :mod:`restoreae.data.splits`.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from restoreae.data.corpus_build import FORMAT, build_corpus
from restoreae.data.fonts import FontFace, load_face
from restoreae.data.writers import IMAGE_EXTENSIONS, load_writer_image
from restoreae.errors import DataError

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

SPLITS = ("train", "val", "heldout-writers", "heldout-chars")
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
