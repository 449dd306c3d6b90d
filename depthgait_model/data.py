"""Gait sequences from ``aligned.h5`` for training and testing, as typed batches.

The split's sequences are read once, cut from 64x64 to 64x44 (10 px per side, as OpenGait does)
and kept in memory as one uint8 array per modality plus per-sequence offsets: HDF5 is touched
only at start-up, and DataLoader workers share the arrays (a few large buffers, cheap to fork or
pickle). With augmentation the frames are kept uncut (64x64, 1.45x the memory) and cut after the
warp, as OpenGait does. Training items are fixed-length ordered clips: ``fixed_ordered`` (OpenGait's
CollateFn: ``frames`` sorted frames drawn without replacement from a random window of
``frames + frames_skip_num`` consecutive ones) or ``contiguous`` (a random contiguous window); a
sequence shorter than the window wraps around. Test items are whole sequences, padded per batch with
their lengths. Batches are ``GaitBatch`` objects with named fields, never positional tuples.
"""
from __future__ import annotations

import math
import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from depthgait_model.augment import ClipAugment
from pipeline.errors import InputError
from pipeline.formats.aligned import AlignedReader, AlignedSequence
from pipeline.geometry import CUT, FRAME_SIZE
from pipeline.manifest import Manifest, SequenceId, load_manifest
from pipeline.progress import progress

MODALITIES = ("sil", "depth")


@dataclass
class GaitItem:
    """One clip or whole sequence, uint8 frames [T, 64, 44] per modality (None when unused)."""

    sil: torch.Tensor | None  # uint8 [T, 64, 44]
    depth: torch.Tensor | None  # uint8 [T, 64, 44]
    label: int
    id: SequenceId


@dataclass
class GaitBatch:
    """A batch of sequences. Frames stay uint8 until ``model_inputs`` (4x less to copy)."""

    sil: torch.Tensor | None  # uint8 [N, T, 64, 44], zero-padded past each length
    depth: torch.Tensor | None  # uint8 [N, T, 64, 44]
    lengths: torch.Tensor  # int64 [N] valid frames per sequence
    labels: torch.Tensor  # int64 [N] class index (label map of the dataset)
    ids: list[SequenceId]

    def __len__(self) -> int:
        return len(self.ids)

    def model_inputs(self, device: torch.device | str) -> dict[str, torch.Tensor | None]:
        """Keyword arguments for ``DepthGait.forward``: float frames in [0, 1] on ``device``."""

        def to_float(frames: torch.Tensor | None) -> torch.Tensor | None:
            if frames is None:
                return None
            return frames.to(device, non_blocking=True).float().div_(255.0)  # [N, T, 64, 44]

        return {"sil": to_float(self.sil), "depth": to_float(self.depth), "lengths": self.lengths.to(device)}

    def pin_memory(self) -> GaitBatch:
        """Called by DataLoader(pin_memory=True) for custom batch types."""
        pin = lambda t: t.pin_memory() if t is not None else None  # noqa: E731
        return GaitBatch(pin(self.sil), pin(self.depth), self.lengths.pin_memory(), self.labels.pin_memory(), self.ids)


def clip_indices(length: int, frames: int, rng: np.random.Generator) -> np.ndarray:
    """Indices of an ordered clip of ``frames`` frames; short sequences wrap around."""
    if length <= 0:
        raise InputError("cannot take a clip from an empty sequence")
    if length >= frames:
        start = int(rng.integers(0, length - frames + 1))
        return np.arange(start, start + frames)
    start = int(rng.integers(0, length))
    return (start + np.arange(frames)) % length


def fixed_ordered_indices(length: int, frames: int, skip: int, rng: np.random.Generator) -> np.ndarray:
    """OpenGait's ``fixed_ordered`` sampling: ``frames`` sorted indices from a random window of ``frames + skip``.

    A sequence shorter than the window is repeated (``ceil(window / length)`` times) before the
    window is drawn, so indices wrap around, as OpenGait's CollateFn does.
    """
    if length <= 0:
        raise InputError("cannot take a clip from an empty sequence")
    window = frames + skip
    extended = length * math.ceil(window / length) if length < window else length
    start = int(rng.integers(0, extended - window + 1))
    picks = np.sort(rng.choice(window, size=frames, replace=False))  # [frames] offsets in the window
    return (start + picks) % length


