"""The quality table: real writers and font writers, restored through the public restore path.

``restoreae eval --suite`` (and ``restoreae eval --real PATH``) run
:func:`restoreae.evaluate.suite.quality_command`, which picks the sets and conditions below from
its arguments and calls :func:`evaluate_sets`:

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
4. **Scores** against the clean image (the metrics of the compact tables,
   :func:`restoreae.evaluate.metrics.table_metrics`: PSNR, SSIM; means over
   images, each image's PSNR capped at :data:`PSNR_MEAN_CAP_DB` in the mean — an image returned
   identical has PSNR ``inf``, which would make the mean ``inf`` — and uncapped in the per-image
   rows) and the OCR judge (:class:`~restoreae.evaluate.ocr.OcrJudge`;
   a reading counts when it equals ``char`` or ``alt``); readability recovered = OCR / OCR of the
   clean images of the same set. For ``none`` the restored images are scored against the input.

Outputs (:mod:`restoreae.evaluate.quality_report`): ``quality.md``, ``quality.json`` and
``quality-images.csv`` (one row per image × condition × variant) in ``--out``, written atomically;
the Markdown is printed on stdout.
"""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np

from restoreae.errors import DataError, RestoreAEError
from restoreae.evaluate.metrics import table_metrics
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
    "VARIANTS",
    "font_set",
    "real_sets",
    "make_conditions",
    "damage_images",
    "ocr_correct",
    "reference_chars",
    "evaluate_sets",
]

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
) -> dict[str, np.ndarray]:
    """Per image, each metric of the quality table (:func:`table_metrics`): name → ``(N,)``."""
    metrics = table_metrics()
    scores = {m.name: np.empty(len(outputs)) for m in metrics}
    for i, (o, t) in enumerate(zip(outputs, truth, strict=True)):
        if o.shape != t.shape or o.dtype != np.uint8:
            raise RestoreAEError(
                f"restorer returned {o.dtype} {o.shape} for a uint8 {t.shape} image"
            )
        for m in metrics:
            scores[m.name][i] = m.fn(o, t)
    return scores


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


#: Cap of one image's PSNR in a set's mean (dB): an identical image (``inf``) counts as this.
PSNR_MEAN_CAP_DB = 100.0


def _summary(
    scores: dict[str, np.ndarray], ok: np.ndarray | None, ocr_clean: float | None
) -> dict[str, Any]:
    ocr = float(ok.mean()) if ok is not None else None
    capped = {n: np.minimum(v, PSNR_MEAN_CAP_DB) if n == "psnr" else v for n, v in scores.items()}
    return {
        **{name: float(np.mean(v)) for name, v in capped.items()},
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
    "readability_recovered"}}}}}`` (the metrics of :func:`~restoreae.evaluate.metrics.table_metrics`;
    ``input`` is absent for ``none``) and one per-image row per
    image × condition × variant (plus a ``clean`` row per image). ``judge``: None → no OCR; the
    one-op conditions are read only with ``per_op_ocr`` (OCR dominates the run time).
    ``on_set(summary, rows)`` is called after each set with what is done so far.
    """
    from tqdm import tqdm

    variants = ["restored_ref", "restored_noref"] if uses_reference else ["restored_noref"]
    metric_names = [m.name for m in table_metrics()]
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
                    **dict.fromkeys(metric_names),
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
                scores = _image_scores(outs, clean)
                ok = readings = None
                if judge is not None and (cond.kind == "main" or per_op_ocr):
                    ok, readings = ocr_correct(judge, outs, iset.chars, iset.alts)
                cinfo["variants"][v] = _summary(scores, ok, ocr_clean)
                for i, b in enumerate(base):
                    rows.append(
                        {
                            **b,
                            "damage": cond.name,
                            "ops": "+".join(applied[i]),
                            "variant": v,
                            **{name: float(vals[i]) for name, vals in scores.items()},
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
