"""Hostile and careless input (issue 15, issue 13 items 2 and 5–8): one test or more per item.

Models are test doubles (an identity backend behind the real ``Restorer``) so that nothing here
loads PyTorch; the web tests drive the real app in-process with FastAPI's TestClient.
"""

from __future__ import annotations

import errno
import io
import json
import os
import struct
import threading
import time
import tracemalloc
import zipfile
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from restoreae.cli import build_parser, main
from restoreae.errors import DataError, RestoreAEError

FRAME = (120, 130)


# --------------------------------------------------------------------------- helpers
class IdentityBackend:
    """Test double of a model: returns its damaged-glyph channel unchanged."""

    def __init__(self, size: int = 32, in_chans: int = 2) -> None:
        self.metadata = {"img_size": size, "in_chans": in_chans}
        self.img_size, self.in_chans = size, in_chans

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        return batch[:, :1].copy()


def identity_restorer(in_chans: int = 2):
    from restoreae.restore.api import Restorer

    return Restorer(backend=IdentityBackend(in_chans=in_chans))


@pytest.fixture
def fake_model(monkeypatch):
    """``restoreae restore`` builds an identity-backed Restorer whatever ``--model`` says."""
    import restoreae.restore.api as api

    real = api.Restorer

    def factory(*args, **kwargs):
        return real(backend=IdentityBackend())

    monkeypatch.setattr(api, "Restorer", factory)
    return factory


@pytest.fixture(scope="module")
def glyph_image() -> np.ndarray:
    """Dark 永 on light paper: uint8 FRAME."""
    from restoreae.data.reference import ReferenceRenderer

    g = ReferenceRenderer(size=90).render("永")
    img = np.full(FRAME, 225, np.uint8)
    img[15:105, 20:110] = np.rint(225 - (225 - 30) * (g / 255.0)).astype(np.uint8)
    return img


def save(img: np.ndarray, path: Path, **kw) -> Path:
    Image.fromarray(img).save(path, **kw)
    return path


def run(argv: list[str], capsys) -> tuple[int, str, str]:
    rc = main([str(a) for a in argv])
    cap = capsys.readouterr()
    return rc, cap.out, cap.err


# --------------------------------------------------------------------------- 15.1 memory
def test_long_thin_images_stay_small_in_memory() -> None:
    from restoreae.restore.preprocess import finish, prepare

    for shape in [(1, 1_000_000), (1, 20_000), (20_000, 3), (40, 50_000)]:
        grey = np.full(shape, 255, np.uint8)
        grey[:, shape[1] // 3 : shape[1] // 3 + 2] = 0
        tracemalloc.start()
        prep = prepare(grey, 64)
        out = finish(prep, prep.glyph)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        assert out.shape == grey.shape and prep.glyph.shape == (64, 64)
        # The old square crop needed side² bytes (10¹² for the first); now a few input copies.
        assert peak < 40 * grey.size + 4_000_000, (shape, peak)


def test_long_thin_image_and_a_good_one_both_restored(
    fake_model, glyph_image, tmp_path, capsys
) -> None:
    thin = np.full((1, 200_000), 255, np.uint8)
    thin[0, 1000:1100] = 0
    save(thin, tmp_path / "s.png")
    save(glyph_image, tmp_path / "good.png")
    rc, out, err = run(
        ["restore", tmp_path / "s.png", tmp_path / "good.png", "-o", tmp_path / "out"], capsys
    )
    assert rc == 0, err
    assert "restored 2 of 2" in out and "Traceback" not in err
    assert Image.open(tmp_path / "out" / "s.png").size == (200_000, 1)


def test_any_failure_of_one_file_is_reported_and_the_rest_restored(
    fake_model, glyph_image, tmp_path, capsys, monkeypatch
) -> None:
    import restoreae.restore.command as command

    real_prepare = command.prepare

    def prepare(grey, size, polarity="auto", colour=None):
        if grey.shape == (77, 77):
            raise MemoryError
        if grey.shape == (78, 78):
            raise ValueError("something unexpected")
        return real_prepare(grey, size, polarity, colour)

    monkeypatch.setattr(command, "prepare", prepare)
    save(glyph_image, tmp_path / "good.png")
    for side in (77, 78):
        save(
            np.asarray(Image.fromarray(glyph_image).resize((side, side))), tmp_path / f"{side}.png"
        )
    rc, out, err = run(["restore", tmp_path, "-o", tmp_path / "out"], capsys)
    assert rc == 1 and "restored 1 of 3" in out and "2 failed" in out
    assert "77.png: not enough memory" in err and "78.png: cannot restore (ValueError" in err
    assert "Traceback" not in err and (tmp_path / "out" / "good.png").is_file()


# --------------------------------------------------------------------------- 15.2 metadata
def _fake_header_file(path: Path, config: dict, metadata: dict) -> Path:
    """A safetensors file with one tiny tensor and the given restoreae header."""
    header = {
        "__metadata__": {
            "format": "restoreae-model-1",
            "config": json.dumps(config),
            "metadata": json.dumps(metadata),
        },
        "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
    }
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"\0\0\0\0")
    return path


