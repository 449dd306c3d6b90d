"""Cutting raw tracks at merges and gaps, re-linking the pieces by motion, filling the trajectory: hand-made boxes."""
from __future__ import annotations

import numpy as np

from pipeline.extract.track import share_blob, track_people
from pipeline.extract.track_colour import histogram, lab_codes, sparse_histogram
from pipeline.extract.track_link import (
    INTERPOLATED,
    KEPT,
    MERGED,
    Trajectory,
    coast,
    cut_segments,
    join_cost,
    split_blind,
    stitch,
    trajectories,
)
from pipeline.tools.mot import Track, box_iou, evaluate_tracks

W, H = 320, 240


def piece(frames: range | list[int], x0: float, dx: float, foot: float = 180, h: float = 120, w: float = 40):
    """A walker's boxes at ``frames``: starts at x ``x0`` at frame 0 and moves ``dx`` px a frame."""
    f = np.asarray(list(frames), np.int64)
    x = x0 + dx * f
    boxes = np.stack([x, np.full(len(f), foot - h), x + w, np.full(len(f), foot)], 1).astype(np.float32)
    return f, boxes, np.full(len(f), 0.5, np.float32)


def test_a_raw_track_is_cut_at_merged_frames_and_where_it_missed_frames() -> None:
    frames = [*range(0, 10), *range(10, 15), *range(15, 17), *range(17, 25), *range(30, 40)]
    f, boxes, scores = piece(frames, 20, 3)
    bad = np.isin(f, [*range(10, 15), 17])  # merged 10-14 and 17: 15-16 is a 2-frame run between them
    runs, lost = cut_segments((f, boxes, scores), bad, max_miss=1, min_length=3)
    assert [(int(r[0][0]), int(r[0][-1])) for r in runs] == [(0, 9), (18, 24), (30, 39)]  # 25-29 missed: cut
    assert lost == 2 and all(np.array_equal(r[1], boxes[np.isin(f, r[0])]) for r in runs)
    runs, _ = cut_segments((f, boxes, scores), np.zeros(len(f), bool), max_miss=5, min_length=3)
    assert len(runs) == 1  # a 5-frame miss is within max_miss: one run


def test_walkers_crossing_in_opposite_directions_are_not_swapped() -> None:
    """Two walkers cross at frame 20 on one foot line; the tracker lost both from 16 to 21 and its
    pieces restart just past the meeting point, where each one starts within a fifth of a height of
    the other's line: position alone hardly tells them apart, the walking direction does."""
    a1, b1 = piece(range(0, 16), 40, 4), piece(range(0, 16), 200, -4)  # meet at x 120 at frame 20
    a2, b2 = piece(range(22, 45), 40, 4), piece(range(22, 45), 200, -4)
    a_at_22 = 40 + 4 * 22  # where a1's line puts a when b2 starts
    assert abs(a_at_22 - b2[1][0, 0]) / 120 < 0.2  # b2 starts close to it: inside any position rule's reach
    assert join_cost(a1, b2, max_gap=30) is None and join_cost(b1, a2, max_gap=30) is None  # opposite ways
    assert join_cost(a1, a2, max_gap=30) < 0.05 and join_cost(b1, b2, max_gap=30) < 0.05
    tracks, joins = stitch([b2, a1, a2, b1], max_gap=30)
    assert joins == 2 and len(tracks) == 2
    for frames, boxes, _ in tracks:
        assert np.array_equal(frames, [*range(16), *range(22, 45)])
        steps = np.diff(boxes[:, 0]) / np.diff(frames)
        assert np.allclose(steps, steps[0]) and abs(steps[0]) == 4  # one walker: one speed, one direction


def test_a_join_never_makes_two_boxes_in_one_frame_and_respects_foot_line_and_height() -> None:
    a = piece(range(0, 20), 40, 3)
    overlapping = piece(range(15, 40), 40, 3)  # the same line, but it starts before a ends
    assert join_cost(a, overlapping, max_gap=30) is None
    farther = piece(range(25, 40), 40, 3, foot=140, h=80)  # on a's line in x, 40 px up the ground plane
    assert join_cost(a, farther, max_gap=30) is None
    later = piece(range(60, 80), 40, 3)
    assert join_cost(a, later, max_gap=30) is None  # hidden longer than max_gap
    tracks, joins = stitch([a, overlapping], max_gap=30)
    assert joins == 0 and len(tracks) == 2


