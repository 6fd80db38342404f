"""Small shared helpers: reading the text files users name, atomic and durable file writes and
the clean-up of their leftovers.

Every file the package writes goes through :func:`atomic_write`: the new content is written to a
hidden temporary file ``.NAME.XXXXXXXX.tmp`` in the destination folder, flushed to the disk
(``fsync`` of the file), renamed over ``NAME`` with ``os.replace`` and the folder is ``fsync``-ed
so that the rename itself is on the disk. A process killed at any moment, or a machine losing
power, leaves the old file or the new one, never a torn one; at worst a temporary file is left
behind, which :func:`clean_stale_temp_files` removes the next time the folder is written to.
"""

from __future__ import annotations

import csv
import errno
import os
import re
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from restoreae.errors import RestoreAEError

#: Names of the temporary files of :func:`atomic_write` (``tempfile.mkstemp``'s 8 random
#: characters between ``.NAME.`` and ``.tmp``).
TEMP_NAME = re.compile(r"^\..+\.[A-Za-z0-9_]{8}\.tmp$")
#: A failed write is blamed on a full disk when less than this many bytes are free afterwards.
_LOW_SPACE_BYTES = 1 << 20


class DiskFullError(RestoreAEError, OSError):
    """A write failed because the file system is full (``ENOSPC`` or a library's own wording)."""


def read_user_text(
    path: str | os.PathLike, kind: str, error: type[RestoreAEError] = RestoreAEError
) -> str:
    """The UTF-8 text (a byte-order mark dropped) of a file the user named. Raises ``error``
    naming the file: "no such ``kind``", or why it cannot be read as UTF-8 text."""
    path = Path(path)
    try:
        return path.read_text(encoding="utf-8-sig")
    except FileNotFoundError:
        raise error(f"{path}: no such {kind}") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise error(f"{path}: cannot read as UTF-8 text ({exc})") from exc


def read_user_csv(
    path: str | os.PathLike, kind: str, error: type[RestoreAEError] = RestoreAEError
) -> list[list[str]]:
    """The rows of a CSV file the user named (see :func:`read_user_text`); a malformed CSV
    raises ``error`` naming the file."""
    text = read_user_text(path, kind, error)
    try:
        return list(csv.reader(text.splitlines()))
    except csv.Error as exc:
        raise error(f"{path}: malformed CSV ({exc})") from exc


def fsync_dir(folder: str | os.PathLike) -> None:
    """``fsync`` a folder so that a rename or unlink in it is durable (no-op where unsupported)."""
    try:
        fd = os.open(folder, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:  # some file systems (and Windows) do not fsync folders
        pass
    finally:
        os.close(fd)


def _disk_full(exc: BaseException, folder: Path) -> bool:
    """Whether ``exc`` (raised while writing into ``folder``) comes from a full file system.

    ``ENOSPC``/``EDQUOT`` say so directly; libraries that write through C++ streams (``torch.save``
    gives "basic_ios::clear: iostream error" or "PytorchStreamWriter failed writing file") do not,
    so for other errors the free space left in ``folder`` decides.
    """
    if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EDQUOT):
        return True
    if not isinstance(exc, OSError | RuntimeError):
        return False
    try:
        return shutil.disk_usage(folder).free < _LOW_SPACE_BYTES
    except OSError:
        return False


def atomic_write(
    path: str | os.PathLike, data: bytes | Callable[[Path], None], *, durable: bool = True
) -> Path:
    """Write ``path`` atomically: a temporary file in the same folder, then ``os.replace``.

    ``data`` is either the bytes to write or a callable that writes the file at the temporary
    path it is given (e.g. ``lambda p: np.save(p, arr)``). With ``durable`` (the default) the
    temporary file is ``fsync``-ed before the rename and the folder after it, so the new content
    survives a power loss once this returns; ``durable=False`` skips both (for many small files
    that can be re-created, like the corpus' glyph PNGs). A crash at any moment leaves either the
    old file or the new one, never a half-written file. A full disk raises
    :class:`DiskFullError` ("no space left on device", naming the file); the temporary file is
    removed on any error.
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    tmp = Path(tmp_name)
    try:
        if isinstance(data, bytes | bytearray | memoryview):
            with os.fdopen(fd, "wb") as f:
                f.write(data)
                f.flush()
                if durable:
                    os.fsync(f.fileno())
        else:
            os.close(fd)
            data(tmp)
            if durable:
                with open(tmp, "rb+") as f:
                    os.fsync(f.fileno())
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)  # mkstemp creates 0600; give the usual permissions
        os.replace(tmp, path)
        if durable:
            fsync_dir(path.parent)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if _disk_full(exc, path.parent):
            raise DiskFullError(
                f"{path}: no space left on device (the previous version, if any, is unchanged; "
                "free some space and try again)"
            ) from None
        raise
    return path


def clean_stale_temp_files(folder: str | os.PathLike, recursive: bool = False) -> list[Path]:
    """Delete the temporary files :func:`atomic_write` leaves when killed mid-write.

    Only names of its pattern (``.NAME.XXXXXXXX.tmp``, see :data:`TEMP_NAME`) are touched, in
    ``folder`` (and its sub-folders with ``recursive``). Call it before writing into a folder that
    no other process is writing to. Returns the files removed.
    """
    root = Path(folder)
    if not root.is_dir():
        return []
    removed: list[Path] = []
    candidates = root.rglob(".*.tmp") if recursive else root.glob(".*.tmp")
    for f in candidates:
        if TEMP_NAME.match(f.name) and f.is_file() and not f.is_symlink():
            try:
                f.unlink()
            except OSError:
                continue
            removed.append(f)
    return removed
