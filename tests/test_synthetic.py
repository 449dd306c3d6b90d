"""The synthetic walking-video generator: decodable videos whose truth matches the pixels and the geometry."""
from __future__ import annotations

from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from cli.prep import main as prep_main
from pipeline.synthetic.dataset import PATH_DISTANCE, generate_dataset, mask_boxes, render_sequence, subject_params
from pipeline.synthetic.people import sample_subject
from pipeline.synthetic.render import background

VIEWS, CONDITIONS, FRAMES = ["000", "090"], ["nm-01", "bg-01", "cl-01"], 30
THRESHOLD = 12  # grey levels; the sensor noise has sd 2


def decode(path: Path) -> np.ndarray:
    """All frames of a video as RGB uint8 [T, H, W, 3]."""
    cap = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, frame = cap.read()
        if not ok:
            break
        frames.append(frame[..., ::-1])
    cap.release()
    return np.array(frames)


def person_iou(rgb: np.ndarray, bg: np.ndarray, mask: np.ndarray) -> float:
    """IoU of the truth mask with the pixels that differ from the known background."""
    moved = np.abs(rgb.astype(np.int16) - bg.astype(np.int16)).max(-1) > THRESHOLD  # [T, H, W]
    return float((moved & mask).sum() / (moved | mask).sum())


@pytest.fixture(scope="module")
def synth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The issue's example set, made through the real CLI: 2 subjects x 2 views x 3 conditions."""
    out = tmp_path_factory.mktemp("synth")
    result = CliRunner().invoke(prep_main, ["synth", str(out), "--subjects", "2", "--views", ",".join(VIEWS),
                                            "--conditions", ",".join(CONDITIONS), "--frames", str(FRAMES), "--quiet"])
    assert result.exit_code == 0, result.output
    return out


def test_cli_writes_casia_named_videos_and_truth(synth_dir: Path) -> None:
    names = sorted(f"{s:03d}-{c}-{v}" for s in (1, 2) for c in CONDITIONS for v in VIEWS)
    assert sorted(p.stem for p in synth_dir.glob("[0-9]*.avi")) == names
    assert sorted(p.stem for p in (synth_dir / "truth").glob("*.h5")) == names
    assert sorted(p.stem for p in synth_dir.glob("bkgrd-*.avi")) == [f"bkgrd-{v}" for v in sorted(VIEWS)]
    assert not list(synth_dir.rglob(".tmp-*"))  # no half files left behind


def test_background_videos_show_the_empty_scene(synth_dir: Path) -> None:
    for view in VIEWS:
        frames = decode(synth_dir / f"bkgrd-{view}.avi").astype(np.float32)
        bg = background(view, (320, 240), 0).astype(np.float32)
        assert frames.shape[1:] == (240, 320, 3)
        assert np.abs(frames - bg).mean() < 3.0  # only sensor noise
        assert np.abs(frames.mean(0) - bg).max() < 4.0


def test_videos_decode_and_truth_matches_pixels(synth_dir: Path) -> None:
    for video in sorted(synth_dir.glob("[0-9]*.avi")):
        rgb = decode(video)
        assert rgb.shape == (FRAMES, 240, 320, 3), video.name
        with h5py.File(synth_dir / "truth" / f"{video.stem}.h5", "r") as h5:
            mask, depth, box = h5["mask"][:], h5["depth"][:], h5["box"][:]
        assert mask.dtype == bool and mask.shape == (FRAMES, 240, 320)
        assert depth.dtype == np.float32 and box.dtype == np.float32 and box.shape == (FRAMES, 4)
        view = video.stem.split("-")[-1]
        assert person_iou(rgb, background(view, (320, 240), 0), mask) >= 0.97, video.name
        np.testing.assert_array_equal(box, mask_boxes(mask))
        # Depth is positive exactly on the person, in metres of a person a few metres away.
        assert ((depth > 0) == mask).all()
        assert 3.0 < depth[mask].min() and depth[mask].max() < 12.0


def test_decoded_video_is_the_rendered_sequence(synth_dir: Path) -> None:
    seq = render_sequence(subject_params(2, 0), "090", "bg-01", FRAMES, (320, 240), 0)
    np.testing.assert_array_equal(decode(synth_dir / "002-bg-01-090.avi"), seq.rgb)  # FFV1 is lossless
    assert 0.5 < seq.mask.mean(axis=(1, 2)).max() * 100 < 10  # the person covers a few % of the frame


