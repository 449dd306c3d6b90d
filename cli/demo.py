"""``make demo``: the whole chain on a built-in synthetic sample, offline, in minutes.

It runs the same commands a user would type (printed before each runs), so the demo doubles as
a worked example: synthesise a small CASIA-B-shaped set, extract, align, train the small CPU
recipe, test it, and leave in ``OUT/`` the report and the pictures a person would look at.
Every stage skips finished work, so a rerun (or a run after an interruption) resumes.
"""
from __future__ import annotations

import json
import shlex
import subprocess
import sys
import time
from pathlib import Path

import click

from cli.common import CONTEXT_SETTINGS, version_option
from pipeline.atomic import write_text_atomic
from pipeline.formats.yaml_file import read_yaml_mapping
from pipeline.manifest import MANIFEST_DIR, ManifestError

# Enough for a train/test split of subjects, the views of the depth study (front, two obliques, side, back;
# with only 000/090/180 every cross-view pair is 90 or 180 degrees apart) and all three probe conditions:
# gallery nm-01..04, probes nm-05 (NM), bg-01 (BG), cl-01 (CL).
DEMO_CONDITIONS = "nm-01,nm-02,nm-03,nm-04,nm-05,bg-01,cl-01"
DEMO_VIEWS = "000,054,090,126,180"
# On 2 cores (measured on 70 demo videos): one model thread per extract worker, since 4 threads in each of 2
# processes oversubscribe (38 s against 34 s), and the depth model in batches of 10 crops, which divides the 20
# frames of a demo video, since a forward always runs a full batch (34 s -> 30 s). Training loads its batches in the
# main process: loader processes only take cores from the model (0.82 against 0.88 s per iteration, same losses).
DEPTH_BATCH = 10
# The demo runs ``python -m cli.prep ...`` (no PATH needed) and shows what a user types.
TYPED_NAMES = {"cli.prep": "depthgait-prep", "cli.main": "depthgait"}


def typed_command(argv: list[str]) -> str:
    """``[python, -m, cli.prep, synth, ...]`` -> ``depthgait-prep synth ...``, as a user types it."""
    if len(argv) >= 3 and argv[1] == "-m" and argv[2] in TYPED_NAMES:
        argv = [TYPED_NAMES[argv[2]], *argv[3:]]
    return " ".join(shlex.quote(a) for a in argv)


def run_step(name: str, argv: list[str], timings: dict[str, float], allow_exit: tuple[int, ...] = (0,)) -> None:
    """Run one stage as its real command line, echoing it; stop the demo if it fails."""
    shown = typed_command(argv)
    click.secho(f"\n$ {shown}", fg="cyan", err=True)
    start = time.perf_counter()
    code = subprocess.call(argv)
    timings[name] = round(time.perf_counter() - start, 1)
    if code not in allow_exit:
        raise click.ClickException(f"demo step '{name}' failed with exit code {code}: {shown}")


def demo_manifest(out: Path, subjects: int, test_subjects: int) -> Path:
    """``OUT/manifest.yaml``: the synthetic manifest with the demo's split, the last ``test_subjects`` testing.

    The shipped ``synthetic`` manifest halves any set; the demo states its split, so ``--subjects`` and
    ``--test-subjects`` choose it and the file shows a reader which people were held out."""
    import yaml

    raw = read_yaml_mapping(MANIFEST_DIR / "synthetic.yaml", ManifestError, "manifest keys")
    first_test = subjects - test_subjects + 1
    raw["name"] = "synthetic-demo"
    raw["split"] = {"train": [f"001-{first_test - 1:03d}"], "test": [f"{first_test:03d}-{subjects:03d}"]}
    path = out / "manifest.yaml"
    out.mkdir(parents=True, exist_ok=True)
    write_text_atomic(path, "# written by the demo: the synthetic manifest with its own split\n"
                      + yaml.safe_dump(raw, sort_keys=False))
    return path


def contact_sheet(aligned: Path, out: Path, per_view: int = 1) -> Path:
    """One row per (view, condition) of the first test subject: silhouette beside depth."""
    from pipeline.formats.aligned import AlignedReader
    from pipeline.tools.contact_sheet import sequences_sheet, write_png

    with AlignedReader(aligned) as reader:
        ids = reader.ids()
        subject = ids[-1].subject
        chosen = [s for s in ids if s.subject == subject and s.condition in ("nm-01", "bg-01", "cl-01")]
        image = sequences_sheet([reader.load(s) for s in chosen], frames_per_seq=10, scale=2)
    return write_png(out, image)


@click.command(context_settings=CONTEXT_SETTINGS)
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=Path("demo"), show_default=True,
              help="Folder for the videos, caches, run and report.")
