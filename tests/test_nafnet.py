"""nafnet_small: NAFNet-style restoration net — blocks, shapes, composite output, training through
the engine, ONNX export and the Restorer. (The registry-wide contract tests of test_models.py run
on it too.)"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from restoreae.errors import ConfigError, DataError
from restoreae.models import count_params, create_model, load_model, save_model, widen_input
from restoreae.models.checks import check_config
from restoreae.models.io import add_damage_mask, for_inference
from restoreae.models.nafnet import NAFBlock, simple_gate
from strokes import random_bars

NAME = "nafnet_small"


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _strokes(n: int, size: int, seed: int = 0) -> torch.Tensor:
    """Float (n, 1, size, size) in [0, 1]: three white bars 3 px wide on black."""
    return random_bars(n, size, seed, width=3, margin=2)


def _net(in_chans: int = 2, seed: int = 0, spread: float = 0.0, **kw) -> torch.nn.Module:
    """A nafnet_small; ``spread`` > 0 perturbs every weight (β, γ included) so that the blocks are
    not the identity they start as."""
    torch.manual_seed(seed)
    m = create_model(NAME, in_chans=in_chans, img_size=32, **kw)
    if spread:
        with torch.no_grad():
            for p in m.parameters():
                p.add_(spread * torch.randn_like(p))
    return m


def test_simple_gate_and_fresh_block_is_identity() -> None:
    x = torch.randn(2, 6, 5, 7)
    assert torch.equal(simple_gate(x), x[:, :3] * x[:, 3:])
    block = NAFBlock(8)
    y = torch.randn(2, 8, 9, 9)
    assert torch.equal(block(y), y)  # β = γ = 0
    with torch.no_grad():
        block.beta.fill_(1.0)
    assert not torch.allclose(block(y), y)
    with pytest.raises(ValueError, match="even"):
        NAFBlock(3, dw_expand=1)


def test_size_and_registry_entry() -> None:
    m = create_model(NAME, in_chans=2, img_size=128)
    assert m.kind == "restoration" and m.stride == 16
    assert 1.0e6 < count_params(m) < 1.5e6  # comparable to unet_mobilenetv3_small (1.14 M)
    assert create_model(**m.config).config == m.config
    with pytest.raises(ConfigError, match="width"):
        create_model(NAME, img_size=64, width=7)
    with pytest.raises(ConfigError, match="unknown argument"):
        create_model(NAME, img_size=64, latent_dim=8)


def test_base_variant_is_the_small_net_at_twice_the_width() -> None:
    small = create_model(NAME, in_chans=2, img_size=64)
    base = create_model("nafnet_base", in_chans=2, img_size=64, output="composite")
    assert base.kind == "restoration" and base.stride == small.stride
    assert base.intro.out_channels == 2 * small.intro.out_channels == 32
    assert 4.5e6 < count_params(base) < 5.5e6  # ~4x the parameters of nafnet_small
    assert create_model(**base.config).config == base.config
    out = base.eval()(torch.rand(1, 2, 40, 56))
    assert out.shape == (1, 1, 40, 56) and out.min() >= 0.0 and out.max() <= 1.0


@pytest.mark.parametrize("in_chans", [1, 2])
@pytest.mark.parametrize("output", ["direct", "composite"])
def test_shapes_ranges_and_any_size(in_chans: int, output: str) -> None:
    m = _net(in_chans, spread=0.05, output=output).eval()
    x = torch.rand(3, in_chans, 48, 40)  # not multiples of 16: padded and cropped back
    with torch.no_grad():
        y = m(x)
        assert y.shape == (3, 1, 48, 40)
        assert torch.isfinite(y).all() and y.min() >= 0 and y.max() <= 1
        # the crop of the zero-padded input's output (48 → 48, 40 → 48: 4 + 4 columns)
        full = m(torch.nn.functional.pad(x, (4, 4, 0, 0)))
        torch.testing.assert_close(y, full[..., 4:44], atol=1e-6, rtol=0)
        m.return_parts = True
        parts = m(x)
    assert parts.shape == (3, 2 if output == "composite" else 1, 48, 40)


def test_composite_is_mask_blend_of_content_and_input() -> None:
    m = _net(2, spread=0.05, output="composite").eval()
    x = torch.rand(2, 2, 32, 32)
    with torch.no_grad():
        y = m(x)
        parts = for_inference(m)(x)  # what the restore path consumes
    c, mask = parts[:, :1], parts[:, 1:]
    assert mask.std() > 0.01 and mask.min() >= 0 and mask.max() <= 1  # a mask that varies
    torch.testing.assert_close(y, mask * c + (1 - mask) * x[:, :1], atol=1e-6, rtol=0)
    assert for_inference(_net(2)).return_parts is False  # direct output: nothing to composite


def test_fresh_residual_net_returns_about_its_input() -> None:
    x = torch.cat([_strokes(2, 32), _strokes(2, 32, seed=1)], 1)
    with torch.no_grad():
        y = _net(2).eval()(x)
        plain = _net(2, residual=False).eval()(x)
    assert (y - x[:, :1]).abs().max() < 0.06  # sigmoid(±3)
    assert (plain - 0.5).abs().max() < 0.02


def test_widen_input_and_add_damage_mask_keep_the_output() -> None:
    old = _net(1, spread=0.05).eval()
    x1 = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        ref = old(x1)
        wide = widen_input(old, in_chans=2)
        torch.testing.assert_close(wide(torch.cat([x1, torch.rand_like(x1)], 1)), ref)
        comp = add_damage_mask(old).eval()
        m0 = torch.sigmoid(torch.tensor(-2.0))
        torch.testing.assert_close(comp(x1), m0 * ref + (1 - m0) * x1, atol=1e-6, rtol=0)


def test_adam_steps_reduce_loss_deterministically() -> None:
    clean = _strokes(4, 32, seed=2)
    damaged = clean.clone()
    damaged[:, :, 8:20, 8:20] = 0.0  # a lost chunk
    x = torch.cat([damaged, clean], 1)

    def run() -> list[float]:
        m = _net(2, output="composite").train()
        opt = torch.optim.Adam(m.parameters(), lr=3e-3)
        losses = []
        for _ in range(8):
            loss = torch.nn.functional.l1_loss(m(x), clean)
            opt.zero_grad()
            loss.backward()
            opt.step()
            losses.append(loss.item())
        return losses

    losses = run()
    assert losses[-1] < 0.7 * losses[0], losses
    assert run() == losses  # same seed, same steps


def test_trains_with_the_engine_and_saves_a_checked_file(tiny_corpus, tmp_path) -> None:
    from restoreae.train import engine
    from restoreae.train.config import config_from_dict

    raw = {
        "data": {"corpus": str(tiny_corpus), "img_size": 32, "reference_dropout": 0.3},
        "model": {"name": NAME, "kwargs": {"output": "composite", "width": 8}},
        "optim": {"lr": 3e-3, "warmup_steps": 1},
        "train": {
            "max_steps": 3,
            "batch_size": 4,
            "val_num": 8,
            "loss": "l1+0.2*ssim",
            "mask_weight": 0.5,
            "progress": False,
            "ema": 0.9,
            "channels_last": True,
        },
        "output": {"run_dir": str(tmp_path / "run")},
    }
    run = engine.train(config_from_dict(raw))
    model, meta = load_model(run / "weights" / "last.safetensors")
    assert model.config == {
        "name": NAME,
        "in_chans": 2,
        "img_size": 32,
        "output": "composite",
        "width": 8,
    }
    assert meta["img_size"] == 32 and model.kind == "restoration"
    with pytest.raises(DataError, match="width"):
        check_config({**model.config, "width": 4096}, "x.safetensors")


def test_onnx_export_and_restorer_match_torch(tmp_path, capsys) -> None:
    from restoreae.cli import main
    from restoreae.data.reference import ReferenceRenderer
    from restoreae.restore.api import Restorer
    from restoreae.restore.backends import OnnxBackend

    model = _net(2, spread=0.05, output="composite").eval()
    path = tmp_path / "naf.safetensors"
    save_model(model, path, metadata={"img_size": 32, "in_chans": 2, "traditional": False})
    onnx_path = tmp_path / "naf.onnx"
    assert main(["export", str(path), "--onnx", str(onnx_path)]) == 0
    assert "max |onnxruntime - torch|" in capsys.readouterr().out
    backend = OnnxBackend(onnx_path)
    batch = np.random.default_rng(0).random((3, 2, 32, 32), dtype=np.float32)
    with torch.no_grad():
        ref = for_inference(model)(torch.from_numpy(batch)).numpy()
    got = backend(batch)
    assert got.shape == (3, 2, 32, 32)  # (content, mask): composited by the Restorer
    np.testing.assert_allclose(got, ref, atol=1e-4, rtol=0)
    # the full restore path, at the image's own size, on PyTorch and on ONNX Runtime
    glyph = ReferenceRenderer(size=60).render("永")
    img = np.full((90, 80), 235, np.uint8)
    img[15:75, 10:70] = np.rint(235 - 215 * (glyph / 255.0)).astype(np.uint8)  # dark on light
    out_torch = Restorer(path, backend="torch").restore(img, "永")
    out_onnx = Restorer(onnx_path).restore(img, "永")
    assert out_torch.shape == img.shape and out_torch.dtype == np.uint8
    assert np.abs(out_torch.astype(int) - out_onnx.astype(int)).max() <= 1
