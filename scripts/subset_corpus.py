"""Write a smaller copy of a built corpus: fewer characters, optionally without the test writers,
optionally with fewer grey levels, so that it packs small enough to travel to another machine
(e.g. a GPU lent for a short training run: ``tar cJf corpus.tar.xz -C OUT .``).

The copy is a corpus folder that :meth:`restoreae.data.corpus.Corpus.open` reads like any other.
It keeps every writer and the manifest's splits, so the held-out writers stay held out; with
``--drop-test`` the test writers' glyphs are zeroed and marked uncovered (training never reads
them). The held-out characters are always kept, then ``--chars`` characters in all are drawn
from the rest with ``--seed``. ``--levels L`` rounds the antialiased grey levels (uint8 0–255)
to L evenly spaced values (16 levels: at most 8/255 off; xz then packs a 128 px glyph in about
450 bytes instead of 740).

    python scripts/subset_corpus.py data/corpus128 data/corpus128_sub --chars 1800 \
        --drop-test --levels 16
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from restoreae.data.corpus import Corpus
from restoreae.utils import atomic_write


def subset_chars(corpus: Corpus, n_chars: int, seed: int) -> np.ndarray:
    """Sorted indices of ``n_chars`` characters outside the held-out ones, drawn with ``seed``."""
    pool = corpus.split_chars("train")
    n = min(len(pool), n_chars)
    return np.sort(np.random.default_rng(seed).choice(pool, size=n, replace=False))


def quantize(glyphs: np.ndarray, levels: int) -> np.ndarray:
    """uint8 glyphs rounded to ``levels`` evenly spaced values of 0–255 (0 and 255 kept)."""
    step = 255.0 / (levels - 1)
    table = (np.round(np.arange(256) / step) * step).round().astype(np.uint8)
    return table[glyphs]


def write_subset(
    src: Path, out: Path, n_chars: int, seed: int, drop_test: bool, levels: int
) -> None:
    """Write the subset corpus folder ``out`` (created; must not hold a corpus already)."""
    corpus = Corpus.open(src)
    if (out / "manifest.json").exists():
        raise SystemExit(f"{out} already holds a corpus; remove it first")
    out.mkdir(parents=True, exist_ok=True)
    idx = subset_chars(corpus, n_chars, seed)
    glyphs = np.ascontiguousarray(corpus.glyphs[:, idx])
    coverage = corpus.coverage[:, idx].copy()
    if drop_test:
        for wid in corpus.manifest["splits"]["test_writers"]:
            w = corpus.writer_index(wid)
            glyphs[w] = 0
            coverage[w] = False
    reference = corpus.reference[idx]
    if levels < 256:
        glyphs, reference = quantize(glyphs, levels), quantize(reference, levels)
    manifest = dict(corpus.manifest)
    manifest["chars"] = "".join(corpus.chars[i] for i in idx)
    manifest["subset_of"] = {
        "corpus": str(src),
        "chars": int(len(idx)),
        "seed": seed,
        "drop_test": drop_test,
        "levels": levels,
    }
    for name, arr in (
        ("glyphs.npy", glyphs),
        ("coverage.npy", coverage),
        ("reference.npy", reference),
    ):
        np.save(out / name, arr)
    text = json.dumps(manifest, ensure_ascii=False, indent=1)
    atomic_write(out / "manifest.json", text.encode("utf-8"))
    print(f"{out}: {glyphs.shape[0]} writers x {len(idx)} chars, {int(coverage.sum())} glyphs")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("src", type=Path, help="a built corpus folder")
    ap.add_argument("out", type=Path, help="new corpus folder to write")
    ap.add_argument("--chars", type=int, default=1800, help="characters kept in all")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--drop-test", action="store_true", help="zero the test writers' glyphs")
    ap.add_argument("--levels", type=int, default=256, help="grey levels kept (2–256)")
    args = ap.parse_args()
    if not 2 <= args.levels <= 256:
        ap.error("--levels must be from 2 to 256")
    write_subset(args.src, args.out, args.chars, args.seed, args.drop_test, args.levels)


if __name__ == "__main__":
    main()
