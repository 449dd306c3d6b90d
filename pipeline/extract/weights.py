"""Find model weights before loading them, so that a missing weight is one clear message.

Three families of weights feed extract: Hugging Face depth models (Hub id or local folder),
ultralytics YOLO files (``yolo11n.pt``) and segment-anything checkpoints (``vit_b`` or a path).
Without a check, a missing weight ends in a library stack trace, or, for a Hub id, in a minute of
retries. Each resolver here returns something the loader can use, or raises
``MissingWeightsError`` naming the weight, how to fetch it on a machine with internet, and where
to put it on an offline one. With ``HF_HUB_OFFLINE=1`` / ``YOLO_OFFLINE=1`` nothing waits on a network.
"""
from __future__ import annotations

import os
import re
from pathlib import Path

from pipeline.errors import DepthgaitError

SAM_CHECKPOINTS = {
    "vit_b": "sam_vit_b_01ec64.pth",
    "vit_l": "sam_vit_l_0b3195.pth",
    "vit_h": "sam_vit_h_4b8939.pth",
}
SAM_URL = "https://dl.fbaipublicfiles.com/segment_anything/{file}"
# Encoder width of each SAM size: tells the size of a checkpoint whose file name does not.
SAM_EMBED_DIMS = {768: "vit_b", 1024: "vit_l", 1280: "vit_h"}
YOLO_URL = "https://github.com/ultralytics/assets/releases/download/v8.4.0/{file}"
_HUB_ID = re.compile(r"^[A-Za-z0-9][\w.-]*/[\w.-]+$")


class MissingWeightsError(DepthgaitError, ValueError):
    """A model weight is not where it was looked for; the message says how to get it."""


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def weights_dirs() -> list[Path]:
    """Folders searched for weight files given by name: ``$DEPTHGAIT_WEIGHTS``, ./weights, ~/.cache/depthgait."""
    dirs = [Path(p) for p in os.environ.get("DEPTHGAIT_WEIGHTS", "").split(os.pathsep) if p]
    return dirs + [Path("weights"), Path.home() / ".cache" / "depthgait"]


def _find_file(name: str, extra: list[Path]) -> Path | None:
    path = Path(name).expanduser()
    if path.is_file():
        return path
    if path.parent != Path("."):
        return None  # a path with folders is taken literally
    for folder in [*weights_dirs(), *extra]:
        if (folder / name).is_file():
            return folder / name
    return None


# ---- Hugging Face depth models -------------------------------------------------------------------


def resolve_hf_model(name_or_dir: str) -> str:
    """Return a local folder or a Hub id that ``from_pretrained`` can load without waiting on a network.

    A local folder must hold ``config.json``. A name of a model shipped with depthgait
    (``pipeline.depth.shipped``) is its folder. A Hub id is accepted when it is in the Hugging Face
    cache, or when the Hub may be reached (``HF_HUB_OFFLINE`` unset); otherwise it is an error.
    """
    from pipeline.depth.shipped import resolve_shipped

    try:
        shipped = resolve_shipped(name_or_dir)
    except FileNotFoundError as exc:
        raise MissingWeightsError(str(exc)) from exc
    if shipped is not None:
        return str(shipped)
    path = Path(name_or_dir).expanduser()
    if path.is_dir():
        if not (path / "config.json").is_file():
            raise MissingWeightsError(
                f"depth model folder {path} has no config.json: save one with "
                "model.save_pretrained(folder) and processor.save_pretrained(folder), or "
                f"`huggingface-cli download <hub-id> --local-dir {path}` on a machine with internet"
            )
        return str(path)
    if not _HUB_ID.match(name_or_dir) or path.is_absolute() or name_or_dir.startswith("."):
        raise MissingWeightsError(f"depth model {name_or_dir!r}: no such folder, and not a Hub id (owner/name)")
    from huggingface_hub import try_to_load_from_cache

    cached = try_to_load_from_cache(name_or_dir, "config.json")
    if isinstance(cached, str):
        return name_or_dir
    if _env_true("HF_HUB_OFFLINE"):
        raise MissingWeightsError(
            f"depth model {name_or_dir!r} is not in the Hugging Face cache and HF_HUB_OFFLINE=1. "
            f"On a machine with internet run `huggingface-cli download {name_or_dir}` and copy "
            "~/.cache/huggingface/hub here (or set HF_HOME), or "
            f"`huggingface-cli download {name_or_dir} --local-dir models/depth` and pass --depth models/depth"
        )
    return name_or_dir


