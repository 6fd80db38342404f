"""Inference backends: PyTorch and ONNX Runtime behind one interface, and the choice between them.

A backend is called with a ``float32`` numpy batch ``(B, C, S, S)`` in ``[0, 1]`` (channel 0: the
damaged glyph, channel 1 (optional): the reference; white ink = 1 on black = 0) and returns
whatever the model outputs, ``float32 (B, K, S, S)`` in ``[0, 1]``, same polarity (K = 1: the
restored glyph; K = 2 for composite models: restored content and restoration mask, see
:func:`restoreae.models.io.for_inference`). Both carry
the model's ``metadata`` (``img_size``, ``in_chans``, ``reference_font``,
``reference_face_index``, ``traditional``, ...).

:func:`open_backend` picks the backend for a resolved model spec: ``auto`` runs ONNX Runtime on the
CPU (faster there, and the process never imports torch once the export is cached, see
:func:`restoreae.restore.export.cached_onnx`) and PyTorch on other devices.
"""

from __future__ import annotations

import importlib.util
import json
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING, Protocol

import numpy as np

from restoreae.errors import RestoreAEError

if TYPE_CHECKING:
    from restoreae.models.weights import ModelSource

#: Key of the JSON metadata stored in an exported ONNX file's ``metadata_props``.
ONNX_METADATA_KEY = "restoreae"


class Backend(Protocol):
    """What :class:`~restoreae.restore.api.Restorer` needs from a backend."""

    metadata: dict
    img_size: int
    in_chans: int

    def __call__(self, batch: np.ndarray) -> np.ndarray: ...


def _complete_metadata(metadata: dict, config: dict | None, source: str) -> dict:
    """Fill ``img_size`` / ``in_chans`` from the model config when the metadata lacks them."""
    from restoreae.models.checks import check_metadata

    meta = dict(check_metadata(dict(metadata or {}), source))
    config = config or {}
    for key in ("img_size", "in_chans"):
        if meta.get(key) is None and config.get(key) is not None:
            meta[key] = config[key]
    for key in ("img_size", "in_chans"):
        if meta.get(key) is None:
            raise RestoreAEError(f"{source}: model metadata lacks '{key}'")
        meta[key] = int(meta[key])
    check_metadata(meta, source)
    if meta["in_chans"] not in (1, 2):
        raise RestoreAEError(f"{source}: in_chans must be 1 or 2, got {meta['in_chans']}")
    return meta


def _check_batch(batch: np.ndarray, in_chans: int, size: int) -> np.ndarray:
    batch = np.ascontiguousarray(batch, dtype=np.float32)
    if batch.ndim != 4 or batch.shape[1:] != (in_chans, size, size):
        raise RestoreAEError(
            f"expected a batch of shape (B, {in_chans}, {size}, {size}), got {batch.shape}"
        )
    return batch


class TorchBackend:
    """PyTorch backend: ``restoreae.models.io.load_model``; batched, ``no_grad``, channels_last.

    ``source``: a ``.safetensors`` path or a resolved :class:`~restoreae.models.weights.ModelSource`
    (``ARCH:FILE`` specs need the latter). ``threads``: when given, ``torch.set_num_threads``
    (process-wide) is set to it. ``.model`` is the loaded ``nn.Module``. On the CPU the
    process keeps freed memory for reuse (:func:`restoreae.cpu.keep_freed_memory`, process-wide):
    without it a batch of 64 at 224 px spends about half its CPU time faulting in fresh pages.
    """

    def __init__(
        self,
        source: str | os.PathLike | ModelSource,
        device: str = "cpu",
        threads: int | None = None,
    ) -> None:
        import torch

        from restoreae.models.io import for_inference, load_model

        if threads is not None:
            torch.set_num_threads(int(threads))
        path = getattr(source, "path", source)
        arch = getattr(source, "arch", None)
        self.path = Path(path)
        self.device = torch.device(device)
        if self.device.type == "cpu":
            from restoreae.cpu import keep_freed_memory

            keep_freed_memory()
        model, metadata = load_model(self.path, device=str(self.device), arch=arch)
        self.model = for_inference(model).to(self.device, memory_format=torch.channels_last)
        self.metadata = _complete_metadata(metadata, getattr(model, "config", None), str(self.path))
        self.img_size = self.metadata["img_size"]
        self.in_chans = self.metadata["in_chans"]

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """``batch`` float32 (B, C, S, S) in [0, 1] → the model's float32 (B, K, S, S) in [0, 1]."""
        import torch

        batch = _check_batch(batch, self.in_chans, self.img_size)
        with torch.inference_mode():
            x = torch.from_numpy(batch).to(self.device)
            x = x.contiguous(memory_format=torch.channels_last)
            y = self.model(x)
        return y.float().contiguous().cpu().numpy()


