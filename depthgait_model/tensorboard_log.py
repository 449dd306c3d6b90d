"""TensorBoard logging of training (``depthgait train --tensorboard``): the scalars of ``metrics.jsonl``.

Each metrics record (``{"iter": 100, "loss": 1.2, "triplet/loss": 0.4, "lr": 0.1, ...}``) becomes one
scalar per key at step ``iter``, under the same names, so TensorBoard and ``metrics.jsonl`` never
disagree. The ``tensorboard`` package is an optional extra (``pip install 'depthgait[tensorboard]'``).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from pipeline.errors import DepthgaitError

TENSORBOARD_DIR = "tensorboard"  # inside the run folder: `tensorboard --logdir runs/`


class TensorBoardLog:
    """A callable sink for ``MetricsLog``: writes one record's scalars and flushes (a killed run keeps them)."""

    def __init__(self, run_dir: Path, resumed_from: int = 0) -> None:
        """``resumed_from``: the checkpoint's iteration; events a killed run wrote after it are purged."""
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError as exc:
            raise DepthgaitError(
                "--tensorboard needs the tensorboard package: pip install 'depthgait[tensorboard]' (or pip install tensorboard)"
            ) from exc
        self.log_dir = Path(run_dir) / TENSORBOARD_DIR
        self.writer = SummaryWriter(log_dir=str(self.log_dir), purge_step=resumed_from + 1 if resumed_from else None)

    def __call__(self, record: dict[str, Any]) -> None:
        step = int(record["iter"])
        for key, value in record.items():
            if key != "iter" and isinstance(value, (int, float)) and math.isfinite(value):
                self.writer.add_scalar(key, value, step)
        self.writer.flush()

    def close(self) -> None:
        self.writer.close()
