"""Single-image CPU inference latency of the torch and ONNX Runtime backends.

    .venv/bin/python benchmarks/bench_inference.py [--model CHECKPOINT] [--arch NAME --img-size S]
        [--threads 1,2] [--repeats 30] [--write]

For each backend and thread count: milliseconds per call, median of ``--repeats`` timed calls after
warm-up, for

- *model only*, batch 1 and batch 32 (``Restorer.run`` on a float32 (B, C, S, S) batch);
- *full path*, one real-sized image (180×164 px, ink on paper; load from memory, polarity,
  contrast, crop, resize, reference glyph, model, paste back) and 32 images through
  ``restore_many(batch_size=32)``.

The model is the shipped default when present (or ``--model``); otherwise an untrained ``--arch``
built with ``create_model`` (latency does not depend on the weights' values). The table is printed;
``--write`` also puts it in docs/PERFORMANCE.md, section "Inference latency" (replaced when present).
"""

from __future__ import annotations

import argparse
import os
import platform
import statistics
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PERF_DOC = ROOT / "docs" / "PERFORMANCE.md"
SECTION = "## Inference latency"
CHARS = "永和春山水德寿书天地人心"


def _median_ms(fn, repeats: int, warmup: int = 3) -> float:
    for _ in range(warmup):
        fn()
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append((time.perf_counter() - t0) * 1000.0)
    return statistics.median(times)


def _images(n: int) -> list[np.ndarray]:
    """``n`` grey 180×164 images of characters, dark ink on light paper with noise."""
    from restoreae.data.reference import ReferenceRenderer

    ref = ReferenceRenderer(size=140)
    rng = np.random.default_rng(0)
    out = []
    for i in range(n):
        g = ref.render(CHARS[i % len(CHARS)]).astype(np.float32) / 255.0
        img = np.full((180, 164), 225.0, np.float32)
        img[18:158, 10:150] -= 190.0 * g
        img += rng.normal(0, 6, img.shape)
        out.append(np.clip(img, 0, 255).astype(np.uint8))
    return out


def _cpu_name() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _model_path(args: argparse.Namespace, tmp: Path) -> tuple[Path, str]:
    from restoreae.restore.api import DEFAULT_MODEL, resolve_model_path

    if args.model:
        path = resolve_model_path(args.model)
        return path, f"`{args.model}`"
    if DEFAULT_MODEL.is_file():
        return DEFAULT_MODEL, "the shipped default model"
    import torch

    from restoreae.models.io import save_model
    from restoreae.models.registry import create_model

    torch.manual_seed(0)
    model = create_model(args.arch, in_chans=2, img_size=args.img_size)
    path = tmp / f"{args.arch}.safetensors"
    save_model(model, path, {"img_size": args.img_size, "in_chans": 2})
    return (
        path,
        f"untrained `{args.arch}` (no shipped model yet; latency does not depend on weights)",
    )


