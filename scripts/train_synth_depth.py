"""Train the shipped offline depth model ``depthgait/synthdepth-small`` on synthetic walking frames.

Why: no real depth checkpoint can be downloaded here, and random weights give meaningless depth. This
script trains a small Depth Anything architecture (DINOv2 backbone shrunk, DPT head) from random init
on person crops of ``pipeline.synthetic`` with their true depth, and writes a Hugging Face folder that
loads exactly like ``depth-anything/Depth-Anything-V2-Small-hf``.

- Data: subjects ``subject_params(1000 + i)`` (held-in); held-out evaluation uses subjects 1..N,
  the ones ``depthgait-prep synth`` makes, never seen in training. All 11 views and nm/bg/cl conditions. Crops are the person
  box plus a margin, clipped to the frame, as the extract stage takes them.
- Loss: MiDaS-style scale-and-shift-invariant loss on inverse depth inside the silhouette (prediction
  and target standardised per image, which keeps the sign: larger = nearer), plus a multi-scale
  gradient-matching term.
- Output: ``config.json``, ``preprocessor_config.json``, ``model.safetensors``, ``README.md`` (model
  card with the measured errors) and ``training_metrics.json``, swapped in atomically as one folder.

Example (about 10 minutes on one CPU core):
    .venv/bin/python scripts/train_synth_depth.py --seed 0 --threads 1
"""
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import cv2
import numpy as np
import torch
from tqdm import tqdm

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pipeline.atomic import write_text_atomic  # noqa: E402
from pipeline.depth import fit_to_input  # noqa: E402
from pipeline.depth_metrics import align_scale_shift, depth_errors  # noqa: E402
from pipeline.runner import crop_boxes  # noqa: E402
from pipeline.shipped_models import SYNTH_DEPTH_DIR, SYNTH_DEPTH_NAME  # noqa: E402

VIEWS = ("000", "018", "036", "054", "072", "090", "108", "126", "144", "162", "180")
CONDITIONS = ("nm-01", "nm-02", "nm-03", "nm-04", "nm-05", "nm-06", "bg-01", "bg-02", "cl-01", "cl-02")
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
    from pipeline.synthetic import render_sequence, subject_params

    rng = np.random.default_rng(seed)
    out = Crops([], [], [])
    jobs = [(s, VIEWS[rng.integers(len(VIEWS))], CONDITIONS[rng.integers(len(CONDITIONS))], int(rng.integers(1 << 31)))
            for s in subject_indices for _ in range(sequences_per_subject)]
    for index, view, condition, seq_seed in tqdm(jobs, desc="render", unit="seq", disable=quiet):
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
        raise ValueError("synthetic rendering produced no usable person crops")
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


# ---- training --------------------------------------------------------------------------------------
@dataclass
class TrainSettings:
    seed: int = 0
    train_subjects: int = 80
    sequences_per_subject: int = 6
    eval_subjects: int = 8
    eval_sequences_per_subject: int = 4
    frames: int = 12
    frame_step: int = 2
    width: int = 320
    height: int = 240
    iterations: int = 1000
    batch_size: int = 16
    lr: float = 1.5e-3
    weight_decay: float = 0.01
    warmup: int = 50
    grad_weight: float = 0.5
    untrained_seed: int = 0


