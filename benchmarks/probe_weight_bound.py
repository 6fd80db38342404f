"""How much of the seed damage's PSNR loss is stroke weight, and could it be undone?

    PYTHONPATH=src .venv/bin/python benchmarks/probe_weight_bound.py --data data/corpus128 \\
        [--split heldout-writers] [--num 100] [--seed 0] [--model default] \\
        [--real-dev ../shared/real-dev] [--ops erode_dilate,rectangles]

The glyphs and damage are exactly those of the quality suite (``restoreae eval --suite``: the
font set of ``--split`` and, with ``--real-dev``, the real-dev sets (evaluation only), ``--num``
images each, seed damage and each of ``--ops`` alone (default ``erode_dilate``), seeded per
image). For every image it scores (PSNR dB against the clean glyph, per image, capped at 100 dB,
then averaged):

* the damaged input;
* ``--model`` restoring it through the :class:`~restoreae.restore.api.Restorer` with the
  character (the suite's "restored, with reference" row);
* an **oracle** that knows the clean glyph and applies the best single morphological inverse
  (dilation or erosion by a square kernel of 2–7 px, or nothing) to the damaged glyph, and to the
  model's restoration: what undoing a weight change alone gives, and what the model would score if
  its strokes had the clean glyph's weight.

Seed-damaged images are split by whether ``erode_dilate`` is among their three ops: the seed's
erosion/dilation changes every stroke's weight, which a model that keeps each writer's own weight
(stroke-weight synthetic writers, the outline-tolerant mask) leaves as it finds it.
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

from restoreae.evaluate.metrics import psnr as psnr_db  # noqa: E402
from restoreae.evaluate.quality import PSNR_MEAN_CAP_DB, reference_chars  # noqa: E402
from restoreae.evaluate.sets import (  # noqa: E402
    Condition,
    ImageSet,
    damage_images,
    font_set,
    make_conditions,
    real_sets,
)
from restoreae.restore.api import Restorer  # noqa: E402

KERNELS = range(2, 8)


def psnr(a: np.ndarray, b: np.ndarray) -> float:
    """PSNR (dB) of two uint8 images, capped as the quality suite caps it in its means."""
    return min(PSNR_MEAN_CAP_DB, float(psnr_db(a, b)))


def oracle_inverse(damaged: np.ndarray, clean: np.ndarray) -> float:
    """PSNR of the best of: the damaged glyph as it is, or dilated / eroded by a square kernel
    of :data:`KERNELS` px (uint8 (H, W), white ink on black), chosen against ``clean``."""
    best = psnr(damaged, clean)
    for k in KERNELS:
        kernel = np.ones((k, k), np.uint8)
        best = max(best, psnr(cv2.dilate(damaged, kernel), clean))
        best = max(best, psnr(cv2.erode(damaged, kernel), clean))
    return best


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--data", default="data/corpus128")
    ap.add_argument("--split", default="heldout-writers")
    ap.add_argument("--num", type=int, default=100)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="default", help="model spec as for restore --model")
    ap.add_argument("--ops", default="erode_dilate", help="one-op conditions, comma-separated")
    ap.add_argument("--real-dev", default=None, help="also the real-dev sets (evaluation only)")
    args = ap.parse_args(argv)

    sets = [font_set(args.data, args.split, args.num, args.seed)]
    if args.real_dev:
        sets += real_sets(args.real_dev, args.num, args.seed, "real-dev/")
    restorer = Restorer(args.model)
    conditions = [c for c in make_conditions(["seed"], args.ops.split(",")) if c.config is not None]
    print(f"seed {args.seed}, model {args.model}; PSNR dB (mean over images)\n")
    print(
        "| set | damage | images | n | input | input + oracle weight | model, with the character "
        "| model + oracle weight |"
    )
    print("|---|---|---|---:|---:|---:|---:|---:|")
    for images, cond in itertools.product(sets, conditions):
        report(images, cond, restorer, args.seed)
    return 0


def report(images: ImageSet, cond: Condition, restorer: Restorer, seed: int) -> None:
    """Print the table rows of one set under one damage condition."""
    chars, _ = reference_chars(restorer, images.chars)
    name = cond.name
    damaged, applied = damage_images(images.images, images.ids, cond.config, seed, name)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        restored = restorer.restore_many(damaged, chars)
    rows = np.array(
        [
            (psnr(d, c), oracle_inverse(d, c), psnr(r, c), oracle_inverse(r, c))
            for c, d, r in zip(images.images, damaged, restored, strict=True)
        ]
    )
    has_ed = np.array(["erode_dilate" in ops for ops in applied])
    groups = {"all": np.ones(len(rows), bool)}
    if has_ed.any() and not has_ed.all():
        groups |= {"with erode_dilate": has_ed, "without erode_dilate": ~has_ed}
    for label, sel in groups.items():
        if sel.any():
            m = rows[sel].mean(axis=0)
            print(
                f"| {images.name} | {name} | {label} | {int(sel.sum())} | {m[0]:.2f} | {m[1]:.2f} "
                f"| {m[2]:.2f} | {m[3]:.2f} |"
            )


if __name__ == "__main__":
    raise SystemExit(main())
