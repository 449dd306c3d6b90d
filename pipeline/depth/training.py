"""The shipped synthetic depth model's architecture, data, loss and evaluation (one definition).

Used by ``scripts/train_synth_depth.py`` (training), ``bench/eval_synth_depth.py`` (its held-out
errors) and ``tests/test_shipped_depth.py``: crops are taken with extract's own geometry
(``pipeline.geometry.crop_boxes``, ``pipeline.geometry.fit_to_input``) so the model is trained on exactly
what the extract stage feeds it.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch

from pipeline.depth.metrics import align_scale_shift, depth_errors
from pipeline.errors import InputError
from pipeline.geometry import crop_boxes, fit_to_input
from pipeline.progress import progress
from pipeline.synthetic.dataset import CONDITIONS, VIEWS

TRAIN_SUBJECT_OFFSET = 1000  # held-in subjects are indices 1000+; held-out ones 1..N (what `depthgait-prep synth` makes)
INPUT_SIZE = (168, 126)  # (height, width) model input: the crop fitted inside it (4:3 like the cache canvas), multiples of 14
MARGIN = 0.1  # crop = person box grown by this fraction of its width/height on each side, clipped


# ---- the architecture ------------------------------------------------------------------------------
def build_config():
    """The small Depth Anything config: DINOv2 backbone (hidden 128, 4 layers, patch 14) + DPT neck/head.

    The neck's reassemble factors are halved against Depth Anything's (2, 1, 1/2, 1/4 instead of 4, 2,
    1, 1/2): the last fusion map is at 1/3.5 of the input instead of 1/1.75, which cuts the CPU cost
    four-fold and loses nothing that survives alignment to 64x64.
    """
    from transformers import DepthAnythingConfig, Dinov2Config

    backbone = Dinov2Config(
        hidden_size=128,
        num_hidden_layers=4,
        num_attention_heads=4,
        mlp_ratio=4,
        image_size=INPUT_SIZE[0],
        patch_size=14,
        out_indices=[1, 2, 3, 4],  # every layer feeds the DPT neck (the real Small uses 9..12 of 12)
        reshape_hidden_states=False,
    )
    return DepthAnythingConfig(
        backbone_config=backbone,
        patch_size=14,
        reassemble_hidden_size=128,
        reassemble_factors=[2, 1, 0.5, 0.25],
        neck_hidden_sizes=[32, 64, 96, 128],
        fusion_hidden_size=32,
        head_hidden_size=16,
        depth_estimation_type="relative",
    )


def build_processor():
    """A DPT image processor as Depth Anything's (aspect kept, sides a multiple of 14), sized for person crops.

    Direct users (``processor(images=crop)``) get the crop scaled to about INPUT_SIZE[0] px high, the
    scale it was trained at; the extract stage scales crops itself and calls it with ``do_resize=False``.
    """
    from transformers import DPTImageProcessor

    return DPTImageProcessor(
        do_resize=True,
        size={"height": INPUT_SIZE[0], "width": INPUT_SIZE[1]},
        keep_aspect_ratio=True,
        ensure_multiple_of=14,
        resample=3,  # bicubic, as Depth Anything
        do_rescale=True,
        rescale_factor=1 / 255,
        do_normalize=True,
        image_mean=[0.485, 0.456, 0.406],
        image_std=[0.229, 0.224, 0.225],
        do_pad=False,
    )


def build_untrained(seed: int):
    """The same architecture with random init from a fixed seed (the 'untrained network' reference)."""
    from transformers import DepthAnythingForDepthEstimation

    torch.manual_seed(seed)
    return DepthAnythingForDepthEstimation(build_config()).eval()


# ---- synthetic person crops ------------------------------------------------------------------------
@dataclass
class Crops:
    """Person crops of several sequences: lists because crop sizes differ."""

    rgb: list[np.ndarray]  # uint8 [h, w, 3] each
    depth: list[np.ndarray]  # float32 [h, w] metres, 0 off the person
    mask: list[np.ndarray]  # bool [h, w]


def render_crops(
    subject_indices: Sequence[int],
    sequences_per_subject: int,
    frames: int,
    frame_step: int,
    size: tuple[int, int],
    seed: int,
    quiet: bool = False,
) -> Crops:
    """Render ``sequences_per_subject`` random (view, condition, walk seed) sequences per subject; keep every ``frame_step``-th frame.

    Subjects are ``subject_params(index, seed=0)``, as ``depthgait-prep synth`` numbers them. Frames
    whose person has fewer than 200 silhouette pixels (mostly off-screen) are dropped.
    """
    from pipeline.synthetic.dataset import render_sequence, subject_params

    rng = np.random.default_rng(seed)
    out = Crops([], [], [])
    jobs = [(s, VIEWS[rng.integers(len(VIEWS))], CONDITIONS[rng.integers(len(CONDITIONS))], int(rng.integers(1 << 31)))
            for s in subject_indices for _ in range(sequences_per_subject)]
    for index, view, condition, seq_seed in progress(jobs, desc="render", unit="seq", disable=quiet):
        seq = render_sequence(subject_params(index, 0), view, condition, frames=frames, size=size, seed=seq_seed)
        height, width = seq.mask.shape[1:]
        for t in range(0, len(seq.mask), frame_step):
            if seq.mask[t].sum() < 200:
                continue
            x0, y0, x1, y1 = crop_boxes(seq.box[t : t + 1], MARGIN, width, height)[0]
            out.rgb.append(np.ascontiguousarray(seq.rgb[t, y0:y1, x0:x1]))
            out.depth.append(seq.depth[t, y0:y1, x0:x1].astype(np.float32))
            out.mask.append(seq.mask[t, y0:y1, x0:x1].astype(bool))
    if not out.rgb:
        raise InputError("synthetic rendering produced no usable person crops")
    return out


def training_tensors(processor, crops: Crops, input_hw: tuple[int, int] = INPUT_SIZE, batch: int = 256) -> tuple[torch.Tensor, ...]:
    """Model inputs (float16 [N, 3, H, W]), inverse depth and mask targets ([N, H, W]) in the extract geometry.

    Targets are placed with the image's scale and offset; nearest resizing so that no silhouette
    pixel mixes with the background's zero depth.
    """
    n, (H, W) = len(crops.rgb), input_hw
    inv = np.zeros((n, H, W), np.float32)  # [N, H, W]
    mask = np.zeros((n, H, W), bool)  # [N, H, W]
    images = []
    for i, (rgb, d, m) in enumerate(zip(crops.rgb, crops.depth, crops.mask, strict=True)):
        image, (h, w) = fit_to_input(rgb, input_hw)
        images.append(image)
        d_r = cv2.resize(d, (w, h), interpolation=cv2.INTER_NEAREST)
        m_r = cv2.resize(m.astype(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).astype(bool) & (d_r > 0)
        mask[i, :h, :w] = m_r
        inv[i, :h, :w] = np.where(m_r, 1.0 / np.where(m_r, d_r, 1.0), 0.0)
    x = torch.cat([
        processor(images=images[i : i + batch], do_resize=False, return_tensors="pt")["pixel_values"].half()
        for i in range(0, n, batch)
    ])
    return x, torch.from_numpy(inv), torch.from_numpy(mask)


# ---- prediction and evaluation ---------------------------------------------------------------------
@torch.no_grad()
def predict_direct(model, processor, images: list[np.ndarray]) -> list[np.ndarray]:
    """Relative inverse depth at each crop's size, the way a user runs any Hub depth model (one crop per call)."""
    out: list[np.ndarray] = []
    for image in images:
        outputs = model(**processor(images=image, return_tensors="pt"))
        post = processor.post_process_depth_estimation(outputs, target_sizes=[image.shape[:2]])
        out.append(post[0]["predicted_depth"].float().numpy())
    return out


