"""Dataset manifests: layouts, splits and protocols as data (``data_manifests/*.yaml``).

One loader turns a manifest into typed records, maps a video path to its sequence identity
(subject, condition, view) and splits subjects into train and test, so that no protocol is
hard-coded in pipeline, trainer or evaluator code.
"""
from __future__ import annotations

import csv
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

from pipeline.errors import DepthgaitError
from pipeline.formats.yaml_file import read_yaml_mapping

MANIFEST_DIR = Path(__file__).resolve().parent.parent / "data_manifests"


class ManifestError(DepthgaitError, ValueError):
    """A manifest, or a file name that a manifest cannot place, is wrong; the message names it."""


class SequenceId(NamedTuple):
    """Identity of one walking sequence; also its group path in ``aligned.h5``."""

    subject: str
    condition: str
    view: str

    @property
    def key(self) -> str:
        return f"{self.subject}/{self.condition}/{self.view}"

    @classmethod
    def from_key(cls, key: str) -> SequenceId:
        parts = key.strip("/").split("/")
        if len(parts) != 3:
            raise ManifestError(f"sequence key {key!r} is not <subject>/<condition>/<view>")
        return cls(*parts)


@dataclass(frozen=True)
class Protocol:
    """How probes are matched against the gallery (``depthgait_model.protocols`` scores it)."""

    kind: str  # "cross-view" (CASIA-B: per probe/gallery view cell) or "condition" (SUSTech1K)
    gallery: tuple[str, ...]
    probes: dict[str, tuple[str, ...]]
    exclude_identical_view: bool = True
    ranks: tuple[int, ...] = (1,)
    metric: str = "euc"
    match: str = "exact"  # "exact": condition names; "keyword": the probe type contains the keyword


@dataclass(frozen=True)
class Manifest:
    name: str
    pattern: re.Pattern[str] | None
    skip: tuple[str, ...]
    extensions: tuple[str, ...]
    layout: str  # "names" (identity from the file name) or "folders" (<subject>/<condition>/<view>)
    views: tuple[str, ...]
    conditions: tuple[str, ...]
    protocol: Protocol
    train_ranges: tuple[str, ...] = ()
    test_ranges: tuple[str, ...] = ()
    train_share: float | None = None
    source: Path | None = field(default=None, compare=False)

    # ---- identity of files -------------------------------------------------------------
    def is_skipped(self, path: Path) -> bool:
        return any(token in path.name for token in self.skip)

    def identify(self, path: str | Path, root: str | Path | None = None) -> SequenceId:
        """Map a video path to its sequence identity; raise ``ManifestError`` naming the file."""
        path = Path(path)
        if self.layout == "folders":
            return identify_by_folders(path, root)
        if self.pattern is None:
            raise ManifestError(f"manifest {self.name!r} has no naming pattern to place {path}")
        match = self.pattern.match(path.stem)
        if not match:
            raise ManifestError(
                f"{path}: name does not fit the {self.name} naming {self.pattern.pattern!r} "
                "(use --layout folders or --layout CSV for other layouts)"
            )
        return SequenceId(match["subject"], match["condition"], match["view"])

    # ---- splits ---------------------------------------------------------------------------
    def split_subjects(self, subjects: Iterable[str]) -> tuple[list[str], list[str]]:
        """Split the subjects present in the data into (train, test), sorted."""
        present = sorted(set(subjects))
        if self.train_share is not None:
            if len(present) < 2:
                raise ManifestError(f"manifest {self.name!r}: a share split needs >= 2 subjects, got {present}")
            n_train = min(max(1, round(len(present) * self.train_share)), len(present) - 1)
            return present[:n_train], present[n_train:]
        train = [s for s in present if in_ranges(s, self.train_ranges)]
        test = [s for s in present if in_ranges(s, self.test_ranges)]
        return train, test


def in_ranges(subject: str, ranges: Sequence[str]) -> bool:
    """True when ``subject`` lies in one of the ranges ``'001-074'`` or single ids ``'005'``."""
    for spec in ranges:
        lo, _, hi = str(spec).partition("-")
        hi = hi or lo
        if subject.isdigit() and lo.isdigit():
            if int(lo) <= int(subject) <= int(hi):
                return True
        elif lo <= subject <= hi:
            return True
    return False


def identify_by_folders(path: Path, root: str | Path | None = None) -> SequenceId:
    """``<subject>/<condition>/<view>.<ext>`` (or ``.../<view>/`` for a folder of frames)."""
    rel = path.relative_to(root) if root is not None else path
    parts = rel.with_suffix("").parts if rel.suffix else rel.parts
    if len(parts) < 3:
        raise ManifestError(f"{path}: expected <subject>/<condition>/<view> under {root or 'the root'}")
    return SequenceId(*parts[-3:])


