"""Tracking on synthetic crowds: ID switches, MOTA, IDF1, box hit rate, spare tracks, mask IoU, frames/s.

Scenes come from ``depthgait-prep synth --people N`` (exact per-walker truth). The step under test is
pluggable: any ``ExtractStep`` (video path -> the tracks of ``pipeline.tools.mot.Track``, either one
list or ``{"trajectory": [...], "kept": [...]}``) can be measured, so a multi-track extract is
benchmarked exactly as the one-track extract of today (``current_extract``: the longest, largest
track of each video, bgsub detector and segmenter), and ``tracked_extract`` (``--tracks all``: every
person track) against it. Each scene is scored four ways, each labelled in the JSON:

- ``trajectory``: each track's trajectory (every frame from its first to its last, boxes
  interpolated where it merged or was hidden) against the walkers' visible-pixel boxes: what
  tracking follows (the issue's acceptance line);
- ``trajectory_amodal``: the same against the whole-body boxes (``full_boxes``, as MOT benchmarks
  annotate: a hidden walker is still there);
- ``kept``: only the clean frames a track keeps for its gait sequence, with the silhouettes' mask IoU;
- ``kept_inside``: the same on the frames a walker is wholly in the picture (extract drops frames
  whose box touches the border on purpose).

``tracking_frames_per_s`` is decode + background subtraction + tracking without segmentation and depth.

    .venv/bin/python bench/bench_crowd.py --people 3 --scenes 2 --frames 80 --json crowd.json
    .venv/bin/python bench/bench_crowd.py --tracks longest      # one track per video, as before
"""

# ruff: noqa: E402  (sys.path is set before the project's imports)
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import h5py
import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from pipeline.synthetic.crowd import generate_crowds, read_crowd_truth
from pipeline.tools.mot import Track, evaluate_tracks, track_from_cache

ExtractStep = Callable[[Path], "list[Track] | dict[str, list[Track]]"]
SCORES = ("trajectory", "trajectory_amodal", "kept", "kept_inside")  # the four ways each scene is scored


def current_extract(detector: str = "bgsub", segmenter: str = "bgsub",
                    depth: str = "depthgait/synthdepth-small") -> ExtractStep:
    """Today's extract on one video: one track (the person present longest and largest)."""
    from pipeline.extract.job import extract_video
    from pipeline.extract.models import load_models
    from pipeline.extract.settings import ExtractSettings
    from pipeline.manifest import SequenceId

    settings = ExtractSettings(detector=detector, segmenter=segmenter, depth=depth)
    models = load_models(settings)

    def step(video: Path) -> list[Track]:
        scene, view = video.stem.rsplit("-", 1)
        cache, _ = extract_video(video, SequenceId(scene, "crowd", view), settings, models)
        return [track_from_cache(cache, track_id=0)]

    return step


def tracked_extract(detector: str = "bgsub", segmenter: str = "bgsub", depth: str = "depthgait/synthdepth-small",
                    tracker: str = "bytetrack") -> ExtractStep:
    """``--tracks all``: every person track of the video (ultralytics' tracker, the quality filters)."""
    from pipeline.extract.job import extract_tracks
    from pipeline.extract.models import load_models
    from pipeline.extract.settings import ExtractSettings
    from pipeline.manifest import SequenceId

    settings = ExtractSettings(detector=detector, segmenter=segmenter, depth=depth, tracks="all", tracker=tracker)
    models = load_models(settings)

    def step(video: Path) -> dict[str, list[Track]]:
        scene, view = video.stem.rsplit("-", 1)
        caches, _ = extract_tracks(video, SequenceId(scene, "crowd", view), settings, models)
        return {"kept": [track_from_cache(cache, track_id=cache.track) for cache in caches],
                "trajectory": [track_from_cache(cache, cache.track, trajectory=True) for cache in caches]}

    return step


def tracking_rate(scenes_dir: Path, tracker: str = "bytetrack") -> float:
    """Frames/s of decode + background subtraction + blob splitting + tracking (no segment, no depth)."""
    from pipeline.extract.bgsub import BackgroundModel
    from pipeline.extract.detect import BgSubDetector
    from pipeline.extract.job import detect_and_follow, follow_people
    from pipeline.extract.settings import ExtractSettings
    from pipeline.extract.track import track_people
    from pipeline.extract.video import VideoReader

    settings = ExtractSettings(detector="bgsub", segmenter="bgsub", tracks="all", tracker=tracker)
    frames, seconds = 0, 0.0
    for video in sorted(scenes_dir.glob("scene-*.avi")):
        start = time.perf_counter()
        reader = VideoReader(video)
        info = reader.info
        det = BgSubDetector()
        det.reset(BackgroundModel(reader.sample(64)), split=True)
        masks, follow = follow_people(settings, det, info)  # exactly as extract follows people
        cands: list[np.ndarray] = []
        for _, batch in reader.batches(16):
            cands.extend(detect_and_follow(batch, det, masks, follow, video))
        track_people(cands, info.width, info.height, info.fps, tracker, raw=follow.raw)
        seconds += time.perf_counter() - start
        frames += len(cands)
    return frames / max(seconds, 1e-9)


def in_picture(boxes: np.ndarray, width: int, height: int) -> np.ndarray:
    """bool [P, T]: the walker is seen and its box does not touch the image border (extract drops those frames)."""
    return (~np.isnan(boxes[..., 0]) & (boxes[..., 0] > 1) & (boxes[..., 1] > 1) & (boxes[..., 2] < width - 1)
            & (boxes[..., 3] < height - 1))


