"""Faithful restoration: synthetic-writer style ops, composite (mask) models and their training,
and compositing the restoration into the user's own image (paper, lighting and colour kept)."""

from __future__ import annotations

import math

import cv2
import numpy as np
import pytest
import torch

from restoreae.damage.style import (
    STYLE_OPS,
    STYLE_PRESETS,
    StyleConfig,
    StyleTransform,
    build_style,
    list_style_ops,
)
from restoreae.damage.torch_kernels import dilate_disc, erode_disc, skeleton
from restoreae.errors import ConfigError
from restoreae.models.io import add_damage_mask, for_inference
from restoreae.models.registry import create_model
from restoreae.train import batches, engine
from restoreae.train.config import config_from_dict
from restoreae.train.losses import build_loss, composite_mask_loss, damage_mask


def _glyphs(b: int = 6, size: int = 64) -> torch.Tensor:
    """Float (B, 1, S, S) white-on-black blocky 'glyphs' with strokes 6 px wide."""
    x = torch.zeros(b, 1, size, size)
    for i in range(b):
        x[i, 0, 10 + i : 16 + i, 8:56] = 1.0
        x[i, 0, 8:56, 28 - i : 34 - i] = 1.0
    return x


# --------------------------------------------------------------------------- style ops
@pytest.mark.parametrize("name", list(STYLE_OPS))
def test_style_op_shape_range_determinism(name):
    x = _glyphs()
    x[:, :, ::2, ::2] *= 0.6  # grey ink, as antialiased or pale strokes have (binarize acts on it)
    st = StyleTransform(StyleConfig.from_dict({name: {"p": 1.0}}, "test"))
    a = st(x, torch.Generator().manual_seed(3))
    b = st(x, torch.Generator().manual_seed(3))
    assert a.shape == x.shape and a.dtype == x.dtype
    assert float(a.min()) >= 0.0 and float(a.max()) <= 1.0
    assert torch.equal(a, b)
    assert not torch.equal(a, x), f"{name} changed nothing"
    # Still a glyph: neither erased nor flooded.
    ink = a.flatten(1).sum(1) / x.flatten(1).sum(1)
    assert bool((ink > 0.3).all()) and bool((ink < 3.0).all()), (name, ink)


def test_style_share_and_identity():
    x = _glyphs(64)
    off = StyleTransform(StyleConfig.from_dict({"elastic": {"p": 0.0}}, "t"))
    assert torch.equal(off(x, torch.Generator().manual_seed(0)), x)
    half = StyleTransform(StyleConfig.from_dict({"affine": {"p": 0.5}}, "t"))
    out = half(x, torch.Generator().manual_seed(0))
    changed = int((out - x).abs().flatten(1).amax(1).gt(1e-6).sum())
    assert 16 <= changed <= 48
    assert build_style(None) is None and build_style("none") is None
    # every op is drawn by some preset
    assert set().union(*(build_style(n).ops for n in STYLE_PRESETS)) == set(list_style_ops())


def test_stroke_omission_removes_one_rounded_region_and_never_adds_ink():
    size, b = 128, 16
    x = torch.zeros(b, 1, size, size)
    x[:, :, 20:108, 61:67] = 1.0  # a vertical stroke
    x[:, :, 40:46, 16:112] = 1.0  # a horizontal one
    params = {"n": 1, "radius": 10.0, "rounding": 1.5, "max_loss": 0.35}
    style = StyleTransform(StyleConfig.from_dict({"stroke_omission": {"p": 1.0, **params}}, "t"))
    out = style(x, torch.Generator().manual_seed(0))
    assert bool((out <= x + 1e-6).all())  # ink is only taken away
    lost = 1.0 - out.flatten(1).sum(1) / x.flatten(1).sum(1)
    assert bool((lost <= 0.35 + 1e-6).all())
    assert int((lost > 0.02).sum()) >= b // 2  # most glyphs lose a stroke piece
    for i in torch.nonzero(lost > 0.02).squeeze(1).tolist():
        ys, xs = torch.nonzero((x[i, 0] - out[i, 0]) > 0.5, as_tuple=True)
        # one disc of radius <= 10 * 1.15 px (its outline wobbles), plus the rounding band
        assert int(ys.max() - ys.min()) <= 2 * 11.5 + 2 and int(xs.max() - xs.min()) <= 2 * 11.5 + 2
        # the cut end is rounded: the last row of the vertical stroke above a cut is narrower
        col = out[i, 0, :, 61:67]
        rows = torch.nonzero(col.amax(1) > 0.5).squeeze(1)
        gaps = torch.nonzero(rows[1:] - rows[:-1] > 1).squeeze(1)
        if gaps.numel():  # the vertical stroke was cut through
            end = int(rows[gaps[0]])
            if end not in range(38, 48):  # not at the crossing of the horizontal stroke
                assert float(col[end].sum()) < float(col[end - 4].sum())


