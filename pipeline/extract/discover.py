"""Which videos a run takes, and which sequence each one is (manifest naming, folders or a CSV)."""
from __future__ import annotations

from pathlib import Path

from pipeline.errors import InputError
from pipeline.manifest import Manifest, ManifestError, SequenceId, identify_by_folders, read_identity_csv


def find_videos(root: str | Path, manifest: Manifest) -> list[Path]:
    """Video files under ``root`` (recursively, the manifest's extensions, skip tokens honoured), sorted."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"{root}: no such folder of videos")
    exts = {e.lower() for e in manifest.extensions}
    return sorted(
        p for p in root.rglob("*")
        if p.is_file() and p.suffix.lower() in exts and not manifest.is_skipped(p) and not p.name.startswith(".")
    )


def identify(videos: list[Path], root: Path, manifest: Manifest, layout: str) -> tuple[list[tuple[Path, SequenceId]], list[tuple[Path, str]]]:
    """``(identified videos, [(video, why not)])`` by the manifest naming, folders, or a CSV file."""
    table = None
    if layout not in ("names", "folders"):
        if not Path(layout).is_file():
            raise InputError(f"--layout {layout!r}: give names, folders or an existing CSV file (path,subject,condition,view)")
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
