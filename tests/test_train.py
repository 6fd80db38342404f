"""Training engine: schedules, config errors, losses, EMA, a short run, exact resume, kill-safety,
non-finite loss, eval-only, pretrain → fine-tune. A tiny ViT (65k parameters) on ``tiny_corpus``."""

from __future__ import annotations

import argparse
import json
import math
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file

from restoreae.errors import ConfigError
from restoreae.train import batches, engine
from restoreae.train.checkpoint import load_state, read_log, read_weights_metadata
from restoreae.train.config import config_from_dict, load_config
from restoreae.train.ema import ModelEma
from restoreae.train.losses import build_loss, parse_loss_spec, ssim_loss
from restoreae.train.schedule import LrWdScheduler, cosine_with_warmup

REPO = Path(__file__).resolve().parents[1]
TINY_VIT = {
    "embed_dim": 32,
    "depth": 2,
    "num_heads": 2,
    "decoder_dim": 32,
    "decoder_depth": 1,
    "decoder_heads": 2,
    "mask_ratio": 0.25,  # exercises the global RNG (masks) in the resume tests
}


def tiny_config(corpus: Path, run_dir: Path, **sections: dict) -> dict:
    """A raw config for a tiny ViT at 64 px; ``sections`` update the defaults per section."""
    raw = {
        "data": {"corpus": str(corpus), "img_size": 64, "use_reference": True},
        "model": {"name": "vit_mae", "kwargs": dict(TINY_VIT)},
        "optim": {"lr": 3e-3, "warmup_steps": 2, "weight_decay_end": 0.1},
        "train": {
            "max_steps": 6,
            "batch_size": 4,
            "val_num": 12,
            "log_every": 1,
            "progress": False,
            "seed": 1,
        },
        "output": {"run_dir": str(run_dir)},
    }
    for name, values in sections.items():
        raw[name].update(values)
    return raw


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Same thread count in this process and in subprocesses: bitwise-comparable results."""
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def _train_losses(run_dir: Path) -> list[tuple[int, float]]:
    return [(r["step"], r["loss"]) for r in read_log(run_dir / "log.jsonl") if r["type"] == "train"]


def _assert_same_weights(a: Path, b: Path) -> None:
    ta, tb = load_file(str(a)), load_file(str(b))
    assert ta.keys() == tb.keys()
    for k in ta:
        assert torch.equal(ta[k], tb[k]), k


# --------------------------------------------------------------------------- schedule
def test_cosine_with_warmup_values():
    kw = {"base": 1.0, "final": 0.1, "total_steps": 12, "warmup_steps": 2}
    vals = [cosine_with_warmup(s, **kw) for s in range(14)]
    assert vals[0] == pytest.approx(0.5) and vals[1] == pytest.approx(1.0)  # linear warm-up
    assert vals[2] == pytest.approx(1.0)  # cosine starts at base
    assert vals[11] == pytest.approx(0.1) and vals[13] == pytest.approx(0.1)  # ends at final
    mid = 2 + (11 - 2) / 2
    assert cosine_with_warmup(int(mid), **kw) > 0.55 > cosine_with_warmup(int(mid) + 1, **kw)
    assert all(a >= b for a, b in zip(vals[1:], vals[2:], strict=False))  # non-increasing
    assert cosine_with_warmup(0, base=2.0, final=0.0, total_steps=1) == 2.0


def test_scheduler_sets_lr_and_weight_decay_per_group():
    p1, p2 = torch.nn.Parameter(torch.zeros(2, 2)), torch.nn.Parameter(torch.zeros(2))
    opt = torch.optim.AdamW(
        [{"params": [p1], "apply_wd": True}, {"params": [p2], "apply_wd": False}], lr=1.0
    )
    sch = LrWdScheduler(
        opt,
        lr=4e-3,
        min_lr=1e-6,
        weight_decay=0.05,
        weight_decay_end=0.5,
        total_steps=10,
        warmup_steps=4,
    )
    lr, wd = sch.set_step(0)
    assert lr == pytest.approx(1e-3) and wd == pytest.approx(0.05)
    assert opt.param_groups[0]["weight_decay"] == pytest.approx(0.05)
    assert opt.param_groups[1]["weight_decay"] == 0.0
    lr, wd = sch.set_step(9)
    assert lr == pytest.approx(1e-6) and wd == pytest.approx(0.5)
    assert opt.param_groups[0]["lr"] == pytest.approx(1e-6)
    assert sch.state_dict()["last_step"] == 9


# --------------------------------------------------------------------------- config
def _write(path: Path, raw: dict) -> Path:
    path.write_text(yaml.safe_dump(raw), encoding="utf-8")
    return path


def test_config_overrides_are_yaml_typed(tiny_corpus, tmp_path):
    path = _write(tmp_path / "c.yaml", tiny_config(tiny_corpus, tmp_path / "run"))
    cfg = load_config(
        path,
        [
            "train.batch_size=8",
            "optim.lr=1e-3",
            "train.ema=null",
            "model.kwargs.depth=3",
            "data.damage=real",
        ],
    )
    assert cfg.train.batch_size == 8 and isinstance(cfg.train.batch_size, int)
    assert cfg.optim.lr == pytest.approx(1e-3) and cfg.train.ema is None
    assert cfg.model.kwargs["depth"] == 3 and cfg.in_chans == 2 and cfg.data.damage == "real"
    assert cfg.source == str(path)
    # round trip through the resolved YAML
    again = config_from_dict(yaml.safe_load(cfg.to_yaml()))
    assert again.to_dict() == cfg.to_dict()


@pytest.mark.parametrize(
    ("mutate", "needle"),
    [
        (lambda r: r["train"].update(batchsize=3), "train.batchsize"),
        (lambda r: r.update(trainer={}), "trainer"),
        (lambda r: r["train"].update(batch_size="big"), "train.batch_size"),
        (lambda r: r["train"].update(amp="fp8"), "train.amp"),
        (lambda r: r["optim"].update(betas=[0.9]), "optim.betas"),
        (lambda r: r["train"].update(loss="l1+huber"), "train.loss"),
        (lambda r: r["data"].update(corpus="/nonexistent/corpus"), "data.corpus"),
        (lambda r: r["train"].update(max_steps=None), "train.epochs"),
        (lambda r: r["data"].update(damage={"opz": []}), "data.damage"),
        (lambda r: r["data"].update(damage="no-such-preset"), "data.damage"),
        (lambda r: r["data"].update(damage={"mix": {"seed": 1, "nope": 1}}), "data.damage"),
        (lambda r: r["data"].update(damage={"mix": {"seed": 0}}), "data.damage"),
        (lambda r: r["data"].update(reference_dropout=1.0), "data.reference_dropout"),
        (lambda r: r["data"].update(reference_mismatch=-0.1), "data.reference_mismatch"),
        (lambda r: r["train"].update(mask_tolerance=-1), "train.mask_tolerance"),
        (lambda r: r["train"].update(mask_forgive="blur"), "train.mask_forgive"),
        (lambda r: r["train"].update(mask_forgiven="ignore"), "train.mask_forgiven"),
        (lambda r: r["train"].update(content_weight=-0.5), "train.content_weight"),
        (lambda r: r["train"].update(content_weight=0.5, mask_weight=0.0), "train.content_weight"),
        (lambda r: r["train"].update(val_damage=["op:no_such_op"]), "train.val_damage[0]"),
        (lambda r: r["train"].update(val_damage=["op:blur", "op:blur"]), "train.val_damage"),
        (lambda r: r["train"].update(val_style="no-such-style"), "train.val_style"),
        (lambda r: r["data"].update(reference_style="no-such-style"), "data.reference_style"),
        (
            lambda r: r["data"].update(reference_fit=True, use_reference=False),
            "data.reference_fit",
        ),
    ],
)
def test_config_errors_name_key_and_file(tiny_corpus, tmp_path, mutate, needle):
    raw = tiny_config(tiny_corpus, tmp_path / "run")
    mutate(raw)
    path = _write(tmp_path / "bad.yaml", raw)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert needle in str(err.value) and str(path) in str(err.value)


def test_config_override_errors(tiny_corpus, tmp_path):
    path = _write(tmp_path / "c.yaml", tiny_config(tiny_corpus, tmp_path / "run"))
    with pytest.raises(ConfigError, match=r"train\.bach_size.*did you mean 'train\.batch_size'"):
        load_config(path, ["train.bach_size=8"])
    with pytest.raises(ConfigError, match="train.seed"):
        load_config(path, ["train.seed=1.5"])
    with pytest.raises(ConfigError, match="section.key=value"):
        load_config(path, ["train.seed"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")


@pytest.mark.parametrize(
    "path",
    sorted((REPO / "configs").glob("*.yaml"))
    + sorted((REPO / "configs" / "ablation").glob("*.yaml")),
    ids=lambda p: p.name,
)
def test_every_recipe_in_configs_is_valid(path, monkeypatch):
    """Every training recipe shipped in configs/ loads and passes the config check, its damage
    (a preset, a file or a mix of them, relative to the repository root) resolves, and its model
    builds as the engine builds it. Corpora and ``init_from`` weights are left out: the commands in
    each recipe's header build them."""
    from restoreae.damage.pipeline import resolve_mix
    from restoreae.train.build import build_model

    monkeypatch.chdir(REPO)
    cfg = load_config(path, check_paths=False)
    assert resolve_mix(cfg.data.damage, where="data.damage")
    assert sum(p.numel() for p in build_model(cfg).parameters()) > 0


