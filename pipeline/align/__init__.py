"""``depthgait-prep align``: caches -> aligned silhouette and depth sequences (OpenGait's pretreatment).

The public API: ``AlignSettings``, ``align_frames`` (the maths), ``align_video_cache`` (one cache,
used by align, inference and the SUSTech1K importer alike) and ``run_align`` (the batch).
"""
from pipeline.align.batch import AlignReport, run_align
from pipeline.align.frames import AlignSettings, align_frames, align_video_cache

__all__ = ["AlignReport", "AlignSettings", "align_frames", "align_video_cache", "run_align"]
