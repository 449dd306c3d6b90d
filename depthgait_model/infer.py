"""Use a trained model on people's own videos: ``embed`` a gallery, ``identify`` the people of a video.

The whole chain runs in memory, with the same code as the offline pipeline: ``pipeline.extract``
(decode, detect, one track, segment, depth on the crop), ``pipeline.align`` (OpenGait alignment
of silhouette and depth together) and ``depthgait_model.embeddings`` (the network over all frames).
Nothing is written between the stages. The network and the extract models are loaded once per
``Inference`` and reused for every video. Sequences can also come from an existing ``aligned.h5``.
"""
from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from depthgait_model.embeddings import Embeddings, embed_aligned
from depthgait_model.identify import (  # Match and rank_identities are re-exported for older callers
    Match,
    TrackIdentity,
    TrackProbe,
    check_gallery,
    model_fingerprint,
    rank_identities,
    rank_tracks,
)
from pipeline.align.frames import AlignSettings, align_video_cache
from pipeline.errors import DepthgaitError, Failure, InputError
from pipeline.extract import ExtractSettings, StageError, find_videos, identify, load_models
from pipeline.extract.job import extract_tracks
from pipeline.formats.aligned import AlignedReader, AlignedSequence
from pipeline.manifest import Manifest, ManifestError, SequenceId
from pipeline.progress import progress

__all__ = ["Inference", "Match", "NoPersonError", "embed_inputs", "identify_video", "rank_identities"]

ALIGNED_SUFFIXES = (".h5", ".hdf5")


class NoPersonError(DepthgaitError, ValueError):
    """The video held no usable walking person (none found, or too few usable frames)."""


class MemoryReader:
    """In-memory sequences behind the ``AlignedReader`` calls that ``embed_aligned`` makes."""

    def __init__(self, seqs: Sequence[AlignedSequence], name: str = "<videos>") -> None:
        self.path = Path(name)
        self._seqs = {s.id: s for s in seqs}

    def ids(self) -> list[SequenceId]:
        return list(self._seqs)

    def length(self, seq: SequenceId) -> int:
        return len(self._seqs[seq].frames)

    def has_depth(self, seq: SequenceId) -> bool:
        return self._seqs[seq].depth is not None

    def load(self, seq: SequenceId) -> AlignedSequence:
        return self._seqs[seq]


class Inference:
    """A trained model plus the extract models; both loaded once, used for many videos.

    ``device`` follows the one policy (``pipeline.device``: auto = CUDA when present); the extract models
    run on the same device.
    """

    def __init__(
        self,
        checkpoint: str | Path,
        device: str = "auto",
        extract: ExtractSettings | None = None,
        align: AlignSettings | None = None,
        which: str = "fc",
        quiet: bool = False,
    ) -> None:
        from depthgait_model.checkpoint import load_model
        from pipeline.device import resolve_device

        device = self.device = resolve_device(device)
        self.model, self.run_config, self.meta = load_model(checkpoint, device)
        self.extract = extract or ExtractSettings(device=device)
        self.align = align or AlignSettings()
        self.which, self.quiet = which, quiet
        self.checkpoint = Path(checkpoint)
        self._models: Any = None
        self._fingerprint: str | None = None

    @property
    def fingerprint(self) -> str:
        """The model's fingerprint, recorded in every gallery it embeds (``depthgait_model.identify``)."""
        if self._fingerprint is None:
            self._fingerprint = model_fingerprint(self.model, self.run_config, self.which)
        return self._fingerprint

    def check_gallery(self, gallery: Embeddings, name: str) -> str | None:
        """Refuse a gallery embedded by another model; a warning line when it records none."""
        return check_gallery(gallery, self.fingerprint, name, str(self.checkpoint))

    @property
    def uses_depth(self) -> bool:
        return "depth" in self.run_config.model.modalities

    def models(self) -> Any:
        """The detector, segmenter and depth model, loaded on the first video only."""
        if self._models is None:
            self.extract.check_weights()
            self._models = load_models(self.extract)
        return self._models

    # ---- one video -> one aligned sequence ---------------------------------------------------------
    def sequence_from_video(self, video: str | Path, seq: SequenceId) -> AlignedSequence:
        """The video's person as one aligned sequence (its first track: a gallery video holds one walker)."""
        return self.tracks_from_video(video, seq)[0].sequence

    def tracks_from_video(self, video: str | Path, seq: SequenceId) -> list[TrackProbe]:
        """Every usable person track of one video: its one walker (``--tracks longest``), or every
        person track (``--tracks all``); a track too short once aligned is left out."""
        video = Path(video)
        if not video.exists():
            raise FileNotFoundError(f"{video}: no such video")
        try:
            caches, _ = extract_tracks(video, seq, self.extract, self.models())
        except StageError as exc:
            if exc.stage == "detect":
                raise NoPersonError(f"{video}: no usable person ({exc})") from exc
            raise InputError(f"{video}: {exc.stage} failed: {exc}") from exc
        probes, kept_frames = [], []
        for cache in caches:
            aligned, kept = align_video_cache(cache, self.align, with_depth=self.uses_depth)
            kept_frames.append(int(kept.sum()))
            if aligned is not None:
                probes.append(TrackProbe(aligned.track, aligned, cache.frames, cache.box))
        if not probes:
            raise NoPersonError(
                f"{video}: no usable person: at most {max(kept_frames)} of {caches[0].n_frames} frames of a track hold "
                f"a usable silhouette (at least {self.align.min_frames} needed)"
            )
        return probes

    def identify_tracks(self, probes: Sequence[TrackProbe], gallery: Embeddings, top_k: int = 5,
                        metric: str = "euc", max_distance: float | None = None) -> list[TrackIdentity]:
        """Embed every track's sequence and rank it against the gallery."""
        if not probes:
            return []
        # Tracks of one video may share a sequence id; embed them under distinct ones.
        seqs = [replace(p.sequence, id=SequenceId(f"track-{i}", "probe", "probe")) for i, p in enumerate(probes)]
        emb = self.embed_sequences(seqs)
        return rank_tracks(probes, emb.embeddings, gallery, top_k, metric, max_distance)

    # ---- embeddings -----------------------------------------------------------------------------------
    def embed_sequences(self, seqs: Sequence[AlignedSequence], name: str = "<videos>") -> Embeddings:
        reader = MemoryReader(seqs, name)
        return embed_aligned(
            self.model, reader, reader.ids(), self.device, self.which, cut=self.run_config.data.cut, quiet=True
        )  # type: ignore[arg-type]

    def embed_file(self, aligned: str | Path) -> Embeddings:
        """Every sequence of an aligned file."""
        with AlignedReader(aligned) as reader:
            return embed_aligned(
                self.model, reader, reader.ids(), self.device, self.which, cut=self.run_config.data.cut, quiet=self.quiet
            )

    def embed_videos(self, items: Sequence[tuple[Path, SequenceId]]) -> tuple[Embeddings | None, list[Failure]]:
        """Embed identified videos; an unusable video is a ``Failure``, not an error."""
        seqs, failed = [], []
        for video, seq in progress(items, desc="videos", unit="video", disable=self.quiet):
            try:
                seqs.append(self.sequence_from_video(video, seq))
            except (ValueError, OSError) as exc:
                failed.append(Failure(str(video), "embed", str(exc)))
        return (self.embed_sequences(seqs) if seqs else None), failed


