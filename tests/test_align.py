"""Alignment (stage 5): geometry, depth normalisation, pixel alignment of the two modalities, and the runner.

The synthetic person is drawn in body coordinates (u down the body from the top of the head, v across
it from the body's centroid, both in units of body height), so the same body can be placed at any
offset and scale in a crop, and the depth can be made a function of the body point itself.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest

from pipeline.align.batch import AlignReport, report_path, run_align
from pipeline.align.frames import AlignSettings, align_canvas, align_frames, align_video_cache, normalise_depth
from pipeline.formats.aligned import AlignedReader
from pipeline.formats.video_cache import VideoCache, cache_path, write_video_cache
from pipeline.geometry import FRAME_SIZE as OUT_SIZE
from pipeline.geometry import pack_canvas, pack_mask
from pipeline.manifest import SequenceId

EXACT = AlignSettings(depth_percentiles=(0.0, 100.0))  # min/max, so expected values have a closed form
Pattern = Callable[[np.ndarray, np.ndarray], np.ndarray]


# ---- synthetic person ------------------------------------------------------------------------------
def body_mask(shape: tuple[int, int], top: float, height: float, cx: float, phase: float = 0.0) -> np.ndarray:
    """A head, torso and two legs (ellipses in body units) of ``height`` px, head top at row ``top``."""
    yy, xx = np.mgrid[: shape[0], : shape[1]].astype(np.float32)
    u = (yy + 0.5 - top) / height  # [H, W] 0 at the top of the head, 1 at the feet
    v = (xx + 0.5 - cx) / height  # [H, W] 0 on the body axis
    swing = 0.06 * np.sin(phase)

    def ellipse(uc: float, vc: float | np.ndarray, ru: float, rv: float) -> np.ndarray:
        return ((u - uc) / ru) ** 2 + ((v - vc) / rv) ** 2 <= 1.0

    body = ellipse(0.07, 0.0, 0.07, 0.055) | ellipse(0.35, 0.0, 0.22, 0.11)
    body |= ellipse(0.76, -0.04 - swing, 0.24, 0.045) | ellipse(0.76, 0.04 + swing, 0.24, 0.045)
    return body.astype(np.uint8) * 255  # [H, W]


def body_coords(mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(u, v) [H, W] measured from a mask itself: top row, row extent and centroid column."""
    rows = np.flatnonzero(mask.any(axis=1))
    top, n_rows = rows[0], rows[-1] - rows[0] + 1
    cen = (np.nonzero(mask)[1] + 0.5).mean()
    yy, xx = np.mgrid[: mask.shape[0], : mask.shape[1]].astype(np.float64)
    return (yy + 0.5 - top) / n_rows, (xx + 0.5 - cen) / n_rows


def wave(u: np.ndarray, v: np.ndarray) -> np.ndarray:
    """A depth tied to body points, varying along both axes, so any shift of one modality shows."""
    return np.sin(2 * np.pi * 2.5 * u) + 0.8 * np.sin(2 * np.pi * v / 0.14)


def body_depth(mask: np.ndarray, pattern: Pattern = wave) -> np.ndarray:
    """Raw depth over the whole crop (as a depth model gives it), a function of each body point."""
    return pattern(*body_coords(mask)).astype(np.float32)


def alignment_error(sil: np.ndarray, depth: np.ndarray, lo: float, hi: float, pattern: Pattern = wave) -> float:
    """Mean |aligned depth - pattern at the aligned silhouette's own body points| inside the silhouette."""
    u, v = body_coords(sil)
    expected = 1.0 + 254.0 * np.clip((pattern(u, v) - lo) / (hi - lo), 0.0, 1.0)  # near_is_large: big = bright
    inside = sil > 0
    return float(np.abs(depth[inside].astype(np.float64) - expected[inside]).mean())


def pattern_range(mask: np.ndarray, pattern: Pattern = wave) -> tuple[float, float]:
    values = body_depth(mask, pattern)[mask > 0]
    return float(values.min()), float(values.max())


