"""``depthgait convert``: another toolkit's checkpoint as a depthgait checkpoint."""
from __future__ import annotations

from pathlib import Path

import click

from cli.common import handle_errors


@click.command("convert")
@click.argument("checkpoint", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--from", "source", type=click.Choice(["opengait"]), required=True,
              help="The toolkit that wrote CHECKPOINT (opengait: a DeepGaitV2 p3d checkpoint).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="depthgait checkpoint to write.")
@click.option("--config", "config_name", default=None,
              help="Recipe to store (name or YAML; model.mode silhouette-only) [default: casia-b with the checkpoint's shapes].")
@click.option("--manifest", default=None, help="Manifest that `test` should default to for this checkpoint.")
@handle_errors
def convert(checkpoint: Path, source: str, out: Path, config_name: str | None, manifest: str | None) -> None:
    """Convert an OpenGait DeepGaitV2 checkpoint into a depthgait silhouette-only checkpoint.

    Channels, blocks, parts, embedding width and classes come from the tensor shapes. The result
    works with `test`, `embed` and `identify`, and starts a run with `train --init`
    (the whole silhouette-only model, or the silhouette branch of `full`).

    \b
    Example:
      depthgait convert --from opengait DeepGaitV2_casiab-60000.pt --out deepgaitv2.pt
      depthgait train --config casia-b --init deepgaitv2.pt --out runs/from-deepgaitv2
    """
    from depthgait_model.convert import convert_opengait

    result = convert_opengait(checkpoint, out, config=config_name, manifest=manifest)
    m = result.config.model
    click.echo(
        f"{checkpoint} -> {result.out}: {result.tensors} tensors, {result.parameters:,} parameters, "
        f"channels {list(m.channels)}, blocks {list(m.blocks)}, {result.classes} classes"
    )
