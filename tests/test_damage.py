"""Damage stage: registry, numpy ops, pipeline + config, batched torch ops, preview."""

from __future__ import annotations

import argparse
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import yaml

from restoreae.damage import (
    PRESETS,
    DamageConfig,
    DamagePipeline,
    get_damage_op,
    list_damage_ops,
)
from restoreae.damage.pipeline import resolve_mix
from restoreae.damage.preview import PIPELINE_COLUMNS, make_preview_grid, preview_damage_command
from restoreae.damage.torch_ops import TorchDamage, TorchDamageMix, build_torch_damage
from restoreae.errors import ConfigError

ALL_OPS = [
    "erode_dilate",
    "rectangles",
    "polygons",
    "blur",
    "blob_noise",
    "weathering",
    "cracks",
    "missing_chunk",
    "rubbing_grain",
    "ink_bleed",
    "low_contrast",
]
REPO = Path(__file__).resolve().parents[1]


def _glyph(size: int, variant: int = 0) -> np.ndarray:
    """A synthetic stroke glyph: uint8 (size, size), white strokes on black."""
    img = np.zeros((128, 128), np.uint8)
    rng = np.random.default_rng(variant)
    for _ in range(4):
        p1 = tuple(int(v) for v in rng.integers(20, 108, 2))
        p2 = tuple(int(v) for v in rng.integers(20, 108, 2))
        cv2.line(img, p1, p2, 255, int(rng.integers(5, 11)), cv2.LINE_AA)
    cv2.ellipse(img, (64, 64), (30, 18), int(rng.integers(0, 180)), 0, 200, 255, 7, cv2.LINE_AA)
    if size != 128:
        img = cv2.resize(img, (size, size), interpolation=cv2.INTER_AREA)
    return img


@pytest.fixture(scope="module")
def glyphs128() -> np.ndarray:
    return np.stack([_glyph(128, v) for v in range(8)])


