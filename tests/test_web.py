"""The web page: API tests in-process (FastAPI TestClient) and end-to-end tests in a real browser
(``restoreae serve`` as a uvicorn subprocess on a free loopback port, driven by Debian's headless
Chromium through Playwright)."""

from __future__ import annotations

import base64
import io
import json
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageDraw, ImageFont

sys.path.insert(0, str(Path(__file__).resolve().parent))

import browser_setup  # noqa: E402
from restoreae.cli import build_parser  # noqa: E402

FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/arphic/ukai.ttc",
    "/usr/share/fonts/truetype/arphic-gkai00mp/gkai00mp.ttf",
    "/usr/share/fonts/truetype/wqy/wqy-zenhei.ttc",
    "/usr/share/fonts/opentype/noto/NotoSansCJK-Regular.ttc",
)
CHAR = "永"
SIZE = 64


# --------------------------------------------------------------------------- fixtures
def damaged_glyph_png(char: str = CHAR, size: int = SIZE, seed: int = 0) -> bytes:
    """A damaged glyph as a scan would show it: dark ink on light paper, a chunk lost and specks.

    PNG bytes of a uint8 (size, size) grey image.
    """
    font_path = next((p for p in FONT_CANDIDATES if Path(p).is_file()), None)
    if font_path is None:
        pytest.skip("no CJK font installed to draw a test glyph")
    img = Image.new("L", (size, size), 235)
    draw = ImageDraw.Draw(img)
    font = ImageFont.truetype(font_path, int(size * 0.8))
    draw.text((size / 2, size / 2), char, fill=25, font=font, anchor="mm")
    arr = np.asarray(img).copy()
    rng = np.random.default_rng(seed)
    arr[size // 3 : size // 2, size // 4 : size // 2] = 235  # a lost chunk of the strokes
    specks = rng.random(arr.shape) < 0.03
    arr[specks] = 40
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="PNG")
    return buf.getvalue()