def run(args: argparse.Namespace) -> list[dict]:
    import torch

    from restoreae.models.io import load_model
    from restoreae.restore.api import Restorer
    from restoreae.restore.backends import _complete_metadata
    from restoreae.restore.export import export_onnx

    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as td:
        tmp = Path(td)
        path, desc = _model_path(args, tmp)
        model, meta = load_model(path)
        meta = _complete_metadata(meta, getattr(model, "config", None), str(path))
        onnx_path = tmp / "model.onnx"
        export_onnx(model, meta, onnx_path)
        images = _images(32)
        chars = [CHARS[i % len(CHARS)] for i in range(32)]
        args.description = desc
        for backend in ("torch", "onnx"):
            for threads in args.threads:
                r = Restorer(
                    path,
                    backend=backend,
                    onnx_path=onnx_path if backend == "onnx" else None,
                    threads=threads,
                )
                s, c = r.img_size, r.in_chans
                args.img_size_used, args.in_chans_used = s, c
                rng = np.random.default_rng(0)
                b1 = rng.random((1, c, s, s), dtype=np.float32)
                b32 = rng.random((32, c, s, s), dtype=np.float32)
                small = max(5, args.repeats // 5)
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    row = {
                        "backend": "PyTorch" if backend == "torch" else "ONNX Runtime",
                        "threads": threads,
                        "model_b1": _median_ms(lambda r=r, b=b1: r.run(b), args.repeats),
                        "model_b32": _median_ms(lambda r=r, b=b32: r.run(b), small, warmup=1),
                        "full_1": _median_ms(
                            lambda r=r: r.restore(images[0], char=chars[0]), args.repeats
                        ),
                        "full_32": _median_ms(
                            lambda r=r: r.restore_many(images, chars, batch_size=32),
                            small,
                            warmup=1,
                        ),
                    }
                rows.append(row)
                print(
                    f"{row['backend']:<12} threads={threads}: model b1 {row['model_b1']:.1f} ms, "
                    f"b32 {row['model_b32']:.1f} ms; full 1 image {row['full_1']:.1f} ms, "
                    f"32 images {row['full_32']:.1f} ms",
                    flush=True,
                )
        torch.set_num_threads(max(args.threads))
    return rows


def markdown(rows: list[dict], args: argparse.Namespace) -> str:
    import onnxruntime
    import torch

    s = args.img_size_used
    lines = [
        SECTION,
        "",
        f"Model: {args.description}; input (B, {args.in_chans_used}, {s}, {s}). CPU: {_cpu_name()}; "
        f"torch {torch.__version__.split('+')[0]}, onnxruntime {onnxruntime.__version__}. "
        f"Milliseconds, median of {args.repeats} calls (batch 32: median of "
        f"{max(5, args.repeats // 5)}) after warm-up; per-image figures in brackets.",
        "*Model only* = the network on a ready batch; *full path* = a 180×164 grey image in memory → "
        "polarity, contrast, glyph crop, resize, reference glyph, model, paste back "
        "(`Restorer.restore` / `restore_many`).",
        "",
        "| backend | threads | model only, batch 1 | model only, batch 32 | full path, 1 image "
        "| full path, 32 images |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['backend']} | {r['threads']} | {r['model_b1']:.1f} | {r['model_b32']:.0f} "
            f"({r['model_b32'] / 32:.1f}) | {r['full_1']:.1f} | {r['full_32']:.0f} "
            f"({r['full_32'] / 32:.1f}) |"
        )
    lines += [
        "",
        "Command: `.venv/bin/python benchmarks/bench_inference.py"
        + (f" --model {args.model}" if args.model else "")
        + f" --threads {','.join(map(str, args.threads))} --repeats {args.repeats}`"
        + f"; 1-minute load average at the start: {args.load:.1f} (on a loaded machine the "
        "2-thread figures suffer most: rerun on a quiet one for clean numbers).",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str, doc: Path = PERF_DOC) -> None:
    """Replace (or append) the "Inference latency" section of ``doc``, atomically."""
    from restoreae.utils import atomic_write

    old = doc.read_text(encoding="utf-8") if doc.is_file() else "# Performance\n\n"
    lines = old.splitlines()
    start = next((i for i, line in enumerate(lines) if line.strip() == SECTION), None)
    if start is None:
        new = old.rstrip("\n") + "\n\n" + text
    else:
        end = next(
            (j for j in range(start + 1, len(lines)) if lines[j].startswith("## ")), len(lines)
        )
        new = "\n".join(lines[:start]) + "\n" + text + "\n".join(lines[end:])
        new = new.rstrip("\n") + "\n"
    atomic_write(doc, new.encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--model", default=None, help="checkpoint or model name (default: shipped)")
    p.add_argument("--arch", default="unet_mobilenetv3", help="architecture when no model exists")
    p.add_argument("--img-size", type=int, default=128, help="size when no model exists")
    p.add_argument("--threads", default="1,2", help="comma-separated thread counts")
    p.add_argument("--repeats", type=int, default=30)
    p.add_argument("--write", action="store_true", help="also write it to PERFORMANCE.md")
    args = p.parse_args(argv)
    args.threads = [int(t) for t in str(args.threads).split(",") if t.strip()]
    args.load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows = run(args)
    text = markdown(rows, args)
    print(text)
    if args.write:
        write_section(text)
        print(f"wrote section {SECTION!r} of {PERF_DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
