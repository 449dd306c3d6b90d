"""The detector, segmenter and depth model an extract run needs, loaded once per process.

joblib workers keep theirs between videos, so a batch of a thousand videos loads each model once
per worker, not once per video.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.extract.detect import make_detector
from pipeline.extract.settings import ExtractSettings


@dataclass
class Models:
    detector: Any
    segmenter: Any
    depth: Any
_MODELS: dict[ExtractSettings, Models] = {}  # one set per process (joblib workers keep theirs)


def load_models(settings: ExtractSettings) -> Models:
    """Load (once per process) the detector, segmenter and depth model the settings name."""
    if settings not in _MODELS:
        from pipeline.depth.estimator import DepthEstimator
        from pipeline.device import resolve_device
        from pipeline.extract.segment import make_segmenter

        device = resolve_device(settings.device)
        half = settings.half and device.startswith("cuda")
        _MODELS[settings] = Models(
            detector=make_detector(settings.detector, settings.detector_weights, device=device,
                                   **({"half": half} if settings.detector != "bgsub" else {})),
            segmenter=make_segmenter(settings.segmenter, settings.sam, settings.seg_weights, device=device,
                                     **({"half": half} if settings.segmenter != "bgsub" else {})),
            depth=DepthEstimator(
                settings.depth, device, settings.depth_input_height, settings.batch_size,
                settings.depth_input_aspect, half=half,
            ),
        )
    return _MODELS[settings]
