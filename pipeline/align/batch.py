"""``depthgait-prep align``: every per-video extract cache -> one ``aligned.h5``.

Reads each cache under ``<cache>/videos/`` (joblib workers), aligns it with ``pipeline.align.frames``,
and writes the aligned file through ``AlignedWriter`` (atomic). Each sequence keeps the source box
of its frames, its video as an absolute path and its track number, so later tools (``show``,
identification) find the raw frames from any folder. The file's ``settings`` carry a
fingerprint of the inputs (each cache's path, size and mtime) and the align settings: a rerun with
the same fingerprint does no work, ``overwrite`` redoes it. Beside it goes a small JSON report
(frames kept and dropped per sequence, sequences too short, caches that could not be read), which
``depthgait-prep status`` reads.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from joblib import Parallel, delayed

from pipeline.align.frames import AlignSettings, align_video_cache
from pipeline.atomic import write_text_atomic
from pipeline.formats.aligned import AlignedFormatError, AlignedReader, AlignedSequence, AlignedWriter
from pipeline.formats.video_cache import list_caches, read_video_cache
from pipeline.progress import progress

ALIGN_CODE_VERSION = 1  # bump when the alignment itself changes, so old files are redone


@dataclass
class SequenceReport:
    """What happened to one cache: ``ok``, ``too_short`` (left out of the file) or ``failed``."""

    cache: str
    key: str | None = None
    frames_in: int = 0  # frames with a person in the cache
    kept: int = 0
    dropped: int = 0  # nearly empty silhouettes
    status: str = "ok"
    error: str = ""


@dataclass
class AlignReport:
    out: str
    fingerprint: str
    skipped: bool = False  # the file was up to date: no work done
    sequences: list[SequenceReport] = field(default_factory=list)

    def by_status(self, status: str) -> list[SequenceReport]:
        return [s for s in self.sequences if s.status == status]

    @property
    def frames_kept(self) -> int:
        return sum(s.kept for s in self.sequences if s.status == "ok")

    @property
    def frames_dropped(self) -> int:
        return sum(s.dropped for s in self.sequences)

    def summary(self) -> str:
        if self.skipped:
            head = f"{self.out} is up to date ({len(self.by_status('ok'))} sequences); nothing to do (--overwrite redoes it)"
        else:
            head = f"wrote {self.out}: {len(self.by_status('ok'))} sequences, {self.frames_kept} frames"
        lines = [head, f"  frames dropped (nearly empty silhouette): {self.frames_dropped}"]
        short = self.by_status("too_short")
        if short:
            lines.append(
                f"  too short, left out ({len(short)}): " + ", ".join(f"{s.key} ({s.kept} frames)" for s in short)
            )
        for s in self.by_status("failed"):
            lines.append(f"  failed: {s.cache}: {s.error}")
        return "\n".join(lines)

    def to_json(self) -> str:
        return json.dumps(
            {"out": self.out, "fingerprint": self.fingerprint, "sequences": [asdict(s) for s in self.sequences]},
            indent=1,
        )

    @classmethod
    def from_json(cls, text: str) -> AlignReport:
        data = json.loads(text)
        return cls(data["out"], data["fingerprint"], sequences=[SequenceReport(**s) for s in data["sequences"]])


def report_path(out: str | Path) -> Path:
    """``cache/aligned.h5`` -> ``cache/aligned.report.json``."""
    out = Path(out)
    return out.with_name(out.stem + ".report.json")


def inputs_fingerprint(caches: list[Path], cache_dir: Path, settings: AlignSettings) -> str:
    """Hash of every input cache's relative path, size and mtime, plus the settings: cheap, no file opened."""
    items = []
    for path in caches:
        st = path.stat()
        items.append([str(path.relative_to(cache_dir)), st.st_size, st.st_mtime_ns])
    blob = json.dumps({"inputs": items, "settings": settings.to_dict(), "code": ALIGN_CODE_VERSION}, sort_keys=True)
    return hashlib.sha256(blob.encode()).hexdigest()[:32]


def align_cache(path: Path, settings: AlignSettings, cwd: str | None = None) -> tuple[SequenceReport, AlignedSequence | None]:
    """Read and align one cache. Never raises on bad input: the error goes into the report.

    ``cwd``: the folder a relative video path in the cache is taken from (the caller's, since a
    worker process may have started elsewhere)."""
    report = SequenceReport(cache=str(path))
    try:
        cache = read_video_cache(path)
        report.key = cache.id.key
        report.frames_in = len(cache)
        seq, kept = align_video_cache(cache, settings, cwd=cwd)
    except (OSError, ValueError, KeyError) as exc:
        report.status, report.error = "failed", str(exc)
        return report, None
    report.kept, report.dropped = int(kept.sum()), int((~kept).sum())
    if seq is None:
        report.status = "too_short"
    return report, seq


def _is_up_to_date(out: Path, fingerprint: str) -> bool:
    if not out.is_file():
        return False
    try:
        with AlignedReader(out) as reader:
            return reader.settings.get("fingerprint") == fingerprint
    except AlignedFormatError:
        return False


def run_align(
    cache_dir: str | Path = "cache",
    out: str | Path | None = None,
    settings: AlignSettings | None = None,
    workers: int = 1,
    overwrite: bool = False,
    quiet: bool = False,
) -> AlignReport:
    """Align every cache under ``cache_dir/videos`` into ``out`` (default ``cache_dir/aligned.h5``)."""
    cache_dir = Path(cache_dir)
    settings = settings or AlignSettings()
    out = Path(out) if out is not None else cache_dir / "aligned.h5"
    caches = list_caches(cache_dir)
    if not caches:
        raise FileNotFoundError(
            f"{cache_dir / 'videos'}: no per-video caches found (run `depthgait-prep extract` first)"
        )
    fingerprint = inputs_fingerprint(caches, cache_dir, settings)
    if not overwrite and _is_up_to_date(out, fingerprint):
        rp = report_path(out)
        report = AlignReport.from_json(rp.read_text()) if rp.is_file() else AlignReport(str(out), fingerprint)
        report.skipped = True
        return report

    report = AlignReport(str(out), fingerprint)
    meta: dict[str, Any] = {
        "stage": "align",
        "fingerprint": fingerprint,
        "align": settings.to_dict(),
        "inputs": len(caches),
    }
    here = str(Path.cwd())
    jobs = Parallel(n_jobs=workers, return_as="generator")(delayed(align_cache)(p, settings, here) for p in caches)
    seen: dict[str, str] = {}
    with AlignedWriter(out, meta) as writer:
        for seq_report, seq in progress(jobs, total=len(caches), desc="align", unit="seq", disable=quiet):
            if seq is not None and seq.id.key in seen:
                seq_report.status = "failed"
                seq_report.error = f"sequence {seq.id.key} is also in {seen[seq.id.key]}"
                seq = None
            if seq is not None:
                seen[seq.id.key] = seq_report.cache
                writer.add(seq)
            report.sequences.append(seq_report)
    write_text_atomic(report_path(out), report.to_json())
    return report