GOOD_CONFIG = {"name": "unet_mobilenetv3_small", "in_chans": 2, "img_size": 32, "latent_dim": 64}


@pytest.mark.parametrize(
    ("where", "key", "value"),
    [
        ("config", "img_size", 65536),
        ("config", "img_size", -32),
        ("config", "img_size", 48),
        ("config", "latent_dim", 2**31),
        ("config", "in_chans", "2"),
        ("config", "residual", "yes"),
        ("config", "depth", 10**6),
        ("config", "drop_path_rate", float("nan")),
        ("config", "pad_mode", "mirror"),
        ("config", "output", "both"),
        ("config", "patch_size", 0),
        ("config", "future_width", 10**12),
        ("config", "future_list", [1, 2]),
        ("config", "name", 7),
        ("metadata", "img_size", 65536),
        ("metadata", "img_size", -32),
        ("metadata", "in_chans", 3),
        ("metadata", "reference_face_index", -1),
        ("metadata", "traditional", "no"),
        ("metadata", "reference_font", ["a"]),
        ("metadata", "val_psnr", "high"),
    ],
)
def test_weights_header_fields_are_checked_before_building(tmp_path, where, key, value) -> None:
    from restoreae.models.io import read_header

    config, meta = dict(GOOD_CONFIG), {"img_size": 32, "in_chans": 2}
    (config if where == "config" else meta)[key] = value
    path = _fake_header_file(tmp_path / "bad.safetensors", config, meta)
    with pytest.raises(DataError) as info:
        read_header(path)
    msg = str(info.value)
    assert str(path) in msg and f"{where} field '{key}'" in msg


def test_good_header_passes_and_pad_modes_agree(tmp_path) -> None:
    from restoreae.models.checks import OUTPUTS, PAD_MODES
    from restoreae.models.io import read_header

    path = _fake_header_file(tmp_path / "ok.safetensors", GOOD_CONFIG, {"img_size": 32})
    assert read_header(path)[0] == GOOD_CONFIG
    from restoreae.models import blocks

    assert tuple(blocks.PAD_MODES) == PAD_MODES and tuple(blocks.OUTPUTS) == OUTPUTS


def test_backend_metadata_is_checked_too() -> None:
    from restoreae.restore.backends import _complete_metadata

    with pytest.raises(RestoreAEError, match="img_size"):
        _complete_metadata({"img_size": 2**20, "in_chans": 1}, None, "x.onnx")


# --------------------------------------------------------------------------- 15.3 one-line errors
def test_device_errors_are_one_line(fake_model, glyph_image, tmp_path, capsys) -> None:
    from restoreae.devices import check_device

    assert check_device("cpu") == "cpu" and check_device(" CPU ") == "cpu"
    with pytest.raises(RestoreAEError, match="unknown device"):
        check_device("cpu:1")
    src = save(glyph_image, tmp_path / "a.png")
    rc, _, err = run(["restore", src, "-o", tmp_path / "o", "--device", "bogus"], capsys)
    assert rc == 2 and err.strip().count("\n") == 0 and "unknown device" in err
    import torch

    if not torch.cuda.is_available():
        rc, _, err = run(["restore", src, "-o", tmp_path / "o", "--device", "cuda"], capsys)
        assert rc == 2 and err.strip().count("\n") == 0 and "no CUDA GPU" in err


def test_serve_port_out_of_range_is_a_usage_error(capsys) -> None:
    with pytest.raises(SystemExit) as info:
        build_parser().parse_args(["serve", "--port", "99999"])
    assert info.value.code == 2
    assert "between 1 and 65535" in capsys.readouterr().err