@click.option("--subjects", type=click.IntRange(4, 999), default=16, show_default=True,
              help="Synthetic people; the last --test-subjects of them test, the others train.")
@click.option("--test-subjects", type=click.IntRange(2), default=8, show_default=True,
              help="People held out for the test (never seen in training).")
@click.option("--frames", type=click.IntRange(14), default=20, show_default=True,
              help="Frames per video (a clip of the recipe spans 14: 10 frames, 4 skipped).")
@click.option("--iterations", type=click.IntRange(1), default=500, show_default=True, help="Training iterations.")
@click.option("--config", "config_name", default="small-cpu", show_default=True, help="Model recipe.")
@click.option("--workers", type=click.IntRange(1), default=2, show_default=True, help="Processes for synth and extract.")
@click.option("--seed", type=click.IntRange(0, 2**32 - 1), default=0, show_default=True,
              help="Seed of the synthetic people and of training.")
@version_option
def main(out: Path, subjects: int, test_subjects: int, frames: int, iterations: int, config_name: str, workers: int,
         seed: int) -> None:
    """Run synth -> extract -> align -> train -> test on a built-in synthetic sample.

    \b
    Example:
      python -m cli.demo --out demo            # what `make demo` runs
      python -m cli.demo --subjects 6 --test-subjects 2 --iterations 50
    """
    if test_subjects >= subjects:
        raise click.BadParameter(f"{test_subjects} test subjects leave none of {subjects} to train on",
                                 param_hint="--test-subjects")
    py = sys.executable
    videos, cache, run = out / "videos", out / "cache", out / "run"
    aligned = cache / "aligned.h5"
    timings: dict[str, float] = {}
    total = time.perf_counter()
    run_step("synth", [py, "-m", "cli.prep", "synth", str(videos), "--subjects", str(subjects), "--views", DEMO_VIEWS,
                       "--conditions", DEMO_CONDITIONS, "--frames", str(frames), "--seed", str(seed),
                       "--workers", str(workers)], timings)
    run_step("extract", [py, "-m", "cli.prep", "extract", str(videos), "--cache", str(cache), "--manifest", "synthetic",
                         "--detector", "bgsub", "--segmenter", "bgsub", "--depth", "depthgait/synthdepth-small",
                         "--workers", str(workers), "--threads", "1", "--batch-size", str(DEPTH_BATCH)], timings)
    run_step("align", [py, "-m", "cli.prep", "align", "--cache", str(cache)], timings)
    milestones = f"[{int(iterations * 0.7)},{int(iterations * 0.9)}]"
    manifest = str(demo_manifest(out, subjects, test_subjects))
    train_argv = [py, "-m", "cli.main", "train", "--data", str(aligned), "--manifest", manifest, "--config",
                  config_name, "--out", str(run), "--iterations", str(iterations), "--seed", str(seed),
                  "--set", f"train.milestones={milestones}", "--set", f"train.checkpoint_every={max(1, iterations // 4)}",
                  "--set", f"train.batch_p={min(8, subjects - test_subjects)}", "--set", "train.num_workers=0"]
    if (run / "ckpt.pt").exists():
        train_argv.append("--resume")
    run_step("train", train_argv, timings)
    run_step("test", [py, "-m", "cli.main", "test", "--checkpoint", str(run / "ckpt.pt"), "--data", str(aligned),
                      "--manifest", manifest, "--json", str(out / "report.json"), "--plots", str(out)], timings)

    sheet = contact_sheet(aligned, out / "aligned_frames.png")
    loss_png = run / "loss.png"
    if loss_png.exists():
        (out / "loss.png").write_bytes(loss_png.read_bytes())
    timings["total"] = round(time.perf_counter() - total, 1)
    write_text_atomic(out / "timings.json", json.dumps(timings, indent=2) + "\n")
    report = json.loads((out / "report.json").read_text())
    conditions = report.get("conditions", ["NM", "BG", "CL"])
    summary = {"rank1": {c: report[c]["mean"] for c in conditions}, "test_subjects": test_subjects,
               "chance": 100 / test_subjects, "timings": timings}
    write_text_atomic(out / "summary.json", json.dumps(summary, indent=2) + "\n")  # scripts/readme_numbers.py reads it
    means = ", ".join(f"{c} {report[c]['mean']:.1f}%" for c in conditions)
    click.echo(f"\nDemo finished in {timings['total'] / 60:.1f} min. Mean rank-1 (identical views excluded): {means}")
    click.echo(f"Chance level: {100 / test_subjects:.0f}% ({test_subjects} test subjects).")
    click.echo(f"Look at: {out}/report.json, {sheet}, {out}/loss.png, {out}/rank1_views.png, {out}/cmc.png")


if __name__ == "__main__":
    main()
