"""Tune ``char="auto"``'s choice rule on the font *validation* writers (never on real-dev).

    PYTHONPATH=src .venv/bin/python benchmarks/tune_auto.py --data data/corpus128 --split val \\
        [--num 300] [--styles none,calligraphy] [--seed 0] [--k-max 8] [--ocr-width 48] \\
        [--features auto-val-features.json] [--out auto-val-rules.json]

For each style, ``--num`` seeded glyphs of the split (validation writers by default), styled and
damaged exactly as ``bench_any_char.py --sets corpus`` does, go once through
:meth:`restoreae.restore.auto.CharPicker.trials` with ``k = --k-max`` candidates. Per glyph it
records, for every candidate, the recogniser's probabilities (damaged glyph ``pd``, first
restoration without reference ``pf``, restoration with the candidate's reference read back
``rb``) and whether the judge (PP-OCRv4 at ``--ocr-width``, as in ``bench_any_char.py``) reads
that restoration (after the whole restore path) as the true character; also the no-reference
and true-character restorations. ``--features`` keeps these records (given an existing file, the
collection is skipped).

Every rule is then replayed on the records, without restoring again: candidates = the first
``k`` by ``max(pd, pf)``; confidence = the weighted geometric mean
``exp((a·ln pd + b·ln pf + g·ln rb) / (a + b + g))`` (or with the proposal ``max(pd, pf)`` in
place of ``pd`` and ``pf``: family ``max``, its weight ``a`` swept in steps of 0.05: the
``proposal_weight`` of :class:`~restoreae.restore.auto.CharPicker`); the most confident
candidate is kept when its confidence is ≥ ``t``, else the no-reference restoration. A rule's
readability is the share of glyphs the judge reads right in what it keeps (*recovered*: over the
clean glyphs' share), its accuracy the share whose kept character is the true one. Printed: the best rules by readability
over all styles, and the rule ``auto`` ships (:func:`restoreae.restore.auto.candidate_confidence`
with ``DEFAULT_TOP_K`` / ``DEFAULT_MIN_CONFIDENCE``).
"""

from __future__ import annotations

import argparse
import itertools
import json
import sys
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT / "benchmarks"))

from bench_any_char import corpus_set, damage  # noqa: E402
from restoreae.restore.auto import (  # noqa: E402
    DEFAULT_MIN_CONFIDENCE,
    DEFAULT_TOP_K,
    candidate_confidence,
)

EPS = 1e-9
EXPONENTS = (0.0, 0.5, 1.0, 2.0)
THRESHOLDS = tuple(round(0.05 * i, 2) for i in range(20))


def collect(args: argparse.Namespace, style: str) -> dict:
    """The records of one style: see the module docstring."""
    from restoreae.data.reference import renderer_for_model
    from restoreae.evaluate.ocr import OcrJudge, normalize_reading
    from restoreae.restore.api import Restorer

    restorer = Restorer.from_pretrained(args.model)
    restorer.reference_renderer = renderer_for_model(restorer.metadata, restorer.img_size)
    picker = restorer.picker(k=args.k_max)
    judge = OcrJudge(line_width=args.ocr_width)
    data = corpus_set(args.data, args.split, args.num, args.seed, style)
    clean, chars = data["clean"], data["chars"]
    damaged = damage(clean, args.seed)

    def reads(images: list[np.ndarray], want: list[str]) -> list[bool]:
        got = judge.read(images)
        return [normalize_reading(t) == c for t, c in zip(got, want, strict=True)]

    records = []
    clean_ok = reads(list(clean), chars)
    true_ok = reads(restorer.restore_many(list(damaged), chars, polarity="light-on-dark"), chars)
    for start in range(0, len(clean), 16):
        idx = list(range(start, min(start + 16, len(clean))))
        preps = [restorer.prepare(damaged[i], "light-on-dark") for i in idx]
        t = picker.trials(preps)
        none = [restorer.finish(p, y) for p, y in zip(preps, t.first, strict=True)]
        none_ok = reads(none, [chars[i] for i in idx])
        outs = [restorer.finish(preps[i], y) for i, y in zip(t.image, t.restored, strict=True)]
        cand_ok = reads(outs, [chars[idx[i]] for i in t.image])
        for n, i in enumerate(idx):
            mine = np.flatnonzero(t.image == n)
            records.append(
                {
                    "char": chars[i],
                    "clean_ok": clean_ok[i],
                    "none_ok": none_ok[n],
                    "true_ok": true_ok[i],
                    "cands": [
                        [
                            t.chars[j],
                            float(t.p_damaged[j]),
                            float(t.p_first[j]),
                            float(t.readback[j]),
                            cand_ok[j],
                        ]
                        for j in mine
                    ],
                }
            )
        print(f"[{style}] {len(records)}/{len(clean)}", file=sys.stderr, flush=True)
    return {"style": style, "split": args.split, "seed": args.seed, "records": records}


