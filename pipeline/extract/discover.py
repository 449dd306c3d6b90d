"""Which videos a run takes, and which sequence each one is (manifest naming, folders, a CSV or footage).

An input is a video file, a folder of image frames (one video), or a folder searched recursively
for both. ``--layout footage`` names a video by nothing but its file name: subject = the video's
stem (the track number is added by ``--tracks all``), condition ``footage``, view ``000``; a single
input whose name fits no manifest is taken as footage.
"""
from __future__ import annotations

from pathlib import Path

from pipeline.errors import InputError
from pipeline.manifest import Manifest, ManifestError, SequenceId, identify_by_folders, read_identity_csv

FOOTAGE = ("footage", "000")  # the condition and view of every footage sequence
MIN_IMAGE_FRAMES = 2  # a folder with fewer images is not taken for a video


def is_frame_folder(path: Path) -> bool:
    from pipeline.extract.video import image_frames

    return path.is_dir() and len(image_frames(path)) >= MIN_IMAGE_FRAMES


def find_videos(root: str | Path, manifest: Manifest) -> list[Path]:
    """The videos of ``root``: itself when it is a video file or a folder of frames; otherwise video
    files (the manifest's extensions, skip tokens honoured) and folders of frames under it, recursively, sorted."""
    root = Path(root)
    if root.is_file():
        return [root]
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such video or folder of videos")
    if is_frame_folder(root):
        return [root]
    exts = {e.lower() for e in manifest.extensions}
    found = [p for p in root.rglob("*")
             if not p.name.startswith(".") and not manifest.is_skipped(p)
             and ((p.is_file() and p.suffix.lower() in exts) or is_frame_folder(p))]
    return sorted(found)


def footage_id(video: Path) -> SequenceId:
    """A footage sequence: the video's stem (a folder of frames: its name), ``footage``, ``000``."""
    return SequenceId(video.stem if video.is_file() else video.name, *FOOTAGE)


def auto_layout(root: Path, manifest: Manifest, layout: str) -> str:
    """``footage`` for a single video (or folder of frames) whose name fits no manifest naming."""
    if layout != "names" or not (root.is_file() or is_frame_folder(root)):
        return layout
    try:
        manifest.identify(root, root.parent)
    except ManifestError:
        return "footage"
    return layout


def identify(videos: list[Path], root: Path, manifest: Manifest, layout: str) -> tuple[list[tuple[Path, SequenceId]], list[tuple[Path, str]]]:
    """``(identified videos, [(video, why not)])`` by the manifest naming, folders, or a CSV file."""
    table = None
    if layout not in ("names", "folders", "footage"):
        if not Path(layout).is_file():
            raise InputError(f"--layout {layout!r}: give names, folders, footage or an existing CSV file "
                             "(header path,subject,condition,view)")
        table = read_identity_csv(layout)
    found: list[tuple[Path, SequenceId]] = []
    bad: list[tuple[Path, str]] = []
    seen: dict[SequenceId, Path] = {}
    for video in videos:
        try:
            if table is not None:
                seq = table.get(video.resolve())
                if seq is None:
                    raise ManifestError(f"{video}: not listed in {layout}")
            elif layout == "footage":
                seq = footage_id(video)
            elif layout == "folders":
                seq = identify_by_folders(video, root)
            else:
                seq = manifest.identify(video, root)
        except ManifestError as exc:
            bad.append((video, str(exc)))
            continue
        if seq in seen:
            bad.append((video, f"{video}: same sequence {seq.key} as {seen[seq]}; skipped"))
            continue
        seen[seq] = video
        found.append((video, seq))
    return found, bad
