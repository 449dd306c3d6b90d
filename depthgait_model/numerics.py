"""What, besides the checkpoint, decides a training run's floating-point results.

The same weights, batches and RNG give the same numbers only on the same arithmetic: the torch
build (kernels change between versions), the device kind (and GPU model), the number of CPU
threads (a reduction split over 2 threads adds in another order than over 1: a resume with
another thread count made 168 of 199 tensors differ) and the number of DDP processes (it
changes the batches). The trainer stores this record in every checkpoint and refuses a resume
under a different one, saying how to resume identically.
"""
from __future__ import annotations

from typing import Any

import torch


def numerics_record(device: torch.device, world_size: int = 1) -> dict[str, Any]:
    """The settings of this process that change float results (plain types: stored in checkpoints)."""
    record: dict[str, Any] = {
        "torch": str(torch.__version__),  # a TorchVersion object would not load weights-only
        "device": device.type,
        "threads": torch.get_num_threads(),
        "world_size": int(world_size),
    }
    if device.type == "cuda":
        record["gpu"] = torch.cuda.get_device_name(device)
    return record


_HOW = {
    "threads": "--threads {}",
    "device": "--device {}",
    "world_size": "torchrun --nproc-per-node {}",
    "torch": "torch {}",
    "gpu": "a {} GPU",
}


def numerics_mismatch(stored: dict[str, Any], current: dict[str, Any]) -> tuple[list[str], list[str]]:
    """``(differences, how to match)``: ``["threads 2, now 1"], ["--threads 2"]``; empty when identical."""
    differs, how = [], []
    for key in ("torch", "device", "gpu", "threads", "world_size"):
        if key in stored and stored.get(key) != current.get(key):
            differs.append(f"{key} {stored[key]}, now {current.get(key)}")
            how.append(_HOW[key].format(stored[key]))
    return differs, how
