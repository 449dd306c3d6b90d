"""``depthgait-prep extract``: every stage through the real code path, on synthetic videos with truth.

Models are tiny and random (a Depth Anything built from a config and saved to a folder, YOLO from
its yaml, a small SAM from segment-anything's own classes); the accuracy checks use the classical
``bgsub`` backend against the synthetic generator's truth masks and boxes.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner

from pipeline.errors import read_failures
from pipeline.extract.batch import run_extract
from pipeline.extract.bgsub import BackgroundModel
from pipeline.extract.detect import select_track
from pipeline.extract.job import video_settings
from pipeline.extract.models import Models
from pipeline.extract.settings import ExtractSettings
from pipeline.extract.video import VideoError, VideoReader
from pipeline.formats.video_cache import (
    ExtractCacheError,
    VideoCache,
    list_caches,
    read_video_cache,
    write_video_cache,
)
from pipeline.geometry import CANVAS, box_iou, crop_boxes, fit_size, pack_canvas, pack_mask, unpack_canvas

SIZE = (160, 120)  # (W, H)
FRAMES = 30


# ---- synthetic data --------------------------------------------------------------------------------
def _write_video(path: Path, frames: np.ndarray, color: bool = True) -> Path:
    """Lossless FFV1, so decoded frames equal the written ones."""
    h, w = frames.shape[1:3]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"FFV1"), 25, (w, h), isColor=color)
    assert writer.isOpened()
    for f in frames:
        writer.write(f)
    writer.release()
    return path


def _walker(n: int, size: tuple[int, int] = SIZE, seed: int = 0, person: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """A textured static background and a shaded ellipse walking left to right: (BGR [n,H,W,3], mask [n,H,W])."""
    w, h = size
    rng = np.random.default_rng(seed)
    bg = cv2.GaussianBlur(rng.integers(0, 255, (h, w, 3), dtype=np.uint8), (0, 0), 3)
    bg = cv2.normalize(bg, None, 60, 180, cv2.NORM_MINMAX)
    frames = np.repeat(bg[None], n, axis=0)
    masks = np.zeros((n, h, w), bool)
    if person:
        for t in range(n):
            m = np.zeros((h, w), np.uint8)
            cv2.ellipse(m, (int(w * 0.2 + t * w * 0.6 / max(n - 1, 1)), h // 2), (w // 16, h // 3), 0, 0, 360, 255, -1)
            masks[t] = m > 0
            frames[t][masks[t]] = (30, 60, 230)
    return frames, masks


def _own_dataset(out: Path) -> None:
    """Stand-in for ``pipeline.synthetic`` with its file layout (video + truth/<name>.h5)."""
    (out / "truth").mkdir(parents=True)
    for i, view in enumerate(("000", "090")):
        frames, masks = _walker(FRAMES, seed=i)
        name = f"001-nm-01-{view}"
        _write_video(out / f"{name}.avi", frames)
        cols, rows = masks.any(axis=1), masks.any(axis=2)  # [n, W], [n, H]
        boxes = [[c.argmax(), r.argmax(), len(c) - c[::-1].argmax(), len(r) - r[::-1].argmax()] for c, r in zip(cols, rows, strict=True)]
        with h5py.File(out / "truth" / f"{name}.h5", "w") as h5:
            h5["box"] = np.asarray(boxes, np.float32)
            h5["mask"] = masks


@pytest.fixture(scope="module")
def videos(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Two sequences with truth: the generator's when it is there (a frontal 000 view with its
    background image, and a lateral 090 view), else the stand-in."""
    out = tmp_path_factory.mktemp("videos")
    try:
        from pipeline.synthetic.dataset import generate_dataset
        from pipeline.synthetic.render import background
    except ImportError:
        _own_dataset(out)
        return out
    generate_dataset(out, subjects=1, views=["000", "090"], conditions=["nm-01"], frames=FRAMES, size=SIZE, quiet=True)
    # Frontal views need the empty scene, as CASIA-B ships it (001-bkgrd-000.avi).
    cv2.imwrite(str(out / "001-bkgrd-000.png"), background("000", SIZE, 0)[..., ::-1])
    return out


