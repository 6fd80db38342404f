"""Kill-safe checkpoints in a run folder (layout: :class:`restoreae.models.weights.RunPaths`).

```
RUN_DIR/
  config.yaml                    the resolved config (written at start)
  weights/last.safetensors       exported weights (EMA when enabled), loadable by load_model
  weights/best.safetensors       best validation PSNR so far
  weights/best-<step>.safetensors  the best k (train.keep_best_k)
  state/last.pt                  training state: model, optimizer, scheduler, scaler, EMA, RNG,
                                 step, epoch, position in the epoch, best metrics, config
  tb/                            TensorBoard events
  log.jsonl                      one JSON object per log / validation event
```
Every file is written atomically (temporary file + ``os.replace``), weights first, state last: a
process killed at any moment leaves the previous complete checkpoint or the new one. The state
file is self-contained (it holds the training weights too), so resumption never depends on the
weights files; if ``weights/last.safetensors`` is from another step than the state (killed
between the two writes) it is rewritten from the state on resume.
"""

from __future__ import annotations

import json
import pickle
import random
import re
import zipfile
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from restoreae.errors import RestoreAEError
from restoreae.models.weights import RunPaths  # the layout, shared with every stage
from restoreae.utils import atomic_write, clean_stale_temp_files

STATE_FORMAT = 1


class CheckpointError(RestoreAEError):
    """A checkpoint or run folder is unreadable or inconsistent."""


_BEST_RE = re.compile(r"^best-(\d+)\.safetensors$")


def clean_temp_files(paths: RunPaths) -> list[Path]:
    """Delete temporary files left by a process killed mid-write; return what was removed."""
    removed: list[Path] = []
    for folder in (paths.root, paths.weights_dir, paths.state_dir):
        removed += clean_stale_temp_files(folder)
    return removed