def _to_tensor(imgs: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(imgs).float().unsqueeze(1) / 255.0


# ----------------------------------------------------------------------------------- registry


def test_registry_lists_every_op_with_defaults_and_torch_version() -> None:
    assert list_damage_ops() == ALL_OPS
    for name in ALL_OPS:
        op = get_damage_op(name)
        assert op.defaults, name
        assert op.torch_fn is not None, name
        assert op.doc, name
    with pytest.raises(KeyError, match="nope"):
        get_damage_op("nope")


def test_torch_twin_declares_the_numpy_parameters(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each torch twin carries the numpy op's parameters with the same annotations and defaults
    (callable on its own with the defaults); attaching one that differs is refused."""
    import inspect

    from restoreae.damage.registry import DAMAGE_OPS, register_damage, register_torch_damage

    for name in ALL_OPS:
        op = get_damage_op(name)
        params = inspect.signature(op.torch_fn).parameters
        kw = {p.name: p.default for p in params.values() if p.kind is p.KEYWORD_ONLY}
        assert kw == op.defaults, name
    out = get_damage_op("blur").torch_fn(
        torch.zeros(2, 1, 32, 32), torch.Generator().manual_seed(0)
    )
    assert out.shape == (2, 1, 32, 32)

    monkeypatch.setattr(DAMAGE_OPS, "_entries", dict(DAMAGE_OPS._entries))

    @register_damage("_twin_check")
    def numpy_op(img: np.ndarray, rng: np.random.Generator, *, a: float = 0.5) -> np.ndarray:
        return img

    def other_default(x: torch.Tensor, gen: torch.Generator, *, a: float = 0.4) -> torch.Tensor:
        return x

    def other_name(x: torch.Tensor, gen: torch.Generator, *, b: float = 0.5) -> torch.Tensor:
        return x

    for fn, bad in ((other_default, "\\['a'\\]"), (other_name, "\\['a', 'b'\\]")):
        with pytest.raises(TypeError, match=f"'_twin_check': keyword parameters {bad}"):
            register_torch_damage("_twin_check")(fn)
    assert get_damage_op("_twin_check").torch_fn is None


# ---------------------------------------------------------------------------------- numpy ops


@pytest.mark.parametrize("name", ALL_OPS)
@pytest.mark.parametrize("size", [32, 128, 256])
def test_numpy_op_changes_image_keeps_shape_dtype(name: str, size: int) -> None:
    op = get_damage_op(name)
    for variant in range(3):
        img = _glyph(size, variant)
        before = img.copy()
        out = op.fn(img, np.random.default_rng(variant), **op.defaults)
        assert out.shape == (size, size) and out.dtype == np.uint8
        assert np.array_equal(img, before), "input modified"
        assert np.abs(out.astype(int) - img).sum() > 0, f"{name} left glyph {variant} unchanged"


@pytest.mark.parametrize("name", ALL_OPS)
def test_numpy_op_is_seeded(name: str) -> None:
    op = get_damage_op(name)
    img = _glyph(96)
    a = op.fn(img, np.random.default_rng(5), **op.defaults)
    b = op.fn(img, np.random.default_rng(5), **op.defaults)
    assert np.array_equal(a, b)
    others = [op.fn(img, np.random.default_rng(s), **op.defaults) for s in (6, 7, 8)]
    assert any(not np.array_equal(a, o) for o in others)


def test_op_parameters_control_strength() -> None:
    img = _glyph(128)
    blur = get_damage_op("blur").fn
    weak = blur(img, np.random.default_rng(0), kernel=3)
    strong = blur(img, np.random.default_rng(0), kernel=11)
    assert np.abs(strong.astype(int) - img).mean() > np.abs(weak.astype(int) - img).mean()
    faded = get_damage_op("low_contrast").fn(
        img, np.random.default_rng(0), contrast=0.5, background=0.0, unevenness=0.0, cells=2
    )
    assert faded.max() == pytest.approx(128, abs=1)  # 255 * 0.5
    dilated = get_damage_op("erode_dilate").fn(img, np.random.default_rng(0), kernel=3, p_dilate=1)
    assert np.array_equal(dilated, cv2.dilate(img, np.ones((3, 3), np.uint8)))


# ---------------------------------------------------------------------------------- config


def test_config_defaults_and_presets() -> None:
    cfg = DamageConfig()
    assert cfg.ops == ["erode_dilate", "rectangles", "blur", "blob_noise"] and cfg.k == 3
    real = DamageConfig.preset("real")
    assert set(real.ops) == set(ALL_OPS) and real.k_range == (2, 4)
    assert DamageConfig.resolve(None).to_dict() == cfg.to_dict()
    assert DamageConfig.resolve("seed").to_dict() == DamageConfig.preset("seed").to_dict()
    over = DamageConfig.from_dict({"ops": ["blur"], "k": 1, "params": {"blur": {"kernel": [5, 7]}}})
    assert over.op_params("blur") == {"kernel": (5, 7)}
    assert DamageConfig.from_dict(over.to_dict()).to_dict() == over.to_dict()


def test_resolve_precedence_is_one_rule(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    over = {"ops": ["blur"], "k": 1}
    assert DamageConfig.resolve(over).ops == ["blur"]
    cfg = DamageConfig.from_dict(over)
    assert DamageConfig.resolve(cfg) is cfg
    path = tmp_path / "blur.yaml"
    path.write_text(yaml.safe_dump(over), encoding="utf-8")
    assert DamageConfig.resolve(path).ops == DamageConfig.resolve(str(path)).ops == ["blur"]
    monkeypatch.chdir(tmp_path)
    (tmp_path / "real").write_text(yaml.safe_dump(over), encoding="utf-8")
    for spec in ("real", Path("real")):  # a preset name wins over a file of that name
        assert DamageConfig.resolve(spec).to_dict() == DamageConfig.preset("real").to_dict()
    with pytest.raises(ConfigError, match=r"--damage: 'nope\.yaml' is neither a damage preset"):
        DamageConfig.resolve("nope.yaml", where="--damage")
    with pytest.raises(ConfigError, match="expected a preset name"):
        DamageConfig.resolve(3)  # type: ignore[arg-type]


def test_only_keeps_one_op_and_its_overrides() -> None:
    cfg = DamageConfig.from_dict(
        {"ops": ["blur", "cracks"], "k": 2, "params": {"blur": {"kernel": 5}}}
    )
    blur = cfg.only("blur")
    assert blur.to_dict() == {"ops": ["blur"], "k": 1, "params": {"blur": {"kernel": 5}}}
    assert cfg.only("cracks").to_dict() == {"ops": ["cracks"], "k": 1, "params": {}}
    assert blur.op_params("blur") == {**get_damage_op("blur").defaults, "kernel": 5}
    with pytest.raises(ConfigError, match="damage.ops"):
        cfg.only("nope")


def test_resolve_op_name_is_one_op_with_the_seed_parameters() -> None:
    seed = DamageConfig.resolve("seed")
    assert DamageConfig.resolve("op:erode_dilate") == seed.only("erode_dilate")
    assert DamageConfig.resolve("op:cracks").to_dict() == {"ops": ["cracks"], "k": 1, "params": {}}
    with pytest.raises(ConfigError, match=r"train.val_damage\[0\]: 'op:erode'.*erode_dilate"):
        DamageConfig.resolve("op:erode", where="train.val_damage[0]")


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_yaml_configs_match_presets(name: str) -> None:
    from_file = DamageConfig.from_yaml(REPO / "configs" / "damage" / f"{name}.yaml")
    preset = DamageConfig.preset(name)
    assert from_file.ops == preset.ops and from_file.k == preset.k
    assert all(from_file.op_params(op) == preset.op_params(op) for op in preset.ops)


@pytest.mark.parametrize(
    ("data", "key"),
    [
        ({"ops": ["blur", "sparkles"]}, "sparkles"),
        ({"ops": ["blur"], "k": 1, "params": {"blur": {"kernal": 3}}}, "params.blur.kernal"),
        ({"ops": ["blur"], "k": 1, "params": {"glitter": {}}}, "params.glitter"),
        ({"ops": ["blur", "cracks"], "k": 3}, "damage.k"),
        ({"ops": ["blur"], "k": 0}, "damage.k"),
        ({"ops": ["blur"], "k": 1, "params": {"blur": {"kernel": [9, 3]}}}, "blur.kernel"),
        ({"ops": ["blur"], "k": 1, "params": {"blur": {"kernel": "big"}}}, "blur.kernel"),
        ({"ops": []}, "damage.ops"),
        ({"ops": ["blur", "blur"], "k": 1}, "duplicate"),
        ({"ops": ["blur"], "k": 1, "probability": 0.5}, "damage.probability"),
    ],
)
def test_config_errors_name_the_key(data: dict, key: str) -> None:
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        DamageConfig.from_dict(data)


def test_yaml_errors_name_the_file(tmp_path: Path) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({"ops": ["blur"], "k": 1, "params": {"blur": {"sigma": 2}}}))
    with pytest.raises(ConfigError, match=r"bad\.yaml\.params\.blur\.sigma"):
        DamageConfig.from_yaml(bad)
    broken = tmp_path / "broken.yaml"
    broken.write_text("ops: [blur\n")
    with pytest.raises(ConfigError, match="broken.yaml"):
        DamageConfig.from_yaml(broken)
    with pytest.raises(ConfigError, match="missing.yaml"):
        DamageConfig.from_yaml(tmp_path / "missing.yaml")


# ---------------------------------------------------------------------------------- pipeline


def test_pipeline_applies_exactly_k_distinct_ops(glyphs128: np.ndarray) -> None:
    pipe = DamagePipeline(DamageConfig())
    seen: set[tuple[str, ...]] = set()
    for i, img in enumerate(glyphs128):
        out, applied = pipe(img, np.random.default_rng(i))
        assert len(applied) == 3 and len(set(applied)) == 3
        assert set(applied) <= {"erode_dilate", "rectangles", "blur", "blob_noise"}
        assert out.shape == img.shape and out.dtype == np.uint8 and not np.array_equal(out, img)
        seen.add(tuple(applied))
    assert len(seen) > 1  # random choice and order
    real = DamagePipeline(DamageConfig.preset("real"))
    counts = {len(real(glyphs128[0], np.random.default_rng(s))[1]) for s in range(30)}
    assert counts == {2, 3, 4}


def test_pipeline_is_reproducible_per_seed(glyphs128: np.ndarray) -> None:
    pipeline = DamagePipeline(DamageConfig.preset("real"))
    a, names_a = pipeline(glyphs128[0], np.random.default_rng(3))
    b, names_b = pipeline(glyphs128[0], np.random.default_rng(3))
    assert a.shape == glyphs128[0].shape and a.dtype == np.uint8
    assert np.array_equal(a, b) and names_a == names_b
    others = [pipeline(glyphs128[0], np.random.default_rng(s))[0] for s in range(4, 8)]
    assert any(not np.array_equal(a, c) for c in others)


# ---------------------------------------------------------------------------------- torch ops


@pytest.mark.parametrize("name", ALL_OPS)
def test_torch_op_batch_shape_range_determinism_variety(name: str, glyphs128: np.ndarray) -> None:
    x = _to_tensor(glyphs128[:4]).repeat(2, 1, 1, 1)  # 8 samples: each glyph twice
    td = TorchDamage(DamageConfig(ops=[name], k=1))
    before = x.clone()
    y = td.apply_op(name, x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and y.dtype == torch.float32
    assert float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    assert torch.equal(x, before), "input modified"
    change = (y - x).abs().flatten(1).amax(dim=1)
    assert bool((change > 0).all()), f"{name} left a sample unchanged: {change}"
    again = td.apply_op(name, x, torch.Generator().manual_seed(0))
    assert torch.equal(y, again)
    other = td.apply_op(name, x, torch.Generator().manual_seed(1))
    assert not torch.equal(y, other)
    # the same glyph twice in a batch gets different damage
    assert not torch.equal(y[:4], y[4:])


@pytest.mark.parametrize("name", ALL_OPS)
@pytest.mark.parametrize("size", [32, 224])
def test_torch_op_works_at_other_sizes(name: str, size: int) -> None:
    x = _to_tensor(np.stack([_glyph(size, v) for v in range(2)]))
    y = TorchDamage(DamageConfig(ops=[name], k=1)).apply_op(
        name, x, torch.Generator().manual_seed(0)
    )
    assert y.shape == x.shape and bool(torch.isfinite(y).all())
    assert float((y - x).abs().sum()) > 0


@pytest.mark.parametrize("name", ALL_OPS)
def test_torch_strength_matches_numpy(name: str, glyphs128: np.ndarray) -> None:
    op = get_damage_op(name)
    reps = np.concatenate([glyphs128] * 3)
    np_change = np.mean(
        [
            np.abs(op.fn(img, np.random.default_rng(i), **op.defaults).astype(float) - img).mean()
            for i, img in enumerate(reps)
        ]
    )
    x = _to_tensor(reps)
    y = TorchDamage(DamageConfig(ops=[name], k=1)).apply_op(
        name, x, torch.Generator().manual_seed(0)
    )
    torch_change = float((y - x).abs().mean()) * 255.0
    ratio = torch_change / np_change
    assert 1 / 3 < ratio < 3, f"{name}: torch {torch_change:.2f} vs numpy {np_change:.2f}"


def test_torch_damage_pipeline() -> None:
    x = _to_tensor(np.stack([_glyph(64, v) for v in range(8)])).repeat(2, 1, 1, 1)
    td = TorchDamage(DamageConfig.preset("real"))
    y, chosen = td.apply(x, torch.Generator().manual_seed(0))
    assert y.shape == x.shape and float(y.min()) >= 0.0 and float(y.max()) <= 1.0
    k = (chosen >= 0).sum(dim=1)
    assert set(k.tolist()) <= {2, 3, 4} and len(set(k.tolist())) > 1
    for row in chosen.tolist():
        used = [j for j in row if j >= 0]
        assert len(set(used)) == len(used)
        assert row[: len(used)] == used  # unused steps only at the end
    assert len({tuple(r) for r in chosen.tolist()}) > 1  # per-sample choice of ops
    assert not torch.equal(y[:8], y[8:])
    assert torch.equal(td(x, torch.Generator().manual_seed(0)), y)
    assert not torch.equal(td(x, torch.Generator().manual_seed(1)), y)
    seed = TorchDamage(DamageConfig())
    _, chosen = seed.apply(x, torch.Generator().manual_seed(0))
    assert bool(((chosen >= 0).sum(dim=1) == 3).all())
    with pytest.raises(ValueError, match="B, 1, H, W"):
        seed(x[:, 0], torch.Generator())


def test_damage_mix_resolves_normalises_and_names_bad_keys(tmp_path: Path) -> None:
    parts = resolve_mix(REPO / "configs" / "damage" / "seed_real.yaml")
    assert [share for _, share in parts] == [0.5, 0.5]
    assert parts[0][0] == DamageConfig.preset("seed") and parts[1][0] == DamageConfig.preset("real")
    parts = resolve_mix({"mix": {"seed": 1, "op:blur": 3}})
    assert [share for _, share in parts] == [0.25, 0.75]
    assert parts[1][0] == DamageConfig.resolve("op:blur")
    assert resolve_mix("real") == [(DamageConfig.preset("real"), 1.0)]
    assert resolve_mix(None) == [(DamageConfig(), 1.0)]
    for bad, key in [
        ({"mix": {"seed": 0}}, r"data\.damage\.mix\.seed: share must be a positive"),
        ({"mix": {"seed": 1, "sparkle": 1}}, r"data\.damage\.mix\.sparkle: 'sparkle'"),
        ({"mix": {"seed": 1}, "k": 2}, r"data\.damage: a damage mix has only the key 'mix'"),
        ({"mix": []}, r"data\.damage\.mix: expected a mapping"),
    ]:
        with pytest.raises(ConfigError, match=key):
            resolve_mix(bad, where="data.damage")
    bad_file = tmp_path / "mix.yaml"
    bad_file.write_text("mix: {seed: -1}\n")
    with pytest.raises(ConfigError, match=r"mix\.yaml\)\.mix\.seed: share"):
        resolve_mix(bad_file, where="data.damage")


def test_torch_damage_mix_damages_each_sample_with_one_config(tmp_path: Path) -> None:
    light, heavy = tmp_path / "light.yaml", tmp_path / "heavy.yaml"
    light.write_text("ops: [blur]\nk: 1\nparams: {blur: {kernel: [3, 3]}}\n")
    heavy.write_text("ops: [blur]\nk: 1\nparams: {blur: {kernel: [11, 11]}}\n")
    parts = resolve_mix({"mix": {str(light): 1, str(heavy): 3}})
    mix = build_torch_damage(parts)
    assert isinstance(mix, TorchDamageMix)
    assert isinstance(build_torch_damage(resolve_mix("seed")), TorchDamage)
    x = _to_tensor(np.stack([_glyph(64, v % 8) for v in range(256)]))
    y = mix(x, torch.Generator().manual_seed(0))
    # Blur at a fixed kernel is deterministic: every sample is exactly one config's output.
    by_light = TorchDamage(parts[0][0])(x, torch.Generator())
    by_heavy = TorchDamage(parts[1][0])(x, torch.Generator())
    is_light = (y == by_light).flatten(1).all(1)
    is_heavy = (y == by_heavy).flatten(1).all(1)
    assert bool((is_light ^ is_heavy).all())
    assert 0.15 < float(is_light.float().mean()) < 0.35  # share 1/4
    assert torch.equal(mix(x, torch.Generator().manual_seed(0)), y)
    assert not torch.equal(mix(x, torch.Generator().manual_seed(1)), y)
    with pytest.raises(ValueError, match="B, 1, H, W"):
        mix(x[:, 0], torch.Generator())


def test_non_square_images_and_other_dtypes() -> None:
    img = np.zeros((40, 72), np.uint8)
    img[:, 30:40] = 255
    img[15:25, :] = 255
    for name in ALL_OPS:
        op = get_damage_op(name)
        assert op.fn(img, np.random.default_rng(0), **op.defaults).shape == (40, 72)
    x = _to_tensor(np.stack([img, img]))
    td = TorchDamage(DamageConfig.preset("real"))
    for name in ALL_OPS:
        assert td.apply_op(name, x, torch.Generator().manual_seed(0)).shape == x.shape
    y = td(x.to(torch.bfloat16), torch.Generator().manual_seed(0))
    assert y.dtype == torch.bfloat16 and y.shape == x.shape


# ---------------------------------------------------------------------------------- preview


def test_preview_grid_layout() -> None:
    glyphs = [_glyph(48, v) for v in range(3)]
    grid = make_preview_grid(glyphs, ops=["blur", "cracks"], seed=1)
    cols = 1 + PIPELINE_COLUMNS + 2
    assert grid.dtype == np.uint8 and grid.shape[1] == cols * 50
    header = grid.shape[0] - 3 * 50
    assert 10 <= header <= 30
    first = grid[header + 2 : header + 50, 0:48]
    assert np.array_equal(first, glyphs[0])  # the clean column
    assert np.array_equal(grid, make_preview_grid(glyphs, ops=["blur", "cracks"], seed=1))
    with pytest.raises(ConfigError, match="sparkles"):
        make_preview_grid(glyphs, ops=["sparkles"])


def test_preview_command_writes_png(tmp_path: Path) -> None:
    out = tmp_path / "sub" / "preview.png"
    args = argparse.Namespace(
        out=out, corpus=None, config=REPO / "configs" / "damage" / "real.yaml", ops="blur,cracks",
        rows=2, size=48, seed=0,
    )  # fmt: skip
    assert preview_damage_command(args) == 0
    img = cv2.imread(str(out), cv2.IMREAD_UNCHANGED)
    assert img is not None and img.dtype == np.uint8 and img.ndim == 2
    assert img.shape[1] == (1 + PIPELINE_COLUMNS + 2) * 50
    assert img.shape[0] > 2 * 50
    assert [p.name for p in out.parent.iterdir()] == ["preview.png"]  # no temp files left


def test_preview_cli_reports_unknown_op(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from restoreae.cli import main

    rc = main(["preview-damage", "--out", str(tmp_path / "p.png"), "--ops", "blur,sparkles"])
    assert rc == 2
    assert "sparkles" in capsys.readouterr().err
