"""CPU inference of the PyTorch and ONNX Runtime backends: cold process and per-glyph latency.

    python benchmarks/bench_inference.py [--model SPEC] [--runs 3] [--threads 2]
        [--repeats 20] [--write]

1. **Cold process**: ``restoreae restore glyph.png -o OUT`` (one 180×164 image, the character
   given) in a fresh Python process, once per backend (``--backend torch`` and the default
   ``auto``, i.e. ONNX Runtime from the cached export). Wall time and peak resident memory
   (``ru_maxrss`` of the child from ``os.wait4``, the figure ``/usr/bin/time -v`` prints as
   "Maximum resident set size"); the minimum of ``--runs`` runs, because the machine may be shared.
   The cache is made by one untimed run first; the first use of a model (the export itself,
   which imports torch) is timed once on a fresh copy of the weights. Whether the process
   imported torch is read from ``python -X importtime``.
2. **Latency**: milliseconds per glyph at batch 1 and 64, for the model alone
   (``Restorer.run`` on a ready float32 batch) and the full path (``Restorer.restore_many`` on
   180×164 grey images in memory: polarity, crop, resize, reference glyph, model, paste back);
   minimum and median of ``--repeats`` timed calls after warm-up.

The model is ``--model`` (any model spec), by default the shipped one. Prints a Markdown section;
with ``--write`` it replaces the "Inference: cold start and latency" section of
docs/PERFORMANCE.md.
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import warnings
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
PERF_DOC = ROOT / "docs" / "PERFORMANCE.md"
SECTION = "## Inference: cold start and latency"
OLD_SECTIONS = ("## Inference latency",)
CHARS = "永和春山水德寿书天地人心"
BATCHES = (1, 64)


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


# --------------------------------------------------------------------------- cold process
def _child_env() -> dict[str, str]:
    src = str(ROOT / "src")
    return {**os.environ, "PYTHONPATH": src + os.pathsep + os.environ.get("PYTHONPATH", "")}


def run_measured(cmd: list[str], cwd: Path) -> tuple[float, float, float]:
    """Run ``cmd``; ``(wall seconds, peak RSS MiB, CPU seconds user + system)`` of that child
    process (``os.wait4``)."""
    with tempfile.TemporaryFile() as err:
        t0 = time.perf_counter()
        proc = subprocess.Popen(
            cmd, cwd=cwd, env=_child_env(), stdout=subprocess.DEVNULL, stderr=err
        )
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - t0
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise SystemExit(f"{' '.join(cmd)} failed:\n{err.read().decode()[-2000:]}")
    return wall, usage.ru_maxrss / 1024.0, usage.ru_utime + usage.ru_stime  # ru_maxrss: KiB


def imports_torch(cmd: list[str], cwd: Path) -> bool:
    """Whether ``cmd`` (a ``python -m ...`` command) imports torch, from ``-X importtime``."""
    proc = subprocess.run(
        [cmd[0], "-X", "importtime", *cmd[1:]],
        cwd=cwd,
        env=_child_env(),
        capture_output=True,
        text=True,
    )
    if proc.returncode != 0:
        raise SystemExit(f"{' '.join(cmd)} failed:\n{proc.stderr[-2000:]}")
    return any(
        line.startswith("import time:") and line.rsplit("|", 1)[-1].strip() == "torch"
        for line in proc.stderr.splitlines()
    )


def cold_start(args: argparse.Namespace, work: Path) -> list[dict]:
    """Cold-process figures for each backend (see the module docstring)."""
    from PIL import Image

    from restoreae.models.weights import resolve_weights

    source = resolve_weights(args.model)
    Image.fromarray(_images(1)[0]).save(work / "glyph.png")
    base = [sys.executable, "-m", "restoreae.cli", "restore", "glyph.png", "--char", CHARS[0]]
    model = ["--model", str(args.model)] if args.model else []
    rows = []
    for backend in ("torch", "auto"):
        cmd = [*base, *model, "-o", f"out-{backend}", "--backend", backend, "--overwrite"]
        run_measured(cmd, work)  # untimed: makes the cached export for auto, warms the disk cache
        runs = [run_measured(cmd, work) for _ in range(args.runs)]
        rows.append(
            {
                "backend": "PyTorch" if backend == "torch" else "ONNX Runtime (auto)",
                "command": " ".join(["restoreae", *cmd[3:]]),
                "wall": min(r[0] for r in runs),
                "wall_median": statistics.median(r[0] for r in runs),
                "rss": min(r[1] for r in runs),
                "cpu": min(r[2] for r in runs),
                "torch": imports_torch(cmd, work),
            }
        )
        print(
            f"cold {backend}: {rows[-1]['wall']:.2f} s wall, {rows[-1]['cpu']:.2f} s CPU, "
            f"{rows[-1]['rss']:.0f} MiB, "
            f"torch imported: {rows[-1]['torch']}",
            flush=True,
        )
    if source.format == "safetensors":  # first use: the export itself, once, on a fresh copy
        fresh = work / "fresh" / source.path.name
        fresh.parent.mkdir()
        shutil.copy(source.path, fresh)
        cmd = [*base, "-o", "out-first", "--model", str(fresh), "--overwrite"]
        wall, rss, cpu = run_measured(cmd, work)
        rows.append(
            {
                "backend": "ONNX Runtime (auto), first use: export + check",
                "command": "the same, with a model used for the first time",
                "wall": wall,
                "wall_median": wall,
                "rss": rss,
                "cpu": cpu,
                "torch": True,
                "single": True,
            }
        )
        print(f"first use (export): {wall:.2f} s, {rss:.0f} MiB", flush=True)
    return rows


# --------------------------------------------------------------------------- latency
def _times_ms(fn, repeats: int, warmup: int) -> list[float]:
    for _ in range(warmup):
        fn()
    out = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        out.append((time.perf_counter() - t0) * 1000.0)
    return out


def latency(args: argparse.Namespace) -> list[dict]:
    """Per-glyph milliseconds (min, median) for each backend, batch 1 and 64."""
    from restoreae.restore.api import Restorer

    images = _images(max(BATCHES))
    chars = [CHARS[i % len(CHARS)] for i in range(len(images))]
    rows = []
    for backend in ("torch", "onnx"):
        r = Restorer(args.model, backend=backend, threads=args.threads)
        args.img_size_used, args.in_chans_used = r.img_size, r.in_chans
        rng = np.random.default_rng(0)
        for b in BATCHES:
            batch = rng.random((b, r.in_chans, r.img_size, r.img_size), dtype=np.float32)
            reps = args.repeats if b == 1 else max(3, args.repeats // 4)
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")
                model = _times_ms(lambda r=r, x=batch: r.run(x), reps, warmup=2)
                full = _times_ms(
                    lambda r=r, b=b: r.restore_many(images[:b], chars[:b], batch_size=b),
                    reps,
                    warmup=1,
                )
            row = {
                "backend": "PyTorch" if backend == "torch" else "ONNX Runtime",
                "batch": b,
                "model_min": min(model) / b,
                "model_med": statistics.median(model) / b,
                "full_min": min(full) / b,
                "full_med": statistics.median(full) / b,
                "repeats": reps,
            }
            rows.append(row)
            print(
                f"{row['backend']:<12} batch {b:>2}: model {row['model_min']:.2f} ms/glyph, "
                f"full {row['full_min']:.2f} ms/glyph",
                flush=True,
            )
    return rows


# --------------------------------------------------------------------------- report
def markdown(cold: list[dict], lat: list[dict], args: argparse.Namespace) -> str:
    import onnxruntime
    import torch

    s = args.img_size_used
    model = f"`{args.model}`" if args.model else "the shipped default model"
    lines = [
        SECTION,
        "",
        f"Model: {model}, input (B, {args.in_chans_used}, {s}, {s}). CPU: {_cpu_name()}, "
        f"{os.cpu_count()} cores; torch {torch.__version__.split('+')[0]}, onnxruntime "
        f"{onnxruntime.__version__}; 1-minute load average {args.load:.1f} at the start. Every "
        "figure is the minimum of several runs (the least disturbed one), the median is given "
        "beside it.",
        "",
        f"**Cold process** (one glyph, a fresh Python process; minimum of {args.runs} runs, "
        "median in brackets; peak RSS from `os.wait4`, as `/usr/bin/time -v` reports it; the "
        "files are in the OS page cache):",
        "",
        "| backend | wall time, s | CPU time (user + sys), s | peak RSS, MiB | imports torch |",
        "|---|---:|---:|---:|---|",
    ]
    for r in cold:
        med = "" if r.get("single") else f" ({r['wall_median']:.2f})"
        lines.append(
            f"| {r['backend']} | {r['wall']:.2f}{med} | {r['cpu']:.2f} | {r['rss']:.0f} | "
            f"{'yes' if r['torch'] else 'no'} |"
        )
    lines += [
        "",
        "Commands: " + "; ".join(f"`{r['command']}`" for r in cold if not r.get("single")) + ".",
        "",
        f"**Latency** per glyph in milliseconds, {args.threads or 'default'} thread(s): minimum "
        "(median) of the timed calls after warm-up. *Model* = the network on a ready float32 "
        "batch (`Restorer.run`); *full path* = 180×164 grey images in memory → polarity, "
        "contrast, crop, resize, reference glyph, model, paste back (`Restorer.restore_many`).",
        "",
        "| backend | batch | model, ms/glyph | full path, ms/glyph |",
        "|---|---:|---:|---:|",
    ]
    for r in lat:
        lines.append(
            f"| {r['backend']} | {r['batch']} | {r['model_min']:.2f} ({r['model_med']:.2f}) | "
            f"{r['full_min']:.2f} ({r['full_med']:.2f}) |"
        )
    lines += [
        "",
        "Command: `python benchmarks/bench_inference.py"
        + (f" --model {args.model}" if args.model else "")
        + f" --runs {args.runs} --threads {args.threads} --repeats {args.repeats} --write`.",
        "",
    ]
    return "\n".join(lines)


def write_section(text: str, doc: Path = PERF_DOC) -> None:
    """Replace (or append) this benchmark's section of ``doc`` (and its older title), atomically."""
    from restoreae.utils import atomic_write

    old = doc.read_text(encoding="utf-8") if doc.is_file() else "# Performance\n\n"
    lines = old.splitlines()
    titles = (SECTION, *OLD_SECTIONS)
    start = next((i for i, line in enumerate(lines) if line.strip() in titles), None)
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
    p.add_argument("--model", default=None, help="any model spec (default: the shipped model)")
    p.add_argument("--runs", type=int, default=3, help="cold-process runs per backend (min kept)")
    p.add_argument("--threads", type=int, default=2, help="CPU threads for the latency part")
    p.add_argument("--repeats", type=int, default=20, help="timed calls at batch 1 (64: a quarter)")
    p.add_argument("--skip-cold", action="store_true", help="only the latency part")
    p.add_argument("--write", action="store_true", help="write the section into PERFORMANCE.md")
    args = p.parse_args(argv)
    if args.runs < 1 or args.repeats < 1:
        p.error("--runs and --repeats must be at least 1")
    args.load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    with tempfile.TemporaryDirectory() as td:
        cold = [] if args.skip_cold else cold_start(args, Path(td))
    lat = latency(args)
    text = markdown(cold, lat, args)
    print(text)
    if args.write:
        write_section(text)
        print(f"wrote section {SECTION!r} of {PERF_DOC}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