def test_a_hidden_walker_is_interpolated_across_its_gap() -> None:
    f, boxes, scores = piece(range(80), 20, 3)
    hidden = range(20, 48)  # longer than the tracker keeps a lost track
    seen = ~np.isin(f, hidden)
    cands = [np.hstack([boxes[t:t + 1], scores[t:t + 1, None]]) if seen[t] else np.zeros((0, 5), np.float32)
             for t in range(80)]
    tracks, stats = track_people(cands, W, H, blobs=True)
    assert len(tracks) == 1 and stats.segments_joined == 1
    path = tracks[0].trajectory
    assert path.frames.tolist() == list(range(80))
    gap = np.isin(path.frames, range(20, 49))  # ByteTrack confirms the reborn track on its second frame (48 missed)
    assert (path.state[gap] == INTERPOLATED).all() and (path.state[~gap] == KEPT).all()
    assert np.allclose(path.boxes, boxes, atol=1e-3)  # a straight walk: the line is the walk
    assert tracks[0].frames.tolist() == path.frames[~gap].tolist()  # the gait sequence: the kept frames only
    assert stats.frames_interpolated == gap.sum()


def test_a_merge_makes_both_tracks_merged_there_and_each_trajectory_stays_with_its_walker() -> None:
    """Two walkers cross on different foot lines; while they touch, background subtraction sees one blob."""
    a = piece(range(80), 20, 3, foot=180, h=120)
    b = piece(range(80), 260, -3, foot=165, h=110, w=36)
    cands = []
    for t in range(80):
        ba, bb = a[1][t], b[1][t]
        if min(ba[2], bb[2]) - max(ba[0], bb[0]) > -4:  # touching: one blob for both
            rows = [[*np.minimum(ba[:2], bb[:2]), *np.maximum(ba[2:], bb[2:]), 0.5]]
        else:
            rows = [[*ba, 0.4], [*bb, 0.4]]
        cands.append(np.array(rows, np.float32))
    tracks, stats = track_people(cands, W, H, blobs=True)
    truth = np.stack([a[1], b[1]])
    report = evaluate_tracks(truth, [Track(k, t.trajectory.frames, t.trajectory.boxes) for k, t in enumerate(tracks)])
    assert len(tracks) == 2 and report.num_switches == 0 and report.spare_tracks == []
    assert min(report.walker_hit_rate) >= 0.9 and report.idf1 >= 0.95
    one_blob = np.array([len(c) == 1 for c in cands])
    for track in tracks:
        path = track.trajectory
        assert (path.state[one_blob[path.frames]] == MERGED).all()  # every one-blob frame is merged for both
        assert not one_blob[track.frames].any()  # and in neither gait sequence
        nearest = [int(box_iou(truth[:, f], box[None])[:, 0].argmax()) for f, box in zip(track.frames, track.boxes,
                                                                                         strict=True)]
        assert len(set(nearest)) == 1  # one walker all along
    assert stats.frames_merged >= one_blob.sum()


def test_trajectory_states_border_small_and_merged_by_value() -> None:
    near = piece(range(10), -2, 3)  # starts touching the left edge (x0 <= 3) for frames 0-1
    tiny = piece(range(10), 200, 0, h=20, w=10, foot=60)  # 20 px: below 0.12 x 240
    crossing = piece(range(10), 2, 3)  # on near's line: merged with it wherever both are
    (pn, pt, pc) = trajectories([near, tiny, crossing], W, H, border=3, min_height=0.12, share=0.2)
    assert pt.state.tolist() == [3] * 10  # small
    assert (pn.state == MERGED).all() and (pc.state == MERGED).all()
    alone = trajectories([near], W, H, border=3, min_height=0.12, share=0.2)[0]
    assert alone.state.tolist() == [2, 2] + [0] * 8  # border while x0 <= 3, then kept


def test_a_blob_two_tracks_claim_is_cut_between_them_and_one_claim_leaves_it_whole() -> None:
    fg = np.zeros((120, 90), bool)  # a blob at x 100..190, y 60..180 of the frame
    fg[:, 0:40] = True  # person A
    fg[10:, 35:90] = True  # person B overlaps A by 5 columns: no clean gap
    fg[10:60, 38:42] = False  # but fewer pixels stand where they meet
    row = np.array([100, 60, 190, 180, 0.8], np.float32)
    claims = np.array([[98, 58, 140, 180], [136, 68, 190, 180]], np.float32)  # where the tracker expects A and B
    parts = share_blob(row, fg, claims)
    assert len(parts) == 2
    a, b = sorted(parts, key=lambda p: p[0])
    assert np.allclose(a[:4], [100, 60, 138, 180], atol=3) and np.allclose(b[:4], [138, 70, 190, 180], atol=3)
    assert len(share_blob(row, fg, claims[:1])) == 1  # one claim: one person
    same_place = np.array([[100, 60, 140, 180], [104, 60, 144, 180]], np.float32)  # two claims on one spot
    assert len(share_blob(row, fg, same_place)) == 1
    narrow = np.array([100, 60, 140, 180, 0.8], np.float32)  # a blob no wider than one claimant
    assert len(share_blob(narrow, fg[:, :40], claims)) == 1