def test_disk_full_names_the_file_and_keeps_the_old_one(tmp_path, monkeypatch) -> None:
    from restoreae import utils
    from restoreae.utils import DiskFullError, atomic_write

    target = tmp_path / "state.pt"
    target.write_bytes(b"old")

    def enospc(tmp: Path) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    with pytest.raises(DiskFullError, match="state.pt: no space left on device"):
        atomic_write(target, enospc)
    # torch.save reports a full disk as a C++ stream error: the free space decides.
    monkeypatch.setattr(
        utils.shutil, "disk_usage", lambda p: type("U", (), {"free": 0, "total": 1, "used": 1})
    )

    def torch_like(tmp: Path) -> None:
        tmp.write_bytes(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc:626] . basic_ios::clear")

    with pytest.raises(DiskFullError, match="no space left on device"):
        atomic_write(target, torch_like)
    assert target.read_bytes() == b"old" and [p.name for p in tmp_path.iterdir()] == ["state.pt"]


def test_disk_full_from_a_command_is_one_line(monkeypatch, capsys) -> None:
    import restoreae.restore.demo as demo

    def boom(args):
        raise OSError(errno.ENOSPC, "No space left on device", "runs/x/state/last.pt")

    monkeypatch.setattr(demo, "demo_command", boom)
    assert main(["demo"]) == 1
    assert capsys.readouterr().err == "error: runs/x/state/last.pt: no space left on device\n"


# --------------------------------------------------------------------------- 15.4–5 web server
def _web_app(**kw):
    from fastapi.testclient import TestClient

    from restoreae.web.app import create_app

    app = create_app({"id": "identity"}, max_upload_bytes=300_000, max_files=4, **kw)
    service = app.state.service
    service._restorers["id"] = identity_restorer()
    service._infer_locks["id"] = threading.Lock()
    return app, TestClient(app, base_url="http://127.0.0.1:8765")


def _png(img: np.ndarray) -> bytes:
    buf = io.BytesIO()
    Image.fromarray(img).save(buf, format="PNG")
    return buf.getvalue()


def _post(client, files, **fields):
    return client.post(
        "/api/restore",
        files=[("files", (n, d, "application/octet-stream")) for n, d in files],
        data=fields,
    )


def test_web_queue_is_bounded_with_retry_after(glyph_image) -> None:
    app, client = _web_app(max_queued=1)
    service = app.state.service
    gate = threading.Event()
    real = service._restore_one

    def slow(*a, **kw):
        gate.wait(10)
        return real(*a, **kw)

    service._restore_one = slow
    with client:
        data = _png(glyph_image)
        first = _post(client, [("a.png", data)])  # running
        second = _post(client, [("b.png", data)])  # waiting
        third = _post(client, [("c.png", data)])  # refused
        assert first.status_code == second.status_code == 202
        assert third.status_code == 429 and int(third.headers["retry-after"]) >= 1
        assert "busy" in third.json()["detail"] and third.json()["detail_zh"]
        gate.set()
        deadline = time.monotonic() + 20
        while client.get(f"/api/jobs/{second.json()['id']}").json()["status"] != "done":
            assert time.monotonic() < deadline
            time.sleep(0.05)
        assert _post(client, [("d.png", data)], wait="1").status_code == 200


def test_web_keeps_few_jobs_and_bounded_bytes(glyph_image) -> None:
    app, client = _web_app(max_kept_jobs=2, max_job_bytes=60_000, max_stored_bytes=10**9)
    noise = np.random.default_rng(0).integers(0, 256, (150, 150), dtype=np.uint8)
    noise[40:110, 40:110] = 0
    with client:
        ids = [
            _post(client, [("g.png", _png(glyph_image))], wait="1").json()["id"] for _ in range(4)
        ]
        assert [client.get(f"/api/jobs/{i}").status_code for i in ids] == [404, 404, 200, 200]
        # Two noisy pictures: their PNGs pass the per-job budget, so the second fails clearly.
        job = _post(client, [("n1.png", _png(noise)), ("n2.png", _png(noise))], wait="1").json()
        assert job["results"][0]["ok"] and not job["results"][1]["ok"]
        assert "memory limit" in job["results"][1]["error"] and job["failed"] == 1
        assert app.state.service.stored_bytes() < 3 * 60_000


