"""Probe `restoreae restore`, its weights loading and `restoreae serve` as an attacker and a
careless user would; print the figures of docs/RELIABILITY.md (and write them as JSON).

    python benchmarks/hostile_probe.py [--model default] [--kills 10] [--json out.json]

1. **Bad inputs** (in this process, one model load): every case runs ``restoreae restore`` (or
   the parser) and is classified as *restored* / *clean error* (exit 1 or 2, each error line names
   the file or flag, no traceback) / *crash* (an exception escapes ``main``) / *silently wrong*
   (the run succeeded but the case's expectation — e.g. "a blank picture is not redrawn" — fails).
2. **Peak memory**: the long thin pictures and a normal one, each restored in a fresh child
   process with the ONNX backend (exported once), the child's peak resident memory (VmHWM).
3. **Kills during restore writes**: a child restores a folder with the ONNX backend and is killed
   with SIGKILL after a random number of outputs; every file left must decode at its full size,
   and the next run (``--overwrite``) must remove the temporaries and complete the folder.
4. **Web**: requests with a foreign Host or Origin, and a burst of posts against a server whose
   worker is held busy (``max_queued`` = 2): what was refused with 403 / 429.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import random
import signal
import struct
import subprocess
import sys
import tempfile
import threading
import time
import traceback
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

CHAR = "永"


# --------------------------------------------------------------------------- inputs
def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _bomb_png(w: int, h: int) -> bytes:
    ihdr = struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0)
    return b"\x89PNG\r\n\x1a\n" + _png_chunk(b"IHDR", ihdr) + _png_chunk(b"IEND", b"")


def _glyph(size: int = 110) -> np.ndarray:
    from restoreae.data.reference import ReferenceRenderer

    g = ReferenceRenderer(size=size).render(CHAR)
    img = np.full((size + 30, size + 30), 228, np.uint8)
    img[15 : 15 + size, 15 : 15 + size] = np.rint(228 - 198 * (g / 255.0)).astype(np.uint8)
    return img


def _encode(img: Image.Image, fmt: str, **kw) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format=fmt, **kw)
    return buf.getvalue()


def _fake_model(path: Path, config: dict, meta: dict) -> Path:
    header = {
        "__metadata__": {
            "format": "restoreae-model-1",
            "config": json.dumps(config),
            "metadata": json.dumps(meta),
        },
        "w": {"dtype": "F32", "shape": [1], "data_offsets": [0, 4]},
    }
    blob = json.dumps(header).encode()
    path.write_bytes(struct.pack("<Q", len(blob)) + blob + b"\0\0\0\0")
    return path


def build_cases(d: Path) -> list[dict]:
    """The hostile cases: ``{"name", "argv", "expect"}``; ``expect`` is ``restored``,
    ``error``, ``unchanged`` (blank: written as it was) or ``refused`` (several characters)."""
    from restoreae.data.reference import ReferenceRenderer

    good = _glyph()
    g = Image.fromarray(good)
    files: dict[str, bytes] = {}
    for fmt, ext in [
        ("PNG", "png"),
        ("JPEG", "jpg"),
        ("TIFF", "tif"),
        ("BMP", "bmp"),
        ("WEBP", "webp"),
        ("GIF", "gif"),
    ]:
        data = _encode(g, fmt)
        files[f"cut-half.{ext}"] = data[: len(data) // 2]
        files[f"cut-header.{ext}"] = data[:12]
        flipped = bytearray(data)
        for i in range(20, len(flipped), max(1, len(flipped) // 40)):
            flipped[i] ^= 0x5A
        files[f"bitflips.{ext}"] = bytes(flipped)
        files[f"random-bytes.{ext}"] = os.urandom(2000)
    files["empty.png"] = b""
    files["text-named.png"] = b"Dear colleague, this is not an image.\n"
    files["png-named.jpg"] = _encode(g, "PNG")
    files["bomb-100000x100000.png"] = _bomb_png(100_000, 100_000)
    files["bomb-60000x1000.png"] = _bomb_png(60_000, 1000)
    files["tiff-huge-declared.tif"] = _encode(Image.new("L", (8, 8)), "TIFF")[:8] + os.urandom(64)
    restorable: dict[str, Image.Image] = {
        "mode-1.png": g.convert("1"),
        "mode-LA.png": g.convert("LA"),
        "mode-P.png": g.convert("P"),
        "mode-RGB.png": g.convert("RGB"),
        "mode-RGBA.png": g.convert("RGBA"),
        "mode-CMYK.jpg": g.convert("CMYK"),
        "mode-I16.png": Image.fromarray(good.astype(np.uint16) * 257),
        "mode-I16.tif": Image.fromarray(good.astype(np.uint16) * 257),
        "mode-F.tif": Image.fromarray(good.astype(np.float32) / 255.0),
        "tiny-3x3.png": Image.fromarray(good[::50, ::50]),
        "rgba-half-transparent.png": Image.fromarray(
            np.dstack([good, good, good, np.full_like(good, 128)])
        ),
        "unicode 名 字 with spaces.png": g,
        "exif-broken.jpg": g,
    }
    thin = np.full((1, 1_000_000), 255, np.uint8)
    thin[0, 400_000:400_400] = 0
    restorable["thin-1x1000000.png"] = Image.fromarray(thin)
    thin2 = np.full((1, 20_000), 255, np.uint8)
    thin2[0, 9000:9100] = 0
    restorable["thin-1x20000.png"] = Image.fromarray(thin2)
    restorable["thin-20000x2.png"] = Image.fromarray(np.ascontiguousarray(np.tile(thin2.T, (1, 2))))
    strip = np.full((3, 100_000), 230, np.uint8)
    strip[:, 50_000:50_030] = 20
    restorable["thin-3x100000.png"] = Image.fromarray(strip)
    noise = np.random.default_rng(0).integers(0, 256, (300, 300), dtype=np.uint8)
    restorable["noise-300.png"] = Image.fromarray(noise)
    for name, img in restorable.items():
        fmt = {"jpg": "JPEG", "tif": "TIFF"}.get(name.rsplit(".", 1)[1], "PNG")
        kw = {"exif": b"Exif\x00\x00MM\x00*\x00\x00\x00\x08\xff\xff"} if "exif" in name else {}
        files[name] = _encode(img, fmt, **kw)
    files["blank-white.png"] = _encode(Image.new("L", (120, 120), 255), "PNG")
    files["blank-black.png"] = _encode(Image.new("L", (120, 120), 0), "PNG")
    r = ReferenceRenderer(size=90)
    line = 255 - np.concatenate([r.render(c) for c in "永和九年"], axis=1)
    files["four-characters.png"] = _encode(Image.fromarray(line), "PNG")
    for name, data in files.items():
        (d / name).write_bytes(data)
    (d / "a-folder.png").mkdir()
    os.mkfifo(d / "a-fifo.png")
    (d / "loop.png").symlink_to(d / "loop.png")
    (d / "dangling.png").symlink_to(d / "nowhere.png")
    good_path = d / "good.png"
    good_path.write_bytes(_encode(g, "PNG"))
    out = d / "out"

    cases: list[dict] = []
    special = {
        "blank-white.png": "unchanged",
        "blank-black.png": "unchanged",
        "four-characters.png": "refused",
    }
    for name in sorted(files) + ["a-folder.png", "a-fifo.png", "loop.png", "dangling.png"]:
        restorable_case = name in restorable or name == "png-named.jpg"
        expect = special.get(name, "restored" if restorable_case else "error")
        cases.append(
            {
                "name": name,
                "argv": ["restore", str(d / name), "-o", str(out), "--char", CHAR, "--overwrite"],
                "expect": expect,
            }
        )
    cases.append(
        {
            "name": "missing file",
            "argv": ["restore", str(d / "missing.png"), "-o", str(out)],
            "expect": "error",
        }
    )
    flag_cases = {
        "--batch-size 0": ["--batch-size", "0"],
        "--batch-size -3": ["--batch-size", "-3"],
        "--batch-size abc": ["--batch-size", "abc"],
        "--device bogus": ["--device", "bogus"],
        "--device cuda (no GPU)": ["--device", "cuda"],
        "--device cuda:7": ["--device", "cuda:7"],
        "--char AB": ["--char", "AB"],
        "--char A": ["--char", "A"],
        "--ext gif": ["--ext", "gif"],
        "--suffix a/b": ["--suffix", "a/b"],
        "--polarity sideways": ["--polarity", "sideways"],
        "--backend tensorflow": ["--backend", "tensorflow"],
    }
    for label, extra in flag_cases.items():
        try:
            import torch

            if "cuda" in label and torch.cuda.is_available():
                continue
        except ImportError:
            pass
        cases.append(
            {
                "name": label,
                "argv": ["restore", str(good_path), "-o", str(out), *extra],
                "expect": "error",
            }
        )
    # -o is an existing file; the output would overwrite the input; it exists already.
    cases.append(
        {
            "name": "-o is a file",
            "argv": ["restore", str(good_path), "-o", str(good_path)],
            "expect": "error",
        }
    )
    cases.append(
        {
            "name": "output = input",
            "argv": ["restore", str(good_path), "-o", str(d)],
            "expect": "error",
        }
    )
    csvs = {
        "csv missing": None,
        "csv is a folder": "FOLDER",
        "csv binary": os.urandom(300),
        "csv wrong header": "file,character\ngood.png,永\n".encode(),
        "csv three columns": "good.png,永,x\n".encode(),
        "csv bad char": b"good.png,ab\n",
        "csv not listing the input": "other.png,永\n".encode(),
        "csv latin-1": "good.png,\xe9\n".encode("latin-1"),
    }
    for label, content in csvs.items():
        p = d / f"{label.replace(' ', '-')}.csv"
        if content == "FOLDER":
            p.mkdir()
        elif content is not None:
            p.write_bytes(content)
        cases.append(
            {
                "name": label,
                "argv": [
                    "restore",
                    str(good_path),
                    "-o",
                    str(out),
                    "--chars-csv",
                    str(p),
                    "--overwrite",
                ],
                "expect": "error",
            }
        )
    models = {
        "model missing": d / "nope.safetensors",
        "model random bytes": d / "random.safetensors",
        "model img_size=65536": _fake_model(
            d / "big.safetensors",
            {"name": "unet_mobilenetv3_small", "in_chans": 2, "img_size": 65536},
            {},
        ),
        "model img_size=-32": _fake_model(
            d / "neg.safetensors",
            {"name": "unet_mobilenetv3_small", "in_chans": 2, "img_size": 32},
            {"img_size": -32},
        ),
        "model latent_dim=2**31": _fake_model(
            d / "latent.safetensors",
            {"name": "ae_mobilenetv3_large", "in_chans": 2, "img_size": 64, "latent_dim": 2**31},
            {},
        ),
        "model unknown name": _fake_model(
            d / "name.safetensors", {"name": "resnet9000", "in_chans": 2, "img_size": 64}, {}
        ),
        "model truncated weights": _fake_model(
            d / "trunc.safetensors",
            {"name": "unet_mobilenetv3_small", "in_chans": 2, "img_size": 64},
            {},
        ),
        "onnx random bytes": d / "random.onnx",
    }
    (d / "random.safetensors").write_bytes(os.urandom(4000))
    (d / "random.onnx").write_bytes(os.urandom(4000))
    for label, path in models.items():
        flag = "--model"  # .onnx files are model specs too
        cases.append(
            {
                "name": label,
                "argv": ["restore", str(good_path), "-o", str(out), flag, str(path), "--overwrite"],
                "expect": "error",
            }
        )
    for label, argv in {
        "serve --port 99999": ["serve", "--port", "99999"],
        "serve --port 0": ["serve", "--port", "0"],
        "serve --max-files 0": ["serve", "--max-files", "0"],
    }.items():
        cases.append({"name": label, "argv": argv, "expect": "error"})
    return cases


def classify(case: dict, rc: int | None, err: str, exc: str | None, out_dir: Path) -> str:
    if exc is not None or "Traceback" in err:
        return "crash"
    if rc == 0:
        if case["expect"] in ("restored", "unchanged"):
            if case["expect"] == "unchanged" and "no ink found" not in err:
                return "silently wrong"
            return "restored" if case["expect"] == "restored" else "clean error"
        return "silently wrong"
    lines = [ln for ln in err.splitlines() if ln.startswith(("error:", "usage:", "restoreae"))]
    if not lines:
        return "crash"
    if case["expect"] == "restored":
        return "failed (clean)"
    return "clean error"


def probe_inputs(d: Path, model: str | None) -> dict:
    import restoreae.restore.api as api
    from restoreae.cli import main

    real = api.Restorer
    cache: dict = {}

    def cached(model_arg=None, *a, **kw):  # one model load for the whole probe
        key = (str(model_arg), kw.get("backend"), kw.get("device"))
        if model_arg is None and model is not None:
            model_arg = model
        if key not in cache:
            cache[key] = real(model_arg, *a, **kw)
        return cache[key]

    api.Restorer = cached
    cases = build_cases(d)
    results = []
    for case in cases:
        err_buf, out_buf = io.StringIO(), io.StringIO()
        exc = None
        rc = None
        with contextlib.redirect_stderr(err_buf), contextlib.redirect_stdout(out_buf):
            try:
                rc = main(case["argv"])
            except SystemExit as e:  # argparse usage errors
                rc = int(e.code or 0)
            except BaseException:  # noqa: BLE001 - a crash is what we count
                exc = traceback.format_exc()
        verdict = classify(case, rc, err_buf.getvalue(), exc, d / "out")
        results.append(
            {
                "case": case["name"],
                "rc": rc,
                "verdict": verdict,
                "stderr": err_buf.getvalue().strip()[-400:],
                "exception": exc and exc[-600:],
            }
        )
    api.Restorer = real
    counts: dict[str, int] = {}
    for r in results:
        counts[r["verdict"]] = counts.get(r["verdict"], 0) + 1
    return {"cases": len(results), "counts": counts, "results": results}


# --------------------------------------------------------------------------- memory
# The child's own peak (VmHWM of /proc/self/status): ``ru_maxrss`` would not do, Linux carries it
# over exec from the forked copy of this (large) parent process.
_RSS_CHILD = """
import sys
from restoreae.cli import main
rc = main(sys.argv[1:])
with open("/proc/self/status") as f:
    hwm = next(int(line.split()[1]) for line in f if line.startswith("VmHWM:"))