def test_a_walker_swallowed_by_a_nearer_ones_blob_is_carried_on_while_the_blob_holds_it() -> None:
    """A (far, small) is detected until frame 39, then walks on inside B's blob (B near and big, walking
    with it) until B steps away at frame 60: A's trajectory follows its line to 59, merged, and B's
    frames holding A are merged too (its silhouette there holds both)."""
    a = piece(range(0, 40), 20, 2, foot=150, h=80, w=30)
    b_f = np.arange(30, 70)
    bx = (60 + 2 * b_f + np.where(b_f < 60, 0, 40)).astype(np.float32)  # at 60 B steps 40 px away from A
    b = (b_f, np.stack([bx - 40, np.full(len(b_f), 40.0), bx + 60, np.full(len(b_f), 200.0)], 1).astype(np.float32),
         np.full(len(b_f), 0.5, np.float32))
    carried = coast([a, b], n_frames=80, max_frames=30)
    (a_before, a_after), (b_before, b_after) = carried
    assert len(a_before[0]) == 0 and a_after[0].tolist() == list(range(40, 60))
    truth_a = piece(range(40, 60), 20, 2, foot=150, h=80, w=30)[1]
    assert (box_iou(a_after[1], truth_a).diagonal() > 0.9).all()  # on A's line
    assert len(b_before[0]) == 0 and len(b_after[0]) == 0  # B is never inside anyone
    pa, pb = trajectories([a, b], W, H, border=3, min_height=0.12, share=0.2, coasted=carried)
    assert pa.frames.tolist() == list(range(60)) and (pa.state[40:] == MERGED).all()
    assert (pb.state[pb.frames < 60] == MERGED).all() and (pb.state[pb.frames >= 60] == KEPT).all()
    short = coast([a, b], n_frames=80, max_frames=5)[0][1]
    assert short[0].tolist() == list(range(40, 45))  # never longer than max_frames


def test_a_walker_coming_in_at_the_edge_inside_anothers_blob_is_carried_back_to_its_first_sliver() -> None:
    """B comes in at the right edge inside A's blob (A stands there, big) and is first detected alone at
    frame 12. Carried back on its line, clipped to the picture (what is seen of it), B is followed
    inside A's blob down to its last sliver (frame 3); unclipped, its box would leave A's blob (and
    the picture) after two frames."""
    a_f = np.arange(0, 13)
    a = (a_f, np.tile(np.array([[240, 40, 320, 200]], np.float32), (len(a_f), 1)), np.full(len(a_f), 0.5, np.float32))
    b = piece(range(12, 40), 326, -3, foot=180, h=120, w=30)  # x0 = 290 at frame 12: wholly in the picture
    (_, _), (b_before, _) = coast([a, b], n_frames=40, max_frames=30, size=(W, H))
    assert b_before[0].tolist() == list(range(3, 12))
    assert (b_before[1][:, 2] == W).all() and np.allclose(b_before[1][:, 0], 326 - 3 * b_before[0])
    (_, _), (unclipped, _) = coast([a, b], n_frames=40, max_frames=30)
    assert unclipped[0].tolist() == [10, 11]


def test_a_walker_coming_in_at_the_edge_is_followed_from_its_first_partial_box() -> None:
    """A walker enters at the left edge: its first boxes are thin slivers growing by 6 px a frame that
    the tracker never matched (its track starts at frame 6). They are added to the track (touching the
    edge, each within its next box); a sliver at the other edge, or one another track holds, is not."""
    from pipeline.extract.track_link import extend_at_border

    f, boxes, scores = piece(range(6, 30), 0, 0)
    boxes[:, 0] = 0
    boxes[:, 2] = np.minimum(6.0 * (f + 1), 40)  # it widens while it comes in, then walks at 40 px wide
    cands = [np.zeros((0, 5), np.float32) for _ in range(30)]
    for t in range(1, 6):
        cands[t] = np.array([[0, 60, 6 * (t + 1), 180, 0.5], [W - 5, 60, W, 180, 0.5]], np.float32)
    other = piece(range(0, 3), 0, 0, w=8)  # another track holds the sliver of frames 0-2
    (mine, theirs), added = extend_at_border([(f, boxes, scores), other], cands, W, H, border=3)
    assert added == 3 and mine[0].tolist() == list(range(3, 30))  # 3..5 added; 2 is the other track's
    assert np.array_equal(mine[1][:3, 2], [24, 30, 36]) and theirs[0].tolist() == [0, 1, 2]
    (alone,), _ = extend_at_border([(f, boxes, scores)], cands[:1] + [np.zeros((0, 5), np.float32)] * 29, W, H, 3)
    assert alone[0][0] == 6  # no sliver: nothing added


