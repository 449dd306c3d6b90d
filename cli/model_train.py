"""``depthgait train``: parse options, build the run config, call ``depthgait_model.train.train``."""
from __future__ import annotations

from pathlib import Path
from typing import Any

import click

from cli.common import device_option, handle_errors, quiet_option


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


@click.command("train")
@click.option("--data", type=click.Path(path_type=Path), default=Path("cache/aligned.h5"), show_default=True,
              help="Aligned silhouette + depth file from `depthgait-prep align`.")
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
@quiet_option
@handle_errors
def train(
    data: Path, manifest: str, config_name: str, out: Path | None, iterations: int | None, resume: bool,
    init: Path | None, device: str, seed: int | None, threads: int | None, overrides: tuple[str, ...], quiet: bool,
) -> None:
    """Train the DepthGait network on the train split of an aligned file.

    Writes <out>/ckpt.pt (latest) and ckpt-<iteration>.pt, metrics.jsonl, loss.png and config.yaml.

    \b
    Example:
      depthgait train --data cache/aligned.h5 --manifest synthetic --config small-cpu --iterations 200 --threads 1
      depthgait train --data cache/aligned.h5 --manifest synthetic --config small-cpu --iterations 400 --threads 1 --resume
    A resume continues bit-for-bit, so it must run with the same --threads, device and torch (checked).
      depthgait train --config casia-b --set train.batch_k=8 --set model.mode=silhouette-only
    """
    from depthgait_model.config import load_config
    from depthgait_model.train import TrainingDiverged
    from depthgait_model.train import train as run_training

    changes = parse_overrides(overrides)
    if iterations is not None:
        changes["train.iterations"] = iterations
    if seed is not None:
        changes["train.seed"] = seed
    run_cfg = load_config(config_name)
    if changes:
        run_cfg = run_cfg.override(changes, source="--set/--iterations/--seed")
    if threads is not None:
        import torch

        torch.set_num_threads(threads)
    out_dir = out if out is not None else Path("runs") / (run_cfg.name or Path(config_name).stem)
    try:
        result = run_training(run_cfg, data, manifest, out_dir, resume=resume, device=device, quiet=quiet, init=init)
    except TrainingDiverged as exc:
        raise click.ClickException(str(exc)) from exc
    if result.iterations == result.start_iteration:
        click.echo(f"nothing to do: {out_dir} is already at iteration {result.iterations}")
        return
    click.echo(
        f"trained iterations {result.start_iteration + 1}-{result.iterations} in {result.seconds:.1f} s "
        f"({result.iters_per_s:.2f} it/s), loss {result.first_loss:.4f} -> {result.final_loss:.4f}, "
        f"{result.num_parameters:,} parameters"
    )
    click.echo(f"checkpoint: {result.checkpoint}")