print("MAXRSS_KB", hwm, "RC", rc)
"""


def probe_memory(d: Path, onnx: Path) -> dict:
    out = {}
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    for name in [
        "good.png",
        "thin-1x1000000.png",
        "thin-1x20000.png",
        "thin-20000x2.png",
        "thin-3x100000.png",
        "noise-300.png",
    ]:
        proc = subprocess.run(
            [
                sys.executable,
                "-c",
                _RSS_CHILD,
                "restore",
                str(d / name),
                "-o",
                str(d / "mem-out"),
                "--model",
                str(onnx),
                "--char",
                CHAR,
                "--overwrite",
                "--force",
            ],
            capture_output=True,
            text=True,
            timeout=600,
            env=env,
        )
        line = [ln for ln in proc.stdout.splitlines() if ln.startswith("MAXRSS_KB")]
        out[name] = {
            "maxrss_mb": round(int(line[0].split()[1]) / 1024, 1) if line else None,
            "rc": proc.returncode,
            "stderr": proc.stderr.strip()[-300:],
        }
    return out


# --------------------------------------------------------------------------- kills
def probe_kills(d: Path, onnx: Path, kills: int, seed: int = 0) -> dict:
    from restoreae.utils import TEMP_NAME

    src = d / "kill-in"
    src.mkdir(exist_ok=True)
    base = Image.fromarray(_glyph(400))  # bigger pictures: each write takes a while
    for i in range(40):
        base.rotate(i * 3, fillcolor=228).save(src / f"g{i:02d}.png")
    rng = random.Random(seed)
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    survived, leftovers_seen, torn = 0, 0, 0
    for k in range(kills):
        out = d / f"kill-out-{k}"
        cmd = [
            sys.executable,
            "-m",
            "restoreae.cli",
            "restore",
            str(src),
            "-o",
            str(out),
            "--model",
            str(onnx),
            "--char",
            CHAR,
            "--batch-size",
            "4",
        ]
        target = rng.randint(1, 36)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        deadline = time.monotonic() + 300
        while time.monotonic() < deadline and proc.poll() is None:
            n = len(list(out.glob("*.png"))) if out.is_dir() else 0
            if n >= target:
                time.sleep(rng.random() * 0.05)
                break
            time.sleep(0.005)
        proc.send_signal(signal.SIGKILL)
        proc.wait()
        finished = sorted(out.glob("*.png")) if out.is_dir() else []
        temps = [p for p in out.iterdir() if TEMP_NAME.match(p.name)] if out.is_dir() else []
        leftovers_seen += len(temps)
        bad = 0
        for f in finished:
            try:
                with Image.open(f) as im:
                    im.load()
                    bad += im.size != base.size
            except Exception:  # noqa: BLE001 - a torn file is what we look for
                bad += 1
        torn += bad
        rerun = subprocess.run(
            cmd + ["--overwrite"], capture_output=True, text=True, env=env, timeout=600
        )
        complete = len(list(out.glob("*.png"))) == 40 and not [
            p for p in out.iterdir() if TEMP_NAME.match(p.name)
        ]
        survived += int(bad == 0 and rerun.returncode == 0 and complete)
    return {
        "kills": kills,
        "survived": survived,
        "torn_files": torn,
        "temporaries_left_by_kills": leftovers_seen,
    }


# --------------------------------------------------------------------------- web
def probe_web() -> dict:
    from fastapi.testclient import TestClient

    from restoreae.restore.api import Restorer
    from restoreae.web.app import create_app

    class Identity:
        metadata = {"img_size": 32, "in_chans": 2}
        img_size, in_chans = 32, 2

        def __call__(self, batch):
            return batch[:, :1].copy()

    app = create_app({"id": "identity"}, max_queued=2)
    service = app.state.service
    service._restorers["id"] = Restorer(backend=Identity())
    service._infer_locks["id"] = threading.Lock()
    gate = threading.Event()
    real = service._restore_one
    service._restore_one = lambda *a, **k: (gate.wait(30), real(*a, **k))[1]
    png = _encode(Image.fromarray(_glyph()), "PNG")
    files = [("files", ("g.png", png, "image/png"))]
    counts = {"host refused": 0, "origin refused": 0, "accepted": 0, "queue refused (429)": 0}
    with TestClient(app, base_url="http://127.0.0.1:8765") as c:
        foreign_hosts = [
            "evil.example",
            "evil.example:8765",
            "127.0.0.1.nip.io",
            "localhost.evil.example",
            "10.0.0.1",
        ]
        for h in foreign_hosts:
            counts["host refused"] += c.get("/api/models", headers={"Host": h}).status_code == 403
            counts["host refused"] += (
                c.post("/api/restore", files=files, headers={"Host": h}).status_code == 403
            )
        for o in [
            "http://evil.example",
            "null",
            "http://127.0.0.1.evil.example",
            "https://localhost.evil",
        ]:
            counts["origin refused"] += (
                c.post("/api/restore", files=files, headers={"Origin": o}).status_code == 403
            )
        counts["origin refused"] += (
            c.post(
                "/api/restore", files=files, headers={"Sec-Fetch-Site": "cross-site"}
            ).status_code
            == 403
        )
        retry_after = []
        for _ in range(6):
            r = c.post("/api/restore", files=files * 16 if False else files)
            if r.status_code == 202:
                counts["accepted"] += 1
            elif r.status_code == 429:
                counts["queue refused (429)"] += 1
                retry_after.append(int(r.headers["retry-after"]))
        gate.set()
    return {
        "foreign host requests": 2 * len(foreign_hosts),
        "foreign origin posts": 5,
        "burst posts": 6,
        "counts": counts,
        "retry_after_s": retry_after,
        "max_queued": 2,
        "max_kept_jobs": service.max_kept_jobs,
        "max_job_mb": service.max_job_bytes / 2**20,
        "max_stored_mb": service.max_stored_bytes / 2**20,
    }


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="model for the probes (default: shipped)")
    ap.add_argument("--kills", type=int, default=10, help="SIGKILLs during restore writes")
    ap.add_argument(
        "--skip", default="", help="comma-separated parts to skip: inputs,memory,kills,web"
    )
    ap.add_argument("--json", type=Path, default=None, help="also write the figures here")
    args = ap.parse_args()
    skip = set(filter(None, args.skip.split(",")))
    report: dict = {}
    with tempfile.TemporaryDirectory(prefix="hostile-") as tmp:
        d = Path(tmp)
        t0 = time.time()
        if "inputs" not in skip:
            report["inputs"] = probe_inputs(d, args.model)
            print(
                json.dumps(
                    {"inputs": report["inputs"]["counts"], "cases": report["inputs"]["cases"]}
                ),
                flush=True,
            )
            for r in report["inputs"]["results"]:
                if r["verdict"] in ("crash", "silently wrong"):
                    print(
                        "  ",
                        r["verdict"],
                        r["case"],
                        r["stderr"][-200:],
                        (r["exception"] or "")[-300:],
                        flush=True,
                    )
        if not {"memory", "kills"} <= skip:
            from restoreae.restore.export import export_command

            onnx = d / "model.onnx"
            with contextlib.redirect_stdout(io.StringIO()):
                export_command(
                    argparse.Namespace(checkpoint=args.model or "default", onnx=onnx, opset=18)
                )
            if "inputs" in skip:
                build_cases(d)
            if "memory" not in skip:
                report["memory"] = probe_memory(d, onnx)
                print(
                    json.dumps(
                        {"memory": {k: v["maxrss_mb"] for k, v in report["memory"].items()}}
                    ),
                    flush=True,
                )
            if "kills" not in skip:
                report["kills"] = probe_kills(d, onnx, args.kills)
                print(json.dumps({"kills": report["kills"]}), flush=True)
        if "web" not in skip:
            report["web"] = probe_web()
            print(json.dumps({"web": report["web"]}, ensure_ascii=False), flush=True)
        report["seconds"] = round(time.time() - t0, 1)
    if args.json:
        args.json.write_text(json.dumps(report, indent=1, ensure_ascii=False))
    return 0


if __name__ == "__main__":
    sys.exit(main())
