"""``depthgait-prep extract``: RGB videos -> one per-video cache of box, silhouette and depth.

The public API (what ``depthgait_model.infer`` and scripts use): ``ExtractSettings``,
``load_models``, ``extract_video`` (one video in memory), ``extract_to_cache`` (one video streamed
into its cache file), ``StageError``, ``find_videos``, ``identify`` and ``run_extract`` (the
resumable, fault-tolerant batch; ``streams`` > 1 batches model calls across videos).
"""
from pipeline.extract.batch import ExtractSummary, run_extract
from pipeline.extract.discover import find_videos, identify
from pipeline.extract.job import StageError, extract_to_cache, extract_video
from pipeline.extract.models import Models, load_models
from pipeline.extract.settings import ExtractSettings

__all__ = [
    "ExtractSettings", "ExtractSummary", "Models", "StageError", "extract_to_cache", "extract_video", "find_videos",
    "identify",
    "load_models", "run_extract",
]
