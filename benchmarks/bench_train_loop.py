"""Full training-loop throughput: ``restoreae train`` itself, timed from outside.

Each case is a config (plus ``--set`` overrides) run as a child process ``restoreae train`` on a
prepared corpus — data loading, device resize, damage, forward, loss, backward, AdamW, EMA,
logging, exactly as a real run. Start-up (imports, model build, validation set) and the final
validation + checkpoint are removed by running every case twice, for ``--steps A,B`` optimizer
steps: per-step time = (T(B) − T(A)) / (B − A), both wall-clock and CPU (user + system of the
child, from ``wait4``). Peak memory = the largest resident set of the child (``ru_maxrss``).
Cases are interleaved within each repeat; min and median over ``--repeats`` are reported.

    python benchmarks/bench_train_loop.py --corpus data/corpus128 --cases default_model
    python benchmarks/bench_train_loop.py --corpus224 data/corpus224 \\
        --cases ae_mobilenetv3_224,ae_mobilenetv3_large_224 --repeats 3

Prints a markdown table; nothing is written (paste it into docs/PERFORMANCE.md by hand).
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# name → (config, img_size, overrides). CPU settings: batch 32, fp32, no worker processes.
_CPU = ["train.batch_size=32", "train.amp=none", "train.num_workers=0", "train.device=cpu"]
CASES: dict[str, tuple[str, int, list[str]]] = {
    "default_model": ("configs/default_model.yaml", 128, []),
    "cpu_unet_small_128": ("configs/cpu_unet_small_128.yaml", 128, []),
    "cpu_unet_small_96": ("configs/cpu_unet_small_96.yaml", 96, []),
    "ae_mobilenetv3_224": ("configs/ae_mobilenetv3_224.yaml", 224, _CPU),
    "ae_mobilenetv3_large_224": (
        "configs/ae_mobilenetv3_224.yaml",
        224,
        [*_CPU, "model.name=ae_mobilenetv3_large"],
    ),
    "unet_mobilenetv3_small_224": ("configs/unet_mobilenetv3_small_224.yaml", 224, _CPU),
}


def run_once(
    config: str, overrides: list[str], corpus: str, steps: int, threads: int, workdir: Path
) -> dict:
    """Run ``restoreae train`` for ``steps`` steps → wall s, CPU s, peak RSS MiB."""
    run_dir = Path(tempfile.mkdtemp(prefix="run-", dir=workdir))
    sets = [
        f"data.corpus={corpus}",
        f"train.max_steps={steps}",
        "train.epochs=null",
        "train.val_every=null",
        "train.val_num=32",
        "train.progress=false",
        "train.log_every=1000",
        f"train.threads={threads}",
        f"output.run_dir={run_dir}",
        *overrides,
    ]
    cmd = [sys.executable, "-m", "restoreae.cli", "train", "-c", str(ROOT / config)]
    for s in sets:
        cmd += ["--set", s]
    t0 = time.perf_counter()
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - t0
    out = proc.stdout.read().decode("utf-8", "replace") if proc.stdout else ""
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed ({proc.returncode}):\n{out[-3000:]}")
    return {
        "wall": wall,
        "cpu": usage.ru_utime + usage.ru_stime,
        "sys": usage.ru_stime,
        "rss_mib": usage.ru_maxrss / 1024.0,  # KiB on Linux
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--cases", default="default_model", help=f"comma-separated: {', '.join(CASES)}")
    ap.add_argument("--corpus", default="data/corpus128", help="corpus for cases below 224 px")
    ap.add_argument("--corpus224", default="data/corpus224", help="corpus for 224 px cases")
    ap.add_argument("--steps", default="2,6", help="A,B: optimizer steps of the two runs")
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--batch", type=int, default=32, help="train.batch_size of every case")
    args = ap.parse_args(argv)
    a, b = (int(s) for s in args.steps.split(","))
    if not 0 < a < b:
        raise SystemExit("--steps A,B needs 0 < A < B")
    names = args.cases.split(",")
    unknown = [n for n in names if n not in CASES]
    if unknown:
        raise SystemExit(f"unknown case(s) {unknown}; known: {', '.join(CASES)}")

    load = os.getloadavg()[0]
    res: dict[str, list[dict]] = {n: [] for n in names}
    with tempfile.TemporaryDirectory(prefix="bench-loop-") as td:
        for rep in range(args.repeats):
            for n in names:
                config, size, overrides = CASES[n]
                corpus = args.corpus224 if size == 224 else args.corpus
                ov = [*overrides, f"train.batch_size={args.batch}"]
                ra = run_once(config, ov, corpus, a, args.threads, Path(td))
                rb = run_once(config, ov, corpus, b, args.threads, Path(td))
                per_wall = (rb["wall"] - ra["wall"]) / (b - a)
                per_cpu = (rb["cpu"] - ra["cpu"]) / (b - a)
                per_sys = (rb["sys"] - ra["sys"]) / (b - a)
                r = {
                    "img_s": args.batch / per_wall,
                    "img_cpu_s": args.batch / per_cpu,
                    "sys_share": per_sys / per_cpu,
                    "rss": max(ra["rss_mib"], rb["rss_mib"]),
                }
                res[n].append(r)
                print(
                    f"[{rep + 1}/{args.repeats}] {n:28s} {r['img_s']:6.1f} img/s  "
                    f"{r['img_cpu_s']:6.1f} img/CPU-s  sys {100 * r['sys_share']:4.0f} %  "
                    f"peak {r['rss']:6.0f} MiB",
                    flush=True,
                )

    print(
        f"\nFull loop (`restoreae train`), batch {args.batch}, {args.threads} thread(s), steps "
        f"{a}→{b}, {args.repeats} interleaved repeats; 1-minute load average at the start "
        f"{load:.1f}.\n\nCommand: `python benchmarks/bench_train_loop.py "
        + " ".join(argv if argv is not None else sys.argv[1:])
        + "`\n"
    )
    print(
        "| case | size | img/s min / median | img per CPU-second (median) | system time | peak RSS |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for n in names:
        rs = res[n]
        rates = [r["img_s"] for r in rs]
        print(
            f"| {n} | {CASES[n][1]} | {min(rates):.1f} / {statistics.median(rates):.1f} | "
            f"{statistics.median(r['img_cpu_s'] for r in rs):.1f} | "
            f"{100 * statistics.median(r['sys_share'] for r in rs):.0f} % | "
            f"{max(r['rss'] for r in rs) / 1024:.2f} GiB |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
