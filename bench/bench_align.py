"""Speed of ``depthgait-prep align``: frames/s of the pure alignment and sequences/s of the whole stage.

Builds CASIA-B-sized synthetic extract caches (default 24 sequences of 90 frames, person crops packed
on the 128x96 canvas exactly as extract stores them), then times ``align_frames`` alone and
``run_align`` (HDF5 read, align, write) with 1 and N workers.

    .venv/bin/python bench/bench_align.py --sequences 24 --frames 90 --workers 2
"""

# ruff: noqa: E402  (sys.path is set before the project's imports)
from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.align.batch import run_align
from pipeline.align.frames import align_frames
from pipeline.formats.video_cache import VideoCache, cache_path, read_video_cache, write_video_cache
from pipeline.geometry import pack_canvas, pack_mask, unpack_canvas
from pipeline.manifest import SequenceId


def walker(t: int, shape: tuple[int, int] = (200, 90)) -> tuple[np.ndarray, np.ndarray]:
    """A crude walking figure (head, torso, two swinging legs) and an inverse-depth map over its crop."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    cx, swing = shape[1] / 2, 12 * np.sin(0.4 * t)
    body = ((yy - 18) / 14) ** 2 + ((xx - cx) / 10) ** 2 <= 1
    body |= ((yy - 70) / 40) ** 2 + ((xx - cx) / 18) ** 2 <= 1
    for side in (-1, 1):
        body |= ((yy - 150) / 45) ** 2 + ((xx - cx - side * (6 + swing)) / 7) ** 2 <= 1
    depth = 1.0 / (3.0 + 0.002 * (xx - cx) ** 2 + 0.001 * yy)  # rounder body, feet a bit farther
    return body.astype(np.uint8) * 255, depth.astype(np.float32)


def make_caches(root: Path, n_seq: int, n_frames: int) -> None:
    packed = [pack_mask(walker(t)[0]) for t in range(n_frames)]
    depths = [pack_canvas(walker(t)[1])[0].astype(np.float16) for t in range(n_frames)]
    for i in range(n_seq):
        seq = SequenceId(f"{i:03d}", "nm-01", "090")
        cache = VideoCache(
            video=f"{seq.subject}.avi", subject=seq.subject, condition=seq.condition, view=seq.view, fps=25.0,
            width=320, height=240, n_frames=n_frames, fingerprint="bench", settings={}, depth_near_is_large=True,
            frames=np.arange(n_frames), box=np.zeros((n_frames, 4)), score=np.ones(n_frames),
            crop_box=np.zeros((n_frames, 4)), crop_size=np.array([s for _, s in packed]),
            mask=np.stack([m for m, _ in packed]), depth=np.stack(depths),
        )
        write_video_cache(cache_path(root, seq), cache)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sequences", type=int, default=24)
    parser.add_argument("--frames", type=int, default=90)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        make_caches(root, args.sequences, args.frames)
        cache = read_video_cache(cache_path(root, SequenceId("000", "nm-01", "090")))
        masks = [unpack_canvas(m, s) for m, s in zip(cache.mask, cache.crop_size, strict=True)]
        depths = [unpack_canvas(d, s) for d, s in zip(cache.depth, cache.crop_size, strict=True)]
        align_frames(masks, depths)  # warm up
        start, reps = time.perf_counter(), 5
        for _ in range(reps):
            align_frames(masks, depths)
        per_frame = (time.perf_counter() - start) / (reps * len(masks))
        print(f"align_frames: {1 / per_frame:8.0f} frames/s ({per_frame * 1e6:.0f} us/frame, one core)")
        for workers in sorted({1, args.workers}):
            start = time.perf_counter()
            report = run_align(root, root / f"aligned-{workers}.h5", workers=workers, quiet=True)
            seconds = time.perf_counter() - start
            n = len(report.by_status("ok"))
            print(
                f"run_align workers={workers}: {n / seconds:6.1f} sequences/s, "
                f"{report.frames_kept / seconds:7.0f} frames/s ({n} x {args.frames} frames in {seconds:.2f} s)"
            )
        start = time.perf_counter()
        run_align(root, root / "aligned-1.h5", quiet=True)
        print(f"rerun (up to date, no work): {time.perf_counter() - start:.3f} s")


if __name__ == "__main__":
    main()