class GaitDataset(Dataset):
    """The sequences of one split of a manifest, held in memory.

    ``frames`` = clip length for training (items are ``(index, seed)`` pairs from the sampler);
    ``frames=None`` returns every frame (testing). ``label_map`` maps subject -> class index
    (default: the split's sorted subjects); ``subjects`` overrides the manifest split.
    """

    def __init__(
        self,
        data_path: str | Path,
        manifest: Manifest | str,
        split: str = "train",
        frames: int | None = 30,
        modalities: Sequence[str] = MODALITIES,
        augment: ClipAugment | None = None,
        label_map: dict[str, int] | None = None,
        subjects: Sequence[str] | None = None,
        cut: int = CUT,
        quiet: bool = False,
        sampling: str = "fixed_ordered",
        frames_skip_num: int = 4,
    ) -> None:
        unknown = sorted(set(modalities) - set(MODALITIES))
        if unknown or not modalities:
            raise InputError(f"modalities must be a non-empty subset of {MODALITIES}, got {list(modalities)}")
        if split not in ("train", "test", "all"):
            raise InputError(f"split must be train, test or all, got {split!r}")
        if not 0 <= cut < FRAME_SIZE // 2:
            raise InputError(f"cut must be in [0, {FRAME_SIZE // 2}) pixels per side, got {cut}")
        if frames is not None and frames < 1:
            raise InputError(f"clip length must be >= 1 frame, got {frames}")
        if sampling not in ("fixed_ordered", "contiguous") or frames_skip_num < 0:
            raise InputError(f"sampling must be fixed_ordered or contiguous and frames_skip_num >= 0, got {sampling!r}, {frames_skip_num}")
        if augment is not None and augment.cut != cut:
            raise InputError(f"the augmentation cuts {augment.cut} px per side, the dataset {cut}")
        self.path = Path(data_path)
        self.manifest = load_manifest(manifest) if isinstance(manifest, (str, Path)) else manifest
        self.frames, self.augment, self.cut = frames, augment, cut
        self.sampling, self.frames_skip_num = sampling, frames_skip_num
        self._stored_cut = 0 if augment is not None else cut  # the augmentation cuts after its warp
        self.modalities = tuple(m for m in MODALITIES if m in modalities)
        with AlignedReader(self.path) as reader:
            self._load(reader, split, subjects, quiet)
        self.label_map = label_map if label_map is not None else {s: i for i, s in enumerate(self.subjects)}
        missing = sorted(set(self.subjects) - set(self.label_map))
        if missing:
            raise InputError(f"{self.path}: subjects {missing[:5]} are not in the label map of the model")
        self.labels = np.asarray([self.label_map[seq.subject] for seq in self.ids], dtype=np.int64)

    def _load(self, reader: AlignedReader, split: str, subjects: Sequence[str] | None, quiet: bool) -> None:
        """Read the split's sequences into one preallocated uint8 array per modality."""
        all_ids = reader.ids()
        if subjects is None:
            train, test = self.manifest.split_subjects(s.subject for s in all_ids)
            subjects = {"train": train, "test": test, "all": train + test}[split]
        wanted = set(subjects)
        ids = [seq for seq in all_ids if seq.subject in wanted]
        lengths = np.asarray([reader.length(seq) for seq in ids], dtype=np.int64)
        empty = [seq.key for seq, n in zip(ids, lengths, strict=False) if n == 0]
        if empty:
            warnings.warn(f"{self.path}: skipping {len(empty)} empty sequences, e.g. {empty[0]}", stacklevel=3)
            ids = [seq for seq, n in zip(ids, lengths, strict=False) if n > 0]
            lengths = lengths[lengths > 0]
        if not ids:
            raise InputError(
                f"{self.path}: no sequences of the {split} split of manifest {self.manifest.name!r} "
                f"({len(all_ids)} sequences in the file)"
            )
        if "depth" in self.modalities:
            no_depth = [seq.key for seq in ids if not reader.has_depth(seq)]
            if no_depth:
                raise InputError(
                    f"{self.path}: {len(no_depth)} sequences have no depth (e.g. {no_depth[0]}), "
                    "but the model config uses depth; use a silhouette-only config or re-run alignment with depth"
                )
        self.ids, self.lengths = ids, lengths
        self.offsets = np.concatenate([[0], np.cumsum(lengths)])  # [S+1]
        total = int(self.offsets[-1])
        cut = self._stored_cut
        self._frames = {m: np.empty((total, FRAME_SIZE, FRAME_SIZE - 2 * cut), dtype=np.uint8) for m in self.modalities}
        for i, seq in enumerate(progress(ids, desc="load sequences", unit="seq", disable=quiet, leave=False)):
            loaded = reader.load(seq)
            lo, hi = self.offsets[i], self.offsets[i + 1]
            for m in self.modalities:
                self._frames[m][lo:hi] = cut_frames(getattr(loaded, m), cut)  # [T, 64, 64 - 2 * cut]
        self.subjects = sorted({seq.subject for seq in ids})

    def __len__(self) -> int:
        return len(self.ids)

    def __getitem__(self, item: int | tuple[int, int]) -> GaitItem:
        """``index`` or ``(index, seed)``; the seed fixes the clip window and the augmentation."""
        index, seed = item if isinstance(item, tuple) else (item, item)
        length, offset = int(self.lengths[index]), int(self.offsets[index])
        rng = np.random.default_rng(seed)
        if not self.frames:
            picks = np.arange(length)  # [T]
        elif self.sampling == "fixed_ordered":
            picks = fixed_ordered_indices(length, self.frames, self.frames_skip_num, rng)  # [T]
        else:
            picks = clip_indices(length, self.frames, rng)  # [T]
        clip = torch.from_numpy(np.stack([self._frames[m][offset + picks] for m in self.modalities], axis=1))
        if self.augment is not None:  # clip: uint8 [T, M, 64, 64] -> [T, M, 64, 44]
            generator = torch.Generator().manual_seed(int(rng.integers(0, 2**62)))
            clip = self.augment(clip, generator)
        parts = dict.fromkeys(MODALITIES)
        for channel, m in enumerate(self.modalities):
            parts[m] = clip[:, channel].contiguous()  # [T, 64, 44]
        return GaitItem(parts["sil"], parts["depth"], int(self.labels[index]), self.ids[index])


