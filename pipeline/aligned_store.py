"""The aligned interchange file (``aligned.h5``): the one contract between preprocessing and the model.

Schema (format ``depthgait-aligned``, version 1):

- one group per sequence at ``/<subject>/<condition>/<view>`` holding
  ``sil`` (uint8 [T, 64, 64], 0 or 255), ``depth`` (uint8 [T, 64, 64], 0 outside the silhouette,
  near = bright) and ``frames`` (int32 [T], source frame index); ``depth`` may be absent for a
  silhouette-only import;
- root attributes ``format``, ``version`` and ``settings`` (JSON of what made the file).

Pixel (i, j) of ``sil`` and ``depth`` is the same body point. Writers go through
``AlignedWriter`` (atomic: a temporary file renamed into place), readers through ``AlignedReader``.
"""
from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from pipeline.atomic import atomic_path
from pipeline.manifest import SequenceId

FORMAT = "depthgait-aligned"
VERSION = 1
FRAME_SIZE = 64


class AlignedFormatError(ValueError):
    """The file is not an aligned file of a version we read; the message names the file."""


@dataclass
class AlignedSequence:
    id: SequenceId
    sil: np.ndarray  # uint8 [T, 64, 64], 0 or 255
    depth: np.ndarray | None  # uint8 [T, 64, 64], 0 outside the silhouette
    frames: np.ndarray  # int32 [T]

    def __post_init__(self) -> None:
        t = len(self.frames)
        if self.sil.dtype != np.uint8 or self.sil.shape[1:] != (FRAME_SIZE, FRAME_SIZE) or len(self.sil) != t:
            raise AlignedFormatError(f"{self.id.key}: sil must be uint8 [{t}, 64, 64], got {self.sil.dtype} {self.sil.shape}")
        if self.depth is not None and (self.depth.dtype != np.uint8 or self.depth.shape != self.sil.shape):
            raise AlignedFormatError(
                f"{self.id.key}: depth must be uint8 {self.sil.shape}, got {self.depth.dtype} {self.depth.shape}"
            )


class AlignedWriter:
    """Write sequences into a new aligned file; the final name appears only after ``close()``."""

    def __init__(self, path: str | Path, settings: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        self._h5 = h5py.File(self._tmp, "w")
        self._h5.attrs["format"] = FORMAT
        self._h5.attrs["version"] = VERSION
        self._h5.attrs["settings"] = json.dumps(settings or {}, sort_keys=True)

    def add(self, seq: AlignedSequence) -> None:
        group = self._h5.require_group(seq.id.key)
        opts = dict(compression="gzip", compression_opts=4, chunks=(max(1, min(len(seq.frames), 32)), FRAME_SIZE, FRAME_SIZE))
        group.create_dataset("sil", data=seq.sil, **opts)
        if seq.depth is not None:
            group.create_dataset("depth", data=seq.depth, **opts)
        group.create_dataset("frames", data=np.asarray(seq.frames, dtype=np.int32))

    def close(self) -> None:
        self._h5.close()
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        self._h5.close()
        try:
            self._ctx.__exit__(RuntimeError, RuntimeError("aborted"), None)
        except RuntimeError:
            pass

    def __enter__(self) -> AlignedWriter:
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()


class AlignedReader:
    """Read an aligned file: list its sequences, load one or all. Keeps one open handle."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise AlignedFormatError(f"{self.path}: no such aligned file (run `depthgait-prep align` first)")
        try:
            self._h5 = h5py.File(self.path, "r")
        except OSError as exc:
            raise AlignedFormatError(f"{self.path}: not an HDF5 file ({exc})") from exc
        try:
            fmt = self._h5.attrs.get("format")
            if fmt != FORMAT:
                raise AlignedFormatError(f"{self.path}: format attribute is {fmt!r}, expected {FORMAT!r}")
            version = int(self._h5.attrs.get("version", -1))
            if version != VERSION:
                raise AlignedFormatError(f"{self.path}: version {version}, this depthgait reads version {VERSION}")
            self.settings: dict[str, Any] = json.loads(self._h5.attrs.get("settings", "{}"))
        except AlignedFormatError:
            self._h5.close()
            raise
        except Exception as exc:  # noqa: BLE001 - a damaged header: h5py raises OSError, KeyError, ...
            self._h5.close()
            raise AlignedFormatError(f"{self.path}: damaged aligned file ({_reason(exc)})") from None

    def ids(self) -> list[SequenceId]:
        """All sequence ids, sorted by (subject, condition, view)."""
        found: list[SequenceId] = []
        try:
            for subject, s_group in self._h5.items():
                for condition, c_group in s_group.items():
                    for view in c_group:
                        found.append(SequenceId(subject, condition, view))
        except (OSError, KeyError, RuntimeError, AttributeError, ValueError) as exc:
            raise AlignedFormatError(f"{self.path}: damaged aligned file, its index is unreadable ({_reason(exc)})") from None
        return sorted(found)

    def has_depth(self, seq: SequenceId) -> bool:
        return "depth" in self._h5[seq.key]

    def length(self, seq: SequenceId) -> int:
        return int(self._h5[seq.key]["frames"].shape[0])

    def load(self, seq: SequenceId) -> AlignedSequence:
        try:
            group = self._h5[seq.key]
            depth = group["depth"][()] if "depth" in group else None
            return AlignedSequence(seq, group["sil"][()], depth, group["frames"][()])
        except AlignedFormatError as exc:
            raise AlignedFormatError(f"{self.path}: {exc}") from None
        except KeyError:
            raise AlignedFormatError(f"{self.path}: no sequence {seq.key} (or it lacks sil/frames)") from None
        except (OSError, RuntimeError, ValueError, TypeError) as exc:  # a damaged chunk: inflate() failed, ...
            raise AlignedFormatError(f"{self.path}: sequence {seq.key} is damaged ({_reason(exc)})") from None

    def __iter__(self) -> Iterator[AlignedSequence]:
        for seq in self.ids():
            yield self.load(seq)

    def __len__(self) -> int:
        return len(self.ids())

    def close(self) -> None:
        self._h5.close()

    def __enter__(self) -> AlignedReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def _reason(exc: BaseException) -> str:
    """An h5py error in one line (its messages can carry HDF5's error stack)."""
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text[:200]}" if text else type(exc).__name__
