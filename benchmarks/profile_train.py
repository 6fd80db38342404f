"""Where one CPU training step spends its time: CPU user/system split, page faults, top operators.

For each model: the step ``restoreae train`` runs (batched torch damage, forward, MSE, backward,
AdamW, EMA update) on synthetic glyphs, timed after warm-up with ``resource.getrusage`` (user and
system CPU seconds, minor page faults) and then one step under ``torch.profiler`` (top operators
by self CPU time). Variants compared in the same process, interleaved round by round:

- ``--layouts``: ``nchw`` and/or ``channels_last`` (model and input);
- ``--allocs``: ``default`` (glibc: blocks above the mmap threshold are mapped and unmapped on
  every allocation, so every step faults fresh zeroed pages in — system time) and/or ``heap``
  (``restoreae.cpu.keep_freed_memory``: freed memory stays in the process and is reused).
  ``heap`` cannot be undone within a process: those rows run after all ``default`` rows.

    python benchmarks/profile_train.py --models ae_mobilenetv3,unet_mobilenetv3_small --size 224
    python benchmarks/profile_train.py --models ae_mobilenetv3 --profile 0 --rounds 3
    python benchmarks/profile_train.py --infer --batch 64 --threads 1 --profile 10

Prints only (nothing is written; docs/PERFORMANCE.md quotes a run by hand).
"""

from __future__ import annotations

import argparse
import os
import resource
import statistics
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from bench_train import _glyphs  # noqa: E402


def build_step(name: str, size: int, batch: int, channels_last: bool, ema: float | None = 0.999):
    """A closure running one engine-like training step of ``name`` (returns nothing)."""
    from restoreae.damage.torch_ops import TorchDamage
    from restoreae.models.registry import create_model
    from restoreae.train.build import param_groups
    from restoreae.train.ema import ModelEma
    from restoreae.train.losses import build_loss

    torch.manual_seed(0)
    model = create_model(name, in_chans=2, img_size=size).train()
    if channels_last:
        model.to(memory_format=torch.channels_last)
    opt = torch.optim.AdamW(param_groups(model), lr=1e-3, weight_decay=0.05)
    avg = ModelEma(model, ema) if ema is not None else None
    loss_fn = build_loss("mse")
    damage = TorchDamage()
    clean, ref = _glyphs(batch, size, 0), _glyphs(batch, size, 1)
    gen = torch.Generator().manual_seed(0)

    def step() -> None:
        x = torch.cat([damage(clean, gen), ref], dim=1)
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        loss, _ = loss_fn(model(x), clean)
        loss.backward()
        opt.step()
        opt.zero_grad(set_to_none=True)
        if avg is not None:
            avg.update(model)

    return step


def build_infer(name: str, size: int, batch: int, channels_last: bool):
    """A closure running one eval-mode forward pass of ``name`` on a batch (no autograd)."""
    from restoreae.models.registry import create_model

    torch.manual_seed(0)
    model = create_model(name, in_chans=2, img_size=size).eval()
    x = torch.cat([_glyphs(batch, size, 0), _glyphs(batch, size, 1)], dim=1)
    if channels_last:
        model.to(memory_format=torch.channels_last)
        x = x.contiguous(memory_format=torch.channels_last)

    def step() -> None:
        with torch.inference_mode():
            model(x)

    return step


def measure(step, steps: int) -> dict:
    """Per-step wall, user and system seconds and minor faults (medians over ``steps``)."""
    rows = []
    for _ in range(steps):
        r0, t0 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        step()
        r1, t1 = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        rows.append(
            (
                t1 - t0,
                r1.ru_utime - r0.ru_utime,
                r1.ru_stime - r0.ru_stime,
                r1.ru_minflt - r0.ru_minflt,
            )
        )
    wall, user, sys_, flt = (statistics.median(c) for c in zip(*rows, strict=True))
    return {"wall": wall, "user": user, "sys": sys_, "faults": flt, "walls": [r[0] for r in rows]}


def top_ops(step, k: int) -> str:
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU]) as prof:
        step()
    return prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=k)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", default="ae_mobilenetv3,unet_mobilenetv3_small")
    ap.add_argument("--size", type=int, default=224)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument(
        "--infer", action="store_true", help="time eval-mode forward passes instead of steps"
    )
    ap.add_argument("--threads", default="2", help="comma-separated torch.set_num_threads values")
    ap.add_argument("--layouts", default="channels_last", help="nchw,channels_last")
    ap.add_argument("--allocs", default="default,heap", help="default,heap")
    ap.add_argument("--steps", type=int, default=3, help="timed steps per round")
    ap.add_argument("--rounds", type=int, default=1, help="interleaved rounds over the variants")
    ap.add_argument("--profile", type=int, default=15, help="top-k operators (0: no profile)")
    args = ap.parse_args(argv)

    from restoreae.cpu import keep_freed_memory

    models = args.models.split(",")
    threads = [int(t) for t in args.threads.split(",")]
    layouts = args.layouts.split(",")
    allocs = args.allocs.split(",")
    print(
        f"# {args.size} px, batch {args.batch}; load average {os.getloadavg()[0]:.1f}; "
        f"torch {torch.__version__}; {os.cpu_count()} CPUs",
        flush=True,
    )
    results: dict[tuple, list[dict]] = {}
    for alloc in allocs:
        if alloc == "heap":
            keep_freed_memory()
        build = build_infer if args.infer else build_step
        steps = {
            (m, t, lay): build(m, args.size, args.batch, lay == "channels_last")
            for m in models
            for t in threads
            for lay in layouts
        }
        for (_m, t, _lay), step in steps.items():  # warm-up (first-touch, oneDNN primitive cache)
            torch.set_num_threads(t)
            step()
        for _ in range(args.rounds):
            for (m, t, lay), step in steps.items():
                torch.set_num_threads(t)
                r = measure(step, args.steps)
                results.setdefault((m, t, lay, alloc), []).append(r)
                cpu = r["user"] + r["sys"]
                print(
                    f"{m:24s} threads {t} {lay:13s} alloc {alloc:7s} "
                    f"{args.batch / r['wall']:6.1f} img/s  {1000 * r['wall'] / args.batch:6.1f} ms/img  wall {r['wall']:.2f} s  "
                    f"user {r['user']:.2f} s  sys {r['sys']:.2f} s ({100 * r['sys'] / max(cpu, 1e-9):.0f} %)  "
                    f"minor faults {r['faults']:.0f}  {args.batch / max(cpu, 1e-9):6.1f} img/CPU-s",
                    flush=True,
                )
        if args.profile:
            for (m, t, lay), step in steps.items():
                torch.set_num_threads(t)
                print(f"\n## {m}, {t} thread(s), {lay}, alloc {alloc}: top operators (self CPU)")
                print(top_ops(step, args.profile), flush=True)
    print("\n# summary per variant: img/s (wall) min / median; img per CPU-second median")
    for key, rs in results.items():
        rates = sorted(args.batch / w for r in rs for w in r["walls"])
        cpu = statistics.median(args.batch / max(r["user"] + r["sys"], 1e-9) for r in rs)
        print(
            f"{' '.join(map(str, key)):60s} {min(rates):6.1f} / {statistics.median(rates):6.1f}"
            f"   {cpu:6.1f} img/CPU-s"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
