"""Dataset, clips, collate and augmentation over a small synthetic aligned file."""
from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from depthgait_model.augment import ClipAugment
from depthgait_model.data import GaitDataset, clip_indices, collate
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
    ds = GaitDataset(toy_file, SYNTH, "train", frames=30, quiet=True)
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


def test_augmentation_moves_both_modalities_identically():
    gen = torch.Generator().manual_seed(0)
    base = torch.from_numpy(toy_sequence(3, "nm-01", "000", 6, seed=1).sil[:, :, 10:54].copy())  # [T, 64, 44]
    clip = torch.stack([base, base], dim=1)  # depth equal to sil: [T, 2, 64, 44]
    always = ClipAugment(p=1.0)
    changed = 0
    for _ in range(10):
        out = always(clip, gen)
        assert out.shape == clip.shape and out.dtype == torch.uint8
        assert torch.equal(out[:, 0], out[:, 1])  # same transform, same parameters
        changed += int(not torch.equal(out, clip))
    assert changed == 10
    assert torch.equal(ClipAugment(p=0.0)(clip, gen), clip)
    # different content per channel: each channel gets exactly what it would get alone
    other = torch.flip(base, dims=[1]) // 2 + 7
    for seed in range(5):
        pair = always(torch.stack([base, other], dim=1), torch.Generator().manual_seed(seed))
        alone_a = always(torch.stack([base, base], dim=1), torch.Generator().manual_seed(seed))
        alone_b = always(torch.stack([other, other], dim=1), torch.Generator().manual_seed(seed))
        assert torch.equal(pair[:, 0], alone_a[:, 0]) and torch.equal(pair[:, 1], alone_b[:, 0])


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
