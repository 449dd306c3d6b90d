"""Dataset, clips, collate and augmentation over a small synthetic aligned file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from depthgait_model.augment import ClipAugment, opengait_corners, rotate_opengait, warp_perspective
from depthgait_model.data import GaitDataset, clip_indices, collate, fixed_ordered_indices
from pipeline.formats.aligned import AlignedSequence, AlignedWriter
from pipeline.manifest import SequenceId, load_manifest

SYNTH = load_manifest("synthetic")


def toy_sequence(subject: int, condition: str, view: str, length: int, seed: int) -> AlignedSequence:
    """A walking figure whose torso width, stride period, leg swing and depth ramp depend on the subject.

    Nuisances make it a real (if small) recognition task: a random shift per sequence, a wider
    figure at view 090 and a bag at condition nm-05, so a random network does not already separate
    the subjects. Frame index t is stamped into row 0 so tests can read back which frames a clip holds.
    """
    rng = np.random.default_rng(seed)
    t = np.arange(length)[:, None, None]  # [T, 1, 1]
    yy, xx = np.mgrid[0:64, 0:64][:, None]  # [1, 64, 64] each
    dx, dy = int(rng.integers(-6, 7)), int(rng.integers(-4, 5))  # placement nuisance
    width = (6 + 2 * (subject % 5)) * (1.5 if view == "090" else 1.0)  # torso half-width: identity + view
    phase = 2 * np.pi * t / (8 + 3 * (subject % 3)) + rng.uniform(0, 2 * np.pi)
    torso = (((xx - 32 - dx) / width) ** 2 + ((yy - 24 - dy) / 14) ** 2) < 1  # [1, 64, 64]
    swing = (4 + subject % 4) * np.sin(phase)  # [T, 1, 1] leg offset
    legs = (yy >= 36 + dy) & (yy < 60 + dy) & ((np.abs(xx - 32 - dx - swing) < 3) | (np.abs(xx - 32 - dx + swing) < 3))
    bag = (condition == "nm-05") & (np.abs(xx - 36 - dx - width) < 5) & (np.abs(yy - 30 - dy) < 6)
    sil = (torso | legs | bag).astype(np.uint8) * 255  # [T, 64, 64]
    ramp = ((xx * (1 + subject % 3) + yy * 2) % 200 + 40).astype(np.uint8)  # [1, 64, 64], below 255
    depth = np.where(sil > 0, ramp, 0).astype(np.uint8)
    sil[:, 0, :] = 0
    sil[:, 0, 12] = (np.arange(length) % 256).astype(np.uint8)  # frame stamp, inside the 64x44 cut
    return AlignedSequence(SequenceId(f"{subject:03d}", condition, view), sil, depth, np.arange(length, dtype=np.int32))


def write_toy_aligned(path: Path, subjects: int = 8, conditions=("nm-01", "nm-02", "nm-05"),
                      views=("000", "090"), lengths=(18, 40)) -> Path:
    """A small aligned file through the real writer; lengths cycle so some are shorter than a clip."""
    n = 0
    with AlignedWriter(path, settings={"toy": True}) as writer:
        for s in range(1, subjects + 1):
            for c in conditions:
                for v in views:
                    writer.add(toy_sequence(s, c, v, lengths[n % len(lengths)], seed=n))
                    n += 1
    return path


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory) -> Path:
    return write_toy_aligned(tmp_path_factory.mktemp("data") / "aligned.h5")


def stamps(frames: torch.Tensor) -> np.ndarray:
    """Frame stamps of a uint8 clip [T, 64, 44] (row 0, column 12 - 10)."""
    return frames[:, 0, 2].numpy().astype(int)


def test_split_labels_and_cut(toy_file):
    train = GaitDataset(toy_file, SYNTH, "train", frames=30, quiet=True)
    test = GaitDataset(toy_file, SYNTH, "test", frames=None, quiet=True)
    assert train.subjects == ["001", "002", "003", "004"] and test.subjects == ["005", "006", "007", "008"]
    assert len(train) == 4 * 3 * 2
    assert train.label_map == {"001": 0, "002": 1, "003": 2, "004": 3}
    assert [train.label_map[i.subject] for i in train.ids] == train.labels.tolist()
    item = test[0]
    assert item.sil.shape == (18, 64, 44) and item.depth.shape == (18, 64, 44)
    ref = toy_sequence(5, "nm-01", "000", 18, seed=4 * 6)
    assert torch.equal(item.depth, torch.from_numpy(ref.depth[:, :, 10:54]))
    assert item.id == SequenceId("005", "nm-01", "000")


def test_clips_are_ordered_contiguous_and_wrap(toy_file):
    ds = GaitDataset(toy_file, SYNTH, "train", frames=30, quiet=True, sampling="contiguous")
    long_index = next(i for i, n in enumerate(ds.lengths) if n == 40)
    short_index = next(i for i, n in enumerate(ds.lengths) if n == 18)
    starts = set()
    for seed in range(20):
        got = stamps(ds[(long_index, seed)].sil)
        assert len(got) == 30 and np.array_equal(got, np.arange(got[0], got[0] + 30))
        starts.add(got[0])
        short = stamps(ds[(short_index, seed)].sil)
        assert np.array_equal(short, (short[0] + np.arange(30)) % 18)  # wraps around, in order
    assert len(starts) > 3 and max(starts) <= 10  # random windows, all inside the sequence
    assert np.array_equal(stamps(ds[(long_index, 7)].sil), stamps(ds[(long_index, 7)].sil))  # seed decides


def test_fixed_ordered_is_opengaits_sampling(toy_file):
    """30 sorted, distinct frames from a random window of 34 consecutive ones (OpenGait's fixed_ordered)."""
    ds = GaitDataset(toy_file, SYNTH, "train", frames=30, quiet=True)  # the default: fixed_ordered, skip 4
    long_index = next(i for i, n in enumerate(ds.lengths) if n == 40)
    starts, ends, spans, gaps = set(), set(), set(), 0
    for seed in range(200):
        got = stamps(ds[(long_index, seed)].sil)
        assert len(got) == 30 and np.all(np.diff(got) > 0)  # ordered, no repeats
        assert got[-1] - got[0] <= 33 and got[0] >= 0 and got[-1] <= 39  # inside one window of 34
        starts.add(int(got[0]))
        ends.add(int(got[-1]))
        spans.add(int(got[-1] - got[0]))
        gaps += int(got[-1] - got[0] > 29)
    assert gaps > 150  # 4 of 34 frames dropped: a contiguous run of 30 only when all 4 drop at the ends
    # window starts 0..6 of the 40 frames; the first pick is one of its first 5, the last one of its last 5
    assert min(starts) == 0 and max(starts) <= 10 and min(ends) >= 29 and max(ends) == 39 and max(spans) == 33
    rng = np.random.default_rng(1)
    for length in (10, 18, 33):  # shorter than the window: the sequence repeats, as OpenGait's indices * it
        window_counts = np.zeros(length, int)
        for _ in range(50):
            idx = fixed_ordered_indices(length, 30, 4, rng)
            assert len(idx) == 30 and idx.min() >= 0 and idx.max() < length
            window_counts += np.bincount(idx, minlength=length)
        assert (window_counts > 0).all()
    starts = {int(fixed_ordered_indices(40, 30, 0, np.random.default_rng(s))[0]) for s in range(50)}
    assert starts == set(range(11))  # skip 0: a contiguous window, any start 0..10


def test_clip_indices_exact():
    rng = np.random.default_rng(0)
    assert np.array_equal(clip_indices(5, 5, rng), np.arange(5))
    assert sorted(set(clip_indices(3, 7, rng).tolist())) == [0, 1, 2]
    with pytest.raises(ValueError):
        clip_indices(0, 4, rng)


def test_collate_pads_whole_sequences(toy_file):
    ds = GaitDataset(toy_file, SYNTH, "test", frames=None, modalities=("sil",), quiet=True)
    batch = collate([ds[0], ds[1]])  # lengths 18 and 40
    assert batch.lengths.tolist() == [18, 40]
    assert batch.sil.shape == (2, 40, 64, 44) and batch.depth is None
    assert batch.sil[0, 18:].sum() == 0 and batch.sil[0, :18].sum() > 0
    inputs = batch.model_inputs("cpu")
    assert inputs["sil"].dtype == torch.float32 and float(inputs["sil"].max()) == 1.0
    assert inputs["depth"] is None and batch.labels.tolist() == [0, 0]


def test_bad_inputs_name_the_problem(toy_file, tmp_path):
    with pytest.raises(ValueError, match="no such aligned file"):
        GaitDataset(tmp_path / "missing.h5", SYNTH, quiet=True)
    with pytest.raises(ValueError, match="modalities"):
        GaitDataset(toy_file, SYNTH, modalities=("rgb",), quiet=True)
    with AlignedWriter(tmp_path / "sil_only.h5") as writer:
        for s in (1, 2):
            seq = toy_sequence(s, "nm-01", "000", 10, seed=s)
            writer.add(AlignedSequence(seq.id, seq.sil, None, seq.frames))
    with pytest.raises(ValueError, match="no depth.*001/nm-01/000"):
        GaitDataset(tmp_path / "sil_only.h5", SYNTH, quiet=True)
    assert len(GaitDataset(tmp_path / "sil_only.h5", SYNTH, modalities=("sil",), quiet=True)) == 1


@pytest.mark.parametrize("recipe", ["opengait", "light"])
def test_augmentation_moves_both_modalities_identically(recipe):
    gen = torch.Generator().manual_seed(0)
    base = torch.from_numpy(toy_sequence(3, "nm-01", "000", 6, seed=1).sil.copy())  # uncut [T, 64, 64]
    clip = torch.stack([base, base], dim=1)  # depth equal to sil: [T, 2, 64, 64]
    always = ClipAugment(p=1.0, recipe=recipe)
    cut = clip[..., 10:54]
    changed = 0
    for _ in range(10):
        out = always(clip, gen)
        assert out.shape == cut.shape and out.dtype == torch.uint8  # cut to 64x44
        assert torch.equal(out[:, 0], out[:, 1])  # same transform, same parameters
        changed += int(not torch.equal(out, cut))
    assert changed == 10
    assert torch.equal(ClipAugment(p=0.0, recipe=recipe)(clip, gen), cut)
    # different content per channel: each channel gets exactly what it would get alone
    other = torch.flip(base, dims=[1]) // 2 + 7
    for seed in range(5):
        pair = always(torch.stack([base, other], dim=1), torch.Generator().manual_seed(seed))
        alone_a = always(torch.stack([base, base], dim=1), torch.Generator().manual_seed(seed))
        alone_b = always(torch.stack([other, other], dim=1), torch.Generator().manual_seed(seed))
        assert torch.equal(pair[:, 0], alone_a[:, 0]) and torch.equal(pair[:, 1], alone_b[:, 0])


def _bar(width: int, lo: int, hi: int) -> torch.Tensor:
    """A one-frame, one-channel uint8 clip [1, 1, 64, width], white in columns lo..hi-1."""
    img = torch.zeros(1, 1, 64, width, dtype=torch.uint8)
    img[..., lo:hi] = 255
    return img


def test_opengait_perspective_strength():
    """Corners from the 10-px margins of the 64-px frame; the warp zooms by 64 / (x_right - x_left)."""
    gen = torch.Generator().manual_seed(0)
    corners = np.array([opengait_corners(64, 64, gen) for _ in range(400)])  # [400, 4, 2]: TL, TR, BR, BL
    left, right = corners[:, [0, 3], 0], corners[:, [1, 2], 0]
    assert left.min() == 0 and left.max() == 9 and right.min() == 54 and right.max() == 63
    assert set(np.unique(corners[:, :, 1])) == {0.0, 64.0}
    # Strongest zoom: corners at x 9 and 54 -> 45 px stretched to 64 (1.42x); a 20-px bar becomes ~28.4 px.
    strongest = np.float32([[9, 0], [54, 0], [54, 64], [9, 64]])
    bar = _bar(64, 22, 42)
    widths = (warp_perspective(bar, strongest)[0, 0] > 127).sum(1)  # per row
    assert np.all(np.abs(widths.numpy() - 20 * 64 / 45) <= 1)
    weakest = np.float32([[0, 0], [63, 0], [63, 64], [0, 64]])
    assert np.all(np.abs((warp_perspective(bar, weakest)[0, 0] > 127).sum(1).numpy() - 20 * 64 / 63) <= 1)
    # Before the cut: the margins (dropped by the cut) can move into the kept 44 columns.
    margins = torch.zeros(1, 1, 64, 64, dtype=torch.uint8)
    margins[..., :10] = 255
    margins[..., 54:] = 255
    kept = warp_perspective(margins, np.float32([[0, 0], [54, 0], [54, 64], [0, 64]]))[..., 10:54]
    assert (kept[0, 0, :, 0] > 0).all()  # source column 9 lands at 9 * 64 / 54 = 10.7: inside the cut
    entered = [int(ClipAugment(p=1.0, recipe="opengait")(margins, torch.Generator().manual_seed(s)).sum() > 0)
               for s in range(40)]
    never = [int(ClipAugment(p=1.0, recipe="light")(margins, torch.Generator().manual_seed(s)).sum() > 0) for s in range(40)]
    assert sum(entered) > 0 and sum(never) == 0  # the light recipe cuts first: the margins are gone


def test_opengait_rotation_centre():
    """RandomRotate turns about (h // 2, w // 2) read as (x, y): (32, 22) on a 64x44 frame."""
    dot = torch.zeros(1, 1, 64, 44, dtype=torch.uint8)
    dot[0, 0, 22, 32] = 255  # row 22, column 32: OpenGait's centre as (x=32, y=22)
    assert rotate_opengait(dot, 10.0)[0, 0, 22, 32] == 255  # a fixed point (OpenCV's fixed-point bilinear leaks a few levels)
    centre = torch.zeros(1, 1, 64, 44, dtype=torch.uint8)
    centre[0, 0, 40, 22] = 255
    moved = rotate_opengait(centre, 10.0)[0, 0]
    assert moved[40, 22] < 255 and moved.sum() > 0  # far from OpenGait's centre: the pixel moves


def test_augmented_items_are_reproducible_and_aligned(toy_file):
    ds = GaitDataset(toy_file, SYNTH, "train", frames=12, augment=ClipAugment(p=1.0), quiet=True)
    a, b = ds[(3, 99)], ds[(3, 99)]
    assert torch.equal(a.sil, b.sil) and torch.equal(a.depth, b.depth)
    assert not torch.equal(a.sil, ds[(3, 100)].sil)
    # the toy depth is <= the silhouette pixel-wise, so if both were warped by the same bilinear map
    # the depth is exactly zero wherever the warped silhouette is zero
    for seed in range(8):
        item = ds[(seed, seed)]
        assert int(item.depth[item.sil == 0].max()) == 0
        assert int(item.sil.sum()) > 0
