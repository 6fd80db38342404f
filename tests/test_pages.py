"""Pages: the layout finder on synthetic pages, the several-characters check, the text alignment,
and ``restoreae restore-page`` end to end with a tiny untrained model."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from restoreae.cli import main
from restoreae.errors import DataError

TEXT = "永和九年岁在癸丑暮春之初会于会稽山阴之兰亭修禊事也群贤毕至少长咸集此地有崇山峻岭茂林修竹"


@pytest.fixture(scope="module")
def source():
    from restoreae.evaluate.pages import GlyphSource

    try:
        return GlyphSource.from_fonts(TEXT, size=96)
    except DataError as exc:
        pytest.skip(f"no page font: {exc}")


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small untrained 2-channel model saved the way `restoreae train` saves one."""
    import torch

    from restoreae.models.io import save_model
    from restoreae.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("unet_mobilenetv3_small", in_chans=2, img_size=64)
    path = tmp_path_factory.mktemp("page-model") / "tiny.safetensors"
    save_model(model.eval(), path, metadata={"img_size": 64, "in_chans": 2})
    return path


def _pr(source, seed: int, n_pages: int = 3, **kw) -> tuple[float, float]:
    from restoreae.evaluate.pages import make_page, match_pairs
    from restoreae.restore.page import find_characters

    rng = np.random.default_rng(seed)
    matched = found = true = 0
    for _ in range(n_pages):
        page = make_page(source, rng, n_lines=3, per_line=5, char_size=44, **kw)
        boxes = find_characters(page.image, page.layout).as_array()
        matched += len(match_pairs(boxes, page.boxes))
        found += len(boxes)
        true += len(page.boxes)
    return matched / max(found, 1), matched / max(true, 1)


# --------------------------------------------------------------------------- layout
@pytest.mark.parametrize(
    "kw",
    [
        {},
        {"layout": "rows"},
        {"dark_on_light": False},
        {"layout": "rows", "dark_on_light": False, "grid": True},
        {"grid": True},
        {"seal": True, "colour": True},
        {"seal": True, "dark_on_light": False},
        {"grid": True, "seal": True, "colour": True},
    ],
    ids=["columns", "rows", "rubbing", "rows-rubbing-grid", "grid", "red-seal", "stamp", "all"],
)
def test_layout_finder_clean_pages(source, kw) -> None:
    p, r = _pr(source, seed=1, **kw)
    assert p >= 0.97 and r >= 0.97, (p, r)


def test_layout_finder_damaged_pages(source) -> None:
    from restoreae.evaluate.pages import PAGE_GLYPH_DAMAGE

    p, r = _pr(source, seed=2, damage=True, glyph_damage=PAGE_GLYPH_DAMAGE, grid=True, seal=True)
    assert p >= 0.85 and r >= 0.85, (p, r)


def test_reading_order_columns_right_to_left(source) -> None:
    from restoreae.evaluate.pages import make_page
    from restoreae.restore.page import find_characters

    page = make_page(source, np.random.default_rng(3), n_lines=3, per_line=4, char_size=48)
    layout = find_characters(page.image)
    boxes = layout.as_array()
    assert len(boxes) == len(page.boxes) == 12
    np.testing.assert_array_less(np.abs(boxes - page.boxes), 3)  # same order, tight boxes
    assert [b.line for b in layout.boxes] == [0] * 4 + [1] * 4 + [2] * 4
    assert layout.dark_on_light


def test_layout_errors() -> None:
    from restoreae.errors import RestoreAEError
    from restoreae.restore.page import find_characters

    with pytest.raises(RestoreAEError, match="layout"):
        find_characters(np.zeros((50, 50), np.uint8), layout="diagonal")
    with pytest.raises(RestoreAEError, match="too small"):
        find_characters(np.zeros((4, 50), np.uint8))
    assert find_characters(np.full((60, 60), 230, np.uint8)).boxes == []


# --------------------------------------------------------------------------- several characters
def test_count_characters(source) -> None:
    from restoreae.evaluate.pages import make_page
    from restoreae.restore.page import count_characters

    for k, glyph in enumerate(source.glyphs[:12]):
        assert count_characters(glyph) == 1, source.chars[k]
        assert count_characters(255 - glyph) == 1, source.chars[k]
    rng = np.random.default_rng(4)
    strip = make_page(source, rng, n_lines=1, per_line=3, char_size=60)
    assert count_characters(strip.image) == 3
    page = make_page(source, rng, n_lines=4, per_line=5, char_size=40, dark_on_light=False)
    assert count_characters(page.image) >= 10


# --------------------------------------------------------------------------- text alignment
def test_align_text() -> None:
    from restoreae.restore.page_restore import align_text, clean_text

    assert clean_text("永和，九年\n岁 在。") == "永和九年岁在"
    assign, rep = align_text("永和九", ["永", None, "丸"])
    assert assign == [0, 1, 2] and rep["matched_in_order"] and rep["agree"] == 1
    # A box too many (a speck found as a character): it stays unmatched.
    assign, rep = align_text("永和九年", ["永", "和", "口", "九", "年"])
    assert assign == [0, 1, None, 2, 3]
    assert rep["unmatched_boxes"] == [2] and rep["unmatched_text"] == []
    # A character the finder missed: the text skips it.
    assign, rep = align_text("永和九年", ["永", "九", "年"])
    assert assign == [0, 2, 3] and rep["unmatched_text"] == [1]


