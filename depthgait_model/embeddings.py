"""Embedding sets: the npz file ``depthgait evaluate`` reads, and running a model over ``aligned.h5``.

The npz holds ``embeddings`` (float [N, C, P] or [N, D]) and ``labels``, ``types``, ``views``
(strings such as ``"075"``, ``"nm-05"``, ``"090"``), named as OpenGait names them, so that any
model's test features can be evaluated by the same code as ours.
"""
from __future__ import annotations

import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from depthgait_model.data import collate, sequence_item
from pipeline.atomic import atomic_path
from pipeline.errors import DepthgaitError, InputError
from pipeline.formats.aligned import AlignedReader
from pipeline.geometry import CUT
from pipeline.manifest import SequenceId
from pipeline.progress import progress

KEYS: tuple[str, ...] = ("embeddings", "labels", "types", "views")


class EmbeddingsError(DepthgaitError, ValueError):
    """An embeddings file or array set is malformed; the message names the file and the problem."""


@dataclass
class Embeddings:
    embeddings: np.ndarray  # float [N, C, P] or [N, D]
    labels: np.ndarray  # str [N]: subject
    types: np.ndarray  # str [N]: condition ("nm-05")
    views: np.ndarray  # str [N]: view ("090")
    fingerprint: str | None = None  # of the model that made them (``depthgait_model.identify.model_fingerprint``)

    def __post_init__(self) -> None:
        self.labels, self.types, self.views = (_as_str(a) for a in (self.labels, self.types, self.views))

    def __len__(self) -> int:
        return int(self.embeddings.shape[0])

    def validate(self, source: str = "embeddings") -> Embeddings:
        """Raise ``EmbeddingsError`` naming ``source`` unless shapes, dtypes and values are usable."""
        emb = self.embeddings
        if emb.ndim not in (2, 3):
            raise EmbeddingsError(f"{source}: 'embeddings' must be [N, C, P] or [N, D], got shape {emb.shape}")
        if not np.issubdtype(emb.dtype, np.floating):
            raise EmbeddingsError(f"{source}: 'embeddings' must be floating point, got {emb.dtype}")
        if emb.shape[0] == 0 or 0 in emb.shape[1:]:
            raise EmbeddingsError(f"{source}: 'embeddings' is empty (shape {emb.shape})")
        for name in KEYS[1:]:
            arr = getattr(self, name)
            if arr.ndim != 1 or len(arr) != emb.shape[0]:
                raise EmbeddingsError(
                    f"{source}: {name!r} must be a 1-D array of {emb.shape[0]} strings (one per embedding), "
                    f"got shape {arr.shape}"
                )
        if not np.isfinite(emb).all():
            bad = int((~np.isfinite(emb)).reshape(len(emb), -1).any(1).sum())
            raise EmbeddingsError(f"{source}: 'embeddings' has NaN or inf values in {bad} rows")
        return self


def _as_str(a: Sequence | np.ndarray) -> np.ndarray:
    """Labels may arrive as str, bytes or ints (OpenGait lists); compare them as str."""
    arr = np.asarray(a)
    if arr.dtype.kind == "S":
        arr = np.char.decode(arr, "utf-8")
    return arr.astype(str)


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__


