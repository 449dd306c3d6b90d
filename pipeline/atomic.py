"""Atomic file writes shared by every stage that produces a file.

A killed run must never leave a half-written file under a final name: every writer
gets a temporary sibling path and the file is renamed into place only on success.
A full disk or a read-only folder is a :class:`FileWriteError` naming the final file
(not the temporary one), and the temporary file is gone.
"""
from __future__ import annotations

import contextlib
import errno
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path

# errno values that mean "this place cannot take the file", as opposed to a bug in the writer
WRITE_ERRNOS = frozenset({errno.ENOSPC, errno.EDQUOT, errno.EROFS, errno.EACCES, errno.EPERM, errno.EFBIG, errno.EIO})


class FileWriteError(OSError):
    """A file could not be written where it was asked for; the message names it and says why."""

    def __str__(self) -> str:
        return str(self.args[1] if len(self.args) > 1 else self.args[0])


def write_failure(final: str | os.PathLike[str], exc: OSError) -> FileWriteError:
    """``exc`` (ENOSPC, EROFS, ...) as one line naming ``final``."""
    reason = exc.strerror or str(exc) or type(exc).__name__
    return FileWriteError(exc.errno or errno.EIO, f"{final}: cannot write ({reason}); nothing was written under that name")


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the same folder as ``final``; rename it onto ``final`` on success.

    The temporary name keeps the suffix (h5py, numpy and torch look at it) and starts with
    ``.tmp-`` so that half files are easy to recognise and clean. On any exception the
    temporary file is removed and ``final`` is left exactly as it was.
    """
    final = Path(final)
    try:
        final.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{final.stem}-", suffix=final.suffix, dir=final.parent)
        os.close(fd)
    except OSError as exc:
        if exc.errno in WRITE_ERRNOS or isinstance(exc, FileExistsError | NotADirectoryError):
            raise write_failure(final, exc) from None
        raise
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, final)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        if isinstance(exc, OSError) and not isinstance(exc, FileWriteError) and exc.errno in WRITE_ERRNOS:
            raise write_failure(final, exc) from None
        raise


def write_text_atomic(final: str | os.PathLike[str], text: str) -> None:
    """Write a small text file (JSON reports, notes) atomically."""
    with atomic_path(final) as tmp:
        tmp.write_text(text)
