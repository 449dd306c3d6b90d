"""``depthgait embed`` / ``depthgait identify``: a trained model on people's own videos."""
from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from cli.common import checkpoint_option, extract_options, handle_errors, json_option, quiet_option, write_json

if TYPE_CHECKING:
    from depthgait_model.infer import Inference
    from pipeline.extract.settings import ExtractSettings

CHECKPOINT_HELP = "Trained model: a ckpt.pt, a folder saved by `depthgait push --to-folder`, or a Hub id (user/name)."


def manifest_option(help_text: str) -> Any:
    return click.option("--manifest", default="casia-b", show_default=True, help=help_text)


def _inference(checkpoint: str, extract_settings: ExtractSettings, quiet: bool) -> Inference:
    from depthgait_model.infer import Inference

    return Inference(checkpoint, extract_settings.device, extract_settings, quiet=quiet)


@click.command("embed")
@checkpoint_option(CHECKPOINT_HELP)
@click.argument("inputs", nargs=-1, required=True, type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), required=True, help="Embeddings .npz to write.")
@click.option("--layout", default="names", show_default=True, help="Identity of videos: names, folders or a CSV file.")
@extract_options
@manifest_option("Manifest (name or YAML) whose naming gives each video's identity with --layout names.")
@quiet_option
@handle_errors
def embed(
    checkpoint: str, inputs: tuple[Path, ...], out: Path, layout: str, extract_settings: ExtractSettings,
    manifest: str, quiet: bool,
) -> None:
    """Embed videos (the whole chain, in memory) or aligned.h5 files into an .npz gallery.

    \b
    Examples:
      depthgait embed --checkpoint runs/small-cpu/ckpt.pt videos/ --out gallery.npz
      depthgait embed --checkpoint runs/small-cpu/ckpt.pt cache/aligned.h5 --out test.npz
      depthgait embed --checkpoint ckpt.pt people/ --layout folders --detector yolo --segmenter sam --device cuda --out g.npz
    The npz holds embeddings, labels, types, views, as `depthgait evaluate` reads them.
    Videos with no usable person are listed and skipped (exit code 1); the rest are written.
    """
    from depthgait_model.embeddings import save_embeddings
    from depthgait_model.infer import embed_inputs
    from pipeline.manifest import load_manifest

    inf = _inference(checkpoint, extract_settings, quiet)
    result = embed_inputs(inf, inputs, load_manifest(manifest), layout)
    save_embeddings(out, result.embeddings)
    emb = result.embeddings
    click.echo(f"wrote {len(emb)} embeddings of {len(set(emb.labels))} subjects to {out}")
    for failure in result.failed:
        click.echo(f"skipped: {failure.line()}", err=True)
    if result.failed:
        raise click.ClickException(f"{len(result.failed)} inputs skipped (listed above); the rest were written")


@click.command("identify")
@checkpoint_option(CHECKPOINT_HELP)
@click.option("--gallery", type=click.Path(dir_okay=False, path_type=Path), required=True, help="npz from `depthgait embed`.")
@click.argument("video", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--top-k", type=click.IntRange(min=1), default=5, show_default=True, help="How many identities to list.")
@click.option("--metric", type=click.Choice(["euc", "cos"]), default="euc", show_default=True,
              help="Distance: per-part Euclidean averaged over parts, or 1 - mean per-part cosine.")
@click.option("--max-distance", type=click.FloatRange(min=0), default=None,
              help="Open set: a track whose nearest identity is farther than this is 'unknown'.")
@click.option("--save-video", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Write the input with each person's box, track id and identity drawn (.mp4 or .avi).")
@json_option
@extract_options
@manifest_option("Manifest (name or YAML) used to read the video's name (its view, when it follows the naming).")
@quiet_option
@handle_errors
def identify(
    checkpoint: str, gallery: Path, video: Path, top_k: int, metric: str, max_distance: float | None,
    save_video: Path | None, json_path: Path | None, extract_settings: ExtractSettings, manifest: str, quiet: bool,
) -> None:
    """Rank every person track of VIDEO against the gallery identities.

    \b
    Example:
      depthgait identify --checkpoint runs/small-cpu/ckpt.pt --gallery gallery.npz walk.mp4 --top-k 5
      depthgait identify --checkpoint ckpt.pt --gallery g.npz plaza.avi --max-distance 0.8 --save-video out.mp4 --json -
      depthgait identify --checkpoint user/depthgait-casia-b --gallery gallery.npz walk.mp4
    The gallery must come from `depthgait embed` with the same checkpoint (it records the model's
    fingerprint). Exit code 1 when the video holds no usable person.
    """
    from depthgait_model.annotate import AnnotatedTrack, annotate_video
    from depthgait_model.embeddings import load_embeddings
    from depthgait_model.identify import identify_json
    from depthgait_model.infer import identify_video
    from pipeline.manifest import load_manifest

    gallery_emb = load_embeddings(gallery)
    inf = _inference(checkpoint, extract_settings, quiet)
    warning = inf.check_gallery(gallery_emb, str(gallery))
    if warning:
        click.echo(f"warning: {warning}", err=True)
    probes, tracks = identify_video(inf, gallery_emb, video, load_manifest(manifest), top_k, metric, max_distance)
    if save_video is not None:
        drawn = [AnnotatedTrack(p.track_id, p.frames, p.boxes, t.label) for p, t in zip(probes, tracks, strict=True)]
        written = annotate_video(video, save_video, drawn)
        click.echo(f"wrote {save_video} ({written} frames)", err=json_path is not None and str(json_path) == "-")
    if write_json(json_path, identify_json(str(video), tracks, metric, max_distance)):
        return
    click.echo(f"{video}: {len(tracks)} track(s) against {len(set(gallery_emb.labels))} gallery subjects "
               f"({metric} distance)")
    for t in tracks:
        span = ", ".join(f"{v:.0f}" for v in t.box_span)
        click.echo(f"track {t.track}: frames {t.frames['first']}-{t.frames['last']} ({t.frames['count']}), "
                   f"box span [{span}]: {t.identity}")
        for rank, m in enumerate(t.matches, 1):
            click.echo(f"{rank:>3}. {m.label:<12} {m.distance:10.4f}   (nearest sequence {m.type} {m.view})")
