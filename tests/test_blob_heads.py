"""Heads along a blob's top edge (pipeline.extract.blob_heads): one walker shows one, two walkers side by
side show two, and a blob of two walkers that no track has seen apart is never a gait frame."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.extract.blob_heads import head_columns
from pipeline.synthetic.dataset import render_sequence, subject_params

SIZE = (160, 120)


def _crop(mask: np.ndarray) -> tuple[np.ndarray, int] | None:
    """The mask's bounding crop and its left column; None where the body touches the picture's edge."""
    ys, xs = np.nonzero(mask)
    h, w = mask.shape
    if not len(ys) or xs.min() <= 2 or ys.min() <= 2 or xs.max() >= w - 3 or ys.max() >= h - 3:
        return None
    return mask[ys.min():ys.max() + 1, xs.min():xs.max() + 1], int(xs.min())


def test_one_walker_shows_one_head() -> None:
    """Every condition (a bag, a coat), frontal, oblique and side views, every phase of the stride."""
    seen = 0
    for subject in (1, 2, 3):
        for view in ("000", "054", "090", "144"):
            for condition in ("nm-01", "bg-01", "cl-01"):
                for mask in render_sequence(subject_params(subject), view, condition, frames=10, size=SIZE).mask:
                    crop = _crop(mask)
                    if crop is not None:
                        seen += 1
                        assert len(head_columns(crop[0])) == 1, (subject, view, condition)
    assert seen >= 300


def _head_span(mask: np.ndarray) -> tuple[int, int]:
    """Columns of the top 10% of a walker's rows (its head)."""
    ys, xs = np.nonzero(mask)
    head = ys <= ys.min() + 0.1 * (ys.max() - ys.min())
    return int(xs[head].min()), int(xs[head].max())


def test_two_walkers_side_by_side_show_two_heads() -> None:
    """Two walkers overlapping, the second raised a tenth of a height and a third of a height to the left:
    two heads, one on each walker's head, on every frame of the stride."""
    near = render_sequence(subject_params(1), "090", "nm-01", frames=12, size=SIZE).mask
    far = render_sequence(subject_params(2), "090", "nm-01", frames=12, size=SIZE, seed=1).mask
    found = 0
    for a, b in zip(near, far, strict=True):
        ys, _ = np.nonzero(a)
        height = int(ys.max() - ys.min())
        b = np.roll(b, (-int(0.1 * height), -int(0.35 * height)), axis=(0, 1))  # up and to the left
        pair = _crop(a | b)
        assert pair is not None
        crop, left = pair
        heads = [left + c for c in head_columns(crop)]
        if len(heads) == 2:
            found += 1
            for col, walker in zip(sorted(heads, key=lambda c: -c), (a, b), strict=True):
                lo, hi = _head_span(walker)
                assert lo - 2 <= col <= hi + 2
        assert len(heads) <= 2
    assert found == 12


@pytest.fixture(scope="module")
def pair_scene(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """Seed 1, scene 2 of the crowd bench: two walkers come in together at the left edge and walk side by
    side, the farther one a little behind, never apart; a third walks the other way."""
    from pipeline.synthetic.crowd import render_crowd, scene_walkers, write_crowd_truth
    from pipeline.synthetic.dataset import write_video

    out = tmp_path_factory.mktemp("pair")
    crowd = render_crowd(scene_walkers(2, [4, 5, 6], ["nm-01"], 80, 1), "090", 80, (320, 240), 1, 2)
    return write_video(out / "scene-2-090.avi", crowd.rgb), write_crowd_truth(out / "scene-2-090.h5", crowd)


def _tracks(video: Path, heads: bool):
    from pipeline.extract.bgsub import BackgroundModel
    from pipeline.extract.detect import BgSubDetector
    from pipeline.extract.track import BlobMasks, track_people
    from pipeline.extract.track_stream import run_tracker
    from pipeline.extract.video import VideoReader

    reader = VideoReader(video)
    det = BgSubDetector()
    det.reset(BackgroundModel(reader.sample(64)), split=True)
    masks = BlobMasks()
    cands = [c for _, frames in reader.batches(16) for c in masks.detect(det, frames)]
    width, height = reader.info.width, reader.info.height
    raw = run_tracker(cands, "bytetrack", reader.info.fps, True, masks, size=(width, height), heads=heads)
    return track_people(cands, width, height, reader.info.fps, raw=raw)


def _two_person_frames(track, person: np.ndarray) -> int:
    """Kept (gait) frames of ``track`` whose box holds two walkers, each with >= 15% of its visible pixels."""
    count = 0
    for t, (x0, y0, x1, y1) in zip(track.frames, track.boxes[:, :4].astype(int), strict=True):
        ids, n = np.unique(person[t, y0:y1, x0:x1], return_counts=True)
        count += int(((ids > 0) & (n >= 0.15 * n[ids > 0].sum())).sum() >= 2)
    return count


def test_a_pair_never_seen_apart_gives_no_gait_frame(pair_scene: tuple[Path, Path]) -> None:
    """Without the head test the track that follows the pair keeps 48 two-person silhouettes as its gait
    sequence; with it, 13 (where one head hides the other). Where every track goes is the same either way."""
    from pipeline.synthetic.crowd import read_crowd_truth

    video, truth_path = pair_scene
    person = read_crowd_truth(truth_path).person
    before, _ = _tracks(video, heads=False)
    after, stats = _tracks(video, heads=True)
    assert [t.trajectory.frames.tolist() for t in before] == [t.trajectory.frames.tolist() for t in after]
    for a, b in zip(before, after, strict=True):
        np.testing.assert_array_equal(a.trajectory.boxes, b.trajectory.boxes)
    mixed_before = sum(_two_person_frames(t, person) for t in before)
    mixed_after = sum(_two_person_frames(t, person) for t in after)
    assert stats.blobs_two_heads >= 20
    assert mixed_before >= 30 and mixed_after <= mixed_before // 3, (mixed_before, mixed_after)
