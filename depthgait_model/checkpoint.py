"""Training checkpoints: one file that resumes a run bit-for-bit and alone rebuilds the model.

A checkpoint holds the model weights, the optimiser, scheduler, grad-scaler and sampler states,
the RNG states, the iteration, the RunConfig as a plain dict and the label map (subject -> class),
so ``load_model(path)`` needs nothing else. Everything is plain Python types and tensors, which
lets ``torch.load(weights_only=True)`` read it without unpickling arbitrary objects. Files are
written through ``atomic_path``: a run killed while saving leaves the previous checkpoint intact.
"""
from __future__ import annotations

import io
import pickle
import random
import re
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from depthgait_model.config import RunConfig
from pipeline.atomic import atomic_path
from pipeline.errors import DepthgaitError
from pipeline.formats import check_header

FORMAT = "depthgait-checkpoint"
VERSION = 1


class CheckpointError(DepthgaitError, ValueError):
    """The file is not a depthgait checkpoint this version reads; the message names the file."""


def unwrap(model: nn.Module) -> nn.Module:
    """The bare model under DistributedDataParallel (or anything with ``.module``)."""
    return getattr(model, "module", model)


def rng_state() -> dict[str, Any]:
    """Every global RNG a training step may touch (dropout, Python and NumPy helpers)."""
    np_state = np.random.get_state(legacy=False)
    state = {
        "torch": torch.get_rng_state(),
        "python": random.getstate(),
        "numpy": {**np_state, "state": {k: np.asarray(v).tolist() for k, v in np_state["state"].items()}},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    np.random.set_state(state["numpy"])
    if "cuda" in state and torch.cuda.is_available() and len(state["cuda"]) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(state["cuda"])


def save_checkpoint(
    path: str | Path,
    *,
    model: nn.Module,
    run_config: RunConfig,
    label_map: dict[str, int],
    iteration: int,
    optimizer: torch.optim.Optimizer | None = None,
    scheduler: torch.optim.lr_scheduler.LRScheduler | None = None,
    scaler: torch.amp.GradScaler | None = None,
    sampler_state: dict[str, int] | None = None,
    extra: dict[str, Any] | None = None,
) -> Path:
    """Write a checkpoint atomically; returns its path."""
    payload = {
        "format": FORMAT,
        "version": VERSION,
        "iteration": int(iteration),
        "config": run_config.to_dict(),
        "label_map": dict(label_map),
        "model": unwrap(model).state_dict(),
        "optimizer": optimizer.state_dict() if optimizer is not None else None,
        "scheduler": scheduler.state_dict() if scheduler is not None else None,
        "scaler": scaler.state_dict() if scaler is not None else None,
        "sampler": dict(sampler_state) if sampler_state is not None else None,
        "rng": rng_state(),
        "extra": dict(extra or {}),
    }
    path = Path(path)
    # Serialise in memory, then write with Python's I/O: torch's own writer turns a full disk into
    # "RuntimeError: [enforce fail at inline_container.cc] unexpected pos"; this gives ENOSPC.
    buffer = io.BytesIO()
    torch.save(payload, buffer)
    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        handle.write(buffer.getbuffer())
    return path


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read and validate a checkpoint; errors name the file and what is wrong with it."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols of foreign files
            warnings.simplefilter("ignore")
            payload = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as exc:  # noqa: BLE001 - torch raises RuntimeError, UnpicklingError, EOFError, IndexError...
        raise CheckpointError(f"{path}: not a readable depthgait checkpoint ({_load_failure(exc)})") from None
    check_header(payload, FORMAT, VERSION, str(path), "checkpoint", CheckpointError)
    for key, kind in _PAYLOAD_TYPES.items():
        if not isinstance(payload.get(key), kind):
            raise CheckpointError(f"{path}: damaged checkpoint ({key!r} is {type(payload.get(key)).__name__}, expected {kind.__name__})")
    return payload


_PAYLOAD_TYPES = {"iteration": int, "config": dict, "label_map": dict, "model": dict, "rng": dict}


def _load_failure(exc: BaseException) -> str:
    """torch's reason in a few words, without its advice to load the file unsafely."""
    text = str(exc)
    if isinstance(exc, pickle.UnpicklingError):
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", text)
        if found:
            return f"it holds a Python object ({found.group(1)}), which is never loaded from a file"
        return "not a torch zip checkpoint: an old-style or foreign pickle"
    if isinstance(exc, EOFError):
        return "empty or truncated"
    if "zip archive" in text or "PytorchStreamReader" in text:
        return "truncated or corrupt zip archive"
    first = text.splitlines()[0] if text.strip() else ""
    if "weights_only" in first:
        first = ""
    return f"{type(exc).__name__}: {first[:160]}" if first else f"{type(exc).__name__}, truncated or not a checkpoint"


def config_of(payload: dict[str, Any], path: str | Path) -> RunConfig:
    """The RunConfig stored in a loaded checkpoint."""
    return RunConfig.from_dict(payload["config"], source=f"{path} (stored config)")


def load_model(path: str | Path, device: str | torch.device = "cpu") -> tuple[nn.Module, RunConfig, dict[str, Any]]:
    """Rebuild the trained model from the checkpoint alone, in eval mode on ``device``.

    Returns ``(model, run_config, meta)``; ``meta`` holds ``iteration``, ``label_map``,
    ``classes`` (subjects in class order) and the trainer's ``extra`` record. A model folder or a
    Hub id (``user/name``, see ``depthgait_model.hub``) is read the same way.
    """
    from depthgait_model.hub import is_pretrained_name, load_pretrained
    from depthgait_model.model import DepthGait  # heavy import, only when a model is built

    if is_pretrained_name(path):
        return load_pretrained(path, device)

    payload = load_checkpoint(path, map_location="cpu")
    run_config = config_of(payload, path)
    label_map: dict[str, int] = payload["label_map"]
    model = DepthGait(run_config.model, num_classes=len(label_map))
    try:
        model.load_state_dict(payload["model"])
    except RuntimeError as exc:
        first = " ".join(str(exc).split())[:300]
        raise CheckpointError(f"{path}: weights do not fit the stored model config ({first})") from None
    model.to(device).eval()
    meta = {
        "iteration": payload["iteration"],
        "label_map": label_map,
        "classes": sorted(label_map, key=label_map.__getitem__),
        "extra": payload.get("extra", {}),
    }
    return model, run_config, meta
