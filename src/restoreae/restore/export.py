"""ONNX export of a restoration model, checked against PyTorch, and the cached export.

``restoreae export MODEL --onnx out.onnx`` (MODEL: any model spec, see
:mod:`restoreae.models.weights`) writes an ONNX file with a dynamic batch axis and a fixed
``(C, S, S)`` input (``input``: float32 (B, C, S, S) in [0, 1], white ink on black → ``output``:
float32 (B, K, S, S) in [0, 1], K = 1, or 2 = (content, mask) for composite models, see
:func:`restoreae.models.io.for_inference`). The model's metadata (img_size, in_chans, reference
font, traditional, ...) plus ``model`` (the architecture) and ``weights_sha256`` (the
weights file's digest) is stored as JSON under the ``restoreae`` key of the file's
``metadata_props``, so :class:`~restoreae.restore.backends.OnnxBackend` needs nothing else.
The export is checked by running ONNX Runtime and PyTorch on the same batch (random values plus a
rendered glyph); it fails when the largest absolute difference exceeds ``1e-3``.

:func:`cached_onnx` is what the default CPU backend uses: the export of a ``.safetensors`` model is
made once (that call imports torch), checked, and kept beside the weights as
``<weights>.safetensors.onnx``, or under the user cache folder (``$RESTOREAE_CACHE_DIR``, else
``$XDG_CACHE_HOME/restoreae``, else ``~/.cache/restoreae``) as ``onnx/<sha256>.onnx`` when the
weights' folder is not writable. A cached file is used only when its ``weights_sha256`` matches
the weights as they are now; otherwise it is exported again.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import sys
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from restoreae.errors import RestoreAEError
from restoreae.restore.backends import ONNX_METADATA_KEY, OnnxBackend
from restoreae.utils import atomic_write

if TYPE_CHECKING:
    from restoreae.models.weights import ModelSource

log = logging.getLogger(__name__)

#: Largest accepted |ONNX Runtime − PyTorch| on the check batch.
TOLERANCE = 1e-3
DEFAULT_OPSET = 18
#: Metadata key holding the SHA-256 of the weights an ONNX file was exported from.
DIGEST_KEY = "weights_sha256"


def onnx_bytes(model, metadata: dict, opset: int = DEFAULT_OPSET) -> bytes:
    """Serialize ``model`` (eval mode, input (B, C, S, S) float32) to ONNX bytes.

    The batch axis is dynamic; C and S come from ``metadata['in_chans']`` / ``['img_size']``.
    """
    import onnx
    import torch

    size, chans = int(metadata["img_size"]), int(metadata["in_chans"])
    model = model.eval().to("cpu", memory_format=torch.contiguous_format)
    example = torch.rand(2, chans, size, size, generator=torch.Generator().manual_seed(0))
    # The TorchScript exporter (deprecated upstream but present in the pinned torch) exports these
    # conv nets in seconds; the dynamo exporter takes 5-10x longer. It is the fallback.
    buf = io.BytesIO()
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(
                model,
                (example,),
                buf,
                input_names=["input"],
                output_names=["output"],
                opset_version=opset,
                dynamic_axes={"input": {0: "batch"}, "output": {0: "batch"}},
                dynamo=False,
            )
        proto = onnx.load_from_string(buf.getvalue())
    except Exception:  # noqa: BLE001 - fall back to the dynamo exporter
        proto = _dynamo_export(model, example, opset)
    meta = {}
    for k, v in metadata.items():
        try:
            json.dumps(v)
        except (TypeError, ValueError):
            continue  # not JSON data: left out of the file
        meta[k] = v
    entry = proto.metadata_props.add()
    entry.key = ONNX_METADATA_KEY
    entry.value = json.dumps(meta, ensure_ascii=False)
    return proto.SerializeToString()


def _dynamo_export(model, example, opset: int):
    import torch

    sink = io.StringIO()
    try:
        with contextlib.redirect_stdout(sink), warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            program = torch.onnx.export(
                model,
                (example,),
                None,
                input_names=["input"],
                output_names=["output"],
                opset_version=opset,
                dynamic_shapes=({0: torch.export.Dim("batch", min=1, max=4096)},),
                dynamo=True,
                verbose=False,
            )
    except Exception as exc:
        name = getattr(model, "config", {}).get("name", type(model).__name__)
        raise RestoreAEError(f"ONNX export failed for model {name}: {exc}") from exc
    return program.model_proto


def check_batch(metadata: dict, batch_size: int = 3, seed: int = 0) -> np.ndarray:
    """A float32 (B, C, S, S) check batch in [0, 1]: random values, and a rendered glyph in row 0
    when the project's fonts can draw one."""
    size, chans = int(metadata["img_size"]), int(metadata["in_chans"])
    rng = np.random.default_rng(seed)
    batch = rng.random((batch_size, chans, size, size), dtype=np.float32)
    try:
        from restoreae.data.reference import ReferenceRenderer

        glyph = ReferenceRenderer(size=size).render("永").astype(np.float32) / 255.0
        batch[0, :] = glyph
    except Exception:  # noqa: BLE001 - the random rows still check the export
        pass
    return batch


def max_abs_diff(model, onnx_model: bytes | str | os.PathLike, batch: np.ndarray) -> float:
    """Largest |ONNX Runtime − PyTorch| of ``model`` on ``batch`` float32 (B, C, S, S)."""
    import torch

    backend = OnnxBackend(onnx_model)
    with torch.no_grad():
        ref = model.eval()(torch.from_numpy(batch)).float().numpy()
    got = backend(batch)
    if got.shape != ref.shape:
        raise RestoreAEError(f"ONNX output shape {got.shape} differs from PyTorch's {ref.shape}")
    return float(np.abs(got - ref).max())


