"""What ``restoreae eval`` evaluates: candidates (models and baselines) and how they are timed.

A :class:`Candidate` restores uint8 glyph stacks (white on black): the ``identity`` and
``classical`` baselines, or any model spec (:func:`restoreae.models.weights.resolve_weights`) run
by the same backends as ``restoreae restore`` (:mod:`restoreae.restore.backends`) through
:class:`GlyphRunner`. :func:`measure_latency` gives the CPU figures of the leaderboard.
"""

from __future__ import annotations

import copy
import statistics
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from restoreae.errors import RestoreAEError
from restoreae.evaluate.baselines import classical_restore, identity_restore

__all__ = [
    "Candidate",
    "GlyphRunner",
    "RestoreFn",
    "baselines",
    "count_gflops",
    "load_candidate",
    "measure_latency",
    "resolve_device",
]

RestoreFn = Callable[[np.ndarray, np.ndarray], np.ndarray]


def resolve_device(spec: str) -> Any:
    """``auto`` → CUDA when available, else CPU; otherwise ``torch.device(spec)``."""
    import torch

    if spec == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(spec)
    except RuntimeError as exc:
        raise RestoreAEError(f"--device: {exc}") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise RestoreAEError(f"--device {spec}: CUDA is not available")
    return dev


class GlyphRunner:
    """Runs a restore backend (:mod:`restoreae.restore.backends`) on uint8 glyph stacks.

    ``__call__(damaged, reference)``: uint8 ``(N, S, S)`` each, white on black → uint8
    ``(N, S, S)``, the restored glyph: the model's output, or for composite models (backend output
    ``(B, 2, S, S)`` = content, mask) ``mask · content + (1 − mask) · damaged`` as the model's own
    forward composes it. Inputs are scaled to
    ``[0, 1]``; channel 1 is the reference glyph when the model takes 2 channels (fitted to the
    damaged glyph when the model's metadata says ``reference_fit``); glyphs are
    resized to the model's ``img_size`` (area down, bilinear up) and the output back to ``S``
    when they differ. Batches of ``batch_size``.
    """

    def __init__(self, backend: Any, batch_size: int = 64) -> None:
        self.backend = backend
        self.in_chans = int(backend.in_chans)
        self.img_size = int(backend.img_size)
        self.batch_size = max(1, int(batch_size))
        self.reference_fit = (getattr(backend, "metadata", None) or {}).get("reference_fit")

    @staticmethod
    def _resize(stack: np.ndarray, size: int) -> np.ndarray:
        import cv2

        if stack.shape[-1] == size and stack.shape[-2] == size:
            return stack
        interp = cv2.INTER_AREA if size < stack.shape[-1] else cv2.INTER_LINEAR
        return np.stack([cv2.resize(g, (size, size), interpolation=interp) for g in stack])

    def __call__(self, damaged: np.ndarray, reference: np.ndarray) -> np.ndarray:
        s = damaged.shape[-1]
        out = np.empty_like(damaged)
        for i in range(0, len(damaged), self.batch_size):
            j = i + self.batch_size
            x = np.zeros((len(damaged[i:j]), self.in_chans, s, s), np.float32)
            x[:, 0] = damaged[i:j] / np.float32(255.0)
            if self.in_chans == 2:
                x[:, 1] = reference[i:j] / np.float32(255.0)
            x = self._resize(x.reshape(-1, s, s), self.img_size)
            x = x.reshape(-1, self.in_chans, self.img_size, self.img_size)
            if self.in_chans == 2 and self.reference_fit == "box":
                from restoreae.data.reference_fit import fit_reference_np

                for k in range(len(x)):
                    x[k, 1] = fit_reference_np(x[k, 1], x[k, 0])
            y = self.backend(x)
            # composite models give (content, mask): compose them as the model's forward does
            y = y[:, 1] * y[:, 0] + (1.0 - y[:, 1]) * x[:, 0] if y.shape[1] == 2 else y[:, 0]
            y = self._resize(np.ascontiguousarray(y, dtype=np.float32), s)
            out[i:j] = np.rint(np.clip(y, 0.0, 1.0) * 255.0).astype(np.uint8)
        return out


def count_gflops(model: Any, in_chans: int, size: int) -> float | None:
    """GFLOPs of one forward pass on one ``size``×``size`` glyph, on the CPU (2 × MACs, see
    :func:`restoreae.models.io.gflops`); None when counting fails (the figure is informative)."""
    from restoreae.models.io import gflops

    try:
        return float(gflops(copy.deepcopy(model).cpu(), img_size=size, in_chans=in_chans))
    except Exception:  # noqa: BLE001
        return None


