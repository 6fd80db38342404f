"""Damage throughput on one CPU core: images/s of the numpy pipeline (seed and real configs, one
image at a time) and of the batched torch pipeline (batch 64), at 64, 128 and 224 px.

    .venv/bin/python benchmarks/bench_damage.py [--sizes 64,128,224] [--seconds 2] [--device cpu]
        [--clock cpu|wall]

Glyphs are rendered from the default reference font (restoreae.data.fonts) when available,
otherwise synthetic strokes are drawn. Each figure is the best of three timed rounds. By default
time is the process CPU time (one thread, so CPU seconds = core seconds), which stays meaningful
on a busy shared machine; ``--clock wall`` measures elapsed time.
"""

from __future__ import annotations

import argparse
import time

import cv2
import numpy as np
import torch

from restoreae.damage import DamageConfig, DamagePipeline
from restoreae.damage.torch_ops import TorchDamage
from restoreae.errors import RestoreAEError

CHARS = "永字玉書風龍國心靈鬱飛鳥天地人和"


def _glyphs(size: int, n: int) -> np.ndarray:
    """``uint8 (n, size, size)`` white-on-black glyphs."""
    try:
        from restoreae.data.fonts import (
            DEFAULT_REFERENCE_FACE_INDEX,
            DEFAULT_REFERENCE_FONT,
            load_face,
            render_glyph,
        )

        face = load_face(DEFAULT_REFERENCE_FONT, DEFAULT_REFERENCE_FACE_INDEX)
        imgs = [render_glyph(face, c, size) for c in CHARS]
        imgs = [g for g in imgs if g is not None]
    except RestoreAEError:  # no CJK font here: synthetic strokes are enough to time the ops
        imgs = []
    if not imgs:
        rng = np.random.default_rng(0)
        for _ in range(len(CHARS)):
            g = np.zeros((size, size), np.uint8)
            for _ in range(5):
                p1, p2 = rng.integers(size // 8, size - size // 8, (2, 2))
                cv2.line(g, tuple(map(int, p1)), tuple(map(int, p2)), 255, max(2, size // 20))
            imgs.append(g)
    return np.stack([imgs[i % len(imgs)] for i in range(n)])


CLOCK = {"wall": time.perf_counter, "cpu": time.process_time}
_clock = time.process_time


def _best_rate(fn, n_images: int, seconds: float) -> float:
    """Images per second, best of three rounds of about ``seconds / 3`` each."""
    fn()  # warm-up
    best = 0.0
    for _ in range(3):
        count, start = 0, _clock()
        while True:
            fn()
            count += n_images
            elapsed = _clock() - start
            if elapsed > seconds / 3:
                break
        best = max(best, count / elapsed)
    return best


def _numpy_rate(imgs: np.ndarray, preset: str, seconds: float) -> float:
    """Numpy pipeline, one image per call."""
    pipe = DamagePipeline(DamageConfig.preset(preset))
    rng = np.random.default_rng(0)
    state = {"i": 0}

    def one() -> None:
        pipe(imgs[state["i"] % len(imgs)], rng)
        state["i"] += 1

    return _best_rate(one, 1, seconds)


def _torch_rate(x: torch.Tensor, preset: str, seconds: float) -> float:
    """Batched torch pipeline on ``x.device``."""
    damage = TorchDamage(DamageConfig.preset(preset))
    gen = torch.Generator(device=x.device).manual_seed(0)

    def batch() -> None:
        damage(x, gen)
        if x.device.type == "cuda":
            torch.cuda.synchronize()

    return _best_rate(batch, x.shape[0], seconds)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--sizes", default="64,128,224")
    p.add_argument("--seconds", type=float, default=2.0, help="time per measurement")
    p.add_argument("--batch", type=int, default=64)
    p.add_argument("--device", default="cpu")
    p.add_argument(
        "--clock",
        choices=sorted(CLOCK),
        default="cpu",
        help="cpu: process CPU time (robust on a shared machine; CPU device only); wall: elapsed",
    )
    args = p.parse_args()
    global _clock
    _clock = CLOCK["wall" if args.device != "cpu" else args.clock]
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    device = torch.device(args.device)
    clock = "wall" if args.device != "cpu" else args.clock
    print(
        f"damage throughput, images per {clock}-clock second, 1 CPU thread "
        f"(torch on {device}, batch {args.batch})"
    )
    print(
        f"{'size':>5}  {'numpy seed':>11}  {'numpy real':>11}  {'torch seed':>11}  {'torch real':>11}"
    )
    for size in (int(s) for s in args.sizes.split(",")):
        imgs = _glyphs(size, args.batch)
        x = torch.from_numpy(imgs).float().unsqueeze(1).div(255.0).to(device)
        row = [_numpy_rate(imgs, preset, args.seconds) for preset in ("seed", "real")]
        row += [_torch_rate(x, preset, args.seconds) for preset in ("seed", "real")]
        print(f"{size:>5}  " + "  ".join(f"{r:>11.0f}" for r in row))


if __name__ == "__main__":
    main()