def test_calligraphy_heavy_draws_strokes_wider_than_calligraphy():
    x = torch.zeros(32, 1, 128, 128)
    x[:, :, 20:108, 61:67] = 1.0  # a vertical stroke 6 px wide, as a Kai font's at 128 px
    widths = {}
    for name in ("calligraphy", "calligraphy-heavy"):
        weight = dict(STYLE_PRESETS[name]["ops"]["stroke_weight"], p=1.0)
        style = StyleTransform(StyleConfig.from_dict({"stroke_weight": weight}, name))
        out = style(x, torch.Generator().manual_seed(0))
        widths[name] = int((out[:, 0, 64] > 0.5).sum(1).max())  # widest ink across row 64
    assert widths["calligraphy"] <= 17  # 6 + 2 * 5 px, plus a soft edge
    assert widths["calligraphy-heavy"] >= 20
    assert set(STYLE_PRESETS["calligraphy-heavy"]["ops"]) == set(
        STYLE_PRESETS["calligraphy"]["ops"]
    )


def test_soft_edge_widens_the_outline_ramp_and_keeps_the_stroke():
    x = torch.zeros(4, 1, 128, 128)
    x[:, :, 20:108, 58:70] = 1.0  # a hard vertical stroke 12 px wide
    out = StyleTransform(StyleConfig.from_dict({"soft_edge": {"p": 1.0, "sigma": 1.0}}, "t"))(
        x, torch.Generator().manual_seed(0)
    )
    row = out[:, 0, 64]
    grey = ((row > 0.1) & (row < 0.9)).sum(1)
    assert bool((grey >= 4).all()) and bool((grey <= 8).all())  # ~2.6 sigma per side, 2 sides
    assert torch.allclose(row[:, 64], torch.ones(4), atol=1e-3)  # the stroke's middle intact
    assert torch.allclose(row.sum(1), torch.full((4,), 12.0), atol=0.05)  # ink conserved
    assert list(STYLE_OPS).index("soft_edge") > list(STYLE_OPS).index("binarize")


def test_binarize_makes_hard_ink_at_the_level():
    x = torch.linspace(0.0, 1.0, 128).repeat(2, 1, 128, 1)  # a horizontal ramp, (2, 1, 128, 128)
    cfg = {"binarize": {"p": 1.0, "level": 0.5, "blur": 0.0}}
    out = StyleTransform(StyleConfig.from_dict(cfg, "t"))(x, torch.Generator().manual_seed(0))
    assert set(out.unique().tolist()) == {0.0, 1.0}
    assert torch.equal(out, (x > 0.5).float())


@pytest.mark.parametrize(
    "spec, needle",
    [
        ({"warp_drive": {}}, "unknown style op 'warp_drive'"),
        ({"affine": {"p": 1.5}}, r"affine\.p must be a share"),
        ({"affine": {"twist": 2}}, r"affine has no parameter\(s\) \['twist'\]"),
        ("no-such-preset", "not a preset"),
    ],
)
def test_style_config_errors_name_the_key(spec, needle):
    with pytest.raises(ConfigError, match=needle):
        StyleConfig.resolve(spec)


