"""``depthgait-prep align``, ``status`` and ``show``: the aligned file and the tools to check a cache."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import handle_errors, json_option, quiet_option, workers_option, write_json

cache_option = click.option(
    "--cache",
    type=click.Path(file_okay=False, path_type=Path),
    default=Path("cache"),
    show_default=True,
    help="The cache folder that `depthgait-prep extract` filled.",
)


@click.command()
@cache_option
@click.option(
    "--out", type=click.Path(dir_okay=False, path_type=Path), help="Aligned file [default: CACHE/aligned.h5]."
)
@click.option(
    "--min-frames",
    type=click.IntRange(min=1),
    default=5,
    show_default=True,
    help="Shorter sequences are reported and left out.",
)
@click.option(
    "--min-pixels",
    type=click.IntRange(min=1),
    default=100,
    show_default=True,
    help="Frames whose silhouette is smaller are dropped.",
)
@workers_option
@click.option("--overwrite", is_flag=True, help="Redo the file even when it is up to date.")
@quiet_option
@handle_errors
def align(
    cache: Path, out: Path | None, min_frames: int, min_pixels: int, workers: int, overwrite: bool, quiet: bool
) -> None:
    """Align every per-video cache into one aligned file (64x64 silhouette + depth per frame).

    OpenGait's pretreatment is applied identically to silhouette and depth, so pixel (i, j) of
    both is the same body point; depth is normalised inside the silhouette, near = bright. A rerun
    with unchanged caches and settings does no work.

    \b
    Example:
      depthgait-prep align --cache cache --workers 4
      depthgait-prep align --min-frames 10 --overwrite
    """
    from pipeline.align.batch import run_align
    from pipeline.align.frames import AlignSettings

    settings = AlignSettings(min_frames=min_frames, min_pixels=min_pixels)
    report = run_align(cache, out, settings, workers=workers, overwrite=overwrite, quiet=quiet)
    click.echo(report.summary())
    failed = report.by_status("failed")
    if failed:
        raise click.ClickException(f"{len(failed)} cache(s) could not be aligned (listed above)")


@click.command()
@cache_option
@click.option(
    "--data", "--aligned", "aligned", type=click.Path(dir_okay=False, path_type=Path),
    help="Aligned file [default: CACHE/aligned.h5].",
)
@json_option
@handle_errors
def status(cache: Path, aligned: Path | None, json_path: Path | None) -> None:
    """Summarise a cache: videos done, failed (with reasons), frames kept and dropped, short sequences.

    \b
    Example:
      depthgait-prep status --cache cache
      depthgait-prep status --json status.json
      depthgait-prep status --json - | jq .videos
    """
    from pipeline.tools.status import cache_status

    result = cache_status(cache, aligned)
    if not write_json(json_path, result.to_dict()):
        click.echo(result.format())


@click.command()
@click.argument("sequence")
@click.option(
    "--data", type=click.Path(dir_okay=False, path_type=Path), help="Aligned file [default: CACHE/aligned.h5]."
)
@cache_option
@click.option(
    "--out",
    type=click.Path(dir_okay=False, path_type=Path),
    help="PNG to write [default: show-SUBJECT-CONDITION-VIEW.png].",
)
@click.option(
    "--max-frames",
    type=click.IntRange(min=1),
    default=16,
    show_default=True,
    help="Frames sampled evenly over the sequence.",
)
@click.option("--cols", type=click.IntRange(min=1), default=8, show_default=True, help="Frames per row of the sheet.")
@handle_errors
def show(sequence: str, data: Path | None, cache: Path, out: Path | None, max_frames: int, cols: int) -> None:
    """Write a PNG contact sheet of one aligned sequence (SUBJECT/CONDITION/VIEW).

    Aligned silhouette and depth side by side per frame, and the raw frames with the person box
    (the aligned file stores the video's absolute path and the boxes, so this works from any
    folder) and, when the extract cache is at hand, the silhouette tinted green.

    \b
    Example:
      depthgait-prep show 001/nm-01/090 --out sheet.png
      depthgait-prep show 001/nm-01/090 --data cache/aligned.h5 --max-frames 8
    """
    from pipeline.tools.contact_sheet import show_sequence

    out = out or Path(f"show-{sequence.strip('/').replace('/', '-')}.png")
    result = show_sequence(sequence, data or cache / "aligned.h5", cache, out, max_frames, cols)
    click.echo(f"wrote {result.out} ({result.width}x{result.height})")
    if result.note:
        click.echo(result.note)