# ---- cache files in the contract's schema ------------------------------------------------------------
def make_cache(
    cache_dir: Path,
    seq: SequenceId,
    n_frames: int = 8,
    empty: tuple[int, ...] = (),
    video: str = "synthetic.avi",
    near_is_large: bool = True,
) -> Path:
    """Write one per-video cache of a walking body through the extract module's own packing and writer."""
    masks, depths, sizes = [], [], []
    for t in range(n_frames):
        crop = (150 + 3 * (t % 3), 70 + 2 * t % 5)  # each frame's crop has its own size
        mask = body_mask(crop, top=8 + t % 4, height=130 + t % 5, cx=35.0 + t % 3, phase=0.7 * t)
        if t in empty:
            mask = np.zeros(crop, np.uint8)
            mask[50:52, 30:33] = 255  # a speck: nearly empty
        depth = body_depth(mask) if mask.sum() > 255 * 100 else np.zeros(crop, np.float32)
        packed_mask, size = pack_mask(mask)
        packed_depth, _ = pack_canvas(depth)
        masks.append(packed_mask)
        depths.append(packed_depth.astype(np.float16))
        sizes.append(size)
    t = np.arange(n_frames)
    cache = VideoCache(
        video=video, subject=seq.subject, condition=seq.condition, view=seq.view, fps=25.0, width=320, height=240,
        n_frames=n_frames + 2, fingerprint="test", settings={"detector": "test"}, depth_near_is_large=near_is_large,
        frames=t + 2, box=np.tile([10, 20, 80, 200], (n_frames, 1)), score=np.ones(n_frames),
        crop_box=np.tile([5, 10, 85, 210], (n_frames, 1)), crop_size=np.array(sizes), mask=np.stack(masks),
        depth=np.stack(depths),
    )
    return write_video_cache(cache_path(cache_dir, seq), cache)


# ---- the pure alignment --------------------------------------------------------------------------------
def test_output_shapes_dtypes_and_values() -> None:
    masks = [body_mask((140, 70), 5, 120, 33), body_mask((160, 90), 12, 140, 50, phase=1.0)]
    depths = [body_depth(m) for m in masks]
    sil, depth, kept = align_frames(masks, depths)
    assert sil.shape == depth.shape == (2, OUT_SIZE, OUT_SIZE)
    assert sil.dtype == depth.dtype == np.uint8
    assert kept.tolist() == [True, True]
    assert set(np.unique(sil).tolist()) == {0, 255}
    assert (depth[sil == 0] == 0).all(), "depth must be exactly 0 outside the silhouette"
    assert (depth[sil > 0] >= 1).all(), "depth is never 0 inside the silhouette"
    assert depth[sil > 0].max() >= 250 and depth[sil > 0].min() <= 10  # the body's range fills [1, 255]
    for s in sil:  # head at the top row, feet at the bottom row, body centred
        assert s[0].any() and s[-1].any()
        cols = np.nonzero(s)[1]
        assert abs((cols + 0.5).mean() - 32) < 2.0


def test_silhouette_only_sequence() -> None:
    sil, depth, kept = align_frames([body_mask((140, 70), 5, 120, 33)], None)
    assert depth is None and sil.shape == (1, 64, 64) and kept.all()


def test_person_shifted_or_scaled_in_the_crop_aligns_the_same() -> None:
    base = body_mask((150, 80), 10, 128, 40.0)
    shifted = np.zeros((170, 110), np.uint8)
    shifted[13:163, 25:105] = base  # the same pixels 13 rows down and 25 columns right in a bigger crop
    sil_a, dep_a, _ = align_frames([base], [body_depth(base)])
    sil_b, dep_b, _ = align_frames([shifted], [body_depth(shifted)])
    np.testing.assert_array_equal(sil_a, sil_b)
    np.testing.assert_array_equal(dep_a, dep_b)

    bigger = body_mask((260, 160), 30, 210, 77.3)  # scaled by 1.64 and moved, drawn afresh
    sil_c, dep_c, _ = align_frames([bigger], [body_depth(bigger)])
    a, c = sil_a[0] > 0, sil_c[0] > 0
    assert (a & c).sum() / (a | c).sum() > 0.9
    both = a & c
    assert np.abs(dep_a[0][both].astype(int) - dep_c[0][both]).mean() < 12


