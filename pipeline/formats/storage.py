"""One clear error for a full or read-only output folder: the folder, why, and its free space.

HDF5 writers go through ``pipeline.formats.h5_writer.GuardedFile`` (re-exported here), which keeps
the first failed write in ``error`` so HDF5 still closes cleanly; the writer then raises
``storage_error(guard.error, folder)``: one line, and the run stops (every later write to the same
folder would fail the same way).
"""
from __future__ import annotations

import errno
import os
import shutil
from pathlib import Path

from pipeline.errors import DepthgaitError
from pipeline.formats.h5_writer import GuardedFile

__all__ = ["GuardedFile", "StorageError", "free_space", "is_storage_error", "storage_error"]

# Errors that stop a whole run: every later write to the same folder would fail the same way.
STORAGE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG}


class StorageError(DepthgaitError, OSError):
    """The output folder cannot take the file (full, read-only, no permission); stops the run."""

    def __str__(self) -> str:
        return str(self.strerror)  # the one line, without OSError's "[Errno N]" prefix


def _size(n: int) -> str:
    for unit in ("B", "KB", "MB", "GB", "TB"):
        if n < 1024 or unit == "TB":
            return f"{n:.0f} {unit}" if unit == "B" else f"{n:.1f} {unit}"
        n /= 1024  # type: ignore[assignment]
    return f"{n} B"  # pragma: no cover


def free_space(folder: str | Path) -> str:
    """``"12.3 MB free of 2.0 GB"`` for the nearest existing folder at or above ``folder``."""
    path = Path(folder)
    while not path.exists() and path != path.parent:
        path = path.parent
    try:
        usage = shutil.disk_usage(path)
    except OSError:
        return "free space unknown"
    return f"{_size(usage.free)} free of {_size(usage.total)}"


def is_storage_error(exc: BaseException) -> bool:
    """An OS error of the kind that makes every write to the folder fail (h5py wraps errno in text)."""
    if not isinstance(exc, OSError):
        return False
    if exc.errno in STORAGE_ERRNOS:
        return True
    text = str(exc)
    return any(f"errno = {e}," in text for e in STORAGE_ERRNOS) or "No space left" in text or "Read-only file system" in text


def storage_error(exc: OSError, folder: str | Path) -> StorageError:
    """One line naming the folder, the reason and its free space."""
    if isinstance(exc, StorageError):
        return exc
    code = exc.errno
    text = str(exc)
    if code in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG) or "No space left" in text or "errno = 28," in text:
        why = "disk full"
    elif code == errno.EROFS or "Read-only file system" in text or "errno = 30," in text:
        why = "read-only file system"
    elif code in (errno.EACCES, errno.EPERM):
        why = "permission denied"
    else:
        why = os.strerror(code) if code else text.splitlines()[0]
    return StorageError(code or errno.EIO, f"cannot write to {folder}: {why} ({free_space(folder)})")
