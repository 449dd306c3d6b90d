"""The aligned interchange file (``aligned.h5``): the one contract between preprocessing and the model.

Schema (format ``depthgait-aligned``, version 1):

- one group per sequence at ``/<subject>/<condition>/<view>`` holding
  ``sil`` (uint8 [T, 64, 64], 0 or 255), ``depth`` (uint8 [T, 64, 64], 0 outside the silhouette,
  near = bright) and ``frames`` (int32 [T], source frame index); ``depth`` may be absent for a
  silhouette-only import; ``box`` (float32 [T, 4], x0 y0 x1 y1 in source-frame pixels: where the
  person was in the video) and the group attributes ``video`` (absolute source path) and ``track``
  (int, the person's track in that video) when the sequence came from a video (files written
  before these existed, and imports, lack them; readers then give None, None and 0);
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
from pipeline.errors import DepthgaitError
from pipeline.geometry import FRAME_SIZE
from pipeline.manifest import SequenceId

FORMAT = "depthgait-aligned"
VERSION = 1


class AlignedFormatError(DepthgaitError, ValueError):
    """The file is not an aligned file of a version we read; the message names the file."""


@dataclass
class AlignedSequence:
    id: SequenceId
    sil: np.ndarray  # uint8 [T, 64, 64], 0 or 255
    depth: np.ndarray | None  # uint8 [T, 64, 64], 0 outside the silhouette
    frames: np.ndarray  # int32 [T]
    box: np.ndarray | None = None  # float32 [T, 4] x0 y0 x1 y1 in the source video
    video: str | None = None  # absolute path of the source video
    track: int = 0  # which person track of that video

    def __post_init__(self) -> None:
        t = len(self.frames)
        if self.box is not None:
            self.box = np.asarray(self.box, dtype=np.float32)
            if self.box.shape != (t, 4):
                raise AlignedFormatError(f"{self.id.key}: box must be [{t}, 4], got {self.box.shape}")
        self.track = int(self.track)
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
        if seq.box is not None:
            group.create_dataset("box", data=seq.box.astype(np.float32))
        if seq.video is not None:
            group.attrs["video"] = str(seq.video)
        group.attrs["track"] = int(seq.track)

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
        fmt = self._h5.attrs.get("format")
        if fmt != FORMAT:
            raise AlignedFormatError(f"{self.path}: format attribute is {fmt!r}, expected {FORMAT!r}")
        version = int(self._h5.attrs.get("version", -1))
        if version != VERSION:
            raise AlignedFormatError(f"{self.path}: version {version}, this depthgait reads version {VERSION}")
        self.settings: dict[str, Any] = json.loads(self._h5.attrs.get("settings", "{}"))

    def ids(self) -> list[SequenceId]:
        """All sequence ids, sorted by (subject, condition, view)."""
        found: list[SequenceId] = []
        for subject, s_group in self._h5.items():
            for condition, c_group in s_group.items():
                for view in c_group:
                    found.append(SequenceId(subject, condition, view))
        return sorted(found)

    def has_depth(self, seq: SequenceId) -> bool:
        return "depth" in self._h5[seq.key]

    def length(self, seq: SequenceId) -> int:
        return int(self._h5[seq.key]["frames"].shape[0])

    def load(self, seq: SequenceId) -> AlignedSequence:
        group = self._h5[seq.key]
        depth = group["depth"][()] if "depth" in group else None
        box = group["box"][()] if "box" in group else None
        video = group.attrs.get("video")
        return AlignedSequence(seq, group["sil"][()], depth, group["frames"][()], box=box,
                               video=None if video is None else str(video), track=int(group.attrs.get("track", 0)))

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
