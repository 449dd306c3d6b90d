"""A full disk or a read-only folder for align, import, export and train: one clean line, no half
file, no crash. The full disk is real: the CLIs run in a subprocess whose file-size limit
(RLIMIT_FSIZE) makes the kernel fail their writes with EFBIG, as ENOSPC would (HDF5 segfaulted
on both before). The read-only folder is simulated (tests may run as root, which ignores modes)."""
from __future__ import annotations

import errno
import json
import os
import pickle
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from test_align import make_cache
from test_data import write_toy_aligned

from cli.main import main as model_main
from cli.prep import main as prep_main
from pipeline.manifest import SequenceId

ROOT = Path(__file__).parents[1]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("inputs")
    toy = write_toy_aligned(base / "toy.h5", subjects=4)
    tree = base / "tree"
    rng = np.random.default_rng(0)
    for s in range(4):
        folder = tree / f"{s:03d}" / "nm-01" / "000"
        folder.mkdir(parents=True)
        (folder / "000.pkl").write_bytes(pickle.dumps(rng.integers(0, 256, (30, 64, 64), dtype=np.uint8)))
    caches = base / "cache"
    for s in range(3):
        make_cache(caches, SequenceId(f"00{s + 1}", "nm-01", "090"), n_frames=8)
    return {"toy": toy, "tree": tree, "cache": caches}


def _commands(inputs: dict[str, Path], out: Path) -> dict[str, tuple[list[str], Path]]:
    """command -> (argv after ``python -m``, the file that must not appear half-written)."""
    train = ["cli.main", "train", "--data", str(inputs["toy"]), "--manifest", "synthetic", "--config", "tiny",
             "--set", "train.batch_p=2", "--set", "train.frames=4", "--iterations", "1", "--threads", "1",
             "--device", "cpu", "-q", "--out", str(out / "run")]
    return {
        "align": (["cli.prep", "align", "--cache", str(inputs["cache"]), "--out", str(out / "a.h5"), "-q"], out / "a.h5"),
        "import": (["cli.prep", "import", str(inputs["tree"]), "--out", str(out / "i.h5"), "-q"], out / "i.h5"),
        "export": (["cli.prep", "export", "--data", str(inputs["toy"]), "--out", str(out / "og"), "--manifest", "synthetic", "-q"], out / "og"),
        "train": (train, out / "run" / "ckpt-1.pt"),
    }


def _no_half_files(folder: Path) -> None:
    assert not [p for p in folder.rglob(".tmp-*")], "a temporary file was left behind"


# Runs the four CLIs with CliRunner inside one child (one torch import), under a file-size limit.
_DRIVER = """
import json, resource, sys
from click.testing import CliRunner
from cli.main import main as model_main
from cli.prep import main as prep_main
commands, limits = json.loads(sys.argv[1]), json.loads(sys.argv[2])
out = {}
for name, argv in commands.items():
    resource.setrlimit(resource.RLIMIT_FSIZE, (limits[name], resource.RLIM_INFINITY))
    group = prep_main if argv[0] == "cli.prep" else model_main
    result = CliRunner().invoke(group, argv[1:])
    out[name] = [result.exit_code, result.output, repr(result.exception)]
print(json.dumps(out))
"""


def test_full_disk_is_one_line_and_leaves_no_half_file(tmp_path: Path, inputs) -> None:
    commands = _commands(inputs, tmp_path)
    limits = {"align": 6000, "import": 6000, "export": 20000, "train": 6000}  # bytes per file: outputs are larger
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    argv = json.dumps({name: a for name, (a, _) in commands.items()})
    done = subprocess.run([sys.executable, "-X", "faulthandler", "-c", _DRIVER, argv, json.dumps(limits)],
                          capture_output=True, text=True, cwd=tmp_path, env=env, timeout=600)
    assert done.returncode == 0 and "Fatal" not in done.stderr, done.stderr[-3000:]  # no crash
    results = json.loads(done.stdout.strip().splitlines()[-1])
    for name, (exit_code, output, exception) in results.items():
        lines = [line for line in output.splitlines() if line.strip()]
        assert exit_code == 1 and len(lines) == 1 and "Traceback" not in output, (name, output, exception)
        assert lines[0].startswith(f"Error: {tmp_path}") and "cannot write (File too large)" in lines[0], lines[0]
    _no_half_files(tmp_path)
    for name in ("align", "import", "train"):
        assert not commands[name][1].exists(), name
    tree = commands["export"][1]  # whole files only: every pkl written loads, partition.json is not written
    assert not (tree / "partition.json").exists()
    for pkl in tree.rglob("*.pkl"):
        pickle.loads(pkl.read_bytes())


@pytest.mark.parametrize("command", ["align", "import", "export", "train"])
def test_read_only_folder_is_one_line(tmp_path: Path, inputs, command: str, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.atomic

    def read_only(*args, **kwargs):
        raise OSError(errno.EROFS, "Read-only file system", str(kwargs.get("dir", "")))

    monkeypatch.setattr(pipeline.atomic.tempfile, "mkstemp", read_only)
    monkeypatch.chdir(tmp_path)
    argv, final = _commands(inputs, tmp_path)[command]
    group = prep_main if argv[0] == "cli.prep" else model_main
    result = CliRunner().invoke(group, argv[1:])
    assert result.exit_code == 1, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and "cannot write (Read-only file system); nothing was written" in lines[0], result.output
    assert not final.exists() or final.is_dir() and not list(final.rglob("*.pkl"))
