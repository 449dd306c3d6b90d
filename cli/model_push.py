"""``depthgait push``: share a trained run as a Hugging Face Hub model (or a Hub-style folder)."""
from __future__ import annotations

import json
from pathlib import Path

import click

from cli.common import handle_errors
from pipeline.errors import InputError


def _read_report(path: Path | None, checkpoint: Path) -> dict | None:
    """The test report for the model card: ``--report``, else ``test.json`` beside the checkpoint, else none."""
    path = path or (checkpoint.parent / "test.json" if (checkpoint.parent / "test.json").is_file() else None)
    if path is None:
        return None
    try:
        report = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise InputError(f"{path}: not a JSON report from `depthgait test --json` ({exc})") from exc
    if not isinstance(report, dict) or "conditions" not in report:
        raise InputError(f"{path}: not a report from `depthgait test --json` (no 'conditions')")
    return report


@click.command("push")
@click.argument("repo")
@click.option("--checkpoint", type=click.Path(exists=True, dir_okay=False, path_type=Path), required=True,
              help="The training checkpoint to share (ckpt.pt).")
@click.option("--report", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Test report for the model card (`depthgait test --json`) [default: test.json beside the checkpoint].")
@click.option("--to-folder", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Write the Hub-style folder here instead of uploading (share it any way, load it with --checkpoint DIR).")
@click.option("--private", is_flag=True, help="Create the Hub repo as private.")
@click.option("--token", default=None, envvar="HF_TOKEN", show_envvar=True,
              help="Hugging Face token [default: the one `hf auth login` saved].")
@handle_errors
def push(repo: str, checkpoint: Path, report: Path | None, to_folder: Path | None, private: bool, token: str | None) -> None:
    """Upload CHECKPOINT as the Hub model REPO (user/name): config.json, model.safetensors and a model card
    with the recipe, the data and the test table. Anyone can then load it by name.

    \b
    Example:
      depthgait push --checkpoint runs/small-cpu/ckpt.pt you/depthgait-small-cpu --report runs/small-cpu/test.json
      depthgait push --checkpoint runs/casia-b/ckpt.pt you/depthgait-casia-b --to-folder shared/depthgait-casia-b
    Then: depthgait test --checkpoint you/depthgait-casia-b, or DepthGait.from_pretrained("you/depthgait-casia-b").
    """
    from depthgait_model import hub

    if "/" not in repo:
        raise click.BadParameter(f"{repo!r} is not a Hub repo id (user/name)", param_hint="REPO")
    card_report = _read_report(report, checkpoint)
    if to_folder is not None:
        folder = hub.save_pretrained(checkpoint, to_folder, repo, card_report)
        click.echo(f"wrote {', '.join(sorted(p.name for p in folder.iterdir()))} to {folder}")
        return
    url = hub.push_to_hub(checkpoint, repo, card_report, private=private, token=token)
    click.echo(f"pushed {checkpoint} to https://huggingface.co/{repo} ({url})")
