"""DDP under real torchrun processes (2 ranks, Gloo, CPU): both ranks train, rank 0 alone writes
the run folder, and the weights are identical on both ranks at the end."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import yaml

from restoreae.train.checkpoint import load_state, read_log

FINISH_RE = re.compile(
    r"\[rank (\d)/(\d)\] finished at step (\d+) \(epoch \d+\); parameter sha256 (\w+)"
)


def test_torchrun_two_processes(tiny_corpus: Path, tmp_path: Path) -> None:
    run = tmp_path / "run"
    cfg = {
        "data": {"corpus": str(tiny_corpus), "img_size": 64},
        "model": {
            "name": "vit_mae",
            "kwargs": {
                "embed_dim": 32,
                "depth": 2,
                "num_heads": 2,
                "decoder_dim": 32,
                "decoder_depth": 1,
                "decoder_heads": 2,
            },
        },
        "optim": {"lr": 3e-3, "warmup_steps": 1, "grad_accum_steps": 2},
        "train": {
            "max_steps": 4,
            "batch_size": 2,
            "val_num": 8,
            "val_every": 2,
            "log_every": 1,
            "progress": False,
            "ema": 0.9,
        },
        "output": {"run_dir": str(run)},
    }
    cfg_path = tmp_path / "ddp.yaml"
    cfg_path.write_text(yaml.safe_dump(cfg), encoding="utf-8")
    cmd = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node=2",
        "--standalone",
        "-m",
        "restoreae.cli",
        "train",
        "-c",
        str(cfg_path),
    ]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240, env=env)
    output = proc.stdout + proc.stderr
    assert proc.returncode == 0, output[-3000:]

    finished = {int(m[0]): m for m in FINISH_RE.findall(output)}
    assert sorted(finished) == [0, 1], output[-3000:]
    assert all(m[1] == "2" and m[2] == "4" for m in finished.values())
    assert finished[0][3] == finished[1][3]  # identical parameters on both ranks

    # Rank 0 alone wrote the folder: one TensorBoard file, no duplicated log records.
    assert len(list((run / "tb").iterdir())) == 1
    records = read_log(run / "log.jsonl")
    train_steps = [r["step"] for r in records if r["type"] == "train"]
    val_steps = [r["step"] for r in records if r["type"] == "val"]
    assert train_steps == [1, 2, 3, 4] and val_steps == [2, 4]
    state = load_state(run / "state" / "last.pt")
    assert state["step"] == 4 and state["world_size"] == 2
    assert (run / "weights" / "best.safetensors").is_file()
