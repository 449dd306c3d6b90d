"""``depthgait train``: parse options, build the run config, call ``depthgait_model.train.train``."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.common import DEFAULT_DATA, data_option, device_option, handle_errors, json_option, quiet_option, write_json
from pipeline.errors import InputError

if TYPE_CHECKING:
    from depthgait_model.config import RunConfig


def parse_overrides(pairs: tuple[str, ...]) -> dict[str, Any]:
    """``("train.lr=0.01", "model.channels=[8,16,16,32]")`` -> typed values (YAML syntax)."""
    import yaml

    changes: dict[str, Any] = {}
    for pair in pairs:
        key, sep, raw = pair.partition("=")
        if not sep or not key.strip():
            raise click.BadParameter(f"{pair!r} is not KEY=VALUE (e.g. train.lr=0.05)", param_hint="--set")
        try:
            changes[key.strip()] = yaml.safe_load(raw) if raw.strip() else None
        except yaml.YAMLError as exc:
            raise click.BadParameter(f"{pair!r}: value is not valid YAML ({exc})", param_hint="--set") from exc
    return changes


def check_override_keys(run_cfg: RunConfig, changes: dict[str, Any]) -> None:
    """An unknown ``--set`` key is an error listing the keys allowed where it points (no torch needed)."""
    tree = run_cfg.to_dict()
    for dotted in changes:
        node: Any = tree
        parts = dotted.split(".")
        for depth, key in enumerate(parts):
            if not isinstance(node, dict) or key not in node:
                where = ".".join(parts[:depth])
                keys = sorted(node) if isinstance(node, dict) else []
                allowed = ", ".join(f"{where}.{k}" if where else k for k in keys)
                detail = f"valid keys: {allowed}" if keys else f"{where} is a value, not a section"
                raise click.ClickException(f"--set: unknown key {dotted!r}; {detail}")
            node = node[key]
        if isinstance(node, dict):
            raise click.ClickException(
                f"--set: {dotted!r} is a section; set one of its keys: {', '.join(f'{dotted}.{k}' for k in sorted(node))}"
            )


def warn_if_gpu_recipe_on_cpu(run_cfg: RunConfig, device: str) -> None:
    """A recipe written for a GPU (mixed precision) on a CPU would run for days without a word."""
    tc = run_cfg.train
    if device == "cpu" and tc.amp:
        click.echo(
            f"warning: recipe {run_cfg.name or '?'} is a GPU recipe ({tc.iterations:,} iterations of "
            f"{tc.batch_p} x {tc.batch_k} clips, mixed precision on CUDA) and is starting on the CPU, where it "
            "takes days; for a CPU use --config small-cpu, or --device cuda on a GPU machine",
            err=True,
        )


@click.command("train")
@data_option("Aligned silhouette + depth file from `depthgait-prep align`.", DEFAULT_DATA)
@click.option("--manifest", default="casia-b", show_default=True, help="Dataset manifest (name or YAML) giving the split.")
@click.option("--config", "config_name", default="casia-b", show_default=True,
              help="Recipe: casia-b, small-cpu, tiny, or a YAML path.")
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Run folder [default: runs/<config name>].")
@click.option("--iterations", type=click.IntRange(min=1), default=None, help="Override train.iterations.")
@click.option("--resume", is_flag=True, help="Continue from <out>/ckpt.pt exactly where it stopped.")
@click.option("--init", "init", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Start from this checkpoint's weights (e.g. from `depthgait convert`); a silhouette-only one also "
                   "starts the silhouette branch of full / late-fusion.")
@device_option
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=None, help="Override train.seed.")
@click.option("--threads", type=click.IntRange(1, 1024), default=None,
              help="CPU threads for torch [default: torch's choice]; 1 is often fastest on a busy shared CPU.")
@click.option("--set", "overrides", multiple=True, metavar="KEY=VALUE",
              help="Override any config field, e.g. --set train.lr=0.05 --set model.mode=late-fusion.")
@click.option("--tensorboard", is_flag=True,
              help="Also log the metrics.jsonl scalars for TensorBoard in <out>/tensorboard (needs depthgait[tensorboard]).")
@json_option
@quiet_option
@handle_errors
def train(
    data: Path, manifest: str, config_name: str, out: Path | None, iterations: int | None, resume: bool,
    init: Path | None, device: str, seed: int | None, threads: int | None, overrides: tuple[str, ...],
    tensorboard: bool, json_path: Path | None, quiet: bool,
) -> None:
    """Train the DepthGait network on the train split of an aligned file.

    Writes <out>/ckpt.pt (latest) and ckpt-<iteration>.pt, metrics.jsonl, loss.png and config.yaml
    (and <out>/tensorboard with --tensorboard: `tensorboard --logdir runs`).

    \b
    Example:
      depthgait train --data cache/aligned.h5 --manifest synthetic --config small-cpu --iterations 200 --threads 1
      depthgait train --data cache/aligned.h5 --manifest synthetic --config small-cpu --iterations 400 --threads 1 --resume
    A resume continues bit-for-bit, so it must run with the same --threads, device and torch (checked).
      depthgait train --config casia-b --set train.batch_k=8 --set model.mode=silhouette-only
    """
    # Everything a typo can break is checked before torch is imported (that alone takes seconds).
    from depthgait_model.config import load_config
    from pipeline.manifest import load_manifest

    changes = parse_overrides(overrides)
    run_cfg = load_config(config_name)
    check_override_keys(run_cfg, changes)
    if iterations is not None:
        changes["train.iterations"] = iterations
    if seed is not None:
        changes["train.seed"] = seed
    if changes:
        run_cfg = run_cfg.override(changes, source="--set/--iterations/--seed")
    load_manifest(manifest)
    if tensorboard:
        import importlib.util

        if importlib.util.find_spec("tensorboard") is None:
            raise click.BadParameter("needs the tensorboard package: pip install 'depthgait[tensorboard]'",
                                     param_hint="--tensorboard")
    if not data.is_file():
        raise InputError(f"{data}: no such aligned file (make it with `depthgait-prep align`)")

    from cli.common import resolve_device
    from depthgait_model.train import TrainingDiverged
    from depthgait_model.train import train as run_training

    resolved = resolve_device(device)
    warn_if_gpu_recipe_on_cpu(run_cfg, resolved)
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    out_dir = out if out is not None else Path("runs") / (run_cfg.name or Path(config_name).stem)
    try:
        result = run_training(run_cfg, data, manifest, out_dir, resume=resume, device=resolved, quiet=quiet,
                              init=init, tensorboard=tensorboard)
    except TrainingDiverged as exc:
        raise click.ClickException(str(exc)) from exc
    write_json(json_path, {
        "checkpoint": str(result.checkpoint), "start_iteration": result.start_iteration,
        "iterations": result.iterations, "seconds": result.seconds, "first_loss": result.first_loss,
        "final_loss": result.final_loss, "num_parameters": result.num_parameters,
    })
    if result.iterations == result.start_iteration:
        click.echo(f"nothing to do: {out_dir} is already at iteration {result.iterations}")
        return
    click.echo(
        f"trained iterations {result.start_iteration + 1}-{result.iterations} in {result.seconds:.1f} s "
        f"({result.iters_per_s:.2f} it/s), loss {result.first_loss:.4f} -> {result.final_loss:.4f}, "
        f"{result.num_parameters:,} parameters"
    )
    click.echo(f"checkpoint: {result.checkpoint}")