@pytest.mark.parametrize("interpolation", ["area", "linear"])
def test_depth_stays_on_the_same_body_points(interpolation: str) -> None:
    """Depth = f(body point); after alignment it must equal f at the aligned silhouette's body points."""
    settings = AlignSettings(depth_percentiles=(0.0, 100.0), interpolation=interpolation)
    for shape, top, height, cx in [((150, 80), 10, 128, 40.0), ((220, 130), 25, 180, 61.7), ((90, 50), 3, 80, 22.0)]:
        mask = body_mask(shape, top, height, cx, phase=0.5)
        sil, depth, kept = align_frames([mask], [body_depth(mask)], settings=settings)
        assert kept.all()
        err = alignment_error(sil[0], depth[0], *pattern_range(mask))
        assert err < 5.0, f"{shape}: depth drifted off the body points by {err:.1f} grey levels"


@pytest.mark.parametrize("shift", [(3, 0), (-3, 0), (0, 2), (0, -2), (0, 1)])
def test_shifting_one_modality_fails_the_alignment_check(shift: tuple[int, int]) -> None:
    mask = body_mask((150, 80), 10, 128, 40.0, phase=0.5)
    depth = body_depth(mask)
    sil, good, _ = align_frames([mask], [depth], settings=EXACT)
    _, bad, _ = align_frames([mask], [np.roll(depth, shift, axis=(0, 1))], settings=EXACT)
    lo_hi = pattern_range(mask)
    assert alignment_error(sil[0], good[0], *lo_hi) < 2.0
    assert alignment_error(sil[0], bad[0], *lo_hi) > 9.0, f"a {shift} shift of depth alone went unnoticed"


def test_near_is_bright() -> None:
    mask = body_mask((150, 80), 10, 128, 40.0)
    distance = np.where(np.arange(80) < 40, 2.0, 5.0)[None, :].repeat(150, axis=0)  # left half 2 m, right half 5 m
    inverse = 1.0 / distance  # what Depth Anything gives: large = near
    for raw, near_is_large in [(distance, False), (inverse, True)]:
        sil, depth, _ = align_frames([mask], [raw], near_is_large=near_is_large)
        body = sil[0] > 0
        left = depth[0][:, :32][body[:, :32]]
        right = depth[0][:, 32:][body[:, 32:]]
        assert left.mean() > 200 and right.mean() < 60, (near_is_large, left.mean(), right.mean())


def test_normalise_depth_is_robust_to_outliers() -> None:
    mask = np.zeros((20, 20), np.uint8)
    mask[2:18, 2:18] = 255
    depth = np.tile(np.linspace(0, 1, 20, dtype=np.float32), (20, 1))
    depth[5, 5] = 1000.0  # one wild pixel
    out = normalise_depth(depth, mask, True, (2.0, 98.0))
    assert out[mask == 0].max() == 0
    assert out[10, 17] > 240 and out[10, 2] < 15  # the body still spans the range despite the outlier
    assert out[5, 5] == 255.0
    plain = normalise_depth(depth, mask, True, (0.0, 100.0))
    assert plain[10, 17] < 5  # min/max would squash the whole body into the darkest levels


def test_nearly_empty_frames_are_dropped() -> None:
    good = body_mask((150, 80), 10, 128, 40.0)
    speck = np.zeros((150, 80), np.uint8)
    speck[60:65, 30:36] = 255  # 30 px
    flat = np.zeros((150, 80), np.uint8)
    flat[70:73, 5:75] = 255  # 210 px but 3 rows tall: a line, not a person
    masks = [good, np.zeros_like(good), speck, good, flat]
    sil, depth, kept = align_frames(masks, [body_depth(good)] * 5)
    assert kept.tolist() == [True, False, False, True, False]
    assert len(sil) == len(depth) == 2


def test_mismatched_inputs_are_clear_errors() -> None:
    with pytest.raises(ValueError, match="2 masks but 1 depth"):
        align_frames([np.zeros((4, 4), np.uint8)] * 2, [np.zeros((4, 4))])
    with pytest.raises(ValueError, match="frame 0"):
        align_frames([np.zeros((4, 4), np.uint8)], [np.zeros((5, 4))])
    with pytest.raises(ValueError, match="interpolation"):
        AlignSettings(interpolation="cubic")