def test_web_results_are_urls_not_inlined(glyph_image) -> None:
    _, client = _web_app()
    with client:
        files = [(f"{i}.png", _png(glyph_image)) for i in range(3)]
        r = _post(client, files, char="永", wait="1")
        assert r.status_code == 200 and len(r.content) < 5000 and b"data:" not in r.content
        job = r.json()
        res = job["results"][0]
        for kind in ("input", "reference", "restored"):
            img = client.get(res["images"][kind])
            assert img.status_code == 200 and img.headers["content-type"] == "image/png"
        z = client.get(job["zip"])
        assert z.status_code == 200 and z.headers["content-type"] == "application/zip"
        names = zipfile.ZipFile(io.BytesIO(z.content)).namelist()
        assert names == ["0-restored.png", "1-restored.png", "2-restored.png"]
        assert client.get(f"/api/jobs/{job['id']}/files/0/secret.png").status_code == 404


def test_web_refuses_foreign_hosts_and_origins(glyph_image) -> None:
    from restoreae.web.guard import allowed_host_names

    _, client = _web_app()
    with client:
        assert client.get("/api/models").status_code == 200
        r = client.get("/api/models", headers={"Host": "evil.example"})
        assert r.status_code == 403 and "host name" in r.json()["detail"]
        r = client.get("/", headers={"Host": "evil.example:8765"})
        assert r.status_code == 403
        data = _png(glyph_image)
        bad = client.post(
            "/api/restore",
            files=[("files", ("a.png", data, "image/png"))],
            headers={"Origin": "http://evil.example"},
        )
        assert bad.status_code == 403 and "other sites" in bad.json()["detail"]
        bad = client.post(
            "/api/restore",
            files=[("files", ("a.png", data, "image/png"))],
            headers={"Sec-Fetch-Site": "cross-site"},
        )
        assert bad.status_code == 403
        good = client.post(
            "/api/restore",
            files=[("files", ("a.png", data, "image/png"))],
            data={"wait": "1"},
            headers={"Origin": "http://127.0.0.1:8765"},
        )
        assert good.status_code == 200
        for r in (client.get("/"), bad, good):
            assert "default-src 'self'" in r.headers["content-security-policy"]
            assert r.headers["x-content-type-options"] == "nosniff"
            assert r.headers["x-frame-options"] == "DENY"
            assert r.headers["referrer-policy"] == "no-referrer"
    assert {"127.0.0.1", "localhost", "::1"} <= allowed_host_names("127.0.0.1")
    assert allowed_host_names("10.0.0.5", ["lab.local"]) == {"10.0.0.5", "lab.local"}


def test_web_decompression_bomb_is_too_large_not_damaged() -> None:
    from restoreae.web.images import PageError, decode_image

    # A valid PNG header declaring 100000 × 100000 pixels, with almost no data.
    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    ihdr = struct.pack(">IIBBBBB", 100_000, 100_000, 8, 0, 0, 0, 0)
    bomb = (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )
    with pytest.raises(PageError) as info:
        decode_image(bomb, "bomb.png")
    assert "too large" in str(info.value) and "damaged" not in str(info.value)
    assert "过大" in info.value.zh


# --------------------------------------------------------------------------- 15.6 no silent fallbacks
def test_batch_size_zero_is_an_error(capsys) -> None:
    import argparse

    from restoreae.restore.command import restore_command

    with pytest.raises(SystemExit):
        build_parser().parse_args(["restore", "x.png", "--batch-size", "0"])
    assert "--batch-size: must be at least 1, got 0" in capsys.readouterr().err
    args = argparse.Namespace(inputs=["x.png"], output="o", batch_size=0)
    with pytest.raises(RestoreAEError, match="batch-size"):
        restore_command(args)


