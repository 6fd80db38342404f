"""Page benchmark: find, identify and restore every character of generated pages with truth.

Pages are laid out from glyphs of the shipped model's held-out writers (Noto Serif CJK SC, Smiley
Sans; ``--real-dev DIR`` adds real written characters from ``../shared/real-dev``, evaluation
only) by :mod:`restoreae.evaluate.pages`: columns read right to left, jitter, varied spacing,
random grids and seals, either polarity. Two sets:

- ``clean``: clean layout (no damage at all);
- ``damaged``: the glyphs damaged (strokes only) and page-level damage (stone / paper texture,
  cracks across characters, a lost corner, stains).

Reported per set: detection precision and recall (a found box matches a true one when its centre
lies inside it, one to one), identification accuracy (the character given to each matched box —
by OCR — equals the truth), page PSNR / SSIM (grey, against the clean page) before and after
restoration, and seconds per page (wall and CPU). ``--speed`` times one 3000 × 2000 page with
about 100 characters instead.

    python benchmarks/bench_pages.py --pages 10                 # both sets, shipped model
    python benchmarks/bench_pages.py --speed --backend onnx     # the 3000 × 2000 page
    python benchmarks/bench_pages.py --detect-only --pages 40   # layout finder only (fast)
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "src"))

from restoreae.data.charsets import GB2312_LEVEL1  # noqa: E402
from restoreae.evaluate.pages import (  # noqa: E402
    PAGE_GLYPH_DAMAGE,
    GlyphSource,
    make_page,
    match_pairs,
)


def _grey(a: np.ndarray) -> np.ndarray:
    import cv2

    return cv2.cvtColor(a, cv2.COLOR_RGB2GRAY) if a.ndim == 3 else a


def page_config(rng: np.random.Generator, damaged: bool) -> dict:
    """Random layout options of one benchmark page."""
    return {
        "n_lines": int(rng.integers(4, 8)),
        "per_line": int(rng.integers(5, 10)),
        "char_size": int(rng.integers(48, 96)),
        "dark_on_light": bool(rng.random() < 0.5),
        "colour": bool(rng.random() < 0.5),
        "grid": bool(rng.random() < 0.5),
        "seal": bool(rng.random() < 0.5),
        "damage": damaged,
        "glyph_damage": PAGE_GLYPH_DAMAGE if damaged else None,
    }


def run_set(name, sources, n_pages, seed, restorer, detect_only, layout_fn) -> dict:
    from restoreae.evaluate.metrics import psnr, ssim

    rng = np.random.default_rng(seed)
    matched = found = true = correct = 0
    before_p, after_p, before_s, after_s, wall, cpu = [], [], [], [], [], []
    for k in range(n_pages):
        source = sources[k % len(sources)]
        page = make_page(source, rng, **page_config(rng, name == "damaged"))
        t0, c0 = time.perf_counter(), time.process_time()
        if detect_only:
            boxes = layout_fn(page.image)
            chars = [None] * len(boxes)
        else:
            res = restorer.restore_page(page.image)
            boxes = np.array([c.box for c in res.characters]).reshape(-1, 4)
            chars = [c.char for c in res.characters]
        wall.append(time.perf_counter() - t0)
        cpu.append(time.process_time() - c0)
        pairs = match_pairs(boxes, page.boxes)
        matched += len(pairs)
        found += len(boxes)
        true += len(page.boxes)
        correct += sum(1 for f, t in pairs if chars[f] == page.chars[t])
        if not detect_only:
            clean = _grey(page.clean)
            before_p.append(psnr(_grey(page.image), clean))
            after_p.append(psnr(_grey(res.restored), clean))
            before_s.append(ssim(_grey(page.image), clean))
            after_s.append(ssim(_grey(res.restored), clean))
    out = {
        "set": name,
        "pages": n_pages,
        "chars": true,
        "precision": matched / max(found, 1),
        "recall": matched / max(true, 1),
        "wall_s": float(np.mean(wall)),
        "cpu_s": float(np.mean(cpu)),
    }
    if not detect_only:
        out.update(
            identified=correct / max(matched, 1),
            psnr_before=float(np.mean(before_p)),
            psnr_after=float(np.mean(after_p)),
            ssim_before=float(np.mean(before_s)),
            ssim_after=float(np.mean(after_s)),
        )
    return out


def speed(restorer, seed: int) -> dict:
    """One 3000 (high) × 2000 (wide) page with 10 columns of 10 characters."""
    source = GlyphSource.from_fonts(GB2312_LEVEL1[::29][:120], size=128)
    rng = np.random.default_rng(seed)
    page = make_page(
        source,
        rng,
        n_lines=10,
        per_line=10,
        char_size=190,
        spacing=(0.3, 0.3),
        margin=0.25,
        colour=True,
        grid=True,
        seal=True,
        damage=True,
        glyph_damage=PAGE_GLYPH_DAMAGE,
    )
    restorer.restore_page(page.image[:200, :200])  # warm-up (OCR model, threads)
    t0, c0 = time.perf_counter(), time.process_time()
    res = restorer.restore_page(page.image)
    return {
        "shape": page.image.shape,
        "chars": len(page.boxes),
        "found": len(res.characters),
        "wall_s": time.perf_counter() - t0,
        "cpu_s": time.process_time() - c0,
        "stages_s": {k: round(v, 2) for k, v in res.seconds.items()},
    }


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--pages", type=int, default=10, help="pages per set")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--model", default=None, help="model (default: the shipped one)")
    p.add_argument("--backend", choices=("torch", "onnx"), default="onnx")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--real-dev", type=Path, default=REPO.parent / "shared" / "real-dev")
    p.add_argument("--detect-only", action="store_true", help="time and score the finder only")
    p.add_argument("--speed", action="store_true", help="time one 3000 × 2000 page")
    args = p.parse_args(argv)

    restorer = None
    if not args.detect_only:
        from restoreae.restore.api import Restorer

        restorer = Restorer(args.model, backend=args.backend, threads=args.threads)
    if args.speed:
        print(speed(restorer, args.seed))
        return 0
    sources = [GlyphSource.from_fonts(GB2312_LEVEL1[::5][:700], size=128)]
    if args.real_dev.is_dir():
        sources.append(
            GlyphSource.from_folder(args.real_dev, 700, np.random.default_rng(args.seed))
        )
        print(f"glyphs: held-out fonts and {len(sources[1])} real-dev images")
    else:
        print(f"glyphs: held-out fonts ({args.real_dev} absent)")
    from restoreae.restore.page import find_characters

    def layout_fn(image):
        return find_characters(image).as_array()

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    print(f"load average at start: {load:.1f}; backend {args.backend}, {args.threads} thread(s)")
    print(
        "| set | pages | chars | precision | recall | identified | PSNR before → after | "
        "SSIM before → after | s/page (wall / CPU) |"
    )
    print("|---|---:|---:|---:|---:|---:|---|---|---|")
    for name, seed in (("clean", args.seed), ("damaged", args.seed + 1)):
        r = run_set(name, sources, args.pages, seed, restorer, args.detect_only, layout_fn)
        ident = f"{r['identified']:.3f}" if "identified" in r else "–"
        ps = f"{r['psnr_before']:.2f} → {r['psnr_after']:.2f}" if "psnr_before" in r else "–"
        ss = f"{r['ssim_before']:.3f} → {r['ssim_after']:.3f}" if "ssim_before" in r else "–"
        print(
            f"| {name} | {r['pages']} | {r['chars']} | {r['precision']:.3f} | {r['recall']:.3f} "
            f"| {ident} | {ps} | {ss} | {r['wall_s']:.2f} / {r['cpu_s']:.2f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
