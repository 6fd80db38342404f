"""Evaluation: metrics against hand-computed values, the OCR judge, baselines, reports, and
`restoreae eval` end to end on the tiny corpus."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from restoreae.evaluate.metrics import gaussian_window, mae, psnr, ssim


# --------------------------------------------------------------------------- metrics
def test_psnr_constant_offset_matches_formula() -> None:
    a = np.full((16, 16), 100, dtype=np.uint8)
    b = a + 10  # MSE = 100 → PSNR = 10 log10(255² / 100)
    assert psnr(a, b) == pytest.approx(10 * math.log10(255**2 / 100), abs=1e-12)
    assert psnr(b, a) == psnr(a, b)
    # float input in [0, 1] with data_range 1: same images / 255 give the same PSNR
    assert psnr(a / 255.0, b / 255.0) == pytest.approx(psnr(a, b), abs=1e-9)
    # explicit data_range
    assert psnr(a.astype(np.float64), b.astype(np.float64), data_range=255) == pytest.approx(
        psnr(a, b)
    )


def test_psnr_identical_is_inf_and_batch_is_per_image() -> None:
    a = np.zeros((3, 12, 12), dtype=np.uint8)
    b = a.copy()
    b[1] += 1  # MSE 1
    b[2, 0, 0] = 255  # MSE 255²/144
    values = psnr(a, b)
    assert values.shape == (3,) and values.dtype == np.float64
    assert math.isinf(values[0]) and values[0] > 0
    assert values[1] == pytest.approx(20 * math.log10(255))
    assert values[2] == pytest.approx(10 * math.log10(144))
    assert math.isinf(psnr(a[0], a[0]))


def test_mae_hand_computed() -> None:
    a = np.array([[0, 10], [20, 30]], dtype=np.uint8)
    b = np.array([[5, 10], [0, 40]], dtype=np.uint8)
    assert mae(a, b) == pytest.approx((5 + 0 + 20 + 10) / 4)  # no uint8 wrap-around
    assert mae(a / 255.0, b / 255.0) == pytest.approx(35 / 4 / 255)


def test_ssim_identity_constant_and_known_value() -> None:
    rng = np.random.default_rng(0)
    img = rng.integers(0, 256, (2, 32, 32), dtype=np.uint8)
    assert np.allclose(ssim(img, img), 1.0, atol=1e-12)
    # two different flat images: σ = 0, so SSIM = (2 μx μy + C1) / (μx² + μy² + C1)
    x = np.full((20, 20), 50, np.uint8)
    y = np.full((20, 20), 150, np.uint8)
    c1 = (0.01 * 255) ** 2
    assert ssim(x, y) == pytest.approx((2 * 50 * 150 + c1) / (50**2 + 150**2 + c1))
    # noise lowers it, and the window is the usual normalised Gaussian
    noisy = np.clip(img.astype(int) + rng.integers(-60, 60, img.shape), 0, 255).astype(np.uint8)
    assert np.all(ssim(img, noisy) < 0.95)
    g = gaussian_window()
    assert g.shape == (11,) and g.sum() == pytest.approx(1.0) and g.argmax() == 5


def test_ssim_matches_direct_2d_computation() -> None:
    """The separable valid filter equals a direct 2-D Gaussian-window evaluation."""
    rng = np.random.default_rng(1)
    x = rng.random((14, 13))
    y = np.clip(x + rng.normal(0, 0.1, x.shape), 0, 1)
    w2 = np.outer(gaussian_window(), gaussian_window())
    c1, c2 = 0.01**2, 0.03**2
    vals = []
    for i in range(14 - 10):
        for j in range(13 - 10):
            px, py = x[i : i + 11, j : j + 11], y[i : i + 11, j : j + 11]
            mx, my = (w2 * px).sum(), (w2 * py).sum()
            vx = (w2 * px * px).sum() - mx * mx
            vy = (w2 * py * py).sum() - my * my
            cxy = (w2 * px * py).sum() - mx * my
            vals.append(
                (2 * mx * my + c1) * (2 * cxy + c2) / ((mx**2 + my**2 + c1) * (vx + vy + c2))
            )
    assert ssim(x, y) == pytest.approx(float(np.mean(vals)), abs=1e-12)


def test_training_ssim_loss_is_the_metric_ssim() -> None:
    """One SSIM: the training loss's map is the evaluation metric's (float32 vs float64)."""
    import torch

    from restoreae.train.losses import ssim_loss

    rng = np.random.default_rng(2)
    x = rng.random((3, 24, 20))
    y = np.clip(x + rng.normal(0, 0.2, x.shape), 0, 1)
    metric = float(np.mean(ssim(x, y)))
    loss = ssim_loss(torch.from_numpy(x[:, None]).float(), torch.from_numpy(y[:, None]).float())
    assert 1.0 - float(loss) == pytest.approx(metric, abs=1e-5)


@pytest.mark.parametrize("fn", [psnr, ssim, mae])
def test_metric_errors(fn) -> None:
    a = np.zeros((16, 16), np.uint8)
    with pytest.raises(ValueError, match=r"\(16, 16\) vs \(16, 15\)"):
        fn(a, np.zeros((16, 15), np.uint8))
    with pytest.raises(ValueError, match="empty"):
        fn(np.zeros((0, 16, 16), np.uint8), np.zeros((0, 16, 16), np.uint8))
    with pytest.raises(ValueError, match="dtypes differ"):
        fn(a, a.astype(np.float32))


def test_ssim_refuses_images_smaller_than_window() -> None:
    with pytest.raises(ValueError, match="smaller than the 11x11"):
        ssim(np.zeros((8, 8), np.uint8), np.zeros((8, 8), np.uint8))


# --------------------------------------------------------------------------- OCR judge
@pytest.fixture(scope="module")
def judge():
    from restoreae.evaluate.ocr import OcrJudge

    return OcrJudge()


def test_normalize_reading() -> None:
    from restoreae.evaluate.ocr import normalize_reading

    assert normalize_reading(" 永。\n") == "永"
    assert normalize_reading("「永」!") == "永"
    assert normalize_reading("永1") == "永1"


def test_ocr_prepare_polarity_and_height(judge) -> None:
    glyph = np.zeros((64, 64), np.uint8)
    glyph[20:40, 30:34] = 255  # white stroke on black
    line = judge.prepare(glyph)
    assert line.shape[0] == 48 and line.shape[2] == 3 and line.dtype == np.uint8
    assert line[0, 0, 0] == 255  # white margin (black on white)
    assert line[24, line.shape[1] // 2, 0] < 64  # the stroke is dark
    with pytest.raises(ValueError, match="uint8"):
        judge.prepare(glyph.astype(np.float32))


def test_ocr_reads_clean_kai_glyphs(judge) -> None:
    """100 GB2312 glyphs in gkai00mp: measured 97% at 64 px (98% at 128 px)."""
    from restoreae.data.charsets import GB2312_LEVEL1
    from restoreae.data.fonts import load_face, render_glyph

    path = Path("/usr/share/fonts/truetype/arphic-gkai00mp/gkai00mp.ttf")
    if not path.is_file():
        pytest.skip("gkai00mp (fonts-arphic-gkai00mp) is not installed")
    face = load_face(path)
    rng = np.random.default_rng(0)
    chars = [GB2312_LEVEL1[i] for i in np.sort(rng.choice(len(GB2312_LEVEL1), 100, replace=False))]
    images = [render_glyph(face, c, 64) for c in chars]
    assert all(img is not None for img in images)
    acc = judge.accuracy(images, chars)
    assert acc >= 0.90
    # a blank image is never read as the character
    assert judge.accuracy([np.zeros((64, 64), np.uint8)], [chars[0]]) == 0.0
    with pytest.raises(ValueError, match="empty"):
        judge.accuracy([], [])


# --------------------------------------------------------------------------- baselines
def test_baselines_shapes_and_effect() -> None:
    from restoreae.evaluate.baselines import ClassicalParams, classical_restore, identity_restore

    clean = np.zeros((2, 64, 64), np.uint8)
    clean[:, 16:48, 28:36] = 255
    damaged = clean.copy()
    damaged[:, 5:60:6, 5:12:3] = 255  # 30 isolated specks per glyph
    damaged[:, 18:46:4, 31] = 0  # pin holes in the stroke
    ident = identity_restore(damaged)
    assert ident.dtype == np.uint8 and np.array_equal(ident, damaged) and ident is not damaged
    restored = classical_restore(damaged)
    assert restored.shape == damaged.shape and set(np.unique(restored)) <= {0, 255}
    assert restored[0, 5, 5] == 0 and restored[0, 30, 31] == 255
    assert np.all(psnr(restored, clean) > psnr(damaged, clean))
    assert ClassicalParams(5, 3, 5, 128).scaled(256) == ClassicalParams(11, 7, 11, 128)
    with pytest.raises(ValueError, match="uint8"):
        classical_restore(damaged.astype(np.float32))


def test_tune_classical_returns_sorted_grid() -> None:
    from restoreae.evaluate.baselines import tune_classical

    rng = np.random.default_rng(0)
    clean = np.zeros((3, 128, 128), np.uint8)
    clean[:, 32:96, 48:80] = 255
    damaged = clean.copy()
    damaged[rng.random(clean.shape) < 0.03] = 255
    best, records = tune_classical(damaged, clean, (1, 3), (1,), (1,), (128,))
    assert len(records) == 2 and records[0]["psnr"] >= records[1]["psnr"]
    assert best.median == 3  # the median filter removes salt noise


# --------------------------------------------------------------------------- grid / report
def _fake_results() -> dict:
    q = {"psnr": 20.0, "ssim": 0.8, "mae": 10.0, "ocr": 0.5, "readability_recovered": 0.55}
    q2 = {**q, "psnr": float("inf"), "ssim": 1.0}
    return {
        "format": 1,
        "settings": {"split": "val", "seed": 0, "size": 64},
        "main_set": "mixed",
        "sets": {
            "mixed": {"ops": ["blur"], "k": 1, "n": 4, "ocr_clean": 0.9, "ocr_damaged": 0.4},
            "blur": {"ops": ["blur"], "k": 1, "n": 4, "ocr_clean": 0.9, "ocr_damaged": 0.4},
        },
        "models": [
            {"name": "a<b>", "kind": "baseline", "params": 0, "gflops": None, "sets": {"mixed": q}},
            {
                "name": "net|1",
                "kind": "checkpoint",
                "params": 1_500_000,
                "gflops": 0.25,
                "latency_ms": {"batch1": 3.0, "batched": 1.0, "batch_size": 8},
                "sets": {"mixed": q2, "blur": q},
            },
        ],
    }


def test_grid_layout() -> None:
    from restoreae.evaluate.grid import GUTTER, HEADER, make_grid

    cols = {
        "damaged": np.full((3, 16, 16), 255, np.uint8),
        "truth": np.zeros((3, 16, 16), np.uint8),
    }
    g = make_grid(cols)
    assert g.shape == (HEADER + 3 * (16 + GUTTER) + GUTTER, 2 * (16 + GUTTER) + GUTTER)
    assert g[HEADER + GUTTER, GUTTER] == 255 and g[HEADER + GUTTER, 2 * GUTTER + 16] == 0
    with pytest.raises(ValueError, match="column 'truth'"):
        make_grid({"a": cols["damaged"], "truth": np.zeros((3, 8, 8), np.uint8)})


def test_report_ranks_and_escapes() -> None:
    from restoreae.evaluate.report import leaderboard_markdown, leaderboard_rows, render_html

    res = _fake_results()
    rows = leaderboard_rows(res)
    assert [r["name"] for r in rows] == ["net|1", "a<b>"]  # inf PSNR ranks first
    md = leaderboard_markdown(res)
    assert "net\\|1" in md and "| inf |" in md and "1.50" in md
    page = render_html(res, b"\x89PNG fake")
    assert "a&lt;b&gt;" in page and "data:image/png;base64," in page and "<script" not in page


def test_report_escapes_a_hostile_model_name() -> None:
    """The report's template autoescapes every value: a model name (it comes from a file name or
    the command line), a set name or a setting cannot inject markup into the page."""
    from restoreae.evaluate.report import render_html

    hostile = "<script>alert(1)</script>\"'><img src=x onerror=alert(2)>&"
    res = _fake_results()
    res["models"][0]["name"] = hostile
    res["settings"]["split"] = "</title><script>x()</script>"
    res["sets"]["<b>bold</b>"] = res["sets"].pop("blur")
    res["models"][1]["sets"]["<b>bold</b>"] = res["models"][1]["sets"].pop("blur")
    page = render_html(res, b"\x89PNG")
    assert "<script" not in page and "<img src=x" not in page and "<b>" not in page
    assert page.count("&lt;script&gt;alert(1)&lt;/script&gt;") == 2  # leaderboard, damage table
    assert "&lt;img src=x onerror=alert(2)&gt;&amp;" in page
    assert (
        "<title>restoreae evaluation — &lt;/title&gt;&lt;script&gt;x()&lt;/script&gt;</title>"
        in page
    )
    assert "&lt;b&gt;bold&lt;/b&gt;" in page
    assert page.count("<table") == 2 and page.count("<img ") == 1  # the page's own markup stays


def test_package_data_ships_every_data_file() -> None:
    """Every non-Python file in the package (the report template, web page, demo samples, shipped
    weights) matches a ``[tool.setuptools.package-data]`` pattern, so a non-editable install
    carries it. Files git ignores (caches such as the ONNX export beside the weights) are not
    the package's."""
    import fnmatch
    import subprocess
    import tomllib

    root = Path(__file__).resolve().parents[1]
    with open(root / "pyproject.toml", "rb") as f:
        patterns = tomllib.load(f)["tool"]["setuptools"]["package-data"]["restoreae"]
    try:
        listed = subprocess.run(
            ["git", "ls-files", "-co", "--exclude-standard", "src/restoreae"],
            cwd=root,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.splitlines()
    except (OSError, subprocess.CalledProcessError):
        pytest.skip("not a git checkout: cannot tell package files from caches")
    prefix = "src/restoreae/"
    data = [f[len(prefix) :] for f in listed if not f.endswith(".py") and "__pycache__" not in f]
    assert "evaluate/templates/report.html.j2" in data
    # setuptools' "*" stays within one folder; fnmatch's would not
    missing = [
        d
        for d in data
        if not any(fnmatch.fnmatchcase(d, p) and d.count("/") == p.count("/") for p in patterns)
    ]
    assert not missing, f"not in package-data: {missing}"


# --------------------------------------------------------------------------- runner pieces
def test_glyph_runner_reference_channel_and_resize() -> None:
    from restoreae.evaluate.candidates import GlyphRunner

    class TakeReference:
        """A backend returning channel 1 (the reference): shows channel order and the resize
        round trip."""

        metadata = {"img_size": 32, "in_chans": 2}
        img_size, in_chans = 32, 2

        def __call__(self, x: np.ndarray) -> np.ndarray:
            assert x.shape[1:] == (2, 32, 32) and x.dtype == np.float32 and len(x) <= 2
            assert float(x.max()) <= 1.0
            return x[:, 1:2]

    ref = np.zeros((5, 64, 64), np.uint8)
    ref[:, 16:48, 16:48] = 255
    damaged = np.zeros_like(ref)
    out = GlyphRunner(TakeReference(), batch_size=2)(damaged, ref)
    assert out.shape == ref.shape and out.dtype == np.uint8
    # the block survives the area-down / bilinear-up round trip; only its edge pixels blend
    assert np.all(out[:, 18:46, 18:46] == 255) and np.all(out[:, :14] == 0)
    assert float(np.mean(mae(out, ref))) < 10


def test_damage_sets_are_seeded_and_really_damaged(tiny_corpus: Path) -> None:
    from restoreae.damage.pipeline import DamageConfig
    from restoreae.data.corpus import Corpus
    from restoreae.evaluate.runner import build_damage_sets, sample_pairs

    corpus = Corpus.open(tiny_corpus)
    w, c = sample_pairs(corpus, "heldout-writers", 10, seed=3)
    w2, c2 = sample_pairs(corpus, "heldout-writers", 10, seed=3)
    assert np.array_equal(w, w2) and np.array_equal(c, c2) and len(w) == 10
    clean = np.asarray(corpus.glyphs[w, c])
    sets = build_damage_sets(clean, DamageConfig(), 3, ["blur", "cracks"])
    again = build_damage_sets(clean, DamageConfig(), 3, ["cracks"])
    assert list(sets) == ["mixed", "blur", "cracks"]
    assert np.array_equal(sets["cracks"].damaged, again["cracks"].damaged)
    assert np.array_equal(sets["mixed"].damaged, again["mixed"].damaged)
    for s in sets.values():
        assert s.damaged.shape == clean.shape and s.damaged.dtype == np.uint8
        assert np.all(np.isfinite(psnr(s.damaged, clean)))  # every glyph really damaged
    assert all(a == ["cracks"] for a in sets["cracks"].applied)
    assert all(len(a) == 3 for a in sets["mixed"].applied)


def test_identity_below_clean_on_heavy_damage(tiny_corpus: Path, judge) -> None:
    from restoreae.damage.pipeline import DamageConfig
    from restoreae.data.corpus import Corpus
    from restoreae.evaluate.runner import build_damage_sets, sample_pairs

    corpus = Corpus.open(tiny_corpus)
    w, c = sample_pairs(corpus, "heldout-writers", 24, seed=0)
    clean = np.asarray(corpus.glyphs[w, c])
    chars = [corpus.chars[i] for i in c]
    heavy = DamageConfig.from_dict({"ops": ["missing_chunk", "weathering", "blur"], "k": 3})
    damaged = build_damage_sets(clean, heavy, 0)["mixed"].damaged
    p = psnr(damaged, clean)
    assert np.all(np.isfinite(p)) and float(np.mean(p)) < 30
    assert float(np.mean(ssim(damaged, clean))) < 0.95
    assert judge.accuracy(list(damaged), chars) < judge.accuracy(list(clean), chars)


# --------------------------------------------------------------------------- end to end
def test_eval_command_end_to_end(tiny_corpus: Path, tmp_path: Path, capsys) -> None:
    from restoreae.cli import main
    from restoreae.models.io import save_model
    from restoreae.models.registry import create_model

    model = create_model("unet_mobilenetv3_small", in_chans=2, img_size=64)
    ckpt = tmp_path / "run-a" / "weights" / "best.safetensors"
    save_model(model, ckpt, {"img_size": 64, "in_chans": 2})
    out = tmp_path / "report"
    rc = main(
        [
            "eval",
            str(tmp_path / "run-a"),
            "--data",
            str(tiny_corpus),
            "--num",
            "6",
            "--batch-size",
            "4",
            "--device",
            "cpu",
            "--no-per-op",
            "--out",
            str(out),
        ]
    )
    assert rc == 0
    names = ["identity", "classical", "run-a"]
    for f in ("metrics.json", "leaderboard.md", "leaderboard.json", "grid.png", "report.html"):
        assert (out / f).is_file() and (out / f).stat().st_size > 0
    stdout = capsys.readouterr().out
    html = (out / "report.html").read_text(encoding="utf-8")
    md = (out / "leaderboard.md").read_text(encoding="utf-8")
    for name in names:
        assert name in html and name in md and name in stdout
    metrics = json.loads((out / "metrics.json").read_text(encoding="utf-8"))
    assert [m["name"] for m in metrics["models"]] == names
    assert metrics["settings"]["num"] == 6 and metrics["sets"]["mixed"]["n"] == 6
    ident = metrics["models"][0]["sets"]["mixed"]
    net = metrics["models"][2]
    assert isinstance(ident["psnr"], float) and 0 < ident["ssim"] < 1
    assert ident["ocr"] == metrics["sets"]["mixed"]["ocr_damaged"]
    assert net["params"] > 0 and net["gflops"] > 0 and net["latency_ms"]["batch1"] > 0
    board = json.loads((out / "leaderboard.json").read_text(encoding="utf-8"))
    assert sorted(r["name"] for r in board["rows"]) == sorted(names)
    assert "data:image/png;base64," in html


def test_eval_command_errors(tiny_corpus: Path, tmp_path: Path, capsys) -> None:
    from restoreae.cli import main

    base = ["eval", "--data", str(tiny_corpus), "--out", str(tmp_path / "o"), "--no-ocr"]
    assert main([*base, str(tmp_path / "missing.safetensors")]) == 2
    assert "missing.safetensors: no such file" in capsys.readouterr().err
    assert main([*base, "--damage", str(tmp_path / "nope.yaml")]) == 2
    assert "--damage" in capsys.readouterr().err
    assert main(["eval", "--data", str(tmp_path / "nocorpus"), "--no-ocr"]) == 2


# --------------------------------------------------------------------------- metric registry
def _max_error(a: np.ndarray, b: np.ndarray) -> float | np.ndarray:
    """Largest absolute difference per image (a metric registered only by the tests below)."""
    d = np.abs(np.asarray(a, np.float64) - np.asarray(b, np.float64))
    return d.max(axis=(-2, -1)) if d.ndim == 3 else float(d.max())


def test_a_registered_metric_is_scored_and_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    """Adding a metric is one registered function: eval scores it on every set, the leaderboard
    gets its column, and with a table format the per-damage cells show it too."""
    from restoreae.damage.pipeline import DamageConfig
    from restoreae.evaluate import report as rep
    from restoreae.evaluate.candidates import baselines
    from restoreae.evaluate.metrics import METRICS, Metric, table_metrics
    from restoreae.evaluate.runner import build_damage_sets, evaluate

    assert list(METRICS) == ["psnr", "ssim", "mae"] and [m.name for m in table_metrics()] == [
        "psnr",
        "ssim",
    ]
    metric = Metric("max_err", _max_error, "Max error (levels)", ".1f", ".0f", "max error: peak")
    monkeypatch.setitem(METRICS._entries, "max_err", metric)
    clean = np.zeros((3, 32, 32), np.uint8)
    clean[:, 8:24, 12:20] = 255
    sets = build_damage_sets(clean, DamageConfig.resolve("seed", where="test"), 0, ["blur"])
    settings = {"split": "val", "size": 32, "seed": 0}
    results, _ = evaluate(
        clean, clean, ["一"] * 3, sets, baselines(), latency=False, settings=settings
    )
    ident = results["models"][0]
    for name, s in sets.items():
        assert ident["sets"][name]["max_err"] == pytest.approx(
            np.mean(_max_error(s.damaged, clean))
        )
    md = rep.leaderboard_markdown(results)
    assert "Max error (levels)" in md.splitlines()[2] and "max error: peak" in md
    row = rep.leaderboard_rows(results)[0]
    assert row["max_err"] == next(
        m["sets"]["mixed"]["max_err"] for m in results["models"] if m["name"] == row["name"]
    )
    assert "Cells: PSNR (dB) / SSIM / Max error (levels) / OCR restored." in (
        rep.per_damage_markdown(results)
    )
    assert "Max error (levels)" in rep.render_html(results)


def test_validation_psnr_is_the_evaluation_psnr() -> None:
    """One PSNR: validation's (float32 tensors, capped at 100 dB) is the metric's function."""
    import torch

    from restoreae.psnr import psnr_per_image
    from restoreae.train.validate import VAL_MAX_PSNR_DB

    rng = np.random.default_rng(0)
    a = rng.random((4, 16, 16))
    b = np.clip(a + rng.normal(0, 0.05, a.shape), 0, 1)
    b[3] = a[3]
    metric = psnr(a, b)
    val = psnr_per_image(torch.from_numpy(a).float(), torch.from_numpy(b).float(), max_db=100.0)
    assert np.allclose(val[:3].numpy(), metric[:3], atol=1e-3)
    assert math.isinf(metric[3]) and float(val[3]) == pytest.approx(VAL_MAX_PSNR_DB)
