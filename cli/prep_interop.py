"""``depthgait-prep export`` / ``depthgait-prep import``: OpenGait and SUSTech1K interchange."""
from __future__ import annotations

from pathlib import Path

import click

from cli.common import data_option, device_option, handle_errors, quiet_option, resolve_device
from pipeline.depth import DEFAULT_DEPTH_MODEL as DEFAULT_DEPTH
from pipeline.errors import Failure

DEFAULT_ALIGNED = "cache/aligned.h5"


def _report_failures(failed: list[Failure], what: str) -> None:
    for failure in failed:
        click.echo(f"skipped: {failure.line()}", err=True)
    if failed:
        raise click.ClickException(f"{len(failed)} {what} skipped (listed above); the rest were written")


@click.command("export")
@click.option("--format", "fmt", type=click.Choice(["opengait"]), default="opengait", show_default=True,
              help="Layout of the tree to write (OpenGait: <subject>/<condition>/<view>/<nn>-<modality>-<view>.pkl).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), required=True, help="Tree to write.")
@data_option("Aligned file to export.", Path(DEFAULT_ALIGNED))
@click.option("--manifest", default="casia-b", show_default=True, help="Split for partition.json (name or YAML).")
@click.option(
    "--modalities",
    default=None,
    help="Comma list of sil,depth to write; default: what each sequence has.",
)
@quiet_option
@handle_errors
def export(fmt: str, out_dir: Path, data: Path, manifest: str, modalities: str | None, quiet: bool) -> None:
    """Write aligned sequences as an OpenGait dataset tree (one pkl per modality) + partition JSON.

    \b
    Example:
      depthgait-prep export --format opengait --out opengait/ --data cache/aligned.h5 --manifest casia-b
    Then point OpenGait's dataset_root at opengait/ and dataset_partition at opengait/partition.json.
    """
    from pipeline.interop.opengait import PARTITION_NAME, export_opengait
    from pipeline.manifest import load_manifest

    names = [m.strip() for m in modalities.split(",") if m.strip()] if modalities else None
    result = export_opengait(data, out_dir, load_manifest(manifest), names, quiet=quiet)
    part = result.partition
    click.echo(
        f"exported {result.exported} sequences ({result.with_depth} with depth) to {out_dir}; "
        f"{out_dir / PARTITION_NAME}: {len(part['TRAIN_SET'])} train / {len(part['TEST_SET'])} test subjects"
    )
    _report_failures(result.failed, "sequences")


@click.command("import")
@click.argument("src", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.option("--format", "fmt", type=click.Choice(["opengait", "sustech1k"]), default="opengait", show_default=True,
              help="opengait: a pkl tree <subject>/<condition>/<view>/; sustech1k: the SUSTech1K release (RGB + silhouettes).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=DEFAULT_ALIGNED, show_default=True,
              help="Aligned file to write.")
@click.option("--overwrite", is_flag=True, help="Replace an existing output file.")
@click.option("--sil-pattern", default=None, help="opengait: glob of the silhouette pkl in each folder.")
@click.option("--depth-pattern", default=None, help="opengait: glob of the depth pkl in each folder.")
@click.option("--depth", "depth_model", default=DEFAULT_DEPTH, show_default=True, help="sustech1k: depth model (Hub id or folder).")
@click.option("--manifest", default=None, help="Split to report (default: sustech1k for --format sustech1k).")
@click.option("--batch-size", type=click.IntRange(1, 4096), default=16, show_default=True, help="sustech1k: depth-model batch.")
@click.option(
    "--depth-input-height", type=click.IntRange(14, 2048), default=None, help="sustech1k: crop height fed to the depth model [default: its own input size, at most 266]."
)
@device_option
@quiet_option
@handle_errors
def import_(
    src: Path,
    fmt: str,
    out: Path,
    overwrite: bool,
    sil_pattern: str | None,
    depth_pattern: str | None,
    depth_model: str,
    manifest: str | None,
    batch_size: int,
    depth_input_height: int | None,
    device: str,
    quiet: bool,
) -> None:
    """Read an OpenGait pkl tree or a SUSTech1K release into an aligned file.

    \b
    Examples:
      depthgait-prep import --format opengait CASIA-B-pkl/ --out cache/aligned.h5
      depthgait-prep import --format opengait SUSTech1K-Released-pkl/ --sil-pattern '??-???-Camera-Sils_aligned.pkl'
      depthgait-prep import --format sustech1k SUSTech1K-Released-2023/ --depth models/depth-anything-small
    A broken or malformed sequence is listed and skipped; the exit code is 1 when any was skipped.
    """
    from pipeline.manifest import load_manifest

    if out.exists() and not overwrite:
        raise click.ClickException(f"{out} exists; pass --overwrite to replace it")
    if fmt == "opengait":
        from pipeline.interop.opengait import import_opengait

        result = import_opengait(src, out, sil_pattern, depth_pattern, quiet=quiet)
    else:
        from pipeline.interop.sustech1k import import_sustech1k

        manifest = manifest or "sustech1k"
        from pipeline.depth.estimator import DepthEstimator

        load_manifest(manifest)  # a wrong name fails before the depth model loads
        estimator = DepthEstimator(depth_model, resolve_device(device), depth_input_height, batch_size)
        result = import_sustech1k(src, out, manifest=manifest, estimator=estimator, quiet=quiet)
    click.echo(f"imported {result.imported} sequences ({result.with_depth} with depth) into {out}")
    if manifest:
        from pipeline.formats.aligned import AlignedReader

        with AlignedReader(out) as reader:
            train, test = load_manifest(manifest).split_subjects(s.subject for s in reader.ids())
        click.echo(f"split ({manifest}): {len(train)} train / {len(test)} test subjects")
    if result.short:
        click.echo(f"warning: {len(result.short)} sequences have fewer than 5 frames: {', '.join(result.short[:5])}", err=True)
    _report_failures(result.failed, "sequences")
