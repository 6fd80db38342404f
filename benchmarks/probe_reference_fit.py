"""How far is the reference glyph from the writer's, as drawn and fitted to the glyph's ink box?

    .venv/bin/python benchmarks/probe_reference_fit.py --data data/corpus128 \\
        [--real-dev ../shared/real-dev] [--num 300] [--seed 0] [--model default]

The glyphs are the quality suite's (``restoreae eval --suite``: the held-out font writers and,
with ``--real-dev``, the real-dev sets — evaluation only — ``--num`` each, seed ``--seed``),
brought to the model's size as the restore path brings them (``Restorer.prepare``), then damaged
there with the seed's damage, seeded per image as the suite seeds it (the suite damages at the
image's own size, before preparing). The reference is the one ``--model`` is given
(``Restorer.reference``). Printed per set: the mean symmetric chamfer distance (px at the model's
size) between the clean glyph's ink and the reference's ink (> 127), for the reference as drawn,
fitted to the clean glyph's ink box (the best a box fit can do) and fitted to the damaged glyph's
(what ``data.reference_fit: box`` does; :mod:`restoreae.data.reference_fit`).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import cv2
import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from restoreae.data.reference_fit import fit_reference_np  # noqa: E402
from restoreae.errors import RestoreAEError  # noqa: E402
from restoreae.evaluate.sets import damage_images, font_set, make_conditions, real_sets  # noqa: E402
from restoreae.restore.api import Restorer  # noqa: E402


def chamfer(a: np.ndarray, b: np.ndarray) -> float:
    """Mean of the two directed mean distances between the ink (> 127) of uint8 a and b (px)."""
    ink_a, ink_b = a > 127, b > 127
    if not ink_a.any() or not ink_b.any():
        return float("nan")
    to_b = cv2.distanceTransform((~ink_b).astype(np.uint8), cv2.DIST_L2, 3)
    to_a = cv2.distanceTransform((~ink_a).astype(np.uint8), cv2.DIST_L2, 3)
    return 0.5 * float(to_b[ink_a].mean() + to_a[ink_b].mean())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--data", required=True, help="corpus folder (held-out font writers)")
    ap.add_argument("--real-dev", default=None, help="labelled real images (evaluation only)")
    ap.add_argument("--num", type=int, default=300)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--model", default="default")
    args = ap.parse_args()

    restorer = Restorer.from_pretrained(args.model)
    sets = [font_set(args.data, "heldout-writers", args.num, args.seed)]
    if args.real_dev:
        sets += real_sets(args.real_dev, args.num, args.seed, "real-dev/")
    seed_damage = next(c for c in make_conditions(["seed"], []) if c.name == "seed")
    u8 = np.float32(255.0)
    print(f"{'set':32} {'n':>4} {'as drawn':>9} {'fit clean':>10} {'fit damaged':>12}  (px)")
    for s in sets:
        clean = [restorer.prepare(img, "light-on-dark").glyph for img in s.images]
        damaged, _ = damage_images(clean, s.ids, seed_damage.config, args.seed, seed_damage.name)
        rows = []
        for c, d, char in zip(clean, damaged, s.chars, strict=True):
            try:
                ref = restorer.reference(char).astype(np.float32) / u8
            except RestoreAEError:
                continue
            fit_c = fit_reference_np(ref, c.astype(np.float32) / u8)
            fit_d = fit_reference_np(ref, d.astype(np.float32) / u8)
            rows.append([chamfer(c, np.rint(r * u8).astype(np.uint8)) for r in (ref, fit_c, fit_d)])
        m = np.nanmean(np.array(rows), axis=0)
        print(f"{s.name:32} {len(rows):4d} {m[0]:9.2f} {m[1]:10.2f} {m[2]:12.2f}")


if __name__ == "__main__":
    main()
