"""What every process that extracts needs: a fixed thread count, and (a local worker) to die with its parent.

Float reductions in the models split over threads, so the bytes of depth depend on the intra-op
thread count: it comes from ``ExtractSettings.threads``, the same in the main process and in every
joblib worker whatever ``--workers`` is, so ``--workers 1`` and ``--workers 2`` write the same files.

A joblib (loky) worker only notices a killed parent when it next talks to it, after its current
video (minutes, GBs held, still writing). ``die_with_parent`` asks Linux to send the worker SIGTERM
when its parent dies (``prctl(PR_SET_PDEATHSIG)``), and turns SIGTERM into ``SystemExit`` so the
worker's ``finally`` blocks remove its temporary file and its claim.
"""
from __future__ import annotations

import contextlib
import ctypes
import os
import signal
import sys
from collections.abc import Iterator

PR_SET_PDEATHSIG = 1
_ARMED: set[int] = set()  # pids of processes already armed


def _exit_on_term(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def die_with_parent(parent_pid: int | None = None) -> bool:
    """Have this process terminated when its parent dies (Linux); True when armed. Idempotent."""
    if os.getpid() in _ARMED:
        return True
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0) != 0:
            return False
    except (OSError, AttributeError):
        return False
    with contextlib.suppress(ValueError):  # not the main thread: the default action (terminate) stays
        signal.signal(signal.SIGTERM, _exit_on_term)
    _ARMED.add(os.getpid())
    if parent_pid is not None and os.getppid() != parent_pid:
        raise SystemExit(f"parent {parent_pid} died before this worker started")  # died before prctl took effect
    return True


def set_threads(threads: int) -> None:
    """Intra-op threads of torch and OpenCV in this process."""
    import cv2
    import torch

    if torch.get_num_threads() != threads:
        torch.set_num_threads(threads)
    cv2.setNumThreads(threads)


@contextlib.contextmanager
def threads(n: int) -> Iterator[None]:
    """``set_threads(n)`` for the block, then back (the main process is the caller's)."""
    import cv2
    import torch

    before = torch.get_num_threads(), cv2.getNumThreads()
    set_threads(n)
    try:
        yield
    finally:
        torch.set_num_threads(before[0])
        cv2.setNumThreads(before[1])


def available_cores() -> int:
    """Cores this process may run on (its CPU affinity where the OS tells it, else the machine's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


def oversubscription(workers: int, threads: int, cores: int | None = None) -> str | None:
    """A warning when ``workers`` processes of ``threads`` model threads each ask for more cores than there are.

    Extra threads do not add speed; they take turns on the cores and the run gets slower (the demo's extract
    on 2 cores: 38 s with 2 workers x 4 threads, 34 s with 2 x 1). The thread count is not changed for the
    user, because the bytes of depth depend on it; the warning says which setting fits."""
    cores = cores or available_cores()
    if workers * threads <= cores:
        return None
    fit = max(1, cores // workers)
    return (f"{workers} worker(s) x {threads} thread(s) = {workers * threads} model threads on {cores} core(s): "
            f"they take turns and run slower; --threads {fit} fits (the bytes of depth depend on --threads, so keep "
            f"one value per cache)")
