"""Outdoor footage: a fluttering tape, the sun coming out, and people stacked in depth (PETS 2009 S2L1's troubles).

The frames are drawn here at PETS' size (768 x 576): a textured background, walkers as a torso and legs with a
thin arm and a foot, a tape a few rows thick across the picture, and a brighter half of the picture.
"""
from __future__ import annotations

import numpy as np

from pipeline.extract.bgsub import BackgroundModel
from pipeline.extract.ground_height import TALL, HeightLine, fill_of_one, fit_height_line

H, W = 576, 768


def _background(seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    ramp = np.linspace(70, 170, W, dtype=np.float32)[None, :, None]
    noise = rng.normal(0, 3, (H, W, 3)).astype(np.float32)
    return np.clip(ramp + noise, 0, 255).astype(np.uint8)


def _walker(frame: np.ndarray, x: int, y_top: int, height: int = 120) -> np.ndarray:
    """Draw a dark walker (torso, two legs, a 2-row arm held out, a 3-row foot); return its bool mask."""
    mask = np.zeros(frame.shape[:2], bool)
    w = height // 4
    mask[y_top : y_top + height // 2, x : x + w] = True  # head and torso
    mask[y_top + height // 2 : y_top + height, x : x + w // 3] = True  # legs
    mask[y_top + height // 2 : y_top + height, x + 2 * w // 3 : x + w] = True
    mask[y_top + height // 4 : y_top + height // 4 + 2, x + w : x + w + 14] = True  # an arm held out, 2 rows
    mask[y_top + height - 3 : y_top + height, x + w : x + w + 8] = True  # a foot, 3 rows
    frame[mask] = (30, 25, 20)
    return mask


def _model(background: np.ndarray) -> BackgroundModel:
    sample = np.repeat(background[None], 8, axis=0)
    return BackgroundModel(sample)


def test_a_tape_across_the_picture_goes_and_the_walkers_arm_and_foot_stay() -> None:
    background = _background()
    model = _model(background)
    frame = background.copy()
    person = _walker(frame, 300, 150)
    tape = np.zeros((H, W), bool)
    tape[200:206, 40:700] = True  # 6 rows thick, passing behind the walker's torso
    tape &= ~person
    frame[tape] = (40, 40, 230)
    fg = model.foreground(frame)
    assert fg[tape].mean() < 0.02  # the tape is gone, all of it
    assert fg[person].mean() > 0.98  # the walker is whole: its 2-row arm and 3-row foot too
    boxes = model.blobs(fg)
    assert len(boxes) == 1  # one blob, the walker's, not one blob 660 wide
    x0, y0, x1, y1 = boxes[0, :4]
    assert (x0, y0, y1) == (300, 150, 270) and x1 == 300 + 30 + 14


def test_a_brighter_half_of_the_picture_is_light_not_foreground() -> None:
    background = _background(1)
    model = _model(background)
    frame = background.astype(np.float32)
    frame[:, W // 2 :] *= 1.08  # the sun comes out over the right half: 6 to 14 grey levels brighter
    frame = np.clip(frame, 0, 255).astype(np.uint8)
    person = _walker(frame, 500, 200)
    fg = model.foreground(frame)
    assert fg[~person].mean() < 0.005  # unlit, 40% of the right half was foreground
    assert fg[person].mean() > 0.98
    unlit = np.where(model.mog.apply(frame, learningRate=0) == 255, 1, 0)
    assert unlit[~person].mean() > 0.1  # the case is a real one: MOG2 alone takes the light for a person


def test_a_steady_camera_is_not_relit() -> None:
    background = _background(2)
    model = _model(background)
    frame = background.copy()
    _walker(frame, 100, 300)
    assert model._lit(frame) is frame  # within 3% everywhere: the frame goes to MOG2 untouched


def _boxes_on_the_ground(rng: np.random.Generator, n: int) -> np.ndarray:
    """[n, 4] people standing on a flat ground: height 0.3 * foot row - 30 (+-6%)."""
    foot = rng.uniform(250, 560, n)
    h = (0.3 * foot - 30) * rng.uniform(0.94, 1.06, n)
    cx = rng.uniform(100, 660, n)
    return np.stack([cx - h / 6, foot - h, cx + h / 6, foot], axis=1)


def test_the_height_line_is_fitted_through_single_people_and_flags_stacked_ones() -> None:
    rng = np.random.default_rng(0)
    people = _boxes_on_the_ground(rng, 300)
    stacked = _boxes_on_the_ground(rng, 60)
    stacked[:, 1] -= 0.9 * (stacked[:, 3] - stacked[:, 1])  # someone standing behind, head above the walker's
    cands = [np.concatenate([b, np.ones((len(b), 1))], axis=1) for b in np.array_split(np.concatenate([people, stacked]), 40)]
    line = fit_height_line(cands, W, H)
    assert line is not None
    assert abs(line.slope - 0.3) < 0.02 and abs(line.intercept + 30) < 8
    assert not line.too_tall(people).any()  # every lone person passes, the tallest at 1.06 / TALL of the limit
    assert line.too_tall(stacked).all()  # 1.9x: two people
    assert TALL * line.expected(np.array([500.0]))[0] > 1.3 * 120  # the limit is a ratio, not a constant


def test_a_stretch_a_step_taller_than_its_walker_on_both_sides_is_found_and_a_tall_or_half_hidden_walker_is_not() -> None:
    line = HeightLine(0.3, -30.0)
    rng = np.random.default_rng(3)

    def track(shares: list[float], frames: np.ndarray) -> np.ndarray:
        """[n, 4] a walker coming down the picture (foot row 300 -> 500), his box ``share`` of the line at each frame."""
        foot = np.linspace(300, 500, len(frames))
        h = np.asarray(shares) * line.expected(foot) * rng.uniform(0.97, 1.03, len(frames))
        return np.stack([np.full_like(foot, 100), foot - h, np.full_like(foot, 140), foot], axis=1)

    # alone at 1.08, someone behind at 1.32 in a stretch cut by two gaps, alone again
    frames = np.array([*range(10), *range(14, 20), *range(21, 25), *range(26, 31), *range(34, 46)])
    behind = (frames >= 14) & (frames < 31)
    boxes = track(list(np.where(behind, 1.32, 1.08)), frames)
    assert np.array_equal(line.taller_than_walker(frames, boxes), behind)  # the three runs are one level
    assert not line.too_tall(boxes).any()  # the line's limit alone misses them all
    # the walker alone only at the start (the stretch has one side): still found
    later = frames >= 14
    assert np.array_equal(line.taller_than_walker(frames, track(list(np.where(later, 1.32, 1.08)), frames)), later)
    steady = track([1.3] * len(frames), frames)  # a tall walker, the same height all along: one level
    assert not line.taller_than_walker(frames, steady).any()
    hidden = track(list(np.where(behind, 0.85, 1.12)), frames)  # legs hidden behind a sign: shorter, never taller
    assert not line.taller_than_walker(frames, hidden).any()
    small_step = track(list(np.where(behind, 1.22, 1.0)), frames)  # a step, but to under 1.25x of the line: a tall walker
    assert not line.taller_than_walker(frames, small_step).any()
    assert not line.taller_than_walker(frames[:1], boxes[:1]).any()


def test_one_persons_foreground_is_learnt_from_the_video_and_a_blob_of_two_is_too_full() -> None:
    rng = np.random.default_rng(4)
    people = _boxes_on_the_ground(rng, 300)
    line = HeightLine(0.3, -30.0)
    h = people[:, 3] - people[:, 1]
    areas = 0.22 * h**2 * rng.uniform(0.85, 1.15, len(h))  # one silhouette: 0.22 of its height squared, +-15%
    pairs = _boxes_on_the_ground(rng, 60)
    pairs[:, 2] += pairs[:, 2] - pairs[:, 0]  # two side by side: twice as wide (not person-shaped: not learnt from)
    pair_areas = 2 * 0.22 * (pairs[:, 3] - pairs[:, 1]) ** 2
    fill = fill_of_one(line, np.concatenate([people, pairs]), np.concatenate([areas, pair_areas]))
    assert fill is not None and abs(fill - 0.22) < 0.01
    assert not line.too_full(people, areas, fill).any()  # the fullest lone person is 1.15 / FULL of the limit
    assert line.too_full(pairs, pair_areas, fill).all()
    assert line.too_full(pairs[:, [0, 1, 0, 3]] + [0, 0, 40, 0], pair_areas, fill).all()  # pressed: no wider than one
    assert not line.too_full(people, np.full(len(people), np.nan), fill).any()  # not measured: never judged
    assert fill_of_one(line, people[:20], areas[:20]) is None  # too few to learn from


def test_the_height_line_is_flat_where_everyone_stands_at_one_distance_and_absent_without_people() -> None:
    rng = np.random.default_rng(1)
    people = _boxes_on_the_ground(rng, 100)
    heights = people[:, 3] - people[:, 1]
    people[:, 1], people[:, 3] = 400 - heights, 400  # every foot on row 400
    line = fit_height_line([np.concatenate([people, np.ones((100, 1))], axis=1)], W, H)
    assert line is not None and line.slope == 0.0
    assert abs(line.intercept - np.median(people[:, 3] - people[:, 1])) < 1e-6
    assert fit_height_line([np.zeros((0, 5))] * 10, W, H) is None
    assert fit_height_line([np.concatenate([people[:5], np.ones((5, 1))], axis=1)], W, H) is None  # too few