def read_identity_csv(csv_path: str | Path) -> dict[Path, SequenceId]:
    """Read ``path,subject,condition,view`` rows; paths are relative to the CSV's folder."""
    csv_path = Path(csv_path)
    table: dict[Path, SequenceId] = {}
    with csv_path.open(newline="") as handle:
        for line_no, row in enumerate(csv.DictReader(handle), start=2):
            try:
                video = Path(row["path"])
                ident = SequenceId(row["subject"].strip(), row["condition"].strip(), row["view"].strip())
            except (KeyError, AttributeError) as exc:
                raise ManifestError(f"{csv_path}:{line_no}: needs columns path,subject,condition,view") from exc
            table[(csv_path.parent / video).resolve() if not video.is_absolute() else video] = ident
    return table


def load_manifest(name_or_path: str | Path) -> Manifest:
    """Load a shipped manifest by name (``casia-b``) or any YAML file by path; unknown keys are errors."""
    path = Path(name_or_path)
    if not path.suffix:
        path = MANIFEST_DIR / f"{name_or_path}.yaml"
    if not path.is_file():
        shipped = ", ".join(sorted(p.stem for p in MANIFEST_DIR.glob("*.yaml")))
        raise ManifestError(f"no manifest {name_or_path!r} (shipped: {shipped}; or give a YAML path)")
    raw = read_yaml_mapping(path, ManifestError, "manifest keys", empty_ok=True)
    try:
        return _manifest_from(raw, path)
    except (TypeError, ValueError, AttributeError, re.error) as exc:
        if isinstance(exc, ManifestError):
            raise
        raise ManifestError(f"{path}: malformed manifest ({type(exc).__name__}: {exc})") from exc


def _manifest_from(raw: dict, path: Path) -> Manifest:
    _check_keys(raw, {"name", "naming", "views", "conditions", "split", "protocol"}, path, "")
    naming = raw.get("naming", {})
    _check_keys(naming, {"pattern", "skip", "extensions", "layout"}, path, "naming.")
    split = raw.get("split", {})
    _check_keys(split, {"train", "test", "train_share"}, path, "split.")
    proto = raw.get("protocol", {})
    _check_keys(
        proto, {"kind", "gallery", "probes", "exclude_identical_view", "ranks", "metric", "match"}, path, "protocol."
    )
    try:
        protocol = Protocol(
            kind=proto["kind"],
            gallery=tuple(proto["gallery"]),
            probes={k: tuple(v) for k, v in proto["probes"].items()},
            exclude_identical_view=bool(proto.get("exclude_identical_view", True)),
            ranks=tuple(int(r) for r in proto.get("ranks", [1])),
            metric=proto.get("metric", "euc"),
            match=proto.get("match", "exact"),
        )
    except KeyError as exc:
        raise ManifestError(f"{path}: protocol needs {exc.args[0]!r}") from exc
    conditions = tuple(raw.get("conditions", ()))
    named = (*protocol.gallery, *(c for probe in protocol.probes.values() for c in probe))
    unknown = [c for c in named if conditions and protocol.match == "exact" and c not in conditions]
    if unknown:
        raise ManifestError(f"{path}: protocol condition {unknown[0]!r} is not among conditions {list(conditions)}")
    pattern = naming.get("pattern")
    return Manifest(
        name=raw.get("name", path.stem),
        pattern=re.compile(pattern) if pattern else None,
        skip=tuple(naming.get("skip", ())),
        extensions=tuple(naming.get("extensions", (".avi", ".mp4", ".mkv", ".mov"))),
        layout=naming.get("layout", "names"),
        views=tuple(str(v) for v in raw.get("views", ())),
        conditions=conditions,
        protocol=protocol,
        train_ranges=tuple(str(s) for s in split.get("train", ())),
        test_ranges=tuple(str(s) for s in split.get("test", ())),
        train_share=split.get("train_share"),
        source=path,
    )


def _check_keys(section: dict, allowed: set[str], path: Path, prefix: str) -> None:
    if not isinstance(section, dict):
        raise ManifestError(f"{path}: {prefix.rstrip('.') or 'top level'} must be a mapping")
    unknown = sorted(set(section) - allowed)
    if unknown:
        raise ManifestError(f"{path}: unknown key {prefix}{unknown[0]} (allowed: {', '.join(sorted(allowed))})")
