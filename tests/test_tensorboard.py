"""``train --tensorboard`` writes the metrics.jsonl scalars as TensorBoard events (optional extra)."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from test_data import write_toy_aligned

from cli.main import main as depthgait

pytest.importorskip("tensorboard")


def test_tensorboard_gets_the_same_scalars_as_metrics_jsonl(tmp_path: Path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    aligned = write_toy_aligned(tmp_path / "aligned.h5", subjects=6, views=("090",))
    run = tmp_path / "run"
    args = ["train", "--data", str(aligned), "--manifest", "synthetic", "--config", "tiny", "--out", str(run),
            "--iterations", "4", "--set", "train.batch_p=3", "--set", "train.batch_k=2", "--set", "train.frames=4",
            "--set", "train.log_every=2", "--set", "train.checkpoint_every=4", "--threads", "1", "--tensorboard", "-q"]
    before = torch.get_num_threads()
    try:
        result = CliRunner().invoke(depthgait, args)
    finally:
        torch.set_num_threads(before)
    assert result.exit_code == 0, result.output
    records = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["iter"] for r in records] == [2, 4]
    events = list((run / "tensorboard").glob("events.out.tfevents.*"))
    assert len(events) == 1
    acc = EventAccumulator(str(run / "tensorboard"))
    acc.Reload()
    scalar_keys = {k for k, v in records[0].items() if k != "iter" and isinstance(v, (int, float))}
    assert set(acc.Tags()["scalars"]) == scalar_keys and {"loss", "triplet/loss", "ce/loss", "lr"} <= scalar_keys
    for key in scalar_keys:
        logged = [(e.step, e.value) for e in acc.Scalars(key)]
        assert logged == [(r["iter"], pytest.approx(r[key], rel=1e-6)) for r in records], key
