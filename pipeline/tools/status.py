"""``depthgait-prep status``: what a cache holds, what failed and why, and whether ``aligned.h5`` is current.

Reads only attributes and dataset shapes of the per-video caches (no pixel data), the rows of
``errors.jsonl``, and the aligned file's settings and report, so it stays quick on a full CASIA-B cache.
"""

from __future__ import annotations

import contextlib
import json
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import h5py

from pipeline.align.batch import AlignReport, inputs_fingerprint, report_path
from pipeline.align.frames import AlignSettings
from pipeline.errors import InputError, read_failures
from pipeline.extract.claims import claims
from pipeline.formats.aligned import AlignedFormatError, AlignedReader
from pipeline.formats.video_cache import FORMAT as EXTRACT_FORMAT
from pipeline.formats.video_cache import list_caches, temp_files


@dataclass
class AlignedStatus:
    path: str
    up_to_date: bool
    sequences: int
    frames_kept: int
    frames_dropped: int | None = None  # None when the align report is missing
    too_short: list[tuple[str, int]] = field(default_factory=list)  # (key, kept frames)
    failed: list[tuple[str, str]] = field(default_factory=list)  # (cache file, error)


@dataclass
class CacheStatus:
    cache: str
    videos_done: int = 0
    frames_decoded: int = 0
    frames_with_person: int = 0
    failed: dict[str, dict[str, str]] = field(default_factory=dict)  # video -> {stage, error}, videos with no cache
    warnings: list[dict[str, Any]] = field(default_factory=list)  # rows of level "warning"
    unreadable: list[tuple[str, str]] = field(default_factory=list)  # cache files that cannot be read
    temp_files: int = 0  # .tmp- files of unfinished or killed writes
    temp_bytes: int = 0
    claims_live: int = 0  # videos being extracted right now (by any process sharing the cache)
    claims_stale: int = 0  # claims of processes that died (taken over by the next extract)
    aligned: AlignedStatus | None = None
    # --tracks all: what the tracker's filters dropped, summed over videos (pipeline.extract.track.TrackStats)
    tracking: dict[str, int] = field(default_factory=dict)
    track_caches: int = 0  # caches of --tracks all (one per person track)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=1)

    def format(self, max_listed: int = 10) -> str:
        """A human summary; long lists are cut to ``max_listed`` items with a count of the rest."""
        lines = [
            f"cache {self.cache}",
            f"  videos done: {self.videos_done}  (frames decoded {self.frames_decoded}, "
            f"with a person {self.frames_with_person})",
            f"  videos failed: {len(self.failed)}",
        ]
        stages = Counter(row["stage"] for row in self.failed.values())
        if stages:
            lines.append("    by stage: " + ", ".join(f"{stage} {n}" for stage, n in stages.most_common()))
        for video, row in list(self.failed.items())[:max_listed]:
            lines.append(f"    {video} [{row['stage']}]: {row['error']}")
        if len(self.failed) > max_listed:
            lines.append(f"    ... and {len(self.failed) - max_listed} more")
        t = self.tracking
        if t:
            lines.append(f"  person tracks: {t.get('tracks_kept', 0)} kept of {t.get('tracks_found', 0)} found "
                         f"({self.track_caches} track caches); not kept: {t.get('tracks_short', 0)} too short, "
                         f"{t.get('tracks_not_person', 0)} not person-shaped; "
                         f"{t.get('tracks_split', 0)} cut where another walker's blobs hid them too long")
            lines.append(f"    frames dropped: {t.get('frames_border', 0)} touching the border, "
                         f"{t.get('frames_small', 0)} too small, {t.get('frames_merged', 0)} merged with another "
                         f"track ({t.get('blobs_two_heads', 0)} blobs showing two heads, "
                         f"{t.get('blobs_pressed', 0)} cut from a walker pressed against them), "
                         f"{t.get('frames_too_tall', 0)} too tall for one person where they stand, "
                         f"{t.get('frames_too_full', 0)} with two people's foreground there, "
                         f"{t.get('frames_taller_than_walker', 0)} a step taller than their walker before and after, "
                         f"{t.get('frames_between_merges', 0)} clear of a neighbour for one frame between merged ones, "
                         f"{t.get('frames_short_end', 0)} in a short piece joined at a track's end, "
                         f"{t.get('frames_short_side', 0)} too few to compare after a long stretch in others' blobs; "
                         f"blobs split: {t.get('blobs_split', 0)}")
            lines.append(f"    blobs shared by several tracks: {t.get('blobs_shared', 0)} parts "
                         f"({t.get('blobs_colour_split', 0)} split by colour); "
                         f"{t.get('frames_foreign', 0)} detections cut for another walker's colours, "
                         f"{t.get('frames_entering', 0)} at the edge added to walkers coming in or going out")
        if self.warnings:
            lines.append(f"  warnings: {len(self.warnings)}")
            lines += [f"    {w.get('video')}: {w.get('error')}" for w in self.warnings[:max_listed]]
        for path, error in self.unreadable[:max_listed]:
            lines.append(f"  unreadable cache: {path}: {error}")
        if self.claims_live:
            lines.append(f"  {self.claims_live} video being extracted now" if self.claims_live == 1
                         else f"  {self.claims_live} videos being extracted now")
        if self.temp_files or self.claims_stale:
            lines.append(f"  {self.temp_files} temporary file(s) ({self.temp_bytes / 2**20:.1f} MB) and "
                         f"{self.claims_stale} stale claim(s) of killed runs: swept by the next extract")
        a = self.aligned
        if a is None:
            lines.append("  aligned: none yet (run `depthgait-prep align`)")
            return "\n".join(lines)
        state = "up to date" if a.up_to_date else "OUT OF DATE (caches or settings changed: run `depthgait-prep align`)"
        lines.append(f"  aligned: {a.path} ({state})")
        dropped = "unknown" if a.frames_dropped is None else str(a.frames_dropped)
        lines.append(f"    sequences {a.sequences}, frames kept {a.frames_kept}, dropped {dropped}")
        lines.append(f"    sequences too short: {len(a.too_short)}")
        lines += [f"      {key} ({kept} frames)" for key, kept in a.too_short[:max_listed]]
        lines += [f"    align failed: {path}: {error}" for path, error in a.failed[:max_listed]]
        return "\n".join(lines)