def test_a_piece_of_a_body_followed_as_a_track_merges_no_walker() -> None:
    """A walker 100 px tall whose leg the foreground cut off as a blob of its own (30 px, inside its box):
    with ``fragment`` the leg's track does not make the walker's frames merged; a 60 px walker behind it
    (a farther person) still does, and without ``fragment`` the leg did too."""
    from pipeline.extract.track_link import merged_frames

    frames = np.arange(5)
    walker = (frames, np.tile(np.array([[0, 0, 40, 100]], np.float32), (5, 1)))
    leg = (frames, np.tile(np.array([[10, 62, 30, 92]], np.float32), (5, 1)))
    behind = (frames, np.tile(np.array([[20, 30, 44, 90]], np.float32), (5, 1)))
    assert not merged_frames([walker, leg], 0.2, 5, fragment=0.4)[0].any()
    assert merged_frames([walker, leg], 0.2, 5)[0].all()  # before: the walker's whole run was cut out
    flags = merged_frames([walker, behind], 0.2, 5, fragment=0.4)
    assert flags[0].all() and flags[1].all()


def test_a_walker_coming_in_at_the_edge_is_joined_on_the_side_the_edge_does_not_cut() -> None:
    """Seed 1 scene 4's third walker: its first 3 frames are cut by the left edge (a 22 px sliver
    whose height grows 52 -> 148 as the body comes in), then 3 frames lost in another's blob. Its
    median height and centre say "someone else"; its last frame's right side and foot line do not."""
    f = np.array([34, 35, 36], np.int64)
    entering = (f, np.array([[0, 82, 22, 134], [0, 48, 23, 156], [0, 46, 24, 194]], np.float32), np.full(3, 0.5))
    g = np.arange(40, 47)
    x1 = np.array([93, 89, 93, 94, 81, 76, 82], np.float32)
    x0 = np.array([0, 0, 0, 0, 0, 3, 5], np.float32)
    later = (g, np.stack([x0, np.full(7, 50), x1, np.full(7, 196)], 1).astype(np.float32), np.full(7, 0.5))
    assert join_cost(entering, later, max_gap=30) is None  # centre and median height: not the same walker
    cost = join_cost(entering, later, max_gap=30, width=W)
    assert cost is not None and cost < 1.0
    farther_in = (g, later[1] + np.array([120, 0, 120, 0], np.float32), later[2])  # someone 120 px inside
    assert join_cost(entering, farther_in, max_gap=30, width=W) is None
    up_the_ground = (g, later[1] + np.array([0, 10, 0, -40], np.float32), later[2])  # farther: 40 px up, shorter
    assert join_cost(entering, up_the_ground, max_gap=30, width=W) is None
    much_later = (g + 20, later[1], later[2])  # 24 frames on: a sliver has no speed to carry it that far
    assert join_cost(entering, much_later, max_gap=30, width=W) is None
    tracks, joins = stitch([later, entering], max_gap=30, width=W)
    assert joins == 1 and np.array_equal(tracks[0][0], [34, 35, 36, *range(40, 47)])


def test_a_raw_track_whose_box_height_jumps_is_cut_there() -> None:
    """BoT-SORT on held-out seed 1 scene 4: a walker's id moves onto the blob of a walker coming in at the
    edge (height 118 -> 149 in one frame) and back (146 -> 118); a walker's own box changes by under 8%."""
    from pipeline.extract.track import _jumps

    f = np.arange(30, 60)
    h = np.where((f >= 37) & (f < 50), 149.0, 118.0) * (1 + 0.05 * np.sin(f))  # the gait's own 5% swing
    boxes = np.stack([np.full(30, 40.0), 190 - h, np.full(30, 90.0), np.full(30, 190.0)], 1).astype(np.float32)
    assert np.flatnonzero(_jumps(f, boxes)).tolist() == [7, 20]  # frames 37 and 50
    missed = np.delete(np.arange(30), 7)  # frame 37 not detected: 36 -> 38 is no frame-to-frame jump
    assert np.flatnonzero(_jumps(f[missed], boxes[missed])).tolist() == [19]
    # a walker coming in at the left edge: its box grows 52 -> 110 -> 148 as its body comes in; no cut.
    # Going out of the picture (shrinking at the edge) and leaving the edge for another blob are cut
    coming = np.array([[0, 82, 22, 134], [0, 48, 23, 158], [0, 46, 24, 194], [0, 46, 40, 194]], np.float32)
    assert not _jumps(np.arange(4), coming, (W, H)).any()
    assert _jumps(np.arange(4), coming[::-1].copy(), (W, H)).tolist() == [False, False, True, True]
    took = np.array([[42, 65, 100, 183], [0, 46, 99, 195]], np.float32)  # BoT-SORT's 118 -> 149 onto the edge
    assert _jumps(np.arange(2), took, (W, H)).tolist() == [False, True]


