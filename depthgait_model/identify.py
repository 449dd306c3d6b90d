"""Identify the people of a video: every person track ranked against a gallery, open set.

A gallery is only meaningful for the model that embedded it: another checkpoint puts the same
person somewhere else in embedding space and silently gives a wrong ranking. So a gallery records
its model's fingerprint (``model_fingerprint``: a hash of the weights, buffers, recipe and which
embedding is used) and ``check_gallery`` refuses a mismatched checkpoint.

``rank_tracks`` turns per-track probe embeddings into the JSON structure ``depthgait identify
--json`` prints: one entry per track with its frames, box span and top-k identities; with
``max_distance`` a track whose nearest identity is farther than that is ``"unknown"``.
"""
from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

import numpy as np

from depthgait_model.embeddings import Embeddings
from pipeline.errors import DepthgaitError, InputError
from pipeline.formats.aligned import AlignedSequence

UNKNOWN = "unknown"


class GalleryMismatchError(DepthgaitError, ValueError):
    """The gallery was embedded by another model than the one given."""


def model_fingerprint(model, run_config, which: str = "fc") -> str:
    """sha256 of every state-dict tensor (name, dtype, shape, bytes), the recipe and the embedding used."""
    import torch

    digest = hashlib.sha256()
    digest.update(json.dumps({"config": run_config.to_dict(), "which": which}, sort_keys=True, default=str).encode())
    for name, tensor in sorted(model.state_dict().items()):
        data = tensor.detach().cpu().contiguous().reshape(-1)
        digest.update(f"{name}|{data.dtype}|{list(tensor.shape)}".encode())
        digest.update(data.view(torch.uint8).numpy().tobytes())
    return digest.hexdigest()


def check_gallery(gallery: Embeddings, fingerprint: str, gallery_name: str, checkpoint_name: str) -> str | None:
    """Raise ``GalleryMismatchError`` when the gallery names another model; a warning when it names none."""
    if gallery.fingerprint is None:
        return (f"{gallery_name} records no model fingerprint (made before galleries did, or by another tool): "
                f"cannot check it was embedded by {checkpoint_name}")
    if gallery.fingerprint != fingerprint:
        raise GalleryMismatchError(
            f"{gallery_name} was embedded by another model (fingerprint {gallery.fingerprint[:12]}) than "
            f"{checkpoint_name} ({fingerprint[:12]}): embed the gallery again with this checkpoint")
    return None


@dataclass
class TrackProbe:
    """One person track of a video: its aligned sequence and where it was (source frames and boxes)."""

    track_id: int
    sequence: AlignedSequence
    frames: np.ndarray  # int [N] source frames of the track
    boxes: np.ndarray  # float [N, 4] x0 y0 x1 y1

    def __post_init__(self) -> None:
        self.frames = np.asarray(self.frames, dtype=np.int64).reshape(-1)
        self.boxes = np.asarray(self.boxes, dtype=np.float64).reshape(-1, 4)
        if len(self.frames) != len(self.boxes) or not len(self.frames):
            raise InputError(f"track {self.track_id}: {len(self.frames)} frames and {len(self.boxes)} boxes")


@dataclass
class Match:
    label: str  # gallery subject
    distance: float  # smallest distance to any of that subject's gallery sequences
    type: str  # condition of the closest gallery sequence
    view: str  # view of the closest gallery sequence


@dataclass
class TrackIdentity:
    track: int
    frames: dict[str, int]  # first, last, count
    box_span: list[float]  # x0 y0 x1 y1 of the union of the track's boxes
    identity: str  # the nearest gallery subject, or "unknown" beyond max_distance
    matches: list[Match] = field(default_factory=list)

    @property
    def label(self) -> str:
        """What to draw: the identity with its distance."""
        if not self.matches:
            return UNKNOWN
        return f"{self.identity} {self.matches[0].distance:.2f}"


def rank_identities(probe: np.ndarray, gallery: Embeddings, top_k: int = 5, metric: str = "euc") -> list[Match]:
    """Gallery subjects ordered by their closest sequence to ``probe`` ([C, P] or [D]); the first ``top_k``."""
    from depthgait_model.metrics import distance_matrix

    if top_k < 1:
        raise InputError(f"top-k must be >= 1, got {top_k}")
    # Exact differences: a probe equal to a gallery sequence is at distance 0, as a threshold expects.
    dist = distance_matrix(probe[None], gallery.embeddings, metric, exact=True)[0].cpu().numpy()  # [M]
    best: dict[str, int] = {}
    for i in np.argsort(dist, kind="stable"):
        best.setdefault(str(gallery.labels[i]), int(i))
    ranked = list(best.items())[:top_k]
    return [Match(label, float(dist[i]), str(gallery.types[i]), str(gallery.views[i])) for label, i in ranked]


def rank_tracks(probes: Sequence[TrackProbe], embeddings: np.ndarray, gallery: Embeddings, top_k: int = 5,
                metric: str = "euc", max_distance: float | None = None) -> list[TrackIdentity]:
    """One ``TrackIdentity`` per probe; ``embeddings`` [N, ...] holds the probes' embeddings in order."""
    if len(embeddings) != len(probes):
        raise InputError(f"{len(probes)} tracks but {len(embeddings)} embeddings")
    if len(probes) and embeddings.shape[1:] != gallery.embeddings.shape[1:]:
        raise InputError(
            f"gallery embeddings are {list(gallery.embeddings.shape[1:])} but this model gives "
            f"{list(embeddings.shape[1:])}: the gallery was made with another model")
    if max_distance is not None and max_distance < 0:
        raise InputError(f"max distance must be >= 0, got {max_distance}")
    out = []
    for probe, emb in zip(probes, embeddings, strict=True):
        matches = rank_identities(emb, gallery, top_k, metric)
        known = max_distance is None or matches[0].distance <= max_distance
        out.append(TrackIdentity(
            track=int(probe.track_id),
            frames={"first": int(probe.frames.min()), "last": int(probe.frames.max()), "count": len(probe.frames)},
            box_span=[float(probe.boxes[:, 0].min()), float(probe.boxes[:, 1].min()), float(probe.boxes[:, 2].max()),
                      float(probe.boxes[:, 3].max())],
            identity=matches[0].label if known else UNKNOWN, matches=matches,
        ))
    return out


def identify_json(video: str, tracks: Sequence[TrackIdentity], metric: str, max_distance: float | None) -> dict:
    """The structure ``depthgait identify --json`` prints."""
    return {"video": video, "metric": metric, "max_distance": max_distance, "tracks": [asdict(t) for t in tracks]}
