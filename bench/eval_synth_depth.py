"""Depth error of the shipped ``depthgait/synthdepth-small`` on held-out synthetic subjects.

Why: the model card's numbers must be reproducible by anyone, on subjects the model never saw. Reports
AbsRel and scale-invariant RMSE inside the silhouette (per-frame least-squares scale-and-shift aligned,
see ``pipeline.depth.metrics``) for the shipped model, a constant depth map, and the same architecture
untrained (random init, fixed seed). Held-out subjects are generator seeds 0..N-1; training used 1000+.

Example:
    .venv/bin/python bench/eval_synth_depth.py --subjects 20 --json /tmp/synthdepth.json
"""
# ruff: noqa: E402  (sys.path is set before the project's imports)
from __future__ import annotations

import json
import os
import sys
import time
from pathlib import Path

import click
import torch

REPO = Path(__file__).resolve().parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

from pipeline import synth_depth as t
from pipeline.atomic import write_text_atomic
from pipeline.depth.shipped import SYNTH_DEPTH_NAME, resolve_shipped


@click.command(context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--model", default=SYNTH_DEPTH_NAME, show_default=True, help="Shipped name or model folder.")
@click.option("--subjects", type=int, default=20, show_default=True, help="Held-out subjects (seeds 0..N-1).")
@click.option("--sequences", type=int, default=4, show_default=True, help="Random (view, condition) sequences per subject.")
@click.option("--seed", type=int, default=12345, show_default=True, help="Seed of the view/condition draw.")
@click.option("--untrained-seed", type=int, default=0, show_default=True)
@click.option("--threads", type=int, default=1, show_default=True)
@click.option("--json", "json_out", type=click.Path(path_type=Path), default=None, help="Also write the numbers as JSON.")
@click.option("--quiet", "-q", is_flag=True, help="Silence progress bars.")
def main(model: str, subjects: int, sequences: int, seed: int, untrained_seed: int, threads: int, json_out: Path | None, quiet: bool) -> None:
    """Evaluate the shipped synthetic depth model against a constant map and the untrained network.

    Example: .venv/bin/python bench/eval_synth_depth.py --subjects 20
    """
    from transformers import AutoImageProcessor, AutoModelForDepthEstimation

    torch.set_num_threads(threads)
    folder = resolve_shipped(model) or Path(model)
    net = AutoModelForDepthEstimation.from_pretrained(folder).eval()
    processor = AutoImageProcessor.from_pretrained(folder)
    start = time.time()
    crops = t.render_crops(list(range(subjects)), sequences, frames=24, frame_step=3, size=(320, 240), seed=seed, quiet=quiet)
    t_render = time.time() - start
    start = time.time()
    errors = t.evaluate_references(net, processor, crops, untrained_seed)
    # At 266 px (the input height extract uses for large models), against its own 168: why extract keeps a small model's size.
    errors["trained_at_266"] = t.evaluate_crops(t.predict_fitted(net, processor, crops.rgb, (266, 196)), crops)
    t_eval = time.time() - start
    click.echo(f"{model}: {len(crops.rgb)} held-out crops of {subjects} subjects (render {t_render:.1f} s, eval {t_eval:.1f} s)")
    click.echo(f"{'prediction':16s} {'AbsRel':>8s} {'SI-RMSE':>8s}")
    for name in ("trained", "trained_direct", "trained_at_266", "constant", "untrained"):
        click.echo(f"{name:16s} {errors[name]['abs_rel']:8.4f} {errors[name]['si_rmse']:8.4f}")
    if json_out is not None:
        report = {"model": model, "subjects": subjects, "sequences": sequences, "seed": seed, **errors}
        write_text_atomic(json_out, json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    main()