@torch.no_grad()
def predict_fitted(model, processor, images: list[np.ndarray], input_hw: tuple[int, int] = INPUT_SIZE, batch: int = 32) -> list[np.ndarray]:
    """Relative inverse depth at each crop's size, in the extract stage's geometry (fit, pad, batch, cut back)."""
    out: list[np.ndarray] = []
    for i in range(0, len(images), batch):
        chunk = images[i : i + batch]
        fitted = [fit_to_input(im, input_hw) for im in chunk]
        x = processor(images=[f for f, _ in fitted], do_resize=False, return_tensors="pt")["pixel_values"]
        pred = model(pixel_values=x).predicted_depth.float().numpy()  # [B, H, W]
        for p, (_, (h, w)), im in zip(pred, fitted, chunk, strict=True):
            out.append(cv2.resize(p[:h, :w], (im.shape[1], im.shape[0]), interpolation=cv2.INTER_LINEAR))
    return out


def evaluate_crops(predictions: list[np.ndarray], crops: Crops) -> dict[str, float]:
    """Mean per-frame AbsRel and SI-RMSE inside the silhouette, and the share of frames whose fit onto true
    inverse depth has a positive scale (larger = nearer). Crops differ in size: one call per size group."""
    abs_rel, si_rmse, positive = [], [], []
    groups: dict[tuple[int, int], list[int]] = {}
    for i, m in enumerate(crops.mask):
        groups.setdefault(m.shape, []).append(i)
    for idx in groups.values():
        pred = np.stack([predictions[i] for i in idx])  # [n, h, w]
        depth = np.stack([crops.depth[i] for i in idx])
        mask = np.stack([crops.mask[i] for i in idx])
        e = depth_errors(pred, depth, mask)
        abs_rel.append(e.abs_rel)
        si_rmse.append(e.si_rmse)
        scale, _ = align_scale_shift(pred.astype(np.float64), np.where(mask, 1.0 / np.where(mask, depth, 1.0), 0.0), mask)
        positive.append(scale > 0)
    return {
        "abs_rel": float(np.concatenate(abs_rel).mean()),
        "si_rmse": float(np.concatenate(si_rmse).mean()),
        "positive_scale": float(np.concatenate(positive).mean()),
        "frames": len(predictions),
    }