# --------------------------------------------------------------------------- losses / EMA
def test_losses():
    assert parse_loss_spec("0.8*l1+0.2*ssim") == {"l1": 0.8, "ssim": 0.2}
    assert parse_loss_spec({"mse": 1, "edge": 0.5}) == {"mse": 1.0, "edge": 0.5}
    with pytest.raises(ValueError, match="unknown loss term"):
        parse_loss_spec("mse+foo")
    g = torch.Generator().manual_seed(0)
    y = (torch.rand(2, 1, 32, 32, generator=g) > 0.7).float()
    p = (y + 0.1 * torch.randn(2, 1, 32, 32, generator=g)).clamp(0, 1)
    assert float(ssim_loss(y, y)) == pytest.approx(0.0, abs=1e-5)
    loss = build_loss("mse+l1+ssim+edge")
    total, parts = loss(p, y)
    assert float(parts["mse"]) == pytest.approx(float(((p - y) ** 2).mean()), rel=1e-6)
    assert float(parts["edge"]) > float(parts["l1"]) > 0  # edge weights are >= 1
    assert float(total) == pytest.approx(sum(float(v) for v in parts.values()), rel=1e-6)


def test_coarse_l1_forgives_a_stroke_drawn_off_its_place_not_one_left_out():
    from restoreae.train.losses import l1_coarse_loss, l1_loss

    target = torch.zeros(1, 1, 128, 128)
    target[..., 40:42, 20:100] = 1.0  # a 2 px horizontal stroke
    shifted = torch.zeros_like(target)
    shifted[..., 41:43, 20:100] = 1.0  # drawn 1 px low
    missing = torch.zeros_like(target)
    far = torch.zeros_like(target)
    far[..., 60:62, 20:100] = 1.0  # drawn 20 px low
    # plain L1: a stroke drawn 1 px off costs as much as leaving it out, 20 px off twice as much;
    # the blurred L1 (sigma 2 px) costs leaving it out as L1 does, 1 px off under 0.4 of that
    l1_missing = float(l1_loss(missing, target))
    assert float(l1_loss(shifted, target)) == pytest.approx(l1_missing)
    assert float(l1_coarse_loss(missing, target)) == pytest.approx(l1_missing, rel=1e-5)
    assert float(l1_coarse_loss(shifted, target)) < 0.4 * l1_missing
    assert float(l1_coarse_loss(far, target)) == pytest.approx(2 * l1_missing, rel=1e-5)
    assert float(l1_coarse_loss(target, target)) == 0.0
    assert parse_loss_spec("l1+0.2*ssim+l1_coarse")["l1_coarse"] == 1.0