def test_same_seed_same_bytes_and_subjects_do_not_depend_on_the_set(synth_dir: Path, tmp_path: Path) -> None:
    # Only subject 2, only one sequence: still byte-identical to the one in the bigger set.
    paths = generate_dataset(tmp_path, subjects=[2], views=["090"], conditions=["bg-01"], frames=FRAMES, quiet=True)
    assert [p.name for p in paths] == ["002-bg-01-090.avi"]
    assert paths[0].read_bytes() == (synth_dir / "002-bg-01-090.avi").read_bytes()
    assert (tmp_path / "truth" / "002-bg-01-090.h5").read_bytes() == \
        (synth_dir / "truth" / "002-bg-01-090.h5").read_bytes()
    other = render_sequence(subject_params(2, 0), "090", "bg-01", 4, (320, 240), seed=1)
    assert not np.array_equal(other.rgb, decode(paths[0])[:4])


def test_rerun_skips_finished_videos(synth_dir: Path) -> None:
    before = {p: p.stat().st_mtime_ns for p in synth_dir.rglob("*.*")}
    paths = generate_dataset(synth_dir, subjects=2, views=VIEWS, conditions=CONDITIONS, frames=FRAMES, quiet=True)
    assert len(paths) == 12
    assert {p: p.stat().st_mtime_ns for p in synth_dir.rglob("*.*")} == before


def test_box_height_follows_subject_height_and_distance() -> None:
    """Pinhole geometry: pixel height ~ focal x body height / distance, side view at the path distance."""
    for index in (1, 2, 3):
        subject = subject_params(index, 0)
        seq = render_sequence(subject, "090", "nm-01", 8, (320, 240), 0)
        z = np.median(seq.depth[seq.mask])
        assert abs(z - PATH_DISTANCE) < 0.6
        height_px = np.median(seq.box[:, 3] - seq.box[:, 1])
        assert height_px == pytest.approx(seq.camera.focal * subject.height / z, rel=0.05)


def test_different_subjects_differ_and_nm_sequences_are_alike() -> None:
    a = render_sequence(subject_params(1, 0), "090", "nm-01", 20, (320, 240), 0)
    b = render_sequence(subject_params(2, 0), "090", "nm-01", 20, (320, 240), 0)
    a2 = render_sequence(subject_params(1, 0), "090", "nm-02", 20, (320, 240), 0)

    def shape(seq) -> np.ndarray:  # per-frame area / height^2 and width / height: scale-free silhouette cues
        w, h = seq.box[:, 2] - seq.box[:, 0], seq.box[:, 3] - seq.box[:, 1]
        return np.array([np.mean(seq.mask.sum((1, 2)) / h**2), np.max(w / h), np.mean(h)])

    assert not np.array_equal(a.mask, b.mask)
    within = np.abs(shape(a) - shape(a2)) / shape(a)
    between = np.abs(shape(a) - shape(b)) / shape(a)
    assert within.max() < 0.05 and between.max() > 0.05  # same person twice: close; two people: apart


def test_bag_and_coat_widen_the_silhouette() -> None:
    subject = subject_params(3, 0)
    area = {c: render_sequence(subject, "090", c, 10, (320, 240), 0).mask.sum() for c in ("nm-01", "bg-01", "cl-01")}
    assert area["bg-01"] > 1.04 * area["nm-01"] and area["cl-01"] > 1.04 * area["nm-01"]


def test_frontal_depth_shows_which_leg_is_forward() -> None:
    """In view 000 the forward leg is nearer: the person's right leg is on the image's left."""
    seq = render_sequence(subject_params(1, 0), "000", "nm-01", 40, (320, 240), 0)
    names = list(seq.joint_names)
    joints = seq.joints  # [T, J, 3] camera frame
    knee_y = seq.camera.project(joints[:, [names.index("right_knee"), names.index("left_knee")]])[..., 1].max(1)
    centre_x = seq.camera.project(joints[:, names.index("pelvis")])[:, 0]
    ankle_dz = joints[:, names.index("right_ankle"), 2] - joints[:, names.index("left_ankle"), 2]
    agree, signs = [], set()
    cols = np.arange(seq.depth.shape[2])
    for t in np.flatnonzero(np.abs(ankle_dz) > 0.15):
        rows = slice(int(knee_y[t]) + 2, int(seq.box[t, 3]))  # shins and feet
        legs = seq.depth[t, rows]
        right = legs[:, cols < centre_x[t]]
        left = legs[:, cols >= centre_x[t]]
        depth_dz = np.median(right[right > 0]) - np.median(left[left > 0])
        agree.append(np.sign(depth_dz) == np.sign(ankle_dz[t]))
        signs.add(np.sign(ankle_dz[t]))
    assert len(agree) >= 10 and signs == {-1.0, 1.0}  # both legs lead at some point
    assert np.mean(agree) >= 0.9


