"""A resume is bit-for-bit or refused: the arithmetic (threads, device, torch) is stored and checked."""
from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from test_data import write_toy_aligned

from cli.main import main
from depthgait_model.checkpoint import load_checkpoint
from depthgait_model.numerics import numerics_mismatch, numerics_record


@pytest.fixture()
def restore_threads():
    before = torch.get_num_threads()
    yield
    torch.set_num_threads(before)


def test_resume_with_other_threads_is_refused_in_one_line(tmp_path: Path, restore_threads) -> None:
    data = write_toy_aligned(tmp_path / "aligned.h5")
    out = tmp_path / "run"
    args = ["train", "--data", str(data), "--manifest", "synthetic", "--config", "tiny", "--out", str(out),
            "--device", "cpu", "--quiet", "--set", "train.batch_p=4", "--set", "train.frames=4"]
    runner = CliRunner()
    first = runner.invoke(main, [*args, "--iterations", "2", "--threads", "1"])
    assert first.exit_code == 0, first.output
    stored = load_checkpoint(out / "ckpt.pt")["extra"]["numerics"]
    assert stored == {"torch": torch.__version__, "device": "cpu", "threads": 1, "world_size": 1}
    before = (out / "ckpt.pt").read_bytes()

    refused = runner.invoke(main, [*args, "--iterations", "3", "--threads", "2", "--resume"])
    assert refused.exit_code == 1
    lines = refused.output.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in refused.output
    assert f"{out / 'ckpt.pt'}: resuming would not continue bit-for-bit (threads 1, now 2)" in lines[0]
    assert "resume with --threads 1" in lines[0]
    assert (out / "ckpt.pt").read_bytes() == before and not (out / "ckpt-3.pt").exists()

    resumed = runner.invoke(main, [*args, "--iterations", "3", "--threads", "1", "--resume"])
    assert resumed.exit_code == 0 and "trained iterations 3-3" in resumed.output, resumed.output


def test_mismatch_names_every_difference_and_the_way_back() -> None:
    stored = numerics_record(torch.device("cpu"))
    same = dict(stored)
    assert numerics_mismatch(stored, same) == ([], [])
    other = {**stored, "threads": stored["threads"] + 1, "torch": "0.0.1", "world_size": 2}
    differs, how = numerics_mismatch(stored, other)
    assert differs == [f"torch {stored['torch']}, now 0.0.1", f"threads {stored['threads']}, now {stored['threads'] + 1}",
                       "world_size 1, now 2"]
    assert how == [f"torch {stored['torch']}", f"--threads {stored['threads']}", "torchrun --nproc-per-node 1"]


def test_help_example_resumes_as_it_trained() -> None:
    text = CliRunner().invoke(main, ["train", "--help"]).output
    examples = [line.strip() for line in text.splitlines() if line.strip().startswith("depthgait train")]
    first, resume = examples[0].split(), next(e for e in examples if "--resume" in e).split()
    drop = {"--resume", "--iterations", "200", "400"}
    assert [a for a in first if a not in drop] == [a for a in resume if a not in drop]  # same threads, data, config
