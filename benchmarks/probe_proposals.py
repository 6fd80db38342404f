"""Would ``auto`` propose the right character more often from more views of the glyph?

    PYTHONPATH=src .venv/bin/python benchmarks/probe_proposals.py --data data/corpus128 \\
        [--split val] [--style calligraphy] [--num 300] [--seed 0] [--k 5] [--model default]

``--num`` seeded glyphs of a corpus split (validation writers by default: the set ``auto`` may be
tuned on), styled and damaged with the seed's pool exactly as ``bench_any_char.py --sets corpus``
does, are prepared as ``Restorer`` prepares them and restored once without a reference. The
recogniser ``auto`` uses (PP-OCRv4 at line width 320) reads several *views* of each: the damaged
glyph ``D`` and the first restoration ``F`` (what ``auto`` reads today), plus ``D``/``F`` with a
wider black margin (``pad``), cropped 10 % each side (``crop``), ``D`` median-filtered 5×5
(``med``), closed or opened 3×3 (``close``, ``open``). For every combination of up to three views
(probabilities combined by maximum, as ``auto`` does for ``D`` and ``F``, or by mean) it prints
the *recall*: the share of glyphs whose true character is among the first ``--k`` drawable
one-character readings; also ``D``+``F`` at k = 8 and 10.
"""

from __future__ import annotations

import argparse
import itertools
import sys
import warnings
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_any_char import corpus_set, damage  # noqa: E402
from restoreae.data.reference import renderer_for_model  # noqa: E402
from restoreae.restore.api import Restorer  # noqa: E402
from restoreae.restore.auto import restored_glyph  # noqa: E402


def views(damaged: list[np.ndarray], first: list[np.ndarray]) -> dict[str, list[np.ndarray]]:
    """Named views, each a list of uint8 (H, W) white-on-black glyphs."""

    def pad(g: np.ndarray) -> np.ndarray:
        k = round(0.25 * g.shape[0])
        return cv2.copyMakeBorder(g, k, k, k, k, cv2.BORDER_CONSTANT, value=0)

    def crop(g: np.ndarray) -> np.ndarray:
        k = round(0.1 * g.shape[0])
        return np.ascontiguousarray(g[k:-k, k:-k])

    k3 = np.ones((3, 3), np.uint8)
    return {
        "D": damaged,
        "F": first,
        "Dpad": [pad(g) for g in damaged],
        "Fpad": [pad(g) for g in first],
        "Dcrop": [crop(g) for g in damaged],
        "Fcrop": [crop(g) for g in first],
        "Dmed": [cv2.medianBlur(g, 5) for g in damaged],
        "Dclose": [cv2.morphologyEx(g, cv2.MORPH_CLOSE, k3) for g in damaged],
        "Dopen": [cv2.morphologyEx(g, cv2.MORPH_OPEN, k3) for g in damaged],
    }


def recall(probs: np.ndarray, truth: list[int], k: int, n_classes: int) -> float:
    """Share of rows whose ``truth`` class is among the ``k`` most probable drawable classes
    (class 0 = CTC blank and the last = space excluded)."""
    hits = 0
    for row, t in zip(probs, truth, strict=True):
        order = [j for j in np.argsort(-row, kind="stable")[: k + 2] if 0 < j < n_classes - 1]
        hits += t in order[:k]
    return hits / len(truth)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", type=Path, default=ROOT / "data" / "corpus128")
    ap.add_argument("--split", default="val")
    ap.add_argument("--style", default="calligraphy")
    ap.add_argument("--num", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--model", default="default")
    args = ap.parse_args()
    warnings.filterwarnings("ignore", category=UserWarning)

    restorer = Restorer.from_pretrained(args.model)
    restorer.reference_renderer = renderer_for_model(restorer.metadata, restorer.img_size)
    judge = restorer.picker(k=args.k).judge
    data = corpus_set(args.data, args.split, args.num, args.seed, args.style)
    damaged = damage(data["clean"], args.seed)
    preps = [restorer.prepare(d, "light-on-dark") for d in damaged]
    x0 = np.stack([restorer.model_input(p, None, use_reference=False) for p in preps])
    first = [restored_glyph(y, p.glyph) for y, p in zip(restorer.run(x0), preps, strict=True)]
    probs = {
        name: judge.char_probabilities(v)
        for name, v in views([p.glyph for p in preps], first).items()
    }
    n_classes = len(judge.alphabet)
    truth = [judge.alphabet.index(c) if c in judge.alphabet else -1 for c in data["chars"]]
    rows = []
    for m in (1, 2, 3):
        for combo in itertools.combinations(probs, m):
            stack = np.stack([probs[c] for c in combo])
            rows.append(
                (
                    "+".join(combo),
                    recall(stack.max(0), truth, args.k, n_classes),
                    recall(stack.mean(0), truth, args.k, n_classes),
                )
            )
    print(f"{args.num} glyphs, split {args.split}, style {args.style}; recall@{args.k}")
    print("| views | max | mean |\n|---|---:|---:|")
    for name, r_max, r_mean in sorted(rows, key=lambda r: -max(r[1:]))[:15]:
        print(f"| {name} | {r_max:.3f} | {r_mean:.3f} |")
    both = np.maximum(probs["D"], probs["F"])
    print(
        f"D+F (auto today): recall@{args.k} {recall(both, truth, args.k, n_classes):.3f}, "
        f"@8 {recall(both, truth, 8, n_classes):.3f}, @10 {recall(both, truth, 10, n_classes):.3f}"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
