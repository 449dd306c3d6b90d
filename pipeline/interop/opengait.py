"""Export ``aligned.h5`` to OpenGait's dataset tree and import such a tree back.

OpenGait reads ``root/<subject>/<condition>/<view>/*.pkl``: every file in a sequence folder must be
a ``.pkl``, one per modality, fed to the model in sorted-name order. We write

- ``<view>/00-sil-<view>.pkl`` and ``<view>/01-depth-<view>.pkl`` (uint8 [T, 64, 64]), so the sorted
  order is silhouette then depth (``data_in_use: [true, false]`` selects silhouettes only);
- ``root/partition.json``: ``{"TRAIN_SET": [...], "TEST_SET": [...]}`` from the manifest's split;
- ``root/depthgait-export.json``: the source settings and each sequence's source frame indices,
  which OpenGait has no place for; OpenGait ignores root-level files that are not subjects.

Import reads any such tree (the official CASIA-B pkl release included): one pkl per folder is a
silhouette, two are silhouette then depth in sorted order (or chosen with glob patterns). A broken,
unsafe or malformed pkl, or modalities of different lengths, skips that sequence with its reason;
the rest import. Silhouette values are kept as they are (OpenGait's resized silhouettes hold grey
edge values, not only 0/255), so export then import is exact, bit for bit.
"""
from __future__ import annotations

import fnmatch
import json
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import FileWriteError, write_text_atomic
from pipeline.errors import Failure, InputError
from pipeline.formats.aligned import AlignedReader, AlignedSequence, AlignedWriter
from pipeline.geometry import FRAME_SIZE
from pipeline.interop.safe_pickle import PickleLoadError, dump_array, load_pickle
from pipeline.manifest import Manifest, SequenceId
from pipeline.progress import progress

MODALITIES = ("sil", "depth")
PARTITION_NAME = "partition.json"
META_NAME = "depthgait-export.json"
META_FORMAT = "depthgait-opengait-export"
META_VERSION = 1


def pkl_name(modality: str, view: str) -> str:
    """``00-sil-090.pkl`` / ``01-depth-090.pkl``: the prefix fixes OpenGait's sorted order."""
    return f"{MODALITIES.index(modality):02d}-{modality}-{view}.pkl"


@dataclass
class ExportResult:
    root: Path
    exported: int = 0
    with_depth: int = 0
    failed: list[Failure] = field(default_factory=list)  # items are sequence keys
    partition: dict[str, list[str]] = field(default_factory=dict)


@dataclass
class ImportResult:
    out: Path
    imported: int = 0
    with_depth: int = 0
    failed: list[Failure] = field(default_factory=list)  # items are sequence folders
    short: list[str] = field(default_factory=list)  # imported, but fewer than 5 frames