class OnnxBackend:
    """ONNX Runtime backend (``CPUExecutionProvider``) for a file written by ``restoreae export``.

    ``source``: the ``.onnx`` path or the serialized model bytes. ``metadata``: overrides the
    metadata stored in the file (needed only for files exported by other tools).
    """

    def __init__(
        self,
        source: str | os.PathLike | bytes,
        threads: int | None = None,
        metadata: dict | None = None,
    ) -> None:
        import onnxruntime as ort

        name = "<onnx bytes>" if isinstance(source, bytes) else str(source)
        if not isinstance(source, bytes) and not Path(source).is_file():
            raise RestoreAEError(f"{name}: no such ONNX file")
        opts = ort.SessionOptions()
        opts.log_severity_level = 3
        if threads is not None:
            opts.intra_op_num_threads = int(threads)
            opts.inter_op_num_threads = 1
        try:
            self.session = ort.InferenceSession(
                source if isinstance(source, bytes) else str(source),
                sess_options=opts,
                providers=["CPUExecutionProvider"],
            )
        except Exception as exc:  # onnxruntime raises its own exception types
            raise RestoreAEError(f"{name}: cannot load ONNX model ({exc})") from exc
        stored = self.session.get_modelmeta().custom_metadata_map.get(ONNX_METADATA_KEY)
        meta = dict(json.loads(stored)) if stored else {}
        meta.update(metadata or {})
        inp = self.session.get_inputs()[0]
        shape = inp.shape
        if meta.get("in_chans") is None and isinstance(shape[1], int):
            meta["in_chans"] = shape[1]
        if meta.get("img_size") is None and isinstance(shape[2], int):
            meta["img_size"] = shape[2]
        self.metadata = _complete_metadata(meta, None, name)
        self.img_size = self.metadata["img_size"]
        self.in_chans = self.metadata["in_chans"]
        self.input_name = inp.name
        self.path = None if isinstance(source, bytes) else Path(source)

    def __call__(self, batch: np.ndarray) -> np.ndarray:
        """``batch`` float32 (B, C, S, S) in [0, 1] → the model's float32 (B, K, S, S) in [0, 1]."""
        batch = _check_batch(batch, self.in_chans, self.img_size)
        (y,) = self.session.run(None, {self.input_name: batch})[:1]
        return np.asarray(y, dtype=np.float32)


BACKENDS = ("auto", "onnx", "torch")


def onnxruntime_available() -> bool:
    """Whether ONNX Runtime is installed (checked without importing it)."""
    return importlib.util.find_spec("onnxruntime") is not None


def open_backend(
    source: ModelSource,
    backend: str = "auto",
    device: str = "cpu",
    threads: int | None = None,
) -> TorchBackend | OnnxBackend:
    """The backend that runs ``source`` (a resolved model spec).

    ``backend``: ``"onnx"`` (ONNX Runtime on the CPU; a ``.safetensors`` model is exported once and
    the export cached, see :func:`restoreae.restore.export.cached_onnx`), ``"torch"`` (PyTorch on
    ``device``) or ``"auto"``: ONNX Runtime when ``device`` is ``cpu`` and ONNX Runtime is
    installed, else PyTorch; when the export fails under ``auto`` a warning is given and PyTorch
    runs the model. A ``.onnx`` file always runs on ONNX Runtime.
    """
    if backend not in BACKENDS:
        raise RestoreAEError(f"backend must be one of {', '.join(BACKENDS)}, got {backend!r}")
    on_cpu = str(device) == "cpu"
    if source.format == "onnx":
        if backend == "torch":
            raise RestoreAEError(f"{source.path}: an ONNX file runs with the onnx backend only")
        if not on_cpu:
            raise RestoreAEError(f"{source.path}: ONNX models run on the CPU only (not {device})")
        return OnnxBackend(source.path, threads=threads)
    if backend == "onnx" and not on_cpu:
        raise RestoreAEError(f"the onnx backend runs on the CPU only (not {device})")
    use_onnx = backend == "onnx" or (backend == "auto" and on_cpu and onnxruntime_available())
    if not use_onnx:
        return TorchBackend(source, device=device, threads=threads)
    from restoreae.restore.export import cached_onnx

    try:
        return cached_onnx(source, threads=threads)
    except RestoreAEError as exc:
        if backend == "onnx":
            raise
        warnings.warn(f"ONNX Runtime cannot run {source.path} ({exc}); using PyTorch", stacklevel=2)
        return TorchBackend(source, device=device, threads=threads)
