"""``depthgait-prep synth``: write synthetic CASIA-B-named walking videos with exact ground truth."""
from __future__ import annotations

import click

from cli.common import handle_errors, quiet_option, workers_option


def _csv(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


def _size(value: str) -> tuple[int, int]:
    try:
        width, height = (int(v) for v in value.lower().split("x"))
    except ValueError:
        raise click.BadParameter(f"{value!r} is not WIDTHxHEIGHT, e.g. 320x240") from None
    return width, height


@click.command()
@click.argument("out_dir", type=click.Path(file_okay=False))
@click.option("--subjects", type=click.IntRange(1, 999), default=3, show_default=True, help="Subjects 001..N.")
@click.option("--people", type=click.IntRange(1, 254), default=None,
              help="Render crowds instead: N different subjects walking at once per scene (scene-K-VVV.avi).")
@click.option("--scenes", type=click.IntRange(1, 999), default=1, show_default=True,
              help="With --people: how many scenes (scene K holds subjects (K-1)*N+1 .. K*N).")
@click.option("--views", default="000,018,036,054,072,090,108,126,144,162,180", show_default=True,
              help="Walking-direction azimuths (CASIA-B: 000 towards the camera, 090 across, 180 away).")
@click.option("--conditions", default="nm-01,nm-02,nm-03,nm-04,nm-05,nm-06,bg-01,bg-02,cl-01,cl-02",
              show_default=True, help="nm = normal, bg = carrying a bag, cl = wearing a coat.")
@click.option("--frames", type=click.IntRange(1), default=60, show_default=True, help="Frames per video (25 fps).")
@click.option("--size", "size", default="320x240", show_default=True, help="Frame size WIDTHxHEIGHT.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True, help="Same seed, same bytes.")
@click.option("--codec", type=click.Choice(["ffv1", "mjpg"]), default="ffv1", show_default=True,
              help="ffv1: lossless (~115 KB/frame); mjpg: ~10x smaller, lossy edges.")
@click.option("--overwrite", is_flag=True, help="Redo videos that already exist with the same settings.")
@click.option("--backgrounds/--no-backgrounds", default=True, show_default=True,
              help="Also write one empty-scene video per view (bkgrd-VVV.avi), for background subtraction.")
@workers_option
@quiet_option
@handle_errors
def synth(out_dir: str, subjects: int, people: int | None, scenes: int, views: str, conditions: str, frames: int, size: str, seed: int,
          codec: str, overwrite: bool, backgrounds: bool, workers: int, quiet: bool) -> None:
    """Render people walking past a fixed camera as OUT_DIR/SSS-CC-NN-VVV.avi, with ground truth
    (box, mask, depth in metres) in OUT_DIR/truth/SSS-CC-NN-VVV.h5.

    With --people N, render crowds: N subjects walk at once in different directions and speeds,
    entering, leaving and hiding each other, as OUT_DIR/scene-K-VVV.avi with truth (per-pixel
    person id, per-walker boxes, depth) in OUT_DIR/truth/scene-K-VVV.h5. A view turns the scene
    about its centre (090: walkers mostly cross the picture). Each walker's condition is drawn
    from --conditions.

    \b
    Example:
      depthgait-prep synth videos/ --subjects 2 --views 000,090 --conditions nm-01,bg-01,cl-01 --frames 30
      depthgait-prep synth crowds/ --people 3 --scenes 2 --views 090 --frames 80
    """
    from pipeline.synthetic.dataset import generate_dataset

    if people is not None:
        from pipeline.synthetic.crowd import generate_crowds

        paths = generate_crowds(out_dir, people=people, scenes=scenes, views=_csv(views),
                                conditions=_csv(conditions), frames=frames, size=_size(size), seed=seed,
                                workers=workers, quiet=quiet, overwrite=overwrite, codec=codec,
                                backgrounds=backgrounds)
        click.echo(f"{len(paths)} crowd videos of {people} people in {out_dir} (ground truth in {out_dir}/truth)")
        return

    paths = generate_dataset(out_dir, subjects=subjects, views=_csv(views), conditions=_csv(conditions),
                             frames=frames, size=_size(size), seed=seed, workers=workers, quiet=quiet,
                             overwrite=overwrite, codec=codec, backgrounds=backgrounds)
    click.echo(f"{len(paths)} videos in {out_dir} (ground truth in {out_dir}/truth)")