def test_stroke_weight_thickens_and_thins():
    x = _glyphs(2)
    fat = StyleConfig.from_dict({"stroke_weight": {"p": 1.0, "radius": 2.0, "vary": 0.0}}, "t")
    thin = StyleConfig.from_dict({"stroke_weight": {"p": 1.0, "radius": -1.0, "vary": 0.0}}, "t")
    g = torch.Generator().manual_seed(0)
    assert StyleTransform(fat)(x, g).sum() > 1.3 * x.sum()
    assert StyleTransform(thin)(x, g).sum() < 0.9 * x.sum()


def test_disc_weight_has_round_corners_where_the_square_has_square_ones():
    dot = torch.zeros(1, 1, 15, 15)
    dot[0, 0, 7, 7] = 1.0
    disc = dilate_disc(dot, 3.0)
    yy, xx = torch.meshgrid(torch.arange(15), torch.arange(15), indexing="ij")
    within = ((yy - 7) ** 2 + (xx - 7) ** 2) <= 9
    assert torch.equal(disc[0, 0].bool(), within)  # exactly the pixels within 3 px
    assert torch.equal(erode_disc(disc, 3.0), dot)  # the disc erodes back to its dot
    # A diagonal bar: a square adds √2 times the weight a disc adds across it.
    bar = (torch.eye(128) + torch.eye(128).roll(1, 1)).clamp(max=1)  # 128 px: radii as given
    bar = bar[None, None]
    sq = StyleConfig.from_dict({"stroke_weight": {"p": 1.0, "radius": 2.0, "vary": 0.0}}, "t")
    rd = StyleConfig.from_dict(
        {"stroke_weight": {"p": 1.0, "radius": 2.0, "vary": 0.0, "shape": "disc"}}, "t"
    )
    gain_sq = StyleTransform(sq)(bar, torch.Generator().manual_seed(0)).sum() / bar.sum()
    gain_rd = StyleTransform(rd)(bar, torch.Generator().manual_seed(0)).sum() / bar.sum()
    assert gain_sq > 1.2 * gain_rd > 1.2 * 1.5
    bad = StyleConfig.from_dict({"stroke_weight": {"p": 1.0, "shape": "star"}}, "t")
    with pytest.raises(ConfigError, match="shape must be 'square' or 'disc', got 'star'"):
        StyleTransform(bad)(bar, torch.Generator().manual_seed(0))


def test_calligraphy_round_is_calligraphy_heavy_drawn_with_a_disc():
    heavy = StyleConfig.resolve("calligraphy-heavy").ops
    round_ = StyleConfig.resolve("calligraphy-round").ops
    assert heavy["stroke_weight"]["shape"] == "square"
    assert round_["stroke_weight"]["shape"] == "disc"
    assert {**round_, "stroke_weight": {**round_["stroke_weight"], "shape": "square"}} == heavy


def test_ink_grain_pales_ink_and_moves_outlines_by_one_pixel_only():
    x = torch.zeros(2, 1, 32, 32)
    x[:, :, 8:24, 12:20] = 1.0  # a bar, 8 px wide
    grain = StyleConfig.from_dict({"ink_grain": {"p": 1.0, "ragged": 0.5}}, "t")
    out = StyleTransform(grain)(x, torch.Generator().manual_seed(0))
    again = StyleTransform(grain)(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)  # seeded
    assert out.min() >= 0.0 and out.max() <= 1.0
    near = torch.nn.functional.max_pool2d(x, 3, stride=1, padding=1)  # the bar and 1 px around
    assert torch.equal(out * (1 - near), torch.zeros_like(x))  # paper further away untouched
    inner = -torch.nn.functional.max_pool2d(-x, 3, stride=1, padding=1)
    core = out[inner.bool()]
    assert (core < 1.0).float().mean() > 0.05 and core.min() >= 0.2  # speckled, never erased
    edge = (x - inner).bool()
    lost = (out[edge] == 0).float().mean()
    gained = (out[(near - x).bool()] > 0).float().mean()
    assert 0.1 < lost < 0.4 and 0.1 < gained < 0.4  # ragged on both sides of the outline


