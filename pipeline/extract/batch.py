"""``extract`` over a folder of videos: resumable, per-video failures as data, workers or a Dask cluster.

Each video goes through ``pipeline.extract.job`` into one cache file
(``pipeline.formats.video_cache``). A complete cache whose fingerprint matches the settings and the
video is skipped (``check_cache`` opens every dataset, so a damaged file is redone), a killed run
resumes where it stopped, and ``overwrite`` redoes everything. One bad video is one row in
``errors.jsonl`` and never stops the batch; a full or read-only cache folder stops the run with
one line (``StorageError``). A run first sweeps the ``.tmp-`` files of killed runs, and claims each
video before doing it (``pipeline.extract.claims``), so processes sharing a cache never do one
video twice. Models are loaded once per process; every process runs ``settings.threads`` threads.
"""
from __future__ import annotations

import contextlib
import os
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from pipeline.errors import Failure, InputError, append_failure, prune_failures
from pipeline.extract.claims import sweep_temp_files, try_claim
from pipeline.extract.discover import auto_layout, find_videos, identify
from pipeline.extract.job import StageError, extract_to_cache, video_settings
from pipeline.extract.models import Models, load_models
from pipeline.extract.settings import ExtractSettings
from pipeline.extract.track_index import SUFFIX as TRACKS_SUFFIX
from pipeline.extract.track_index import check_index, index_path, remove_listed
from pipeline.extract.worker import die_with_parent, set_threads, threads
from pipeline.formats.storage import is_storage_error, storage_error
from pipeline.formats.video_cache import NO_CACHE, STALE, cache_path, check_cache
from pipeline.manifest import SequenceId, load_manifest
from pipeline.progress import progress as progress_bar


@dataclass
class ExtractSummary:
    found: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    warnings: int = 0
    claimed: int = 0  # being done by another process sharing the cache
    redone: int = 0  # of ``done``: caches that were there but damaged
    swept: int = 0  # temporary files of killed runs removed
    swept_bytes: int = 0
    frames: int = 0  # frames with a person, in the videos done now
    seconds: float = 0.0
    rows: list[Failure] = field(default_factory=list)

    def line(self, cache_dir: Path) -> str:
        rate = f", {self.frames / self.seconds:.1f} frames/s" if self.seconds > 0 and self.frames else ""
        text = (f"{self.found} videos: {self.done} extracted, {self.skipped} already done, {self.failed} failed, "
                f"{self.warnings} warnings; {self.frames} frames{rate}")
        if self.claimed:
            text += f"; {self.claimed} being done by another process"
        if self.redone:
            text += f"; {self.redone} damaged caches redone"
        if self.swept:
            text += f"; swept {self.swept} temporary files of killed runs ({self.swept_bytes / 2**20:.1f} MB)"
        if self.failed or self.warnings:
            text += f" (see {Path(cache_dir) / 'errors.jsonl'})"
        return text


def _silence_model_loading() -> None:
    """No "Loading weights" bars from transformers: in --quiet runs and in worker processes."""
    with contextlib.suppress(ImportError):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def _process(
    video: Path, seq: SequenceId, target: Path, settings: ExtractSettings, models: Models | None, progress: bool,
    cache_dir: Path, overwrite: bool = False, worker: bool = False, parent: int | None = None,
) -> dict[str, Any]:
    """One video in this process (or a worker): claim it, write its cache, append its rows; report as data.

    ``worker``: a joblib or Dask worker (it sets its own thread count); ``parent``: the pid of the
    run's process when this is a local joblib worker (it dies with it)."""
    if parent is not None:
        die_with_parent(parent)
    if worker:
        set_threads(settings.threads)
    if not progress:
        _silence_model_loading()
    try:
        return _claimed(video, seq, target, settings, models, progress, cache_dir, overwrite)
    except OSError as exc:  # a full or read-only folder (claim, log, cache) stops the run with one line
        if is_storage_error(exc):
            raise storage_error(exc, target.parent) from exc
        raise


def _claimed(
    video: Path, seq: SequenceId, target: Path, settings: ExtractSettings, models: Models | None, progress: bool,
    cache_dir: Path, overwrite: bool,
) -> dict[str, Any]:
    claim = try_claim(target)
    if isinstance(claim, str):
        return {"video": str(video), "status": "claimed", "holder": claim, "rows": []}
    try:
        fp = video_settings(settings, video, seq)[1]
        damaged = None
        if not overwrite:
            damaged = check_done(target, fp)
            if damaged is None:  # finished by another process since the run looked
                return {"video": str(video), "status": "skipped", "rows": []}
        if target.name.endswith(TRACKS_SUFFIX):
            remove_listed(target)
        prune_failures(cache_dir, {str(video)})
        rows: list[Failure] = []
        try:
            frames, warnings = extract_to_cache(video, seq, settings, models or load_models(settings), target, progress,
                                                claim.heartbeat)
            rows = [Failure(str(video), where, message, "warning") for where, message in warnings]
            result = {"video": str(video), "status": "done", "frames": frames, "redone": damaged not in (None, NO_CACHE, STALE)}
        except StageError as exc:
            rows.append(Failure(str(video), exc.stage, str(exc)))
            result = {"video": str(video), "status": "failed"}
        for row in rows:
            append_failure(cache_dir, row)
        result["rows"] = [r.to_row() for r in rows]
        return result
    finally:
        claim.release()


def check_done(target: Path, fingerprint: str) -> str | None:
    """``None`` when the video's cache (or, with ``--tracks all``, its track list and caches) is complete."""
    if target.name.endswith(TRACKS_SUFFIX):
        return check_index(target, fingerprint)
    return check_cache(target, fingerprint)