# ---- export -------------------------------------------------------------------------------------
def export_opengait(
    aligned: str | Path,
    out_dir: str | Path,
    manifest: Manifest,
    modalities: Sequence[str] | None = None,
    quiet: bool = False,
) -> ExportResult:
    """Write every sequence of ``aligned`` as OpenGait pkls under ``out_dir`` plus the partition JSON.

    ``modalities`` None writes what each sequence has; naming them makes a sequence that lacks one
    a reported failure (a two-input OpenGait model needs both in every folder).
    """
    out_dir = Path(out_dir)
    wanted = tuple(modalities) if modalities else None
    for name in wanted or ():
        if name not in MODALITIES:
            raise InputError(f"unknown modality {name!r} (choose from {', '.join(MODALITIES)})")
    result = ExportResult(out_dir)
    frames: dict[str, list[int]] = {}
    with AlignedReader(aligned) as reader:
        ids = reader.ids()
        if not ids:
            raise InputError(f"{reader.path}: holds no sequences to export")
        for seq_id in progress(ids, desc="export", unit="seq", disable=quiet):
            try:
                seq = reader.load(seq_id)
                arrays = {"sil": seq.sil, "depth": seq.depth}
                names = wanted or tuple(m for m in MODALITIES if arrays[m] is not None)
                missing = [m for m in names if arrays[m] is None]
                if missing:
                    raise InputError(f"has no {missing[0]} (exported modalities: {', '.join(names)})")
                folder = out_dir / seq_id.subject / seq_id.condition / seq_id.view
                for stale in set(MODALITIES) - set(names):  # a previous export's file would be read
                    (folder / pkl_name(stale, seq_id.view)).unlink(missing_ok=True)
                for name in names:
                    dump_array(arrays[name], folder / pkl_name(name, seq_id.view))
            except FileWriteError as exc:  # a full disk or read-only folder: every further file would fail too
                raise FileWriteError(exc.errno, f"{exc} (stopped after {result.exported} sequences; their files are complete)") from None
            except (OSError, ValueError, KeyError) as exc:
                result.failed.append(Failure(seq_id.key, "export", str(exc)))
                continue
            frames[seq_id.key] = seq.frames.tolist()
            result.exported += 1
            result.with_depth += int("depth" in names)
        settings = reader.settings
    if not result.exported:
        raise InputError(f"{aligned}: no sequence could be exported ({result.failed[0].error})")
    subjects = sorted({SequenceId.from_key(k).subject for k in frames})
    train, test = manifest.split_subjects(subjects)
    result.partition = {"TRAIN_SET": train, "TEST_SET": test}
    write_text_atomic(out_dir / PARTITION_NAME, json.dumps(result.partition, indent=2) + "\n")
    meta = {
        "format": META_FORMAT,
        "version": META_VERSION,
        "source": str(aligned),
        "manifest": manifest.name,
        "settings": settings,
        "frames": frames,
    }
    write_text_atomic(out_dir / META_NAME, json.dumps(meta))
    return result


# ---- import -------------------------------------------------------------------------------------
def find_sequence_folders(root: Path) -> Iterator[tuple[SequenceId, Path]]:
    """``root/<subject>/<condition>/<view>/`` folders, sorted; files at upper levels are ignored."""
    for subject in sorted(p for p in root.iterdir() if p.is_dir()):
        for condition in sorted(p for p in subject.iterdir() if p.is_dir()):
            for view in sorted(p for p in condition.iterdir() if p.is_dir()):
                yield SequenceId(subject.name, condition.name, view.name), view


def pick_modality_files(
    folder: Path, sil_pattern: str | None = None, depth_pattern: str | None = None
) -> tuple[Path, Path | None]:
    """Choose the silhouette pkl and the optional depth pkl of one sequence folder.

    With patterns, the silhouette pattern must match exactly one file and the depth pattern at most
    one. Without, our own names win; otherwise one pkl is a silhouette and two are silhouette then
    depth in sorted order (OpenGait's order). Anything else is ambiguous and raises.
    """
    pkls = sorted(p for p in folder.iterdir() if p.suffix == ".pkl" and p.is_file())
    if not pkls:
        raise InputError(f"{folder}: no .pkl files")

    def match(pattern: str, required: bool) -> Path | None:
        hits = [p for p in pkls if fnmatch.fnmatch(p.name, pattern)]
        if len(hits) > 1 or (required and not hits):
            names = ", ".join(p.name for p in hits or pkls)
            raise InputError(f"{folder}: pattern {pattern!r} must match {'exactly' if required else 'at most'} one pkl, not: {names}")
        return hits[0] if hits else None

    if sil_pattern or depth_pattern:
        sil = match(sil_pattern or "*sil*.pkl", required=True)
        depth = match(depth_pattern, required=False) if depth_pattern else None
        assert sil is not None
        return sil, depth
    ours = {m: folder / pkl_name(m, folder.name) for m in MODALITIES}
    if ours["sil"].is_file():
        return ours["sil"], ours["depth"] if ours["depth"].is_file() else None
    if len(pkls) <= 2:
        return pkls[0], pkls[1] if len(pkls) == 2 else None
    names = ", ".join(p.name for p in pkls)
    raise InputError(f"{folder}: {len(pkls)} pkls ({names}); choose with --sil-pattern/--depth-pattern")


