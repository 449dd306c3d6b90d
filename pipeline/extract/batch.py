"""``extract`` over a folder of videos: resumable, per-video failures as data, workers or a Dask cluster.

Each video goes through ``pipeline.extract.job`` into one cache file
(``pipeline.formats.video_cache``). A finished cache whose fingerprint matches the settings and the
video is skipped, so a killed run resumes where it stopped and a rerun does no work; ``overwrite``
redoes everything. One bad video is one row in ``errors.jsonl`` and never stops the batch. Models
are loaded once per process.
"""
from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tqdm.auto import tqdm

from pipeline.errors import Failure, InputError, append_failure, prune_failures
from pipeline.extract.discover import find_videos, identify
from pipeline.extract.job import StageError, extract_video, stage, video_settings
from pipeline.extract.models import Models, load_models
from pipeline.extract.settings import ExtractSettings
from pipeline.formats.video_cache import cache_path, read_fingerprint, write_video_cache
from pipeline.manifest import SequenceId, load_manifest


@dataclass
class ExtractSummary:
    found: int = 0
    done: int = 0
    skipped: int = 0
    failed: int = 0
    warnings: int = 0
    frames: int = 0  # frames with a person, in the videos done now
    seconds: float = 0.0
    rows: list[Failure] = field(default_factory=list)

    def line(self, cache_dir: Path) -> str:
        rate = f", {self.frames / self.seconds:.1f} frames/s" if self.seconds > 0 and self.frames else ""
        text = (f"{self.found} videos: {self.done} extracted, {self.skipped} already done, {self.failed} failed, "
                f"{self.warnings} warnings; {self.frames} frames{rate}")
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
    threads: int | None = None,
) -> dict[str, Any]:
    """One video in this process (or a joblib worker): write the cache, report rows as data."""
    if threads:
        import torch

        torch.set_num_threads(threads)
    if not progress:
        _silence_model_loading()
    try:
        cache, warnings = extract_video(video, seq, settings, models or load_models(settings), progress)
        with stage("write", video):
            write_video_cache(target, cache)
        return {"video": str(video), "ok": True, "frames": len(cache), "warnings": warnings}
    except StageError as exc:
        return {"video": str(video), "ok": False, "stage": exc.stage, "error": str(exc), "warnings": []}


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
) -> ExtractSummary:
    """Extract every video under ``videos_dir`` into ``cache_dir``; see the module docstring."""
    import time

    settings = settings or ExtractSettings()
    root, cache_dir = Path(videos_dir), Path(cache_dir)
    man = load_manifest(manifest)
    videos = find_videos(root, man)
    if not videos:
        raise InputError(f"{root}: no videos ({', '.join(man.extensions)}) found, recursively")
    found, bad = identify(videos, root, man, layout)
    summary = ExtractSummary(found=len(videos))
    todo = []
    for video, seq in found:
        target = cache_path(cache_dir, seq)
        if not overwrite and read_fingerprint(target) == video_settings(settings, video, seq)[1]:
            summary.skipped += 1
        else:
            todo.append((video, seq, target))
    prune_failures(cache_dir, {str(v) for v, *_ in todo} | {str(v) for v, _ in bad})
    for video, why in bad:
        summary.rows.append(append_failure(cache_dir, Failure(str(video), "identify", why)))
        summary.failed += 1
    if not todo:
        return summary
    settings.check_weights()
    if quiet:
        _silence_model_loading()
    start = time.perf_counter()
    bar = tqdm(total=len(todo), desc="extract", unit="video", disable=quiet)
    with contextlib.ExitStack() as stack:
        if scheduler:  # several machines: joblib's Dask backend (dask_backend)
            workers = stack.enter_context(dask_backend(scheduler))
        if workers <= 1 and not scheduler:
            models = models or load_models(settings)
            results: Any = (_process(v, s, t, settings, models, not quiet) for v, s, t in todo)
        else:
            from joblib import Parallel, delayed

            threads = None if scheduler else max(1, (os.cpu_count() or 1) // workers)
            n_jobs = -1 if scheduler else workers  # a cluster: every Dask worker thread
            results = Parallel(n_jobs=n_jobs, return_as="generator_unordered")(
                delayed(_process)(v, s, t, settings, None, False, threads) for v, s, t in todo
            )
        with bar:
            for res in results:
                for where, message in res["warnings"]:
                    summary.rows.append(append_failure(cache_dir, Failure(res["video"], where, message, "warning")))
                    summary.warnings += 1
                if res["ok"]:
                    summary.done += 1
                    summary.frames += res["frames"]
                else:
                    summary.rows.append(append_failure(cache_dir, Failure(res["video"], res["stage"], res["error"])))
                    summary.failed += 1
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
