"""The errors and failure records every part of depthgait shares.

``DepthgaitError`` is the one base of the errors the library raises on purpose (bad input, a
damaged or foreign file, a missing weight): the CLI shows those as one line, and anything else is a
bug that shows its traceback. The existing errors keep ``ValueError`` as a second base, so code
that caught ``ValueError`` still does.

``Failure`` is the one record of "this item failed, at this stage, for this reason": a row of
``<cache>/errors.jsonl``, an entry of an import/export result and of an embed report. The log is
appended one ``write`` of one line at a time (rows never interleave) and read back tolerantly.
Appends and prunes hold an exclusive lock on ``errors.jsonl.lock`` (``fcntl.lockf``, which also
works across machines on NFS), so a prune by one process never drops a row another one appends.
"""
from __future__ import annotations

import contextlib
import json
import os
import threading
import time
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from pipeline.atomic import write_text_atomic

ERRORS_FILE = "errors.jsonl"
_THREAD_LOCK = threading.Lock()  # POSIX record locks are per process: threads of one process queue here


class DepthgaitError(Exception):
    """An expected failure with a message that names the file or setting and the problem."""


class InputError(DepthgaitError, ValueError):
    """Bad input, settings or data: the message says which and why."""


@dataclass(frozen=True)
class Failure:
    """One failed (or warned-about) item; ``item`` is a video, a folder or a sequence key."""

    item: str
    stage: str
    error: str
    level: str = "error"  # error | warning
    time: str = field(default_factory=lambda: time.strftime("%Y-%m-%dT%H:%M:%S"), compare=False)

    def to_row(self) -> dict[str, Any]:
        """The ``errors.jsonl`` row: the item is stored as ``video`` (the contract of files already written)."""
        row = asdict(self)
        row["video"] = row.pop("item")
        return row

    @classmethod
    def from_row(cls, row: dict[str, Any]) -> Failure:
        return cls(
            item=str(row.get("video", row.get("item", "?"))), stage=str(row.get("stage", "?")),
            error=str(row.get("error", "")), level=str(row.get("level", "error")), time=str(row.get("time", "")),
        )

    def line(self) -> str:
        """One console line: the reason, which names the item already when it says where."""
        return self.error if self.item in self.error else f"{self.item}: {self.error}"


@contextlib.contextmanager
def log_lock(cache_dir: str | Path) -> Iterator[None]:
    """Hold the exclusive lock of ``<cache_dir>/errors.jsonl`` (every appender and pruner takes it)."""
    lock = Path(cache_dir) / (ERRORS_FILE + ".lock")
    lock.parent.mkdir(parents=True, exist_ok=True)
    with _THREAD_LOCK:
        fd = os.open(lock, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            try:
                import fcntl
            except ImportError:  # pragma: no cover - not POSIX: the thread lock only
                yield
                return
            fcntl.lockf(fd, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.lockf(fd, fcntl.LOCK_UN)
        finally:
            os.close(fd)


def append_failure(cache_dir: str | Path, failure: Failure) -> Failure:
    """Append one row to ``<cache_dir>/errors.jsonl`` as a single ``write`` in append mode, under the lock."""
    path = Path(cache_dir) / ERRORS_FILE
    line = (json.dumps(failure.to_row()) + "\n").encode()
    with log_lock(cache_dir):
        fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
        size = os.fstat(fd).st_size
        try:
            if os.write(fd, line) != len(line):
                raise OSError(28, "No space left on device", str(path))
        except OSError:
            os.ftruncate(fd, size)  # a short write (full disk) leaves no half row
            raise
        finally:
            os.close(fd)
    return failure


def read_failures(cache_dir: str | Path) -> list[Failure]:
    """Every row of ``errors.jsonl``, oldest first; a damaged line is skipped."""
    path = Path(cache_dir) / ERRORS_FILE
    if not path.is_file():
        return []
    rows = []
    for line in path.read_text().splitlines():
        try:
            rows.append(Failure.from_row(json.loads(line)))
        except (json.JSONDecodeError, AttributeError):
            continue
    return rows


def prune_failures(cache_dir: str | Path, items: set[str]) -> None:
    """Drop the rows of ``items`` (about to be redone), so the log tells the latest outcome of each."""
    path = Path(cache_dir) / ERRORS_FILE
    if not path.is_file() or not items:
        return
    with log_lock(cache_dir):
        rows = read_failures(cache_dir)
        if any(f.item in items for f in rows):
            write_text_atomic(path, "".join(json.dumps(f.to_row()) + "\n" for f in rows if f.item not in items))
