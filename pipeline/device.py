"""The one device policy: ``auto`` means CUDA when torch sees a GPU, else the CPU; every command and
library entry point that runs a model resolves its ``device`` here."""
from __future__ import annotations

from pipeline.errors import InputError

DEVICES = ("auto", "cpu", "cuda")


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` or ``cpu``; ``cuda`` (or ``cuda:N``) without a GPU is a clear error."""
    import torch

    base = name.split(":")[0]
    if base not in DEVICES:
        raise InputError(f"device must be one of {', '.join(DEVICES)}, got {name!r}")
    if base == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if base == "cuda" and not torch.cuda.is_available():
        raise InputError(f"device {name} was asked for, but torch sees no CUDA GPU here")
    return name