def test_chars_csv_names_missing_inputs_unused_rows_and_bad_headers(
    fake_model, glyph_image, tmp_path, capsys
) -> None:
    src = tmp_path / "in"
    src.mkdir()
    for name in ("a.png", "b.png"):
        save(glyph_image, src / name)
    table = tmp_path / "chars.csv"
    table.write_text("path,char\na.png,永\nzzz.png,和\n", encoding="utf-8")
    rc, out, err = run(["restore", src, "-o", tmp_path / "o", "--chars-csv", table], capsys)
    assert rc == 1 and "restored 1 of 2" in out
    assert f"b.png: not listed in {table}" in err
    assert f"{table}:3: 'zzz.png' matches none of the inputs" in err
    # --char covers the files the CSV does not list.
    rc, out, err = run(
        ["restore", src, "-o", tmp_path / "o2", "--chars-csv", table, "--char", "永"], capsys
    )
    assert rc == 0 and "restored 2 of 2" in out
    table.write_text("file,character\na.png,永\n", encoding="utf-8")
    rc, _, err = run(["restore", src, "-o", tmp_path / "o3", "--chars-csv", table], capsys)
    assert rc == 2 and f"{table}:1: expected the columns path,char" in err


# --------------------------------------------------------------------------- 15.7 leftovers, sizes
def test_stale_temporaries_removed_on_start(fake_model, glyph_image, tmp_path, capsys) -> None:
    out = tmp_path / "out"
    (out / "sub").mkdir(parents=True)
    stale = [out / ".a.png.k2j4_x9q.tmp", out / "sub" / ".b.tif.Ab3dE6fG.tmp"]
    for f in stale:
        f.write_bytes(b"torn")
    keep = out / ".notes.tmp"  # not an atomic_write name: left alone
    keep.write_text("mine")
    save(glyph_image, tmp_path / "a.png")
    rc, _, err = run(["restore", tmp_path / "a.png", "-o", out], capsys)
    assert rc == 0 and "removed 2 temporary file(s)" in err
    assert not any(f.exists() for f in stale) and keep.exists()


def test_16bit_tiff_output_is_compressed(fake_model, glyph_image, tmp_path, capsys) -> None:
    big = np.asarray(Image.fromarray(glyph_image).resize((1040, 960)))
    Image.fromarray(big.astype(np.uint16) * 257).save(tmp_path / "g16.tif", compression="tiff_lzw")
    rc, _, err = run(["restore", tmp_path / "g16.tif", "-o", tmp_path / "o"], capsys)
    assert rc == 0, err
    written = Image.open(tmp_path / "o" / "g16.tif")
    assert written.mode == "L" and written.info.get("compression") == "tiff_adobe_deflate"
    assert (tmp_path / "o" / "g16.tif").stat().st_size < big.size // 4


# --------------------------------------------------------------------------- 15.8 messages
def test_folder_and_fifo_inputs_say_what_they_are(fake_model, tmp_path, capsys) -> None:
    from restoreae.imageio import ImageError, load_image

    (tmp_path / "pic.png").mkdir()
    with pytest.raises(ImageError, match="pic.png: a folder, not an image file"):
        load_image(tmp_path / "pic.png")
    fifo = tmp_path / "pipe.png"
    os.mkfifo(fifo)
    with pytest.raises(ImageError, match=r"pipe.png: a FIFO \(named pipe\)"):
        load_image(fifo)
    rc, _, err = run(["restore", fifo, "-o", tmp_path / "o"], capsys)
    assert rc == 1 and "a FIFO (named pipe), not an image file" in err
    assert "no such file" not in err