def test_person_leaving_the_frame_keeps_mask_box_and_pixels_consistent() -> None:
    seq = render_sequence(subject_params(1, 0), "090", "nm-01", 110, (160, 120), 0)
    width = 160
    assert (seq.box[:, 0] == 0).any() or (seq.box[:, 2] == width).any()  # clipped at an edge
    np.testing.assert_array_equal(seq.box, mask_boxes(seq.mask))
    empty = ~seq.mask.any((1, 2))
    assert (seq.box[empty] == 0).all()
    assert person_iou(seq.rgb, background("090", (160, 120), 0), seq.mask) >= 0.97


def test_subject_distribution_is_realistic_and_overlapping() -> None:
    rng = np.random.default_rng(0)
    people = [sample_subject(rng) for _ in range(400)]
    height = np.array([p.height for p in people])
    speed = np.array([p.speed for p in people])
    assert abs(height.mean() - 1.70) < 0.015 and 0.065 < height.std() < 0.095
    assert 1.1 < speed.mean() < 1.5 and speed.min() > 0.7 and speed.max() < 2.0
    # Overlap: many people share a height within 1 cm with someone else.
    gaps = np.diff(np.sort(height))
    assert np.mean(gaps < 0.01) > 0.9


def test_background_is_deterministic_and_per_view() -> None:
    a = background("090", (320, 240), 0)
    assert a.shape == (240, 320, 3) and a.dtype == np.uint8
    np.testing.assert_array_equal(a, background("090", (320, 240), 0))
    assert not np.array_equal(a, background("000", (320, 240), 0))
    assert not np.array_equal(a, background("090", (320, 240), 1))


def test_cli_help_and_errors(tmp_path: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(prep_main, ["synth", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output and "depthgait-prep synth" in result.output
    result = runner.invoke(prep_main, ["synth", str(tmp_path), "--views", "90"])
    assert result.exit_code == 1 and "view '90'" in result.output
    result = runner.invoke(prep_main, ["synth", str(tmp_path), "--conditions", "nm-01,walk-1"])
    assert result.exit_code == 1 and "condition 'walk-1'" in result.output
    result = runner.invoke(prep_main, ["synth", str(tmp_path), "--size", "320"])
    assert result.exit_code == 2 and "WIDTHxHEIGHT" in result.output


def test_walking_speed_is_cadence_times_step() -> None:
    """Over whole strides the body covers cadence x step length per second, whatever the start phase."""
    from pipeline.synthetic.body import walk_progress
    from pipeline.synthetic.people import sample_sequence

    subject = subject_params(4, 0)
    seq = sample_sequence("nm-03", np.random.default_rng(1))
    stride_rad = np.array([0.0, 2 * np.pi, 4 * np.pi]) + seq.start_phase
    walked = walk_progress(subject, seq, stride_rad)  # [3] m
    stride_s = 2 / (subject.cadence * seq.speed_jitter)
    expected = subject.speed * seq.speed_jitter**2 * stride_s
    assert walked[1] == pytest.approx(expected, rel=1e-3) and walked[2] == pytest.approx(2 * expected, rel=1e-3)
    assert 0.9 < subject.speed < 1.8


def test_a_full_disk_while_writing_truth_is_one_error_and_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Truth files go through the guarded HDF5 writer: ENOSPC is one FileWriteError naming the file, no crash."""
    import errno

    from pipeline.atomic import FileWriteError
    from pipeline.formats.h5_writer import GuardedFile
    from pipeline.synthetic.dataset import render_sequence, subject_params, write_truth

    seq = render_sequence(subject_params(1), "090", "nm-01", frames=3, size=(80, 60))

    def full(self, data):  # noqa: ANN001 - the disk fills up at the first write
        self.error = self.error or OSError(errno.ENOSPC, "No space left on device")
        return len(memoryview(data).cast("B"))

    monkeypatch.setattr(GuardedFile, "write", full)
    target = tmp_path / "truth.h5"
    with pytest.raises(FileWriteError, match="truth.h5: cannot write .No space left"):
        write_truth(target, seq)
    assert not target.exists() and not list(tmp_path.glob(".tmp-*"))
