"""depthgait's own files, each with its FORMAT and VERSION: the per-video cache and ``aligned.h5``.

``check_header`` is the one check (and wording) of a file's ``format`` / ``version`` header that the
readers of checkpoints and shared model folders use.
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any


def check_header(header: Any, fmt: str, version: int, where: str, what: str, error: type[Exception]) -> None:
    """Raise ``error`` naming ``where`` unless ``header`` is a mapping of format ``fmt`` and ``version``."""
    if not isinstance(header, Mapping) or header.get("format") != fmt:
        found = header.get("format") if isinstance(header, Mapping) else type(header).__name__
        raise error(f"{where}: not a depthgait {what} (format {found!r}, expected {fmt!r})")
    if header.get("version") != version:
        raise error(f"{where}: {what} version {header.get('version')}, this depthgait reads {version}")