@pytest.fixture(scope="module")
def depth_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Depth Anything saved like a Hub checkpoint, loaded through from_pretrained."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    out = tmp_path_factory.mktemp("tiny-depth")
    backbone = Dinov2Config(
        hidden_size=32, num_hidden_layers=4, num_attention_heads=2, intermediate_size=64, patch_size=14, image_size=56,
        out_features=["stage1", "stage2", "stage3", "stage4"], reshape_hidden_states=False,
    )
    cfg = DepthAnythingConfig(
        backbone_config=backbone, neck_hidden_sizes=[8, 16, 32, 32], fusion_hidden_size=16, head_hidden_size=8,
        reassemble_hidden_size=32, patch_size=14,
    )
    torch.manual_seed(0)
    model = DepthAnythingForDepthEstimation(cfg)
    with torch.no_grad():  # outputs in the real model's range (relative depth ~1-20), not ~1e-8 (float16 zero)
        model.head.conv3.weight.mul_(1e3)
        model.head.conv3.bias.fill_(2.0)
    model.save_pretrained(out)
    DPTImageProcessor(size={"height": 56, "width": 56}, keep_aspect_ratio=True, ensure_multiple_of=14).save_pretrained(out)
    return out


@pytest.fixture(scope="module")
def settings(depth_dir: Path) -> ExtractSettings:
    return ExtractSettings(depth=str(depth_dir), depth_input_height=56, batch_size=8, threads=1)


@pytest.fixture(scope="module")
def extracted(videos: Path, settings: ExtractSettings, tmp_path_factory: pytest.TempPathFactory) -> Path:
    cache = tmp_path_factory.mktemp("cache")
    summary = run_extract(videos, cache, settings, quiet=True)
    assert (summary.done, summary.failed, summary.warnings) == (2, 0, 0), summary.rows
    return cache


def _truth(videos: Path, cache: VideoCache) -> tuple[np.ndarray, np.ndarray]:
    with h5py.File(videos / "truth" / f"{cache.subject}-{cache.condition}-{cache.view}.h5") as h5:
        return h5["box"][()], h5["mask"][()]


# ---- accuracy, round trip, resume --------------------------------------------------------------------
def test_bgsub_silhouettes_and_boxes_match_the_truth(videos: Path, extracted: Path) -> None:
    caches = [read_video_cache(p) for p in list_caches(extracted)]
    assert sorted(c.id.key for c in caches) == ["001/nm-01/000", "001/nm-01/090"]
    for cache in caches:
        boxes, masks = _truth(videos, cache)
        assert len(cache) == FRAMES and cache.n_frames == FRAMES
        np.testing.assert_array_equal(cache.frames, np.arange(FRAMES))
        err = np.abs(cache.box - boxes[cache.frames])
        assert err.mean() <= 1.0 and err.max() <= 3, (cache.view, err.max())
        ious = []
        for i, f in enumerate(cache.frames):
            x0, y0, x1, y1 = cache.crop_box[i]
            truth, size = pack_mask(masks[f][y0:y1, x0:x1])
            assert tuple(cache.crop_size[i]) == size
            pred, gt = cache.mask[i] > 0, truth > 0
            ious.append((pred & gt).sum() / (pred | gt).sum())
        assert np.mean(ious) >= 0.9, (cache.view, np.mean(ious))
        # Depth fills exactly the valid crop region of the canvas, the mask never leaves it.
        for i, (ch, cw) in enumerate(cache.crop_size):
            assert np.all(np.isfinite(cache.depth[i, :ch, :cw])) and np.any(cache.depth[i, :ch, :cw] != 0)
            assert not cache.depth[i, ch:].any() and not cache.depth[i, :, cw:].any() and not cache.mask[i, ch:].any()
        assert cache.depth_near_is_large and cache.settings["detector"] == "bgsub"


