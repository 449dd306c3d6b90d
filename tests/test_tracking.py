"""Multi-person tracking: blob splitting, the quality filters, and MOT figures on a synthetic crowd."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pipeline.extract.track import TrackFilter, person_shaped, split_blobs, track_people
from pipeline.extract.track_link import INTERPOLATED, MERGED

W, H = 320, 240


def test_a_blob_of_two_people_side_by_side_is_split_at_the_gap() -> None:
    fg = np.zeros((H, W), bool)
    fg[60:180, 100:145] = True  # person A, 45 x 120
    fg[70:180, 150:200] = True  # person B, 5 px away (one blob after grouping): 100 px wide together
    fg[175:180, 145:150] = True  # their feet touch
    blob = np.array([[100, 60, 200, 180, 0.9]], np.float32)
    parts, splits = split_blobs(fg, blob)
    assert splits == 1
    boxes = sorted(parts[:, :4].tolist())
    assert np.allclose(boxes[0], [100, 60, 145, 180], atol=3) and np.allclose(boxes[1], [145, 70, 200, 180], atol=3)
    one = np.zeros((H, W), bool)
    one[60:180, 100:140] = True
    same, n = split_blobs(one, np.array([[100, 60, 140, 180, 0.9]], np.float32))  # person-shaped: kept whole
    assert n == 0 and np.array_equal(same[:, :4], [[100, 60, 140, 180]])


def walk(x0: float, dx: float, frames: range, y0: float = 60, w: float = 40, h: float = 120) -> dict[int, list[float]]:
    return {t: [x0 + dx * t, y0, x0 + dx * t + w, y0 + h, 0.5] for t in frames}


def test_filters_drop_border_merged_short_and_shapeless_and_count_them() -> None:
    a = walk(-20, 6, range(40))  # enters from the left: its first frames touch the border
    b = walk(250, -3, range(40))  # walks the other way; meets a around frame 30
    tape = {t: [20, 200, 80, 230, 0.5] for t in range(40)}  # a fluttering tape: wide and flat
    speck = {t: [200, 20, 230, 100, 0.5] for t in range(10, 13)}  # 3 frames only
    cands = []
    for t in range(40):
        rows = [d[t] for d in (a, b, tape, speck) if t in d]
        ra, rb = a[t], b[t]
        if abs(ra[0] - rb[0]) < 20:  # they overlap: background subtraction sees one blob for both
            rows = [r for r in rows if r not in (ra, rb)] + [[min(ra[0], rb[0]), 60, max(ra[2], rb[2]), 180, 0.6]]
        cands.append(np.array(rows, np.float32).reshape(-1, 5))
    tracks, stats = track_people(cands, W, H, blobs=True)
    assert stats.frames_border == 4  # a's x0 <= 1 in frames 0-3
    assert stats.frames_merged >= 2  # the one-blob frames are kept by neither
    assert stats.tracks_short == 1 and stats.tracks_not_person == 1
    assert len(tracks) == 2 and stats.tracks_kept == 2
    first = min(tracks, key=lambda t: t.boxes[0, 0])
    assert first.frames[0] == 4 and (first.boxes[:, 0] > 1).all()
    for tr in tracks:  # no kept box holds two people
        assert ((tr.boxes[:, 2] - tr.boxes[:, 0]) <= 41).all()


def test_a_person_hidden_for_a_while_comes_back_as_the_same_track() -> None:
    a = walk(20, 3, range(80))
    hidden = range(20, 48)  # longer than the tracker keeps a lost track (25 frames at 25 frames/s)
    cands = [np.array([a[t]] if t not in hidden else [], np.float32).reshape(-1, 5) for t in range(80)]
    tracks, stats = track_people(cands, W, H, blobs=True)
    assert stats.tracks_found == 2  # the tracker's own: two
    # one track; ByteTrack confirms a track reborn mid-video on its second frame, so frame 48 is not in it
    assert len(tracks) == 1 and tracks[0].frames.tolist() == [*range(20), *range(49, 80)]
    apart, _ = track_people(cands, W, H, blobs=True, filters=TrackFilter(stitch_seconds=0))
    assert len(apart) == 2  # without stitching: two tracks



def test_how_long_a_person_may_be_hidden_is_in_seconds_not_frames() -> None:
    """The 28 hidden frames the test above joins at 25 frames/s (1.1 s) are 2.8 s at PETS 2009's 10 frames/s:
    another walker may have come out there (on PETS, 27- and 14-frame joins took other people), so the two
    pieces stay apart; the limit is 1.2 s at any rate."""
    a = walk(20, 3, range(80))
    hidden = range(20, 48)
    cands = [np.array([a[t]] if t not in hidden else [], np.float32).reshape(-1, 5) for t in range(80)]
    tracks, stats = track_people(cands, W, H, fps=10.0, blobs=True)
    assert stats.tracks_found == 2 and len(tracks) == 2 and stats.segments_joined == 0
    joined, _ = track_people(cands, W, H, fps=10.0, blobs=True, filters=TrackFilter(stitch_seconds=3.0))
    assert len(joined) == 1  # allowed 3 s, the same pieces are one track

def test_a_stretch_of_a_track_taller_than_its_walker_either_side_leaves_the_gait_sequence() -> None:
    """A walker with someone close behind for 18 frames, their head over his: one blob 1.3x his height (under the
    line's 1.4x), lost by the detector for 4 frames either side, re-linked as one track (heights within a third)."""
    a = walk(20, 3, range(70))
    for t in range(22, 40):
        a[t][1] -= 36  # 156 px, 1.3x
    gone = {18, 19, 20, 21, 40, 41, 42, 43}
    cands = [np.array([a[t]] if t not in gone else [], np.float32).reshape(-1, 5) for t in range(70)]
    tracks, stats = track_people(cands, W, H, blobs=True)
    assert len(tracks) == 1 and stats.segments_joined == 2 and stats.frames_taller_than_walker == 18
    track = tracks[0]
    assert track.frames.tolist() == [*range(18), *range(44, 70)]  # the walker alone
    state = track.trajectory.state
    assert track.trajectory.frames.tolist() == list(range(70))  # the stretch stays on his line ...
    assert (state[22:40] == MERGED).all() and (state[18:22] == INTERPOLATED).all()  # ... as merged frames
    lower = {t: [*a[t][:1], a[t][1] + 30, *a[t][2:]] for t in range(22, 40)}  # 1.05x: a tall walker, no one behind
    cands = [np.array([lower.get(t, a[t])] if t not in gone else [], np.float32).reshape(-1, 5) for t in range(70)]
    tracks, stats = track_people(cands, W, H, blobs=True)
    assert stats.frames_taller_than_walker == 0 and len(tracks[0].frames) == 62


def test_person_shape() -> None:
    f = TrackFilter()
    upright = np.array([[0, 0, 40, 120]] * 5, np.float32)
    assert person_shaped(upright, f)
    assert not person_shaped(np.array([[0, 0, 120, 40]] * 5, np.float32), f)
    jumpy = upright.copy()
    jumpy[1::2, 3] = 60  # height doubles every other frame
    assert not person_shaped(jumpy, f)


@pytest.fixture(scope="module")
def crowd(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from pipeline.synthetic.crowd import generate_crowds

    out = tmp_path_factory.mktemp("crowd3")
    generate_crowds(out, people=3, scenes=1, views=["090"], frames=80, size=(W, H), seed=0, quiet=True)
    return out


def bgsub_tracks(video: Path):
    from pipeline.extract.bgsub import BackgroundModel
    from pipeline.extract.detect import BgSubDetector
    from pipeline.extract.track import BlobMasks
    from pipeline.extract.video import VideoReader

    reader = VideoReader(video)
    det = BgSubDetector()
    det.reset(BackgroundModel(reader.sample(64)), split=True)  # the median of the video, as extract does
    masks = BlobMasks()  # and the blobs' foreground, so a blob two tracks claim is cut between them
    cands = [c for _, frames in reader.batches(16) for c in masks.detect(det, frames)]
    return track_people(cands, W, H, reader.info.fps, blobs=True, masks=masks)


def test_mot_figures_on_a_crowd_of_three(crowd: Path) -> None:
    """3 walkers crossing, 80 frames, bgsub. Measured on the frames where a walker is wholly in the
    picture (frames touching the border are dropped on purpose). The target is every walker followed
    by one track on >= 80% of them. That is not reached, because frames where two people's boxes
    overlap are dropped (a bgsub silhouette there holds both) and here the walkers overlap often:
    what is reached is asserted. Each walker has one track (no ID switch, no spare track) that follows
    it on 55-75% of its in-picture frames, and on nearly every frame a track keeps, it is its walker."""
    from pipeline.synthetic.crowd import read_crowd_truth
    from pipeline.tools.mot import Track, evaluate_tracks

    truth = read_crowd_truth(crowd / "truth" / "scene-1-090.h5")
    tracks, stats = bgsub_tracks(crowd / "scene-1-090.avi")
    b = truth.boxes
    inside = ~np.isnan(b[..., 0]) & (b[..., 0] > 1) & (b[..., 1] > 1) & (b[..., 2] < W - 1) & (b[..., 3] < H - 1)
    report = evaluate_tracks(b, [Track(i, t.frames, t.boxes) for i, t in enumerate(tracks)], present=inside)
    rates = sorted(report.walker_hit_rate)
    assert rates[0] >= 0.55 and rates[-1] >= 0.7  # every walker followed by one track
    assert report.spare_tracks == [] and report.num_switches == 0
    assert report.mota > 0.6 and report.idf1 > 0.75
    assert report.num_false_positives <= 0.05 * sum(len(t.frames) for t in tracks)  # kept boxes are people
    assert stats.frames_border > 0 and stats.tracks_kept == len(tracks)
    for tr in tracks:  # every kept box is person-shaped
        h, w = tr.boxes[:, 3] - tr.boxes[:, 1], tr.boxes[:, 2] - tr.boxes[:, 0]
        assert np.median(h / w) > 1.2


def test_each_walker_of_a_crowd_is_followed_by_one_trajectory(crowd: Path) -> None:
    """The issue's acceptance line on one scene (3 walkers, 80 frames, bgsub): scored on every frame a
    walker is seen, each walker's trajectory has box IoU >= 0.6 on >= 85% of them, no ID switch, no
    spare track. Scored on the kept frames only (what the tracker kept before trajectories), the
    same tracks follow each walker on well under 80% of its frames: merged and border frames are
    not in a gait sequence, on purpose."""
    from pipeline.formats.video_cache import TRACK_STATES
    from pipeline.synthetic.crowd import read_crowd_truth
    from pipeline.tools.mot import Track, evaluate_tracks

    truth = read_crowd_truth(crowd / "truth" / "scene-1-090.h5", masks=False)
    tracks, stats = bgsub_tracks(crowd / "scene-1-090.avi")
    paths = [Track(i, t.trajectory.frames, t.trajectory.boxes) for i, t in enumerate(tracks)]
    report = evaluate_tracks(truth.boxes, paths)
    assert min(report.walker_hit_rate) >= 0.85 and report.num_switches == 0 and report.spare_tracks == []
    assert report.idf1 >= 0.95 and report.mota >= 0.9
    kept = evaluate_tracks(truth.boxes, [Track(i, t.frames, t.boxes) for i, t in enumerate(tracks)])
    assert max(kept.walker_hit_rate) < 0.7
    for t in tracks:  # the gait sequence is exactly the trajectory's kept frames
        assert t.frames.tolist() == t.trajectory.frames[t.trajectory.state == 0].tolist()
    # where the walkers overlap, their blob was split by colour: those frames stay in each track's
    # line (detected boxes) but are merged, never in a gait sequence
    assert stats.blobs_colour_split > 0 and stats.segments >= len(tracks)
    merged = sum(int((t.trajectory.state == TRACK_STATES.index("merged")).sum()) for t in tracks)
    assert merged >= stats.blobs_colour_split


def test_footage_with_spaces_goes_through_extract_and_align_one_person_per_sequence(crowd: Path, tmp_path: Path) -> None:
    """`extract FILE` (a name no manifest knows: footage, every track) then `align`, no other option;
    every aligned sequence follows one walker of the truth."""
    import shutil

    from click.testing import CliRunner

    from cli.prep import main as prep
    from pipeline.formats.aligned import AlignedReader
    from pipeline.synthetic.crowd import read_crowd_truth
    from pipeline.tools.mot import box_iou
    from tests.tiny_models import save_tiny_depth_anything

    video = tmp_path / "plaza camera 2.avi"
    shutil.copy(crowd / "scene-1-090.avi", video)
    depth = save_tiny_depth_anything(tmp_path / "depth")
    cache = tmp_path / "cache"
    res = CliRunner().invoke(prep, ["extract", str(video), "--cache", str(cache), "--depth", str(depth),
                                    "--depth-input-height", "56", "--quiet"])
    assert res.exit_code == 0, res.output
    assert (cache / "videos" / "plaza camera 2" / "footage" / "000.tracks.json").is_file()
    from pipeline.formats.video_cache import list_caches, read_video_cache

    for track_cache in map(read_video_cache, list_caches(cache)):  # each holds its trajectory; frames: the kept ones
        frames, _, state = track_cache.trajectory()
        assert track_cache.track_frames is not None and np.array_equal(np.diff(frames), np.ones(len(frames) - 1))
        assert np.array_equal(track_cache.frames, frames[state == 0])
    res = CliRunner().invoke(prep, ["align", "--cache", str(cache), "--quiet"])
    assert res.exit_code == 0, res.output
    truth = read_crowd_truth(crowd / "truth" / "scene-1-090.h5", masks=False)
    with AlignedReader(cache / "aligned.h5") as reader:
        ids = reader.ids()
        assert len(ids) >= 3 and {i.condition for i in ids} == {"footage"} and {i.view for i in ids} == {"000"}
        assert {i.subject.rsplit(".", 1)[0] for i in ids} == {"plaza camera 2"}
        walkers = []
        for seq_id in ids:
            seq = reader.load(seq_id)
            assert seq.video == str(video) and seq.track == int(seq_id.subject.rsplit(".", 1)[1])
            best = [int(np.argmax(box_iou(truth.boxes[:, f], b[None])[:, 0])) for f, b in zip(seq.frames, seq.box,
                                                                                           strict=True)]
            share = np.bincount(best).max() / len(best)
            assert share >= 0.9, (seq_id, share)  # one person, not a blob of two
            walkers.append(int(np.bincount(best).argmax()))
    assert set(walkers) == {0, 1, 2}  # everyone is somebody's track
    status = CliRunner().invoke(prep, ["status", "--cache", str(cache)])
    assert "touching the border" in status.output and "person tracks:" in status.output


def test_a_folder_of_frames_is_one_video(crowd: Path, tmp_path: Path) -> None:
    import cv2

    from pipeline.extract.discover import auto_layout, find_videos, footage_id
    from pipeline.extract.video import VideoReader
    from pipeline.manifest import load_manifest

    frames = np.concatenate([f for _, f in VideoReader(crowd / "scene-1-090.avi").batches(32)])
    folder = tmp_path / "cam 1"
    folder.mkdir()
    for i in (0, 1, 2, 10, 11):  # natural order: img_2 before img_10
        cv2.imwrite(str(folder / f"img_{i}.png"), frames[i])
    reader = VideoReader(folder)
    got = np.concatenate([f for _, f in reader.batches(2)])
    assert np.array_equal(got, frames[[0, 1, 2, 10, 11]]) and reader.info.fps == 25.0
    man = load_manifest("casia-b")
    assert find_videos(folder, man) == [folder] and find_videos(tmp_path, man) == [folder]
    assert auto_layout(folder, man, "names") == "footage" and footage_id(folder).subject == "cam 1"


def test_the_tracker_follows_the_detect_pass_and_holds_one_batch_of_crops(
    crowd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """extract's streamed order (the tracker fed each detected batch, a frame's blob crops dropped once
    tracked) gives exactly the tracks of the whole-video order (every frame detected, then tracked),
    while holding the crops of one batch at most, not of the video."""
    import shutil
    from types import SimpleNamespace

    from pipeline.extract import job
    from pipeline.extract.detect import BgSubDetector
    from pipeline.extract.models import Models
    from pipeline.extract.settings import ExtractSettings
    from pipeline.extract.track import BlobMasks
    from pipeline.manifest import SequenceId

    held: list[int] = []

    class Watched(BlobMasks):
        def detect(self, detector, frames):  # type: ignore[no-untyped-def]
            out = super().detect(detector, frames)
            held.append(len(self.crops))
            return out

    monkeypatch.setattr(job, "BlobMasks", Watched)
    video = tmp_path / "scene-1-090.avi"  # alone: the background is the median of the video, as bgsub_tracks takes it
    shutil.copy(crowd / "scene-1-090.avi", video)
    settings = ExtractSettings(detector="bgsub", segmenter="bgsub", tracks="all", batch_size=8)
    models = Models(BgSubDetector(), SimpleNamespace(reset=lambda background: None), SimpleNamespace(near_is_large=True))
    parts = job.stream_video(video, SequenceId("scene-1", "crowd", "090"), settings, models, [])
    heads = next(parts)
    parts.close()  # the tracks are known: segmentation and depth are not needed here
    assert len(held) == 10 and max(held) == 8  # 80 frames in batches of 8: never more than one batch's crops
    tracks, stats = bgsub_tracks(video)
    assert len(heads) == len(tracks) == 3
    for head, track in zip(heads, tracks, strict=True):
        for name, want in (("frames", track.frames), ("box", track.boxes), ("score", track.scores),
                           ("track_frames", track.trajectory.frames), ("track_boxes", track.trajectory.boxes),
                           ("track_state", track.trajectory.state)):
            assert np.array_equal(head.track[name], want), name
    recorded = dict(heads[0].header["tracking"])
    assert recorded.pop("blobs_split") > 0 and recorded == {k: v for k, v in stats.to_dict().items() if k != "blobs_split"}
    assert recorded["blobs_colour_split"] > 0  # the colour models were learnt and used while streaming


def test_a_long_crowd_video_holds_the_cache_files_of_the_tracks_under_way_only(
    crowd: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The crowd played twice: the second pass opens each track's cache at its first batch and finishes
    it after its last, so the first play's files are done (in place) before the second's open; every
    track's file gets all its rows."""
    import cv2

    from pipeline.extract import job
    from pipeline.extract.models import load_models
    from pipeline.extract.settings import ExtractSettings
    from pipeline.extract.track_index import index_path, read_index
    from pipeline.extract.video import VideoReader
    from pipeline.formats.video_cache import read_video_cache
    from pipeline.manifest import SequenceId
    from tests.tiny_models import save_tiny_depth_anything

    frames = np.concatenate([f for _, f in VideoReader(crowd / "scene-1-090.avi").batches(32)])
    video = tmp_path / "twice.avi"
    writer = cv2.VideoWriter(str(video), cv2.VideoWriter_fourcc(*"FFV1"), 25, (W, H))
    for frame in (*frames, *frames):
        writer.write(frame)
    writer.release()
    now, most = [0], [0]

    class Counted(job.CacheWriter):
        def __enter__(self):  # type: ignore[no-untyped-def]
            now[0] += 1
            most[0] = max(most[0], now[0])
            return super().__enter__()

        def __exit__(self, *exc):  # type: ignore[no-untyped-def]
            now[0] -= 1
            return super().__exit__(*exc)

    monkeypatch.setattr(job, "CacheWriter", Counted)
    depth = save_tiny_depth_anything(tmp_path / "depth")
    settings = ExtractSettings(tracks="all", depth=str(depth), depth_input_height=56, threads=1)
    seq = SequenceId("twice", "footage", "000")
    target = index_path(tmp_path / "cache", seq)
    rows, _ = job.extract_to_cache(video, seq, settings, load_models(settings), target)
    _, caches = read_index(target)
    assert len(caches) >= 5 and now[0] == 0  # both plays' walkers; every file finished
    assert most[0] <= 3  # the walkers in the picture at once, never every track's file
    assert rows == sum(len(read_video_cache(c)) for c in caches) > 0


def test_linking_version_is_fingerprinted_for_footage_caches_only() -> None:
    """A change to the linking rules redoes --tracks all caches (their tracks change) and no dataset cache."""
    from pipeline.extract.settings import TRACK_LINKING, ExtractSettings

    footage = ExtractSettings(detector="bgsub", segmenter="bgsub", tracks="all").recorded()
    dataset = ExtractSettings(detector="bgsub", segmenter="bgsub", tracks="longest").recorded()
    assert footage["track_linking"] == TRACK_LINKING >= 2
    assert "track_linking" not in dataset and "tracks" not in dataset