def test_ema_update():
    m = torch.nn.Linear(2, 1)
    with torch.no_grad():
        m.weight.fill_(0.0)
    ema = ModelEma(m, decay=0.5)
    with torch.no_grad():
        m.weight.fill_(1.0)
    ema.update(m)  # warm-up decay min(0.5, 1/10) = 0.1
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.9))
    ema.update(m)  # min(0.5, 2/11)
    assert torch.allclose(ema.module.weight, torch.full((1, 2), 0.9 + 0.1 * (1 - 2 / 11)))
    other = ModelEma(torch.nn.Linear(2, 1), decay=0.5)
    other.load_state_dict(ema.state_dict())
    assert torch.equal(other.module.weight, ema.module.weight) and other.num_updates == 2


# --------------------------------------------------------------------------- training runs
RESUME_SECTIONS = {
    "optim": {"lr": 3e-3, "warmup_steps": 2, "grad_accum_steps": 2, "clip_grad": 1.0},
    "train": {"max_steps": 6, "batch_size": 2, "save_every_steps": 2, "ema": 0.9},
}


@pytest.fixture(scope="module")
def straight_run(tiny_corpus, tmp_path_factory) -> Path:
    """6 uninterrupted steps (accumulation 2, clipping, EMA, MAE masking), checkpoint every 2."""
    run = tmp_path_factory.mktemp("straight") / "run"
    return engine.train(config_from_dict(_resume_raw(tiny_corpus, run)))


