"""The throughput parts of extract: background decode and the batcher that merges model calls of several videos."""
from __future__ import annotations

import threading
import time

import pytest


def test_background_decode_keeps_order_forwards_errors_and_stops_when_closed() -> None:
    from pipeline.extract.video import prefetch

    def failing():
        yield 1
        yield 2
        raise ValueError("frame 3 does not decode")

    it = prefetch(failing())
    assert [next(it), next(it)] == [1, 2]
    with pytest.raises(ValueError, match="frame 3"):
        next(it)
    made: list[int] = []

    def endless():
        for i in range(10_000):
            made.append(i)
            yield i

    it = prefetch(endless(), depth=1)
    assert next(it) == 0
    it.close()  # the consumer stops (a model failed): the producer stops too, one or two items ahead at most
    assert len(made) <= 3


def test_batcher_merges_waiting_requests_into_one_call() -> None:
    from pipeline.extract.engine import Batcher

    release, seen = threading.Event(), []

    def model(items):
        seen.append(list(items))
        release.wait(5)
        return [x * 10 for x in items]

    batcher = Batcher(model)
    out: dict[int, list[int]] = {}
    first = threading.Thread(target=lambda: out.setdefault(0, batcher([1, 2])))
    first.start()
    while not seen:
        time.sleep(0.01)  # the model is busy with the first request
    others = [threading.Thread(target=lambda i=i: out.setdefault(i, batcher([i * 100, i * 100 + 1]))) for i in (1, 2)]
    for t in others:
        t.start()
    while batcher._q.qsize() < 2:
        time.sleep(0.01)
    release.set()
    for t in (first, *others):
        t.join()
    batcher.close()
    assert out == {0: [10, 20], 1: [1000, 1010], 2: [2000, 2010]}  # each caller gets its own rows back
    assert len(seen) == 2 and sorted(seen[1]) == [100, 101, 200, 201] and batcher.calls == 2  # two waiting -> one call
