"""Real-image evaluation sets and the quality suite (``restoreae eval --suite / --real``)."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pytest

from restoreae.errors import DataError
from restoreae.evaluate.quality import (
    PSNR_MEAN_CAP_DB,
    ImageSet,
    damage_images,
    evaluate_sets,
    make_conditions,
    ocr_correct,
)
from restoreae.evaluate.realset import (
    MAX_SIDE,
    MIN_SIDE,
    load_labelled,
    load_labels_csv,
    normalise,
    sample_items,
    scan_folder,
)

CHARS = "永和山水"


def _glyph(char: str, size: int = 96) -> np.ndarray:
    from restoreae.data.reference import ReferenceRenderer

    return ReferenceRenderer(size=size).render(char)


def _write(path: Path, img: np.ndarray) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), img)


@pytest.fixture()
def labelled(tmp_path: Path) -> Path:
    """A labels CSV (extra column, alt, set, polarity) over 4 images of 2 sets, both polarities."""
    root = tmp_path / "real"
    lines = ["path,char,alt,set,polarity,note"]
    for i, ch in enumerate(CHARS):
        g = _glyph(ch)
        dark = i % 2 == 0
        img = 255 - g if dark else g
        name = f"{'paper' if dark else 'stone'}/{i}.png"
        _write(root / name, img)
        pol = "dark-on-light" if dark else ("" if i == 1 else "light-on-dark")
        alt = "們" if ch == "山" else ""
        lines.append(f"{name},{ch},{alt},{'paper' if dark else 'stone'},{pol},x")
    (root / "labels.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return root


# --------------------------------------------------------------------------- loading
def test_labels_csv_reads_columns_sets_and_polarity(labelled: Path) -> None:
    items = load_labelled(labelled)  # a folder holding labels.csv
    assert [it.char for it in items] == list(CHARS)
    assert [it.set for it in items] == ["paper", "stone", "paper", "stone"]
    assert [it.polarity for it in items] == [
        "dark-on-light",
        None,
        "dark-on-light",
        "light-on-dark",
    ]
    assert items[2].alt == "們" and items[0].alt == ""
    assert [it.index for it in items] == [0, 1, 2, 3]
    assert all(it.path.is_file() for it in items)
    assert "line 2" in items[0].where


def test_labels_csv_errors_name_columns_and_lines(tmp_path: Path) -> None:
    bad = tmp_path / "bad.csv"
    bad.write_text("file,label\na.png,永\n", encoding="utf-8")
    with pytest.raises(
        DataError, match=r"lacks column\(s\) path, char.*expected columns path,char"
    ):
        load_labels_csv(bad)
    _write(tmp_path / "a.png", _glyph("永"))
    missing = tmp_path / "missing.csv"
    missing.write_text("path,char\na.png,永\nb.png,和\n", encoding="utf-8")
    with pytest.raises(DataError, match=r"missing\.csv, line 3: image not found: .*b\.png"):
        load_labels_csv(missing)
    two = tmp_path / "two.csv"
    two.write_text("path,char\na.png,永和\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2: column 'char' must be one character"):
        load_labels_csv(two)
    pol = tmp_path / "pol.csv"
    pol.write_text("path,char,polarity\na.png,永,sideways\n", encoding="utf-8")
    with pytest.raises(DataError, match="line 2: polarity 'sideways'"):
        load_labels_csv(pol)
    with pytest.raises(DataError, match="no such labels CSV"):
        load_labels_csv(tmp_path / "nope.csv")
    with pytest.raises(DataError, match="not found"):
        load_labelled(tmp_path / "nowhere")


def test_seed_layout_folder(tmp_path: Path) -> None:
    root = tmp_path / "hands"
    _write(root / "永" / "w1.png", _glyph("永"))
    _write(root / "永" / "w2.jpg", 255 - _glyph("永"))
    _write(root / "和" / "w1.png", _glyph("和"))
    (root / "和" / "notes.txt").write_text("not an image", encoding="utf-8")
    items = scan_folder(root)
    assert [(it.char, it.path.name) for it in items] == [
        ("和", "w1.png"),
        ("永", "w1.png"),
        ("永", "w2.jpg"),
    ]
    assert {it.set for it in items} == {"hands"} and items[0].polarity is None
    assert [it.char for it in load_labelled(root)] == ["和", "永", "永"]
    (root / "two").mkdir()
    with pytest.raises(DataError, match="must be one character"):
        scan_folder(root)
    (tmp_path / "empty").mkdir()
    with pytest.raises(DataError, match="no images"):
        scan_folder(tmp_path / "empty")


def test_sample_items_per_set_is_deterministic(labelled: Path) -> None:
    items = load_labelled(labelled)
    a = sample_items(items, 1, seed=3)
    assert a == sample_items(items, 1, seed=3)
    assert sorted(it.set for it in a) == ["paper", "stone"]
    assert sample_items(items, None, 0) == [items[0], items[2], items[1], items[3]]  # by set
    with pytest.raises(DataError, match="--num"):
        sample_items(items, 0, 0)


# --------------------------------------------------------------------------- normalisation
def test_normalise_polarity_crop_and_size() -> None:
    ink = np.zeros((90, 120), np.uint8)
    ink[20:70, 30:100] = 200  # ink box 70 wide, 50 high, grey level 200
    ink[85:87, 2:4] = 200  # a speck: ignored by the crop
    paper = (255 - ink).astype(np.uint8)
    a = normalise(ink)  # detected light-on-dark
    b = normalise(paper)  # detected dark-on-light: inverted
    c = normalise(paper, "dark-on-light")
    assert a.dtype == np.uint8 and a.shape == (91, 91)  # round(70 * 1.3)
    np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(b, c)
    assert a.max() == 255 and a[0, 0] == 0  # stretched: ink 255 on black
    rows = np.flatnonzero((a > 127).any(axis=1))
    cols = np.flatnonzero((a > 127).any(axis=0))
    assert cols[-1] - cols[0] + 1 == 70 and abs(70 / 91 - 0.77) < 0.01
    assert abs((rows[0] + rows[-1]) / 2 - 45) <= 1  # centred
    # The wrong forced polarity turns the paper into ink: a different, full-frame result.
    assert not np.array_equal(normalise(paper, "light-on-dark"), a)
    small = normalise(cv2.resize(ink, (24, 18), interpolation=cv2.INTER_AREA))
    big = normalise(cv2.resize(ink, (960, 720), interpolation=cv2.INTER_NEAREST))
    assert small.shape == (MIN_SIDE, MIN_SIDE) and big.shape == (MAX_SIDE, MAX_SIDE)
    with pytest.raises(ValueError, match="polarity"):
        normalise(ink, "auto")


# --------------------------------------------------------------------------- damage, scoring
class IdentityRestorer:
    """Returns its inputs: the 'do no harm' ideal."""

    def restore_many(self, images, chars, batch_size=16):
        assert chars is None or len(chars) == len(images)
        return [np.array(im, copy=True) for im in images]


class FakeJudge:
    """Reads an image as the character it was made from (exact pixels), else X."""

    def __init__(self, table: dict[bytes, str]) -> None:
        self.table = table

    def read(self, images):
        return [self.table.get(np.asarray(im).tobytes(), "X") for im in images]


def _set() -> ImageSet:
    images = [_glyph(c, 64) for c in CHARS]
    return ImageSet(
        "toy", "test", images, list(CHARS), ["", "", "們", ""], [0, 1, 2, 3], list(CHARS)
    )


def test_damage_is_seeded_per_image_id() -> None:
    s = _set()
    (cfg,) = [c.config for c in make_conditions(["seed"], []) if c.name == "seed"]
    a, ops_a = damage_images(s.images, s.ids, cfg, 0, "seed")
    b, _ = damage_images(s.images, s.ids, cfg, 0, "seed")
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))
    assert all(len(o) == 3 for o in ops_a)
    assert all(not np.array_equal(x, y) for x, y in zip(a, s.images, strict=True))
    # An image's damage depends on its id, not on which other images are in the sample.
    c, _ = damage_images(s.images[2:], s.ids[2:], cfg, 0, "seed")
    assert np.array_equal(c[0], a[2])
    d, _ = damage_images(s.images, s.ids, cfg, 1, "seed")
    assert not np.array_equal(d[0], a[0])


def test_ocr_correct_accepts_alt() -> None:
    s = _set()
    table = {
        s.images[0].tobytes(): "永",
        s.images[1].tobytes(): "和。",
        s.images[2].tobytes(): "們",
    }
    ok, readings = ocr_correct(FakeJudge(table), s.images, s.chars, s.alts)
    assert ok.tolist() == [True, True, True, False]
    assert readings == ["永", "和", "們", "X"]


def test_identity_restorer_does_no_harm() -> None:
    s = _set()
    conds = make_conditions(["seed"], ["blur"])
    assert [c.name for c in conds] == ["none", "seed", "blur"]
    judge = FakeJudge({im.tobytes(): ch for im, ch in zip(s.images, s.chars, strict=True)})
    summary, rows = evaluate_sets([s], conds, IdentityRestorer(), judge=judge, progress=False)
    e = summary["toy"]
    assert e["n"] == 4 and e["ocr_clean"] == 1.0
    none = e["conditions"]["none"]["variants"]
    assert set(none) == {"restored_ref", "restored_noref"}
    for q in none.values():
        # Identical images: PSNR inf each, counted at the cap in the mean (not an inf mean).
        assert q["psnr"] == PSNR_MEAN_CAP_DB and q["ssim"] == pytest.approx(1.0)
        assert q["ocr"] == 1.0 and q["readability_recovered"] == 1.0
    seed = e["conditions"]["seed"]["variants"]
    assert set(seed) == {"input", "restored_ref", "restored_noref"}
    assert seed["input"]["psnr"] == seed["restored_ref"]["psnr"] < 40
    assert seed["input"]["ocr"] == 0.0  # the fake judge reads only undamaged images
    blur = e["conditions"]["blur"]
    assert blur["kind"] == "op" and blur["variants"]["input"]["ocr"] is None  # per-op: no OCR
    assert sum(e["conditions"]["seed"]["applied_counts"].values()) == 12
    # rows: 4 clean + 4 × (2 none + 3 seed + 3 blur)
    assert len(rows) == 4 + 4 * 8
    assert {r["variant"] for r in rows} == {"clean", "input", "restored_ref", "restored_noref"}


# --------------------------------------------------------------------------- command
def test_eval_real_command_end_to_end(labelled: Path, tmp_path: Path, capsys) -> None:
    from restoreae.cli import main
    from restoreae.models.weights import shipped_path

    if not shipped_path().is_file():
        pytest.skip("no shipped model in this checkout")
    out = tmp_path / "q"
    argv = ["eval", "--real", str(labelled / "labels.csv"), "--num", "1", "--no-ocr"]
    argv += ["--per-op-ops", "blur", "--device", "cpu", "--batch-size", "2", "--out", str(out)]
    assert main(argv) == 0
    stdout = capsys.readouterr().out
    md = (out / "quality.md").read_text(encoding="utf-8")
    assert md.strip() in stdout
    assert "| paper | seed | restored, with reference |" in md and "| stone | blur |" in md
    res = json.loads((out / "quality.json").read_text(encoding="utf-8"))
    assert list(res["sets"]) == ["paper", "stone"]
    assert res["settings"]["damage"] == ["seed"] and res["settings"]["num"] == 1
    paper = res["sets"]["paper"]["conditions"]
    assert paper["none"]["variants"]["restored_ref"]["psnr"] > 10
    csv_lines = (out / "quality-images.csv").read_text(encoding="utf-8").splitlines()
    assert csv_lines[0].startswith("set,id,path,char") and len(csv_lines) == 1 + 2 * (1 + 8)


def test_eval_suite_errors(tmp_path: Path, capsys) -> None:
    from restoreae.cli import main

    assert main(["eval", "--suite", "some.safetensors", "--no-ocr"]) == 2
    assert "--model" in capsys.readouterr().err
    assert main(["eval", "--real", str(tmp_path / "none.csv"), "--no-ocr"]) == 2
    assert "not found" in capsys.readouterr().err
    assert main(["eval", "--suite", "--data", "none", "--real-dev", "none", "--no-ocr"]) == 2
    assert "no evaluation set" in capsys.readouterr().err
    assert main(["eval", "--suite", "--real-dev", str(tmp_path / "x"), "--no-ocr"]) == 2
    assert "--real-dev" in capsys.readouterr().err
    assert main(["eval", "--no-ocr"]) == 2
    assert "--data" in capsys.readouterr().err


def test_a_registered_table_metric_reaches_the_quality_table(tmp_path: Path, monkeypatch) -> None:
    """A metric registered with a table format is scored per image and shown by the quality
    table (summary, Markdown, CSV column) without touching the quality code."""
    from restoreae.evaluate import quality_report as qrep
    from restoreae.evaluate.metrics import METRICS, Metric

    def max_error(a, b):
        return float(np.abs(a.astype(np.float64) - b.astype(np.float64)).max())

    monkeypatch.setitem(
        METRICS._entries, "max_err", Metric("max_err", max_error, "Max error", ".1f", ".0f", "")
    )
    s = _set()
    summary, rows = evaluate_sets(
        [s], make_conditions(["seed"], []), IdentityRestorer(), progress=False
    )
    seed = summary["toy"]["conditions"]["seed"]["variants"]
    assert (
        seed["restored_ref"]["max_err"] > 0
        and summary["toy"]["conditions"]["none"]["variants"]["restored_ref"]["max_err"] == 0
    )
    assert all("max_err" in r for r in rows)
    settings = {"model": "m", "backend": "torch", "device": "cpu", "num": 4, "seed": 0}
    settings |= {"damage": ["seed"], "ocr": False, "seconds": 1.0}
    results = {"format": 1, "settings": settings, "notes": [], "sets": summary}
    paths = qrep.write_quality(tmp_path, results, rows)
    md = paths["quality.md"].read_text(encoding="utf-8")
    assert "| Max error |" in md and "PSNR/SSIM/Max error: means over images" in md
    header = paths["quality-images.csv"].read_text(encoding="utf-8").splitlines()[0]
    assert header.split(",")[9:12] == ["psnr", "ssim", "max_err"]