def _clothes(bgr: tuple[int, int, int]) -> tuple[np.ndarray, np.ndarray]:
    """The sparse colour histogram of a blob of one colour of clothes, as a raw track keeps it."""
    return sparse_histogram(histogram(lab_codes(np.full((8, 8, 3), bgr, np.uint8))).astype(np.float32))


def test_an_end_inside_others_blobs_is_compared_on_its_colours_from_before() -> None:
    """A walker in white whose last 16 frames were parts of shared blobs (no colours of their own) must not be
    continued by a walker in navy (PETS 2009: such a join passed no colour test); one in white is joined."""
    frames, boxes, scores = piece(range(0, 40), 20, 3)
    hists = np.empty(40, object)
    hists[:24] = [_clothes((235, 225, 215))] * 24  # its own blob: white
    hists[24:] = None  # inside others' blobs from frame 24 on
    white = (frames, boxes, scores, np.zeros(40, bool), hists)
    for colour, joined in (((90, 40, 30), False), ((235, 225, 215), True)):
        f, b, s = piece(range(44, 70), 20, 3)
        later = np.empty(26, object)
        later[:] = [_clothes(colour)] * 26
        cost = join_cost(white, (f, b, s, np.zeros(26, bool), later), max_gap=30)
        assert (cost is not None) == joined, colour


def test_a_track_blind_for_longer_than_a_walker_may_hide_is_cut_where_the_clothes_change() -> None:
    """40 frames inside others' blobs (detected, never clean, no colours of their own) sit between a walker in
    white and one walking on the same line: in navy they are two tracks, cut at the middle of the blind
    stretch with every trajectory frame in one of them (PETS 2009: a man in jeans, then one in a leather
    jacket, under one raw id); in white it is one walker. A stretch within the re-link time is never cut."""
    frames, boxes, scores = piece(range(80), 20, 3)
    clean = (frames < 20) | (frames >= 60)
    path = Trajectory(frames, boxes, np.where(clean, KEPT, MERGED).astype(np.uint8))
    for colour, parts in (((90, 40, 30), 2), ((235, 225, 215), 1)):
        hists = np.empty(80, object)
        hists[:20] = [_clothes((235, 225, 215))] * 20
        hists[20:60] = None
        hists[60:] = [_clothes(colour)] * 20
        out = split_blind((frames, boxes, scores, ~clean, hists), path, clean, max_gap=30, width=W)
        assert len(out) == parts, colour
        assert np.array_equal(np.concatenate([p[1].frames for p in out]), np.arange(80))  # each frame once
        assert np.array_equal(np.concatenate([p[0][0] for p in out]), frames)
        if parts == 2:
            assert out[0][1].frames[-1] == 39 and out[1][0][0][0] == 40
            assert out[0][0][3].sum() == 20 and (~out[1][0][3]).sum() == 20  # 20 clean frames each
    hists[:] = [_clothes((235, 225, 215))] * 20 + [None] * 40 + [_clothes((90, 40, 30))] * 20
    assert len(split_blind((frames, boxes, scores, ~clean, hists), path, clean, max_gap=40, width=W)) == 1


def test_a_side_too_short_to_compare_beyond_a_blind_stretch_stays_on_the_track_but_is_no_gait_frame() -> None:
    """20 clean frames, 40 inside others' blobs, then 3 clean frames: too few to tell by motion whether the id came
    out on someone else (PETS 2009, BoT-SORT: it did), so the track is not cut, but those 3 frames become merged
    ones. With 20 on the far side they stay clean (compared, and alike); a short side within the re-link time is
    never judged."""
    for after, marked in ((3, 3), (20, 0)):
        frames, boxes, scores = piece(range(60 + after), 20, 3)
        clean = (frames < 20) | (frames >= 60)
        state = np.where(clean, KEPT, MERGED).astype(np.uint8)
        path = Trajectory(frames, boxes, state.copy())
        hists = np.empty(len(frames), object)
        hists[:] = [_clothes((235, 225, 215))] * len(frames)
        (part,) = split_blind((frames, boxes, scores, ~clean, hists), path, clean, max_gap=30, width=W)
        assert np.array_equal(part[1].frames, frames) and np.array_equal(path.state, state)  # the input is left as it was
        assert int(((state == KEPT) & (part[1].state == MERGED)).sum()) == marked
        assert (part[1].state[60:] == (MERGED if marked else KEPT)).all() and (part[1].state[:20] == KEPT).all()
        (part,) = split_blind((frames, boxes, scores, ~clean, hists), path, clean, max_gap=40, width=W)
        assert (part[1].state == state).all()  # 40 blind frames are within a re-link time of 40