@pytest.mark.parametrize(
    ("content", "needle"),
    [
        (b"", "is empty (0 bytes)"),
        (os.urandom(300), "is not a PyTorch checkpoint"),
        ("truncated", "is truncated or damaged"),
        ("folder", "is a folder"),
    ],
)
def test_training_state_messages(tmp_path, content, needle) -> None:
    from restoreae.train.checkpoint import CheckpointError, load_state

    path = tmp_path / "last.pt"
    if content == "truncated":
        buf = io.BytesIO()
        with zipfile.ZipFile(buf, "w") as zf:
            zf.writestr("archive/data.pkl", os.urandom(5000))
        path.write_bytes(buf.getvalue()[: len(buf.getvalue()) // 2])
    elif content == "folder":
        path.mkdir()
    else:
        path.write_bytes(content)
    with pytest.raises(CheckpointError) as info:
        load_state(path)
    msg = str(info.value)
    assert needle in msg and str(path) in msg
    assert "weights_only" not in msg and "()" not in msg and "Errno" not in msg


# --------------------------------------------------------------------------- 15.9 durability
def test_atomic_write_fsyncs_file_then_folder_around_the_rename(tmp_path, monkeypatch) -> None:
    import stat

    from restoreae import utils

    events: list[str] = []
    real_fsync, real_replace = os.fsync, os.replace

    def fsync(fd):
        events.append("fsync-dir" if stat.S_ISDIR(os.fstat(fd).st_mode) else "fsync-file")
        return real_fsync(fd)

    def replace(a, b):
        events.append("replace")
        return real_replace(a, b)

    monkeypatch.setattr(utils.os, "fsync", fsync)
    monkeypatch.setattr(utils.os, "replace", replace)
    utils.atomic_write(tmp_path / "a.bin", b"x")
    utils.atomic_write(tmp_path / "b.bin", lambda p: p.write_bytes(b"y"))
    assert events == ["fsync-file", "replace", "fsync-dir"] * 2
    events.clear()
    utils.atomic_write(tmp_path / "c.bin", b"z", durable=False)
    assert events == ["replace"]


def test_one_atomic_writer_in_the_package() -> None:
    src = Path(__file__).parents[1] / "src" / "restoreae"
    users = sorted(
        str(p.relative_to(src)) for p in src.rglob("*.py") if "os.replace(" in p.read_text()
    )
    assert users == ["utils.py"]
    docs = (Path(__file__).parents[1] / "src/restoreae/utils.py").read_text()
    assert "fsync" in docs and "power" in docs


# --------------------------------------------------------------------------- 13.2 one character
def test_count_characters() -> None:
    from restoreae.data.reference import ReferenceRenderer
    from restoreae.restore.inkcheck import count_characters

    r = ReferenceRenderer(size=80)
    assert count_characters(np.full((60, 60), 250, np.uint8)) == 0
    paper = np.clip(np.random.default_rng(0).normal(200, 5, (90, 90)), 0, 255).astype(np.uint8)
    assert count_characters(paper) == 0
    for c in "永一川三心":
        assert count_characters(255 - r.render(c)) == 1, c
    assert count_characters(255 - np.concatenate([r.render(c) for c in "永和九"], axis=1)) == 3
    assert count_characters(np.concatenate([r.render(c) for c in "永和"], axis=0)) == 2


def test_blank_input_left_unchanged_and_several_characters_refused(
    fake_model, glyph_image, tmp_path, capsys
) -> None:
    from restoreae.data.reference import ReferenceRenderer

    blank = save(np.full((80, 80), 255, np.uint8), tmp_path / "blank.png")
    r = ReferenceRenderer(size=80)
    line = 255 - np.concatenate([r.render(c) for c in "永和九年"], axis=1)
    save(line, tmp_path / "line.png")
    rc, out, err = run(["restore", blank, tmp_path / "line.png", "-o", tmp_path / "o"], capsys)
    assert rc == 1 and "1 written unchanged" in out
    assert "blank.png: no ink found" in err and "--force" in err
    assert (tmp_path / "o" / "blank.png").read_bytes() == blank.read_bytes()
    assert "line.png: the image holds 4 characters" in err and "restore-page" in err
    assert not (tmp_path / "o" / "line.png").exists()
    rc, out, _ = run(
        ["restore", blank, tmp_path / "line.png", "-o", tmp_path / "f", "--force"], capsys
    )
    assert rc == 0 and "restored 2 of 2" in out


def test_web_blank_and_several_characters(glyph_image) -> None:
    from restoreae.data.reference import ReferenceRenderer

    r = ReferenceRenderer(size=80)
    line = 255 - np.concatenate([r.render(c) for c in "永和"], axis=1)
    _, client = _web_app()
    with client:
        blank = _png(np.full((60, 60), 240, np.uint8))
        job = _post(client, [("blank.png", blank), ("two.png", _png(line))], wait="1").json()
        b, two = job["results"]
        assert b["ok"] and "no ink found" in b["note"]
        assert (
            client.get(b["images"]["restored"]).content == client.get(b["images"]["input"]).content
        )
        assert not two["ok"] and "2 characters" in two["error"] and "2 个字" in two["error_zh"]
        assert "--" not in two["error"] and "restore-page" not in two["error"]


# --------------------------------------------------------------------------- 13.5 flags
def test_output_defaults_suffix_ext_and_overwrite(
    fake_model, glyph_image, tmp_path, capsys, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)
    save(glyph_image, tmp_path / "a.jpg", quality=95)
    rc, _, err = run(["restore", "a.jpg"], capsys)
    assert rc == 0 and (tmp_path / "results" / "a.jpg").is_file(), err
    rc, _, err = run(["restore", "a.jpg"], capsys)
    assert rc == 1 and "exists; pass --overwrite" in err
    assert run(["restore", "a.jpg", "--overwrite"], capsys)[0] == 0
    rc, _, _ = run(["restore", "a.jpg", "--suffix", "out", "--ext", "png"], capsys)
    assert rc == 0 and Image.open(tmp_path / "results" / "a_out.png").format == "PNG"
    with pytest.raises(SystemExit):
        build_parser().parse_args(["restore", "a.jpg", "--ext", "gif"])


def test_every_flag_has_help_and_defaults_are_shown(capsys) -> None:
    import argparse

    parser = build_parser()
    assert "Restore damaged images of Chinese characters" in parser.description
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    for name, p in sub.choices.items():
        for action in p._actions:
            assert action.help, f"{name} {action.option_strings or action.dest} has no help"
        text = p.format_help()
        for action in p._actions:
            if action.default not in (None, False, "", [], argparse.SUPPRESS) and action.help:
                assert "default" in action.help or f"(default: {action.default})" in " ".join(
                    text.split()
                ), f"{name} {action.option_strings}: default not shown"


def test_list_models_filters_like_timm() -> None:
    from restoreae.models import list_models

    unets = list_models("unet*")
    assert unets and all(n.startswith("unet") for n in unets)
    assert set(unets) < set(list_models()) and list_models("nope*") == []


# --------------------------------------------------------------------------- 13.7 web page
def test_web_samples_docs_and_failure_counts(glyph_image) -> None:
    _, client = _web_app()
    with client:
        samples = client.get("/api/samples").json()["samples"]
        assert len(samples) >= 6 and all(len(s["char"]) == 1 for s in samples)
        img = client.get(samples[0]["url"])
        assert img.status_code == 200 and img.headers["content-type"].startswith("image/")
        assert client.get("/samples/..%2Fweb%2Fapp.py").status_code == 404
        docs = client.get("/docs")
        assert docs.status_code == 200 and "swagger" in docs.text.lower()
        spec = client.get("/openapi.json").json()
        assert "/api/restore" in spec["paths"] and "/api/jobs/{job_id}/zip" in spec["paths"]
        job = _post(
            client, [("ok.png", _png(glyph_image)), ("bad.png", b"not an image")], wait="1"
        ).json()
        assert job["done"] == 2 and job["failed"] == 1
        bad = job["results"][1]
        assert "bad.png: not an image" in bad["error"] and "不是图像" in bad["error_zh"]
        r = _post(client, [("a.png", _png(glyph_image))], char="A")
        assert r.status_code == 400 and "--char" not in r.json()["detail"]
        assert r.json()["detail_zh"]
    page = (Path(__file__).parents[1] / "src/restoreae/web/static/app.js").read_text()
    assert "failed · 失败" in page and "compare" in page and "job.zip" in page
    assert "--model" not in page  # no command-line flags in the page's messages


# --------------------------------------------------------------------------- 13.8 small truths
def test_leaderboard_does_not_rank_a_blurry_model_above_the_input() -> None:
    from restoreae.evaluate.report import leaderboard_rows, ranking_score

    def model(name, psnr, ssim, ocr=None):
        return {
            "name": name,
            "kind": "x",
            "sets": {"mixed": {"psnr": psnr, "ssim": ssim, "mae": 1, "ocr": ocr}},
        }

    results = {
        "main_set": "mixed",
        "models": [model("60-step", 14.0, 0.31), model("identity", 12.5, 0.62)],
    }
    assert [r["name"] for r in leaderboard_rows(results)] == ["identity", "60-step"]
    assert ranking_score(float("inf"), 1.0) == 1.0
    assert ranking_score(20.0, 0.5, 0.5) == pytest.approx(0.5)


def test_models_md_opset_matches_export_default() -> None:
    from restoreae.restore.export import DEFAULT_OPSET

    text = (Path(__file__).parents[1] / "docs/MODELS.md").read_text()
    assert f"opset {DEFAULT_OPSET} by default" in text
    assert build_parser().parse_args(["export", "m", "--onnx", "x"]).opset == DEFAULT_OPSET
    training = (Path(__file__).parents[1] / "docs/TRAINING.md").read_text()
    assert "checksums cover the parameters only" in training and "BatchNorm" in training
