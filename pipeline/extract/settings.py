"""What an extract run does: the backends, their weights, batch size, crop margin, depth input.

``ExtractSettings`` is the one source of the extract options: the CLI's shared options take their
defaults from it. ``recorded()`` is what shapes the output and so goes into each cache's fingerprint
(device, threads and batch size do not); ``check_weights()`` resolves every weight before any video is touched.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.depth import DEFAULT_DEPTH_MODEL
from pipeline.errors import InputError
from pipeline.extract.weights import resolve_hf_model, resolve_sam_checkpoint, resolve_yolo_weights
from pipeline.geometry import CANVAS

DETECTORS = ("bgsub", "yolo")
SEGMENTERS = ("bgsub", "sam", "yolo-seg")
TRACK_MODES = ("longest", "all")
TRACKERS = ("bytetrack", "botsort")
# How raw tracks become people (cut, re-link, colour split; pipeline/extract/track*.py). It is fingerprinted for
# --tracks all only, so a change to it redoes footage caches and leaves dataset caches alone. Bump it when the
# tracks that linking keeps change. 2: trajectories, colour split, edge-aware re-linking, height-jump cut, walk fill.
# 3: a blob showing two heads is no gait frame (pipeline/extract/blob_heads.py). 4: nor is a box too tall for one
# person at its foot row (pipeline/extract/ground_height.py). 5: a hidden person comes back within 1.2 s, not 30
# frames (3 s at 10 frames/s), and an end in others' blobs is compared on its colours from before it went in.
# 6: a track seen only inside others' blobs for longer than that is cut there unless its two sides join (split_blind).
# 7: a part cut at a column from a walker pressed against it is no gait frame (track_stream.touching).
# 8: nor is a stretch of a kept track a step taller than its walker on both sides (HeightLine.taller_than_walker).
# 9: nor is a whole blob with over 1.6x one person's foreground at its foot row (HeightLine.too_full).
# 10: a person still standing where a piece ended is not the walker who begins later (track_link.still_there),
# and a kept frame between two merged ones is merged (track_link.between_merges).
# 11: a piece of under 5 frames joined on one side only (a track's first or last) is no gait frame (track_link._unsure).
# 12: a lone kept frame is judged by its nearest frames that are not interpolated (track_link.between_merges),
# and a side too short to compare beyond a long blind stretch is no gait frame (track_link.split_blind).
TRACK_LINKING = 12
# How background subtraction finds the foreground (pipeline/extract/bgsub.py), fingerprinted wherever bgsub runs.
# 2: each frame is relit to the background's light, and thin clutter (a fluttering tape) is removed.
BACKGROUND_MODEL = 2


@dataclass(frozen=True)
class ExtractSettings:
    detector: str = "bgsub"  # bgsub | yolo
    detector_weights: str = "yolo11n.pt"
    segmenter: str = "bgsub"  # bgsub | sam | yolo-seg
    sam: str = "vit_b"
    seg_weights: str = "yolo11n-seg.pt"
    depth: str = DEFAULT_DEPTH_MODEL
    device: str = "auto"  # auto | cpu | cuda: resolved by pipeline.device when the models load
    batch_size: int = 16
    margin: float = 0.1  # share of the box's width/height added on each side of the crop
    depth_input_height: int | None = None  # None: the depth model's own size, at most 266 (pipeline.depth.estimator)
    depth_input_aspect: float = 0.6  # width / height of the depth model's input
    background_frames: int = 64  # frames sampled for the median background
    # Intra-op threads per process (main and each worker), whatever --workers: float reductions
    # split over threads, so the bytes of depth depend on it (stored in each cache as "compute").
    threads: int = 4
    half: bool = True  # fp16 autocast on CUDA for detection, segmentation and depth (no effect on a CPU)
    # longest: one track per video (a dataset video holds one walker); all: one sequence per person
    # track (pipeline.extract.track); None: longest, or all with --layout footage.
    tracks: str | None = None
    tracker: str = "bytetrack"  # bytetrack | botsort (ultralytics' trackers), with tracks="all"

    def __post_init__(self) -> None:
        if self.detector not in DETECTORS:
            raise InputError(f"unknown detector {self.detector!r} (choose bgsub or yolo)")
        if self.segmenter not in SEGMENTERS:
            raise InputError(f"unknown segmenter {self.segmenter!r} (choose bgsub, sam or yolo-seg)")
        if self.tracks not in (None, *TRACK_MODES):
            raise InputError(f"unknown --tracks {self.tracks!r} (choose longest or all)")
        if self.tracker not in TRACKERS:
            raise InputError(f"unknown tracker {self.tracker!r} (choose bytetrack or botsort)")
        if self.batch_size < 1:
            raise InputError(f"batch size must be >= 1, got {self.batch_size}")
        if self.threads < 1:
            raise InputError(f"threads must be >= 1, got {self.threads}")
        if not 0 <= self.margin <= 1:
            raise InputError(f"margin must be in [0, 1], got {self.margin}")

    @property
    def track_mode(self) -> str:
        return self.tracks or "longest"

    @property
    def needs_background(self) -> bool:
        return "bgsub" in (self.detector, self.segmenter)

    def recorded(self) -> dict[str, Any]:
        """What shapes the output (stored in the cache and fingerprinted); device, threads and batch size do not."""
        rec: dict[str, Any] = {"detector": self.detector, "segmenter": self.segmenter, "depth_model": self.depth}
        if self.detector == "yolo":
            rec["detector_weights"] = self.detector_weights
        if self.segmenter == "sam":
            rec["sam"] = self.sam
        if self.segmenter == "yolo-seg":
            rec["seg_weights"] = self.seg_weights
        if self.needs_background:
            rec["background_frames"] = self.background_frames
            rec["background_model"] = BACKGROUND_MODEL
        if self.track_mode == "all":  # absent for "longest": caches made before --tracks stay current
            from dataclasses import asdict

            from pipeline.extract.track import TrackFilter

            rec.update(tracks="all", tracker=self.tracker, track_filter=asdict(TrackFilter()), track_linking=TRACK_LINKING)
        rec.update(
            margin=self.margin, canvas=list(CANVAS), depth_input_height=self.depth_input_height,
            depth_input_aspect=self.depth_input_aspect,
        )
        return rec

    def check_weights(self) -> None:
        """Resolve every weight without loading it: a missing one fails before any video is touched."""
        resolve_hf_model(self.depth)
        if self.detector == "yolo":
            resolve_yolo_weights(self.detector_weights)
        if self.segmenter == "sam":
            resolve_sam_checkpoint(self.sam)
        if self.segmenter == "yolo-seg":
            resolve_yolo_weights(self.seg_weights)
