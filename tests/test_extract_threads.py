"""Extract warns when its processes ask for more model threads than there are cores (it only gets slower)."""
from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner

from cli.prep import main as prep
from pipeline.extract.worker import available_cores, oversubscription


def test_no_warning_while_the_threads_fit_the_cores() -> None:
    assert oversubscription(2, 1, cores=2) is None
    assert oversubscription(1, 4, cores=4) is None
    assert oversubscription(4, 4, cores=16) is None


def test_the_warning_counts_the_threads_and_names_the_setting_that_fits() -> None:
    line = oversubscription(2, 4, cores=2)
    assert line is not None
    assert "2 worker(s) x 4 thread(s) = 8 model threads on 2 core(s)" in line
    assert "--threads 1 fits" in line
    assert "--threads 3 fits" in oversubscription(5, 4, cores=16)
    assert "--threads 1 fits" in oversubscription(8, 2, cores=4)  # more workers than cores: one thread each


def test_extract_prints_the_warning_before_it_starts(tmp_path: Path) -> None:
    cores = available_cores()
    result = CliRunner().invoke(prep, ["extract", str(tmp_path), "--cache", str(tmp_path / "cache"),
                                      "--workers", "2", "--threads", str(cores)])
    assert f"= {2 * cores} model threads on {cores} core(s)" in result.output
    assert "no videos" in result.output  # the run itself still says what is wrong with its input
    quiet = CliRunner().invoke(prep, ["extract", str(tmp_path), "--cache", str(tmp_path / "cache"), "--quiet",
                                     "--workers", "2", "--threads", str(cores)])
    assert "model threads" not in quiet.output
