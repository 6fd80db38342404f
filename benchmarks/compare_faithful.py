"""Compare models and restore-path variants on faithfulness, through the full restore path.

For each model (and each way of putting the restoration back into the image) it restores, with
the `Restorer` API at the images' own size, three sets — font held-out writers (a corpus split),
real-dev running-script calligraphy and real-dev pen handwriting — each damaged with the seed's
damage (with and without the reference character) and undamaged ("do no harm"), and prints a
markdown table of mean PSNR / SSIM against the clean image. No OCR (see `restoreae eval --suite`
for readability); the damage is seeded per image, the same for every model.

    python benchmarks/compare_faithful.py --data data/corpus128 --real-dev ../shared/real-dev \\
        --num 96 v1=runs/v1.safetensors v2=runs/faithful_model

real-dev is for evaluation only: nothing here trains or selects on it.
"""

from __future__ import annotations

import argparse
import csv
import functools
import sys
import time
from pathlib import Path

import cv2
import numpy as np

from restoreae.damage.pipeline import DamageConfig, DamagePipeline
from restoreae.data.corpus import Corpus
from restoreae.errors import RestoreAEError
from restoreae.evaluate.metrics import psnr, ssim
from restoreae.restore import api, preprocess
from restoreae.restore.api import Restorer


def _font_set(
    corpus: Path,
    num: int,
    seed: int,
    split: str,
    style: str | None,
    frame: str = "corpus",
    render_size: int | None = None,
) -> tuple[list[np.ndarray], list[str]]:
    """``num`` glyphs of ``split``; with ``style`` (a ``data.style`` preset) each clean glyph is
    first turned into a synthetic writer's (seeded), as training targets are. ``frame`` "ink":
    each glyph cut to its ink's bounding box, as users crop a character (the restore path then
    resamples it to the model's size and back, as it does real-dev's crops); "corpus": as stored
    (a 128 px corpus glyph is the model's own frame, no resampling). ``render_size``: the same
    writers and characters drawn afresh from the writers' fonts at that size (a scan larger than
    the model's frame) instead of the stored glyphs."""
    c = Corpus.open(corpus)
    w, ch = c.pairs(split)
    pick = np.random.default_rng(seed).choice(len(w), min(num, len(w)), replace=False)
    if render_size:
        from restoreae.data.fonts import FontFace
        from restoreae.data.reference import ReferenceRenderer

        renderers: dict[int, ReferenceRenderer] = {}
        for i in pick:
            if w[i] not in renderers:
                wr = c.writers[w[i]]
                face = FontFace(
                    Path(wr["path"]), wr["face_index"], wr["name"], wr["family"], wr["id"]
                )
                renderers[w[i]] = ReferenceRenderer(face, size=render_size, fallback=False)
        images = [renderers[w[i]].render(c.chars[ch[i]]) for i in pick]
    else:
        images = [np.array(c.glyphs[w[i], ch[i]]) for i in pick]
    from restoreae.damage.style import build_style

    transform = build_style(style)  # None for no style (None, "none" or an empty config)
    if transform is not None:
        import torch

        x = torch.from_numpy(np.stack(images)).float().div(255.0)[:, None]
        x = transform(x, torch.Generator().manual_seed(seed))
        images = list((x[:, 0] * 255.0).round().byte().numpy())
    if frame == "ink":
        images = [_ink_crop(im) for im in images]
    return images, [c.chars[ch[i]] for i in pick]


def _ink_crop(glyph: np.ndarray) -> np.ndarray:
    """uint8 white-on-black glyph cut to the bounding box of its ink (> 127), or as it is when
    it has none."""
    ys, xs = np.nonzero(glyph > 127)
    if ys.size == 0:
        return glyph
    return np.ascontiguousarray(glyph[ys.min() : ys.max() + 1, xs.min() : xs.max() + 1])


def _real_set(root: Path, prefix: str, num: int, seed: int) -> tuple[list[np.ndarray], list[str]]:
    with open(root / "labels.csv", encoding="utf-8") as f:
        rows = [r for r in csv.DictReader(f) if r["path"].startswith(prefix)]
    pick = np.random.default_rng(seed).choice(len(rows), min(num, len(rows)), replace=False)
    images = [cv2.imread(str(root / rows[i]["path"]), cv2.IMREAD_GRAYSCALE) for i in pick]
    return images, [rows[i]["char"] for i in pick]


def _damage(
    images: list[np.ndarray], polarity_dark: list[bool], seed: int, spec: str = "seed"
) -> list[np.ndarray]:
    """Damage ``spec`` (a preset or YAML file; ``op:NAME``: that seed op alone, with the seed's
    parameters, as the quality suite's per-op rows) on white-on-black glyphs; dark-on-light images
    are inverted around it."""
    pipe = DamagePipeline(DamageConfig.resolve(spec, where="--damage"))
    out = []
    for i, (img, dark) in enumerate(zip(images, polarity_dark, strict=True)):
        g = 255 - img if dark else img
        d = pipe(g, np.random.default_rng([seed, i]))[0]
        out.append(255 - d if dark else d)
    return out