def load_frames_array(path: Path) -> np.ndarray:
    """One modality: a uint8 [T, 64, 64] array with T >= 1, or an error naming the file."""
    array = load_pickle(path)
    if not isinstance(array, np.ndarray):
        raise InputError(f"{path}: holds a {type(array).__name__}, expected a numpy array [T, 64, 64] uint8")
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[1:] != (FRAME_SIZE, FRAME_SIZE):
        raise InputError(f"{path}: expected uint8 [T, 64, 64], got {array.dtype} {list(array.shape)}")
    if len(array) == 0:
        raise InputError(f"{path}: holds no frames")
    return np.ascontiguousarray(array)


def read_sequence(
    seq_id: SequenceId,
    folder: Path,
    frames_by_key: dict[str, list[int]],
    sil_pattern: str | None = None,
    depth_pattern: str | None = None,
) -> AlignedSequence:
    """Load and check one OpenGait sequence folder."""
    sil_path, depth_path = pick_modality_files(folder, sil_pattern, depth_pattern)
    sil = load_frames_array(sil_path)
    depth = load_frames_array(depth_path) if depth_path else None
    if depth is not None and len(depth) != len(sil):
        raise InputError(f"{folder}: {sil_path.name} has {len(sil)} frames but {depth_path.name} has {len(depth)}")
    known = frames_by_key.get(seq_id.key)
    frames = np.asarray(known if known is not None and len(known) == len(sil) else np.arange(len(sil)), dtype=np.int32)
    return AlignedSequence(seq_id, sil, depth, frames)


def read_export_meta(root: Path) -> dict[str, Any]:
    """Our own export's sidecar (frame indices, settings), or {} for a foreign tree."""
    path = root / META_NAME
    if not path.is_file():
        return {}
    try:
        meta = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise InputError(f"{path}: unreadable export metadata ({exc}); delete it to import without it") from exc
    if meta.get("format") != META_FORMAT or meta.get("version") != META_VERSION:
        raise InputError(f"{path}: not a {META_FORMAT} version {META_VERSION} file")
    return meta


def import_opengait(
    root: str | Path,
    out: str | Path,
    sil_pattern: str | None = None,
    depth_pattern: str | None = None,
    settings: dict[str, Any] | None = None,
    quiet: bool = False,
) -> ImportResult:
    """Read an OpenGait tree into a new ``aligned.h5``; bad sequences are listed in the result, not fatal."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder (expected an OpenGait tree <subject>/<condition>/<view>/*.pkl)")
    meta = read_export_meta(root)
    folders = list(find_sequence_folders(root))
    if not folders:
        raise InputError(f"{root}: no <subject>/<condition>/<view>/ folders found")
    file_settings = dict(meta.get("settings") or {})
    file_settings.update(settings or {"imported_from": {"format": "opengait", "root": str(root)}})
    result = ImportResult(Path(out))
    with AlignedWriter(out, file_settings) as writer:  # renamed into place only when every sequence is written
        for seq_id, folder in progress(folders, desc="import", unit="seq", disable=quiet):
            try:
                seq = read_sequence(seq_id, folder, meta.get("frames", {}), sil_pattern, depth_pattern)
            except (PickleLoadError, ValueError, OSError) as exc:
                result.failed.append(Failure(str(folder), "import", str(exc)))
                continue
            writer.add(seq)
            result.imported += 1
            result.with_depth += int(seq.depth is not None)
            if len(seq.frames) < 5:
                result.short.append(seq_id.key)
        if not result.imported:
            raise InputError(f"{root}: no sequence could be imported; first problem: {result.failed[0].error}")
    return result
