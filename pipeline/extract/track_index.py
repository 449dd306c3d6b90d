"""With ``--tracks all`` one video makes several caches; its track list says which, and that it is done.

How many people a video holds is known only after its detect pass, so a rerun cannot check the
caches of a video by their names. Each video gets ``<cache>/videos/<subject>/<condition>/<view>.tracks.json``
(its sequence before the track numbers are added): the fingerprint of the settings and video, and
the cache files of its tracks, written after every one of them is complete. The video is done when
the list's fingerprint matches and every listed cache checks out; redoing it first removes the caches
the old list named (a rerun may find fewer people).
"""
from __future__ import annotations

import contextlib
import json
from pathlib import Path

from pipeline.atomic import write_text_atomic
from pipeline.formats.video_cache import NO_CACHE, STALE, cache_path, check_cache
from pipeline.manifest import SequenceId

SUFFIX = ".tracks.json"


def index_path(cache_dir: str | Path, seq: SequenceId) -> Path:
    return cache_path(cache_dir, seq).with_suffix(SUFFIX)


def cache_root(index: Path) -> Path:
    """``<cache>`` of ``<cache>/videos/<subject>/<condition>/<view>.tracks.json``."""
    return index.parents[3]


def write_index(index: Path, fingerprint: str, caches: list[Path]) -> Path:
    root = cache_root(index)
    body = {"fingerprint": fingerprint, "caches": [str(Path(c).relative_to(root)) for c in caches]}
    write_text_atomic(index, json.dumps(body, indent=1) + "\n")
    return index


def read_index(index: Path) -> tuple[str, list[Path]] | None:
    try:
        body = json.loads(index.read_text())
        return str(body["fingerprint"]), [cache_root(index) / c for c in body["caches"]]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def check_index(index: Path, expected: str | None = None) -> str | None:
    """``None`` when the video's track list is complete (of fingerprint ``expected``), else why not."""
    if not index.is_file():
        return NO_CACHE
    got = read_index(index)
    if got is None:
        return f"{index}: unreadable track list"
    fp, caches = got
    if expected is not None and fp != expected:
        return STALE
    for cache in caches:
        why = check_cache(cache, fp)
        if why is not None:
            return f"{cache}: {why}"
    return None


def remove_listed(index: Path) -> None:
    """Remove the caches an old track list names (before the video is redone) and the list itself."""
    got = read_index(index)
    for cache in got[1] if got else []:
        with contextlib.suppress(FileNotFoundError):
            cache.unlink()
    with contextlib.suppress(FileNotFoundError):
        index.unlink()
