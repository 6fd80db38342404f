"""ONNX export of a restoration model, checked against PyTorch.

``restoreae export CHECKPOINT|default --onnx out.onnx`` writes an ONNX file with a dynamic batch
axis and a fixed ``(C, S, S)`` input (``input``: float32 (B, C, S, S) in [0, 1], white ink on
black → ``output``: float32 (B, K, S, S) in [0, 1], K = 1, or 2 = (content, mask) for composite
models). The model's metadata (img_size, in_chans,
reference font, traditional) is stored as JSON under the ``restoreae`` key of the file's
``metadata_props``, so :class:`~restoreae.restore.backends.OnnxBackend` needs nothing else.
The export is checked by running ONNX Runtime and PyTorch on the same batch (random values plus a
rendered glyph); it fails when the largest absolute difference exceeds ``1e-3``.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import sys
import warnings
from pathlib import Path

import numpy as np

from restoreae.errors import RestoreAEError
from restoreae.restore.backends import ONNX_METADATA_KEY, OnnxBackend
from restoreae.utils import atomic_write

#: Largest accepted |ONNX Runtime − PyTorch| on the check batch.
TOLERANCE = 1e-3
DEFAULT_OPSET = 18


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
    meta = {
        k: v for k, v in metadata.items() if isinstance(v, str | int | float | bool) or v is None
    }
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
    data = onnx_bytes(model, metadata, opset=opset)
    diff = max_abs_diff(model, data, check_batch(metadata))
    if not np.isfinite(diff) or diff > tolerance:
        raise RestoreAEError(
            f"{out}: ONNX Runtime output differs from PyTorch by {diff:.3g} (> {tolerance:g}); "
            "file not written"
        )
    atomic_write(out, data)
    return diff


def export_command(args: argparse.Namespace) -> int:
    """``restoreae export CHECKPOINT|default --onnx OUT [--opset N]``."""
    from restoreae.models.io import for_inference, load_model
    from restoreae.restore.api import resolve_model_path
    from restoreae.restore.backends import _complete_metadata

    path = resolve_model_path(args.checkpoint)
    model, metadata = load_model(path, device="cpu")
    model = for_inference(model)
    metadata = _complete_metadata(metadata, getattr(model, "config", None), str(path))
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