class Table:
    """The records of several sets as flat arrays: ``J`` candidates of ``N`` glyphs."""

    def __init__(self, records: list[dict]) -> None:
        self.n = len(records)
        self.clean_ok = np.array([r["clean_ok"] for r in records], bool)
        self.none_ok = np.array([r["none_ok"] for r in records], bool)
        self.true_ok = np.array([r["true_ok"] for r in records], bool)
        img, rank, right, ok, feats = [], [], [], [], []
        for i, r in enumerate(records):
            for rk, (c, pd, pf, rb, good) in enumerate(r["cands"]):
                img.append(i)
                rank.append(rk)
                right.append(c == r["char"])
                ok.append(good)
                feats.append((pd, pf, rb))
        self.image = np.array(img, np.int64)
        self.rank = np.array(rank, np.int64)
        self.right = np.array(right, bool)
        self.ok = np.array(ok, bool)
        f = np.array(feats, np.float64).reshape(-1, 3)
        self.pd, self.pf, self.rb = f[:, 0], f[:, 1], f[:, 2]

    def evaluate(
        self, conf: np.ndarray, k: int, thresholds: tuple[float, ...] = THRESHOLDS
    ) -> list[dict]:
        """Readability, accuracy and fallback share of candidate confidences ``conf`` (J,),
        the first ``k`` candidates, for each threshold."""
        conf = np.where(self.rank < k, conf, -np.inf)
        best = np.full(self.n, -np.inf)
        np.maximum.at(best, self.image, conf)
        # the first candidate (best rank) reaching the image's best confidence
        is_best = (conf == best[self.image]) & np.isfinite(conf)
        big = len(conf)
        pick = np.full(self.n, big)
        np.minimum.at(pick, self.image, np.where(is_best, np.arange(big), big))
        has = pick < big
        pick = np.where(has, pick, -1)
        chosen_ok = np.where(has, self.ok[np.maximum(pick, 0)], False)
        chosen_right = np.where(has, self.right[np.maximum(pick, 0)], False)
        out = []
        clean = self.clean_ok.mean()
        for t in thresholds:
            keep = has & (best >= t)
            ok = np.where(keep, chosen_ok, self.none_ok)
            out.append(
                {
                    "t": t,
                    "ocr": float(ok.mean()),
                    "recovered": float(ok.mean() / clean) if clean else None,
                    "accuracy": float((keep & chosen_right).mean()),
                    "fallback": float(1.0 - keep.mean()),
                }
            )
        return out

    def recall(self, k: int) -> float:
        """Share of glyphs whose true character is among the first ``k`` candidates."""
        hit = np.zeros(self.n, bool)
        hit[self.image[(self.rank < k) & self.right]] = True
        return float(hit.mean())


def _weights() -> list[tuple[str, float, float, float]]:
    """The grid's distinct rules ``(family, a, b, g)``, weights summing to 1: family ``sep``
    weighs ``ln pd``, ``ln pf``, ``ln rb`` by ``a``, ``b``, ``g`` (from :data:`EXPONENTS`);
    family ``max`` weighs ``ln max(pd, pf)`` by ``a`` = 0, 0.05, …, 1 and ``ln rb`` by ``g = 1 - a``
    (``CharPicker``'s ``proposal_weight`` is ``a``)."""
    seen, out = set(), []
    for a, b, g in itertools.product(EXPONENTS, repeat=3):
        if a + b + g == 0:
            continue
        w = tuple(round(v / (a + b + g), 6) for v in (a, b, g))
        if w not in seen:
            seen.add(w)
            out.append(("sep", *w))
    out += [("max", round(0.05 * i, 2), 0.0, round(1 - 0.05 * i, 2)) for i in range(21)]
    return out


