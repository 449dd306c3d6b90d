"""Test setup: no test may reach the network, and library caches stay inside a temp folder."""
from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Iterator

import pytest

# Set before any library import: a Hub name would otherwise retry for a minute before failing.
os.environ["HF_HUB_OFFLINE"] = "1"
os.environ["TRANSFORMERS_OFFLINE"] = "1"
os.environ["HF_DATASETS_OFFLINE"] = "1"
os.environ["YOLO_OFFLINE"] = "1"
os.environ["YOLO_AUTOINSTALL"] = "0"
os.environ.setdefault("YOLO_CONFIG_DIR", tempfile.mkdtemp(prefix="depthgait-yolo-cfg-"))
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("TQDM_DISABLE", "1")
# One intra-op thread: on a 2-core CI machine two torch threads per test slow everything down.
os.environ.setdefault("OMP_NUM_THREADS", "1")


@pytest.fixture(autouse=True)
def one_torch_thread() -> Iterator[None]:
    """Every test starts on one torch thread, whatever an earlier test set (2 shared cores)."""
    torch = sys.modules.get("torch")
    before = torch.get_num_threads() if torch else None
    if torch:
        torch.set_num_threads(1)
    yield
    if torch and before:
        torch.set_num_threads(before)
