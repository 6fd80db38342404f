"""Checking a ``--device`` value before anything is loaded on it.

Torch is imported only for a value other than ``cpu`` (the ONNX path never needs it).
"""

from __future__ import annotations

import re

from restoreae.errors import RestoreAEError

_DEVICE = re.compile(r"^(cpu|auto|mps|cuda)(:(\d+))?$")


def check_device(device: str, flag: str = "--device", allow_auto: bool = False) -> str:
    """Return ``device`` normalised (``cpu``, ``cuda``, ``cuda:N``, ``mps``; ``auto`` when
    ``allow_auto``) or raise :class:`RestoreAEError` with one line saying what is wrong: an
    unknown name, a GPU index that does not exist, or a GPU this machine does not have."""
    value = str(device).strip().lower()
    m = _DEVICE.match(value)
    kinds = "cpu, cuda, cuda:N, mps" + (" or auto" if allow_auto else "")
    if m is None or (m.group(2) and m.group(1) != "cuda"):
        raise RestoreAEError(f"{flag} {device!r}: unknown device; expected {kinds}")
    kind, index = m.group(1), m.group(3)
    if kind == "auto":
        if not allow_auto:
            raise RestoreAEError(f"{flag} auto is not accepted here; expected {kinds}")
        return value
    if kind == "cpu":
        return value
    import torch

    if kind == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise RestoreAEError(f"{flag} mps: no Apple GPU (MPS) is available here; use cpu")
        return value
    if not torch.cuda.is_available():
        raise RestoreAEError(
            f"{flag} {device}: no CUDA GPU is available here (or this PyTorch has no CUDA "
            "support); use --device cpu"
        )
    count = torch.cuda.device_count()
    if index is not None and int(index) >= count:
        raise RestoreAEError(
            f"{flag} {device}: this machine has {count} CUDA GPU(s), numbered 0 to {count - 1}"
        )
    return value