def test_skeleton_thins_strokes_to_connected_one_pixel_lines():
    x = torch.zeros(1, 1, 40, 64)
    x[0, 0, 10:19, 6:58] = 1.0  # a bar, 9 px thick
    x[0, 0, 10:36, 28:35] = 1.0  # a 7 px stem below it: a T
    lines = skeleton(x)
    assert set(lines.unique().tolist()) <= {0.0, 1.0}
    assert torch.equal(lines * x, lines)  # inside the ink
    per_column = lines[0, 0, :, 12:24].sum(0)
    assert torch.equal(per_column, torch.ones_like(per_column))  # the bar: one pixel per column
    assert int(lines[0, 0, 14, 12:24].sum()) == 12  # on its middle row
    per_row = lines[0, 0, 24:32, :].sum(1)
    assert torch.equal(per_row, torch.ones_like(per_row))  # the stem: one pixel per row
    count, _ = cv2.connectedComponents(lines[0, 0].numpy().astype(np.uint8), connectivity=8)
    assert count == 2  # background + one connected T
    assert torch.equal(skeleton(torch.zeros(2, 1, 8, 8)), torch.zeros(2, 1, 8, 8))


@pytest.mark.parametrize(("radius", "width"), [(1.0, 3), (2.0, 5)])
def test_pen_redraws_strokes_with_a_uniform_nib(radius, width):
    x = torch.zeros(2, 1, 128, 128)  # radii are in pixels at 128 px
    x[0, 0, 40:53, 16:112] = 1.0  # a heavy bar, 13 px
    x[0, 0, 80:84, 16:112] = 1.0  # a light one, 4 px
    pen = StyleConfig.from_dict(
        {"pen": {"p": 1.0, "radius": radius, "swell": 0.0, "soften": 0.0}}, "t"
    )
    out = StyleTransform(pen)(x, torch.Generator().manual_seed(0))
    again = StyleTransform(pen)(x, torch.Generator().manual_seed(0))
    assert torch.equal(out, again)
    widths = (out[0, 0, :, 32:96] > 0.5).sum(0)
    assert torch.equal(widths, torch.full_like(widths, 2 * width))  # both bars `width` px
    assert torch.equal(out[1], x[1])  # no ink: unchanged


@pytest.mark.parametrize(
    ("preset", "op", "share"),
    [("calligraphy-grain", "ink_grain", 0.35), ("calligraphy-pen", "pen", 0.3)],
)
def test_preset_is_calligraphy_round_plus_one_op(preset, op, share):
    round_ = StyleConfig.resolve("calligraphy-round").ops
    ops = StyleConfig.resolve(preset).ops
    assert ops.pop(op)["p"] == share
    assert ops == round_


# --------------------------------------------------------------------------- composite models
def test_composite_output_is_mask_blend_of_content_and_input():
    torch.manual_seed(0)
    m = create_model("unet_mobilenetv3_small", in_chans=2, img_size=64, output="composite").eval()
    x = torch.rand(2, 2, 64, 64)
    with torch.no_grad():
        y = m(x)
        m.return_parts = True
        parts = m(x)
    assert y.shape == (2, 1, 64, 64) and parts.shape == (2, 2, 64, 64)
    c, mask = parts[:, :1], parts[:, 1:]
    assert torch.allclose(y, mask * c + (1 - mask) * x[:, :1], atol=1e-6)
    assert for_inference(create_model("unet_mobilenetv3_small", img_size=64)).return_parts is False


