"""Write an HDF5 file that survives a full disk: the failure is reported, never a segfault.

HDF5 does not recover from a failed write: after ENOSPC its dataset closes fail silently
(h5py only prints "Exception ignored") and the next flush or close segfaults the process.
So the file is opened through :class:`GuardedFile`, a Python file object that records the
first write error and from then on only pretends to write: HDF5's state stays consistent,
closing is safe, and the caller raises the recorded error and deletes the file, which is
garbage by then. On a healthy disk it is exactly as fast as h5py's own driver (measured:
300 gzip datasets in 4.29 s against 4.25 s).
"""
from __future__ import annotations

import contextlib
import errno
import io
import os
from collections.abc import Iterator
from pathlib import Path

import h5py

from pipeline.atomic import atomic_path, write_failure


class GuardedFile(io.RawIOBase):
    """A read/write file whose first ``OSError`` on write is kept in ``error`` instead of raised."""

    def __init__(self, path: str | Path) -> None:
        super().__init__()
        # unbuffered: with a buffer, a later seek() or read() would raise the deferred ENOSPC
        self._file = open(path, "w+b", buffering=0)  # noqa: SIM115 - closed in close()
        self.error: OSError | None = None

    def readable(self) -> bool:
        return True

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def seek(self, offset: int, whence: int = 0) -> int:
        return self._file.seek(offset, whence)

    def tell(self) -> int:
        return self._file.tell()

    def readinto(self, buffer) -> int:  # type: ignore[no-untyped-def, override]
        return self._file.readinto(buffer)

    def write(self, data) -> int:  # type: ignore[no-untyped-def, override]
        view = memoryview(data).cast("B")
        start = self._file.tell()
        done = 0
        while self.error is None and done < len(view):
            try:
                written = self._file.write(view[done:])
            except OSError as exc:
                self.error = exc
                break
            if not written:
                self.error = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
                break
            done += written
        self._file.seek(start + len(view))  # as if written: HDF5 must not notice
        return len(view)

    def truncate(self, size: int | None = None) -> int:
        try:
            return self._file.truncate(size)
        except OSError as exc:
            self.error = self.error or exc
            return size if size is not None else self.tell()

    def flush(self) -> None:
        if self._file.closed:
            return
        try:
            self._file.flush()
        except OSError as exc:
            self.error = self.error or exc

    def close(self) -> None:
        if not self._file.closed:
            self.flush()
            try:
                self._file.close()
            except OSError as exc:
                self.error = self.error or exc
        super().close()


def open_h5_for_writing(path: str | Path) -> tuple[h5py.File, GuardedFile]:
    """A new HDF5 file at ``path`` and its guard; check ``guard.error`` after writes and after closing."""
    guard = GuardedFile(path)
    try:
        return h5py.File(guard, "w"), guard
    except BaseException:
        guard.close()
        raise


@contextlib.contextmanager
def atomic_h5(path: str | Path) -> Iterator[h5py.File]:
    """A small HDF5 file written in one go, atomically and through the guard: a full or read-only folder is
    one ``FileWriteError`` naming ``path``, never a segfault, and nothing is left under its name."""
    with atomic_path(path) as tmp:
        h5, guard = open_h5_for_writing(tmp)
        try:
            with h5:
                yield h5
        finally:
            guard.close()
        if guard.error is not None:
            raise write_failure(path, guard.error) from None