def cut_frames(frames: np.ndarray, cut: int = CUT) -> np.ndarray:
    """Aligned frames [T, 64, 64] -> [T, 64, 64 - 2 cut]: the one cut, for training and testing alike."""
    return frames[:, :, cut : frames.shape[2] - cut]


def sequence_item(seq: AlignedSequence, cut: int = CUT, with_depth: bool = True, label: int = -1) -> GaitItem:
    """A whole aligned sequence as a ``GaitItem`` (test time: every frame, no augmentation)."""
    to_tensor = lambda frames: torch.from_numpy(np.ascontiguousarray(cut_frames(frames, cut)))  # noqa: E731
    depth = to_tensor(seq.depth) if with_depth and seq.depth is not None else None
    return GaitItem(to_tensor(seq.sil), depth, label, seq.id)


def collate(items: Sequence[GaitItem]) -> GaitBatch:
    """Stack items into a ``GaitBatch``, zero-padding to the longest sequence."""
    first = items[0]
    frame_shape = (first.sil if first.sil is not None else first.depth).shape[1:]  # (64, 44)
    lengths = torch.tensor([len(it.sil if it.sil is not None else it.depth) for it in items], dtype=torch.int64)
    longest = int(lengths.max())

    def stack(name: str) -> torch.Tensor | None:
        if getattr(first, name) is None:
            return None
        out = torch.zeros((len(items), longest, *frame_shape), dtype=torch.uint8)  # [N, T, 64, 44]
        for row, it in enumerate(items):
            frames = getattr(it, name)
            out[row, : len(frames)] = frames
        return out

    labels = torch.tensor([it.label for it in items], dtype=torch.int64)
    return GaitBatch(stack("sil"), stack("depth"), lengths, labels, [it.id for it in items])