def checked_onnx_bytes(
    model,
    metadata: dict,
    name: str,
    opset: int = DEFAULT_OPSET,
    tolerance: float = TOLERANCE,
) -> tuple[bytes, float]:
    """``(onnx bytes, max abs difference)`` of ``model``; raises :class:`RestoreAEError` naming
    ``name`` when ONNX Runtime differs from PyTorch by more than ``tolerance``."""
    data = onnx_bytes(model, metadata, opset=opset)
    diff = max_abs_diff(model, data, check_batch(metadata))
    if not np.isfinite(diff) or diff > tolerance:
        raise RestoreAEError(
            f"{name}: ONNX Runtime output differs from PyTorch by {diff:.3g} (> {tolerance:g})"
        )
    return data, diff


def export_onnx(
    model,
    metadata: dict,
    out: str | os.PathLike,
    opset: int = DEFAULT_OPSET,
    tolerance: float = TOLERANCE,
) -> float:
    """Export ``model`` to ``out`` (atomically) after checking it; returns the max abs difference.

    Raises :class:`RestoreAEError` (nothing is written) when the difference exceeds
    ``tolerance``.
    """
    try:
        data, diff = checked_onnx_bytes(model, metadata, str(out), opset, tolerance)
    except RestoreAEError as exc:
        raise RestoreAEError(f"{exc}; file not written") from None
    atomic_write(out, data)
    return diff


def load_for_export(source: ModelSource) -> tuple[object, dict]:
    """``(model on the CPU in eval mode, metadata)`` of a ``.safetensors`` model source, the
    metadata completed with ``img_size``, ``in_chans``, ``model`` and ``weights_sha256``."""
    from restoreae.models.io import for_inference, load_model
    from restoreae.restore.backends import _complete_metadata

    if source.format != "safetensors":
        raise RestoreAEError(f"{source.path}: already an ONNX model (export needs .safetensors)")
    model, metadata = load_model(source.path, device="cpu", arch=source.arch)
    model = for_inference(model)  # composite models: (content, mask), composited by Restorer
    config = getattr(model, "config", None) or {}
    metadata = _complete_metadata(metadata, config, str(source.path))
    metadata["model"] = config.get("name", source.arch)
    metadata[DIGEST_KEY] = source.digest()
    return model, metadata


def onnx_cache_dir() -> Path:
    """The user cache folder for ONNX exports of read-only weights."""
    env = os.environ.get("RESTOREAE_CACHE_DIR")
    if env:
        base = Path(env).expanduser()
    else:
        xdg = os.environ.get("XDG_CACHE_HOME")
        base = (Path(xdg) if xdg else Path.home() / ".cache") / "restoreae"
    return base / "onnx"


def cache_locations(source: ModelSource, digest: str) -> tuple[Path, Path]:
    """Where the export of ``source`` is cached: ``(beside the weights, user cache folder)``."""
    beside = source.path.with_name(source.path.name + ".onnx")
    return beside, onnx_cache_dir() / f"{digest}.onnx"


def cached_onnx(source: ModelSource, threads: int | None = None) -> OnnxBackend:
    """An :class:`OnnxBackend` for ``source``, from the cached export when it is current.

    Only a cache miss (first use, or weights changed since) imports torch: the model is then
    exported, checked against PyTorch (:data:`TOLERANCE`) and written to the first writable of
    :func:`cache_locations` (kept in memory, with a warning, when neither is writable).
    """
    digest = source.digest()
    places = cache_locations(source, digest)
    for place in places:
        if not place.is_file():
            continue
        try:
            backend = OnnxBackend(place, threads=threads)
        except RestoreAEError:
            continue  # unreadable (e.g. cut short by a full disk): export again
        if backend.metadata.get(DIGEST_KEY) == digest:
            return backend
    model, metadata = load_for_export(source)
    data, diff = checked_onnx_bytes(model, metadata, str(source.path))
    errors = []
    for place in places:
        try:
            atomic_write(place, data)
        except OSError as exc:
            errors.append(f"{place}: {exc}")
            continue
        log.info("exported %s to %s (max |onnxruntime - torch| = %.2e)", source.path, place, diff)
        return OnnxBackend(place, threads=threads)
    warnings.warn(
        f"cannot cache the ONNX export of {source.path} ({'; '.join(errors)}); "
        "it is exported again in every process",
        stacklevel=2,
    )
    return OnnxBackend(data, threads=threads)


def export_command(args: argparse.Namespace) -> int:
    """``restoreae export MODEL --onnx OUT [--opset N]``."""
    from restoreae.models.weights import resolve_weights

    source = resolve_weights(args.checkpoint)
    model, metadata = load_for_export(source)
    opset = int(getattr(args, "opset", None) or DEFAULT_OPSET)
    diff = export_onnx(model, metadata, args.onnx, opset=opset)
    size = Path(args.onnx).stat().st_size
    print(
        f"wrote {args.onnx} ({size / 1e6:.1f} MB, opset {opset}, input (B, "
        f"{metadata['in_chans']}, {metadata['img_size']}, {metadata['img_size']})); "
        f"max |onnxruntime - torch| = {diff:.2e}",
        file=sys.stdout,
    )
    return 0
