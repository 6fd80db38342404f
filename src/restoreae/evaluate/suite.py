"""``restoreae eval --suite`` / ``--real``: the quality table's sets and conditions from the
arguments, run by :func:`restoreae.evaluate.quality.evaluate_sets` and written by
:mod:`restoreae.evaluate.quality_report`.

The suite's sets: the font corpus's held-out writers (``--data``, default ``data/corpus128``),
the labelled real images of ``--real-dev`` (default ``../shared/real-dev`` next to the repository)
and of every ``--real``; its conditions: ``none``, each ``--damage`` config (default
``seed,real``) and each op of ``--per-op-ops`` alone. Results are rewritten after every set, so a
long run leaves partial tables behind.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path
from typing import Any

from restoreae.errors import DataError, RestoreAEError
from restoreae.evaluate.quality import evaluate_sets
from restoreae.evaluate.sets import ImageSet, font_set, make_conditions, real_sets

__all__ = ["SUITE_NUM", "default_real_dev", "quality_command"]

#: Default ``--num`` of the suite (images per set). Measured cost with the shipped model: about
#: 2 CPU-seconds per image of a set (9 OCR readings at width 320, 14 restores, 35 PSNR/SSIM), so
#: 3 sets × 80 images ≈ 480 CPU-seconds: under 10 minutes on 2 cores (an estimate from CPU
#: time on a saturated machine, see docs/RESULTS.md).
SUITE_NUM = 80


def default_real_dev() -> Path | None:
    """``../shared/real-dev`` next to the repository holding this package (an editable install),
    or next to the current folder; None when neither exists."""
    import restoreae

    repo = Path(restoreae.__file__).resolve().parents[2]
    for cand in (
        repo.parent / "shared" / "real-dev",
        Path.cwd().resolve().parent / "shared" / "real-dev",
    ):
        if cand.is_dir():
            return cand
    return None


def _per_op_list(spec: str | None) -> list[str]:
    from restoreae.damage.pipeline import PRESETS

    if spec is None or spec == "":
        return []
    if spec in PRESETS:
        return list(PRESETS[spec]["ops"])
    if spec == "all":
        from restoreae.damage.registry import list_damage_ops

        return list(list_damage_ops())
    return [s.strip() for s in spec.split(",") if s.strip()]


def _device_name(spec: str) -> str:
    from restoreae.evaluate.candidates import resolve_device

    return str(resolve_device(spec))


def quality_command(args: argparse.Namespace) -> int:
    """``restoreae eval --suite`` / ``restoreae eval --real PATH`` (see ``restoreae eval --help``)."""
    from restoreae.evaluate import quality_report as qrep
    from restoreae.restore.api import Restorer

    t_start = time.perf_counter()
    if args.checkpoints:
        raise RestoreAEError(
            "--suite / --real restore through the Restorer: give the model with --model "
            f"(got positional {' '.join(args.checkpoints)})"
        )
    suite = bool(args.suite)
    num = args.num if args.num is not None else SUITE_NUM
    if num <= 0:
        raise RestoreAEError(f"--num must be positive, got {num}")
    notes: list[str] = []

    # Where the sets come from.
    data = args.data
    if data is None and suite:
        data = Path("data/corpus128")
        if not data.is_dir():
            notes.append(
                f"font corpus {data} not found: font set skipped (build it or pass --data)"
            )
            data = None
    elif data is not None and str(data) == "none":
        data = None
    real_paths: list[tuple[Path, str]] = []
    if suite:
        rd = args.real_dev
        if rd is None:
            found = default_real_dev()
            if found is None:
                notes.append(
                    "real-dev not found next to the repository: real-dev sets skipped (pass --real-dev)"
                )
            else:
                real_paths.append((found, "real-dev/"))
        elif str(rd) != "none":
            if not Path(rd).exists():
                raise DataError(f"--real-dev: not found: {rd}")
            real_paths.append((Path(rd), "real-dev/"))
    real_paths += [(Path(p), "") for p in args.real or []]

    damage = args.damage if args.damage is not None else ("seed,real" if suite else "seed")
    damage_specs = [d.strip() for d in str(damage).split(",") if d.strip()]
    per_op = [] if args.no_per_op else _per_op_list(args.per_op_ops)
    conditions = make_conditions(damage_specs, per_op)

    sets: list[ImageSet] = []
    if data is not None:
        sets.append(font_set(data, args.split, num, args.seed))
    for path, prefix in real_paths:
        sets.extend(real_sets(path, num, args.seed, prefix))
    if not sets:
        raise RestoreAEError(
            "no evaluation set: give --data CORPUS, --real PATH or --real-dev PATH"
        )

    device = _device_name(args.device)
    restorer = Restorer(args.model, backend=args.backend, device=device)
    judge = None
    if not args.no_ocr:
        from restoreae.evaluate.ocr import OcrJudge

        if args.ocr_width < 16:
            raise RestoreAEError(f"--ocr-width must be at least 16, got {args.ocr_width}")
        judge = OcrJudge(line_width=args.ocr_width)

    out = Path(args.out or "quality-report")

    def results_of(summary: dict[str, Any], done: bool) -> dict[str, Any]:
        set_notes = [
            f"{name}: the model's reference font cannot draw {e['no_reference_font']['chars']} "
            f"({e['no_reference_font']['images']} images): restored with an empty reference channel"
            for name, e in summary.items()
            if e["no_reference_font"]["images"]
        ]
        pending = [s.name for s in sets if s.name not in summary]
        if pending and not done:
            set_notes.append(f"partial results: still running {', '.join(pending)}")
        return {
            "format": 1,
            "settings": {**settings, "seconds": round(time.perf_counter() - t_start, 2)},
            "notes": notes + set_notes,
            "sets": summary,
        }

    import torch

    settings = {
        "model": str(restorer.model_path) if restorer.model_path else str(args.model),
        "backend": restorer.backend_name,
        "device": device,
        "uses_reference": restorer.uses_reference,
        "data": str(data) if data is not None else None,
        "split": args.split,
        "real": [str(p) for p, _ in real_paths],
        "num": num,
        "seed": args.seed,
        "damage": damage_specs,
        "per_op": per_op,
        "ocr": judge is not None,
        "ocr_width": args.ocr_width if judge is not None else None,
        "per_op_ocr": bool(judge is not None and args.per_op_ocr),
        "batch_size": args.batch_size,
        "torch_threads": torch.get_num_threads(),
        "argv": list(sys.argv[1:]),
    }
    summary, rows = evaluate_sets(
        sets,
        conditions,
        restorer,
        judge=judge,
        seed=args.seed,
        batch_size=args.batch_size,
        uses_reference=restorer.uses_reference,
        per_op_ocr=args.per_op_ocr,
        on_set=lambda sm, rw: qrep.write_quality(out, results_of(sm, False), rw),
    )
    results = results_of(summary, True)
    for n in results["notes"]:
        print(f"note: {n}", file=sys.stderr)
    paths = qrep.write_quality(out, results, rows)
    print(qrep.quality_markdown(results))
    print(f"wrote {', '.join(str(p) for p in paths.values())}", file=sys.stderr)
    return 0
