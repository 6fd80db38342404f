"""restoreae.cpu: large freed blocks stay in the process for reuse (Linux/glibc only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

SRC = str(Path(__file__).resolve().parents[1] / "src")
MIB = 1 << 20

# glibc's own accounting (mallinfo2) around one 64 MiB allocation: bytes in mmapped blocks while
# it lives, free bytes kept in the heap once it is freed.
_PROBE = """
import ctypes, json, sys
import numpy as np
from restoreae.cpu import keep_freed_memory

class Info(ctypes.Structure):
    _fields_ = [(n, ctypes.c_size_t) for n in (
        "arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
        "fordblks", "keepcost")]

libc = ctypes.CDLL("libc.so.6")
libc.mallinfo2.restype = Info
applied = [keep_freed_memory(), keep_freed_memory()] if sys.argv[1] == "keep" else []
a = np.ones(64 << 20, dtype=np.uint8)
mapped = libc.mallinfo2().hblkhd
del a
kept = libc.mallinfo2().fordblks
print(json.dumps({"applied": applied, "mapped": mapped, "kept": kept}))
"""


def _probe(mode: str) -> dict:
    env = {**os.environ, "PYTHONPATH": SRC}
    out = subprocess.run(
        [sys.executable, "-c", _PROBE, mode], env=env, capture_output=True, text=True, check=True
    )
    return json.loads(out.stdout)


def _glibc_with_mallinfo2() -> bool:
    try:
        version = os.confstr("CS_GNU_LIBC_VERSION") or ""  # e.g. "glibc 2.36"
    except (ValueError, OSError, AttributeError):
        return False
    parts = version.split()
    if len(parts) != 2 or parts[0] != "glibc":
        return False
    major, minor = (int(p) for p in parts[1].split(".")[:2])
    return (major, minor) >= (2, 33)


@pytest.mark.skipif(not _glibc_with_mallinfo2(), reason="needs glibc >= 2.33 (mallinfo2)")
def test_keep_freed_memory_keeps_large_blocks_in_the_heap() -> None:
    default, keep = _probe("default"), _probe("keep")
    # glibc by default maps a block this large on its own and unmaps it on free ...
    assert default["mapped"] >= 64 * MIB and default["kept"] < 64 * MIB
    # ... with keep_freed_memory it comes from the heap and stays there, free, for reuse
    assert keep["applied"] == [True, True]  # applied, idempotent
    assert keep["mapped"] < 64 * MIB and keep["kept"] >= 64 * MIB