def test_add_damage_mask_starts_from_the_direct_model():
    torch.manual_seed(0)
    old = create_model("unet_mobilenetv3_small", in_chans=2, img_size=64).eval()
    new = add_damage_mask(old).eval()
    assert new.config["output"] == "composite"
    x = torch.rand(3, 2, 64, 64)
    with torch.no_grad():
        m0 = 1.0 / (1.0 + math.exp(2.0))  # sigmoid(-2)
        expected = m0 * old(x) + (1 - m0) * x[:, :1]
        assert torch.allclose(new(x), expected, atol=1e-5)
    with pytest.raises(ValueError, match="already 'composite'"):
        add_damage_mask(new)


def test_damage_mask_and_composite_loss():
    clean = torch.zeros(1, 1, 8, 8)
    damaged = clean.clone()
    damaged[..., :2, :] = 1.0
    damaged[..., 4, 4] = 0.03  # below the threshold: not damage
    mask = damage_mask(damaged, clean)
    assert int(mask.sum()) == 16 and mask[..., 4, 4].item() == 0.0
    x = torch.cat([damaged, torch.zeros_like(damaged)], 1)
    crit = build_loss("l1")
    perfect = torch.cat([clean, mask], 1)  # content = clean, mask = the damage
    # only the sub-threshold speck is left (0.03 on 1 of 64 pixels)
    assert composite_mask_loss(perfect, x, clean, crit, 0.0).item() == pytest.approx(0.03 / 64)
    wrong_mask = torch.cat([clean, torch.zeros_like(mask)], 1)
    assert composite_mask_loss(wrong_mask, x, clean, crit, 0.0) > 0.2


def test_damage_mask_tolerance_leaves_small_outline_moves_unmarked():
    clean = torch.zeros(1, 1, 16, 16)
    clean[..., 4:12, 6:10] = 1.0  # a vertical stroke, 4 px wide
    dilated = torch.zeros_like(clean)
    dilated[..., 4:12, 5:11] = 1.0  # the same stroke 1 px wider on each side
    dilated[..., 14, 1] = 1.0  # and a speck far from any stroke
    exact = damage_mask(dilated, clean)
    assert int(exact.sum()) == 2 * 8 + 1  # both 1-px outline bands and the speck
    tolerant = damage_mask(dilated, clean, tolerance=1)
    assert int(tolerant.sum()) == 1 and tolerant[..., 14, 1].item() == 1.0
    thick = torch.zeros_like(clean)
    thick[..., 4:12, 3:13] = 1.0  # 3 px wider on each side: beyond a 1-px tolerance
    assert damage_mask(thick, clean, tolerance=1)[..., 8, 3].item() == 1.0
    assert damage_mask(thick, clean, tolerance=1)[..., 8, 5].item() == 0.0
    # "moved" forgives the dilation (values the clean glyph holds 1 px away) but not a blur's greys
    assert torch.equal(damage_mask(dilated, clean, tolerance=1, forgive="moved"), tolerant)
    blurred = clean.clone()
    blurred[..., 4:12, 5] = 0.5  # a soft edge: a grey the clean glyph has nowhere
    soft = damage_mask(blurred, clean, tolerance=1, forgive="moved")
    assert int(soft.sum()) == 8 and soft[..., 8, 5].item() == 1.0
    assert int(damage_mask(blurred, clean, tolerance=1).sum()) == 0  # "range" forgives it


