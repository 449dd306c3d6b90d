"""The prepared GPU check runs end to end (tiny sizes on a CPU), so it is known to work before a GPU is at hand."""
from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


def test_gpu_check_smoke_runs_every_part() -> None:
    proc = subprocess.run(
        [sys.executable, str(REPO / "bench" / "gpu_check.py"), "--smoke", "--device", "cpu", "--backends", "yolo-seg",
         "--threads", "1"],
        capture_output=True, text=True, timeout=300, env={**os.environ, "PYTHONPATH": str(REPO)},
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    out = proc.stdout
    rates = re.findall(r"yolo-seg \+ depth, (\d+) in flight: +([\d.]+) frames/s \((\d+) frames, 0 failed\)", out)
    assert [r[0] for r in rates] == ["1", "4"] and all(float(r[1]) > 0 and int(r[2]) > 0 for r in rates), out
    assert re.search(r"train \(tiny recipe.*\): [\d.]+ it/s", out) and re.search(r"embedding: [\d.]+ sequences/s", out), out
