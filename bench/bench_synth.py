"""Speed of the synthetic generator: seconds per 320x240, 60-frame video (target: under 2 s on one core).

Times ``render_sequence`` alone (ray-casting, shading, noise) and the whole per-video job
(render + FFV1 video + compressed HDF5 truth) over a spread of views and conditions, on one
thread, and reports file sizes per frame.

    .venv/bin/python bench/bench_synth.py --videos 6 --frames 60
"""

# ruff: noqa: E402  (sys.path is set before the project's imports)
from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):  # one core, before numpy loads
    os.environ.setdefault(_var, "1")

import argparse
import sys
import tempfile
import time
from pathlib import Path

import cv2

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
cv2.setNumThreads(1)

from pipeline.synthetic.dataset import (
    CONDITIONS,
    VIEWS,
    render_sequence,
    subject_params,
    video_name,
    write_truth,
    write_video,
)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--videos", type=int, default=6)
    parser.add_argument("--frames", type=int, default=60)
    parser.add_argument("--size", default="320x240")
    args = parser.parse_args()
    size = tuple(int(v) for v in args.size.split("x"))
    jobs = [(1 + k % 3, CONDITIONS[(3 * k) % len(CONDITIONS)], VIEWS[(5 * k) % len(VIEWS)]) for k in range(args.videos)]

    render_s, total_s, cpu_s, video_bytes, truth_bytes = [], [], [], 0, 0
    with tempfile.TemporaryDirectory() as tmp:
        render_sequence(subject_params(1), "090", "nm-01", 2, size)  # warm-up (imports, caches)
        for index, condition, view in jobs:
            c0, t0 = time.process_time(), time.perf_counter()
            seq = render_sequence(subject_params(index), view, condition, args.frames, size)
            t1 = time.perf_counter()
            name = video_name(index, condition, view)
            video = write_video(Path(tmp) / f"{name}.avi", seq.rgb)
            truth = write_truth(Path(tmp) / "truth" / f"{name}.h5", seq)
            t2, c2 = time.perf_counter(), time.process_time()
            cpu_s.append(c2 - c0)
            render_s.append(t1 - t0)
            total_s.append(t2 - t0)
            video_bytes += video.stat().st_size
            truth_bytes += truth.stat().st_size
            print(f"{name}: render {t1 - t0:.2f} s, render + write {t2 - t0:.2f} s wall, {c2 - c0:.2f} s CPU")
    n_frames = args.frames * len(jobs)
    mean_total, mean_cpu = sum(total_s) / len(total_s), sum(cpu_s) / len(cpu_s)
    print(f"\n{len(jobs)} videos of {args.frames} frames at {size[0]}x{size[1]}, one thread:")
    print(f"  render only      {sum(render_s) / len(render_s):.2f} s/video")
    print(f"  render + write   {mean_total:.2f} s/video wall, {mean_cpu:.2f} s/video CPU"
          f"  (target < 2 s on one core: {'met' if mean_cpu < 2 else 'MISSED'}; wall > CPU means a busy machine)")
    print(f"  video  {video_bytes / n_frames / 1024:.0f} KB/frame (FFV1), truth {truth_bytes / n_frames / 1024:.1f} KB/frame")


if __name__ == "__main__":
    main()