def test_outline_tolerance_marks_a_thin_stroke_erased_whole():
    clean = torch.zeros(1, 1, 16, 16)
    clean[..., 2:14, 2:6] = 1.0  # a stroke 4 px wide
    clean[..., 2:14, 10:12] = 1.0  # and one 2 px wide
    eroded = torch.zeros_like(clean)
    eroded[..., 3:13, 3:5] = 1.0  # the wide stroke 1 px thinner all round; the thin one gone
    # "moved" forgives both: every pixel of the 2 px stroke has paper within 1 px in the clean glyph
    assert int(damage_mask(eroded, clean, tolerance=1, forgive="moved").sum()) == 0
    # "outline" forgives the wide stroke's moved outline and marks the vanished stroke, all of it
    outline = damage_mask(eroded, clean, tolerance=1, forgive="outline")
    assert outline[..., 2:14, 10:12].all() and int(outline.sum()) == 12 * 2
    # a gap of 2 px filled whole (two strokes merged) is marked the same way
    two = torch.zeros_like(clean)
    two[..., 2:14, 2:6] = 1.0
    two[..., 2:14, 8:12] = 1.0
    merged = torch.zeros_like(clean)
    merged[..., 2:14, 2:12] = 1.0
    assert int(damage_mask(merged, two, tolerance=1, forgive="moved").sum()) == 0
    filled = damage_mask(merged, two, tolerance=1, forgive="outline")
    # (its two end rows touch paper 1 px away, an outline that is still there)
    assert filled[..., 3:13, 6:8].all() and int(filled.sum()) == 10 * 2
    # "stroke" marks the same vanished stroke and filled gap ...
    assert torch.equal(damage_mask(eroded, clean, tolerance=1, forgive="stroke"), outline)
    assert torch.equal(damage_mask(merged, two, tolerance=1, forgive="stroke"), filled)
    # ... but a stroke dimmed all over, still ink, is judged as "moved" judges it: its dimmed
    # pixels next to the clean glyph's grey outline are forgiven there, and marked by "outline"
    soft = torch.zeros_like(clean)
    soft[..., 2:14, 1:7] = 0.7  # an antialiased outline ...
    soft[..., 2:14, 2:6] = 1.0  # ... around a stroke 4 px wide
    dimmed = soft.clamp(max=0.7)  # the whole stroke at its outline's grey
    moved_dim = damage_mask(dimmed, soft, tolerance=1, forgive="moved")
    assert torch.equal(damage_mask(dimmed, soft, tolerance=1, forgive="stroke"), moved_dim)
    assert int(moved_dim.sum()) == 12 * 2  # the two inner columns only
    assert int(damage_mask(dimmed, soft, tolerance=1, forgive="outline").sum()) == 12 * 4
    with pytest.raises(ValueError, match="forgive"):
        damage_mask(eroded, clean, tolerance=1, forgive="shrunk")


def test_forgiven_outline_pixels_can_be_left_out_of_the_mask_loss():
    clean = torch.zeros(1, 1, 16, 16)
    clean[..., 4:12, 6:10] = 1.0
    dilated = torch.zeros_like(clean)
    dilated[..., 4:12, 5:11] = 1.0  # 1 px heavier each side: forgiven by a 1-px tolerance
    x = torch.cat([dilated, torch.zeros_like(dilated)], 1)
    crit = build_loss("l1")
    band = damage_mask(dilated, clean)  # the 16 outline pixels the dilation added
    # a model that undoes the dilation: right content, mask on the added band
    undo = torch.cat([clean, band], 1)
    kwargs = dict(mask_weight=1.0, mask_tolerance=1, mask_forgive="moved")
    intact = composite_mask_loss(undo, x, clean, crit, **kwargs)
    free = composite_mask_loss(undo, x, clean, crit, **kwargs, mask_forgiven="unsupervised")
    # "intact" calls the band undamaged, so marking it costs BCE of a confident mistake
    assert intact.item() > 0.5  # 16 of 256 pixels at -log(1e-6)
    assert free.item() == pytest.approx(0.0, abs=1e-4)  # nothing left to pay for
    # unforgiven pixels stay supervised: a mask on an untouched pixel still costs
    wrong = undo.clone()
    wrong[:, 1, 0, 0] = 1.0
    assert composite_mask_loss(wrong, x, clean, crit, **kwargs, mask_forgiven="unsupervised") > 0.05
    with pytest.raises(ValueError, match="mask_forgiven"):
        composite_mask_loss(undo, x, clean, crit, **kwargs, mask_forgiven="ignore")


