"""Test setup: no test may reach the network, and library caches stay inside a temp folder."""
from __future__ import annotations

import os
import tempfile

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
