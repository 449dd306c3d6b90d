"""``depthgait-prep extract``: videos -> per-video HDF5 caches (box, silhouette, raw depth of the crop)."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

import click

from cli.common import extract_options, handle_errors, quiet_option, workers_option

if TYPE_CHECKING:
    from pipeline.extract.settings import ExtractSettings

SHOW_FAILURES = 5  # failures printed with their reason at the end of a run


@click.command()
@click.argument("videos_dir", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=Path("cache"), show_default=True,
              help="Where the per-video caches and errors.jsonl go.")
@click.option("--manifest", default="casia-b", show_default=True, help="Manifest name or YAML path (naming, extensions).")
@click.option("--layout", default="names", show_default=True,
              help="Identity of each video: names (manifest naming), folders (<subject>/<condition>/<view>.ext), "
                   "footage (subject <video stem>.<track>, condition footage, view 000; implies --tracks all) "
                   "or a CSV file with the header path,subject,condition,view (paths relative to the CSV).")
@extract_options
@workers_option
@click.option("--streams", type=click.IntRange(1, 64), default=1, show_default=True,
              help="Videos in flight per process, their model calls batched together (a GPU: 4-8); same bytes.")
@click.option("--dask-scheduler", default=None, metavar="ADDRESS",
              help="Run the videos on a Dask cluster (several machines sharing the cache folder), e.g. tcp://host:8786.")
@click.option("--overwrite", is_flag=True, help="Redo videos whose cache is up to date.")
@quiet_option
@handle_errors
def extract(
    videos_dir: Path, cache: Path, manifest: str, layout: str, extract_settings: ExtractSettings, workers: int,
    streams: int,
    dask_scheduler: str | None, overwrite: bool, quiet: bool,
) -> None:
    """Detect, segment and estimate the depth of the walking person in every video of INPUT.

    INPUT is a video file, a folder of image frames (img_0001.png ...: one video) or a folder
    searched recursively for both. A single input whose name fits no manifest naming is footage:
    its sequences are <video stem>.<track>/footage/000, one per person track (--tracks all).

    One cache file per video goes to CACHE/videos/<subject>/<condition>/<view>.h5; a rerun skips
    videos whose complete cache matches the settings (a damaged one is redone), so a killed run
    resumes, and several processes or machines can share one cache (each video is claimed by one).
    Bad videos are rows in CACHE/errors.jsonl and never stop the batch; the exit code is 1 when some
    failed. A full or read-only cache folder stops the run with one line. Where the
    walker hardly moves in the frame (frontal views), put a background video
    <subject>-bkgrd-<view>.avi (CASIA-B ships them) beside the videos for --detector bgsub.

    \b
    Example:
      depthgait-prep extract videos/ --detector bgsub --segmenter bgsub --depth models/depth-anything-small
      depthgait-prep extract casia-b/ --detector yolo --segmenter sam --sam vit_b --device cuda
      depthgait-prep extract /shared/casia-b/ --cache /shared/cache --dask-scheduler tcp://head:8786
      depthgait-prep extract "plaza camera 2.avi" --cache plaza      (footage: every person, one sequence each)
      depthgait-prep extract clips/ --layout footage --tracks all --detector yolo
    """
    from pipeline.extract.batch import run_extract
    from pipeline.extract.worker import oversubscription

    crowded = None if dask_scheduler else oversubscription(workers, extract_settings.threads)
    if crowded and not quiet:
        click.echo(f"warning: {crowded}", err=True)
    summary = run_extract(
        videos_dir, cache, extract_settings, manifest, layout, workers, overwrite, quiet, scheduler=dask_scheduler,
        streams=streams,
    )
    click.echo(summary.line(cache))
    failed = [row for row in summary.rows if row.level == "error"]
    for row in failed[:SHOW_FAILURES]:  # why a video failed reaches the console, not only errors.jsonl
        click.echo(f"failed: {row.line()}", err=True)
    if len(failed) > SHOW_FAILURES:
        click.echo(f"... and {len(failed) - SHOW_FAILURES} more in {cache / 'errors.jsonl'}", err=True)
    if summary.failed:
        raise click.exceptions.Exit(1)
