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

from pipeline.atomic import WRITE_ERRNOS, atomic_path, write_failure
from pipeline.errors import DepthgaitError, InputError
from pipeline.formats.h5_writer import open_h5_for_writing
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
    """Write sequences into a new aligned file; the final name appears only after ``close()``.

    A full disk or a read-only folder raises :class:`FileWriteError` naming the file, from
    ``__init__``, ``add`` or ``close``; the temporary file is then removed and nothing crashes.
    """

    def __init__(self, path: str | Path, settings: dict[str, Any] | None = None) -> None:
        self.path = Path(path)
        self._done = False
        self._h5: h5py.File | None = None
        self._guard = None
        self._ctx = atomic_path(self.path)
        self._tmp = self._ctx.__enter__()
        try:
            self._h5, self._guard = open_h5_for_writing(self._tmp)
            self._h5.attrs["format"] = FORMAT
            self._h5.attrs["version"] = VERSION
            self._h5.attrs["settings"] = json.dumps(settings or {}, sort_keys=True)
        except BaseException as exc:
            self.abort()
            if isinstance(exc, OSError) and exc.errno in WRITE_ERRNOS:
                raise write_failure(self.path, exc) from None
            raise
        self._check()

    def _check(self) -> None:
        """Raise the first write error the guard saw (the file is then discarded)."""
        if self._guard is not None and self._guard.error is not None:
            error = self._guard.error
            self.abort()
            raise write_failure(self.path, error) from None

    def add(self, seq: AlignedSequence) -> None:
        if self._h5 is None:
            raise InputError(f"{self.path}: the writer is closed")
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
        self._check()

    def close(self) -> None:
        """Finish the file and rename it into place."""
        if self._done:
            return
        try:
            self._h5.close()
        except BaseException:
            self.abort()
            raise
        self._h5 = None
        self._guard.close()
        self._check()
        self._done = True
        self._ctx.__exit__(None, None, None)

    def abort(self) -> None:
        """Close quietly and remove the temporary file; the final name is untouched."""
        if self._done:
            return
        self._done = True
        h5, self._h5 = self._h5, None
        try:
            if h5 is not None:
                h5.close()
        except Exception:  # noqa: BLE001 - the file is being thrown away
            pass
        if self._guard is not None:
            self._guard.close()
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
            box = group["box"][()] if "box" in group else None
            video = group.attrs.get("video")
            return AlignedSequence(seq, group["sil"][()], depth, group["frames"][()], box=box,
                                   video=None if video is None else str(video), track=int(group.attrs.get("track", 0)))
        except AlignedFormatError as exc:
            raise AlignedFormatError(f"{self.path}: {exc}") from None
        except KeyError as exc:  # absent, or its group or datasets cannot be opened any more
            raise AlignedFormatError(f"{self.path}: sequence {seq.key} is missing or damaged ({_reason(exc)})") from None
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