def test_cache_round_trip_and_bad_files(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    t = 3
    cache = VideoCache(
        video="v.avi", subject="007", condition="bg-02", view="126", fps=25.0, width=320, height=240, n_frames=9,
        fingerprint="abc", settings={"detector": "bgsub"}, depth_near_is_large=True, frames=[1, 4, 8],
        box=rng.uniform(0, 100, (t, 4)), score=rng.uniform(size=t), crop_box=rng.integers(0, 99, (t, 4)),
        crop_size=[[128, 40], [128, 41], [120, 96]], mask=rng.choice([0, 255], (t, *CANVAS)).astype(np.uint8),
        depth=rng.normal(size=(t, *CANVAS)).astype(np.float16),
    )
    path = write_video_cache(tmp_path / "c.h5", cache)
    back = read_video_cache(path)
    for name in ("frames", "box", "score", "crop_box", "crop_size", "mask", "depth"):
        np.testing.assert_array_equal(getattr(back, name), getattr(cache, name))
        assert getattr(back, name).dtype == getattr(cache, name).dtype
    assert (back.id.key, back.settings, back.n_frames, back.fingerprint) == ("007/bg-02/126", cache.settings, 9, "abc")
    with h5py.File(path, "a") as h5:
        h5.attrs["version"] = 99
    with pytest.raises(ExtractCacheError, match=r"c\.h5.*version 99"):
        read_video_cache(path)
    (tmp_path / "junk.h5").write_text("not hdf5")
    with pytest.raises(ExtractCacheError, match="junk.h5"):
        read_video_cache(tmp_path / "junk.h5")
    with pytest.raises(ExtractCacheError, match="mask must be"):
        VideoCache(**{**cache.__dict__, "mask": cache.mask[:, :64]})


def test_canvas_packing_geometry() -> None:
    assert fit_size(256, 64) == (128, 32) and fit_size(60, 200) == (29, 96) and fit_size(1, 1) == (96, 96)
    img = np.zeros((240, 60), np.uint8)
    img[:120] = 255  # top half set
    packed, size = pack_canvas(img)
    assert size == (128, 32) and packed.shape == CANVAS
    assert packed[:64, :32].min() == 255 and packed[64:].max() == 0 and packed[:, 32:].max() == 0
    assert unpack_canvas(packed, size).shape == (128, 32)
    mask, _ = pack_mask(np.ones((7, 5), bool))
    assert set(np.unique(mask)) == {0, 255} and mask[:128, :91].all()


def test_rerun_does_no_work_and_overwrite_redoes(videos: Path, extracted: Path, settings: ExtractSettings) -> None:
    stamps = {p: p.stat().st_mtime_ns for p in list_caches(extracted)}
    again = run_extract(videos, extracted, settings, quiet=True)
    assert (again.skipped, again.done, again.frames) == (2, 0, 0)
    assert {p: p.stat().st_mtime_ns for p in list_caches(extracted)} == stamps
    # A setting that shapes the output changes the fingerprint; device and batch size do not.
    seq = read_video_cache(next(iter(stamps))).id
    video = next(videos.glob(f"{seq.subject}-{seq.condition}-{seq.view}.avi"))
    fp = video_settings(settings, video, seq)[1]
    assert video_settings(ExtractSettings(**{**settings.__dict__, "margin": 0.2}), video, seq)[1] != fp
    assert video_settings(ExtractSettings(**{**settings.__dict__, "batch_size": 3}), video, seq)[1] == fp
    redo = run_extract(videos, extracted, settings, quiet=True, overwrite=True)
    assert (redo.done, redo.skipped) == (2, 0)


def test_killed_run_resumes_to_the_same_result(
    videos: Path, extracted: Path, settings: ExtractSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import os

    from pipeline.formats.video_cache import CacheWriter, temp_files

    cache = tmp_path / "cache"
    real_append, calls = CacheWriter.append, []

    def dying_append(writer: CacheWriter, *args: np.ndarray) -> None:
        calls.append(writer.path)
        if len(set(calls)) == 2:
            raise KeyboardInterrupt  # the user's Ctrl-C (or a kill) in the middle of the second file
        real_append(writer, *args)

    monkeypatch.setattr(CacheWriter, "append", dying_append)
    with pytest.raises(KeyboardInterrupt):
        run_extract(videos, cache, settings, quiet=True)
    assert len(list_caches(cache)) == 1 and temp_files(cache) == []  # the interrupted file was removed
    assert not list(cache.glob("videos/*/*/*.claim"))  # and its claim released
    stray = calls[-1].parent / f".tmp-{calls[-1].stem}-dead1234.h5"  # as a hard kill would leave it
    stray.write_bytes(b"half")
    os.utime(stray, (stray.stat().st_mtime - 60,) * 2)
    monkeypatch.setattr(CacheWriter, "append", real_append)
    resumed = run_extract(videos, cache, settings, quiet=True)
    assert (resumed.skipped, resumed.done, resumed.swept) == (1, 1, 1) and not stray.exists()
    for a, b in zip(list_caches(cache), list_caches(extracted), strict=True):
        ra, rb = read_video_cache(a), read_video_cache(b)
        assert ra.fingerprint == rb.fingerprint
        for name in ("frames", "box", "crop_box", "mask", "depth"):
            np.testing.assert_array_equal(getattr(ra, name), getattr(rb, name))


def test_workers_1_and_2_write_byte_identical_caches(videos: Path, settings: ExtractSettings, tmp_path: Path) -> None:
    """Two threads per process in both runs (the setting, not --workers, fixes it): the same bytes."""
    two = ExtractSettings(**{**settings.__dict__, "threads": 2})
    for workers in (1, 2):
        summary = run_extract(videos, tmp_path / f"w{workers}", two, workers=workers, quiet=True)
        assert (summary.done, summary.failed) == (2, 0)
    pairs = list(zip(list_caches(tmp_path / "w1"), list_caches(tmp_path / "w2"), strict=True))
    assert len(pairs) == 2
    for a, b in pairs:
        with h5py.File(a) as ha, h5py.File(b) as hb:
            for name in ("frames", "box", "score", "crop_box", "crop_size", "mask", "depth"):
                assert ha[name][()].tobytes() == hb[name][()].tobytes(), name
            assert json.loads(ha.attrs["compute"])["threads"] == 2
        assert a.read_bytes() == b.read_bytes()  # the whole file, attributes and layout included


# ---- bad inputs ---------------------------------------------------------------------------------------
def test_each_bad_input_gets_a_row_and_the_rest_complete(videos: Path, settings: ExtractSettings, tmp_path: Path) -> None:
    from cli.prep import main

    src = tmp_path / "in"
    src.mkdir()
    n = 12
    good = _write_video(src / "001-nm-01-090.avi", _walker(n)[0])
    (src / "002-nm-01-090.avi").write_bytes(b"")
    data = good.read_bytes()
    (src / "003-nm-01-090.avi").write_bytes(data[: len(data) // 2])  # truncated mid-stream
    (src / "004-nm-01-090.avi").write_text("this is not a video\n")
    _write_video(src / "005-nm-01-090.avi", _walker(n, person=False)[0])  # an empty scene
    _write_video(src / "006-nm-01-090.avi", _walker(2)[0])
    _write_video(src / "007-nm-01-090.avi", _walker(n)[0][..., 0], color=False)  # grayscale
    _write_video(src / "008-nm-01-090.avi", _walker(n, size=(150, 94))[0])  # odd shape, not 4:3
    (src / "holiday.avi").write_bytes(data)  # does not fit the naming
    cache = tmp_path / "cache"
    result = CliRunner().invoke(main, [
        "extract", str(src), "--cache", str(cache), "--depth", settings.depth, "--batch-size", "8", "--threads", "1", "--quiet",
    ])
    assert result.exit_code == 1, result.output
    assert "9 videos" in result.output and "failed" in result.output and "errors.jsonl" in result.output
    rows = [f.to_row() for f in read_failures(cache)]
    by_video: dict[str, list[dict]] = {}
    for row in rows:
        assert Path(row["video"]).name in row["error"], row  # every message names its file
        by_video.setdefault(Path(row["video"]).name[:3], []).append(row)
    assert {r["stage"] for r in by_video["002"]} == {"decode"} and "empty file" in by_video["002"][0]["error"]
    assert "not a video" in by_video["004"][0]["error"]
    assert "no person" in by_video["005"][0]["error"]
    assert any(r["level"] == "warning" and "only 2 frame" in r["error"] for r in by_video["006"])
    assert any(r["level"] == "warning" and "truncated" in r["error"] for r in by_video["003"])
    assert by_video["hol"][0]["stage"] == "identify"
    assert "001" not in by_video and "007" not in by_video and "008" not in by_video
    done = {c.parent.parent.name for c in list_caches(cache)}
    assert {"001", "003", "007", "008"} <= done and not {"002", "004", "005"} & done
    gray, color = read_video_cache(cache_file(cache, "007")), read_video_cache(cache_file(cache, "001"))
    assert len(gray) == n and (gray.mask > 0).mean() > 0.5 * (color.mask > 0).mean()
    assert read_video_cache(cache_file(cache, "008")).width == 150
    json.dumps(rows)  # rows are plain JSON


def cache_file(cache: Path, subject: str) -> Path:
    return cache / "videos" / subject / "nm-01" / "090.h5"


def test_video_reader_batches_and_errors(tmp_path: Path) -> None:
    path = _write_video(tmp_path / "v.avi", _walker(7)[0])
    reader = VideoReader(path)
    assert (reader.info.width, reader.info.height, reader.info.n_frames_header) == (160, 120, 7)
    sizes = [len(f) for _, f in reader.batches(3)]
    assert sizes == [3, 3, 1] and reader.n_decoded == 7 and not reader.truncated
    idx = np.concatenate([i for i, _ in reader.batches(2, keep=np.array([1, 5, 6]))])
    np.testing.assert_array_equal(idx, [1, 5, 6])
    (tmp_path / "empty.avi").write_bytes(b"")
    with pytest.raises(VideoError, match=r"empty\.avi: empty file"):
        VideoReader(tmp_path / "empty.avi")
    with pytest.raises(VideoError, match="no such file"):
        VideoReader(tmp_path / "missing.avi")


# ---- detection ----------------------------------------------------------------------------------------
def test_track_is_the_person_present_longest_and_largest() -> None:
    walker = lambda t: np.array([10 + 5 * t, 20, 40 + 5 * t, 100, 0.9], np.float32)  # noqa: E731
    bystander = np.array([200, 50, 210, 70, 0.99], np.float32)  # small, present in every frame
    flash = np.array([0, 0, 300, 200, 1.0], np.float32)  # huge, one frame
    cands = []
    for t in range(20):
        rows = [bystander] + ([walker(t)] if t not in (7, 8) else [])  # the walker flickers
        if t == 3:
            rows.append(flash)
        cands.append(np.stack(rows))
    track = select_track(cands)
    assert track is not None and len(track.frames) == 18
    np.testing.assert_array_equal(track.boxes[:, 0], [10 + 5 * t for t in range(20) if t not in (7, 8)])
    assert select_track([np.zeros((0, 5), np.float32)] * 3) is None
    np.testing.assert_allclose(box_iou(np.array([[0, 0, 2, 2.0]]), np.array([[1, 0, 3, 2.0]])), [[1 / 3]])


def test_bgsub_on_odd_sized_arrays_and_crop_boxes() -> None:
    frames, masks = _walker(9, size=(161, 121))
    model = BackgroundModel(frames)
    fg = model.foreground(frames[4])
    assert fg.shape == (121, 161) and (fg & masks[4]).sum() / (fg | masks[4]).sum() > 0.95
    blobs = model.blobs(fg)
    ys, xs = np.nonzero(masks[4])
    np.testing.assert_array_equal(blobs[0, :4], [xs.min(), ys.min(), xs.max() + 1, ys.max() + 1])
    crops = crop_boxes(np.array([[10, 10, 30, 50], [150, 100, 161, 121]], np.float32), 0.1, 161, 121)
    np.testing.assert_array_equal(crops, [[8, 6, 32, 54], [148, 97, 161, 121]])


def test_yolo_detector_and_yolo_seg_through_the_runner(videos: Path, settings: ExtractSettings, tmp_path: Path) -> None:
    """Random YOLO weights from the yaml: the boxes mean nothing, but every step of the path runs."""
    from pipeline.depth.estimator import DepthEstimator
    from pipeline.extract.detect import YoloDetector
    from pipeline.extract.segment import YoloSegSegmenter

    det = YoloDetector("yolo11n.yaml", conf=1e-4, imgsz=160)
    seg = YoloSegSegmenter("yolo11n-seg.yaml", conf=0.0, imgsz=160, min_iou=0.0)
    src = tmp_path / "in"
    src.mkdir()
    shutil.copy(sorted(videos.glob("*-090.avi"))[0], src / "001-nm-01-090.avi")
    yolo = ExtractSettings(**{**settings.__dict__, "detector": "yolo", "detector_weights": "yolo11n.yaml",
                              "segmenter": "yolo-seg", "seg_weights": "yolo11n-seg.yaml"})
    models = Models(det, seg, DepthEstimator(settings.depth, input_height=56))
    summary = run_extract(src, tmp_path / "cache", yolo, quiet=True, models=models)
    assert summary.done == 1, summary.rows
    cache = read_video_cache(list_caches(tmp_path / "cache")[0])
    assert len(cache) > 0 and cache.settings["detector_weights"] == "yolo11n.yaml"
    assert np.all(cache.box[:, 2:] > cache.box[:, :2]) and np.all(cache.box >= -1) and np.all(cache.box[:, 2] <= 161)
    assert set(np.unique(cache.mask)) <= {0, 255}


def test_sam_batches_the_encoder_and_prompts_all_boxes_of_a_frame() -> None:
    """A small SAM (64 px, 2 blocks) from segment-anything's own classes, random weights."""
    from functools import partial

    import torch
    from segment_anything.modeling import ImageEncoderViT, MaskDecoder, PromptEncoder, Sam, TwoWayTransformer

    from pipeline.extract.segment import SamSegmenter

    torch.manual_seed(0)
    dim, size = 32, 64
    sam = Sam(
        image_encoder=ImageEncoderViT(
            img_size=size, patch_size=16, embed_dim=dim, depth=2, num_heads=2, out_chans=dim, qkv_bias=True,
            norm_layer=partial(torch.nn.LayerNorm, eps=1e-6), use_rel_pos=True, window_size=2, global_attn_indexes=(1,),
        ),
        prompt_encoder=PromptEncoder(embed_dim=dim, image_embedding_size=(4, 4), input_image_size=(size, size),
                                     mask_in_chans=4),
        mask_decoder=MaskDecoder(num_multimask_outputs=3, transformer_dim=dim, iou_head_hidden_dim=16,
                                 transformer=TwoWayTransformer(depth=1, embedding_dim=dim, mlp_dim=64, num_heads=2)),
    )
    encoder_inputs, prompts = [], []
    sam.image_encoder.register_forward_hook(lambda m, args, out: encoder_inputs.append(args[0].shape))
    real_prompt = sam.prompt_encoder.forward
    sam.prompt_encoder.forward = lambda points, boxes, masks: (prompts.append(boxes.clone()), real_prompt(points, boxes, masks))[1]
    seg = SamSegmenter(model=sam)
    frames = _walker(3)[0]
    boxes = [np.array([[0, 0, 80, 60], [80, 60, 160, 120]], np.float32), np.zeros((0, 4), np.float32),
             np.array([[40, 30, 120, 90]], np.float32)]
    out = seg(frames, boxes)
    assert [o.shape for o in out] == [(2, 120, 160), (0, 120, 160), (1, 120, 160)] and out[0].dtype == bool
    assert encoder_inputs == [torch.Size([2, 3, size, size])]  # one encoder pass over both frames with boxes
    assert [len(p) for p in prompts] == [2, 1]  # all boxes of a frame in one prompt
    np.testing.assert_allclose(prompts[0].numpy(), boxes[0] * size / 160, atol=1e-4)  # boxes in the model's frame


# ---- depth --------------------------------------------------------------------------------------------
def test_depth_runs_on_crops_batched_like_one_at_a_time(depth_dir: Path) -> None:
    from pipeline.depth.estimator import DepthEstimator

    est = DepthEstimator(str(depth_dir), input_height=56, batch_size=4)
    assert est.input_hw == (56, 28) and est.near_is_large  # multiples of the patch size 14
    rng = np.random.default_rng(0)
    crops = [rng.integers(0, 255, (h, w, 3), dtype=np.uint8) for h, w in [(90, 30), (60, 60), (33, 91), (120, 45), (50, 20)]]
    batched = est.estimate(crops)
    assert batched.shape == (5, *CANVAS) and batched.dtype == np.float32
    single = DepthEstimator(str(depth_dir), input_height=56, batch_size=1).estimate(crops)
    np.testing.assert_allclose(batched, single, rtol=1e-4, atol=1e-4)
    for d, c in zip(batched, crops, strict=True):
        ch, cw = fit_size(*c.shape[:2])
        assert np.isfinite(d[:ch, :cw]).all() and d[:ch, :cw].std() > 0 and not d[ch:].any() and not d[:, cw:].any()
    # The model sees the crop: a different crop gives a different map.
    assert not np.allclose(est.estimate([crops[0][::-1].copy()])[0], batched[0])


def test_cli_help_has_an_example() -> None:
    from cli.prep import main

    result = CliRunner().invoke(main, ["extract", "--help"])
    assert result.exit_code == 0 and "Example:" in result.output and "depthgait-prep extract videos/" in result.output


def test_shipped_depth_model_runs_at_its_own_input_size() -> None:
    """A small crop-trained model keeps the geometry it was trained at; an explicit height wins."""
    from pipeline.depth.estimator import DepthEstimator

    assert DepthEstimator("depthgait/synthdepth-small").input_hw == (168, 126)
    assert DepthEstimator("depthgait/synthdepth-small", input_height=84).input_hw == (84, 56)
