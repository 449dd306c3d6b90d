"""Tracking figures: hand-made tracks whose ID switches, MOTA, IDF1, hit rates and spares are known."""
from __future__ import annotations

import numpy as np
import pytest

from pipeline.errors import InputError
from pipeline.tools.mot import Track, box_iou, evaluate_tracks, track_from_cache

T = 10


def walkers() -> np.ndarray:
    """Two walkers, 10 frames: A moves right along the top, B stays bottom-left; B is absent in frames 8-9."""
    boxes = np.full((2, T, 4), np.nan)
    for f in range(T):
        boxes[0, f] = [10 + 5 * f, 0, 30 + 5 * f, 40]
        if f < 8:
            boxes[1, f] = [0, 60, 20, 100]
    return boxes


def follow(truth: np.ndarray, p: int, track_id: int, frames: range | list[int]) -> Track:
    frames = list(frames)
    return Track(track_id, frames, truth[p, frames])


def test_box_iou_by_value() -> None:
    iou = box_iou(np.array([[0, 0, 10, 10]]), np.array([[0, 0, 10, 10], [5, 0, 15, 10], [20, 20, 30, 30],
                                                        [np.nan] * 4]))
    assert np.allclose(iou, [[1.0, 50 / 150, 0.0, 0.0]])
    assert iou.dtype == np.float64  # float64 boxes are scored in float64


def test_box_iou_keeps_float32_and_extra_columns() -> None:
    """Extract's candidates are float32 x0 y0 x1 y1 score rows: scored in float32, the score column ignored."""
    a = np.array([[0, 0, 4, 4, 0.9]], np.float32)
    b = np.array([[2, 0, 6, 4, 0.1], [0, 0, 0, 4, 0.5]], np.float32)  # the second box has no area
    iou = box_iou(a, b)
    assert iou.dtype == np.float32 and iou.shape == (1, 2)
    assert np.allclose(iou, [[8 / 24, 0.0]])


def test_perfect_tracks() -> None:
    truth = walkers()
    report = evaluate_tracks(truth, [follow(truth, 0, 7, range(T)), follow(truth, 1, 9, range(8))])
    assert report.num_switches == 0 and report.mota == 1.0 and report.idf1 == 1.0
    assert report.num_truth == 18 and report.spare_tracks == []
    assert [(f.track_id, f.walker, f.hit_rate) for f in report.tracks] == [(7, 0, 1.0), (9, 1, 1.0)]
    assert report.walker_hit_rate == [1.0, 1.0]


def test_a_swap_counts_switches_and_lowers_idf1() -> None:
    truth = walkers()
    # Track 1 follows A for frames 0-3 then B for 4-7; track 2 the other way round.
    one = Track(1, range(8), np.concatenate([truth[0, :4], truth[1, 4:8]]))
    two = Track(2, range(8), np.concatenate([truth[1, :4], truth[0, 4:8]]))
    report = evaluate_tracks(truth, [one, two])
    assert report.num_switches == 2
    assert report.num_misses == 2 and report.num_false_positives == 0  # A's frames 8-9 are not covered
    assert report.mota == pytest.approx(1 - (2 + 2) / 18)
    # The best identity mapping keeps 4 of each track's 8 frames: IDTP = 8, IDF1 = 2*8 / (16 + 18).
    assert report.idf1 == pytest.approx(16 / 34)
    assert sorted(report.walker_hit_rate) == [pytest.approx(4 / 10), pytest.approx(4 / 8)]


def test_spare_track_and_partial_follow() -> None:
    truth = walkers()
    ghost = Track(5, range(T), np.tile([200.0, 200, 220, 240], (T, 1)))  # follows nobody
    half = follow(truth, 0, 3, range(5))
    shifted = Track(4, range(8), truth[1, :8] + [8, 0, 8, 0])  # IoU 12/28 < 0.5: never matched
    report = evaluate_tracks(truth, [half, ghost, shifted])
    assert report.spare_tracks == [5, 4]
    assert report.num_false_positives == T + 8
    assert report.num_misses == 5 + 8
    assert report.walker_hit_rate == [0.5, 0.0]
    assert report.tracks[0].walker == 0 and report.tracks[0].hit_rate == 0.5


def test_mask_iou_against_the_person_map() -> None:
    truth = np.full((1, 2, 4), np.nan)
    truth[0] = [[0, 0, 4, 4], [0, 0, 4, 4]]
    person = np.zeros((2, 6, 6), np.uint8)
    person[:, :4, :4] = 1
    masks = np.zeros((2, 6, 6), bool)
    masks[0, :4, :4] = True  # exact
    masks[1, :4, :2] = True  # half
    report = evaluate_tracks(truth, [Track(0, [0, 1], truth[0], masks)], person=person)
    assert report.tracks[0].mask_iou == pytest.approx(0.75)


def test_bad_tracks_are_clear_errors() -> None:
    truth = walkers()
    with pytest.raises(InputError, match="frame 10 outside"):
        evaluate_tracks(truth, [Track(1, [10], [[0, 0, 1, 1]])])
    with pytest.raises(InputError, match="share one track id"):
        evaluate_tracks(truth, [follow(truth, 0, 1, [0]), follow(truth, 1, 1, [0])])
    with pytest.raises(InputError, match="2 frames but 1 boxes"):
        Track(1, [0, 1], [[0, 0, 1, 1]])