# ---- the runner ------------------------------------------------------------------------------------------
def test_runner_writes_aligned_file_that_round_trips(tmp_path: Path) -> None:
    a, b, short = (
        SequenceId("001", "nm-01", "090"),
        SequenceId("002", "bg-01", "000"),
        SequenceId("003", "cl-01", "180"),
    )
    make_cache(tmp_path, a, n_frames=8, empty=(2,))
    make_cache(tmp_path, b, n_frames=6)
    make_cache(tmp_path, short, n_frames=6, empty=(0, 1, 4))  # 3 valid frames < 5
    report = run_align(tmp_path, quiet=True)
    out = tmp_path / "aligned.h5"
    assert not report.skipped and out.is_file()
    assert [s.key for s in report.by_status("ok")] == [a.key, b.key]
    assert [(s.key, s.kept) for s in report.by_status("too_short")] == [(short.key, 3)]
    assert report.frames_kept == 7 + 6 and report.frames_dropped == 1 + 3
    with AlignedReader(out) as reader:
        assert reader.ids() == [a, b]  # the short sequence is reported, not kept
        seq = reader.load(a)
        assert seq.frames.tolist() == [2, 3, 5, 6, 7, 8, 9]  # source indices of the kept frames
        assert seq.sil.shape == seq.depth.shape == (7, 64, 64)
        assert reader.settings["fingerprint"] == report.fingerprint
        assert reader.settings["align"]["min_frames"] == 5
    # the file holds exactly what align_frames gives on the cache's own canvas crops
    from pipeline.formats.video_cache import read_video_cache
    from pipeline.geometry import unpack_canvas

    cache = read_video_cache(tmp_path / "videos/001/nm-01/090.h5")
    sil, depth, kept = align_frames(
        [unpack_canvas(m, s) for m, s in zip(cache.mask, cache.crop_size, strict=True)],
        [unpack_canvas(d, s) for d, s in zip(cache.depth, cache.crop_size, strict=True)],
    )
    np.testing.assert_array_equal(sil, seq.sil)
    np.testing.assert_array_equal(depth, seq.depth)
    # and the stored depth still sits on the stored silhouette's body points (through pack, fp16, unpack)
    for i in range(len(seq.sil)):
        frame = int(np.flatnonzero(kept)[i])
        canvas_mask = unpack_canvas(cache.mask[frame], cache.crop_size[frame])
        lo, hi = np.percentile(body_depth(canvas_mask)[canvas_mask > 0], (2, 98))
        assert alignment_error(seq.sil[i], seq.depth[i], lo, hi) < 12.0
    saved = AlignReport.from_json(report_path(out).read_text())
    assert saved.fingerprint == report.fingerprint and len(saved.sequences) == 3


def test_rerun_skips_and_overwrite_redoes(tmp_path: Path) -> None:
    make_cache(tmp_path, SequenceId("001", "nm-01", "090"), n_frames=6)
    out = tmp_path / "aligned.h5"
    first = run_align(tmp_path, quiet=True)
    os.utime(out, ns=(1, 1))  # a marker: any rewrite changes it
    again = run_align(tmp_path, quiet=True)
    assert again.skipped and again.fingerprint == first.fingerprint and out.stat().st_mtime_ns == 1
    assert len(again.by_status("ok")) == 1  # the summary of the skipped run comes from the report
    redo = run_align(tmp_path, overwrite=True, quiet=True)
    assert not redo.skipped and out.stat().st_mtime_ns != 1
    os.utime(out, ns=(1, 1))
    changed = run_align(tmp_path, settings=AlignSettings(min_frames=3), quiet=True)  # other settings: redone
    assert not changed.skipped and changed.fingerprint != first.fingerprint
    os.utime(out, ns=(1, 1))
    make_cache(tmp_path, SequenceId("002", "nm-01", "090"), n_frames=6)  # a new input: redone
    grown = run_align(tmp_path, settings=AlignSettings(min_frames=3), quiet=True)
    assert not grown.skipped and len(grown.by_status("ok")) == 2


