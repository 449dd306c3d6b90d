"""`make reproduce-casiab` on a fake CASIA-B tree: the real target and script, offline backends.

Only the data (a generated tree with CASIA-B's real file names, train subjects 001-002 and test
subjects 075-076) and the weights (background subtraction and the shipped synthetic depth model
instead of YOLO, SAM and Depth Anything) differ from a run on the real dataset.
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import h5py
import pytest

from pipeline.synthetic.dataset import generate_dataset

REPO = Path(__file__).resolve().parent.parent
CONDITIONS = ("nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "bg-01", "cl-01")


@pytest.mark.skipif(shutil.which("make") is None, reason="needs GNU make")
def test_reproduce_casiab_on_a_fake_tree_completes_and_resumes(tmp_path: Path) -> None:
    tree = tmp_path / "DatasetB" / "videos"
    generate_dataset(tree, subjects=[1, 2, 75, 76], views=("000", "090"), conditions=CONDITIONS, frames=16,
                     quiet=True)
    env = dict(os.environ, CASIAB=str(tree), DETECTOR="bgsub", SEGMENTER="bgsub",
               DEPTH="depthgait/synthdepth-small", CONFIG="tiny", ITERATIONS="6", DEVICE="cpu",
               CACHE=str(tmp_path / "cache"), RUNS=str(tmp_path / "runs"), BIN=str(Path(sys.executable).parent),
               TRAIN_ARGS="--quiet")
    cmd = ["make", "--no-print-directory", "-o", ".venv/.installed", "reproduce-casiab"]
    first = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert first.returncode == 0, first.stdout[-3000:] + first.stderr[-3000:]
    assert "GaitBase (sil)" in first.stdout and "DepthGait (ours, this run)" in first.stdout

    report = json.loads((tmp_path / "runs" / "report.json").read_text())
    for condition in ("NM", "BG", "CL"):
        assert len(report[condition]["per_view"]) == 2  # the two views present, in manifest order
        per_view = report[condition]["per_view"]
        assert report[condition]["mean"] == pytest.approx(sum(per_view) / len(per_view))  # the table's mean is of its rows
    with h5py.File(tmp_path / "cache" / "aligned.h5", "r") as h5:
        assert sorted(h5) == ["001", "002", "075", "076"]
        assert sum(len(h5[s][c]) for s in h5 for c in h5[s]) == 4 * len(CONDITIONS) * 2

    # A second run resumes: nothing is extracted or aligned again, training continues from the checkpoint.
    second = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True, timeout=600)
    assert second.returncode == 0, second.stdout[-3000:] + second.stderr[-3000:]
    assert "0 extracted, 56 already done" in second.stdout + second.stderr
    assert "up to date" in second.stdout + second.stderr
