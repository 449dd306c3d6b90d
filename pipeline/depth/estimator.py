"""Monocular depth of person crops with a transformers depth model (Depth Anything V2, DPT, ...).

The model runs on the person crop, not the frame: a 266 px crop costs ~0.14 s on a CPU against
1.34 s for a 518x518 frame, and the person gets all the resolution. Crops of a video differ in
size, so each is scaled uniformly onto one fixed input size (edge-replicated padding, sides a
multiple of the patch size) and the batch runs as one tensor. The valid part of the output is
then scaled onto the cache canvas with the same geometry as the silhouette (``pack_canvas``), so
canvas pixel (i, j) of depth and mask is the same point of the crop.
"""
from __future__ import annotations

import math
from typing import Any

import cv2
import numpy as np

from pipeline.depth import DEFAULT_DEPTH_MODEL
from pipeline.extract.weights import MissingWeightsError, resolve_hf_model
from pipeline.geometry import CANVAS, fit_size, fit_to_input


def _round_to(x: float, multiple: int) -> int:
    return max(multiple, int(round(x / multiple)) * multiple)


# Crop height for large models trained at 518 px (Depth Anything): a walker's crop rarely has more detail.
DEFAULT_INPUT_HEIGHT = 266


class DepthEstimator:
    """Load once, then ``estimate(crops)`` for any number of RGB crops, ``batch_size`` per forward."""

    def __init__(
        self,
        model: str = DEFAULT_DEPTH_MODEL,
        device: str = "cpu",
        input_height: int | None = None,
        batch_size: int = 16,
        input_aspect: float = 0.6,
        half: bool = False,
    ) -> None:
        """``input_aspect`` (width / height of the model input): a walker's crop with its margin is about
        0.5; a wider crop is scaled down to fit. The same input size for every crop keeps a frame's
        depth independent of the other crops in its batch. ``input_height=None`` uses the model's own
        input geometry (its processor's size) when that is at most ``DEFAULT_INPUT_HEIGHT`` (a small
        model trained on crops, such as the shipped one), else ``DEFAULT_INPUT_HEIGHT`` at ``input_aspect``."""
        import torch
        from transformers import AutoImageProcessor, AutoModelForDepthEstimation

        source = resolve_hf_model(model)
        try:
            self.processor: Any = AutoImageProcessor.from_pretrained(source)
            self.model: Any = AutoModelForDepthEstimation.from_pretrained(source).to(device).eval()
        except (OSError, ValueError) as exc:
            raise MissingWeightsError(f"depth model {model!r} cannot be loaded: {str(exc).splitlines()[0]}") from exc
        self.name, self.device, self.batch_size = model, device, batch_size
        cfg = self.model.config
        patch = getattr(cfg, "patch_size", None) or getattr(getattr(cfg, "backbone_config", None), "patch_size", None) or 16
        multiple = math.lcm(int(getattr(self.processor, "ensure_multiple_of", 1) or 1), int(patch))
        self.input_hw = self._input_size(input_height, input_aspect, multiple)
        # Relative models (Depth Anything, DPT) predict inverse depth (near = large); metric ones metres.
        self.near_is_large = getattr(cfg, "depth_estimation_type", "relative") != "metric" and cfg.model_type != "zoedepth"
        self._torch = torch
        self.half = half and str(device).startswith("cuda")  # fp16 autocast of the forward (CUDA only)

    def _input_size(self, input_height: int | None, input_aspect: float, multiple: int) -> tuple[int, int]:
        """Portrait model input (height, width), both sides a multiple of the patch size."""
        size = getattr(self.processor, "size", None) or {}
        native_h, native_w = size.get("height"), size.get("width")
        if input_height is None and native_h and native_w and native_h <= DEFAULT_INPUT_HEIGHT:
            return _round_to(native_h, multiple), _round_to(native_w, multiple)  # the geometry it was trained at
        height = input_height or DEFAULT_INPUT_HEIGHT
        return _round_to(height, multiple), _round_to(height * input_aspect, multiple)

    def _prepare(self, crop: np.ndarray) -> tuple[np.ndarray, tuple[int, int]]:
        return fit_to_input(crop, self.input_hw)

    def estimate(self, crops: list[np.ndarray]) -> np.ndarray:
        """Raw model output for each RGB crop, packed on the cache canvas: float32 [N, 128, 96]."""
        torch = self._torch
        out = np.zeros((len(crops), *CANVAS), dtype=np.float32)
        for start in range(0, len(crops), self.batch_size):
            chunk = crops[start : start + self.batch_size]
            prepared = [self._prepare(c) for c in chunk]
            # Every forward has batch_size rows (the last chunk is padded with its last crop): at a fixed
            # shape a crop's output does not depend on the other crops, so the bytes do not either.
            images = [p for p, _ in prepared] + [prepared[-1][0]] * (self.batch_size - len(prepared))
            inputs = self.processor(images=images, return_tensors="pt", do_resize=False)
            pixels = inputs["pixel_values"].to(self.device)  # [B, 3, H_in, W_in]
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=self.half):
                pred = self.model(pixel_values=pixels).predicted_depth.float()  # [B, h, w]
                if tuple(pred.shape[-2:]) != self.input_hw:
                    pred = torch.nn.functional.interpolate(pred[:, None], size=self.input_hw, mode="bilinear")[:, 0]
            pred_np = pred.float().cpu().numpy()  # [B, H_in, W_in]
            for j, ((_, (h, w)), crop) in enumerate(zip(prepared, chunk, strict=False)):
                ch, cw = fit_size(crop.shape[0], crop.shape[1], CANVAS)
                interp = cv2.INTER_AREA if ch < h else cv2.INTER_LINEAR
                out[start + j, :ch, :cw] = cv2.resize(pred_np[j, :h, :w], (cw, ch), interpolation=interp)
        return out
