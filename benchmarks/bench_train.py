"""Training throughput (images/s) per model and size: the model step alone (batched damage on the
device, forward, loss, backward, AdamW step) on ready tensors — no data loading, EMA, logging or
validation; ``benchmarks/bench_train_loop.py`` times the whole ``restoreae train`` loop.

Modes: ``eager`` (NCHW), ``channels_last``, ``compile`` (torch.compile, opt-in with --compile);
on CUDA also ``channels_last+bf16`` autocast. Synthetic glyph-like inputs (random strokes), so no
corpus is needed. Prints the table; ``--write`` also puts it in docs/PERFORMANCE.md, section
"Training throughput" (other sections are kept).

    python benchmarks/bench_train.py                       # CPU defaults, 2 threads, batch 32
    python benchmarks/bench_train.py --models unet_mobilenetv3_small --sizes 64,96,128
    python benchmarks/bench_train.py --device cuda --sizes 224 --all
"""

from __future__ import annotations

import argparse
import os
import platform
import re
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
SECTION = "## Training throughput"
# CPU default: skip combinations above this many GFLOPs per training step (fwd+bwd ~ 3x fwd).
CPU_STEP_GFLOP_LIMIT = 200.0


def _glyphs(batch: int, size: int, seed: int) -> torch.Tensor:
    """Float (B, 1, S, S) in [0, 1]: white strokes (random thick lines) on black."""
    g = torch.Generator().manual_seed(seed)
    x = torch.zeros(batch, 1, size, size)
    for b in range(batch):
        for _ in range(6):
            r0, c0 = torch.randint(size // 8, size - size // 8, (2,), generator=g).tolist()
            horiz = bool(torch.randint(0, 2, (1,), generator=g))
            length = int(torch.randint(size // 4, size // 2, (1,), generator=g))
            w = max(1, size // 24)
            if horiz:
                x[b, 0, r0 : r0 + w, c0 : min(size, c0 + length)] = 1.0
            else:
                x[b, 0, r0 : min(size, r0 + length), c0 : c0 + w] = 1.0
    return x


def bench_one(
    name: str,
    size: int,
    mode: str,
    *,
    batch: int,
    steps: int,
    warmup: int,
    device: torch.device,
) -> dict:
    """Median seconds per training step → img/s for one (model, size, mode)."""
    from restoreae.damage.torch_ops import TorchDamage
    from restoreae.models.registry import create_model
    from restoreae.train.build import param_groups
    from restoreae.train.losses import build_loss

    torch.manual_seed(0)
    model = create_model(name, in_chans=2, img_size=size).to(device).train()
    channels_last = "channels_last" in mode
    amp = torch.bfloat16 if "bf16" in mode else None
    if channels_last:
        model.to(memory_format=torch.channels_last)
    fwd = torch.compile(model) if "compile" in mode else model
    opt = torch.optim.AdamW(param_groups(model), lr=1e-3, weight_decay=0.05)
    loss_fn = build_loss("mse")
    damage = TorchDamage()
    clean = _glyphs(batch, size, 0).to(device)
    ref = _glyphs(batch, size, 1).to(device)
    gen = torch.Generator(device=device).manual_seed(0)

    def step() -> None:
        x = torch.cat([damage(clean, gen), ref], dim=1)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with torch.autocast(device.type, dtype=amp, enabled=amp is not None):
            out = fwd(x)
        loss, _ = loss_fn(out, clean)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize(device)

    t0 = time.perf_counter()
    for _ in range(warmup):
        step()
    sync()
    warm_s = time.perf_counter() - t0
    times = []
    for _ in range(steps):
        t = time.perf_counter()
        step()
        sync()
        times.append(time.perf_counter() - t)
    times.sort()
    med = times[len(times) // 2]
    return {
        "model": name,
        "size": size,
        "mode": mode,
        "ms_per_step": med * 1000,
        "img_per_s": batch / med,
        "warmup_s": warm_s,
    }


def write_section(path: Path, body: str, table: str = "main") -> None:
    """Put ``body`` in block ``table`` of the "Training throughput" section of ``path``.

    The section is created if missing; other sections of the file and other blocks of the
    section (other ``--table`` runs) are kept.
    """
    from restoreae.utils import atomic_write

    text = path.read_text(encoding="utf-8") if path.is_file() else "# Performance\n"
    start, end = f"<!-- bench_train:{table} -->", f"<!-- /bench_train:{table} -->"
    block = f"{start}\n{body.strip()}\n{end}"
    sec_re = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    m = sec_re.search(text)
    if m is None:
        text = text.rstrip() + f"\n\n{SECTION}\n\n{block}\n"
    else:
        section = m.group(0)
        blk_re = re.compile(re.escape(start) + r".*?" + re.escape(end), re.S)
        if blk_re.search(section):
            section = blk_re.sub(lambda _: block, section, count=1)
        else:
            section = section.rstrip() + f"\n\n{block}\n"
        text = text[: m.start()] + section.rstrip() + "\n\n" + text[m.end() :].lstrip()
    atomic_write(path, (text.rstrip() + "\n").encode("utf-8"))


def main(argv: list[str] | None = None) -> int:
    from restoreae.models.io import gflops
    from restoreae.models.registry import create_model, list_models

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default=None, help="comma-separated (default: all registered)")
    ap.add_argument("--sizes", default="96,128,224")
    ap.add_argument("--modes", default=None, help="default: eager,channels_last (+bf16 on CUDA)")
    ap.add_argument("--compile", action="store_true", help="also measure torch.compile")
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--steps", type=int, default=3, help="timed steps (median reported)")
    ap.add_argument("--warmup", type=int, default=1)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--device", default="auto")
    ap.add_argument("--all", action="store_true", help="no skipping of heavy combos on CPU")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "PERFORMANCE.md")
    ap.add_argument("--table", default="main", help="block of the section this run replaces")
    ap.add_argument("--write", action="store_true", help=f"also write the table to {SECTION[3:]!r}")
    args = ap.parse_args(argv)

    torch.set_num_threads(args.threads)
    dev = args.device
    if dev == "auto":
        dev = "cuda" if torch.cuda.is_available() else "cpu"
    device = torch.device(dev)
    models = args.models.split(",") if args.models else list_models()
    sizes = [int(s) for s in args.sizes.split(",")]
    modes = args.modes.split(",") if args.modes else ["eager", "channels_last"]
    if not args.modes and device.type == "cuda":
        modes.append("channels_last+bf16")
    if args.compile:
        modes.append(
            "compile+channels_last" if device.type == "cpu" else "compile+channels_last+bf16"
        )

    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else float("nan")
    rows, skipped = [], []
    for name in models:
        for size in sizes:
            gf = gflops(create_model(name, in_chans=2, img_size=size), size)
            step_gflop = 3 * gf * args.batch
            if device.type == "cpu" and not args.all and step_gflop > CPU_STEP_GFLOP_LIMIT:
                skipped.append(f"{name}@{size}")
                continue
            for mode in modes:
                r = bench_one(
                    name,
                    size,
                    mode,
                    batch=args.batch,
                    steps=args.steps,
                    warmup=args.warmup,
                    device=device,
                )
                r["gflops"] = gf
                rows.append(r)
                print(
                    f"{name:26s} {size:4d} {mode:22s} {r['img_per_s']:8.1f} img/s "
                    f"{r['ms_per_step']:9.1f} ms/step (warm-up {r['warmup_s']:.1f} s)",
                    flush=True,
                )

    if device.type == "cuda":
        where = f"{torch.cuda.get_device_name(device)}, torch {torch.__version__}"
    else:
        where = f"CPU ({platform.machine()}), {args.threads} threads, torch {torch.__version__}"
    cmd = "python benchmarks/bench_train.py " + " ".join(argv if argv is not None else sys.argv[1:])
    lines = [
        f"The model step alone (batched damage on the device, forward, MSE, backward, AdamW) at "
        f"batch {args.batch}, 2-channel input; median of {args.steps} steps after "
        f"{args.warmup} warm-up step(s). {where}; 1-minute load average at the start: "
        f"{load:.1f} (other processes slow CPU figures down a lot: compare at low load).",
        "",
        f"Command: `{cmd.strip()}`",
        "",
        "| model | size | mode | GFLOPs/img (fwd) | ms/step | img/s |",
        "|---|---:|---|---:|---:|---:|",
    ]
    for r in rows:
        lines.append(
            f"| {r['model']} | {r['size']} | {r['mode']} | {r['gflops']:.2f} | "
            f"{r['ms_per_step']:.0f} | {r['img_per_s']:.1f} |"
        )
    if skipped:
        lines += [
            "",
            f"Skipped on CPU (> {CPU_STEP_GFLOP_LIMIT:.0f} GFLOPs per step; `--all` runs them): "
            + ", ".join(skipped)
            + ".",
        ]
    body = "\n".join(lines)
    print(body)
    if args.write:
        write_section(args.out, body, args.table)
        print(f"wrote section '{SECTION[3:]}' of {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
