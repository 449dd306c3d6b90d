"""Atomic file writes shared by every stage that produces a file.

A killed run must never leave a half-written file under a final name: every writer
gets a temporary sibling path and the file is renamed into place only on success.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterator
from pathlib import Path


@contextlib.contextmanager
def atomic_path(final: str | os.PathLike[str]) -> Iterator[Path]:
    """Yield a temporary path in the same folder as ``final``; rename it onto ``final`` on success.

    The temporary name keeps the suffix (h5py, numpy and torch look at it) and starts with
    ``.tmp-`` so that half files are easy to recognise and clean. On any exception the
    temporary file is removed and ``final`` is left exactly as it was.
    """
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{final.stem}-", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        # mkstemp makes the file private (0600); give it the permissions a plain open() would.
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)
        os.replace(tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def write_text_atomic(final: str | os.PathLike[str], text: str) -> None:
    """Write a small text file (JSON reports, notes) atomically."""
    with atomic_path(final) as tmp:
        tmp.write_text(text)