def rules(table: Table, k_max: int) -> list[dict]:
    """Every rule of the grid (see :func:`_weights`) with its figures, for k = 1 … ``k_max``."""
    lpd, lpf, lrb = (np.log(np.maximum(v, EPS)) for v in (table.pd, table.pf, table.rb))
    lmax = np.maximum(lpd, lpf)
    out = []
    for family, a, b, g in _weights():
        if family == "sep":
            conf = np.exp(a * lpd + b * lpf + g * lrb)
        else:
            conf = np.exp(a * lmax + g * lrb)
        for k in range(1, k_max + 1):
            for row in table.evaluate(conf, k):
                out.append({"family": family, "a": a, "b": b, "g": g, "k": k, **row})
    return out


def shipped(table: Table) -> dict:
    """The figures of the rule ``auto`` ships."""
    conf = candidate_confidence(table.pd, table.pf, table.rb)
    (row,) = table.evaluate(conf, DEFAULT_TOP_K, (DEFAULT_MIN_CONFIDENCE,))
    return {"k": DEFAULT_TOP_K, "min_confidence": DEFAULT_MIN_CONFIDENCE, **row}


def summary(table: Table) -> dict:
    clean = table.clean_ok.mean()
    return {
        "n": table.n,
        "clean_ocr": float(clean),
        "none_recovered": float(table.none_ok.mean() / clean),
        "true_recovered": float(table.true_ok.mean() / clean),
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None)
    p.add_argument("--data", type=Path, default=ROOT / "data" / "corpus128")
    p.add_argument("--split", default="val", choices=["val", "heldout-writers"])
    p.add_argument("--num", type=int, default=300)
    p.add_argument("--styles", default="none,calligraphy")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--k-max", type=int, default=8)
    p.add_argument("--ocr-width", type=int, default=48)
    p.add_argument("--features", type=Path, default=None, help="records JSON (read or written)")
    p.add_argument("--out", type=Path, default=None, help="write every rule's figures as JSON")
    p.add_argument("--top", type=int, default=15)
    args = p.parse_args()
    warnings.simplefilter("ignore", UserWarning)
    if args.features and args.features.is_file():
        sets = json.loads(args.features.read_text(encoding="utf-8"))
    else:
        import torch

        torch.set_num_threads(1)
        sets = []
        for style in args.styles.split(","):
            sets.append(collect(args, style))
            if args.features:  # after every style, so a long run keeps what it has
                args.features.write_text(json.dumps(sets, ensure_ascii=False) + "\n", "utf-8")
    k_max = max(len(r["cands"]) for s in sets for r in s["records"])
    tables = {s["style"]: Table(s["records"]) for s in sets}
    pooled = Table([r for s in sets for r in s["records"]])
    report: dict = {"sets": {}, "k_max": k_max}
    for name, tab in {**tables, "all": pooled}.items():
        report["sets"][name] = {
            **summary(tab),
            "recall": {k: tab.recall(k) for k in range(1, k_max + 1)},
            "shipped": shipped(tab),
        }
        print(f"[{name}] {json.dumps(report['sets'][name])}")
    grid = rules(pooled, k_max)
    for name, tab in tables.items():  # the same rules per style, in the same order
        for row, other in zip(grid, rules(tab, k_max), strict=True):
            row[f"recovered[{name}]"] = other["recovered"]
            row[f"accuracy[{name}]"] = other["accuracy"]
    # simpler first among equals: fewer terms, smaller k, lower threshold
    grid.sort(
        key=lambda r: (
            -round(r["recovered"], 6),
            (r["a"] > 0) + (r["b"] > 0) + (r["g"] > 0),
            r["k"],
            r["t"],
        )
    )
    report["best"] = grid[: args.top]
    for r in report["best"]:
        print(json.dumps(r))
    if args.out:
        args.out.write_text(json.dumps({**report, "rules": grid}, indent=1) + "\n", "utf-8")
    return 0


if __name__ == "__main__":
    sys.exit(main())
