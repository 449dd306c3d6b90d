"""Every count is checked where it is parsed, with the allowed range in the message."""
from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from cli.main import main as model_main
from cli.prep import main as prep_main


@pytest.mark.parametrize(
    ("group", "args", "shown"),
    [
        ("prep", ["extract", "{tmp}", "--workers", "0"], "'--workers': 0 is not in the range 1<=x<=1024"),
        ("prep", ["extract", "{tmp}", "--workers", "-1"], "'--workers': -1 is not in the range 1<=x<=1024"),
        ("prep", ["extract", "{tmp}", "--batch-size", "0"], "'--batch-size': 0 is not in the range 1<=x<=4096"),
        ("prep", ["align", "--workers", "0"], "'--workers': 0 is not in the range"),
        ("prep", ["synth", "{tmp}", "--workers", "0"], "'--workers': 0 is not in the range"),
        ("prep", ["synth", "{tmp}", "--seed", "-1"], "'--seed': -1 is not in the range 0<=x<=4294967295"),
        ("prep", ["synth", "{tmp}", "--frames", "0"], "'--frames': 0 is not in the range x>=1"),
        ("prep", ["import", "{tmp}", "--batch-size", "0"], "'--batch-size': 0 is not in the range 1<=x<=4096"),
        ("prep", ["import", "{tmp}", "--depth-input-height", "0"], "'--depth-input-height': 0 is not in the range 14<=x<=2048"),
        ("model", ["test", "--checkpoint", "{file}", "--batch-size", "0"], "'--batch-size': 0 is not in the range 1<=x<=4096"),
        ("model", ["identify", "--checkpoint", "{file}", "--gallery", "g.npz", "{file}", "--top-k", "0"], "'--top-k': 0 is not in the range x>=1"),
        ("model", ["train", "--threads", "0"], "'--threads': 0 is not in the range 1<=x<=1024"),
        ("model", ["train", "--iterations", "0"], "'--iterations': 0 is not in the range x>=1"),
        ("model", ["train", "--seed", "-3"], "'--seed': -3 is not in the range 0<=x<=4294967295"),
    ],
)
def test_bad_option_counts_are_refused_with_their_range(tmp_path: Path, group: str, args: list[str], shown: str) -> None:
    (tmp_path / "v.avi").write_bytes(b"")
    args = [a.format(tmp=tmp_path, file=tmp_path / "v.avi") for a in args]
    result = CliRunner().invoke(prep_main if group == "prep" else model_main, args)
    assert result.exit_code == 2 and shown in result.output, result.output
    assert "Traceback" not in result.output


@pytest.mark.parametrize(
    ("setting", "shown"),
    [
        ("train.batch_k=1", "train.batch_k must be >= 2 with a triplet loss"),
        ("train.batch_p=1", "train.batch_p must be an integer in [2, 4096], got 1"),
        ("train.frames=0", "train.frames must be an integer in [1, 10000], got 0"),
        ("train.num_workers=-1", "train.num_workers must be an integer in [0, 1024], got -1"),
        ("train.log_every=0", "train.log_every must be an integer in [1, 1000000000], got 0"),
    ],
)
def test_bad_config_counts_are_one_line(tmp_path: Path, setting: str, shown: str) -> None:
    result = CliRunner().invoke(model_main, ["train", "--config", "tiny", "--out", str(tmp_path / "r"), "-q", "--set", setting])
    assert result.exit_code == 1
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("Error: --set/--iterations/--seed: ") and shown in lines[0], result.output


def test_batch_k_one_is_fine_without_a_triplet_loss() -> None:
    from depthgait_model.config import load_config

    cfg = load_config("tiny").override({"train.batch_k": 1, "train.triplet_weight": 0.0})
    assert cfg.train.batch_k == 1