def test_track_from_cache_pastes_the_silhouette_back() -> None:
    from pipeline.formats.video_cache import VideoCache
    from pipeline.geometry import CANVAS, pack_mask

    frame = np.zeros((60, 80), bool)
    frame[25:45, 14:30] = True  # inside the crop box x 10..34, y 20..52 (24 x 32: scales x4 onto the canvas)
    packed, size = pack_mask(frame[20:52, 10:34])
    cache = VideoCache(video="v.avi", subject="s", condition="c", view="090", fps=25.0, width=80, height=60,
                       n_frames=3, fingerprint="", settings={}, depth_near_is_large=False, frames=[2],
                       box=[[14, 25, 30, 45]], score=[1.0], crop_box=[[10, 20, 34, 52]], crop_size=[size],
                       mask=packed[None], depth=np.zeros((1, *CANVAS)))
    track = track_from_cache(cache, track_id=4)
    assert track.track_id == 4 and track.frames.tolist() == [2]
    assert np.array_equal(track.masks[0], frame)
    same = track_from_cache(cache, track_id=4, trajectory=True)  # no trajectory stored: the kept frames
    assert same.frames.tolist() == [2] and same.masks is None and np.array_equal(same.boxes, cache.box)


def test_a_cache_trajectory_round_trips_and_is_what_tracking_is_scored_on(tmp_path) -> None:
    from pipeline.formats.video_cache import TRACK_STATES, VideoCache, check_cache, read_video_cache, write_video_cache
    from pipeline.geometry import CANVAS

    frames = [3, 6]  # kept; 4-5 merged with someone, on the line between 3 and 6
    path_boxes = np.array([[0, 0, 10, 20], [2, 0, 12, 20], [4, 0, 14, 20], [6, 0, 16, 20]], np.float32)
    state = [TRACK_STATES.index(s) for s in ("kept", "merged", "merged", "kept")]
    cache = VideoCache(video="v.avi", subject="s.1", condition="c", view="090", fps=25.0, width=80, height=60,
                       n_frames=8, fingerprint="f", settings={}, depth_near_is_large=False, frames=frames,
                       box=path_boxes[[0, 3]], score=[1.0, 1.0], crop_box=[[0, 0, 10, 20]] * 2,
                       crop_size=[[20, 10]] * 2, mask=np.zeros((2, *CANVAS)), depth=np.zeros((2, *CANVAS)),
                       track=1, track_frames=[3, 4, 5, 6], track_boxes=path_boxes, track_state=state)
    back = read_video_cache(write_video_cache(tmp_path / "c.h5", cache))
    assert check_cache(back.path, "f") is None
    got = back.trajectory()
    assert got[0].tolist() == [3, 4, 5, 6] and np.array_equal(got[1], path_boxes) and got[2].tolist() == [0, 1, 1, 0]
    assert back.frames.tolist() == [3, 6]  # the gait sequence stays the kept frames
    track = track_from_cache(back, 1, trajectory=True)
    truth = np.full((1, 8, 4), np.nan)
    truth[0, 3:7] = path_boxes
    assert evaluate_tracks(truth, [track]).walker_hit_rate == [1.0]
    assert evaluate_tracks(truth, [track_from_cache(back, 1)]).walker_hit_rate == [0.5]
    from dataclasses import replace

    from pipeline.formats.video_cache import ExtractCacheError

    with pytest.raises(ExtractCacheError, match="track_state and track_frames differ"):
        replace(cache, track_state=state[:3])


def test_bench_takes_any_extract_step(tmp_path) -> None:
    """bench_crowd's plug: a step that returns the truth itself scores perfectly on a rendered crowd."""
    import importlib.util
    from pathlib import Path

    from pipeline.synthetic.crowd import generate_crowds, read_crowd_truth

    spec = importlib.util.spec_from_file_location("bench_crowd", Path(__file__).parent.parent / "bench" / "bench_crowd.py")
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    generate_crowds(tmp_path, people=2, frames=12, size=(96, 72), quiet=True, backgrounds=False)

    def oracle(video: Path) -> list[Track]:
        truth = read_crowd_truth(tmp_path / "truth" / f"{video.stem}.h5")
        tracks = []
        for p, boxes in enumerate(truth.boxes):
            seen = np.flatnonzero(~np.isnan(boxes[:, 0]))
            tracks.append(Track(10 + p, seen, boxes[seen], truth.person[seen] == p + 1))
        return tracks

    rows, fps = bench.run_bench(tmp_path, oracle)
    assert len(rows) == 1 and fps > 0 and set(bench.SCORES) <= set(rows[0])
    kept = rows[0]["kept"]
    assert kept["mota"] == 1.0 and kept["idf1"] == 1.0 and kept["num_switches"] == 0
    assert [t["mask_iou"] for t in kept["tracks"]] == [1.0, 1.0]
    assert rows[0]["trajectory"]["idf1"] == 1.0  # one list: scored as the trajectory too, without masks
    assert [t["mask_iou"] for t in rows[0]["trajectory"]["tracks"]] == [None, None]
    summary = bench.summarise_all(rows)
    assert summary["kept"]["walkers_followed"] == 2 and summary["kept"]["spare_tracks_max"] == 0
    assert summary["trajectory_amodal"]["walkers"] == 2