def test_track_people_cuts_a_track_whose_id_rode_through_others_blobs_onto_someone_else() -> None:
    """One raw track: 20 frames of its own in white, 40 frames as colour-split parts of shared blobs (on its
    line, no gait frame, no colours), then 20 in navy: two kept tracks, counted in ``tracks_split``; in white
    throughout, one. The candidates hold only this walker, so nothing else merges or re-links."""
    from pipeline.extract.track_stream import COLOUR

    frames, boxes, scores = piece(range(80), 20, 2)
    cands = [np.append(b, 0.9)[None].astype(np.float32) for b in boxes]
    for colour, kept in (((90, 40, 30), 2), ((235, 225, 215), 1)):
        rows = [(int(t), b, 0.9, COLOUR if 20 <= t < 60 else 0,
                 None if 20 <= t < 60 else _clothes((235, 225, 215) if t < 20 else colour))
                for t, b in zip(frames, boxes, strict=True)]
        tracks, stats = track_people(cands, W, H, fps=25.0, raw={1: rows})
        assert len(tracks) == kept and stats.tracks_split == kept - 1, colour
        assert sum(len(t.frames) for t in tracks) == 40  # the clean frames, each in one track
        assert sum(len(t.trajectory.frames) for t in tracks) == 80
    rows = [(int(t), b, 0.9, COLOUR if 20 <= t < 60 else 0, None if 20 <= t < 60 else _clothes((235, 225, 215)))
            for t, b in zip(frames[:63], boxes[:63], strict=True)]  # 3 frames of its own after the blind stretch
    (track,), stats = track_people(cands[:63], W, H, fps=25.0, raw={1: rows})
    assert stats.tracks_split == 0 and stats.frames_short_side == 3
    assert track.frames.tolist() == list(range(20)) and track.trajectory.frames.tolist() == list(range(63))


def _masks_of(fg: np.ndarray, boxes: list[list[int]]):
    """A ``BlobMasks`` holding frame 0's candidates ``boxes`` cut from foreground ``fg``, as ``detect`` stores them."""
    from pipeline.extract.track_stream import BlobMasks

    masks = BlobMasks()
    masks.crops[0] = []
    for x0, y0, x1, y1 in boxes:
        crop = fg[y0:y1, x0:x1]
        masks.crops[0].append((np.packbits(crop, axis=None), crop.shape, np.zeros(int(crop.sum()), np.uint16), True))
    return masks, np.array([[*b, 0.9] for b in boxes], np.float32)


def test_parts_cut_from_walkers_pressed_together_are_found_and_a_gap_or_a_hand_is_not() -> None:
    """Two 100-row bodies 10 columns apart in one blob cut at column 50 (``split_blobs``): joined across the
    cut over 60 rows both parts are pressed; over 10 rows (a hand) neither is; with a gap at the cut neither
    is; a part that only abuts a box with no foreground at its edge is not either."""
    from pipeline.extract.track_stream import touching

    for rows, pressed in ((60, True), (10, False)):
        fg = np.zeros((120, 120), bool)
        fg[10:110, 20:45] = True
        fg[10:110, 55:80] = True
        fg[40:40 + rows, 45:55] = True  # where the bodies meet, across the cut; a 10-column gap elsewhere
        masks, cand = _masks_of(fg, [[20, 10, 50, 110], [50, 10, 80, 110]])
        assert touching(cand, masks, 0).tolist() == [pressed, pressed], rows
    fg = np.zeros((120, 120), bool)
    fg[10:110, 20:48] = True
    fg[10:110, 52:80] = True
    masks, cand = _masks_of(fg, [[20, 10, 50, 110], [50, 10, 80, 110], [80, 10, 100, 110]])
    assert not touching(cand, masks, 0).any()


def test_a_pressed_part_stays_on_its_walkers_line_but_is_no_gait_frame() -> None:
    """Frames 30-39 of one walker were cut at a column from someone pressed against it (``TOUCH``): they are
    in its trajectory as detections, counted in ``blobs_pressed``, and not in its gait sequence."""
    from pipeline.extract.track_stream import TOUCH

    frames, boxes, scores = piece(range(60), 20, 2)
    cands = [np.append(b, 0.9)[None].astype(np.float32) for b in boxes]
    rows = [(int(t), b, 0.9, TOUCH if 30 <= t < 40 else 0, _clothes((235, 225, 215)))
            for t, b in zip(frames, boxes, strict=True)]
    (track,), stats = track_people(cands, W, H, fps=25.0, raw={1: rows})
    assert stats.blobs_pressed == 10 and stats.tracks_split == 0
    assert track.frames.tolist() == [t for t in range(60) if not 30 <= t < 40]
    assert track.trajectory.frames.tolist() == list(range(60))
    np.testing.assert_array_equal(track.trajectory.boxes[30:40], boxes[30:40])


