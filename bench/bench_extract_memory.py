"""Peak memory of ``depthgait-prep extract`` against video length: 1080p, 20 s against 60 s.

The cache is streamed batch by batch, so peak RSS must not grow with the video (the budget: the
two differ by at most 150 MB and both stay under 2 GiB). Each extract runs in its own subprocess
(``resource.getrusage(RUSAGE_SELF).ru_maxrss`` of that process alone), with bgsub and the shipped
small depth model. The videos are a textured static scene with a walker crossing it, MJPG at 25 fps.

    .venv/bin/python bench/bench_extract_memory.py --seconds 20 60 [--fps 10 on a slow 2-core machine]
    .venv/bin/python bench/bench_extract_memory.py --crowd --seconds 10 30 --fps 10 --size 1280x720

``--crowd``: ``--tracks all`` over bgsub blobs instead, on a synthetic crowd of 3 walkers (80 frames of
``depthgait-prep synth --people 3``, rendered once at ``--size``) played over and over to the length
asked: the blobs' crops (foreground and colour codes) the tracker reads must not be held for the video.

Up to 64 frames sampled for the median background (400 MB at 1080p) are the one cost that grows
with the video, and only up to 64 frames (2.6 s at 25 fps).
"""

# ruff: noqa: E402  (sys.path is set before the project's imports)
from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))


def write_walker(path: Path, seconds: float, size: tuple[int, int] = (1920, 1080), fps: int = 25) -> int:
    """A static textured scene and a person-sized shape walking across it; returns the frame count."""
    import cv2

    w, h = size
    n = int(seconds * fps)
    rng = np.random.default_rng(0)
    bg = cv2.resize(rng.integers(40, 200, (h // 8, w // 8, 3), dtype=np.uint8), (w, h), interpolation=cv2.INTER_CUBIC)
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (w, h))
    for t in range(n):
        frame = bg.copy()
        phase = (t % (8 * fps)) / (4 * fps)  # walks across in 4 s and back, never leaving: one track
        x = int(w * 0.1 + w * 0.8 * (phase if phase <= 1 else 2 - phase))
        cv2.ellipse(frame, (x, h // 2), (w // 40, h // 4), 0, 0, 360, (30, 60, 220), -1)
        cv2.circle(frame, (x, h // 2 - h // 4 - h // 20), h // 20, (40, 80, 200), -1)
        writer.write(frame)
    writer.release()
    return n


def write_crowd(path: Path, scene: Path, frames: int, fps: int) -> int:
    """The synthetic crowd video ``scene`` played over and over (MJPG) up to ``frames``; returns the frame count."""
    import cv2

    from pipeline.extract.video import VideoReader

    clip = np.concatenate([f for _, f in VideoReader(scene).batches(16)])
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"MJPG"), fps, (clip.shape[2], clip.shape[1]))
    for t in range(frames):
        writer.write(clip[t % len(clip)])
    writer.release()
    return frames


def child(videos: Path, cache: Path, depth: str, batch: int, threads: int, crowd: bool = False) -> None:
    """Run one extract in this process and print its peak RSS (JSON on the last line)."""
    from pipeline.extract.batch import run_extract
    from pipeline.extract.settings import ExtractSettings

    settings = ExtractSettings(depth=depth, batch_size=batch, threads=threads, tracks="all" if crowd else None)
    start = time.perf_counter()
    summary = run_extract(videos, cache, settings, "synthetic", layout="footage" if crowd else "names", quiet=True)
    seconds = time.perf_counter() - start
    assert summary.done == 1 and summary.failed == 0, summary.rows
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # KiB on Linux
    print(json.dumps({"peak_rss": peak, "frames": summary.frames, "seconds": seconds}))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, nargs="+", default=[20, 60])
    parser.add_argument("--depth", default="depthgait/synthdepth-small", help="depth model [the shipped small one]")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--fps", type=int, default=25, help="frame rate of the generated videos (CASIA-B: 25)")
    parser.add_argument("--crowd", action="store_true", help="--tracks all on a looped synthetic crowd of 3 walkers")
    parser.add_argument("--size", default="1920x1080", help="frame size WxH [1080p]")
    parser.add_argument("--child", nargs=2, metavar=("VIDEOS", "CACHE"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(Path(args.child[0]), Path(args.child[1]), args.depth, args.batch_size, args.threads, args.crowd)
        return
    work = Path(tempfile.mkdtemp(prefix="bench-extract-memory-"))
    size = tuple(int(v) for v in args.size.split("x"))
    scene = None
    if args.crowd:
        from pipeline.synthetic.crowd import generate_crowds

        scene = generate_crowds(work / "synth", people=3, scenes=1, frames=80, size=size, seed=0, quiet=True,
                                backgrounds=False)[0]
    peaks = {}
    for seconds in args.seconds:
        videos = work / f"v{seconds:g}"
        videos.mkdir()
        if scene is not None:
            n = write_crowd(videos / "crowd.avi", scene, int(seconds * args.fps), args.fps)
        else:
            n = write_walker(videos / "001-nm-01-090.avi", seconds, size, fps=args.fps)
        cmd = [sys.executable, __file__, "--child", str(videos), str(work / f"cache{seconds:g}"), "--depth", args.depth,
               "--batch-size", str(args.batch_size), "--threads", str(args.threads), *(["--crowd"] if args.crowd else [])]
        out = subprocess.run(cmd, check=True, capture_output=True, text=True, env={**os.environ, "TQDM_DISABLE": "1"})
        res = json.loads(out.stdout.strip().splitlines()[-1])
        peaks[seconds] = res["peak_rss"]
        what = "3-walker crowd, --tracks all" if args.crowd else "one walker"
        print(f"{args.size} {what}, {seconds:g} s at {args.fps} fps ({n} frames, {res['frames']} in tracks): peak RSS "
              f"{res['peak_rss'] / 2**20:.0f} MB, {res['seconds']:.0f} s ({res['frames'] / res['seconds']:.1f} frames/s)")
    if len(peaks) >= 2:
        lo, hi = min(peaks), max(peaks)
        diff = (peaks[hi] - peaks[lo]) / 2**20
        top = max(peaks.values()) / 2**30
        ok = diff <= 150 and top <= 2
        print(f"peak RSS {hi:g} s - {lo:g} s: {diff:+.0f} MB (budget 150 MB); highest {top:.2f} GiB (budget 2 GiB): "
              f"{'OK' if ok else 'OVER BUDGET'}")


if __name__ == "__main__":
    main()