def check_writable(cache_dir: Path) -> None:
    """Fail before any work when the cache folder cannot take a file (read-only, full, no permission)."""
    try:
        cache_dir.mkdir(parents=True, exist_ok=True)
        fd, name = tempfile.mkstemp(prefix=".tmp-probe-", dir=cache_dir)
        try:
            os.write(fd, b"\0" * 4096)
            os.fsync(fd)
        finally:
            os.close(fd)
            os.unlink(name)
    except OSError as exc:
        raise storage_error(exc, cache_dir) from exc


def run_extract(
    videos_dir: str | Path,
    cache_dir: str | Path = "cache",
    settings: ExtractSettings | None = None,
    manifest: str | Path = "casia-b",
    layout: str = "names",
    workers: int = 1,
    overwrite: bool = False,
    quiet: bool = False,
    models: Models | None = None,
    scheduler: str | None = None,
    streams: int = 1,
) -> ExtractSummary:
    """Extract every video under ``videos_dir`` into ``cache_dir``; see the module docstring.

    ``streams`` > 1 (one process): that many videos in flight, their model calls batched together
    (``pipeline.extract.engine``); the caches are the same bytes as with one."""
    began = time.time()
    settings = settings or ExtractSettings()
    root, cache_dir = Path(videos_dir), Path(cache_dir)
    man = load_manifest(manifest)
    videos = find_videos(root, man)
    if not videos:
        raise InputError(f"{root}: no videos ({', '.join(man.extensions)}) or folders of frames found, recursively")
    layout = auto_layout(root, man, layout)
    found, bad = identify(videos, root.parent if videos == [root] else root, man, layout)
    if settings.tracks is None:  # footage holds anyone; a dataset video holds its one walker
        settings = replace(settings, tracks="all" if layout == "footage" else "longest")
    check_writable(cache_dir)
    summary = ExtractSummary(found=len(videos))
    try:
        swept = sweep_temp_files(cache_dir, before=began)
    except OSError as exc:
        raise storage_error(exc, cache_dir) from exc
    summary.swept, summary.swept_bytes = len(swept), sum(size for _, size in swept)
    todo = []
    for video, seq in found:
        target = index_path(cache_dir, seq) if settings.track_mode == "all" else cache_path(cache_dir, seq)
        if not overwrite and check_done(target, video_settings(settings, video, seq)[1]) is None:
            summary.skipped += 1
        else:
            todo.append((video, seq, target))
    prune_failures(cache_dir, {str(v) for v, _ in bad})
    for video, why in bad:
        summary.rows.append(append_failure(cache_dir, Failure(str(video), "identify", why)))
        summary.failed += 1
    if not todo:
        return summary
    if models is None:  # models handed in are loaded already
        settings.check_weights()
    if quiet:
        _silence_model_loading()
    start = time.perf_counter()
    bar = progress_bar(total=len(todo), desc="extract", unit="video", disable=quiet)
    with contextlib.ExitStack() as stack:
        if scheduler:  # several machines: joblib's Dask backend (dask_backend)
            workers = stack.enter_context(dask_backend(scheduler))
        if workers <= 1 and not scheduler:
            stack.enter_context(threads(settings.threads))
            models = models or load_models(settings)
            results: Any = (_process(v, s, t, settings, models, not quiet, cache_dir, overwrite) for v, s, t in todo)
            if streams > 1:
                from pipeline.extract.engine import run_streams

                results = run_streams(todo, models, streams,
                                      lambda item, m: _process(*item, settings, m, False, cache_dir, overwrite))
        else:
            from joblib import Parallel, delayed

            parent = None if scheduler else os.getpid()
            n_jobs = -1 if scheduler else workers  # a cluster: every Dask worker thread
            results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
                delayed(_process)(v, s, t, settings, None, False, cache_dir, overwrite, True, parent) for v, s, t in todo
            )
        with bar:
            for res in results:
                rows = [Failure.from_row(r) for r in res["rows"]]
                summary.rows += rows
                summary.warnings += sum(r.level == "warning" for r in rows)
                status = res["status"]
                if status == "done":
                    summary.done += 1
                    summary.frames += res["frames"]
                    summary.redone += bool(res.get("redone"))
                elif status == "failed":
                    summary.failed += 1
                elif status == "claimed":
                    summary.claimed += 1
                else:
                    summary.skipped += 1
                bar.update(1)
                bar.set_postfix(failed=summary.failed, refresh=False)
    summary.seconds = time.perf_counter() - start
    return summary


@contextlib.contextmanager
def dask_backend(scheduler: str) -> Iterator[int]:
    """Route joblib's ``Parallel`` to the Dask cluster at ``scheduler``; yield its total worker threads.

    Each video is an independent job writing its own cache file, so a cluster needs no coordination
    beyond a cache folder every worker can write (a shared file system). Start a scheduler and workers
    (``dask scheduler``; ``dask worker tcp://host:8786`` on each machine) and pass the scheduler's address.
    """
    import joblib

    try:
        from dask.distributed import Client
    except ImportError as exc:
        raise InputError("--dask-scheduler needs Dask's distributed scheduler: pip install 'dask[distributed]'") from exc
    try:
        client = Client(scheduler, timeout="10s")
    except (OSError, TimeoutError) as exc:
        raise InputError(f"cannot reach the Dask scheduler at {scheduler}: {exc}") from exc
    with client, joblib.parallel_config(backend="dask"):
        yield max(1, sum(client.nthreads().values()))
