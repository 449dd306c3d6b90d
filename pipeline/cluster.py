"""Extract on several machines: joblib's Dask backend over a running Dask scheduler.

Each video is an independent job writing its own cache file, so a cluster needs no coordination
beyond a cache folder every worker can write (a shared file system). Start a scheduler and workers
(``dask scheduler``; ``dask worker tcp://host:8786`` on each machine) and pass the scheduler's address.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator


@contextlib.contextmanager
def dask_backend(scheduler: str) -> Iterator[int]:
    """Route joblib's ``Parallel`` to the Dask cluster at ``scheduler``; yield its total worker threads."""
    import joblib

    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise ValueError("--dask-scheduler needs Dask's distributed scheduler: pip install 'dask[distributed]'") from exc
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise ValueError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
    with client, joblib.parallel_config(backend="dask"):
        yield max(1, sum(client.nthreads().values()))