def test_bad_cache_is_reported_and_the_rest_written(tmp_path: Path) -> None:
    make_cache(tmp_path, SequenceId("001", "nm-01", "090"), n_frames=6)
    bad = tmp_path / "videos/002/nm-01/090.h5"
    bad.parent.mkdir(parents=True)
    bad.write_bytes(b"not an hdf5 file")
    report = run_align(tmp_path, quiet=True)
    failed = report.by_status("failed")
    assert len(failed) == 1 and str(bad) in failed[0].error
    with AlignedReader(tmp_path / "aligned.h5") as reader:
        assert [s.key for s in reader.ids()] == ["001/nm-01/090"]


def test_no_caches_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no per-video caches"):
        run_align(tmp_path, quiet=True)


def test_workers_give_the_same_file(tmp_path: Path) -> None:
    for i in range(3):
        make_cache(tmp_path, SequenceId(f"00{i}", "nm-01", "090"), n_frames=5)
    run_align(tmp_path, out=tmp_path / "one.h5", quiet=True)
    run_align(tmp_path, out=tmp_path / "two.h5", workers=2, quiet=True)
    with AlignedReader(tmp_path / "one.h5") as one, AlignedReader(tmp_path / "two.h5") as two:
        assert one.ids() == two.ids() and len(one.ids()) == 3
        for seq in one.ids():
            np.testing.assert_array_equal(one.load(seq).depth, two.load(seq).depth)


def test_a_run_killed_midway_leaves_no_file_and_the_rerun_completes(tmp_path: Path, monkeypatch) -> None:
    import pipeline.align.batch as runner

    for i in range(3):
        make_cache(tmp_path, SequenceId(f"00{i}", "nm-01", "090"), n_frames=5)
    real, calls = runner.align_cache, []

    def dying(path, settings, *args):
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt  # the user pressed Ctrl-C on the second sequence
        return real(path, settings, *args)

    monkeypatch.setattr(runner, "align_cache", dying)
    with pytest.raises(KeyboardInterrupt):
        run_align(tmp_path, quiet=True)
    assert not (tmp_path / "aligned.h5").exists() and not list(tmp_path.glob(".tmp-*"))
    monkeypatch.setattr(runner, "align_cache", real)
    assert len(run_align(tmp_path, quiet=True).by_status("ok")) == 3


def test_aligned_sequences_keep_source_box_absolute_video_and_track(tmp_path: Path, monkeypatch) -> None:
    """The box of every kept frame, the video as an absolute path, track 0 for a one-person cache."""
    from dataclasses import replace

    from pipeline.formats.video_cache import read_video_cache

    seq_id = SequenceId("001", "nm-01", "090")
    work = tmp_path / "work"
    (work / "clips").mkdir(parents=True)
    (work / "clips" / "a walk.avi").write_bytes(b"")
    path = make_cache(work / "cache", seq_id, n_frames=7, empty=(1, 4), video="clips/a walk.avi")
    cache = read_video_cache(path)
    boxes = np.stack([[10 + t, 20, 80 + t, 200 + t] for t in range(7)]).astype(np.float32)
    write_video_cache(path, replace(cache, box=boxes))

    monkeypatch.chdir(tmp_path)  # not where extract ran: the folder holding the cache folder is
    report = run_align(work / "cache", quiet=True)
    assert [s.kept for s in report.sequences] == [5]
    with AlignedReader(work / "cache" / "aligned.h5") as reader:
        seq = reader.load(seq_id)
    np.testing.assert_array_equal(seq.box, boxes[[0, 2, 3, 5, 6]])
    assert seq.video == str((work / "clips" / "a walk.avi").resolve()) and seq.track == 0

    monkeypatch.chdir(work)  # where extract ran
    aligned, _ = align_video_cache(read_video_cache(Path("cache/videos/001/nm-01/090.h5")))
    assert Path(aligned.video).is_absolute() and Path(aligned.video) == (work / "clips" / "a walk.avi").resolve()
    # the old call, without boxes, still works and stores none
    c = read_video_cache(path)
    plain, kept = align_canvas(seq_id, c.mask, c.depth, c.crop_size, c.frames, True)
    assert plain.box is None and plain.video is None and kept.sum() == 5
