"""Extract through joblib's Dask backend gives the same caches as a plain run."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from tiny_models import save_tiny_depth_anything

from pipeline.extract.batch import run_extract
from pipeline.extract.settings import ExtractSettings
from pipeline.formats.video_cache import list_caches, read_video_cache
from pipeline.synthetic.dataset import generate_dataset

distributed = pytest.importorskip("dask.distributed")


def test_dask_backend_matches_a_local_run(tmp_path: Path) -> None:
    videos = tmp_path / "videos"
    generate_dataset(videos, subjects=1, views=("090",), conditions=("nm-01", "bg-01"), frames=10, quiet=True)
    settings = ExtractSettings(depth=str(save_tiny_depth_anything(tmp_path / "depth")), depth_input_height=56)
    local = run_extract(videos, tmp_path / "local", settings, "synthetic", quiet=True)
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, dashboard_address=None) as cluster:
        remote = run_extract(videos, tmp_path / "dask", settings, "synthetic", quiet=True,
                             scheduler=cluster.scheduler_address)
        assert cluster.scheduler.transition_counter > 0  # the videos really went through the scheduler
    assert (local.done, remote.done, remote.failed) == (2, 2, 0)
    pairs = list(zip(list_caches(tmp_path / "local"), list_caches(tmp_path / "dask"), strict=True))
    assert len(pairs) == 2
    for a, b in pairs:
        ca, cb = read_video_cache(a), read_video_cache(b)
        np.testing.assert_array_equal(ca.mask, cb.mask)
        np.testing.assert_array_equal(ca.depth, cb.depth)
        np.testing.assert_array_equal(ca.box, cb.box)


def test_missing_dask_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import sys

    from pipeline.extract.batch import dask_backend

    monkeypatch.setitem(sys.modules, "dask.distributed", None)
    with pytest.raises(ValueError, match="pip install 'dask\\[distributed\\]'"):
        with dask_backend("tcp://nowhere:8786"):
            pass
