"""HDF5 files that always close, and one clear error for a full or read-only folder.

When a write fails inside HDF5 (a full disk), the library keeps dirty metadata of the file and
retries the flush at interpreter exit, which crashes the process (exit 139). ``GuardedFile`` is the
Python file object h5py writes through: the first failed write is kept in ``error`` and every later
write is dropped, so HDF5's own flush and close succeed and the (temporary) file can be removed; the
writer raises ``StorageError`` from ``error`` at its next step. ``storage_error`` turns any OS error
of a write into that one line: the folder, why, and its free space.
"""
from __future__ import annotations

import errno
import io
import os
import shutil
from pathlib import Path

from pipeline.errors import DepthgaitError

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


class GuardedFile(io.RawIOBase):
    """A read/write binary file for ``h5py.File(fileobj)`` whose failed writes never crash HDF5."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        self.path = Path(path)
        self._f = open(self.path, "w+b", buffering=0)  # noqa: SIM115 - closed in close()
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        return self._f.readinto(buffer)

    def write(self, data: bytes | bytearray | memoryview) -> int:  # type: ignore[override]
        if self.error is None:
            try:
                view = memoryview(data)
                done = 0
                while done < len(view):
                    done += self._f.write(view[done:])
            except OSError as exc:
                self.error = exc
        return len(data)

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        return self._f.seek(offset, whence)

    def tell(self) -> int:
        return self._f.tell()

    def truncate(self, size: int | None = None) -> int:
        if self.error is None:
            try:
                return self._f.truncate(size)
            except OSError as exc:
                self.error = exc
        return self._f.tell() if size is None else size

    def flush(self) -> None:
        if self.error is None and not self._f.closed:
            try:
                self._f.flush()
            except OSError as exc:
                self.error = exc

    def close(self) -> None:
        if not self.closed:
            super().close()
            self._f.close()
