"""Silhouettes inside person boxes: segment-anything, YOLO-seg, or background subtraction.

Every segmenter is called on a frame batch with the boxes of each frame,
``(frames uint8 [B, H, W, 3] BGR, boxes list of float32 [K, 4]) -> list of bool [K, H, W]``,
so the model-backed ones run one batched forward per frame batch:
- ``sam``: the image encoder runs on the whole batch at once (it dominates the cost: ~18 s per
  1024 px frame on a CPU, so it is a GPU backend), and each frame's boxes prompt the decoder together;
- ``yolo-seg``: one batched ultralytics call; each box takes the predicted person mask whose box
  overlaps it most;
- ``bgsub``: the video's frozen background model (``pipeline.extract.bgsub``), foreground inside the box.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from pipeline.errors import InputError
from pipeline.extract.bgsub import BackgroundModel
from pipeline.extract.weights import SAM_EMBED_DIMS, MissingWeightsError, resolve_sam_checkpoint, resolve_yolo_weights
from pipeline.geometry import box_iou


def _box_mask(shape: tuple[int, int], box: np.ndarray) -> np.ndarray:
    """bool [H, W], True inside the box (rounded outward)."""
    h, w = shape
    x0, y0 = max(0, int(np.floor(box[0]))), max(0, int(np.floor(box[1])))
    x1, y1 = min(w, int(np.ceil(box[2]))), min(h, int(np.ceil(box[3])))
    out = np.zeros((h, w), dtype=bool)
    out[y0:y1, x0:x1] = True
    return out


class BgSubSegmenter:
    """Foreground of the video's background model, restricted to each box."""

    name = "bgsub"

    def __init__(self) -> None:
        self.model: BackgroundModel | None = None

    def reset(self, background: BackgroundModel | None) -> None:
        self.model = background

    def __call__(self, frames: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
        if self.model is None:
            raise RuntimeError("BgSubSegmenter needs reset(BackgroundModel) before a video")
        out = []
        for frame, fb in zip(frames, boxes, strict=False):
            fg = self.model.foreground(frame)  # bool [H, W]
            out.append(np.stack([fg & _box_mask(fg.shape, b) for b in fb]) if len(fb) else np.zeros((0, *fg.shape), bool))
        return out


class YoloSegSegmenter:
    """ultralytics YOLO-seg person masks at frame resolution, matched to the prompt boxes by IoU."""

    name = "yolo-seg"

    def __init__(
        self, weights: str = "yolo11n-seg.pt", device: str = "cpu", conf: float = 0.25, imgsz: int = 640, min_iou: float = 0.3,
        half: bool = False,
    ) -> None:
        from ultralytics import YOLO

        self.model: Any = YOLO(resolve_yolo_weights(weights))
        self.device, self.conf, self.imgsz, self.min_iou = device, conf, imgsz, min_iou
        self.half = half and str(device).startswith("cuda")  # fp16 inference on CUDA

    def reset(self, background: Any = None) -> None:
        """Stateless across videos."""

    def __call__(self, frames: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
        results = self.model.predict(
            list(frames), classes=[0], conf=self.conf, imgsz=self.imgsz, device=self.device, retina_masks=True,
            verbose=False, **({"quantize": 16} if self.half else {}),
        )
        out = []
        for frame, fb, r in zip(frames, boxes, results, strict=False):
            masks = np.zeros((len(fb), *frame.shape[:2]), dtype=bool)
            if r.masks is not None and len(fb):
                pred = r.masks.data.cpu().numpy() > 0.5  # [N, H, W]
                iou = box_iou(np.asarray(fb, np.float32), r.boxes.xyxy.cpu().numpy())  # [K, N]
                best = iou.argmax(axis=1)
                for k in np.nonzero(iou[np.arange(len(fb)), best] >= self.min_iou)[0]:
                    masks[k] = pred[best[k]] & _box_mask(frame.shape[:2], fb[k])
            out.append(masks)
        return out


def load_sam(name_or_path: str = "vit_b") -> Any:
    """A segment-anything model from ``vit_b``/``vit_l``/``vit_h`` (official file names) or a .pth path;
    the size of a file with another name is read from its encoder width."""
    import torch
    from segment_anything import sam_model_registry

    model_type, path = resolve_sam_checkpoint(name_or_path)
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # noqa: BLE001 - any unpickling failure means "not a checkpoint"
        raise MissingWeightsError(f"SAM checkpoint {path}: cannot be read ({exc})") from exc
    if model_type is None:
        proj = state.get("image_encoder.patch_embed.proj.weight") if isinstance(state, dict) else None
        model_type = SAM_EMBED_DIMS.get(int(proj.shape[0])) if proj is not None else None
        if model_type is None:
            raise MissingWeightsError(f"SAM checkpoint {path}: not a vit_b/vit_l/vit_h segment-anything state dict")
    model = sam_model_registry[model_type]()
    try:
        model.load_state_dict(state)
    except RuntimeError as exc:
        raise MissingWeightsError(f"SAM checkpoint {path} does not fit {model_type}: {str(exc)[:300]}") from exc
    return model.eval()


class SamSegmenter:
    """Box-prompted segment-anything: one encoder pass per frame batch, all boxes of a frame per decoder call."""

    name = "sam"

    def __init__(self, sam: str = "vit_b", device: str = "cpu", model: Any = None, half: bool = False) -> None:
        """``half``: the model under fp16 autocast (CUDA only), the image encoder being most of its cost."""
        from segment_anything.utils.transforms import ResizeLongestSide

        self.model = (model if model is not None else load_sam(sam)).to(device).eval()
        self.device = device
        self.half = half and str(device).startswith("cuda")
        self.transform = ResizeLongestSide(self.model.image_encoder.img_size)

    def reset(self, background: Any = None) -> None:
        """Stateless across videos."""

    def __call__(self, frames: np.ndarray, boxes: list[np.ndarray]) -> list[np.ndarray]:
        import torch

        out: list[np.ndarray] = [np.zeros((len(b), *f.shape[:2]), dtype=bool) for f, b in zip(frames, boxes, strict=False)]
        batch, where = [], []
        for i, (frame, fb) in enumerate(zip(frames, boxes, strict=False)):
            if not len(fb):
                continue
            rgb = np.ascontiguousarray(frame[..., ::-1])
            image = torch.as_tensor(self.transform.apply_image(rgb), device=self.device)  # [h, w, 3] longest side = img_size
            prompt = self.transform.apply_boxes_torch(torch.as_tensor(np.asarray(fb, np.float32)), frame.shape[:2])
            batch.append({
                "image": image.permute(2, 0, 1).contiguous(),  # [3, h, w]
                "original_size": frame.shape[:2],
                "boxes": prompt.to(self.device),  # [K, 4]
            })
            where.append(i)
        if batch:
            with torch.inference_mode(), torch.autocast("cuda", dtype=torch.float16, enabled=self.half):
                results = self.model(batch, multimask_output=False)  # encoder on [B, 3, S, S] at once
            for i, r in zip(where, results, strict=False):
                out[i] = r["masks"][:, 0].cpu().numpy()  # [K, H, W] bool
        return out


def make_segmenter(
    name: str, sam: str = "vit_b", seg_weights: str = "yolo11n-seg.pt", device: str = "cpu", **kwargs: Any
) -> BgSubSegmenter | YoloSegSegmenter | SamSegmenter:
    if name == "bgsub":
        return BgSubSegmenter()
    if name == "yolo-seg":
        return YoloSegSegmenter(seg_weights, device=device, **kwargs)
    if name == "sam":
        return SamSegmenter(sam, device=device, **kwargs)
    raise InputError(f"unknown segmenter {name!r} (choose bgsub, sam or yolo-seg)")