def test_a_blob_with_two_peoples_foreground_stays_on_its_walkers_line_but_is_no_gait_frame() -> None:
    """Frames 30-39 of one walker's whole blobs hold 1.9x his foreground (someone pressed beside him, no valley
    between): in the trajectory as detections, counted in ``frames_too_full``, not in the gait sequence. A 1.3x
    blob (a coat, a bag) stays a gait frame, and a part with no area measured (NaN) is never judged."""
    frames, boxes, scores = piece(range(60), 20, 2)
    cands = [np.append(b, 0.9)[None].astype(np.float32) for b in boxes]
    one = 0.6 * 40 * 120  # pixels of one walker in his 40 x 120 box
    for extra, dropped in ((1.9, 10), (1.3, 0), (np.nan, 0)):
        rows = [(int(t), b, 0.9, 0, _clothes((235, 225, 215)), one * extra if 30 <= t < 40 else one)
                for t, b in zip(frames, boxes, strict=True)]
        (track,), stats = track_people(cands, W, H, fps=25.0, raw={1: rows})
        assert stats.frames_too_full == dropped, extra
        assert track.frames.tolist() == [t for t in range(60) if not (dropped and 30 <= t < 40)]
        assert track.trajectory.frames.tolist() == list(range(60))
        np.testing.assert_array_equal(track.trajectory.boxes, boxes)


def test_the_raw_tracker_records_each_whole_blobs_foreground_pixels() -> None:
    from pipeline.extract.track_stream import RawTracker

    fg = np.zeros((120, 120), bool)
    fg[10:110, 30:60] = True
    fg[10:30, 60:70] = True  # an arm
    masks, cand = _masks_of(fg, [[30, 10, 70, 110]])
    follow = RawTracker(masks=masks, blobs=True, size=(120, 120))
    follow.update(cand)
    (rows,) = follow.raw.values()
    assert rows[0].area == 100 * 30 + 20 * 10


def test_a_person_still_standing_where_a_piece_ended_is_not_the_walker_that_begins_later() -> None:
    """A man stands at x 150 (frames 0-29); 10 frames later the tracker's id walks off leftwards from x 100.
    Motion allows the join (a standing man may start walking). But a detection of his height covers his last
    box when the walker begins: he still stands there, so the walker is someone else (PETS 2009: a man in
    jeans and one in black trousers). A blob holding the walker does not count, nor anyone where a walker was."""
    from pipeline.extract.track_link import still_there

    standing, walker = piece(range(0, 30), 150, 0), piece(range(40, 70), 220, -3)  # at x 100 at frame 40
    him = np.append(standing[1][-1], 0.9).astype(np.float32)
    first = np.append(walker[1][0], 0.9).astype(np.float32)
    assert join_cost(standing, walker, max_gap=30) is not None
    assert join_cost(standing, walker, max_gap=30, present=np.stack([first, him])) is None
    assert join_cost(standing, walker, max_gap=30, present=first[None]) is not None  # nobody else there
    blob = np.array([[100, 60, 190, 180, 0.9]], np.float32)  # the walker's blob reaching over the spot
    assert not still_there(standing[1][-1], walker[1][0], blob)
    tall = him.copy()
    tall[1] -= 0.5 * 120  # someone 1.5x his height: not him
    assert not still_there(standing[1][-1], walker[1][0], tall[None])
    moving = piece(range(0, 30), 60, 1.5)  # ends at x 103.5 walking right: only a standing person is seen staying
    there = np.append(moving[1][-1], 0.9).astype(np.float32)  # someone else where he was
    onward = piece(range(40, 70), 45, 1.5)
    assert join_cost(moving, onward, max_gap=30, present=np.stack([np.append(onward[1][0], 0.9), there])) is not None

    cands = [np.zeros((0, 5), np.float32) for _ in range(70)]
    for t, b in zip(standing[0], standing[1], strict=True):
        cands[t] = np.append(b, 0.9)[None].astype(np.float32)
    for t, b in zip(walker[0], walker[1], strict=True):
        cands[t] = np.stack([np.append(b, 0.9), him]).astype(np.float32)  # he stands on, with no track of his own
    rows = [(int(t), b, 0.9, 0, _clothes((40, 40, 40))) for t, b in zip(np.r_[standing[0], walker[0]],
                                                                        np.r_[standing[1], walker[1]], strict=True)]
    tracks, stats = track_people(cands, W, H, fps=25.0, raw={1: rows})
    assert [(int(t.frames[0]), int(t.frames[-1])) for t in tracks] == [(0, 29), (40, 69)] and stats.segments_joined == 0
    alone = [c[:1] for c in cands]  # nobody left where he stood: the join is motion's to make
    tracks, stats = track_people(alone, W, H, fps=25.0, raw={1: rows})
    assert len(tracks) == 1 and stats.segments_joined == 1


