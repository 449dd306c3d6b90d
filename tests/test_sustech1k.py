"""SUSTech1K import on a small fake tree in the release's layouts (raw folders and pkl files)."""
from __future__ import annotations

import pickle
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from tiny_models import save_tiny_depth_anything

from cli.prep import main as prep_main
from pipeline.align.frames import AlignSettings, align_frames
from pipeline.formats.aligned import AlignedReader
from pipeline.interop.sustech1k import import_sustech1k, read_raw
from pipeline.manifest import SequenceId

H, W = 128, 96  # crops the size of the cache canvas: packing is the identity, so expectations are exact


def _person(rng: np.random.Generator, k: int) -> np.ndarray:
    """A walking-ish blob: head, torso and two legs whose spread changes with the frame."""
    yy, xx = np.mgrid[:H, :W]
    cx = 48 + rng.integers(-4, 5)
    spread = 6 + 5 * np.sin(k / 2)
    body = ((yy - 18) / 10) ** 2 + ((xx - cx) / 8) ** 2 <= 1
    body |= ((yy - 55) / 28) ** 2 + ((xx - cx) / 14) ** 2 <= 1
    for side in (-1, 1):
        body |= ((yy - 98) / 26) ** 2 + ((xx - cx - side * spread) / 6) ** 2 <= 1
    return body.astype(np.uint8) * 255


def _write_raw_sequence(folder: Path, rng: np.random.Generator, t: int = 6, drop_sil: int | None = None) -> list:
    """RGB_raw/<stamp>.jpg + Sils_raw/<stamp>.png; the red channel carries a per-frame pattern."""
    (folder / "RGB_raw").mkdir(parents=True)
    (folder / "Sils_raw").mkdir(parents=True)
    (folder / "PCDs").mkdir()  # other modalities are present in the release and ignored
    frames = []
    for k in range(t):
        stamp = f"{1660000000000000000 + 33_000_000 * k}"
        sil = _person(rng, k)
        rgb = np.zeros((H, W, 3), np.uint8)
        rgb[..., 0] = rng.integers(30, 220, size=(H, W))
        rgb[..., 1] = 90
        cv2.imwrite(str(folder / "RGB_raw" / f"{stamp}.png"), rgb[..., ::-1])  # lossless, BGR on disk
        if k != drop_sil:
            cv2.imwrite(str(folder / "Sils_raw" / f"{stamp}.png"), sil)
            frames.append((k, rgb, sil))
    return frames


class RedChannelDepth:
    """A stand-in estimator whose 'depth' is the crop's red channel, packed as DepthEstimator packs it."""

    name = "red-channel"
    near_is_large = True

    def estimate(self, crops: list[np.ndarray]) -> np.ndarray:
        out = np.zeros((len(crops), H, W), np.float32)
        for i, crop in enumerate(crops):
            assert crop.shape == (H, W, 3)
            out[i] = crop[..., 0]
        return out




@pytest.fixture()
def tree(tmp_path: Path) -> tuple[Path, dict]:
    rng = np.random.default_rng(0)
    root = tmp_path / "SUSTech1K-Released-2023"
    expected = {
        "0000/00-nm/000": _write_raw_sequence(root / "0000" / "00-nm" / "000", rng),
        "0000/01-bg/090": _write_raw_sequence(root / "0000" / "01-bg" / "090", rng, drop_sil=3),
        "0300/00-nm/000": _write_raw_sequence(root / "0300" / "00-nm" / "000", rng),
    }
    bad = root / "0300" / "02-cl" / "000"
    _write_raw_sequence(bad, rng)
    next((bad / "RGB_raw").iterdir()).write_bytes(b"not an image")
    short = root / "0300" / "03-cr" / "000"
    _write_raw_sequence(short, rng, t=3)
    (root / "Meta" / "a" / "b").mkdir(parents=True)  # release extras are not sequences
    return root, expected


