"""SIGKILL a real ``restoreae train`` process again and again; every resume must end where an
uninterrupted run ends. Prints the figures of docs/RELIABILITY.md ("kills during training").

    python benchmarks/kill_train_probe.py --corpus data/corpus128 --kills 10

A small recipe (``unet_mobilenetv3_small`` at 64 px, batch 8, 2-step gradient accumulation,
clipping, EMA, a checkpoint every 2 steps) is first run straight through. Then the same recipe is
started in a fresh run folder and killed with SIGKILL ``--kills`` times, each time after a random
1–4 further training steps have been logged (so mid-training, at any point of a step or a save),
resuming automatically at every start, and finally left to finish. A kill *survived* when the next start resumed without error; the probe then checks that
the finished run's weights and per-step training losses equal the straight run's exactly and that
no temporary file is left.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml


def recipe(corpus: Path, run_dir: Path, steps: int) -> dict:
    """The probe's training config (plain data, as a YAML file would hold it)."""
    return {
        "data": {"corpus": str(corpus), "img_size": 64, "use_reference": True, "damage": "seed"},
        "model": {"name": "unet_mobilenetv3_small"},
        "optim": {"lr": 2e-3, "warmup_steps": 4, "grad_accum_steps": 2, "clip_grad": 1.0},
        "train": {
            "max_steps": steps,
            "batch_size": 8,
            "save_every_steps": 2,
            "val_every": steps,
            "val_num": 16,
            "ema": 0.9,
            "log_every": 1,
            "progress": False,
            "seed": 3,
            "threads": 1,
            "num_workers": 0,
            "device": "cpu",
        },
        "output": {"run_dir": str(run_dir)},
    }


def start(config: Path) -> subprocess.Popen:
    cmd = [sys.executable, "-m", "restoreae.cli", "train", "-c", str(config)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)


def losses(run: Path) -> list[tuple[int, float]]:
    """(step, training loss) of every logged training step, last record per step (a resumed run
    repeats the steps after its last checkpoint)."""
    out: dict[int, float] = {}
    for line in (run / "log.jsonl").read_text(encoding="utf-8").splitlines():
        rec = json.loads(line)
        if rec.get("type") == "train":
            out[int(rec["step"])] = float(rec["loss"])
    return sorted(out.items())


def _records(log: Path) -> int:
    """Number of complete lines in the run's log (0 before it exists)."""
    try:
        return log.read_bytes().count(b"\n")
    except FileNotFoundError:
        return 0


def same_weights(a: Path, b: Path) -> bool:
    from safetensors.numpy import load_file

    wa, wb = load_file(str(a)), load_file(str(b))
    return wa.keys() == wb.keys() and all((wa[k] == wb[k]).all() for k in wa)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--corpus", type=Path, default=Path("data/corpus128"))
    ap.add_argument("--kills", type=int, default=10)
    ap.add_argument("--steps", type=int, default=60, help="optimizer steps of the recipe")
    ap.add_argument("--seed", type=int, default=0, help="seed of the kill moments")
    args = ap.parse_args(argv)
    if not (args.corpus / "manifest.json").is_file():
        ap.error(f"--corpus: no corpus at {args.corpus} (restoreae build-data)")
    rng = random.Random(args.seed)
    with tempfile.TemporaryDirectory(prefix="kill-train-") as tmp:
        d = Path(tmp)
        straight_cfg, killed_cfg = d / "straight.yaml", d / "killed.yaml"
        straight_cfg.write_text(yaml.safe_dump(recipe(args.corpus, d / "straight", args.steps)))
        killed_cfg.write_text(yaml.safe_dump(recipe(args.corpus, d / "killed", args.steps)))
        t0 = time.perf_counter()
        proc = start(straight_cfg)
        _, err = proc.communicate()
        if proc.returncode != 0:
            print(err.decode()[-2000:], file=sys.stderr)
            return 1
        straight_s = time.perf_counter() - t0
        kills, finished_early = 0, 0
        errors: list[str] = []
        log = d / "killed" / "log.jsonl"
        while kills < args.kills:
            seen = _records(log)
            wait_for = seen + rng.randint(1, 4)
            proc = start(killed_cfg)
            while proc.poll() is None and _records(log) < wait_for:
                time.sleep(0.02)
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait()
                proc.stderr.close()
                kills += 1
                continue
            if proc.returncode != 0:  # a start after a kill that did not resume
                errors.append(proc.stderr.read().decode()[-500:])
            finished_early += 1  # the run reached its last step first
            break
        # Every kill is followed by a start that must resume cleanly and run to the end.
        proc = start(killed_cfg)
        _, err = proc.communicate()
        if proc.returncode != 0:
            errors.append(err.decode()[-500:])
        survived = kills if not errors else kills - 1
        straight, killed = d / "straight", d / "killed"
        exact = not errors and (
            len(losses(straight)) == args.steps
            and losses(killed) == losses(straight)
            and same_weights(
                killed / "weights" / "last.safetensors", straight / "weights" / "last.safetensors"
            )
        )
        temporaries = [str(p) for p in killed.rglob("*") if p.name.endswith(".tmp")]
        report = {
            "kills": kills,
            "survived": survived,
            "finished_before_the_last_kill": bool(finished_early),
            "identical_to_uninterrupted_run": exact,
            "temporaries_left": len(temporaries),
            "straight_run_s": round(straight_s, 1),
            "errors": errors,
        }
    print(json.dumps(report, ensure_ascii=False))
    return 0 if exact and not temporaries else 1


if __name__ == "__main__":
    raise SystemExit(main())