def _settings_from_dict(data: dict[str, Any]) -> AlignSettings:
    data = dict(data)
    if "depth_percentiles" in data:
        data["depth_percentiles"] = tuple(data["depth_percentiles"])
    return AlignSettings(**data)


def aligned_status(cache_dir: Path, aligned: Path, caches: list[Path]) -> AlignedStatus | None:
    """The aligned file's counts, and whether it still matches the caches (by the align fingerprint)."""
    if not aligned.is_file():
        return None
    try:
        with AlignedReader(aligned) as reader:
            ids = reader.ids()
            frames = sum(reader.length(i) for i in ids)
            stored = reader.settings.get("fingerprint")
            settings = _settings_from_dict(reader.settings.get("align", {}))
    except (AlignedFormatError, TypeError) as exc:
        return AlignedStatus(str(aligned), False, 0, 0, failed=[(str(aligned), str(exc))])
    current = inputs_fingerprint(caches, cache_dir, settings) if caches else None
    status = AlignedStatus(str(aligned), stored == current, len(ids), frames)
    rp = report_path(aligned)
    if rp.is_file():
        report = AlignReport.from_json(rp.read_text())
        if report.fingerprint == stored:  # a report from another run would mislead
            status.frames_dropped = report.frames_dropped
            status.too_short = [(s.key or s.cache, s.kept) for s in report.by_status("too_short")]
            status.failed = [(s.cache, s.error) for s in report.by_status("failed")]
    return status


def cache_status(cache_dir: str | Path = "cache", aligned: str | Path | None = None) -> CacheStatus:
    """Summarise ``cache_dir``: per-video caches, ``errors.jsonl`` and the aligned file."""
    cache_dir = Path(cache_dir)
    if not cache_dir.is_dir():
        raise FileNotFoundError(f"{cache_dir}: no such cache folder (run `depthgait-prep extract` first)")
    status = CacheStatus(str(cache_dir))
    done_videos: set[str] = set()
    caches = list_caches(cache_dir)
    for path in caches:
        try:
            with h5py.File(path, "r") as h5:
                if h5.attrs.get("format") != EXTRACT_FORMAT:
                    raise InputError(f"format {h5.attrs.get('format')!r}, expected {EXTRACT_FORMAT!r}")
                video = str(h5.attrs["video"])
                first = video not in done_videos
                done_videos.add(video)
                status.frames_with_person += int(h5["frames"].shape[0])
                tracking = json.loads(h5.attrs.get("tracking", "{}") or "{}")
                status.track_caches += bool(tracking)
                if first:  # a video's tracks share its frame count and its tracking counts
                    status.frames_decoded += int(h5.attrs["n_frames"])
                    for key, value in tracking.items():
                        status.tracking[key] = status.tracking.get(key, 0) + int(value)
        except (OSError, KeyError, ValueError) as exc:
            status.unreadable.append((str(path), str(exc)))
    status.videos_done = len(done_videos)
    for tmp in temp_files(cache_dir):
        with contextlib.suppress(FileNotFoundError):
            status.temp_bytes += tmp.stat().st_size
            status.temp_files += 1
    live, stale = claims(cache_dir)
    status.claims_live, status.claims_stale = len(live), len(stale)
    for failure in read_failures(cache_dir):  # later rows win: the latest outcome of each video
        if failure.level == "warning":
            status.warnings.append(failure.to_row())
        elif failure.item not in done_videos:
            status.failed[failure.item] = {"stage": failure.stage, "error": failure.error}
    status.aligned = aligned_status(cache_dir, Path(aligned) if aligned else cache_dir / "aligned.h5", caches)
    return status
