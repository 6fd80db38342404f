"""One model spec everywhere (shipped name, run folder, .safetensors, .onnx, ARCH:FILE), the
cached ONNX export behind the default CPU backend, and a restore process that never imports torch.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

import restoreae.models.weights as weights
from restoreae.cli import main
from restoreae.errors import RestoreAEError
from restoreae.models.weights import ModelSpecError, RunPaths, resolve_weights

SIZE = 32  # tiny models: fast on 2 shared cores
SRC = Path(__file__).resolve().parents[1] / "src"


def _save_tiny(path: Path, seed: int = 0, in_chans: int = 2) -> Path:
    import torch

    from restoreae.models.io import save_model
    from restoreae.models.registry import create_model

    torch.manual_seed(seed)
    model = create_model("unet_mobilenetv3_small", in_chans=in_chans, img_size=SIZE)
    return save_model(model.eval(), path, {"img_size": SIZE, "in_chans": in_chans})


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models export and run fastest on one thread when the cores are busy."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture(scope="module")
def zoo(tmp_path_factory) -> dict[str, Path]:
    """One tiny model in every form a spec can take (all the same weights), plus an image.

    The copies of ``tiny.safetensors`` get a copy of its cached export beside them (same bytes,
    same digest: a valid cache), so only ``tiny.safetensors`` and the bare file are exported.
    """
    from safetensors.torch import save_file

    from restoreae.models.io import load_model
    from restoreae.restore.api import Restorer

    root = tmp_path_factory.mktemp("zoo")
    st = _save_tiny(root / "tiny.safetensors")
    assert Restorer(st).backend_name == "onnx"  # exports tiny.safetensors.onnx
    cached = root / "tiny.safetensors.onnx"
    run = root / "run-a"
    (run / "weights").mkdir(parents=True)
    pretrained = root / "pretrained"
    pretrained.mkdir()
    copies = [run / "weights" / "last.safetensors"]  # only last: best is preferred when present
    copies += [pretrained / "default.safetensors", pretrained / "other.safetensors"]
    for copy in copies:
        shutil.copy(st, copy)
        shutil.copy(cached, copy.with_name(copy.name + ".onnx"))
    model, _ = load_model(st)
    bare = root / "bare.safetensors"  # a state_dict without restoreae's header
    state = {k: v.contiguous() for k, v in model.state_dict().items()}
    save_file(state, str(bare), metadata={"img_size": str(SIZE)})
    onnx = shutil.copy(cached, root / "tiny.onnx")
    img = np.full((70, 60), 230, np.uint8)
    img[15:55, 25:35] = 20
    image = root / "glyph.png"
    Image.fromarray(img).save(image)
    return {
        "safetensors": st,
        "run": run,
        "pretrained": pretrained,
        "bare": bare,
        "onnx": Path(onnx),
        "image": image,
    }


@pytest.fixture
def shipped(zoo, monkeypatch) -> Path:
    """The zoo's pretrained/ folder stands in for the package's shipped models."""
    monkeypatch.setattr(weights, "PRETRAINED_DIR", zoo["pretrained"])
    return zoo["pretrained"]


@pytest.fixture
def user_cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("RESTOREAE_CACHE_DIR", str(tmp_path / "cache"))
    return tmp_path / "cache" / "onnx"


# --------------------------------------------------------------------------- resolve_weights
def test_every_spec_form_resolves(zoo, shipped) -> None:
    for spec in (None, "default"):
        src = resolve_weights(spec)
        assert src.path == shipped / "default.safetensors" and src.name == "default"
    assert resolve_weights("other").path == shipped / "other.safetensors"
    src = resolve_weights("faithful")  # the former name of the model that became the default
    assert (src.path, src.name) == (shipped / "default.safetensors", "default")
    assert src.spec == "faithful"
    src = resolve_weights(zoo["run"])
    assert src.path == RunPaths(zoo["run"]).last_weights and src.name == "run-a"
    shutil.copy(zoo["safetensors"], RunPaths(zoo["run"]).best_weights)
    try:
        assert resolve_weights(str(zoo["run"])).path == RunPaths(zoo["run"]).best_weights
    finally:
        RunPaths(zoo["run"]).best_weights.unlink()
    src = resolve_weights(zoo["safetensors"])
    assert (src.format, src.name, src.arch) == ("safetensors", "tiny", None)
    src = resolve_weights(str(zoo["onnx"]))
    assert (src.format, src.name) == ("onnx", "tiny")
    src = resolve_weights(f"unet_mobilenetv3_small:{zoo['bare']}")
    assert (src.path, src.arch) == (zoo["bare"], "unet_mobilenetv3_small")


@pytest.mark.parametrize(
    ("spec", "needle"),
    [
        ("nope", "nope: no such model; a model is a shipped name (default, other)"),
        ("dir/missing.safetensors", "missing.safetensors: no such file or folder"),
        ("unet_mobilenetv3_small:missing.safetensors", "weights file missing.safetensors not"),
        ("", "empty model spec"),
    ],
)
def test_unknown_or_missing_spec_is_a_clear_error(spec, needle, shipped) -> None:
    with pytest.raises(ModelSpecError, match=re.escape(needle)):
        resolve_weights(spec)


def test_folder_without_weights_and_foreign_files(tmp_path, shipped) -> None:
    with pytest.raises(ModelSpecError, match="folder holds no weights/best.safetensors"):
        resolve_weights(tmp_path)
    (tmp_path / "model.pt").write_bytes(b"x")
    with pytest.raises(ModelSpecError, match="model.pt: not a model file"):
        resolve_weights(tmp_path / "model.pt")


def test_missing_shipped_model_says_so(tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(weights, "PRETRAINED_DIR", tmp_path)
    with pytest.raises(ModelSpecError, match="shipped model .* is missing"):
        resolve_weights(None)
    assert main(["restore", str(tmp_path), "-o", str(tmp_path / "o")]) == 2


def test_arch_file_loads_bare_state_dict_and_checks_arch(zoo) -> None:
    from restoreae.models.io import load_model

    model, meta = load_model(zoo["bare"], arch="unet_mobilenetv3_small")
    assert meta["in_chans"] == 2 and model.config["name"] == "unet_mobilenetv3_small"
    with pytest.raises(RestoreAEError, match="holds model 'unet_mobilenetv3_small', not"):
        load_model(zoo["safetensors"], arch="ae_mobilenetv3_light")


# --------------------------------------------------------------------------- every stage
def test_from_pretrained_takes_every_form(zoo, shipped) -> None:
    from restoreae.restore.api import Restorer

    batch = np.random.default_rng(0).random((2, 2, SIZE, SIZE), dtype=np.float32)
    ref = Restorer.from_pretrained(zoo["safetensors"], backend="torch").run(batch)
    specs = [None, "other", zoo["run"], zoo["safetensors"], zoo["onnx"]]
    specs.append(f"unet_mobilenetv3_small:{zoo['bare']}")
    for spec in specs:
        r = Restorer.from_pretrained(spec)  # auto: ONNX Runtime on the CPU
        assert r.backend_name == "onnx", spec
        assert r.img_size == SIZE and r.in_chans == 2
        assert float(np.abs(r.run(batch) - ref).max()) < 1e-3, spec
    with pytest.raises(RestoreAEError, match="onnx backend only"):
        Restorer.from_pretrained(zoo["onnx"], backend="torch")
    with pytest.raises(RestoreAEError, match="backend must be one of auto, onnx, torch"):
        Restorer.from_pretrained(zoo["safetensors"], backend="tensorrt")


def test_restore_export_eval_and_serve_take_the_same_specs(zoo, shipped, tmp_path, capsys):
    from restoreae.web.app import parse_model_args

    for i, spec in enumerate(["default", str(zoo["run"]), str(zoo["onnx"])]):
        rc = main(["restore", str(zoo["image"]), "-o", str(tmp_path / f"o{i}"), "--model", spec])
        assert rc == 0 and (tmp_path / f"o{i}" / "glyph.png").is_file(), spec
    assert main(["export", str(zoo["run"]), "--onnx", str(tmp_path / "run.onnx")]) == 0
    meta = _onnx_metadata(tmp_path / "run.onnx")
    assert meta["img_size"] == SIZE and meta["model"] == "unet_mobilenetv3_small"
    assert main(["export", str(zoo["onnx"]), "--onnx", str(tmp_path / "x.onnx")]) == 2
    assert "already an ONNX model" in capsys.readouterr().err
    models = parse_model_args([f"a={zoo['run']}", str(zoo["onnx"]), "other"])
    assert list(models) == ["default", "other", "a", "tiny"]  # every shipped model, then the given


def test_eval_runs_onnx_and_run_folders_through_the_restore_backends(zoo, tiny_corpus, tmp_path):
    out = tmp_path / "report"
    args = ["eval", str(zoo["run"]), str(zoo["onnx"]), "--data", str(tiny_corpus), "--num", "4"]
    rc = main(
        [*args, "--no-ocr", "--no-per-op", "--no-latency", "--no-baselines", "--out", str(out)]
    )
    assert rc == 0
    models = json.loads((out / "metrics.json").read_text(encoding="utf-8"))["models"]
    assert [(m["name"], m["backend"]) for m in models] == [("run-a", "torch"), ("tiny", "onnx")]
    # the same weights through PyTorch and ONNX Runtime score the same
    a, b = (m["sets"]["mixed"]["psnr"] for m in models)
    assert abs(a - b) < 0.05 and models[0]["params"] > 0 and models[1]["params"] is None


# --------------------------------------------------------------------------- the cached export
def _onnx_metadata(path: Path) -> dict:
    from restoreae.restore.backends import OnnxBackend

    return OnnxBackend(path).metadata


def test_cached_export_is_reused_and_invalidated(tmp_path, monkeypatch) -> None:
    import restoreae.restore.export as export
    from restoreae.restore.api import Restorer

    st = _save_tiny(tmp_path / "m.safetensors", seed=0)
    cache = tmp_path / "m.safetensors.onnx"
    first = Restorer(st)
    assert first.backend_name == "onnx" and cache.is_file()
    digest = resolve_weights(st).digest()
    assert _onnx_metadata(cache)["weights_sha256"] == digest
    stamp = cache.stat().st_mtime_ns

    def no_export(source):
        raise AssertionError("the cached export should have been used")

    monkeypatch.setattr(export, "load_for_export", no_export)
    batch = np.random.default_rng(1).random((3, 2, SIZE, SIZE), dtype=np.float32)
    np.testing.assert_array_equal(Restorer(st).run(batch), first.run(batch))
    assert cache.stat().st_mtime_ns == stamp
    monkeypatch.undo()

    _save_tiny(st, seed=1)  # new weights, same file name: the cache is stale
    fresh = Restorer(st)
    assert _onnx_metadata(cache)["weights_sha256"] == resolve_weights(st).digest() != digest
    torch_out = Restorer(st, backend="torch").run(batch)
    assert float(np.abs(fresh.run(batch) - torch_out).max()) < 1e-3
    assert float(np.abs(first.run(batch) - torch_out).max()) > 1e-3


def test_unwritable_weights_folder_uses_the_user_cache(tmp_path, user_cache, monkeypatch) -> None:
    import restoreae.restore.export as export
    from restoreae.restore.api import Restorer

    st = _save_tiny(tmp_path / "ro" / "m.safetensors")
    real_write = export.atomic_write

    def write(path, data):
        if Path(path).parent == st.parent:
            raise PermissionError(13, "Permission denied", str(path))
        return real_write(path, data)

    monkeypatch.setattr(export, "atomic_write", write)
    r = Restorer(st)
    digest = resolve_weights(st).digest()
    assert r.backend_name == "onnx" and (user_cache / f"{digest}.onnx").is_file()
    assert not (st.parent / "m.safetensors.onnx").exists()
    assert Restorer(st)._backend.path == user_cache / f"{digest}.onnx"  # found there next time


def test_auto_falls_back_to_torch_when_export_fails(tmp_path, monkeypatch) -> None:
    import restoreae.restore.export as export
    from restoreae.restore.api import Restorer

    st = _save_tiny(tmp_path / "m.safetensors")

    def broken(*a, **k):
        raise RestoreAEError("ONNX export failed for model x: unsupported op")

    monkeypatch.setattr(export, "checked_onnx_bytes", broken)
    with pytest.warns(UserWarning, match="using PyTorch"):
        assert Restorer(st).backend_name == "torch"
    with pytest.raises(RestoreAEError, match="unsupported op"):
        Restorer(st, backend="onnx")


# --------------------------------------------------------------------------- no torch
_NO_TORCH = """
import sys
{body}
heavy = sorted(m for m in ("torch", "timm", "torchvision") if m in sys.modules)
print("HEAVY=" + ",".join(heavy))
"""


def _run_fresh(body: str, cwd: Path) -> str:
    env = {**os.environ, "PYTHONPATH": f"{SRC}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    code = _NO_TORCH.format(body=textwrap.dedent(body))
    proc = subprocess.run(
        [sys.executable, "-c", code], cwd=cwd, env=env, capture_output=True, text=True, timeout=300
    )
    assert proc.returncode == 0, proc.stderr[-2000:]
    return proc.stdout


def test_onnx_restore_and_serve_never_import_torch(zoo, tmp_path) -> None:
    from restoreae.restore.api import Restorer

    st = shutil.copy(zoo["safetensors"], tmp_path / "m.safetensors")
    Restorer(st)  # makes the cached export (this process may import torch)
    out = _run_fresh(
        f"""
        from restoreae.cli import main
        rc = main(["restore", {str(zoo["image"])!r}, "-o", "out", "--model", {str(st)!r}])
        assert rc == 0, rc
        """,
        tmp_path,
    )
    assert "HEAVY=\n" in out and (tmp_path / "out" / "glyph.png").is_file()
    out = _run_fresh(
        f"""
        from fastapi.testclient import TestClient
        from restoreae.web.app import create_app
        data = open({str(zoo["image"])!r}, "rb").read()
        with TestClient(create_app({{"m": {str(st)!r}, "o": {str(zoo["onnx"])!r}}}), base_url="http://127.0.0.1:8765") as c:
            for model in ("m", "o"):
                files = [("files", ("g.png", data, "image/png"))]
                job = c.post("/api/restore", files=files, data={{"wait": "1", "model": model}})
                assert job.status_code == 200 and job.json()["results"][0]["ok"], job.text
        """,
        tmp_path,
    )
    assert "HEAVY=\n" in out
