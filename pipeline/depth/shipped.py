"""Models that ship inside the package, addressable by a short name.

``depthgait/synthdepth-small`` is a small Depth Anything-architecture monocular depth model trained on
the synthetic generator's frames (see its model card). It lets the whole chain run offline, where no
real checkpoint can be downloaded; real footage should use a real checkpoint instead.
"""
from __future__ import annotations

from pathlib import Path

SYNTH_DEPTH_DIR: Path = Path(__file__).resolve().parent / "models" / "synthdepth-small"
SYNTH_DEPTH_NAME = "depthgait/synthdepth-small"

_SHIPPED: dict[str, Path] = {SYNTH_DEPTH_NAME: SYNTH_DEPTH_DIR}


def resolve_shipped(name: str) -> Path | None:
    """The local folder of a shipped model's name, or None when ``name`` is not a shipped model.

    A known name whose files are missing (a broken install) is an error naming the folder, rather
    than None, so that callers never fall through to a Hub download of a name that does not exist there.
    """
    folder = _SHIPPED.get(name.strip().rstrip("/"))
    if folder is None:
        return None
    missing = [f for f in ("config.json", "preprocessor_config.json", "model.safetensors") if not (folder / f).is_file()]
    if missing:
        raise FileNotFoundError(f"shipped model {name!r}: {', '.join(missing)} missing in {folder} (reinstall depthgait)")
    return folder
