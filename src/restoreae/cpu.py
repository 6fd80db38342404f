"""CPU runtime settings for training and inference processes (allocator behaviour).

glibc's ``malloc`` serves every block above its mmap threshold (128 KiB at first, adapting up to
32 MiB) with a fresh ``mmap`` and gives it back with ``munmap`` on ``free``. A CPU training step
allocates and frees hundreds of such activation blocks (tens of MiB each at 224 px, batch 32), so
every step the kernel maps and zero-fills those pages again: minor page faults, seen as system
time (docs/PERFORMANCE.md, "Where the time goes"). :func:`keep_freed_memory` makes freed memory
stay in the process and be reused instead, as the caching allocators of CUDA, jemalloc or
tcmalloc do. The resident size then stays at the step's peak instead of dropping between steps.
"""

from __future__ import annotations

import ctypes
import sys

_M_TRIM_THRESHOLD = -1
_M_MMAP_MAX = -4
_applied = False


def keep_freed_memory() -> bool:
    """Tell glibc to serve large blocks from its heap and never return freed heap to the OS.

    Process-wide and irreversible; idempotent. Returns True when applied, False where it does not
    apply (not Linux/glibc, e.g. macOS, Windows or musl).
    """
    global _applied
    if _applied:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL("libc.so.6")
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    mallopt.restype = ctypes.c_int
    # mallopt returns 1 on success; on glibc both settings are always accepted.
    _applied = bool(mallopt(_M_MMAP_MAX, 0)) and bool(mallopt(_M_TRIM_THRESHOLD, 2**31 - 1))
    return _applied