def augment(x: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Brightness/contrast jitter on the normalised image. No flip: the crop sits top-left with padding
    right and below (the extract geometry), and both walking directions are rendered anyway."""
    contrast = 1 + 0.3 * (torch.rand(x.shape[0], 1, 1, 1, generator=gen) - 0.5)  # [B, 1, 1, 1]
    bright = 0.3 * (torch.rand(x.shape[0], 1, 1, 1, generator=gen) - 0.5)  # [B, 1, 1, 1]
    return x * contrast + bright


def train(settings: TrainSettings, quiet: bool = False) -> tuple[object, object, dict]:
    """Render data, train from random init, evaluate on held-out subjects. Returns (model, processor, metrics)."""
    from transformers import DepthAnythingForDepthEstimation

    torch.manual_seed(settings.seed)
    np.random.seed(settings.seed)
    size = (settings.width, settings.height)
    t_start = time.time()
    processor = build_processor()
    train_crops = render_crops(
        [TRAIN_SUBJECT_OFFSET + i for i in range(settings.train_subjects)],
        settings.sequences_per_subject, settings.frames, settings.frame_step, size, settings.seed, quiet,
    )
    x_all, inv_all, mask_all = training_tensors(processor, train_crops)  # [N, 3, H, W] f16, [N, H, W], [N, H, W]
    del train_crops
    t_data = time.time() - t_start

    model = DepthAnythingForDepthEstimation(build_config())
    with torch.no_grad():
        model.head.conv3.bias.fill_(1.0)  # start the final ReLU in its linear range so no pixel begins dead
    model.train()
    opt = torch.optim.AdamW(model.parameters(), lr=settings.lr, weight_decay=settings.weight_decay)
    total = settings.iterations

    def lr_at(it: int) -> float:
        if it < settings.warmup:
            return (it + 1) / settings.warmup
        return 0.5 * (1 + np.cos(np.pi * (it - settings.warmup) / max(1, total - settings.warmup)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    gen = torch.Generator().manual_seed(settings.seed)
    curve: list[dict[str, float]] = []
    running = None
    t_train = time.time()
    bar = tqdm(range(total), desc="train", unit="it", disable=quiet)
    for it in bar:
        idx = torch.randint(0, x_all.shape[0], (settings.batch_size,), generator=gen)
        x, inv, mask = augment(x_all[idx].float(), gen), inv_all[idx], mask_all[idx]  # [B, 3, H, W], [B, H, W] x2
        pred = model(pixel_values=x).predicted_depth  # [B, H, W]
        loss, info = ssi_loss(pred, inv, mask, settings.grad_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        sched.step()
        running = float(loss.detach()) if running is None else 0.95 * running + 0.05 * float(loss.detach())
        bar.set_postfix(loss=f"{running:.3f}")
        if it % 25 == 0 or it == total - 1:
            curve.append({"iteration": it, "loss": running, **info})
    train_s = time.time() - t_train
    model.eval()

    eval_crops = render_crops(
        list(range(1, settings.eval_subjects + 1)), settings.eval_sequences_per_subject, settings.frames,
        settings.frame_step, size, settings.seed + 1, quiet,
    )
    errors = evaluate_references(model, processor, eval_crops, settings.untrained_seed)
    metrics = {
        "model": SYNTH_DEPTH_NAME,
        "settings": asdict(settings),
        "input_size": list(INPUT_SIZE),
        "margin": MARGIN,
        "train_crops": int(x_all.shape[0]),
        "parameters": int(sum(p.numel() for p in model.parameters())),
        "data_seconds": round(t_data, 1),
        "train_seconds": round(train_s, 1),
        "total_seconds": round(time.time() - t_start, 1),
        "torch_threads": torch.get_num_threads(),
        "held_out": {"subject_indices": f"1..{settings.eval_subjects}", **errors},
        "loss_curve": curve,
    }
    return model, processor, metrics


# ---- saving ----------------------------------------------------------------------------------------
MODEL_CARD = """---
library_name: transformers
pipeline_tag: depth-estimation
tags: [depth-estimation, depth-anything, synthetic, depthgait]
---
# depthgait/synthdepth-small

A small monocular depth model in the Depth Anything architecture (DINOv2 backbone shrunk to hidden
128, 4 layers, 4 heads, patch 14; DPT neck and head; {params:,} parameters), trained from random
initialisation by `scripts/train_synth_depth.py` (seed {seed}) on person crops rendered by depthgait's
synthetic walking-video generator (`pipeline.synthetic`), with their true depth.

**It is the offline default for synthetic data only.** It has never seen a real image and gives no
meaningful depth on real footage: for real videos use a real checkpoint such as
`depth-anything/Depth-Anything-V2-Small-hf` (`depthgait-prep extract --depth depth-anything/Depth-Anything-V2-Small-hf`).

## Use
Same path as any Depth Anything checkpoint (works with `HF_HUB_OFFLINE=1`):
```python
from transformers import AutoImageProcessor, AutoModelForDepthEstimation
from pipeline.shipped_models import SYNTH_DEPTH_DIR
processor = AutoImageProcessor.from_pretrained(SYNTH_DEPTH_DIR)
model = AutoModelForDepthEstimation.from_pretrained(SYNTH_DEPTH_DIR)
```
or `depthgait-prep extract --depth {name} --depth-input-height {h}` once the extract stage accepts
the name. Input: an RGB person crop (the person box plus a {margin_pct}% margin, clipped). It was
trained on crops scaled uniformly to fit {h}x{w} (height x width), top-left, edge-replicated padding:
the extract stage's geometry at a depth input height of {h}. The processor alone scales a crop to about
{h} px high keeping its aspect ratio, which works nearly as well (table below). Output: relative inverse
depth (larger = nearer), as Depth Anything; scale and shift are unknown.

## Training data
{train_subjects} held-in synthetic subjects (indices {first}..{last} of generator seed 0), {seqs} random
(view, condition) sequences each over all 11 CASIA-B views and nm/bg/cl, {frames} frames at
{width}x{height}, one frame in {step}: {n_crops} crops. Loss: MiDaS-style scale-and-shift-invariant MSE
of per-image standardised inverse depth inside the silhouette + {grad_weight} x multi-scale gradient matching. AdamW, lr {lr},
{iterations} iterations of batch {batch}, {threads} CPU thread(s), {train_minutes:.1f} min of training.

## Measured errors (held-out subjects, never seen in training)
Inside the silhouette, after per-frame least-squares scale-and-shift alignment of the predicted inverse
depth to the true inverse depth, converted to depth ({eval_frames} frames of {eval_subjects} subjects,
indices 1..{eval_subjects} of generator seed 0; `pipeline.depth_metrics`):

| prediction | AbsRel | SI-RMSE (log) |
| --- | --- | --- |
| this model (extract geometry, {h}x{w}) | {t_abs:.4f} | {t_si:.4f} |
| this model (`processor(images=crop)` directly) | {d_abs:.4f} | {d_si:.4f} |
| constant depth map | {c_abs:.4f} | {c_si:.4f} |
| same architecture, untrained (seed {useed}) | {u_abs:.4f} | {u_si:.4f} |

Run it at its own scale: fitted into 266 px high inputs (the extract stage's default, sized for
Depth Anything V2) it is barely better than a constant map (AbsRel 0.0119 against 0.0127 on 20
held-out subjects). A larger held-out evaluation, at both sizes: `.venv/bin/python bench/eval_synth_depth.py`.
"""


def model_card(metrics: dict) -> str:
    s = metrics["settings"]
    ho = metrics["held_out"]
    return MODEL_CARD.format(
        params=metrics["parameters"], seed=s["seed"], name=SYNTH_DEPTH_NAME, margin_pct=round(100 * metrics["margin"]),
        h=INPUT_SIZE[0], w=INPUT_SIZE[1], train_subjects=s["train_subjects"], first=TRAIN_SUBJECT_OFFSET,
        last=TRAIN_SUBJECT_OFFSET + s["train_subjects"] - 1, seqs=s["sequences_per_subject"], frames=s["frames"],
        width=s["width"], height=s["height"], step=s["frame_step"], n_crops=metrics["train_crops"],
        grad_weight=s["grad_weight"], lr=s["lr"], iterations=s["iterations"], batch=s["batch_size"],
        threads=metrics["torch_threads"], train_minutes=metrics["train_seconds"] / 60,
        eval_frames=ho["trained"]["frames"], eval_subjects=s["eval_subjects"],
        t_abs=ho["trained"]["abs_rel"], t_si=ho["trained"]["si_rmse"],
        d_abs=ho["trained_direct"]["abs_rel"], d_si=ho["trained_direct"]["si_rmse"], c_abs=ho["constant"]["abs_rel"],
        c_si=ho["constant"]["si_rmse"], u_abs=ho["untrained"]["abs_rel"], u_si=ho["untrained"]["si_rmse"],
        useed=s["untrained_seed"],
    )


def save_folder(model, processor, metrics: dict, out: Path) -> None:
    """Write the whole folder under a temporary name, then swap it into place (a killed run leaves ``out`` intact)."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".tmp-{out.name}-", dir=out.parent))
    try:
        model.save_pretrained(tmp, safe_serialization=True)
        processor.save_pretrained(tmp)
        write_text_atomic(tmp / "training_metrics.json", json.dumps(metrics, indent=2) + "\n")
        write_text_atomic(tmp / "README.md", model_card(metrics))
        old = out.with_name(f".old-{out.name}")
        if out.exists():
            shutil.rmtree(old, ignore_errors=True)
            os.replace(out, old)
        tmp.chmod(0o755)  # mkdtemp and mkstemp make owner-only entries; an installed model must be readable
        for f in tmp.iterdir():
            f.chmod(0o644)
        os.replace(tmp, out)
        shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--out", type=click.Path(path_type=Path), default=SYNTH_DEPTH_DIR, show_default=True, help="Model folder to write.")
@click.option("--seed", type=int, default=TrainSettings.seed, show_default=True)
@click.option("--iterations", type=int, default=TrainSettings.iterations, show_default=True)
@click.option("--train-subjects", type=int, default=TrainSettings.train_subjects, show_default=True)
@click.option("--eval-subjects", type=int, default=TrainSettings.eval_subjects, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True, help="torch CPU threads (the machine is shared).")
@click.option("--card-only", is_flag=True, help="Only rewrite README.md from the folder's training_metrics.json.")
@click.option("--quiet", "-q", is_flag=True, help="Silence progress bars.")
def main(
    out: Path, seed: int, iterations: int, train_subjects: int, eval_subjects: int, threads: int, card_only: bool, quiet: bool
) -> None:
    """Train depthgait/synthdepth-small on synthetic frames and write it as a Hugging Face folder.

    Example: .venv/bin/python scripts/train_synth_depth.py --seed 0 --threads 1
    """
    if card_only:
        metrics_file = out / "training_metrics.json"
        if not metrics_file.is_file():
            raise click.ClickException(f"{metrics_file} not found: train first")
        write_text_atomic(out / "README.md", model_card(json.loads(metrics_file.read_text())))
        (out / "README.md").chmod(0o644)
        return
    torch.set_num_threads(threads)
    settings = TrainSettings(seed=seed, iterations=iterations, train_subjects=train_subjects, eval_subjects=eval_subjects)
    model, processor, metrics = train(settings, quiet=quiet)
    save_folder(model, processor, metrics, out)
    ho = metrics["held_out"]
    click.echo(f"wrote {out} in {metrics['total_seconds']:.0f} s (training {metrics['train_seconds']:.0f} s)")
    for name in ("trained", "constant", "untrained"):
        click.echo(f"  {name:9s} AbsRel {ho[name]['abs_rel']:.4f}  SI-RMSE {ho[name]['si_rmse']:.4f}")


if __name__ == "__main__":
    main()
