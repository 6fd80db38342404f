"""The quality table: real writers and font writers, restored through the public restore path.

``restoreae eval --suite`` (and ``restoreae eval --real PATH``) run :func:`quality_command`:

1. **Sets** (:class:`~restoreae.evaluate.sets.ImageSet`, built in :mod:`restoreae.evaluate.sets`): the font corpus's held-out writers (``--data``, split
   ``--split``; corpus glyphs used as they are: uint8 S×S, white on black), the labelled real
   images of ``--real-dev`` (its ``labels.csv``; one set per ``set`` column value) and of every
   ``--real`` (a labels CSV or a seed-layout folder), each normalised into a clean ground truth by
   :func:`restoreae.evaluate.realset.normalise` at its own size (64–256 px). ``--num`` images per
   set, drawn deterministically (:func:`restoreae.evaluate.realset.sample_items`; for the corpus
   :func:`restoreae.evaluate.sets.sample_pairs`).
2. **Damage** (:class:`Condition`): ``none`` (undamaged: the "do no harm" check), each config of
   ``--damage`` (presets ``seed``, ``real`` or YAML files; the suite's default is ``seed,real``)
   and, for the per-op table, each op of ``--per-op-ops`` alone (``k = 1``). The numpy
   :class:`~restoreae.damage.pipeline.DamagePipeline` damages image ``id`` of a set under
   condition ``name`` with ``default_rng([seed, crc32(name), id, attempt])`` (as
   :mod:`~restoreae.evaluate.runner` does), drawing the next ``attempt`` (up to 8) when the damage
   left the image unchanged. ``id`` is the image's position in its whole labelled list (for the
   corpus ``writer × n_chars + char``), so an image's damage does not depend on ``--num``.
3. **Restoration** through :meth:`restoreae.restore.api.Restorer.restore_many` — the path of
   ``restoreae restore`` — on the uint8 images at their own size, polarity ``auto``, once with the
   characters (reference channel) and once with ``chars=None`` (empty reference channel). A model
   without a reference channel is run once ("no reference").
4. **Scores** against the clean image (:mod:`restoreae.evaluate.metrics`: PSNR, SSIM; means over
   images, ``inf`` when identical) and the OCR judge (:class:`~restoreae.evaluate.ocr.OcrJudge`;
   a reading counts when it equals ``char`` or ``alt``); readability recovered = OCR / OCR of the
   clean images of the same set. For ``none`` the restored images are scored against the input.

Outputs (:mod:`restoreae.evaluate.quality_report`): ``quality.md``, ``quality.json`` and
``quality-images.csv`` (one row per image × condition × variant) in ``--out``, written atomically;
the Markdown is printed on stdout.
"""

from __future__ import annotations

import argparse
import sys
import time
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from restoreae.errors import DataError, RestoreAEError
from restoreae.evaluate.metrics import psnr, ssim
from restoreae.evaluate.ocr import normalize_reading
from restoreae.evaluate.sets import (
    NONE,
    Condition,
    ImageSet,
    damage_images,
    font_set,
    make_conditions,
    real_sets,
)

__all__ = [
    "ImageSet",
    "Condition",
    "SUITE_NUM",
    "VARIANTS",
    "font_set",
    "real_sets",
    "make_conditions",
    "damage_images",
    "ocr_correct",
    "reference_chars",
    "evaluate_sets",
    "default_real_dev",
    "quality_command",
]

#: Default ``--num`` of the suite (images per set). Measured cost with the shipped model: about
#: 2 CPU-seconds per image of a set (9 OCR readings at width 320, 14 restores, 35 PSNR/SSIM), so
#: 3 sets × 80 images ≈ 480 CPU-seconds: under 10 minutes on 2 cores (an estimate from CPU
#: time on a saturated machine, see docs/RESULTS.md).
SUITE_NUM = 80
#: Restored variants, in table order: ``input`` is the damaged input itself.
VARIANTS = ("input", "restored_ref", "restored_noref")