def decode_png(data: bytes | str) -> np.ndarray:
    """PNG bytes or a ``data:image/png;base64,`` URL → uint8 (H, W) grey."""
    if isinstance(data, str):
        assert data.startswith("data:image/png;base64,")
        data = base64.b64decode(data.split(",", 1)[1])
    with Image.open(io.BytesIO(data)) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("L"))


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A small untrained 2-channel model saved the way `restoreae train` saves one."""
    import torch

    from restoreae.models.io import save_model
    from restoreae.models.registry import create_model

    torch.manual_seed(0)
    model = create_model("unet_mobilenetv3_small", in_chans=2, img_size=SIZE)
    path = tmp_path_factory.mktemp("web-model") / "tiny-unet.safetensors"
    save_model(model.eval(), path, metadata={"img_size": SIZE, "in_chans": 2})
    return path


@pytest.fixture(scope="module")
def client(tiny_model: Path):
    from fastapi.testclient import TestClient

    from restoreae.web.app import create_app

    app = create_app({"tiny": tiny_model}, max_upload_bytes=200_000, max_files=3)
    with TestClient(app, base_url="http://127.0.0.1:8765") as c:
        yield c


def fetch_png(client, url: str) -> np.ndarray:
    """GET a result image URL → uint8 (H, W) grey."""
    r = client.get(url)
    assert r.status_code == 200 and r.headers["content-type"] == "image/png", r.text
    return decode_png(r.content)


def post(client, files: list[tuple[str, bytes]], **fields: str):
    return client.post(
        "/api/restore",
        files=[("files", (name, data, "application/octet-stream")) for name, data in files],
        data=fields,
    )


# --------------------------------------------------------------------------- API
def test_models_and_page(client) -> None:
    info = client.get("/api/models").json()
    assert [m["name"] for m in info["models"]] == ["tiny"]
    assert info["default"] == "tiny"
    assert info["max_upload_bytes"] == 200_000 and info["max_files"] == 3
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert 'id="restore-form"' in page.text and 'type="file"' in page.text
    assert client.get("/static/app.js").status_code == 200
    assert client.get("/static/style.css").status_code == 200


def test_restore_good_file(client) -> None:
    data = damaged_glyph_png()
    r = post(client, [("永-rubbing.png", data)], char=CHAR, model="tiny", wait="1")
    assert r.status_code == 200, r.text
    job = r.json()
    assert job["status"] == "done" and job["done"] == job["total"] == 1
    (res,) = job["results"]
    assert res["ok"] and res["error"] is None and res["name"] == "永-rubbing.png"
    assert res["char"] == CHAR and (res["width"], res["height"]) == (SIZE, SIZE)
    given = decode_png(data)
    shown = fetch_png(client, res["images"]["input"])
    restored = fetch_png(client, res["images"]["restored"])
    reference = fetch_png(client, res["images"]["reference"])
    np.testing.assert_array_equal(shown, given)
    assert restored.shape == given.shape == reference.shape
    # the model ran: the (untrained) model's changes show, composited into the input
    assert not np.array_equal(restored, given)
    # The reference is drawn in the input's polarity: dark ink on the light paper.
    assert np.median(reference) > 128 and reference.min() < 100
    dl = client.get(res["download"])
    assert dl.status_code == 200 and dl.headers["content-type"] == "image/png"
    assert "attachment" in dl.headers["content-disposition"]
    assert "restored.png" in dl.headers["content-disposition"]
    np.testing.assert_array_equal(decode_png(dl.content), restored)


def colour_glyph_png(size: int = SIZE) -> tuple[bytes, np.ndarray]:
    """A damaged glyph as a colour photo would show it: brown ink on yellowish paper lit from one
    side, a chunk of the strokes lost. Returns (PNG bytes, uint8 (size, size, 3) RGB pixels)."""
    font_path = next((p for p in FONT_CANDIDATES if Path(p).is_file()), None)
    if font_path is None:
        pytest.skip("no CJK font installed to draw a test glyph")
    img = Image.new("L", (size, size), 255)
    font = ImageFont.truetype(font_path, int(size * 0.7))
    ImageDraw.Draw(img).text((size / 2, size / 2), CHAR, fill=0, font=font, anchor="mm")
    grey = np.asarray(img).astype(np.float32) / 255.0  # 1 = paper
    grey[size // 3 : size // 2, size // 4 : size // 2] = 1.0  # a lost chunk of the strokes
    paper = np.array([236, 214, 160], np.float32)
    ink = np.array([70, 35, 20], np.float32)
    light = np.linspace(0.85, 1.0, size, dtype=np.float32)[None, :, None]
    rgb = (ink + (paper - ink) * grey[..., None]) * light
    rgb = np.clip(np.rint(rgb), 0, 255).astype(np.uint8)
    buf = io.BytesIO()
    Image.fromarray(rgb, mode="RGB").save(buf, format="PNG")
    return buf.getvalue(), rgb


def test_colour_in_colour_out(client) -> None:
    """A colour photo comes back in colour (RGB in → RGB out, as the CLI and the API), with the
    paper's own colours and lighting kept away from the strokes."""
    data, rgb = colour_glyph_png()
    r = post(client, [("photo.png", data)], char=CHAR, model="tiny", wait="1")
    assert r.status_code == 200, r.text
    (res,) = r.json()["results"]
    assert res["ok"], res
    images = {}
    for kind in ("input", "restored"):
        got = client.get(res["images"][kind])
        assert got.status_code == 200
        with Image.open(io.BytesIO(got.content)) as im:
            assert im.mode == "RGB", (kind, im.mode)
            images[kind] = np.asarray(im)
    np.testing.assert_array_equal(images["input"], rgb)
    restored = images["restored"].astype(np.int16)
    assert restored.shape == rgb.shape
    # The paper away from the strokes keeps its colour and lighting.
    import cv2

    ink = (rgb.astype(np.float32).mean(axis=2) < 160).astype(np.uint8)
    far = cv2.dilate(ink, np.ones((9, 9), np.uint8)) == 0
    assert far.sum() > 200
    diff = np.abs(restored - rgb.astype(np.int16))[far]
    assert np.median(diff) <= 2, np.median(diff, axis=0)
    # Not grey: the paper stays yellowish (red above blue).
    assert np.median(restored[far][:, 0] - restored[far][:, 2]) > 40
    with Image.open(io.BytesIO(client.get(res["download"]).content)) as im:
        assert im.mode == "RGB"
    # A grey picture stays grey.
    r = post(client, [("grey.png", damaged_glyph_png())], char=CHAR, model="tiny", wait="1")
    (res,) = r.json()["results"]
    with Image.open(io.BytesIO(client.get(res["images"]["restored"]).content)) as im:
        assert im.mode == "L"