def evaluate_references(model, processor, crops: Crops, untrained_seed: int) -> dict[str, dict[str, float]]:
    """Errors of the trained model (extract geometry and direct processor path), a constant map and the untrained network."""
    untrained = build_untrained(untrained_seed)
    return {
        "trained": evaluate_crops(predict_fitted(model, processor, crops.rgb), crops),
        "trained_direct": evaluate_crops(predict_direct(model, processor, crops.rgb), crops),
        "constant": evaluate_crops([np.ones(m.shape, np.float32) for m in crops.mask], crops),
        "untrained": evaluate_crops(predict_fitted(untrained, processor, crops.rgb), crops),
    }


# ---- loss ------------------------------------------------------------------------------------------
def standardise(x: torch.Tensor, mask: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Per-image (x - mean) / std inside the mask, 0 outside. [B, H, W]

    Prediction and target get the same positive normalisation, so the loss is invariant to scale and
    shift but not to sign: the model must keep Depth Anything's convention (larger = nearer). A
    least-squares alignment would accept a flipped map, and an early model used that freedom on 30%
    of the frames.
    """
    m = mask.float()  # [B, H, W]
    n = m.sum((1, 2)).clamp(min=1)  # [B]
    mean = (m * x).sum((1, 2)) / n  # [B]
    centred = (x - mean[:, None, None]) * m  # [B, H, W]
    std = ((centred * centred).sum((1, 2)) / n).sqrt()  # [B]
    return centred / (std + eps)[:, None, None]


def ssi_loss(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor, grad_weight: float, scales: int = 3) -> tuple[torch.Tensor, dict[str, float]]:
    """Scale-and-shift-invariant loss on inverse depth inside the mask (MiDaS-style) plus multi-scale gradient matching.

    Both maps are standardised per image; the data term, mean squared difference, is 2 (1 - Pearson
    correlation), and the gradient term matches the standardised maps' local differences.
    """
    diff = standardise(pred, mask) - standardise(target, mask)  # [B, H, W], 0 off the mask
    n = mask.sum().clamp(min=1)
    data = (diff * diff).sum() / n
    grad = pred.new_zeros(())
    d, m = diff, mask.float()
    for _ in range(scales):
        mx = m[:, :, 1:] * m[:, :, :-1]  # [B, h, w-1] both neighbours on the person
        my = m[:, 1:, :] * m[:, :-1, :]  # [B, h-1, w]
        gx = (d[:, :, 1:] - d[:, :, :-1]).abs() * mx
        gy = (d[:, 1:, :] - d[:, :-1, :]).abs() * my
        grad = grad + (gx.sum() + gy.sum()) / (mx.sum() + my.sum()).clamp(min=1)
        d, m = d[:, ::2, ::2], m[:, ::2, ::2]
    loss = data + grad_weight * grad
    return loss, {"ssi": float(data.detach()), "grad": float(grad.detach())}