def test_a_kept_frame_between_two_merged_ones_is_merged() -> None:
    """Someone beside a walker does not leave for one frame: a lone kept frame between merged ones is merged, also
    where frames with no detection (interpolated) lie between; two kept frames in a row, a kept frame with a kept
    one beyond an interpolated gap, a border frame on one side and a trajectory's ends are not."""
    from pipeline.extract.track_link import BORDER, between_merges

    K, M, N = KEPT, MERGED, INTERPOLATED
    state = np.array([K, M, K, M, K, K, M, N, K, M, K, M, BORDER, M, K, N, K, M], np.uint8)
    assert np.flatnonzero(between_merges(state)).tolist() == [2, 8, 10]
    assert np.flatnonzero(between_merges(np.array([M, N, N, K, N, M], np.uint8))).tolist() == [3]
    assert not between_merges(np.array([K, M], np.uint8)).any() and not between_merges(np.zeros(0, np.uint8)).any()


def test_a_blob_that_looks_like_one_walker_for_one_frame_between_two_pairs_is_no_gait_frame() -> None:
    """Frames 20-39 of one raw track are a blob showing two heads (``PAIR``), except frame 30, where the top edge
    showed one: frame 30 stays on the line as a merged frame (``frames_between_merges``), not a gait frame. A blob
    seen alone for two frames in a row is a gait frame."""
    from pipeline.extract.track_stream import PAIR

    frames, boxes, scores = piece(range(60), 20, 2)
    cands = [np.append(b, 0.9)[None].astype(np.float32) for b in boxes]
    for alone, lone in (({30}, 1), ({30, 31}, 0)):
        rows = [(int(t), b, 0.9, PAIR if 20 <= t < 40 and t not in alone else 0, _clothes((235, 225, 215)))
                for t, b in zip(frames, boxes, strict=True)]
        (track,), stats = track_people(cands, W, H, fps=25.0, raw={1: rows})
        assert stats.frames_between_merges == lone
        assert track.frames.tolist() == [t for t in range(60) if not 20 <= t < 40 or (not lone and t in alone)]
        assert track.trajectory.frames.tolist() == list(range(60)) and track.trajectory.state[30] == (MERGED if lone else KEPT)


def test_a_short_piece_joined_on_one_side_only_stays_on_the_line_but_is_no_gait_frame() -> None:
    """A 4-frame piece has no slope of its own: joined at a track's end, only where it is says it is the same
    walker, and nothing after it confirms that. Its frames become no gait frames (the piece's 4th array); the
    same piece between two long ones, joined on both sides, and a long end piece keep theirs."""
    def unsure(p):
        return (*p, np.zeros(len(p[0]), bool))

    long_a, short = unsure(piece(range(0, 30), 20, 2)), unsure(piece(range(32, 36), 20, 2))
    (track,), joins = stitch([long_a, short], max_gap=30)
    assert joins == 1 and track[3].tolist() == [False] * 30 + [True] * 4
    long_b = unsure(piece(range(38, 60), 20, 2))
    (track,), joins = stitch([long_a, short, long_b], max_gap=30)
    assert joins == 2 and not track[3].any()
    (track,), joins = stitch([long_a, long_b], max_gap=30)
    assert joins == 1 and not track[3].any()


def test_a_short_piece_ending_a_track_is_counted_and_left_out_of_its_gait_sequence() -> None:
    frames, boxes, _ = piece(range(36), 20, 2)
    cands = [np.append(b, 0.9)[None].astype(np.float32) for b in boxes]
    rows = {1: [(int(t), boxes[t], 0.9, 0, _clothes((235, 225, 215))) for t in range(30)],
            2: [(int(t), boxes[t], 0.9, 0, _clothes((235, 225, 215))) for t in range(32, 36)]}
    (track,), stats = track_people(cands, W, H, fps=25.0, raw=rows)
    assert stats.segments_joined == 1 and stats.frames_short_end == 4
    assert track.frames.tolist() == list(range(30)) and track.trajectory.frames.tolist() == list(range(36))
