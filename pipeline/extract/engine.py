"""Several videos in flight in one process, their model calls merged into shared batches (``--streams``).

Each of ``streams`` threads runs one video through ``pipeline.extract.job`` (decode, background
subtraction and packing run in parallel: OpenCV releases the GIL). Every model that keeps no state
per video (YOLO, YOLO-seg, SAM, the depth model) sits behind one ``Batcher``: a server thread that
takes every request waiting when the model becomes free and runs them as one call, so the model
sees batches drawn from several videos instead of one video's tail batches. The depth model runs
fixed-size forwards (``DepthEstimator`` pads the last chunk), so a frame's bytes do not depend on
which other videos shared its forward: ``--streams 4`` writes the same caches as ``--streams 1``.
"""
from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor, as_completed
from typing import Any

import numpy as np

from pipeline.extract.detect import BgSubDetector
from pipeline.extract.models import Models
from pipeline.extract.segment import BgSubSegmenter

_STOP = object()


class Batcher:
    """Serve ``fn`` to many threads: ``batcher(*seqs)`` (sequences of one length) blocks until done;
    requests waiting together are concatenated into one ``fn`` call and the result split back."""

    def __init__(self, fn: Callable[..., Any], name: str = "model") -> None:
        self.fn = fn
        self.calls = 0  # model calls made (fewer than requests when they were merged)
        self._q: queue.Queue[Any] = queue.Queue()
        self._thread = threading.Thread(target=self._serve, name=f"batcher-{name}", daemon=True)
        self._thread.start()

    def __call__(self, *seqs: Sequence[Any]) -> Any:
        fut: Future[Any] = Future()
        self._q.put((seqs, fut))
        return fut.result()

    def _serve(self) -> None:
        while True:
            first = self._q.get()
            if first is _STOP:
                return
            requests = [first]
            while True:  # everything already waiting joins this call
                try:
                    more = self._q.get_nowait()
                except queue.Empty:
                    break
                if more is _STOP:
                    self._q.put(_STOP)
                    break
                requests.append(more)
            sizes = [len(seqs[0]) for seqs, _ in requests]
            merged = [[x for seqs, _ in requests for x in seqs[i]] for i in range(len(requests[0][0]))]
            try:
                out = self.fn(*merged)
                self.calls += 1
                edges = np.cumsum([0, *sizes])
                for (_, fut), a, b in zip(requests, edges[:-1], edges[1:], strict=True):
                    fut.set_result(out[a:b])
            except BaseException as exc:  # noqa: BLE001 - every waiting video gets the error
                for _, fut in requests:
                    fut.set_exception(exc)

    def close(self) -> None:
        self._q.put(_STOP)
        self._thread.join()


class _Shared:
    """A batched, stateless model seen as one video's detector, segmenter or depth model."""

    def __init__(self, batcher: Batcher, near_is_large: bool | None = None) -> None:
        self.batcher, self.near_is_large = batcher, near_is_large

    def reset(self, background: Any = None, split: bool = False) -> None:
        """Stateless across videos."""

    def __call__(self, *seqs: Any) -> Any:
        return self.batcher(*seqs)

    def estimate(self, crops: list[np.ndarray]) -> np.ndarray:
        return self.batcher(crops)


def run_streams(
    todo: list[tuple[Any, ...]], models: Models, streams: int, process: Callable[[tuple[Any, ...], Models], dict[str, Any]]
) -> Iterator[dict[str, Any]]:
    """``process(item, models)`` for every item on ``streams`` threads; results in completion order."""
    batchers: list[Batcher] = []

    def shared(model: Any, name: str, method: str | None = None) -> Any:
        if getattr(model, "name", None) == "bgsub":
            return None  # per-video state (the background): one instance per thread
        batchers.append(Batcher(getattr(model, method) if method else model, name))
        return _Shared(batchers[-1], getattr(model, "near_is_large", None))

    det, seg = shared(models.detector, "detect"), shared(models.segmenter, "segment")
    depth = shared(models.depth, "depth", "estimate")
    local = threading.local()

    def run(item: tuple[Any, ...]) -> dict[str, Any]:
        if not hasattr(local, "models"):
            local.models = Models(det or BgSubDetector(), seg or BgSubSegmenter(), depth)
        return process(item, local.models)

    pool = ThreadPoolExecutor(max_workers=streams, thread_name_prefix="video")
    try:
        futures = [pool.submit(run, item) for item in todo]
        for fut in as_completed(futures):
            yield fut.result()
    finally:
        pool.shutdown(wait=True, cancel_futures=True)
        for b in batchers:
            b.close()