def _resume_raw(tiny_corpus: Path, run: Path) -> dict:
    raw = tiny_config(tiny_corpus, run)
    for k, v in RESUME_SECTIONS.items():
        raw[k].update(v)
    return raw


def test_run_folder_and_loss_goes_down(tiny_corpus, tmp_path):
    from restoreae.models.io import load_model

    raw = tiny_config(tiny_corpus, tmp_path / "run", train={"max_steps": 16, "val_every": 8})
    run = engine.train(config_from_dict(raw))
    assert (run / "config.yaml").is_file() and (run / "state" / "last.pt").is_file()
    assert any((run / "tb").iterdir())
    losses = [loss for _, loss in _train_losses(run)]
    assert len(losses) == 16 and all(math.isfinite(v) for v in losses)
    assert sum(losses[-3:]) / 3 < 0.8 * sum(losses[:3]) / 3
    vals = [r for r in read_log(run / "log.jsonl") if r["type"] == "val"]
    assert [r["step"] for r in vals] == [8, 16]
    model, meta = load_model(run / "weights" / "best.safetensors")
    assert model.config["in_chans"] == 2 and meta["img_size"] == 64 and meta["in_chans"] == 2
    for key in ("reference_font", "reference_face_index", "traditional"):
        assert key in meta
    best = max(vals, key=lambda r: r["psnr"])
    assert meta["step"] == best["step"] and meta["val_psnr"] == pytest.approx(best["psnr"])
    assert (run / "weights" / f"best-{best['step']}.safetensors").is_file()
    assert len(list((run / "weights").glob("best-*.safetensors"))) == 1  # keep_best_k = 1
    state = load_state(run / "state" / "last.pt")
    assert state["step"] == 16 and state["config"]["train"]["max_steps"] == 16
    with pytest.raises(ConfigError, match=r"differs in optim\.betas, train\.loss"):
        raw["optim"]["betas"] = [0.8, 0.99]  # resume with another recipe
        raw["train"]["loss"] = "l1"
        engine.train(config_from_dict(raw))


def test_resume_is_exact(straight_run, tiny_corpus, tmp_path):
    run = tmp_path / "run"
    cfg = config_from_dict(_resume_raw(tiny_corpus, run))
    engine.train(cfg, stop_at_step=3)
    assert load_state(run / "state" / "last.pt")["step"] == 3
    engine.train(config_from_dict(_resume_raw(tiny_corpus, run)))  # automatic resume
    assert _train_losses(run) == _train_losses(straight_run)
    _assert_same_weights(
        run / "weights" / "last.safetensors", straight_run / "weights" / "last.safetensors"
    )
    a, b = load_state(run / "state" / "last.pt"), load_state(straight_run / "state" / "last.pt")
    for k in a["model"]:
        assert torch.equal(a["model"][k], b["model"][k])


