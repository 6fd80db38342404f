"""Fitting the reference to the glyph's ink box (data.reference_fit): the fit itself, its torch and
numpy forms, training batches and the restore path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from restoreae.data.reference_fit import FIT_SCALE, fit_reference, fit_reference_np
from restoreae.errors import DataError

SIZE = 64


def box(img: np.ndarray) -> tuple[int, int, int, int]:
    ys, xs = np.nonzero(img > 0.5)
    return int(xs.min()), int(xs.max()), int(ys.min()), int(ys.max())


def glyph_pair() -> tuple[np.ndarray, np.ndarray]:
    """A reference drawn small and high-left, the glyph wider and lower: two crossing bars each."""
    ref = np.zeros((SIZE, SIZE), np.float32)
    ref[14:34, 22:25] = 1.0
    ref[22:25, 12:32] = 1.0
    glyph = np.zeros((SIZE, SIZE), np.float32)
    glyph[20:44, 32:36] = 1.0
    glyph[30:34, 18:46] = 1.0
    return ref, glyph


def test_fit_moves_the_reference_ink_box_onto_the_glyphs() -> None:
    ref, glyph = glyph_pair()
    fitted = fit_reference_np(ref, glyph)
    assert box(ref) == (12, 31, 14, 33)
    fx0, fx1, fy0, fy1 = box(fitted)
    gx0, gx1, gy0, gy1 = box(glyph)  # (18, 45, 20, 43)
    assert abs(fx0 - gx0) <= 1 and abs(fx1 - gx1) <= 1
    assert abs(fy0 - gy0) <= 1 and abs(fy1 - gy1) <= 1
    # torch (training, batched) and numpy (restore path) fit alike
    t = fit_reference(torch.from_numpy(ref)[None, None], torch.from_numpy(glyph)[None, None])
    assert np.abs(t[0, 0].numpy() - fitted).max() < 1e-4


def test_fit_scale_is_bounded_and_blank_inputs_are_left_alone() -> None:
    ref, glyph = glyph_pair()
    tall = np.zeros_like(glyph)
    tall[2:62, 30:34] = 1.0  # 3x the reference's height: the scale stops at FIT_SCALE[1]
    fitted = fit_reference_np(ref, tall)
    _, _, y0, y1 = box(fitted)
    assert (y1 - y0 + 1) == pytest.approx(20 * FIT_SCALE[1], abs=2)
    blank = np.zeros_like(ref)
    assert np.array_equal(fit_reference_np(blank, glyph), blank)  # a dropped reference
    assert np.array_equal(fit_reference_np(ref, blank), ref)  # a glyph with no ink left
    refs = torch.from_numpy(np.stack([ref, blank]))[:, None]
    out = fit_reference(refs, torch.from_numpy(np.stack([glyph, glyph]))[:, None])
    assert torch.equal(out[1], refs[1]) and not torch.equal(out[0], refs[0])
    with pytest.raises(ValueError, match="expected two"):
        fit_reference_np(ref, glyph[:32])


def test_training_batch_fits_the_reference_to_the_damaged_glyph() -> None:
    from restoreae.damage.pipeline import resolve_mix
    from restoreae.damage.torch_ops import build_torch_damage
    from restoreae.train.batches import make_batch, make_generator

    ref, glyph = glyph_pair()
    clean_u8 = torch.from_numpy((np.stack([glyph] * 4) * 255).astype(np.uint8))
    ref_u8 = torch.from_numpy((np.stack([ref] * 4) * 255).astype(np.uint8))
    damage = build_torch_damage(resolve_mix("seed", where="test"))
    cpu = torch.device("cpu")
    kw = dict(damage=damage, device=cpu, img_size=SIZE, use_reference=True)
    plain, t0 = make_batch(clean_u8, ref_u8, generator=make_generator(cpu, 5), **kw)
    fitted, t1 = make_batch(
        clean_u8, ref_u8, generator=make_generator(cpu, 5), reference_fit=True, **kw
    )
    assert torch.equal(t0, t1) and torch.equal(plain[:, :1], fitted[:, :1])
    assert torch.allclose(fitted[:, 1:], fit_reference(plain[:, 1:], plain[:, :1]))
    assert not torch.allclose(fitted[:, 1:], plain[:, 1:])


def test_weights_of_a_fitting_run_say_so() -> None:
    from restoreae.train.checkpoint import export_metadata

    kw = dict(img_size=SIZE, in_chans=2, manifest={}, step=1, epoch=0, val=None, ema=False)
    assert export_metadata(**kw, reference_fit="box")["reference_fit"] == "box"
    assert "reference_fit" not in export_metadata(**kw)


def _model(tmp_path: Path, meta: dict) -> Path:
    from restoreae.models.io import save_model
    from restoreae.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("unet_mobilenetv3_small", in_chans=2, img_size=SIZE)
    path = tmp_path / "m.safetensors"
    save_model(model.eval(), path, metadata={"img_size": SIZE, "in_chans": 2, **meta})
    return path


def test_restore_path_fits_the_reference_when_the_model_was_trained_so(tmp_path: Path) -> None:
    from restoreae.restore.api import Restorer

    img = np.full((90, 80), 235, np.uint8)
    img[20:70, 36:44] = 20
    img[40:46, 14:66] = 20
    fit = Restorer(_model(tmp_path, {"reference_fit": "box"}), backend="torch")
    prep = fit.prepare(img)
    x = fit.model_input(prep, char="十")
    raw = fit.reference("十").astype(np.float32) / 255.0
    assert np.allclose(x[1], fit_reference_np(raw, x[0]))
    assert not np.allclose(x[1], raw)
    # what the compare panel and the demo show: the reference as the model saw it
    assert np.array_equal(fit.model_reference(prep, "十"), np.rint(x[1] * 255).astype(np.uint8))
    plain = Restorer(_model(tmp_path, {}), backend="torch")
    assert np.allclose(plain.model_input(plain.prepare(img), char="十")[1], raw)
    with pytest.raises(DataError, match="reference_fit"):
        Restorer(_model(tmp_path, {"reference_fit": "warp"}), backend="torch")
