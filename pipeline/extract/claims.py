"""Per-video claim files, so processes (or machines) sharing one cache never do the same video twice.

Before a video is extracted, ``<view>.h5.claim`` is created beside its cache with ``O_CREAT|O_EXCL``
(atomic on local file systems and NFSv3+), holding the host, pid and start time of the claimant,
which refreshes its mtime at every batch (``Claim.heartbeat``). A claim is stale, and taken over,
when its mtime is older than ``stale_s`` (the holder died or hangs), or when it names a process of
this host that no longer exists. The same rule decides which ``.tmp-`` files of killed runs are
swept: those older than the run whose video no live claim holds.
"""
from __future__ import annotations

import contextlib
import json
import os
import socket
import time
from dataclasses import dataclass
from pathlib import Path

from pipeline.errors import log_lock
from pipeline.formats.video_cache import temp_files

CLAIM_SUFFIX = ".claim"
STALE_S = 900.0  # a holder refreshes its claim at every batch; 15 min of silence means it is gone
HEARTBEAT_S = 5.0  # the least time between two refreshes


def claim_path(target: Path) -> Path:
    return target.with_name(target.name + CLAIM_SUFFIX)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def holder(path: Path, stale_s: float = STALE_S) -> str | None:
    """``"host pid N"`` of a live claim at ``path``; None when there is none or it is stale."""
    try:
        age = time.time() - path.stat().st_mtime
        info = json.loads(path.read_text() or "{}")
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        info = {}
        age = 0.0  # being written right now, or damaged: trust it until it is old
    if age > stale_s:
        return None
    host, pid = str(info.get("host", "?")), int(info.get("pid", -1) or -1)
    if host == socket.gethostname() and pid > 0 and not _alive(pid):
        return None
    return f"{host} pid {pid}"


@dataclass
class Claim:
    path: Path
    _last: float = 0.0

    def heartbeat(self) -> None:
        """Refresh the claim's mtime (at most every ``HEARTBEAT_S``), so others see it is alive."""
        now = time.monotonic()
        if now - self._last >= HEARTBEAT_S:
            with contextlib.suppress(OSError):
                os.utime(self.path)
            self._last = now

    def release(self) -> None:
        with contextlib.suppress(OSError):
            self.path.unlink()


def try_claim(target: Path, stale_s: float = STALE_S) -> Claim | str:
    """Claim ``target``'s video: a ``Claim``, or the description of the live holder."""
    path = claim_path(target)
    path.parent.mkdir(parents=True, exist_ok=True)
    body = json.dumps({"host": socket.gethostname(), "pid": os.getpid(), "since": time.strftime("%Y-%m-%dT%H:%M:%S")})
    for _ in range(2):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            live = holder(path, stale_s)
            if live is not None:
                return live
            # Stale: move it aside under a unique name (only one taker's rename succeeds), then retry.
            aside = path.with_name(f".stale-{os.getpid()}-{path.name}")
            with contextlib.suppress(FileNotFoundError):
                os.replace(path, aside)
                aside.unlink()
            continue
        try:
            os.write(fd, body.encode())
        except OSError:
            os.close(fd)
            path.unlink(missing_ok=True)  # an empty claim would look live for STALE_S
            raise
        os.close(fd)
        return Claim(path, time.monotonic())
    live = holder(path, stale_s)
    return live or "another process (claim contended)"


def sweep_temp_files(cache_dir: str | Path, before: float, stale_s: float = STALE_S) -> list[tuple[Path, int]]:
    """Remove ``.tmp-`` files older than ``before`` (a ``time.time()``) that no live writer owns; returns
    ``(path, bytes)`` of each removed. A per-video one is owned while a live claim holds its video;
    one in the cache root (a prune of ``errors.jsonl``) while its writer holds the log lock."""
    root = Path(cache_dir)
    removed = []
    with log_lock(root):
        for tmp in temp_files(root):
            try:
                stat = tmp.stat()
            except FileNotFoundError:
                continue
            if stat.st_mtime >= before:
                continue
            if tmp.parent != root:
                stem = tmp.name[len(".tmp-") :].rsplit("-", 1)[0]  # .tmp-<stem>-<random><suffix>
                if holder(claim_path(tmp.parent / f"{stem}.h5"), stale_s) is not None:
                    continue  # a live writer of that video (another process on the shared cache)
            with contextlib.suppress(FileNotFoundError):
                tmp.unlink()
                removed.append((tmp, stat.st_size))
    return removed


def claims(cache_dir: str | Path, stale_s: float = STALE_S) -> tuple[list[Path], list[Path]]:
    """``(live, stale)`` claim files under the cache (for ``status``)."""
    live, stale = [], []
    for path in sorted((Path(cache_dir) / "videos").glob(f"*/*/*{CLAIM_SUFFIX}")):
        (live if holder(path, stale_s) is not None else stale).append(path)
    return live, stale