def _score(restored: list[np.ndarray], clean: list[np.ndarray]) -> tuple[float, float]:
    p = [min(psnr(r, c), 60.0) for r, c in zip(restored, clean, strict=True)]
    s = [ssim(r, c) for r, c in zip(restored, clean, strict=True)]
    return float(np.mean(p)), float(np.mean(s))


def _drawable(restorer: Restorer, chars: list[str]) -> list[str | None]:
    """The characters the model's reference chain can draw; None for the others."""
    out: list[str | None] = []
    for c in chars:
        try:
            restorer.reference(c)
            out.append(c)
        except RestoreAEError:
            out.append(None)
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("models", nargs="+", help="NAME=SPEC (a model spec as for restore --model)")
    ap.add_argument("--data", type=Path, default=Path("data/corpus128"))
    ap.add_argument("--real-dev", type=Path, default=Path("../shared/real-dev"))
    ap.add_argument("--num", type=int, default=96, help="images per set")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument(
        "--split",
        default="heldout-writers",
        help="corpus split of the font set (val: to choose settings, never the held-out writers)",
    )
    ap.add_argument("--style", default=None, help="style preset applied to the clean font glyphs")
    ap.add_argument(
        "--frame",
        choices=("corpus", "ink"),
        default="corpus",
        help="font glyphs as stored, or cut to their ink's bounding box (as users crop)",
    )
    ap.add_argument(
        "--render-size",
        type=int,
        default=None,
        help="draw the font set's glyphs afresh from the writers' fonts at this size (px)",
    )
    ap.add_argument(
        "--damage",
        default="seed",
        help="damage preset or YAML file, or op:NAME for one seed op alone (default: seed)",
    )
    ap.add_argument(
        "--paste",
        action="store_true",
        help="also score each model with the whole restored square pasted back (the v1 path)",
    )
    ap.add_argument(
        "--enlarged",
        action="store_true",
        help="also score each model with the restored glyph itself enlarged back under the mask "
        "(finish(keep_detail=False), the path before the input's own detail was kept)",
    )
    args = ap.parse_args(argv)

    sets: dict[str, tuple[list[np.ndarray], list[str]]] = {}
    if args.data.is_dir():
        size = f", {args.render_size} px" if args.render_size else ""
        label = f"fonts ({args.split}{', ' + args.style if args.style else ''}, {args.frame}{size})"
        sets[label] = _font_set(
            args.data, args.num, args.seed, args.split, args.style, args.frame, args.render_size
        )
    if (args.real_dev / "labels.csv").is_file():
        sets["real-dev calligraphy"] = _real_set(args.real_dev, "calli", args.num, args.seed)
        sets["real-dev handwriting"] = _real_set(args.real_dev, "handw", args.num, args.seed)
    damaged = {}
    for name, (images, _) in sets.items():
        dark = [preprocess.detect_polarity(im) == "dark-on-light" for im in images]
        damaged[name] = _damage(images, dark, args.seed, args.damage)

    print("| model | path | set | input (dB / SSIM) | with ref | no ref | undamaged in |")
    print("|---|---|---|---|---|---|---|")
    change_mask = preprocess.change_mask
    for spec in args.models:
        name, _, path = spec.partition("=")
        restorer = Restorer(path or name, backend="torch")
        modes = ["faithful"] + ["paste"] * args.paste + ["enlarged"] * args.enlarged
        for mode in modes:
            preprocess.change_mask = (
                (lambda r, g: np.ones_like(r)) if mode == "paste" else change_mask
            )
            api.finish = functools.partial(preprocess.finish, keep_detail=mode != "enlarged")
            t0 = time.perf_counter()
            for set_name, (images, all_chars) in sets.items():
                chars = _drawable(restorer, all_chars)
                dmg = damaged[set_name]
                cells = [_score(dmg, images)]
                cells.append(_score(restorer.restore_many(dmg, chars, batch_size=32), images))
                nones = [None] * len(chars)
                cells.append(_score(restorer.restore_many(dmg, nones, batch_size=32), images))
                cells.append(_score(restorer.restore_many(images, chars, batch_size=32), images))
                row = " | ".join(f"{p:.2f} / {s:.3f}" for p, s in cells)
                print(f"| {name} | {mode} | {set_name} | {row} |", flush=True)
            print(f"<!-- {name} {mode}: {time.perf_counter() - t0:.0f} s -->", file=sys.stderr)
    preprocess.change_mask = change_mask
    api.finish = preprocess.finish
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
