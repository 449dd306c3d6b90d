"""Splitting one blob between two overlapping people by the colours of their clothes: hand-made frames."""
from __future__ import annotations

import numpy as np

from pipeline.extract.track_colour import ColourModels, histogram, lab_codes, similarity, split_by_colour
from pipeline.tools.mot import box_iou

H, W = 120, 160
RED, BLUE, GREY = (40, 40, 200), (190, 80, 30), (128, 128, 128)  # BGR
DARK, BLOND = (20, 30, 40), (90, 190, 230)  # hair


def figure(frame: np.ndarray, fg: np.ndarray, box: tuple[int, int, int, int], shirt: tuple, trousers: tuple,
           hair: tuple = DARK) -> None:
    """Paint a crude person (head, shirt, trousers) filling ``box`` into ``frame`` and ``fg``."""
    x0, y0, x1, y1 = box
    h = y1 - y0
    cx = (x0 + x1) // 2
    frame[y0:y0 + h // 6, cx - 4:cx + 4] = hair
    frame[y0 + h // 6:y0 + h // 2, x0:x1] = shirt
    frame[y0 + h // 2:y1, x0:x1] = trousers
    fg[y0:y0 + h // 6, cx - 4:cx + 4] = True
    fg[y0 + h // 6:y1, x0:x1] = True


def test_two_overlapping_figures_in_one_blob_come_apart_by_colour() -> None:
    """A red figure in front of a blue one it hides half of: one foreground blob. Learnt alone, each
    one's colours give it its own pixels back; each box has IoU >= 0.7 with the figure's visible pixels.
    (A colour both wear, such as skin, goes to the one that wears more of it: the heads differ here.)"""
    alone_red, alone_blue = np.full((H, W, 3), GREY, np.uint8), np.full((H, W, 3), GREY, np.uint8)
    fr, fb = np.zeros((H, W), bool), np.zeros((H, W), bool)
    figure(alone_red, fr, (20, 10, 50, 110), RED, (30, 30, 90))
    figure(alone_blue, fb, (90, 14, 118, 104), BLUE, (60, 120, 60), BLOND)
    models = ColourModels()
    for _ in range(3):
        models.learn(1, lab_codes(alone_red)[fr])
        models.learn(2, lab_codes(alone_blue)[fb])
    assert models.known(1) and models.known(2)
    assert similarity(models.hist[1], models.hist[2]) < 0.3  # different clothes: little shared colour

    frame, fg = np.full((H, W, 3), GREY, np.uint8), np.zeros((H, W), bool)
    figure(frame, fg, (60, 14, 88, 104), BLUE, (60, 120, 60), BLOND)  # behind
    back = fg.copy()
    front = np.zeros_like(fg)
    figure(frame, front, (74, 10, 104, 110), RED, (30, 30, 90))  # in front, hiding the blue one's right half
    fg |= front
    ys, xs = np.nonzero(fg)
    row = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 0.5], np.float32)
    crop = (slice(int(row[1]), int(row[3])), slice(int(row[0]), int(row[2])))
    claims = np.array([[72, 8, 104, 110], [58, 12, 90, 104]], np.float32)  # where the tracker expects each
    parts = split_by_colour(row, fg[crop], lab_codes(frame)[crop], claims, [models.hist[1], models.hist[2]],
                            [models.area[1], models.area[2]])
    assert parts is not None and len(parts) == 2
    for part, mask in zip(parts, (front, back & ~front), strict=True):
        my, mx = np.nonzero(mask)
        truth = np.array([[mx.min(), my.min(), mx.max() + 1, my.max() + 1]], np.float64)
        assert box_iou(part[None, :4].astype(np.float64), truth)[0, 0] >= 0.7
    blob_iou = box_iou(row[None, :4].astype(np.float64), truth)[0, 0]
    assert blob_iou < 0.6  # the whole blob would not have followed the hidden one


def test_alike_clothes_or_one_claimant_are_not_split_by_colour() -> None:
    frame, fg = np.full((H, W, 3), GREY, np.uint8), np.zeros((H, W), bool)
    figure(frame, fg, (40, 10, 90, 110), RED, (30, 30, 90))
    codes = lab_codes(frame)
    same = histogram(codes[fg])
    row = np.array([40, 10, 90, 110, 0.5], np.float32)
    claims = np.array([[40, 10, 70, 110], [60, 10, 90, 110]], np.float32)
    crop = (slice(10, 110), slice(40, 90))
    assert split_by_colour(row, fg[crop], codes[crop], claims, [same, same], [1500.0, 1500.0]) is None
    assert split_by_colour(row, fg[crop], codes[crop], claims[:1], [same], [1500.0]) is None


def test_a_join_needs_alike_colours_where_both_pieces_carry_them() -> None:
    """Two pieces that continue one another by motion are joined when their walkers dress alike and
    not when the colours differ (another walker took up the line); pieces without colours: motion only."""
    from pipeline.extract.track_link import join_cost

    def walk(frames: range, hist: np.ndarray | None) -> tuple[np.ndarray, ...]:
        f = np.asarray(list(frames), np.int64)
        x = 40 + 3.0 * f
        boxes = np.stack([x, np.full(len(f), 60.0), x + 40, np.full(len(f), 180.0)], 1).astype(np.float32)
        base = (f, boxes, np.full(len(f), 0.5, np.float32), np.zeros(len(f), bool))
        return base if hist is None else (*base, np.repeat(hist[None], len(f), 0).astype(np.float32))

    red, blue = np.zeros((H, W, 3), np.uint8), np.zeros((H, W, 3), np.uint8)
    red[:], blue[:] = RED, BLUE
    h_red, h_blue = histogram(lab_codes(red)), histogram(lab_codes(blue))
    assert similarity(h_red, h_blue) < 0.1
    before = walk(range(0, 20), h_red)
    assert join_cost(before, walk(range(26, 45), h_red), max_gap=30) is not None
    assert join_cost(before, walk(range(26, 45), h_blue), max_gap=30) is None
    assert join_cost(walk(range(0, 20), None), walk(range(26, 45), None), max_gap=30) is not None


def test_colours_are_learnt_only_where_the_walker_is_wholly_in_the_picture() -> None:
    """A red figure walks in from the right edge together with a blue one (one blob while they touch the
    edge), then alone: the tracker learns its colours on the frames its blob is off the edge only, so
    the blue one's colours, in the blob at the edge, never enter the red one's model."""
    from types import SimpleNamespace

    from pipeline.extract.bgsub import BackgroundModel
    from pipeline.extract.track import BlobMasks, RawTracker

    def frame_at(t: int) -> tuple[np.ndarray, np.ndarray]:
        frame, fg = np.full((H, W, 3), GREY, np.uint8), np.zeros((H, W), bool)
        x = 140 - 6 * t  # red: its box touches the right edge in frames 0-3
        if t < 4:
            figure(frame, fg, (x + 18, 14, W, 104), BLUE, (60, 120, 60), BLOND)  # beside it, cut by the edge
        figure(frame, fg, (x, 10, min(x + 30, W), 110), RED, (30, 30, 90))
        return frame, fg

    frames = np.stack([frame_at(t)[0] for t in range(12)])
    fgs = iter([frame_at(t)[1] for t in range(12)])  # the foreground of each frame, in order
    model = BackgroundModel(np.full((1, H, W, 3), GREY, np.uint8))
    detector = SimpleNamespace(model=SimpleNamespace(foreground=lambda f: next(fgs), blobs=model.blobs), splits=0)
    masks = BlobMasks()
    cands = masks.detect(detector, list(frames))
    follow = RawTracker(blobs=True, masks=masks, size=(W, H))
    follow.feed(cands)
    assert masks.crops == {}  # every frame's crops released once tracked
    (tid, rows), = follow.raw.items()
    edge = [r[0] for r in rows if r[1][2] >= W - 3]
    assert edge == [0, 1, 2, 3] or edge == [1, 2, 3]  # matched at the edge (ByteTrack may confirm it on frame 1)
    assert follow.models.frames[tid] == len(rows) - len(edge)  # learnt off the edge only
    red = np.zeros((H, W), bool)
    red_frame = np.full((H, W, 3), GREY, np.uint8)
    figure(red_frame, red, (60, 10, 90, 110), RED, (30, 30, 90))
    assert similarity(follow.models.hist[tid], histogram(lab_codes(red_frame)[red])) > 0.95  # red alone


def test_a_farther_walkers_part_stops_at_its_own_height_not_at_the_nearer_ones_feet() -> None:
    """A short (far) figure behind a tall (near) one, both in green trousers, the far one's predicted box
    drifted down to the near one's feet (as the tracker's is after a column cut gave it the near one's
    legs): by colour alone the far part takes the near legs too; its usual height cuts it back."""
    green = (60, 120, 60)
    frame, fg = np.full((H, W, 3), GREY, np.uint8), np.zeros((H, W), bool)
    figure(frame, fg, (60, 10, 88, 70), BLUE, green)  # far: 60 px tall, feet at y = 70
    back = fg.copy()
    front = np.zeros_like(fg)
    figure(frame, front, (74, 28, 104, 110), RED, green, BLOND)  # near, in front
    fg |= front
    ys, xs = np.nonzero(fg)
    row = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 0.5], np.float32)
    crop = (slice(int(row[1]), int(row[3])), slice(int(row[0]), int(row[2])))
    codes = lab_codes(frame)
    alone, alone_fg = np.full((H, W, 3), GREY, np.uint8), np.zeros((H, W), bool)
    figure(alone, alone_fg, (60, 10, 88, 70), BLUE, green)
    far_hist = histogram(lab_codes(alone)[alone_fg])
    shirt = np.zeros_like(front)
    shirt[28 + 82 // 6:28 + 41, 74:104] = True
    near_hist = 0.5 * histogram(codes[front]) + 0.5 * histogram(codes[shirt])  # the near one wears less green
    claims = np.array([[58, 8, 90, 110], [72, 26, 106, 112]], np.float32)
    args = (row, fg[crop], codes[crop], claims, [far_hist, near_hist], [float(back.sum()), float(front.sum())])
    plain = split_by_colour(*args)
    assert plain is not None and plain[0][3] > 100  # the shared green went to the far one down to y = 110
    parts = split_by_colour(*args, heights=[60.0, 82.0])
    assert parts is not None and len(parts) == 2
    far = back & ~front
    my, mx = np.nonzero(far)
    truth = np.array([[mx.min(), my.min(), mx.max() + 1, my.max() + 1]], np.float64)
    assert parts[0][3] <= parts[0][1] + 1.15 * 60 + 1  # cut at its usual height below its top
    assert box_iou(parts[0][None, :4].astype(np.float64), truth)[0, 0] >= 0.6
    assert box_iou(plain[0][None, :4].astype(np.float64), truth)[0, 0] < 0.6


def test_colour_split_parts_are_recorded_for_the_track_they_were_split_for() -> None:
    """Two parts of one blob, split by colour for tracks 7 and 9: where the tracker's IoU matching handed
    them the other way round, each is recorded for the track whose colours it holds; where following the
    owners would give one track two detections (or drop one), the tracker's ids stay."""
    from pipeline.extract.track import RawTracker

    follow = RawTracker(blobs=True)
    #                 x0  y0  x1  y1 id score cls idx
    out = np.array([[10, 10, 30, 60, 9, 0.3, 0, 0],  # part 0 (split for track 7) matched to track 9
                    [20, 12, 40, 62, 7, 0.3, 0, 1],  # part 1 (split for track 9) matched to track 7
                    [90, 10, 110, 60, 3, 0.3, 0, 2]], np.float32)  # a whole blob of track 3
    fixed = follow._own_parts(out, [7, 9, -1])
    assert fixed[:, 4].tolist() == [7, 9, 3]
    assert np.array_equal(fixed[:, :4], out[:, :4]) and out[:, 4].tolist() == [9, 7, 3]  # boxes kept, input untouched
    assert follow._own_parts(out, [7, -1, -1])[:, 4].tolist() == [9, 7, 3]  # track 7 twice: not a swap
    assert follow._own_parts(out, [7, 9, 5])[:, 4].tolist() == [9, 7, 3]  # 5 is not among the ids given
    assert follow._own_parts(out, [9, 7, -1])[:, 4].tolist() == [9, 7, 3]  # already right
    owners: list[int] = []
    alone_a, alone_b = np.full((H, W, 3), GREY, np.uint8), np.full((H, W, 3), GREY, np.uint8)
    fa, fb = np.zeros((H, W), bool), np.zeros((H, W), bool)
    figure(alone_a, fa, (20, 10, 50, 110), RED, (30, 30, 90))
    figure(alone_b, fb, (40, 14, 68, 104), BLUE, (60, 120, 60), BLOND)
    frame, fg = alone_b.copy(), fb.copy()
    frame[fa], fg = alone_a[fa], fg | fa  # the red one in front
    ys, xs = np.nonzero(fg)
    row = np.array([xs.min(), ys.min(), xs.max() + 1, ys.max() + 1, 0.5], np.float32)
    crop = (slice(int(row[1]), int(row[3])), slice(int(row[0]), int(row[2])))
    hists = [histogram(lab_codes(alone_b)[fb]), histogram(lab_codes(alone_a)[fa])]  # claimant 0: blue
    parts = split_by_colour(row, fg[crop], lab_codes(frame)[crop], np.array([[38, 12, 70, 106], [18, 8, 52, 112]],
                            np.float32), hists, [float(fb.sum()), float(fa.sum())], owners=owners)
    assert parts is not None and owners == [0, 1] and parts[0][0] > parts[1][0]  # blue's part is the right one