def run_bench(scenes_dir: Path, step: ExtractStep) -> tuple[list[dict], float]:
    """Every scene video through ``step``; per-scene figures (one report per ``SCORES`` entry) and the
    step's frames/s. A step returning one list of tracks has them scored as both trajectory and kept."""
    rows, frames, seconds = [], 0, 0.0
    for video in sorted(scenes_dir.glob("scene-*.avi")):
        path = scenes_dir / "truth" / f"{video.stem}.h5"
        truth = read_crowd_truth(path)
        with h5py.File(path, "r") as h5:
            amodal = h5["full_boxes"][()]  # each walker's box ignoring the others (NaN: out of the picture)
        start = time.perf_counter()
        out = step(video)
        seconds += time.perf_counter() - start
        frames += truth.person.shape[0]
        views = out if isinstance(out, dict) else {"trajectory": out, "kept": out}
        height, width = truth.person.shape[1:]
        row: dict = {"video": video.name, "walkers": len(truth.subjects)}
        row["trajectory"] = evaluate_tracks(truth.boxes, views["trajectory"]).to_dict()
        row["trajectory_amodal"] = evaluate_tracks(amodal, views["trajectory"]).to_dict()
        row["kept"] = evaluate_tracks(truth.boxes, views["kept"], person=truth.person).to_dict()
        row["kept_inside"] = evaluate_tracks(truth.boxes, views["kept"], person=truth.person,
                                             present=in_picture(truth.boxes, width, height)).to_dict()
        rows.append(row)
    return rows, frames / max(seconds, 1e-9)


def summarise(rows: list[dict], hit_share: float = 0.8) -> dict:
    """Means over scenes, and how many walkers are followed on >= ``hit_share`` of their frames."""
    rates = [r for row in rows for r in row["walker_hit_rate"]]
    masks = [t["mask_iou"] for row in rows for t in row["tracks"] if t["mask_iou"] is not None]
    return {
        "scenes": len(rows), "walkers": len(rates),
        "walkers_followed": int(sum(r >= hit_share for r in rates)),
        "id_switches": int(sum(row["num_switches"] for row in rows)),
        "mota": float(np.mean([row["mota"] for row in rows])), "idf1": float(np.mean([row["idf1"] for row in rows])),
        "spare_tracks_max": max((len(row["spare_tracks"]) for row in rows), default=0),
        "mask_iou": float(np.mean(masks)) if masks else None,
        "walker_hit_rate_mean": float(np.mean(rates)) if rates else 0.0,
    }


def summarise_all(rows: list[dict]) -> dict:
    """``summarise`` of each of the ``SCORES``."""
    return {name: summarise([row[name] for row in rows]) for name in SCORES}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--people", type=int, default=3)
    parser.add_argument("--scenes", type=int, default=2)
    parser.add_argument("--frames", type=int, default=80)
    parser.add_argument("--size", default="320x240")
    parser.add_argument("--view", default="090")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tracks", choices=["longest", "all"], default="all")
    parser.add_argument("--tracker", choices=["bytetrack", "botsort"], default="bytetrack")
    parser.add_argument("--json", help="write the per-scene figures and the summary here")
    args = parser.parse_args()

    import torch

    torch.set_num_threads(args.threads)
    work = Path(tempfile.mkdtemp(prefix="bench-crowd-"))
    size = tuple(int(v) for v in args.size.split("x"))
    start = time.perf_counter()
    generate_crowds(work, people=args.people, scenes=args.scenes, views=[args.view], frames=args.frames,
                    size=size, seed=args.seed, quiet=True)
    print(f"{args.scenes} scenes x {args.people} walkers x {args.frames} frames at {args.size}, view {args.view} "
          f"(rendered in {time.perf_counter() - start:.1f} s)")
    step = current_extract() if args.tracks == "longest" else tracked_extract(tracker=args.tracker)
    rows, fps = run_bench(work, step)
    for row in rows:
        for name in ("trajectory", "kept"):
            r = row[name]
            per_track = ", ".join(f"track {t['track_id']}: walker {t['walker']} hit {t['hit_rate']:.2f}"
                                  + (f" mask IoU {t['mask_iou']:.3f}" if t["mask_iou"] is not None else "")
                                  for t in r["tracks"])
            print(f"{row['video']} {name}: switches {r['num_switches']}, MOTA {r['mota']:.3f}, IDF1 {r['idf1']:.3f}, "
                  f"walker hit rates {[round(x, 2) for x in r['walker_hit_rate']]}, spare {len(r['spare_tracks'])}; "
                  f"{per_track}")
    summary: dict = summarise_all(rows)
    summary["frames_per_s"] = fps
    if args.tracks == "all":
        summary["tracking_frames_per_s"] = tracking_rate(work, args.tracker)
    for name in SCORES:
        s = summary[name]
        print(f"{name}: {s['walkers_followed']}/{s['walkers']} walkers followed, hit rate {s['walker_hit_rate_mean']:.2f}, "
              f"{s['id_switches']} ID switches, IDF1 {s['idf1']:.3f}, MOTA {s['mota']:.3f}, spare max "
              f"{s['spare_tracks_max']}" + (f", mask IoU {s['mask_iou']:.3f}" if s["mask_iou"] is not None else ""))
    print("summary:", json.dumps(summary))
    if args.json:
        settings = {k: getattr(args, k) for k in ("people", "scenes", "frames", "size", "view", "seed", "tracks", "tracker")}
        Path(args.json).write_text(json.dumps({"settings": settings, "summary": summary, "scenes": rows}, indent=1))


if __name__ == "__main__":
    main()
