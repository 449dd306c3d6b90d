"""Speed of ``depthgait-prep extract`` (bgsub + a depth model): frames/s one frame at a time, batched,
and batched with several videos in flight (``--streams``), the depth model's busy share, the cost of
each stage, and bytes per frame of the caches.

Videos come from the synthetic generator (lateral 090 views, CASIA-B's 320x240). The depth model is
a local folder (``--depth``) or, by default, the Depth Anything V2-Small architecture with random
weights (same cost as the real checkpoint, which cannot be downloaded here).

    .venv/bin/python bench/bench_extract.py --videos 2 --frames 40 --threads 2
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

from pipeline.extract.batch import run_extract
from pipeline.extract.models import load_models
from pipeline.extract.settings import ExtractSettings
from pipeline.formats.video_cache import list_caches, read_video_cache


def small_depth_model(folder: Path) -> Path:
    """Depth Anything V2-Small's architecture (DINOv2-S backbone, 24.8 M parameters), random weights."""
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, DPTImageProcessor

    model = DepthAnythingForDepthEstimation(DepthAnythingConfig())
    model.save_pretrained(folder)
    DPTImageProcessor(size={"height": 518, "width": 518}, keep_aspect_ratio=True, ensure_multiple_of=14,
                      image_mean=[0.485, 0.456, 0.406], image_std=[0.229, 0.224, 0.225]).save_pretrained(folder)
    print(f"depth model: Depth Anything V2-Small architecture, {sum(p.numel() for p in model.parameters()) / 1e6:.1f} M params")
    return folder


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--videos", type=int, default=2)
    parser.add_argument("--frames", type=int, default=40)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--depth", help="local depth model folder [default: random V2-Small architecture]")
    parser.add_argument("--input-height", type=int, default=266, help="depth model input height of a crop")
    parser.add_argument("--batch-size", type=int, default=16)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--streams", type=int, default=2, help="videos in flight in the engine run")
    args = parser.parse_args()

    import torch

    from pipeline.synthetic.dataset import generate_dataset

    torch.set_num_threads(args.threads)
    size = tuple(int(v) for v in args.size.split("x"))
    work = Path(tempfile.mkdtemp(prefix="bench-extract-"))
    generate_dataset(work / "videos", subjects=args.videos, views=["090"], conditions=["nm-01"], frames=args.frames,
                     size=size, quiet=True)
    depth = args.depth or str(small_depth_model(work / "depth"))
    print(f"{args.videos} videos x {args.frames} frames at {args.size}, {args.threads} torch threads")

    from gpu_check import Timed

    from pipeline.extract.models import Models

    results = {}
    runs = [("one frame at a time", 1, 1), (f"batch {args.batch_size}", args.batch_size, 1),
            (f"batch {args.batch_size}, {args.streams} videos in flight", args.batch_size, args.streams)]
    for label, batch, streams in runs:
        settings = ExtractSettings(depth=depth, batch_size=batch, depth_input_height=args.input_height,
                                   threads=args.threads)
        loaded = load_models(settings)  # loading is not part of the rate
        est = Timed(loaded.depth, "cpu", "estimate")
        cache = work / f"cache-b{batch}-s{streams}"
        start = time.perf_counter()
        summary = run_extract(work / "videos", cache, settings, quiet=True, streams=streams,
                              models=Models(loaded.detector, loaded.segmenter, est))
        seconds = time.perf_counter() - start
        assert summary.failed == 0, summary.rows
        results[label] = summary.frames / seconds
        print(f"{label:>36}: {summary.frames} frames in {seconds:.1f} s = {results[label]:.2f} frames/s; "
              f"depth model busy {100 * est.seconds / seconds:.0f}% of the wall time")
    base = results[runs[0][0]]
    print("speed-up over one frame at a time: " + ", ".join(f"{k} {v / base:.2f}x" for k, v in list(results.items())[1:]))

    # Stage costs on one video, batched.
    settings = ExtractSettings(depth=depth, batch_size=args.batch_size, depth_input_height=args.input_height)
    models = load_models(settings)
    from pipeline.extract.bgsub import BackgroundModel
    from pipeline.extract.video import VideoReader

    video = sorted((work / "videos").glob("*.avi"))[0]
    t0 = time.perf_counter()
    frames = np.concatenate([f for _, f in VideoReader(video).batches(64)])
    t1 = time.perf_counter()
    bg = BackgroundModel(frames)
    t2 = time.perf_counter()
    masks = [bg.blobs(bg.foreground(f)) for f in frames]
    t3 = time.perf_counter()
    boxes = [m[0, :4].astype(int) for m in masks if len(m)]
    crops = [np.ascontiguousarray(f[y0:y1, x0:x1, ::-1]) for f, (x0, y0, x1, y1) in zip(frames, boxes, strict=False)]
    models.depth.estimate(crops[:2])
    t4 = time.perf_counter()
    models.depth.estimate(crops)
    t5 = time.perf_counter()
    n = len(frames)
    print(f"per frame: decode {1e3 * (t1 - t0) / n:.2f} ms, background median {1e3 * (t2 - t1) / n:.2f} ms, "
          f"MOG2 + blobs {1e3 * (t3 - t2) / n:.2f} ms, depth {1e3 * (t5 - t4) / len(crops):.1f} ms per crop "
          f"(crop ~{np.mean([c.shape[0] for c in crops]):.0f}x{np.mean([c.shape[1] for c in crops]):.0f} px, "
          f"model input {models.depth.input_hw[0]}x{models.depth.input_hw[1]})")

    sizes = [(p.stat().st_size, len(read_video_cache(p))) for p in list_caches(work / f"cache-b{args.batch_size}-s1")]
    per_frame = [b / max(t, 1) for b, t in sizes]
    print(f"cache: {np.mean(per_frame) / 1024:.1f} KB per frame (min {min(per_frame) / 1024:.1f}, max "
          f"{max(per_frame) / 1024:.1f}; budget 40 KB)")
    # Random weights give smooth maps that compress well; white noise in the valid region is the worst case.
    from dataclasses import replace

    from pipeline.formats.video_cache import write_video_cache

    record = read_video_cache(list_caches(work / f"cache-b{args.batch_size}-s1")[0])
    noisy = np.zeros(record.depth.shape, np.float16)
    for i, (h, w) in enumerate(record.crop_size):
        noisy[i, :h, :w] = np.random.default_rng(i).uniform(0, 10, (h, w))
    worst = write_video_cache(work / "worst.h5", replace(record, depth=noisy))
    print(f"cache, depth as white noise (upper bound): {worst.stat().st_size / len(record) / 1024:.1f} KB per frame")


if __name__ == "__main__":
    main()