class RestorerLike(Protocol):
    """What the evaluation needs of a restorer: :class:`restoreae.restore.api.Restorer`'s
    ``restore_many`` (uint8 arrays in, uint8 arrays of the same shapes out)."""

    def restore_many(
        self, images: Sequence[np.ndarray], chars: Sequence[str | None] | None, batch_size: int
    ) -> list[np.ndarray]: ...


# --------------------------------------------------------------------------- scoring
def ocr_correct(
    judge: Any, images: Sequence[np.ndarray], chars: Sequence[str], alts: Sequence[str]
) -> tuple[np.ndarray, list[str]]:
    """Readings of ``judge`` (an :class:`~restoreae.evaluate.ocr.OcrJudge`) and whether each is
    ``chars[i]`` or a non-empty ``alts[i]`` (after :func:`normalize_reading`): bool ``(N,)``."""
    readings = [normalize_reading(r) for r in judge.read(list(images))]
    ok = np.array(
        [r == c or (bool(a) and r == a) for r, c, a in zip(readings, chars, alts, strict=True)],
        dtype=bool,
    )
    return ok, readings


def _image_scores(
    outputs: Sequence[np.ndarray], truth: Sequence[np.ndarray]
) -> tuple[np.ndarray, np.ndarray]:
    p = np.empty(len(outputs))
    s = np.empty(len(outputs))
    for i, (o, t) in enumerate(zip(outputs, truth, strict=True)):
        if o.shape != t.shape or o.dtype != np.uint8:
            raise RestoreAEError(
                f"restorer returned {o.dtype} {o.shape} for a uint8 {t.shape} image"
            )
        p[i] = psnr(o, t)
        s[i] = ssim(o, t)
    return p, s


def _restore(
    restorer: RestorerLike, images: list[np.ndarray], chars: list[str] | None, batch_size: int
) -> list[np.ndarray]:
    with warnings.catch_warnings():
        # chars=None is deliberate here: the "no reference" variant.
        warnings.filterwarnings("ignore", message="no character given")
        return [np.asarray(o) for o in restorer.restore_many(images, chars, batch_size=batch_size)]


def reference_chars(restorer: Any, chars: Sequence[str]) -> tuple[list[str | None], list[str]]:
    """``chars`` with None where the restorer's reference font cannot draw the character (such
    an image is restored with an empty reference channel, as a user would); also the characters
    concerned. Restorers without a ``reference`` method get ``chars`` unchanged."""
    check = getattr(restorer, "reference", None)
    if check is None:
        return list(chars), []
    usable: dict[str, bool] = {}
    for c in set(chars):
        try:
            check(c)
            usable[c] = True
        except RestoreAEError:
            usable[c] = False
    return [c if usable[c] else None for c in chars], sorted(
        c for c, ok in usable.items() if not ok
    )


def _summary(
    p: np.ndarray | None, s: np.ndarray | None, ok: np.ndarray | None, ocr_clean: float | None
) -> dict[str, Any]:
    ocr = float(ok.mean()) if ok is not None else None
    return {
        "psnr": float(np.mean(p)) if p is not None else None,
        "ssim": float(np.mean(s)) if s is not None else None,
        "ocr": ocr,
        "readability_recovered": ocr / ocr_clean if ocr is not None and ocr_clean else None,
    }