def test_job_progress_several_files(client) -> None:
    files = [(f"g{i}.png", damaged_glyph_png(seed=i)) for i in range(2)]
    r = post(client, files)  # no char, no model: the default model, no reference shown
    assert r.status_code == 202
    job = r.json()
    assert job["total"] == 2 and job["status"] in ("queued", "running", "done")
    deadline = time.monotonic() + 30
    while job["status"] != "done":
        assert time.monotonic() < deadline, "job did not finish"
        time.sleep(0.05)
        job = client.get(f"/api/jobs/{job['id']}").json()
        assert 0 <= job["done"] <= job["total"] == 2
    assert job["done"] == 2 and [x["name"] for x in job["results"]] == ["g0.png", "g1.png"]
    assert all(x["ok"] and x["images"]["reference"] is None for x in job["results"])
    assert "reference" in job["results"][0]["note"]
    polled = client.get(f"/api/jobs/{job['id']}?skip=1").json()["results"]
    assert polled[0] == {"index": 0, "omitted": True} and polled[1] == job["results"][1]
    assert client.get("/api/jobs/nope").status_code == 404


def test_non_image_names_the_file(client) -> None:
    r = post(
        client,
        [("notes.png", b"these are my notes, not a picture"), ("ok.png", damaged_glyph_png())],
        wait="1",
    )
    assert r.status_code == 200
    bad, good = r.json()["results"]
    assert not bad["ok"] and "notes.png" in bad["error"] and "not an image" in bad["error"]
    assert "images" not in bad and good["ok"]  # one bad file does not sink the others
    assert client.get(f"/download/{r.json()['id']}/0").status_code == 404