# --------------------------------------------------------------------------- restore-page
def _page_file(source, folder: Path, seed: int = 5, **kw) -> tuple[Path, object]:
    from restoreae.evaluate.pages import make_page

    page = make_page(source, np.random.default_rng(seed), n_lines=2, per_line=3, char_size=48, **kw)
    path = folder / f"page-{seed}.png"
    Image.fromarray(page.image).save(path)
    return path, page


def test_restore_page_cli_outputs(source, tiny_model: Path, tmp_path: Path, capsys) -> None:
    path, page = _page_file(source, tmp_path, colour=True, seal=True)
    bad = tmp_path / "broken.png"
    bad.write_bytes(b"not a picture")
    out = tmp_path / "out"
    rc = main(["restore-page", str(path), str(bad), "-o", str(out), "--model", str(tiny_model)])
    err = capsys.readouterr().err
    assert rc == 1 and "broken.png" in err  # the bad page is named, the good one still done
    restored = np.asarray(Image.open(out / f"{path.stem}.png"))
    assert restored.shape == page.image.shape and restored.ndim == 3  # RGB stays RGB
    compare = np.asarray(Image.open(out / f"{path.stem}.compare.png"))
    assert compare.shape[0] == page.image.shape[0] and compare.shape[1] > 2 * page.image.shape[1]
    data = json.loads((out / f"{path.stem}.json").read_text(encoding="utf-8"))
    assert data["image"] == path.name and data["layout"] == "columns"
    assert (data["width"], data["height"]) == (page.image.shape[1], page.image.shape[0])
    chars = data["characters"]
    assert [c["index"] for c in chars] == list(range(len(chars))) and len(chars) == 6
    for c in chars:
        assert set(c) == {"index", "box", "column", "char", "confidence", "source"}
        assert c["source"] in ("ocr", "none") and len(c["box"]) == 4
        x0, y0, x1, y1 = c["box"]
        assert 0 <= x0 < x1 <= data["width"] and 0 <= y0 < y1 <= data["height"]
    assert [c["column"] for c in chars] == [0, 0, 0, 1, 1, 1]
    crops = sorted(p.name for p in (out / path.stem).iterdir())
    assert crops[:2] == ["0000.orig.png", "0000.png"] and len(crops) == 12
    assert not list(out.glob("*.tmp")) and not list(out.glob(".*"))
    # Pixels away from every character keep the page's own texture: nothing is pasted there.
    mask = np.ones(page.image.shape[:2], bool)
    for c in chars:
        x0, y0, x1, y1 = c["box"]
        m = max(x1 - x0, y1 - y0) // 3
        mask[max(0, y0 - m) : y1 + m, max(0, x0 - m) : x1 + m] = False
    np.testing.assert_array_equal(restored[mask], page.image[mask])


def test_restore_page_text_alignment(source, tiny_model: Path, tmp_path: Path, capsys) -> None:
    path, page = _page_file(source, tmp_path, seed=6)
    out = tmp_path / "out"
    rc = main(
        [
            "restore-page",
            str(path),
            "-o",
            str(out),
            "--model",
            str(tiny_model),
            "--text",
            page.chars,
        ]
    )
    assert rc == 0, capsys.readouterr().err
    data = json.loads((out / f"{path.stem}.json").read_text(encoding="utf-8"))
    assert "".join(c["char"] for c in data["characters"]) == page.chars
    assert all(c["source"] == "text" for c in data["characters"])
    # One character more in the text than on the page: aligned, and the mismatch reported.
    text_file = tmp_path / "text.txt"
    text_file.write_text(page.chars[:3] + "龙" + page.chars[3:], encoding="utf-8")
    rc = main(
        [
            "restore-page",
            str(path),
            "-o",
            str(out),
            "--model",
            str(tiny_model),
            "--text-file",
            str(text_file),
        ]
    )
    assert rc == 0
    assert "7 characters but 6 were found" in capsys.readouterr().err
    data = json.loads((out / f"{path.stem}.json").read_text(encoding="utf-8"))
    assert data["alignment"]["text_chars"] == 7 and data["alignment"]["found"] == 6
    assert len(data["alignment"]["unmatched_text"]) == 1
    # Two pages with one transcription: refused.
    assert main(["restore-page", str(path), str(path), "-o", str(out), "--text", "永"]) == 2


def test_restore_refuses_several_characters(
    source, tiny_model: Path, tmp_path: Path, capsys
) -> None:
    from restoreae.evaluate.pages import make_page

    strip = make_page(source, np.random.default_rng(7), n_lines=1, per_line=4, char_size=48)
    path = tmp_path / "strip.png"
    Image.fromarray(strip.image).save(path)
    single = tmp_path / "one.png"
    Image.fromarray(255 - source.glyphs[0]).save(single)
    out = tmp_path / "out"
    rc = main(["restore", str(path), str(single), "-o", str(out), "--model", str(tiny_model)])
    err = capsys.readouterr().err
    assert rc == 1
    assert "strip.png: the image holds 4 characters" in err and "restore-page" in err
    assert (out / "one.png").is_file() and not (out / "strip.png").exists()
    rc = main(["restore", str(path), "-o", str(out), "--model", str(tiny_model), "--single"])
    assert rc == 0 and (out / "strip.png").is_file()
