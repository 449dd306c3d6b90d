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
# ruff: noqa: E402  (sys.path is set before the project's imports)
from __future__ import annotations

import json
import os
import shutil
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import numpy as np
import torch

from pipeline.progress import progress

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from pipeline.atomic import write_text_atomic
from pipeline.depth.shipped import SYNTH_DEPTH_DIR, SYNTH_DEPTH_NAME
from pipeline.depth.training import (
    INPUT_SIZE,
    MARGIN,
    TRAIN_SUBJECT_OFFSET,
    build_config,
    build_processor,
    evaluate_references,
    render_crops,
    ssi_loss,
    training_tensors,
)


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
    bar = progress(range(total), desc="train", unit="it", disable=quiet)
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
from pipeline.depth.shipped import SYNTH_DEPTH_DIR
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
indices 1..{eval_subjects} of generator seed 0; `pipeline.depth.metrics`):

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