def test_truncated_image_is_a_clear_error(client) -> None:
    data = damaged_glyph_png()
    r = post(client, [("cut.png", data[: len(data) // 2])], wait="1")
    (res,) = r.json()["results"]
    assert not res["ok"] and res["error"].startswith("cut.png: ")


def test_upload_limits(client) -> None:
    big = np.random.default_rng(0).integers(0, 256, (400, 600), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(big).save(buf, format="PNG")
    assert len(buf.getvalue()) > 200_000
    r = post(client, [("huge.png", buf.getvalue())], wait="1")
    (res,) = r.json()["results"]
    assert not res["ok"] and "huge.png" in res["error"] and "limit" in res["error"]
    # More than max_files (3) in one request.
    r = post(client, [(f"{i}.png", b"x") for i in range(4)])
    assert r.status_code == 413 and "at most 3" in r.json()["detail"]
    # A body larger than all the files allowed together is refused before it is parsed.
    r = post(client, [(f"{i}.png", bytes(300_000)) for i in range(3)])
    assert r.status_code == 413 and "larger than" in r.json()["detail"]


def test_bad_fields(client) -> None:
    data = damaged_glyph_png()
    r = post(client, [("a.png", data)], model="nope")
    assert r.status_code == 400 and "unknown model 'nope'" in r.json()["detail"]
    r = post(client, [("a.png", data), ("b.png", data)], char="永和九")
    assert r.status_code == 400 and "one per file" in r.json()["detail"]
    r = post(client, [("a.png", data)], char="A")
    assert r.status_code == 400 and "CJK" in r.json()["detail"]
    r = client.post("/api/restore", data={"char": CHAR})
    assert r.status_code == 400 and "no file" in r.json()["detail"]


def test_chars_one_per_file(client) -> None:
    files = [("a.png", damaged_glyph_png("永")), ("b.png", damaged_glyph_png("和"))]
    job = post(client, files, char="永 和", wait="1").json()
    assert [x["char"] for x in job["results"]] == ["永", "和"]
    refs = [fetch_png(client, x["images"]["reference"]) for x in job["results"]]
    assert not np.array_equal(refs[0], refs[1])


def test_serve_binds_loopback_by_default() -> None:
    args = build_parser().parse_args(["serve"])
    assert args.host == "127.0.0.1"
    assert args.model == [] and args.max_upload_mb == 10.0
    args = build_parser().parse_args(["serve", "--model", "a.safetensors", "--model", "b=x/b.st"])
    assert args.model == ["a.safetensors", "b=x/b.st"]


def test_parse_model_args(tiny_model: Path, tmp_path: Path) -> None:
    import shutil

    from restoreae.errors import RestoreAEError
    from restoreae.web.app import parse_model_args, shipped_models

    shipped = list(shipped_models())
    run = tmp_path / "run-a"
    (run / "weights").mkdir(parents=True)
    shutil.copy(tiny_model, run / "weights" / "best.safetensors")
    models = parse_model_args(
        [str(run / "weights" / "best.safetensors"), f"mine={tiny_model}", f"folder={run}", str(run)]
    )
    assert list(models) == [*shipped, "run-a-best", "mine", "folder", "run-a"]
    assert models["mine"] == str(tiny_model) and models["folder"] == str(run)
    with pytest.raises(RestoreAEError, match="nope.safetensors: no such file"):
        parse_model_args([f"x={tmp_path / 'nope.safetensors'}"])
    with pytest.raises(RestoreAEError, match="expected MODEL or NAME=MODEL"):
        parse_model_args(["=x"])


# --------------------------------------------------------------------------- browser
@pytest.fixture(scope="module")
def chromium() -> str:
    path, reason = browser_setup.ensure_chromium()
    if path is None:
        pytest.skip(f"no headless Chromium: {reason}")
    return path


@pytest.fixture(scope="module")
def server(tiny_model: Path, chromium: str):
    with browser_setup.serve([f"tiny={tiny_model}"]) as url:
        yield url


@pytest.fixture(scope="module")
def page(chromium: str, server: str):
    with browser_setup.chromium_page(chromium) as p:
        yield p


def test_browser_restores_a_glyph(page, server: str, tmp_path: Path) -> None:
    src = tmp_path / "damaged-永.png"
    src.write_bytes(damaged_glyph_png())
    page.goto(server + "/")
    page.wait_for_selector("#model option[value=tiny]", state="attached")
    page.set_input_files("#files", str(src))
    page.fill("#char", CHAR)
    page.click("#restore-button")
    page.wait_for_selector(".result.ok img.restored", timeout=30_000)
    assert page.is_hidden("#error-box")
    assert "1 / 1" in page.inner_text("#progress-text")
    restored_url = page.get_attribute(".result.ok img.restored", "src")
    restored = decode_png(page.request.get(server + restored_url).body())
    given = decode_png(src.read_bytes())
    assert restored.shape == given.shape
    # the model ran: the (untrained) model's changes show, composited into the input
    assert not np.array_equal(restored, given)
    assert page.locator(".result.ok figure img").count() == 3  # damaged | reference | restored
    with page.expect_download() as info:
        page.click(".result.ok a.download")
    download = info.value
    assert download.suggested_filename == "damaged-永-restored.png"
    np.testing.assert_array_equal(decode_png(Path(download.path()).read_bytes()), restored)


def test_browser_shows_error_for_non_image(page, server: str, tmp_path: Path) -> None:
    bad = tmp_path / "letter.png"
    bad.write_text("Dear colleague, this is not an image.")
    page.goto(server + "/")
    page.wait_for_selector("#model option[value=tiny]", state="attached")
    page.set_input_files("#files", str(bad))
    page.click("#restore-button")
    # A file's error is shown once, in its own result card (the page-wide box is for the page).
    page.wait_for_selector(".result.failed .file-error", timeout=30_000)
    card = page.inner_text(".result.failed")
    assert "letter.png" in card and "not an image" in page.inner_text(".result.failed .file-error")
    assert page.is_hidden("#error-box")
    assert page.locator(".result.failed").count() == 1
    assert page.locator(".result.ok").count() == 0
    color = page.eval_on_selector(
        ".result.failed .file-error", "e => getComputedStyle(e).borderColor"
    )
    assert color == "rgb(198, 40, 40)"  # the red box


# --------------------------------------------------------------------------- page mode
def page_png(seed: int = 0) -> tuple[bytes, object]:
    """A small generated page (2 columns × 3 characters, dark ink on paper, a red seal): PNG
    bytes and the :class:`~restoreae.evaluate.pages.SyntheticPage` with its truth."""
    from restoreae.errors import DataError
    from restoreae.evaluate.pages import GlyphSource, make_page

    try:
        source = GlyphSource.from_fonts("永和九年岁在癸丑暮春之初", size=96)
    except DataError as exc:
        pytest.skip(f"no page font: {exc}")
    page = make_page(
        source,
        np.random.default_rng(seed),
        n_lines=2,
        per_line=3,
        char_size=48,
        colour=True,
        seal=True,
    )
    buf = io.BytesIO()
    Image.fromarray(page.image).save(buf, format="PNG")
    return buf.getvalue(), page


def test_page_mode_api(client) -> None:
    data, page = page_png()
    r = client.post(
        "/api/page",
        files={"file": ("stele.png", data, "image/png")},
        data={"layout": "columns", "text": page.chars},
    )
    assert r.status_code == 200, r.text
    res = r.json()
    assert res["name"] == "stele.png" and (res["width"], res["height"]) == page.image.shape[1::-1]
    chars = res["characters"]
    assert "".join(c["char"] for c in chars) == page.chars and len(chars) == 6
    assert all(c["source"] == "text" for c in chars)
    restored = Image.open(io.BytesIO(base64.b64decode(res["images"]["restored"].split(",")[1])))
    assert restored.mode == "RGB" and restored.size == (res["width"], res["height"])
    # Correct one character, delete one box: restored again from the original page.
    edited = [dict(c) for c in chars[1:]]
    edited[0]["char"] = "龙"
    r = client.post(f"/api/page/{res['id']}", json={"characters": edited})
    assert r.status_code == 200, r.text
    again = r.json()
    assert [c["char"] for c in again["characters"]][:1] == ["龙"]
    assert len(again["characters"]) == 5
    dl = client.get(again["download"]["json"])
    assert dl.status_code == 200 and "attachment" in dl.headers["content-disposition"]
    assert json.loads(dl.content)["characters"][0]["char"] == "龙"
    png = client.get(again["download"]["image"])
    assert png.status_code == 200 and png.headers["content-type"] == "image/png"
    # Errors name what is wrong.
    r = client.post(f"/api/page/{res['id']}", json={"characters": [{"box": [1, 2], "char": "永"}]})
    assert r.status_code == 400 and "characters[0].box" in r.json()["detail"]
    r = client.post(
        f"/api/page/{res['id']}", json={"characters": [{"box": [0, 0, 9, 9], "char": "A"}]}
    )
    assert r.status_code == 400 and "characters[0].char" in r.json()["detail"]
    assert client.post("/api/page/nope", json={"characters": []}).status_code == 404
    r = client.post("/api/page", files={"file": ("notes.png", b"not an image", "image/png")})
    assert r.status_code == 400 and "notes.png" in r.json()["detail"]
    r = client.post("/api/page", files={"file": ("a.png", data, "image/png")}, data={"layout": "x"})
    assert r.status_code == 400 and "layout" in r.json()["detail"]


def test_browser_page_mode(page, server: str, tmp_path: Path) -> None:
    data, truth = page_png(seed=1)
    src = tmp_path / "stele.png"
    src.write_bytes(data)
    page.goto(server + "/")
    page.wait_for_selector("#model option[value=tiny]", state="attached")
    assert page.text_content("#limits").startswith("One character per picture")
    page.check("#mode-page")
    assert page.is_visible("#layout") and page.is_hidden("#char")
    assert page.text_content("#limits").startswith("One page")
    page.set_input_files("#files", str(src))
    page.click("#restore-button")
    page.wait_for_selector("#page-view:not([hidden]) .page-box", timeout=60_000)
    assert page.is_hidden("#error-box")
    assert page.locator(".page-box").count() == len(truth.boxes) == 6
    # Correct the first character (click its box, type), restore again.
    page.click('.page-box[data-index="0"]')
    page.fill('.page-chars li[data-index="0"] input', "龙")
    assert page.inner_text('.page-box[data-index="0"] .label') == "龙"
    page.click("#page-again")
    # (no wait_for_function: the page's Content-Security-Policy forbids evaluated strings)
    page.wait_for_selector('.page-chars li[data-index="0"] small:text-is("text")', timeout=60_000)
    assert page.input_value('.page-chars li[data-index="0"] input') == "龙"
    with page.expect_download() as info:
        page.click("#page-download-json")
    record = json.loads(Path(info.value.path()).read_text(encoding="utf-8"))
    assert info.value.suggested_filename == "stele.json"
    assert record["characters"][0]["char"] == "龙" and record["characters"][0]["source"] == "text"
    assert len(record["characters"]) == 6
    with page.expect_download() as info:
        page.click("#page-download-png")
    assert info.value.suggested_filename == "stele-restored.png"
    with Image.open(info.value.path()) as im:
        assert im.size == (truth.image.shape[1], truth.image.shape[0])