_KILL_SCRIPT = """
import json, os, signal, sys
import torch
torch.set_num_threads(1)
from restoreae.train.config import config_from_dict
from restoreae.train.engine import train

raw, mode = json.loads(sys.argv[1]), sys.argv[2]
real_replace = os.replace
count = {"n": 0}

def replace(src, dst):
    name = os.path.basename(str(dst))
    if mode == "before-state-replace" and name == "last.pt":
        count["n"] += 1
        if count["n"] == 2:  # the step-4 state is fully written, not yet renamed
            os.kill(os.getpid(), signal.SIGKILL)
    if mode == "torn-weights" and name == "last.safetensors":
        count["n"] += 1
        if count["n"] == 2:  # half of the step-4 weights file written
            with open(src, "r+b") as f:
                f.truncate(os.path.getsize(src) // 2)
            os.kill(os.getpid(), signal.SIGKILL)
    return real_replace(src, dst)

os.replace = replace
train(config_from_dict(raw))
"""


@pytest.mark.parametrize("mode", ["before-state-replace", "torn-weights"])
def test_sigkill_during_save_then_resume(straight_run, tiny_corpus, tmp_path, mode):
    from restoreae.models.io import load_model

    run = tmp_path / "run"
    raw = _resume_raw(tiny_corpus, run)
    script = tmp_path / "kill_train.py"
    script.write_text(_KILL_SCRIPT, encoding="utf-8")
    proc = subprocess.run(
        [sys.executable, str(script), json.dumps(raw), mode],
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    # The folder is consistent: the state is the step-2 checkpoint, the weights load.
    assert load_state(run / "state" / "last.pt")["step"] == 2
    load_model(run / "weights" / "last.safetensors")
    step_on_disk = read_weights_metadata(run / "weights" / "last.safetensors")["step"]
    assert step_on_disk == (4 if mode == "before-state-replace" else 2)
    engine.train(config_from_dict(raw))  # automatic resume from step 2
    assert not [p for p in run.rglob("*") if p.name.endswith(".tmp")]
    assert _train_losses(run) == _train_losses(straight_run)
    _assert_same_weights(
        run / "weights" / "last.safetensors", straight_run / "weights" / "last.safetensors"
    )


def test_non_finite_loss_stops_and_keeps_last_checkpoint(tiny_corpus, tmp_path, monkeypatch):
    from restoreae.train import setup

    real_build = setup.build_loss

    def nan_after_three(spec):
        loss = real_build(spec)
        calls = {"n": 0}

        def forward(pred, target):
            calls["n"] += 1
            total, parts = loss(pred, target)
            return (total * float("nan") if calls["n"] >= 4 else total), parts

        return forward

    monkeypatch.setattr(setup, "build_loss", nan_after_three)
    run = tmp_path / "run"
    raw = tiny_config(tiny_corpus, run, train={"max_steps": 8, "save_every_steps": 2})
    with pytest.raises(engine.NonFiniteLossError) as err:
        engine.train(config_from_dict(raw))
    msg = str(err.value)
    assert "non-finite" in msg and "step 4" in msg and "last.pt (step 2)" in msg
    assert load_state(run / "state" / "last.pt")["step"] == 2
    assert read_weights_metadata(run / "weights" / "last.safetensors")["step"] == 2


def test_eval_only_matches_logged_validation(straight_run, tiny_corpus, capsys):
    raw = _resume_raw(tiny_corpus, straight_run)
    cfg_path = straight_run.parent / "cfg.yaml"
    _write(cfg_path, raw)
    args = argparse.Namespace(config=cfg_path, overrides=[], resume=None, eval_only=True)
    assert engine.train_command(args) == 0
    out = json.loads(capsys.readouterr().out)
    logged = [r for r in read_log(straight_run / "log.jsonl") if r["type"] == "val"][-1]
    assert out["weights"].endswith("best.safetensors") and out["num"] == 12
    assert out["psnr"] == pytest.approx(logged["psnr"], abs=1e-4)
    assert out["loss"] == pytest.approx(logged["loss"], rel=1e-4)
    written = json.loads((straight_run / "eval-val.json").read_text())
    assert written["psnr"] == out["psnr"]


def test_extra_validation_sets_select_on_their_mean(straight_run, tiny_corpus, tmp_path, capsys):
    """train.val_damage adds validation sets on the same glyphs without changing training: the
    main set's PSNR is the plain run's, and the PSNR that selects is the mean over all sets."""
    raw = _resume_raw(tiny_corpus, tmp_path / "run")
    raw["train"]["val_damage"] = ["op:rectangles", "op:blur"]
    run = engine.train(config_from_dict(raw))
    plain = [r for r in read_log(straight_run / "log.jsonl") if r["type"] == "val"]
    extra = [r for r in read_log(run / "log.jsonl") if r["type"] == "val"]
    assert [r["step"] for r in extra] == [r["step"] for r in plain]
    for a, b in zip(plain, extra, strict=True):
        assert b["psnr[main]"] == pytest.approx(a["psnr"], abs=1e-6)
        assert b["loss"] == pytest.approx(a["loss"], rel=1e-6)
        parts = [b["psnr[main]"], b["psnr[op:rectangles]"], b["psnr[op:blur]"]]
        assert b["psnr"] == pytest.approx(sum(parts) / 3)
        assert b["psnr[op:rectangles]"] != b["psnr[op:blur]"]
    _assert_same_weights(
        run / "weights" / "last.safetensors", straight_run / "weights" / "last.safetensors"
    )
    cfg_path = _write(tmp_path / "cfg.yaml", raw)
    args = argparse.Namespace(config=cfg_path, overrides=[], resume=None, eval_only=True)
    assert engine.train_command(args) == 0
    out = json.loads(capsys.readouterr().out)
    best = max(extra, key=lambda r: r["psnr"])
    assert out["psnr"] == pytest.approx(best["psnr"], abs=1e-4)
    assert out["psnr[op:blur]"] == pytest.approx(best["psnr[op:blur]"], abs=1e-4)


def test_val_style_styles_the_validation_targets(tiny_corpus):
    from restoreae.train.validate import MAIN_VAL, build_val_sets

    raw = tiny_config(tiny_corpus, Path("unused"))
    plain = build_val_sets(config_from_dict(raw), _damage(raw), torch.device("cpu"))
    raw["train"]["val_style"] = "calligraphy"
    styled = build_val_sets(config_from_dict(raw), _damage(raw), torch.device("cpu"))
    assert list(styled) == [MAIN_VAL]
    a, b = plain[MAIN_VAL].targets, styled[MAIN_VAL].targets
    assert a.shape == b.shape and not torch.equal(a, b)
    again = build_val_sets(config_from_dict(raw), _damage(raw), torch.device("cpu"))
    assert torch.equal(again[MAIN_VAL].targets, b)


def _damage(raw: dict):
    return batches.load_damage(config_from_dict(raw))


def test_pretrain_then_finetune_with_widened_input(tiny_corpus, tmp_path):
    from restoreae.models.io import load_model, widen_input

    pre = tiny_config(
        tiny_corpus, tmp_path / "pre", data={"use_reference": False}, train={"max_steps": 2}
    )
    pre_run = engine.train(config_from_dict(pre))
    pre_model, _ = load_model(pre_run / "weights" / "last.safetensors")
    assert pre_model.config["in_chans"] == 1
    init = pre_run / "weights" / "last.safetensors"
    ft = tiny_config(
        tiny_corpus,
        tmp_path / "ft",
        train={"max_steps": 1, "amp": "bf16", "channels_last": True},
        optim={"lr": 1e-12, "min_lr": 0.0, "weight_decay": 0.0},
        output={"run_dir": str(tmp_path / "ft"), "init_from": str(init)},
    )
    ft_run = engine.train(config_from_dict(ft))
    ft_model, meta = load_model(ft_run / "weights" / "last.safetensors")
    assert meta["in_chans"] == 2
    widened = widen_input(pre_model, in_chans=2).state_dict()
    for k, v in ft_model.state_dict().items():  # lr ~ 0: still the widened pretrain weights
        assert torch.allclose(v, widened[k], atol=1e-6), k


def test_fp16_with_grad_scaler(tiny_corpus, tmp_path):
    raw = tiny_config(tiny_corpus, tmp_path / "run", train={"max_steps": 3, "amp": "fp16"})
    run = engine.train(config_from_dict(raw))
    assert all(math.isfinite(v) for _, v in _train_losses(run))
    state = load_state(run / "state" / "last.pt")
    assert state["scaler"] is not None and state["scaler"]["scale"] > 0


def _undamaged_batch(
    clean: torch.Tensor, ref: torch.Tensor, seed: int, **reference_options: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``make_batch`` of 16 px uint8 glyphs with no damage: (input (B, 2, 16, 16), target)."""
    return batches.make_batch(
        clean,
        ref,
        damage=lambda t, g: t,
        generator=torch.Generator().manual_seed(seed),
        device=torch.device("cpu"),
        img_size=16,
        use_reference=True,
        **reference_options,
    )


def test_reference_dropout_blanks_a_seeded_share_of_references():
    clean = torch.full((400, 16, 16), 200, dtype=torch.uint8)
    ref = torch.full((400, 16, 16), 255, dtype=torch.uint8)

    def batch(p: float, seed: int) -> torch.Tensor:
        x, target = _undamaged_batch(clean, ref, seed, reference_dropout=p)
        assert torch.equal(x[:, :1], target)  # the damaged channel is untouched
        return x[:, 1]

    refs = batch(0.3, seed=1)
    blank = (refs.amax(dim=(1, 2)) == 0).float()
    kept = refs[blank == 0]
    assert torch.all(kept == 1.0)  # a reference is either whole or entirely blank
    assert 0.22 < float(blank.mean()) < 0.38
    assert torch.equal(refs, batch(0.3, seed=1))  # same generator seed, same blanks
    assert torch.all(batch(0.0, seed=1) == 1.0)


def test_reference_mismatch_gives_a_seeded_share_another_samples_reference():
    n = 400
    clean = torch.arange(n, dtype=torch.float32).view(n, 1, 1).expand(n, 16, 16) % 250
    clean = clean.to(torch.uint8)
    ref = clean.clone()  # each sample's own reference carries its index

    def batch(q: float, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
        x, target = _undamaged_batch(clean, ref, seed, reference_mismatch=q)
        return x[:, 1], target[:, 0]

    refs, targets = batch(0.2, seed=3)
    own = ref.float() / 255.0
    wrong = ~(refs == own).flatten(1).all(dim=1)
    assert 0.14 < float(wrong.float().mean()) < 0.26
    # a wrong reference is the previous sample's, whole; the target stays the sample's own glyph
    assert torch.equal(refs[wrong], own.roll(1, dims=0)[wrong])
    assert torch.equal(targets, own)
    assert torch.equal(refs, batch(0.2, seed=3)[0])
    assert torch.equal(batch(0.0, seed=3)[0], own)


def test_reference_style_restyles_the_reference_only():
    from restoreae.damage.style import build_style
    from restoreae.data.reference import ReferenceRenderer

    glyphs = torch.stack(
        [torch.from_numpy(ReferenceRenderer(size=16).render(c)) for c in "永和山心"]
    )
    style = build_style({"ops": {"stroke_weight": {"p": 1.0, "radius": [2.0, 3.0]}}})

    def batch(seed: int, reference_style=None) -> tuple[torch.Tensor, torch.Tensor]:
        return _undamaged_batch(glyphs, glyphs, seed, reference_style=reference_style)

    plain, target = batch(5)
    x, styled_target = batch(5, style)
    assert torch.equal(styled_target, target) and torch.equal(x[:, :1], plain[:, :1])
    # the reference's strokes are heavier (more ink), the damaged channel and target untouched
    assert float(x[:, 1].sum()) > 1.2 * float(plain[:, 1].sum())
    assert torch.equal(x, batch(5, style)[0])  # seeded