# --------------------------------------------------------------------------- RNG state
def rng_state() -> dict[str, Any]:
    """Python, numpy, torch (and CUDA) global RNG states as weights_only-loadable data."""
    np_state = np.random.get_state(legacy=False)
    np_state = {
        "bit_generator": np_state["bit_generator"],
        "key": torch.from_numpy(np.asarray(np_state["state"]["key"]).astype(np.int64)),
        "pos": int(np_state["state"]["pos"]),
        "has_gauss": int(np_state["has_gauss"]),
        "gauss": float(np_state["gauss"]),
    }
    version, internal, gauss = random.getstate()
    state = {
        "python": {"version": version, "internal": list(internal), "gauss": gauss},
        "numpy": np_state,
        "torch": torch.get_rng_state(),
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what :func:`rng_state` saved (CUDA only when the device count matches)."""
    py = state["python"]
    random.setstate((py["version"], tuple(py["internal"]), py["gauss"]))
    n = state["numpy"]
    np.random.set_state(
        (
            n["bit_generator"],
            n["key"].numpy().astype(np.uint32),
            n["pos"],
            n["has_gauss"],
            n["gauss"],
        )
    )
    torch.set_rng_state(state["torch"])
    cuda = state.get("cuda")
    if cuda is not None and torch.cuda.is_available() and len(cuda) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda)


# --------------------------------------------------------------------------- weights
def export_metadata(
    *,
    img_size: int,
    in_chans: int,
    manifest: dict,
    step: int,
    epoch: int,
    val: dict[str, float] | None,
    ema: bool,
    reference_fit: str | None = None,
) -> dict[str, Any]:
    """Metadata stored with exported weights (keys used by eval/restore: see ARCHITECTURE.md).
    ``reference_fit``: how the reference is fitted to the glyph before the model sees it
    (``"box"``, :mod:`restoreae.data.reference_fit`), or None (as drawn)."""
    ref = manifest.get("reference") or {}
    meta: dict[str, Any] = {
        "img_size": int(img_size),
        "in_chans": int(in_chans),
        "reference_font": ref.get("font"),
        "reference_face_index": int(ref.get("face_index", 0) or 0),
        "traditional": bool(ref.get("traditional", False)),
        "corpus_size": manifest.get("size"),
        "charset": manifest.get("charset"),
        # Traditional-form characters in the corpus (their references drawn as given).
        "traditional_chars": int(manifest.get("n_traditional") or 0),
        # Writers the model never trained on: evaluation on them measures generalisation.
        "val_writers": list((manifest.get("splits") or {}).get("val_writers") or []),
        "test_writers": list((manifest.get("splits") or {}).get("test_writers") or []),
        "step": int(step),
        "epoch": int(epoch),
        "ema": bool(ema),
    }
    if reference_fit is not None:
        meta["reference_fit"] = reference_fit
    if val:
        meta.update({f"val_{k}": float(v) for k, v in val.items()})
    return meta


def save_weights(model: nn.Module, path: Path, metadata: dict[str, Any]) -> None:
    """Export ``model`` (in_chans/img_size in ``model.config``) to safetensors, atomically."""
    from restoreae.models.io import save_model

    save_model(model, path, metadata=metadata)


def read_weights_metadata(path: Path) -> dict[str, Any] | None:
    """Metadata of an exported weights file, or None when missing or unreadable."""
    if not path.is_file():
        return None
    from restoreae.models.io import read_header

    try:
        _, meta = read_header(path)
    except RestoreAEError:  # a corrupt or foreign file: treated as absent
        return None
    return dict(meta or {})


# --------------------------------------------------------------------------- state
def save_state(path: Path, state: dict[str, Any]) -> None:
    """``torch.save`` the training state atomically."""
    state = {"format": STATE_FORMAT, **state}
    atomic_write(path, lambda tmp: torch.save(state, tmp))


def load_state(path: Path) -> dict[str, Any]:
    """Load a training state written by :func:`save_state`; CheckpointError names the file.

    The file is checked before PyTorch reads it, so an empty, truncated or foreign file gets a
    message saying which (never PyTorch's advice to unpickle untrusted data).
    """
    path = Path(path)
    if not path.is_file():
        if path.exists():
            raise CheckpointError(f"training state '{path}' is a folder, not a file")
        raise CheckpointError(f"training state '{path}' not found")
    resume_hint = "delete it to start the run over, or resume from another state file"
    size = path.stat().st_size
    if size == 0:
        raise CheckpointError(
            f"training state '{path}' is empty (0 bytes): it was never written completely; "
            + resume_hint
        )
    with open(path, "rb") as f:
        magic = f.read(4)
    if magic != b"PK\x03\x04":
        raise CheckpointError(
            f"training state '{path}' is not a PyTorch checkpoint (it does not start like one: "
            "a different or damaged file); " + resume_hint
        )
    try:
        with zipfile.ZipFile(path) as zf:
            damaged = zf.testzip()
    except (zipfile.BadZipFile, OSError, EOFError, ValueError):
        damaged = "(its index)"
    if damaged is not None:
        raise CheckpointError(
            f"training state '{path}' is truncated or damaged ({size} bytes; {damaged} does not "
            "read back); " + resume_hint
        )
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError:
        raise CheckpointError(
            f"training state '{path}' holds objects other than tensors and plain data: not a "
            "restoreae training state, or from an incompatible version"
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, OSError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(f"training state '{path}' is unreadable ({reason})") from None
    if not isinstance(state, dict) or state.get("format") != STATE_FORMAT:
        raise CheckpointError(f"'{path}' is not a restoreae training state")
    return state


def update_best_k(
    best_k: list[list[float]], step: int, psnr: float, k: int
) -> tuple[list[list[float]], bool]:
    """Insert ``(psnr, step)`` into the best-k list (highest PSNR first, ties: earlier step).

    Returns the new list and whether this step entered it.
    """
    entries = [e for e in best_k if int(e[1]) != step] + [[float(psnr), float(step)]]
    entries.sort(key=lambda e: (-e[0], e[1]))
    entries = entries[:k]
    return entries, any(int(e[1]) == step for e in entries)


def prune_best_k(paths: RunPaths, best_k: list[list[float]]) -> None:
    """Delete ``weights/best-<step>.safetensors`` files whose step is not in ``best_k``."""
    keep = {int(e[1]) for e in best_k}
    if not paths.weights_dir.is_dir():
        return
    for f in paths.weights_dir.iterdir():
        m = _BEST_RE.match(f.name)
        if m and int(m.group(1)) not in keep:
            f.unlink(missing_ok=True)


def save_checkpoint(
    paths: RunPaths,
    export_model: nn.Module,
    state: dict[str, Any],
    metadata: dict[str, Any],
    *,
    is_best: bool,
    in_best_k: bool,
) -> None:
    """Write weights/last (+ best, best-<step>) then state/last.pt, each atomically."""
    step = int(state["step"])
    save_weights(export_model, paths.last_weights, metadata)
    if is_best:
        save_weights(export_model, paths.best_weights, metadata)
    if in_best_k:
        save_weights(export_model, paths.best_step_weights(step), metadata)
    prune_best_k(paths, state.get("best_k", []))
    save_state(paths.last_state, state)


# --------------------------------------------------------------------------- log.jsonl
def append_log(path: Path, record: dict[str, Any]) -> None:
    """Append one JSON line to ``log.jsonl`` (flushed)."""
    with open(path, "a", encoding="utf-8") as f:
        f.write(json.dumps(record, ensure_ascii=False) + "\n")
        f.flush()


def read_log(path: Path) -> list[dict[str, Any]]:
    """All complete records of ``log.jsonl`` (a torn last line is ignored)."""
    if not path.is_file():
        return []
    out = []
    for line in path.read_text(encoding="utf-8").splitlines():
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def truncate_log(path: Path, step: int) -> None:
    """Keep only records up to ``step`` (those written after the checkpoint are replayed)."""
    if not path.is_file():
        return
    keep = [r for r in read_log(path) if int(r.get("step", 0)) <= step]
    text = "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep)
    atomic_write(path, text.encode("utf-8"))


def find_state(path: Path) -> Path:
    """``--resume`` argument → the state file: a run folder, its ``state/`` or the file itself."""
    path = Path(path)
    for cand in (path, path / "state" / "last.pt", path / "last.pt"):
        if cand.is_file():
            return cand
    raise CheckpointError(f"no training state found at '{path}' (expected RUN_DIR/state/last.pt)")