def load_embeddings(path: str | Path) -> Embeddings:
    """Read and validate an embeddings npz; every problem is an ``EmbeddingsError`` naming the file."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such embeddings file")
    if not zipfile.is_zipfile(path):
        raise EmbeddingsError(f"{path}: not an .npz file (expected np.savez output with keys {', '.join(KEYS)})")
    try:
        with np.load(path, allow_pickle=False) as npz:
            missing = [k for k in KEYS if k not in npz.files]
            if missing:
                raise EmbeddingsError(
                    f"{path}: missing key {missing[0]!r} (has: {', '.join(npz.files) or 'nothing'}; "
                    f"needs: {', '.join(KEYS)})"
                )
            arrays = {k: npz[k] for k in KEYS}
            fingerprint = str(npz["fingerprint"]) if "fingerprint" in npz.files else None
    except EmbeddingsError:
        raise
    except ValueError as exc:
        if "allow_pickle" in str(exc):  # object arrays need pickle, which we never load from a file
            raise EmbeddingsError(
                f"{path}: holds Python objects; save labels/types/views as string arrays (np.asarray(x, dtype=str))"
            ) from None
        raise EmbeddingsError(f"{path}: not a readable .npz file ({_one_line(exc)})") from None
    except Exception as exc:  # noqa: BLE001 - a damaged member: BadZipFile, zlib.error, EOFError, OSError...
        raise EmbeddingsError(f"{path}: not a readable .npz file ({_one_line(exc)})") from None
    return Embeddings(**arrays, fingerprint=fingerprint).validate(str(path))


def save_embeddings(path: str | Path, emb: Embeddings) -> Path:
    """Write an embeddings npz atomically (compressed); returns the path."""
    path = Path(path)
    emb.validate(str(path))
    with atomic_path(path) as tmp:
        with tmp.open("wb") as handle:
            extra = {} if emb.fingerprint is None else {"fingerprint": np.asarray(emb.fingerprint)}
            np.savez_compressed(handle, embeddings=emb.embeddings, labels=emb.labels, types=emb.types, views=emb.views,
                                **extra)
    return path


def length_batches(lengths: Sequence[int], batch_size: int, max_frames: int) -> list[list[int]]:
    """Group indices by similar length (sorted) into batches of <= batch_size and <= max_frames padded frames."""
    order = sorted(range(len(lengths)), key=lambda i: (lengths[i], i))
    batches: list[list[int]] = []
    current: list[int] = []
    for i in order:
        # Sorted ascending, so the newcomer is the longest: padded size = count * its length.
        if current and (len(current) >= batch_size or (len(current) + 1) * lengths[i] > max_frames):
            batches.append(current)
            current = []
        current.append(i)
    if current:
        batches.append(current)
    return batches


@torch.no_grad()
def embed_aligned(
    model: torch.nn.Module,
    reader: AlignedReader,
    ids: Sequence[SequenceId],
    device: str | torch.device = "cpu",
    which: str = "fc",
    batch_size: int = 8,
    max_frames: int = 4096,
    cut: int = CUT,
    quiet: bool = False,
) -> Embeddings:
    """Embed every sequence in ``ids`` using all its frames; returns rows in the order of ``ids``.

    Sequences are sorted by length and batched with zero padding plus ``lengths`` so that little
    compute is spent on padding; the model masks padded frames (CONTRACTS.md). The result is on CPU.
    """
    if not ids:
        raise InputError(f"{reader.path}: no sequences to embed")
    model.eval()
    lengths = [reader.length(s) for s in ids]
    short = [s.key for s, n in zip(ids, lengths, strict=True) if n == 0]
    if short:
        raise InputError(f"{reader.path}: sequences with no frames: {', '.join(short[:5])}")
    if "depth" in getattr(getattr(model, "cfg", None), "modalities", ()):
        no_depth = [s.key for s in ids if not reader.has_depth(s)]
        if no_depth:
            raise InputError(f"{reader.path}: the model uses depth, but {len(no_depth)} sequences have none ({no_depth[0]}, ...)")
    batches = length_batches(lengths, batch_size, max_frames)
    rows: list[np.ndarray | None] = [None] * len(ids)
    with progress(total=len(ids), desc="embed", unit="seq", disable=quiet) as bar:
        for batch in batches:
            seqs = [reader.load(ids[i]) for i in batch]
            with_depth = all(s.depth is not None for s in seqs)
            inputs = collate([sequence_item(s, cut, with_depth) for s in seqs]).model_inputs(device)  # [B, T, 64, 44]
            out = _embed(model, inputs["sil"], inputs["depth"], inputs["lengths"], which)  # [B, C, P]
            out = out.float().cpu().numpy()
            for j, i in enumerate(batch):
                rows[i] = out[j]
            bar.update(len(batch))
    return Embeddings(
        embeddings=np.stack(rows),  # [N, C, P]
        labels=np.array([s.subject for s in ids]),
        types=np.array([s.condition for s in ids]),
        views=np.array([s.view for s in ids]),
    )


def _embed(model: torch.nn.Module, sil: torch.Tensor, depth: torch.Tensor | None, lengths: torch.Tensor, which: str):
    """One batch through the model: ``model.embed`` when it has one, else the forward's output fields."""
    if which not in ("fc", "bnneck"):
        raise InputError(f"which must be 'fc' or 'bnneck', got {which!r}")
    if hasattr(model, "embed"):
        return model.embed(sil, depth, lengths, which=which)  # [B, C, P]
    out = model(sil, depth, lengths)
    return out.embeddings if which == "fc" else out.bnneck  # [B, C, P]
