"""``restoreae eval``: restore a fixed, seeded set of damaged glyphs and compare models.

Evaluation set (deterministic for a given corpus, split, ``--num``, ``--seed`` and damage config):

1. ``--num`` (writer, char) pairs are drawn without replacement from ``Corpus.pairs(split)`` with
   ``numpy.random.default_rng(seed)`` and sorted.
2. The **mixed** set (the main one, used for ranking) damages each clean glyph with
   :class:`~restoreae.damage.pipeline.DamagePipeline` built from ``--damage`` (default: the seed's
   pool of four ops, ``k=3`` per glyph).
3. **Per damage type**: for every registered damage op, the same glyphs damaged by that op alone
   (``k=1``, the op's parameters from the config when it names them). Separate one-op sets show
   what each kind of damage costs and what a model recovers from it, without the confounding of
   grouping the mixed set by which ops happened to be drawn.
4. Glyph ``i`` of set ``name`` (:func:`restoreae.evaluate.sets.damage_images`) uses ``default_rng([seed, crc32(name), i, attempt])``; when the
   damage leaves the glyph unchanged (e.g. a black rectangle on background), the next ``attempt``
   is drawn (up to 8), so every evaluated glyph is really damaged and PSNR stays finite.

Candidates (:mod:`restoreae.evaluate.candidates`): the ``identity`` and ``classical`` baselines (unless ``--no-baselines``) and every
model given, as any model spec (:func:`restoreae.models.weights.resolve_weights`: a shipped name,
a run folder, a ``.safetensors`` or ``.onnx`` file, ``ARCH:FILE``), run by the same backends as
``restoreae restore`` (:mod:`restoreae.restore.backends`: PyTorch on ``--device``; ONNX Runtime on
the CPU for ``.onnx`` files). See
:mod:`restoreae.evaluate.metrics` and :mod:`restoreae.evaluate.ocr` for the metric conventions.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from restoreae.errors import DataError, RestoreAEError
from restoreae.evaluate import report as rep
from restoreae.evaluate.candidates import (
    Candidate,
    GlyphRunner,
    baselines,
    count_gflops,
    load_candidate,
    measure_latency,
    resolve_device,
)
from restoreae.evaluate.grid import encode_png, make_grid
from restoreae.evaluate.metrics import METRICS
from restoreae.evaluate.results_json import results_json
from restoreae.evaluate.sets import damage_images, sample_pairs
from restoreae.utils import atomic_write

__all__ = [
    "EvalSet",
    "Candidate",
    "GlyphRunner",
    "resolve_device",
    "sample_pairs",
    "build_damage_sets",
    "load_candidate",
    "count_gflops",
    "measure_latency",
    "evaluate",
    "write_outputs",
    "eval_command",
]

MAIN_SET = "mixed"
GRID_ROWS = 8


# --------------------------------------------------------------------------- evaluation set
@dataclass
class EvalSet:
    """One damaged version of the evaluation glyphs: uint8 ``(N, S, S)`` white on black."""

    name: str
    ops: list[str]
    k: int | list[int]
    damaged: np.ndarray
    applied: list[list[str]] = field(default_factory=list)


def _damage_set(
    name: str, config: Any, clean: np.ndarray, seed: int
) -> tuple[np.ndarray, list[list[str]]]:
    damaged, applied = damage_images(list(clean), range(len(clean)), config, seed, name)
    return (np.stack(damaged) if damaged else np.empty_like(clean)), applied


def build_damage_sets(
    clean: np.ndarray, config: Any, seed: int, per_op: Sequence[str] | None = None
) -> dict[str, EvalSet]:
    """The mixed set (``config``) and one single-op set per name in ``per_op``.

    ``clean``: uint8 ``(N, S, S)``. Deterministic in ``seed`` and the set name.
    """
    sets: dict[str, EvalSet] = {}
    damaged, applied = _damage_set(MAIN_SET, config, clean, seed)
    k = config.to_dict()["k"]
    sets[MAIN_SET] = EvalSet(MAIN_SET, list(config.ops), k, damaged, applied)
    for op in per_op or ():
        if op == MAIN_SET:
            continue
        cfg = config.only(op)
        damaged, applied = _damage_set(op, cfg, clean, seed)
        sets[op] = EvalSet(op, [op], 1, damaged, applied)
    return sets


# --------------------------------------------------------------------------- evaluation
def _quality(restored: np.ndarray, clean: np.ndarray) -> dict[str, float]:
    """The mean over the glyphs of every registered metric (:data:`METRICS`), by name."""
    return {name: float(np.mean(m.fn(restored, clean))) for name, m in METRICS.items()}


def _progress(total: int, desc: str) -> Any:
    from tqdm import tqdm

    return tqdm(total=total, desc=desc, unit="set", file=sys.stderr, disable=None, leave=False)


def evaluate(
    clean: np.ndarray,
    reference: np.ndarray,
    chars: Sequence[str],
    sets: dict[str, EvalSet],
    candidates: Sequence[Candidate],
    judge: Any | None = None,
    latency: bool = True,
    batch_size: int = 64,
    settings: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], dict[str, np.ndarray]]:
    """Restore every set with every candidate and score it.

    ``clean``, ``reference``: uint8 ``(N, S, S)``; ``chars``: the N expected characters; ``judge``:
    an :class:`~restoreae.evaluate.ocr.OcrJudge` or None (no OCR). Returns the results dict (see
    :mod:`restoreae.evaluate.report`) and the restored main-set glyphs per candidate.
    """
    results: dict[str, Any] = {
        "format": 1,
        "settings": dict(settings or {}),
        "main_set": MAIN_SET,
        "sets": {},
        "models": [],
    }
    ocr_clean = None
    if judge is not None:
        ocr_clean = float(judge.correct(list(clean), chars).mean())
    damaged_correct: dict[str, np.ndarray] = {}
    for name, s in sets.items():
        info: dict[str, Any] = {
            "ops": s.ops,
            "k": s.k,
            "n": len(s.damaged),
            "ocr_clean": ocr_clean,
            "ocr_damaged": None,
        }
        if name == MAIN_SET:
            counts: dict[str, int] = {}
            for ops in s.applied:
                for op in ops:
                    counts[op] = counts.get(op, 0) + 1
            info["applied_counts"] = counts
        if judge is not None:
            damaged_correct[name] = judge.correct(list(s.damaged), chars)
            info["ocr_damaged"] = float(damaged_correct[name].mean())
        results["sets"][name] = info

    restored_main: dict[str, np.ndarray] = {}
    bar = _progress(len(candidates) * len(sets), "eval")
    for cand in candidates:
        entry: dict[str, Any] = {
            "name": cand.name,
            "kind": cand.kind,
            "source": cand.source,
            "params": cand.params,
            "gflops": cand.gflops,
            "latency_ms": None,
            "sets": {},
            **cand.extra,
        }
        for name, s in sets.items():
            bar.set_description(f"{cand.name} / {name}")
            restored = cand.restore(s.damaged, reference)
            q: dict[str, Any] = _quality(restored, clean)
            q["ocr"] = None
            q["readability_recovered"] = None
            if judge is not None:
                if cand.name == "identity" and cand.kind == "baseline":
                    correct = damaged_correct[name]  # identity output == damaged input
                else:
                    correct = judge.correct(list(restored), chars)
                q["ocr"] = float(correct.mean())
                if ocr_clean:
                    q["readability_recovered"] = q["ocr"] / ocr_clean
            entry["sets"][name] = q
            if name == MAIN_SET:
                restored_main[cand.name] = restored
            bar.update(1)
        if latency:
            main = sets[MAIN_SET]
            entry["latency_ms"] = measure_latency(
                cand.cpu_restore, main.damaged, reference, batch_size
            )
        results["models"].append(entry)
    bar.close()
    return results, restored_main


def grid_image(
    sets: dict[str, EvalSet],
    clean: np.ndarray,
    reference: np.ndarray,
    restored: dict[str, np.ndarray],
    rows: int = GRID_ROWS,
) -> np.ndarray:
    """The seed's picture for ``rows`` evenly spaced glyphs of the main set: damaged | standard
    font | ground truth | one restored column per candidate (identity left out)."""
    n = len(clean)
    idx = np.unique(np.linspace(0, n - 1, num=min(rows, n)).round().astype(int))
    columns = {
        "damaged": sets[MAIN_SET].damaged[idx],
        "standard": reference[idx],
        "truth": clean[idx],
    }
    for name, r in restored.items():
        if name != "identity":
            columns[name] = r[idx]
    return make_grid(columns)


def write_outputs(out: Path, results: dict[str, Any], grid: np.ndarray | None) -> dict[str, Path]:
    """Write metrics.json, leaderboard.md, leaderboard.json, grid.png and report.html into ``out``
    (atomically); returns their paths by name."""
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    rows = rep.leaderboard_rows(results)
    md = (
        "# Leaderboard\n\n"
        + rep.leaderboard_markdown(results)
        + "\n## Per damage type\n\n"
        + rep.per_damage_markdown(results)
    )
    png = encode_png(grid) if grid is not None else None
    paths = {
        "metrics.json": atomic_write(out / "metrics.json", results_json(results)),
        "leaderboard.md": atomic_write(out / "leaderboard.md", md.encode("utf-8")),
        "leaderboard.json": atomic_write(
            out / "leaderboard.json",
            results_json(
                {"main_set": results["main_set"], "settings": results["settings"], "rows": rows}
            ),
        ),
    }
    if png is not None:
        paths["grid.png"] = atomic_write(out / "grid.png", png)
    paths["report.html"] = atomic_write(
        out / "report.html", rep.render_html(results, png).encode("utf-8")
    )
    return paths


def eval_command(args: argparse.Namespace) -> int:
    """Entry point of ``restoreae eval`` (arguments: see ``restoreae eval --help``)."""
    import torch

    from restoreae.damage.registry import list_damage_ops
    from restoreae.data.corpus import Corpus

    t_start = time.perf_counter()
    if not Path(args.data).is_dir():
        raise DataError(f"--data: corpus folder not found: {args.data}")
    corpus = Corpus.open(args.data)
    device = resolve_device(args.device)
    from restoreae.damage.pipeline import DamageConfig

    config = DamageConfig.resolve(args.damage, where="--damage")
    candidates: list[Candidate] = [] if args.no_baselines else baselines()
    for spec in args.checkpoints:
        candidates.append(
            load_candidate(spec, device, args.batch_size, corpus.manifest.get("reference"))
        )
    if not candidates:
        raise RestoreAEError("nothing to evaluate: give checkpoints or drop --no-baselines")
    seen: dict[str, int] = {}
    for c in candidates:
        if c.name in seen:
            seen[c.name] += 1
            c.name = f"{c.name}#{seen[c.name]}"
        else:
            seen[c.name] = 1

    writers, char_idx = sample_pairs(corpus, args.split, args.num, args.seed)
    clean = np.asarray(corpus.glyphs[writers, char_idx], dtype=np.uint8)
    reference = np.asarray(corpus.reference[char_idx], dtype=np.uint8)
    chars = [corpus.chars[i] for i in char_idx]
    per_op = [] if getattr(args, "no_per_op", False) else list_damage_ops()
    sets = build_damage_sets(clean, config, args.seed, per_op)

    judge = None
    if not args.no_ocr:
        from restoreae.evaluate.ocr import OcrJudge

        width = int(getattr(args, "ocr_width", 320))
        if width < 16:
            raise RestoreAEError(f"--ocr-width must be at least 16, got {width}")
        judge = OcrJudge(line_width=width)

    settings = {
        "corpus": str(args.data),
        "split": args.split,
        "num": len(clean),
        "seed": args.seed,
        "size": int(corpus.size),
        "damage": config.to_dict(),
        "damage_file": str(args.damage) if args.damage else None,
        "device": str(device),
        "batch_size": args.batch_size,
        "ocr": judge is not None,
        "ocr_width": int(getattr(args, "ocr_width", 320)) if judge is not None else None,
        "per_op_sets": per_op,
        "torch": torch.__version__,
        "torch_threads": torch.get_num_threads(),
    }
    results, restored = evaluate(
        clean,
        reference,
        chars,
        sets,
        candidates,
        judge=judge,
        latency=not getattr(args, "no_latency", False),
        batch_size=args.batch_size,
        settings=settings,
    )
    results["settings"]["seconds"] = round(time.perf_counter() - t_start, 2)
    grid = grid_image(sets, clean, reference, restored)
    paths = write_outputs(Path(args.out), results, grid)
    print(rep.leaderboard_markdown(results))
    print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return 0
