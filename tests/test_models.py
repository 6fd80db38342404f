"""Model zoo: every registered model's contract, pad-and-crop, layouts, I/O, widening, ONNX."""

from __future__ import annotations

import argparse
import json
import warnings
from functools import cache

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from restoreae.errors import ConfigError, DataError
from restoreae.models import (
    DEFAULT_MODEL,
    count_params,
    create_model,
    gflops,
    list_models,
    load_model,
    save_model,
    widen_input,
)
from restoreae.models.summary import models_command
from strokes import random_bars

MODELS = list_models()
SIZE = 64


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    """Tiny tensors gain nothing from threads, and OpenMP spinning on a shared 2-core machine
    makes multi-threaded runs many times slower; restore the setting afterwards."""
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@cache
def _model(name: str, in_chans: int = 2, **kw) -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model(name, in_chans=in_chans, img_size=SIZE, **kw)


def _glyphs(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Synthetic 'glyphs': three white bars 4 px wide on black, float (n, 1, size, size) in [0, 1]."""
    return random_bars(n, size, seed, width=4, margin=4)


def _inputs(n: int, size: int, in_chans: int, seed: int = 0) -> torch.Tensor:
    g = _glyphs(n, size, seed)
    if in_chans == 1:
        return g
    return torch.cat([g, _glyphs(n, size, seed + 100)], dim=1)


def test_registry_lists_all_kinds() -> None:
    assert {"ae_mobilenetv3", "ae_efficientnetv2", "ae_convnext_t"} <= set(MODELS)
    assert {"ae_mobilenetv3_light", "ae_convnext_t_light", "vit_mae"} <= set(MODELS)
    assert {"unet_mobilenetv3", "unet_efficientnetv2", "unet_convnext_t", DEFAULT_MODEL} <= set(
        MODELS
    )
    kinds = {_model(n).kind for n in MODELS}
    assert kinds == {"symmetric", "asymmetric", "unet", "restoration", "vit"}


def test_create_model_errors() -> None:
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        create_model("nope")
    with pytest.raises(ConfigError, match="unknown argument"):
        create_model(DEFAULT_MODEL, img_size=64, bogus=1)
    with pytest.raises(ConfigError, match="in_chans"):
        create_model(DEFAULT_MODEL, in_chans=3)
    with pytest.raises(ConfigError, match="img_size"):
        create_model(DEFAULT_MODEL, img_size=70)


@pytest.mark.parametrize("name", MODELS)
def test_forward_backward(name: str) -> None:
    model = _model(name, 2).train()
    x = _inputs(2, SIZE, 2)
    y = model(x)
    assert y.shape == (2, 1, SIZE, SIZE) and y.dtype == torch.float32
    assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
    loss = torch.nn.functional.mse_loss(y, x[:, :1])
    model.zero_grad(set_to_none=True)
    loss.backward()
    unused = [k for k, p in model.named_parameters() if p.grad is None]
    assert unused == []  # DDP without find_unused_parameters needs every parameter used
    grads = [p.grad for p in model.parameters()]
    assert all(torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)
    model.zero_grad(set_to_none=True)
    model.eval()
    with torch.no_grad():
        y96 = model(_inputs(1, 96, 2))  # a second size, not the configured one
    assert y96.shape == (1, 1, 96, 96) and torch.isfinite(y96).all()
    # config rebuilds the same architecture
    rebuilt = create_model(**model.config)
    assert [(k, v.shape) for k, v in rebuilt.state_dict().items()] == [
        (k, v.shape) for k, v in model.state_dict().items()
    ]


@pytest.mark.parametrize("name", MODELS)
def test_one_channel_and_channels_last(name: str) -> None:
    model = _model(name, 1).eval()
    x = _inputs(2, 32, 1)  # smallest size: one stride-32 cell
    with torch.no_grad():
        y = model(x)
        assert y.shape == (2, 1, 32, 32)
        assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
        model_cl = create_model(**model.config).eval()
        model_cl.load_state_dict(model.state_dict())
        model_cl = model_cl.to(memory_format=torch.channels_last)
        y_cl = model_cl(x.contiguous(memory_format=torch.channels_last))
    torch.testing.assert_close(y_cl.contiguous(), y, atol=1e-5, rtol=1e-4)
    with pytest.raises(ValueError, match=r"\(B, 1, H, W\)"):
        model(_inputs(1, SIZE, 2))


@pytest.mark.parametrize(
    "name", [DEFAULT_MODEL, "ae_mobilenetv3", "ae_efficientnetv2_light", "vit_mae"]
)
def test_odd_size_pad_and_crop(name: str) -> None:
    model = _model(name, 2).eval()
    x = _inputs(1, 96, 2)[..., :70, :90]
    with torch.no_grad():
        y = model(x)
        assert y.shape == (1, 1, 70, 90) and torch.isfinite(y).all()
        if name == "vit_mae":  # stride 16: 70 → 80 (5 + 5), 90 → 96 (3 + 3)
            top, left, padded = 5, 3, torch.nn.functional.pad(x, (3, 3, 5, 5))
        else:  # stride 32: 70 → 96 (13 + 13), 90 → 96 (3 + 3); zeros = background
            top, left, padded = 13, 3, torch.nn.functional.pad(x, (3, 3, 13, 13))
        y_full = model(padded)
    torch.testing.assert_close(y, y_full[..., top : top + 70, left : left + 90], atol=1e-6, rtol=0)


def test_residual_output_starts_from_damaged_input() -> None:
    model = create_model(DEFAULT_MODEL, img_size=SIZE).eval()  # untrained, residual=True
    x = _inputs(2, SIZE, 2)
    with torch.no_grad():
        y = model(x)
    assert (y - x[:, :1]).abs().max() < 0.06  # sigmoid(±3) = 0.047 / 0.953
    plain = create_model(DEFAULT_MODEL, img_size=SIZE, residual=False).eval()
    with torch.no_grad():
        assert (plain(x) - 0.5).abs().max() < 0.05


def test_bf16_autocast_close_to_fp32() -> None:
    model = _model(DEFAULT_MODEL, 2).eval()
    x = _inputs(2, SIZE, 2)
    with torch.no_grad():
        ref = model(x)
        with torch.autocast("cpu", dtype=torch.bfloat16):
            y = model(x)
    assert y.shape == ref.shape and torch.isfinite(y).all()
    assert (y.float() - ref).abs().max() < 0.05


@pytest.mark.parametrize("name", [DEFAULT_MODEL, "ae_mobilenetv3_light"])
def test_adam_steps_reduce_loss(name: str) -> None:
    torch.manual_seed(0)
    model = create_model(name, in_chans=2, img_size=32).train()
    clean = _glyphs(4, 32, seed=1)
    damaged = clean.clone()
    damaged[:, :, 10:18, 10:18] = 0.0  # a lost chunk
    x = torch.cat([damaged, clean], dim=1)  # reference = clean glyph (a very informative one)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    losses = []
    for _ in range(10):
        loss = torch.nn.functional.mse_loss(model(x), clean)
        opt.zero_grad()
        loss.backward()
        opt.step()
        losses.append(loss.item())
    assert losses[-1] < 0.7 * losses[0], losses


def test_vit_masking_is_seeded_and_covers_ratio() -> None:
    model = create_model("vit_mae", img_size=SIZE, mask_ratio=0.75, depth=2).train()
    x = _inputs(2, SIZE, 2)
    masks = []
    for _ in range(2):
        model.mask_generator = torch.Generator().manual_seed(7)
        y = model(x)
        assert y.shape == (2, 1, SIZE, SIZE)
        masks.append(model.last_mask.clone())
    assert masks[0].shape == (2, (SIZE // 16) ** 2)
    assert torch.equal(masks[0], masks[1])
    assert masks[0].sum(1).tolist() == [12.0, 12.0]  # 75% of 16 patches
    model.eval()
    with torch.no_grad():
        model(x)
    assert model.last_mask is None


def test_param_counts_near_seed() -> None:
    assert 4.0e6 < count_params(create_model("ae_mobilenetv3")) < 5.5e6  # seed: ~4.5 M
    assert 45e6 < count_params(create_model("ae_convnext_t")) < 56e6  # seed: ~51 M
    assert 0.8e6 < count_params(create_model(DEFAULT_MODEL)) < 3e6


def test_seed_cost_autoencoders() -> None:
    """ae_mobilenetv3 costs what the seed's does: 0.24 GFLOP at 224 px, 0.12 encoder / 0.12
    decoder (seed figures from its code, docs/MODELS.md); its decoder is as heavy as its encoder."""
    model = create_model("ae_mobilenetv3", img_size=224).eval()
    total = gflops(model, 224)
    from torch.utils.flop_counter import FlopCounterMode

    counter = FlopCounterMode(display=False)
    with torch.no_grad(), counter:
        model.encoder(torch.zeros(1, 2, 224, 224))
    enc = counter.get_total_flops() / 1e9
    assert 0.18 < total < 0.30
    assert 0.8 < (total - enc) / enc < 1.25
    assert gflops(create_model("ae_mobilenetv3_large", img_size=224), 224) > 4 * total


def test_latent_dim_is_an_option_of_the_bottleneck_aes() -> None:
    small = create_model("ae_mobilenetv3", img_size=SIZE, latent_dim=64)
    assert small.config == {
        "name": "ae_mobilenetv3",
        "in_chans": 2,
        "img_size": SIZE,
        "latent_dim": 64,
    }
    assert small.encode(_inputs(2, SIZE, 2)).shape == (2, 64)
    with pytest.raises(ConfigError, match=r"unknown argument\(s\) \['latent_dim'\]"):
        create_model(DEFAULT_MODEL, img_size=SIZE, latent_dim=512)
    with pytest.raises(ConfigError, match="latent_dim must be a positive integer"):
        create_model("ae_mobilenetv3", img_size=SIZE, latent_dim=0)
    with pytest.raises(ConfigError, match="unknown argument"):
        create_model("vit_mae", img_size=SIZE, latent_dim=512)


def _rewrite_config(src, dst, **changes) -> None:
    """Copy model file ``src`` to ``dst`` with its header config updated by ``changes``."""
    from safetensors import safe_open

    with safe_open(str(src), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        hdr = f.metadata()
    hdr["config"] = json.dumps({**json.loads(hdr["config"]), **changes})
    save_file(tensors, str(dst), metadata=hdr)


def test_old_model_files_load(tmp_path) -> None:
    # configs written before latent_dim became a model option carried it for every model
    model = _model(DEFAULT_MODEL, 2).eval()
    path = save_model(model, tmp_path / "new.safetensors")
    _rewrite_config(path, tmp_path / "old.safetensors", latent_dim=512)
    loaded, _ = load_model(tmp_path / "old.safetensors")
    assert loaded.config == model.config
    # ae_mobilenetv3 used to be the MobileNetV3-Large AE, now ae_mobilenetv3_large
    large = create_model("ae_mobilenetv3_large", in_chans=1, img_size=SIZE).eval()
    path = save_model(large, tmp_path / "large.safetensors")
    _rewrite_config(path, tmp_path / "old_ae.safetensors", name="ae_mobilenetv3", latent_dim=512)
    loaded, _ = load_model(tmp_path / "old_ae.safetensors")
    assert loaded.config["name"] == "ae_mobilenetv3_large" and loaded.kind == "asymmetric"
    x = _inputs(1, SIZE, 1)
    with torch.no_grad():
        assert torch.equal(loaded(x), large(x))


def test_shipped_weights_load() -> None:
    from pathlib import Path

    import restoreae

    path = Path(restoreae.__file__).parent / "pretrained" / "default.safetensors"
    if not path.is_file():
        pytest.skip("no shipped model in this checkout")
    model, meta = load_model(path)
    assert model.config["name"] == DEFAULT_MODEL and model.kind == "unet"
    # changes only what is damaged: content composited through a predicted damage mask
    assert model.config.get("output") == "composite" and meta["in_chans"] == 2
    redraw, meta = load_model(path.with_name("redraw.safetensors"))  # v1: redraws the whole glyph
    assert redraw.config["name"] == DEFAULT_MODEL and redraw.config.get("output") != "composite"
    assert meta["in_chans"] == 2 and meta["img_size"] == 128


def test_gflops_scales_with_area() -> None:
    model = _model(DEFAULT_MODEL, 2).train()
    g64, g128 = gflops(model, 64), gflops(model, 128)
    assert g64 > 0
    assert 3.5 < g128 / g64 < 4.5
    assert model.training  # mode restored


def test_save_load_round_trip(tmp_path) -> None:
    for name in (DEFAULT_MODEL, "vit_mae"):
        model = _model(name, 2).eval()
        meta = {"img_size": SIZE, "in_chans": 2, "reference_font": "楷体.ttf", "traditional": False}
        path = save_model(model, tmp_path / f"{name}.safetensors", metadata=meta)
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
            p.name for p in tmp_path.glob("*.safetensors")
        )  # no temp files left behind
        loaded, meta2 = load_model(path)
        assert meta2 == meta and loaded.config == model.config and not loaded.training
        x = _inputs(2, SIZE, 2)
        with torch.no_grad():
            assert torch.equal(loaded(x), model(x))


def test_average_weights_interpolates_and_checks_architecture(tmp_path) -> None:
    from restoreae.cli import main
    from restoreae.models.io import average_models

    torch.manual_seed(3)
    a = create_model(DEFAULT_MODEL, in_chans=2, img_size=SIZE).eval()
    b = create_model(DEFAULT_MODEL, in_chans=2, img_size=SIZE).eval()
    meta = {"img_size": SIZE, "in_chans": 2, "val_psnr": 17.0}
    pa = save_model(a, tmp_path / "a.safetensors", meta)
    pb = save_model(b, tmp_path / "b.safetensors", meta)
    soup, soup_meta = average_models([pa, pb], [3, 1])  # normalised to 0.75 / 0.25
    sa, sb, ss = a.state_dict(), b.state_dict(), soup.state_dict()
    for k, v in ss.items():
        if v.is_floating_point():
            assert torch.allclose(v, 0.75 * sa[k] + 0.25 * sb[k], atol=1e-6), k
        else:
            assert torch.equal(v, sa[k]), k
    assert soup_meta["averaged_from"] == [
        {"file": "a.safetensors", "weight": 0.75},
        {"file": "b.safetensors", "weight": 0.25},
    ]
    assert "val_psnr" not in soup_meta and soup_meta["img_size"] == SIZE
    # the command writes a loadable model; weights 1, 0 give back the first model exactly
    out = tmp_path / "soup.safetensors"
    assert main(["average-weights", str(pa), str(pb), "--weights", "1", "0", "-o", str(out)]) == 0
    loaded, _ = load_model(out)
    x = _inputs(2, SIZE, 2)
    with torch.no_grad():
        assert torch.equal(loaded(x), a(x))
    # another architecture (1 input channel) is refused, naming the file; bad weights too
    pc = save_model(_model(DEFAULT_MODEL, 1), tmp_path / "one_chan.safetensors")
    with pytest.raises(DataError, match="one_chan.safetensors"):
        average_models([pa, pc])
    for bad in ([1.0], [1.0, -1.0], [0.0, 0.0]):
        with pytest.raises(ValueError):
            average_models([pa, pb], bad)
    assert main(["average-weights", str(pa), "-o", str(tmp_path / "x.safetensors")]) == 2
    assert not (tmp_path / "x.safetensors").exists()


def test_load_errors(tmp_path) -> None:
    with pytest.raises(DataError, match="not found"):
        load_model(tmp_path / "missing.safetensors")
    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(b"\x00\x01garbage" * 10)
    with pytest.raises(DataError, match="corrupt.safetensors"):
        load_model(bad)
    foreign = tmp_path / "foreign.safetensors"
    save_file({"w": torch.zeros(2)}, str(foreign))
    with pytest.raises(DataError, match="not a restoreae model"):
        load_model(foreign)
    unknown = tmp_path / "unknown.safetensors"
    header = {
        "format": "restoreae-model-1",
        "config": json.dumps({"name": "nope"}),
        "metadata": "{}",
    }
    save_file({"w": torch.zeros(2)}, str(unknown), metadata=header)
    with pytest.raises(DataError, match="unknown model 'nope'"):
        load_model(unknown)
    # header says 1 input channel, weights are for 2
    model = _model(DEFAULT_MODEL, 2)
    good = save_model(model, tmp_path / "good.safetensors")
    from safetensors import safe_open

    with safe_open(str(good), framework="pt") as f:
        tensors = {k: f.get_tensor(k) for k in f.keys()}  # noqa: SIM118
        hdr = f.metadata()
    cfg = json.loads(hdr["config"])
    cfg["in_chans"] = 1
    hdr["config"] = json.dumps(cfg)
    mismatch = tmp_path / "mismatch.safetensors"
    save_file(tensors, str(mismatch), metadata=hdr)
    with pytest.raises(DataError, match="do not match"):
        load_model(mismatch)


@pytest.mark.parametrize("name", [DEFAULT_MODEL, "ae_mobilenetv3_light", "vit_mae"])
def test_widen_input_keeps_output(name: str) -> None:
    torch.manual_seed(1)
    old = create_model(name, in_chans=1, img_size=SIZE)
    with torch.no_grad():  # give BN non-trivial statistics and the weights some spread
        old.train()
        old(_inputs(4, SIZE, 1, seed=3))
        for p in old.parameters():
            p.add_(0.01 * torch.randn_like(p))
    old.eval()
    new = widen_input(old, in_chans=2)
    assert new.config["in_chans"] == 2 and not new.training
    x1 = _inputs(2, SIZE, 1, seed=5)
    with torch.no_grad():
        ref = old(x1)
        y_zero = new(torch.cat([x1, torch.zeros_like(x1)], dim=1))
        y_ref = new(torch.cat([x1, _glyphs(2, SIZE, seed=9)], dim=1))
    torch.testing.assert_close(y_zero, ref, atol=1e-6, rtol=0)
    torch.testing.assert_close(y_ref, ref, atol=1e-6, rtol=0)  # zero-initialised new channel
    noisy = widen_input(old, in_chans=2, init_std=0.02)
    with torch.no_grad():
        torch.testing.assert_close(
            noisy(torch.cat([x1, torch.zeros_like(x1)], dim=1)), ref, atol=1e-6, rtol=0
        )


@pytest.mark.parametrize("dynamo", [False, True], ids=["legacy", "dynamo"])
def test_onnx_export_matches_torch(tmp_path, dynamo: bool) -> None:
    ort = pytest.importorskip("onnxruntime")
    model = _model(DEFAULT_MODEL, 2).eval()
    path = tmp_path / "m.onnx"
    if dynamo:
        dyn = {"dynamic_shapes": {"x": {0: torch.export.Dim("batch", min=1, max=4096)}}}
    else:
        dyn = {"dynamic_axes": {"x": {0: "batch"}, "y": {0: "batch"}}}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            model,
            (_inputs(2, SIZE, 2),),
            str(path),
            opset_version=17,
            input_names=["x"],
            output_names=["y"],
            dynamo=dynamo,
            **dyn,
        )
    sess = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    x = _inputs(3, SIZE, 2, seed=4)  # a different batch size than exported with
    out = sess.run(None, {"x": x.numpy()})[0]
    with torch.no_grad():
        ref = model(x).numpy()
    np.testing.assert_allclose(out, ref, atol=1e-4, rtol=0)


def test_models_command_formats(capsys) -> None:
    args = argparse.Namespace(size=64, in_chans=2, format="json")
    assert models_command(args) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [r["name"] for r in rows] == MODELS
    small = next(r for r in rows if r["name"] == DEFAULT_MODEL)
    assert small["kind"] == "unet" and 0.8 < small["params_m"] < 3 and small["gflops"] > 0
    from restoreae.models.summary import format_rows

    md = format_rows(rows, "markdown", 64).splitlines()
    assert md[0].startswith("| name | kind | params (M) | GFLOPs @64")
    assert len(md) == len(MODELS) + 2
    table = format_rows(rows, "table", 64).splitlines()
    assert table[0].split()[:2] == ["name", "kind"] and len(table) == len(MODELS) + 2