def test_content_loss_scores_the_content_where_the_mask_is_off():
    clean = torch.zeros(1, 1, 8, 8)
    clean[..., 2:6, 3:5] = 1.0  # an intact stroke: nothing damaged
    x = torch.cat([clean, torch.zeros_like(clean)], 1)
    crit = build_loss("l1")
    mask = torch.zeros_like(clean)
    drifted = torch.cat([clean * 0.5, mask], 1)  # content dimmed inside the stroke, mask off
    right = torch.cat([clean, mask], 1)
    # the output is the input either way: without a content loss the drift costs nothing
    assert composite_mask_loss(drifted, x, clean, crit, 1.0).item() == pytest.approx(
        composite_mask_loss(right, x, clean, crit, 1.0).item()
    )
    scored = composite_mask_loss(drifted, x, clean, crit, 1.0, content_weight=0.5)
    base = composite_mask_loss(right, x, clean, crit, 1.0, content_weight=0.5)
    # 8 of 64 pixels off by 0.5, L1 mean 1/16, weighted 0.5
    assert (scored - base).item() == pytest.approx(0.5 * 0.5 * 8 / 64, rel=1e-4)


def test_make_batch_clean_fraction_and_style():
    clean_u8 = (_glyphs(64, 32) * 255).to(torch.uint8)[:, 0]
    from restoreae.damage.pipeline import DamageConfig
    from restoreae.damage.torch_ops import TorchDamage

    x, target = batches.make_batch(
        clean_u8,
        clean_u8,
        damage=TorchDamage(DamageConfig.resolve("seed")),
        generator=torch.Generator().manual_seed(0),
        device=torch.device("cpu"),
        img_size=32,
        use_reference=True,
        style=build_style("writers"),
        clean_fraction=0.25,
    )
    intact = (x[:, :1] - target).abs().flatten(1).amax(1) == 0
    assert 6 <= int(intact.sum()) <= 28  # about a quarter left undamaged
    styled = (target - clean_u8[:, None].float() / 255).abs().flatten(1).amax(1) > 1e-3
    assert int(styled.sum()) > 32  # the target itself is a synthetic writer's glyph
    assert torch.equal(x[:, 1:], clean_u8[:, None].float() / 255)  # reference stays the font


def test_training_a_composite_model_with_mask_loss(tiny_corpus, tmp_path):
    raw = {
        "data": {
            "corpus": str(tiny_corpus),
            "img_size": 64,
            "style": "writers",
            "clean_fraction": 0.2,
        },
        "model": {"name": "unet_mobilenetv3_small", "kwargs": {"output": "composite"}},
        "optim": {"lr": 3e-3, "warmup_steps": 1},
        "train": {
            "max_steps": 4,
            "batch_size": 4,
            "val_num": 8,
            "loss": "l1+0.2*ssim",
            "mask_weight": 0.5,
            "progress": False,
            "ema": 0.9,
        },
        "output": {"run_dir": str(tmp_path / "run")},
    }
    run = engine.train(config_from_dict(raw))
    from restoreae.models.io import load_model

    model, _ = load_model(run / "weights" / "last.safetensors")
    assert model.config["output"] == "composite" and model.return_parts is False
    raw["model"]["kwargs"] = {}
    raw["output"]["run_dir"] = str(tmp_path / "direct")
    with pytest.raises(ConfigError, match="mask_weight.*output: composite"):
        engine.train(config_from_dict(raw))
    raw["data"]["clean_fraction"] = 1.0
    with pytest.raises(ConfigError, match="data.clean_fraction"):
        config_from_dict(raw)


# --------------------------------------------------------------------------- compositing
class _GapFiller:
    """A fake composite backend that knows the truth: content = the true glyph, mask = the gap
    (what a perfect composite model would give). Both are (side, side) uint8 squares in the
    frame of the prepared crop, set after ``prepare``."""

    def __init__(self) -> None:
        self.truth = self.gap = np.zeros((1, 1), np.uint8)
        self.metadata = {"img_size": 64, "in_chans": 1}
        self.img_size, self.in_chans = 64, 1

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        import cv2

        out = np.zeros((batch.shape[0], 2, 64, 64), np.float32)
        out[:, 0] = cv2.resize(self.truth, (64, 64), interpolation=cv2.INTER_AREA) / 255.0
        out[:, 1] = cv2.resize(self.gap, (64, 64), interpolation=cv2.INTER_AREA) / 255.0
        return out