def test_raw_layout_imports_with_pixel_aligned_depth(tmp_path: Path, tree) -> None:
    root, expected = tree
    out = tmp_path / "aligned.h5"
    settings = AlignSettings(min_pixels=50)
    result = import_sustech1k(root, out, estimator=RedChannelDepth(), settings=settings, quiet=True)
    assert result.imported == 3 and result.with_depth == 3
    failed = {f.item: f.error for f in result.failed}
    assert "not a readable image" in failed[str(root / "0300/02-cl/000")]
    assert "only 3 usable frames (< 5)" in failed[str(root / "0300/03-cr/000")]
    assert len(failed) == 2
    with AlignedReader(out) as reader:
        assert [s.key for s in reader.ids()] == sorted(expected)
        assert reader.settings["manifest"] == "sustech1k" and reader.settings["depth_model"] == "red-channel"
        for key, frames in expected.items():
            seq = reader.load(SequenceId.from_key(key))
            sils = [f[2] for f in frames]
            reds = [f[1][..., 0].astype(np.float32) for f in frames]
            want_sil, want_depth, kept = align_frames(sils, reds, True, settings)
            assert np.array_equal(seq.sil, want_sil) and np.array_equal(seq.depth, want_depth)
            assert np.array_equal(seq.frames, np.asarray([f[0] for f in frames])[kept])
            assert ((seq.depth > 0) == (seq.sil > 0)).all()
    assert np.array_equal(reader_frames(out, "0000/01-bg/090"), [0, 1, 2, 4, 5])  # the dropped sil's frame


def reader_frames(path: Path, key: str) -> np.ndarray:
    with AlignedReader(path) as reader:
        return reader.load(SequenceId.from_key(key)).frames


def test_pkl_layout_unsquashes_with_ratios(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    folder = tmp_path / "pkl" / "0001" / "00-nm" / "090"
    folder.mkdir(parents=True)
    t = 6
    sils = np.stack([cv2.resize(_person(rng, k), (64, 64), interpolation=cv2.INTER_AREA) for k in range(t)])
    rgb = rng.integers(0, 255, size=(t, 64, 64, 3), dtype=np.uint8)
    ratios = np.tile([[300, 150]], (t, 1))
    for name, value in [("04-090-Camera-Ratios-HW", ratios), ("05-090-Camera-RGB_raw", rgb), ("07-090-Camera-Sils_raw", sils)]:
        with open(folder / f"{name}.pkl", "wb") as handle:
            pickle.dump(value, handle)
    with open(folder / "13-sync-090-Camera-RGB_raw.pkl", "wb") as handle:  # 10 Hz copies are ignored
        pickle.dump(rgb[:2], handle)
    seen = []

    class Recorder(RedChannelDepth):
        def estimate(self, crops):
            seen.extend(c.shape for c in crops)
            return np.ones((len(crops), H, W), np.float32)

    result = import_sustech1k(tmp_path / "pkl", tmp_path / "p.h5", estimator=Recorder(), quiet=True)
    assert result.imported == 1 and not result.failed
    assert seen == [(128, 64, 3)] * t  # 300x150 crops: height 128, width 64
    with AlignedReader(tmp_path / "p.h5") as reader:
        seq = reader.load(SequenceId("0001", "00-nm", "090"))
        assert len(seq.frames) == t and seq.depth is not None


def test_read_raw_pairs_by_stem(tmp_path: Path) -> None:
    rng = np.random.default_rng(2)
    _write_raw_sequence(tmp_path / "s", rng, t=4, drop_sil=0)
    crops = read_raw(tmp_path / "s")
    assert list(crops.frames) == [1, 2, 3] and len(crops.rgb) == len(crops.sil) == 3


def test_cli_with_a_tiny_real_depth_model(tmp_path: Path, tree) -> None:
    root, expected = tree
    model = save_tiny_depth_anything(tmp_path / "tiny-depth")
    out = tmp_path / "s.h5"
    res = CliRunner().invoke(
        prep_main, ["import", "--format", "sustech1k", str(root), "--out", str(out), "--depth", str(model), "--device", "cpu", "--depth-input-height", "112", "-q"]
    )
    assert res.exit_code == 1, res.output  # two broken sequences are listed, the rest written
    assert "imported 3 sequences (3 with depth)" in res.output
    assert "2 sequences skipped" in res.output and "02-cl" in res.output
    assert "split (sustech1k): 1 train / 1 test subjects" in res.output
    with AlignedReader(out) as reader:
        assert len(reader) == 3
        for seq in reader:
            assert ((seq.depth > 0) == (seq.sil > 0)).all()
            assert len(np.unique(seq.depth[seq.sil > 0])) > 10  # a real, varying model output
    res = CliRunner().invoke(prep_main, ["import", "--format", "sustech1k", str(root), "--out", str(tmp_path / "x.h5"), "--depth", str(tmp_path / "nope"), "-q"])
    assert res.exit_code == 1 and "nope" in res.output and "Traceback" not in res.output