def concat(parts: Iterable[Embeddings]) -> Embeddings:
    parts = list(parts)
    return Embeddings(
        embeddings=np.concatenate([p.embeddings for p in parts]),
        labels=np.concatenate([p.labels for p in parts]),
        types=np.concatenate([p.types for p in parts]),
        views=np.concatenate([p.views for p in parts]),
    )


@dataclass
class EmbedResult:
    embeddings: Embeddings
    failed: list[Failure] = field(default_factory=list)


def embed_inputs(inf: Inference, inputs: Sequence[str | Path], manifest: Manifest, layout: str = "names") -> EmbedResult:
    """Embed videos, folders of videos and aligned files; identities from names, folders or a CSV."""
    parts: list[Embeddings] = []
    failed: list[Failure] = []
    items: list[tuple[Path, SequenceId]] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_file() and path.suffix.lower() in ALIGNED_SUFFIXES:
            parts.append(inf.embed_file(path))
            continue
        if path.is_dir():
            videos, root = find_videos(path, manifest), path
            if not videos:
                failed.append(Failure(str(path), "discover", f"{path}: no videos ({', '.join(manifest.extensions)}) found"))
        elif path.is_file():
            videos, root = [path], path.parent
        else:
            raise FileNotFoundError(f"{path}: no such video, folder or aligned file")
        found, bad = identify(videos, root, manifest, layout)
        items.extend(found)
        failed.extend(Failure(str(v), "identify", why) for v, why in bad)
    if items:
        emb, bad_videos = inf.embed_videos(items)
        failed.extend(bad_videos)
        if emb is not None:
            parts.append(emb)
    if not parts:
        first = failed[0].error if failed else "no inputs"
        raise InputError(f"nothing to embed: {first}")
    embeddings = concat(parts)
    embeddings.fingerprint = inf.fingerprint  # a gallery names the model that made it
    return EmbedResult(embeddings, failed)


# ---- identification -------------------------------------------------------------------------------
def identify_video(
    inf: Inference, gallery: Embeddings, video: str | Path, manifest: Manifest | None = None,
    top_k: int = 5, metric: str = "euc", max_distance: float | None = None,
) -> tuple[list[TrackProbe], list[TrackIdentity]]:
    """Every person track of ``video`` and its ranking against the gallery; ``NoPersonError`` when there is none."""
    video = Path(video)
    probes = inf.tracks_from_video(video, _probe_id(video, manifest))
    return probes, inf.identify_tracks(probes, gallery, top_k, metric, max_distance)


def _probe_id(video: Path, manifest: Manifest | None) -> SequenceId:
    """The probe's identity when its name tells it (used to find a background video beside it)."""
    if manifest is not None:
        try:
            return manifest.identify(video)
        except ManifestError:
            pass
    return SequenceId("probe", "probe", video.stem)