@dataclass
class Candidate:
    """A restoration method under evaluation: ``restore(damaged, reference)`` on uint8 stacks."""

    name: str
    kind: str
    source: str
    restore: RestoreFn
    cpu_restore: RestoreFn
    params: int | None = 0
    gflops: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


def load_candidate(
    spec: str,
    device: Any,
    batch_size: int,
    corpus_reference: dict | None = None,
) -> Candidate:
    """Load a model spec (see :func:`restoreae.models.weights.resolve_weights`) as a
    :class:`Candidate`: PyTorch on ``device`` (and on the CPU for the latency figures), or ONNX
    Runtime on the CPU for an ``.onnx`` file (no parameter or FLOP count then).

    ``corpus_reference``: the corpus manifest's ``reference`` entry; a 2-channel model trained
    with a different reference script (``traditional``) gets a warning on stderr, since it is fed
    the corpus's reference glyphs.
    """
    from restoreae.models.weights import resolve_weights
    from restoreae.restore.backends import open_backend

    source = resolve_weights(spec)
    if source.format == "onnx":
        backend = cpu_backend = open_backend(source, "onnx", "cpu")
    else:
        backend = open_backend(source, "torch", str(device))
        cpu_backend = backend if device.type == "cpu" else open_backend(source, "torch", "cpu")
    meta = dict(backend.metadata)
    in_chans, img_size = backend.in_chans, backend.img_size
    corpus_trad = bool((corpus_reference or {}).get("traditional", False))
    if in_chans == 2 and "traditional" in meta and bool(meta["traditional"]) != corpus_trad:
        print(
            f"warning: {source.path} was trained with traditional={meta['traditional']} "
            f"reference glyphs, the corpus reference has traditional={corpus_trad}",
            file=sys.stderr,
        )
    model = getattr(cpu_backend, "model", None)
    params = sum(p.numel() for p in model.parameters()) if model is not None else None
    gflops = count_gflops(model, in_chans, img_size) if model is not None else None
    restorer = GlyphRunner(backend, batch_size)
    cpu_restorer = restorer if cpu_backend is backend else GlyphRunner(cpu_backend, batch_size)
    cfg = dict(getattr(model, "config", {}) or {})
    return Candidate(
        name=source.name,
        kind="checkpoint",
        source=str(source.path),
        restore=restorer,
        cpu_restore=cpu_restorer,
        params=params,
        gflops=gflops,
        extra={
            "model": cfg.get("name", meta.get("model")),
            "in_chans": in_chans,
            "img_size": img_size,
            "backend": "onnx" if source.format == "onnx" else "torch",
        },
    )


def baselines() -> list[Candidate]:
    """The ``identity`` (damaged input as is) and ``classical`` (median, open, close,
    threshold) baselines."""

    def ident(d: np.ndarray, r: np.ndarray) -> np.ndarray:
        return identity_restore(d)

    def classical(d: np.ndarray, r: np.ndarray) -> np.ndarray:
        return classical_restore(d)

    return [
        Candidate("identity", "baseline", "damaged input", ident, ident),
        Candidate(
            "classical", "baseline", "median + open + close + threshold", classical, classical
        ),
    ]


def measure_latency(
    fn: RestoreFn, damaged: np.ndarray, reference: np.ndarray, batch_size: int
) -> dict[str, float | int]:
    """CPU milliseconds per glyph of ``fn`` at batch 1 and at ``batch_size`` (medians).

    Batch 1: 2 warm-up calls, then up to 20 timed calls (stopping after ~1 s). Batched: 1
    warm-up, then up to 3 timed calls (stopping after ~2 s).
    """

    def timed(d: np.ndarray, r: np.ndarray, warm: int, runs: int, budget: float) -> float:
        for _ in range(warm):
            fn(d, r)
        times: list[float] = []
        start = time.perf_counter()
        while len(times) < runs and (not times or time.perf_counter() - start < budget):
            t0 = time.perf_counter()
            fn(d, r)
            times.append(time.perf_counter() - t0)
        return statistics.median(times) * 1000.0 / len(d)

    b = max(1, min(batch_size, len(damaged)))
    reps = -(-b // len(damaged))
    dmg = np.concatenate([damaged] * reps)[:b]
    ref = np.concatenate([reference] * reps)[:b]
    return {
        "batch1": timed(damaged[:1], reference[:1], 2, 20, 1.0),
        "batched": timed(dmg, ref, 1, 3, 2.0),
        "batch_size": b,
    }
