"""Shareable models: a trained run as a Hugging Face Hub-style folder, loadable by folder or Hub id.

A training checkpoint (``ckpt.pt``) carries optimiser, sampler and RNG states that only resuming
needs. What is shared is a folder in the layout the Hub's tools expect:

- ``config.json``: the run's config (``RunConfig.to_dict()``), label map, iteration, training record;
- ``model.safetensors``: the weights (safetensors: no pickle, so loading runs no code);
- ``README.md``: a model card with the recipe, the data and the test table (``depthgait test --json``).

``save_pretrained`` writes it, ``push_to_hub`` uploads it with ``huggingface_hub``, and
``load_pretrained`` (behind ``DepthGait.from_pretrained`` and every ``--checkpoint``) reads a folder
or a Hub id from the Hugging Face cache, downloading it when the Hub can be reached.
"""
from __future__ import annotations

import json
import re
import tempfile
from pathlib import Path
from typing import Any

from depthgait_model.config import RunConfig
from pipeline.atomic import atomic_path, write_text_atomic
from pipeline.errors import DepthgaitError
from pipeline.formats import check_header

FORMAT = "depthgait-model"
VERSION = 1
CONFIG_NAME, WEIGHTS_NAME, CARD_NAME = "config.json", "model.safetensors", "README.md"
HUB_FILES = [CONFIG_NAME, WEIGHTS_NAME, CARD_NAME]
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class PretrainedError(DepthgaitError, ValueError):
    """A model folder or Hub id that cannot be read or fetched; the message says which and why."""


def is_pretrained_name(name: str | Path) -> bool:
    """A model folder (holds ``config.json``), or a Hub id (``user/name``) that is not a local file."""
    path = Path(name).expanduser()
    if path.is_dir():
        return True
    text = str(name)
    return not path.exists() and bool(_HUB_ID.match(text)) and path.suffix not in (".pt", ".pth")


# ---- write ---------------------------------------------------------------------------------------


def model_card(repo_id: str, run_config: RunConfig, meta: dict[str, Any], report: dict[str, Any] | None) -> str:
    """The README.md of a shared model: what it is, how it was trained, on what, and how it tested."""
    extra = meta.get("extra", {})
    mc, tc = run_config.model, run_config.train
    lines = [
        "---", "library_name: depthgait", "license: apache-2.0",
        "tags:", "- gait-recognition", "- depthgait", "- silhouette", "- depth", "---", "",
        f"# {repo_id}", "",
        "A DepthGait gait-recognition model: silhouettes and monocular depth of a walking person, fused by a "
        "multi-scale, cross-level fusion network (DepthGait, ACM MM 2025), trained with the depthgait toolkit.",
        "", "```python", "from depthgait_model.model import DepthGait", "",
        f'model = DepthGait.from_pretrained("{repo_id}")', "```", "",
        f"or `depthgait test --checkpoint {repo_id}` / `depthgait embed --checkpoint {repo_id} videos/ --out gallery.npz`.",
        "", "## Recipe", "",
        f"- recipe `{run_config.name or '?'}`, mode `{mc.mode}`, channels {list(mc.channels)}, "
        f"fusion levels {list(mc.fusion_levels)} ({mc.fusion_op}), {mc.parts} parts x {mc.embed_dim} dims",
        f"- {meta.get('iteration', '?')} iterations of P x K = {tc.batch_p} x {tc.batch_k} clips of {tc.frames} frames, "
        f"SGD lr {tc.lr} (x{tc.gamma} at {list(tc.milestones)}), seed {tc.seed}",
        "- the full config is `config.json` (`config`)", "", "## Data", "",
        f"- aligned file `{extra.get('data', '?')}`, manifest `{extra.get('manifest', '?')}`",
        f"- {len(meta.get('label_map', {}))} training subjects: {', '.join(sorted(meta.get('label_map', {}))[:20])}"
        + (" ..." if len(meta.get("label_map", {})) > 20 else ""),
        "", "## Test", "",
    ]
    if report:
        from depthgait_model.protocols import format_table

        lines += ["```", format_table(report), "```", ""]
        lines.append(f"{report.get('sequences', '?')} test sequences; the report is `test.json`.")
    else:
        lines.append("Not tested when this card was written (`depthgait push --report test.json` adds the table).")
    return "\n".join(lines) + "\n"


def save_pretrained(
    checkpoint: str | Path, folder: str | Path, repo_id: str | None = None, report: dict[str, Any] | None = None
) -> Path:
    """Write a training checkpoint as a Hub-style folder (config.json, model.safetensors, README.md[, test.json])."""
    from safetensors.torch import save_file

    from depthgait_model.checkpoint import config_of, load_checkpoint

    payload = load_checkpoint(checkpoint, map_location="cpu")
    run_config = config_of(payload, checkpoint)
    meta = {"iteration": payload["iteration"], "label_map": payload["label_map"], "extra": payload.get("extra", {})}
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    config = {"format": FORMAT, "version": VERSION, "config": run_config.to_dict(), **meta}
    write_text_atomic(folder / CONFIG_NAME, json.dumps(config, indent=1) + "\n")
    tensors = {k: v.contiguous() for k, v in payload["model"].items()}
    with atomic_path(folder / WEIGHTS_NAME) as tmp:
        save_file(tensors, str(tmp), metadata={"format": FORMAT})
    write_text_atomic(folder / CARD_NAME, model_card(repo_id or folder.name, run_config, meta, report))
    if report:
        write_text_atomic(folder / "test.json", json.dumps(report, indent=1) + "\n")
    return folder