# ---- ultralytics YOLO ------------------------------------------------------------------------------


def _ultralytics_weights_dir() -> Path | None:
    try:
        from ultralytics.utils import SETTINGS

        return Path(SETTINGS["weights_dir"])
    except Exception:  # noqa: BLE001 - a broken settings file must not hide the real message
        return None


def resolve_yolo_weights(name_or_path: str) -> str:
    """Return a YOLO weight file, or a model yaml (``yolo11n.yaml``: random weights, for tests).

    Looks at the path itself, the depthgait weight folders and ultralytics' ``weights_dir``.
    When ultralytics may download (``YOLO_OFFLINE`` unset), an official name is passed on as is.
    """
    if name_or_path.endswith((".yaml", ".yml")):
        return name_or_path
    ul_dir = _ultralytics_weights_dir()
    found = _find_file(name_or_path, [ul_dir] if ul_dir else [])
    if found is not None:
        return str(found)
    name = Path(name_or_path).name
    if Path(name_or_path).parent != Path(".") or _env_true("YOLO_OFFLINE"):
        where = ", ".join(str(d) for d in [*weights_dirs(), *([ul_dir] if ul_dir else [])])
        raise MissingWeightsError(
            f"YOLO weights {name_or_path!r} not found (looked in: {where}). On a machine with internet: "
            f"`yolo predict model={name}` or download {YOLO_URL.format(file=name)}, then put the file in one of "
            "those folders or pass its path (--detector-weights / --seg-weights)"
        )
    return name_or_path


# ---- segment-anything ------------------------------------------------------------------------------


def _torch_hub_checkpoints() -> Path | None:
    try:
        import torch

        return Path(torch.hub.get_dir()) / "checkpoints"
    except Exception:  # noqa: BLE001
        return None


def sam_type_from_name(path: str | Path) -> str | None:
    """``vit_b``/``vit_l``/``vit_h`` when the file name says it (the official names do)."""
    match = re.search(r"vit_([blh])", Path(path).name)
    return f"vit_{match.group(1)}" if match else None


def resolve_sam_checkpoint(name_or_path: str) -> tuple[str | None, Path]:
    """Return ``(model type or None when the name does not say, checkpoint path)``.

    segment-anything never downloads, so a missing checkpoint is always an error with its URL.
    """
    if name_or_path in SAM_CHECKPOINTS:
        file = SAM_CHECKPOINTS[name_or_path]
        hub = _torch_hub_checkpoints()
        found = _find_file(file, [hub] if hub else [])
        if found is None:
            where = ", ".join(str(d) for d in [*weights_dirs(), *([hub] if hub else [])])
            raise MissingWeightsError(
                f"SAM checkpoint {file} ({name_or_path}) not found (looked in: {where}). On a machine with internet "
                f"download {SAM_URL.format(file=file)} and put it in one of those folders, or pass --sam PATH"
            )
        return name_or_path, found
    path = Path(name_or_path).expanduser()
    if not path.is_file():
        names = ", ".join(SAM_CHECKPOINTS)
        raise MissingWeightsError(
            f"SAM checkpoint {name_or_path!r} not found: give {names} or a .pth path "
            f"(official files: {SAM_URL.format(file=SAM_CHECKPOINTS['vit_b'])} and the vit_l/vit_h ones)"
        )
    return sam_type_from_name(path), path