def evaluate_sets(
    sets: Sequence[ImageSet],
    conditions: Sequence[Condition],
    restorer: RestorerLike,
    judge: Any | None = None,
    seed: int = 0,
    batch_size: int = 64,
    uses_reference: bool = True,
    progress: bool = True,
    per_op_ocr: bool = False,
    on_set: Callable[[dict[str, Any], list[dict[str, Any]]], None] | None = None,
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Damage, restore and score every set under every condition (see the module docstring).

    Returns ``(summary, rows)``: ``summary[set] = {"n", "source", "ocr_clean", "seconds",
    "conditions": {cond: {"kind", "ops", "k", "variants": {variant: {"psnr", "ssim", "ocr",
    "readability_recovered"}}}}}`` (``input`` is absent for ``none``) and one per-image row per
    image × condition × variant (plus a ``clean`` row per image). ``judge``: None → no OCR; the
    one-op conditions are read only with ``per_op_ocr`` (OCR dominates the run time).
    ``on_set(summary, rows)`` is called after each set with what is done so far.
    """
    from tqdm import tqdm

    variants = ["restored_ref", "restored_noref"] if uses_reference else ["restored_noref"]
    summary: dict[str, Any] = {}
    rows: list[dict[str, Any]] = []
    bar = tqdm(
        total=len(sets) * len(conditions),
        desc="quality",
        unit="cond",
        file=sys.stderr,
        disable=not progress or None,
        leave=False,
    )
    for iset in sets:
        t0 = time.perf_counter()
        if len(iset) == 0:
            raise DataError(f"set {iset.name!r} has no images")
        clean = iset.images
        ocr_clean = None
        ok_clean = None
        if judge is not None:
            ok_clean, read_clean = ocr_correct(judge, clean, iset.chars, iset.alts)
            ocr_clean = float(ok_clean.mean())
        base = [
            {
                "set": iset.name,
                "id": iset.ids[i],
                "path": iset.paths[i],
                "char": iset.chars[i],
                "alt": iset.alts[i],
                "size": int(clean[i].shape[0]),
            }
            for i in range(len(iset))
        ]
        for i, b in enumerate(base):
            rows.append(
                {
                    **b,
                    "damage": NONE,
                    "ops": "",
                    "variant": "clean",
                    "psnr": None,
                    "ssim": None,
                    "reading": read_clean[i] if judge is not None else None,
                    "correct": bool(ok_clean[i]) if judge is not None else None,
                }
            )
        ref_chars, no_ref = reference_chars(restorer, iset.chars) if uses_reference else ([], [])
        entry: dict[str, Any] = {
            "n": len(iset),
            "source": iset.source,
            "ocr_clean": ocr_clean,
            **iset.info,
            "no_reference_font": {
                "chars": "".join(no_ref),
                "images": sum(c is None for c in ref_chars),
            },
            "conditions": {},
        }
        for cond in conditions:
            bar.set_description(f"{iset.name} / {cond.name}")
            if cond.config is None:
                inputs, applied = list(clean), [[] for _ in clean]
            else:
                inputs, applied = damage_images(clean, iset.ids, cond.config, seed, cond.name)
            outputs: dict[str, list[np.ndarray]] = {}
            if cond.config is not None:
                outputs["input"] = inputs
            for v in variants:
                chars = ref_chars if v == "restored_ref" else None
                outputs[v] = _restore(restorer, inputs, chars, batch_size)
            cinfo: dict[str, Any] = {"kind": cond.kind, **cond.info, "variants": {}}
            if cond.kind == "main" and cond.config is not None:
                counts: dict[str, int] = {}
                for ops in applied:
                    for op in ops:
                        counts[op] = counts.get(op, 0) + 1
                cinfo["applied_counts"] = counts
            for v, outs in outputs.items():
                p, s = _image_scores(outs, clean)
                ok = readings = None
                if judge is not None and (cond.kind == "main" or per_op_ocr):
                    ok, readings = ocr_correct(judge, outs, iset.chars, iset.alts)
                cinfo["variants"][v] = _summary(p, s, ok, ocr_clean)
                for i, b in enumerate(base):
                    rows.append(
                        {
                            **b,
                            "damage": cond.name,
                            "ops": "+".join(applied[i]),
                            "variant": v,
                            "psnr": float(p[i]),
                            "ssim": float(s[i]),
                            "reading": readings[i] if readings is not None else None,
                            "correct": bool(ok[i]) if ok is not None else None,
                        }
                    )
            entry["conditions"][cond.name] = cinfo
            bar.update(1)
        entry["seconds"] = round(time.perf_counter() - t0, 2)
        summary[iset.name] = entry
        if on_set is not None:
            on_set(summary, rows)
    bar.close()
    return summary, rows


# --------------------------------------------------------------------------- command
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
