"""Evaluation during training (``train.eval_every``): the test split under the manifest's protocol.

OpenGait users expect a run to report test rank-1 as it trains and to keep its best weights.
``periodic_eval`` embeds the manifest's test subjects with all their frames (as ``depthgait
test`` does), evaluates them and returns one flat record for ``metrics.jsonl``: ``eval/rank1``
(the protocol's headline rank-1: the mean over probe conditions for a cross-view protocol, the
overall rank-1 otherwise) and ``eval/<condition>`` per probe condition that has probes.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from depthgait_model.config import RunConfig
from depthgait_model.embeddings import embed_aligned
from depthgait_model.evaluate import protocol_ids
from depthgait_model.protocols import evaluate
from pipeline.formats.aligned import AlignedReader
from pipeline.manifest import Manifest, SequenceId


def eval_ids(data_path: Path, manifest: Manifest) -> list[SequenceId]:
    """The test sequences ``periodic_eval`` will embed; raises a clear error before training starts."""
    with AlignedReader(data_path) as reader:
        return protocol_ids(reader, manifest)


def headline(report: dict[str, Any]) -> dict[str, float]:
    """``eval/rank1`` and ``eval/<condition>`` (rank-1, %) from a protocol report."""
    conds = report["conditions"]
    if report["kind"] == "cross-view":
        per = {c: report[c]["mean"] for c in conds}
        values = [v for v in per.values() if v is not None]
        overall = float(np.mean(values)) if values else float("nan")
    else:
        per = {c: report[c]["rank1"] for c in conds}
        overall = report["overall"]["rank1"]
    record = {"eval/rank1": float("nan") if overall is None else float(overall)}
    record.update({f"eval/{c}": float(v) for c, v in per.items() if v is not None})  # conditions with probes
    return record


def periodic_eval(
    model: nn.Module, run_cfg: RunConfig, data_path: Path, manifest: Manifest, ids: list[SequenceId],
    device: torch.device,
) -> dict[str, float]:
    """Embed ``ids`` with ``model`` (left in train mode afterwards) and return the eval record."""
    try:
        with AlignedReader(data_path) as reader:
            emb = embed_aligned(model, reader, ids, device=device, which=run_cfg.train.test_embedding,
                                cut=run_cfg.data.cut, quiet=True)
        report = evaluate(emb, manifest, metric=run_cfg.train.eval_metric, device=device)
    finally:
        model.train()
    return headline(report)