def push_to_hub(
    checkpoint: str | Path, repo_id: str, report: dict[str, Any] | None = None, private: bool = False,
    token: str | None = None, commit_message: str = "Upload DepthGait model",
) -> str:
    """Upload a checkpoint as a Hub model repo (created if missing); returns the commit's URL."""
    from huggingface_hub import HfApi

    from pipeline.extract.weights import HF_OFFLINE_VARS, hub_host, why_no_download

    why = why_no_download(HF_OFFLINE_VARS, hub_host())
    if why:
        raise PretrainedError(f"cannot push to {repo_id!r}: {why} (write a folder with --to-folder and upload it later)")
    with tempfile.TemporaryDirectory(prefix="depthgait-push-") as tmp:
        folder = save_pretrained(checkpoint, Path(tmp) / repo_id.split("/")[-1], repo_id, report)
        api = HfApi(token=token)
        try:
            api.create_repo(repo_id, repo_type="model", private=private, exist_ok=True)
            info = api.upload_folder(folder_path=str(folder), repo_id=repo_id, repo_type="model",
                                     commit_message=commit_message)
        except Exception as exc:  # noqa: BLE001 - no token, no rights, a dropped connection: one line
            reason = (str(exc).splitlines() or [type(exc).__name__])[0]
            raise PretrainedError(f"cannot push to {repo_id!r}: {reason} (log in with `hf auth login`)") from exc
    return str(getattr(info, "commit_url", info))


# ---- read ----------------------------------------------------------------------------------------


def _download(repo_id: str) -> Path:
    """The Hub repo's folder from the Hugging Face cache, downloading it when it may (no offline switch, Hub reachable)."""
    from huggingface_hub import snapshot_download

    from pipeline.extract.weights import HF_OFFLINE_VARS, hub_host, why_no_download

    fetch = f"on a machine with internet run `hf download {repo_id}` (or pass a local folder saved by `depthgait push --to-folder`)"
    try:
        return Path(snapshot_download(repo_id, allow_patterns=HUB_FILES, local_files_only=True))
    except Exception:  # noqa: BLE001 - not (completely) in the cache: try the network below
        pass
    why = why_no_download(HF_OFFLINE_VARS, hub_host())
    if why:
        raise PretrainedError(f"model {repo_id!r} is no local file or folder, not in the Hugging Face cache, and {why}: {fetch}")
    try:
        return Path(snapshot_download(repo_id, allow_patterns=HUB_FILES))
    except Exception as exc:  # noqa: BLE001 - a missing repo, no access, a dropped connection: one line
        reason = (str(exc).splitlines() or [type(exc).__name__])[0]
        raise PretrainedError(f"model {repo_id!r} cannot be downloaded from the Hub ({reason}); {fetch}") from exc


def pretrained_folder(name_or_path: str | Path) -> Path:
    """A local model folder, or a Hub id's folder in the Hugging Face cache."""
    path = Path(name_or_path).expanduser()
    folder = path if path.is_dir() else _download(str(name_or_path))
    if not (folder / CONFIG_NAME).is_file() or not (folder / WEIGHTS_NAME).is_file():
        hint = f"; a run folder? pass {folder / 'ckpt.pt'}" if (folder / "ckpt.pt").is_file() else ""
        raise PretrainedError(f"{name_or_path}: not a depthgait model folder ({CONFIG_NAME} and {WEIGHTS_NAME} expected{hint})")
    return folder


def load_pretrained(name_or_path: str | Path, device: Any = "cpu") -> tuple[Any, RunConfig, dict[str, Any]]:
    """``(model in eval mode on device, run config, meta)`` from a model folder or a Hub id, as ``load_model``."""
    from safetensors import SafetensorError
    from safetensors.torch import load_file

    from depthgait_model.model import DepthGait

    folder = pretrained_folder(name_or_path)
    try:
        config = json.loads((folder / CONFIG_NAME).read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise PretrainedError(f"{folder / CONFIG_NAME}: not readable JSON ({exc})") from exc
    check_header(config, FORMAT, VERSION, str(folder / CONFIG_NAME), "model", PretrainedError)
    run_config = RunConfig.from_dict(config["config"], source=str(folder / CONFIG_NAME))
    label_map: dict[str, int] = config["label_map"]
    model = DepthGait(run_config.model, num_classes=len(label_map))
    try:
        model.load_state_dict(load_file(str(folder / WEIGHTS_NAME)))
    except (RuntimeError, SafetensorError, OSError) as exc:
        raise PretrainedError(f"{folder / WEIGHTS_NAME}: weights do not fit the model config ({str(exc)[:300]})") from exc
    model.to(device).eval()
    meta = {
        "iteration": config.get("iteration"),
        "label_map": label_map,
        "classes": sorted(label_map, key=label_map.__getitem__),
        "extra": config.get("extra", {}),
    }
    return model, run_config, meta