def _lit_photo() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A coloured photo of dark ink on tinted, textured, unevenly lit paper, with a gap in a
    stroke. Returns (damaged RGB uint8 (H, W, 3), true glyph mask (H, W) bool, gap bool)."""
    h, w = 120, 110
    yy, xx = np.mgrid[0:h, 0:w]
    rng = np.random.default_rng(0)
    light = 0.8 + 0.2 * np.sin(xx / 30.0) * np.cos(yy / 45.0) + rng.normal(0, 0.02, (h, w))
    paper = np.array([0.93, 0.84, 0.68])[None, None] * light[..., None]
    glyph = np.zeros((h, w), bool)
    glyph[30:40, 15:95] = True
    glyph[20:100, 50:60] = True
    ink = np.array([0.18, 0.12, 0.1])
    img = np.where(glyph[..., None], ink[None, None], paper)
    gap = np.zeros((h, w), bool)
    gap[30:40, 70:90] = True
    img[gap] = paper[gap]
    return np.clip(np.rint(img * 255), 0, 255).astype(np.uint8), glyph, gap


def test_restoration_keeps_paper_lighting_and_colour():
    from restoreae.restore.api import Restorer

    photo, glyph, gap = _lit_photo()
    backend = _GapFiller()
    restorer = Restorer(backend=backend)
    sx0, sy0, side = restorer.prepare(photo).square
    for name, where in (("truth", glyph), ("gap", gap)):
        square = np.zeros((side, side), np.uint8)
        ys, xs = np.nonzero(where)
        square[ys - sy0, xs - sx0] = 255
        setattr(backend, name, square)
    out = restorer.restore(photo)
    assert out.shape == photo.shape and out.dtype == np.uint8  # RGB in, RGB out
    near = np.zeros_like(glyph)
    near[26:44, 64:96] = True  # the gap and its blending band
    # Away from the restored gap every pixel is the input's own: texture, light, tint.
    assert np.array_equal(out[~near], photo[~near])
    # The gap is filled with the input's ink colour (warm, dark), not a grey box.
    filled = out[gap].astype(float).mean(0)
    assert np.abs(filled - np.array([46, 31, 26])).max() < 40, filled
    assert filled[0] > filled[2]


def test_evenly_lit_grey_patch_reaches_the_model_as_it_is():
    """A grey rectangle on evenly lit paper is damage, not light: it is not levelled away."""
    from restoreae.restore.preprocess import LIGHTING_RANGE, _lighting_range, prepare

    g = np.zeros((128, 128), np.uint8)
    g[30:40, 20:108] = 255
    g[20:110, 58:68] = 255
    g[75:115, 10:50] = 40  # a grey patch on the paper, as the `rectangles` op draws
    prep = prepare(g, 128, "light-on-dark")
    assert prep.square == (0, 0, 128)  # the whole picture, no rescale needed to compare
    assert np.array_equal(prep.norm, g)
    assert np.abs(prep.glyph.astype(int) - g.astype(int))[80:110, 15:45].max() <= 2
    paper = g < 128
    assert _lighting_range(g.astype(np.float32), paper) < LIGHTING_RANGE


def test_lighting_is_levelled_before_the_model():
    from restoreae.restore.preprocess import prepare

    photo, glyph, gap = _lit_photo()
    grey = photo.mean(2).astype(np.uint8)
    prep = prepare(grey, 64)
    paper = ~glyph
    paper[gap] = True
    # The paper's uneven light (±20 %) must not reach the model as faint grey "ink".
    assert np.percentile(prep.norm[paper], 99) < 40
    assert np.median(prep.norm[glyph & ~gap]) > 200
