"""``depthgait-prep extract``: videos -> per-video HDF5 caches (box, silhouette, raw depth of the crop)."""

from __future__ import annotations

from pathlib import Path

import click

from cli.common import device_option, handle_errors, quiet_option, resolve_device, workers_option


@click.command()
@click.argument("videos_dir", type=click.Path(file_okay=False, path_type=Path))
@click.option("--cache", type=click.Path(file_okay=False, path_type=Path), default=Path("cache"), show_default=True,
              help="Where the per-video caches and errors.jsonl go.")  # fmt: skip
@click.option("--manifest", default="casia-b", show_default=True, help="Manifest name or YAML path (naming, extensions).")
@click.option("--layout", default="names", show_default=True,
              help="Identity of each video: names (manifest naming), folders (<subject>/<condition>/<view>.ext) "
                   "or a CSV file with path,subject,condition,view.")  # fmt: skip
@click.option("--detector", type=click.Choice(["bgsub", "yolo"]), default="bgsub", show_default=True,
              help="bgsub: background subtraction of the static camera (no weights); yolo: ultralytics YOLO.")  # fmt: skip
@click.option("--detector-weights", default="yolo11n.pt", show_default=True, help="YOLO weights name or path.")
@click.option("--segmenter", type=click.Choice(["bgsub", "sam", "yolo-seg"]), default="bgsub", show_default=True,
              help="Silhouette inside the box: background subtraction, segment-anything, or YOLO-seg.")  # fmt: skip
@click.option("--sam", default="vit_b", show_default=True, help="SAM size (vit_b, vit_l, vit_h) or checkpoint path.")
@click.option("--seg-weights", default="yolo11n-seg.pt", show_default=True, help="YOLO-seg weights name or path.")
@click.option("--depth", default="depth-anything/Depth-Anything-V2-Small-hf", show_default=True,
              help="Depth model: Hugging Face Hub id (from the local cache offline) or a local folder.")  # fmt: skip
@click.option("--margin", type=click.FloatRange(0, 1), default=0.1, show_default=True,
              help="Share of the box size added on each side of the crop.")  # fmt: skip
@device_option
@click.option("--batch-size", type=click.IntRange(min=1), default=16, show_default=True, help="Frames per model call.")
@workers_option
@click.option("--threads", type=click.IntRange(min=1), default=4, show_default=True,
              help="Model threads per process, whatever --workers (the bytes of depth depend on it: keep it fixed "
                   "for a cache; --workers x --threads about the number of cores).")  # fmt: skip
@click.option("--streams", type=click.IntRange(min=1), default=1, show_default=True,
              help="Videos in flight per process, their model calls batched together (a GPU: 4-8); same bytes.")
@click.option("--half/--no-half", default=True, show_default=True,
              help="fp16 autocast on CUDA for detection, segmentation and depth (no effect on a CPU).")
@click.option("--dask-scheduler", default=None, metavar="ADDRESS",
              help="Run the videos on a Dask cluster (several machines sharing the cache folder), e.g. tcp://host:8786.")
@click.option("--overwrite", is_flag=True, help="Redo videos whose cache is up to date.")
@quiet_option
@handle_errors
def extract(
    videos_dir: Path, cache: Path, manifest: str, layout: str, detector: str, detector_weights: str, segmenter: str,
    sam: str, seg_weights: str, depth: str, margin: float, device: str, batch_size: int, workers: int, threads: int, streams: int, half: bool,
    dask_scheduler: str | None, overwrite: bool, quiet: bool,
) -> None:  # fmt: skip
    """Detect, segment and estimate the depth of the walking person in every video under VIDEOS_DIR.

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
    """
    from pipeline.extract.batch import run_extract
    from pipeline.extract.settings import ExtractSettings

    settings = ExtractSettings(
        detector=detector, detector_weights=detector_weights, segmenter=segmenter, sam=sam, seg_weights=seg_weights,
        depth=depth, device=resolve_device(device), batch_size=batch_size, margin=margin, threads=threads, half=half,
    )  # fmt: skip
    summary = run_extract(videos_dir, cache, settings, manifest, layout, workers, overwrite, quiet,
                          scheduler=dask_scheduler, streams=streams)
    click.echo(summary.line(cache))
    if summary.failed:
        raise click.exceptions.Exit(1)
