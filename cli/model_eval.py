"""``depthgait test`` / ``depthgait evaluate``: protocol evaluation of a checkpoint or of an embeddings npz."""
from __future__ import annotations

from pathlib import Path

import click

from cli.common import (
    DEFAULT_DATA,
    checkpoint_option,
    data_option,
    device_option,
    echo_for,
    handle_errors,
    json_option,
    json_target,
    quiet_option,
    resolve_device,
)

metric_option = click.option(
    "--metric",
    type=click.Choice(["euc", "cos"]),
    default=None,
    help="Distance: per-part Euclidean averaged over parts, or 1 - mean per-part cosine [default: the manifest's].",
)
plots_option = click.option(
    "--plots",
    "plots_dir",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Write the per-view rank-1 heatmap and the CMC curve (PNG) into this folder.",
)


@click.command("test")
@checkpoint_option("A depthgait checkpoint (.pt), a folder saved by `depthgait push --to-folder`, or a Hub id (user/name).")
@data_option("Aligned file holding the test subjects.", DEFAULT_DATA)
@click.option("--manifest", default=None, help="Split and protocol (name or YAML) [default: the run's, else casia-b].")
@metric_option
@json_option
@plots_option
@click.option(
    "--save-embeddings",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="Also write the test embeddings as an npz that `depthgait evaluate` reads.",
)
@click.option("--batch-size", type=click.IntRange(1, 4096), default=8, show_default=True, help="Sequences per forward pass.")
@device_option
@quiet_option
@handle_errors
def test(
    checkpoint: str,
    data: Path,
    manifest: str | None,
    metric: str | None,
    json_path: Path | None,
    plots_dir: Path | None,
    save_embeddings: Path | None,
    batch_size: int,
    device: str,
    quiet: bool,
) -> None:
    """Embed the test subjects with a trained model and print the protocol's table.

    Every frame of each test sequence is used. For CASIA-B: gallery nm-01..04, probes NM/BG/CL,
    rank-1 per probe view averaged over the other gallery views, as OpenGait reports it.

    \b
    Example:
      depthgait test --checkpoint runs/small-cpu/ckpt.pt --data cache/aligned.h5 --manifest casia-b \\
          --json runs/small-cpu/test.json --plots runs/small-cpu/plots
    """
    from depthgait_model.evaluate import test_checkpoint

    with json_target(json_path) as report:
        test_checkpoint(
            checkpoint,
            data=data,
            manifest=manifest,
            device=resolve_device(device),
            json_path=report,
            plots_dir=plots_dir,
            metric=metric,
            embeddings_path=save_embeddings,
            batch_size=batch_size,
            quiet=quiet,
            echo=echo_for(json_path),
        )


@click.command("evaluate")
@click.argument("embeddings", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--protocol", default="casia-b", show_default=True,
              help="Manifest whose protocol to apply (name or YAML): casia-b, sustech1k (OpenGait's scoring), "
                   "sustech1k-pooled (one gallery of all views), synthetic, or a YAML path.")
@metric_option
@json_option
@plots_option
@device_option
@quiet_option
@handle_errors
def evaluate(
    embeddings: Path,
    protocol: str,
    metric: str | None,
    json_path: Path | None,
    plots_dir: Path | None,
    device: str,
    quiet: bool,
) -> None:
    """Evaluate any model's test embeddings (an npz) under a protocol.

    The npz holds `embeddings` (float [N, C, P] or [N, D]) and, as OpenGait names them, `labels`,
    `types` and `views` (strings such as 075, nm-05, 090): save OpenGait's inference output with
    np.savez(path, embeddings=..., labels=..., types=..., views=...).

    \b
    Example:
      depthgait evaluate opengait_gaitbase.npz --protocol casia-b --metric euc --json gaitbase.json
    """
    from depthgait_model.evaluate import evaluate_file

    with json_target(json_path) as report:
        evaluate_file(
            embeddings,
            protocol=protocol,
            metric=metric,
            device=resolve_device(device),
            json_path=report,
            plots_dir=plots_dir,
            quiet=quiet,
            echo=echo_for(json_path),
        )
