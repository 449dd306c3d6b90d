"""Damaged and foreign files through the real CLIs: exit code 1 and one line naming the file.

Checkpoints (garbage, truncated, pickles with objects, someone else's torch file), a damaged
``aligned.h5``, a damaged embeddings npz and malformed YAML manifests and recipes.
"""
from __future__ import annotations

import pickle
import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.main import main as model_main
from cli.prep import main as prep_main
from depthgait_model.embeddings import Embeddings, save_embeddings
from pipeline.formats.aligned import AlignedSequence, AlignedWriter
from pipeline.manifest import SequenceId


def _one_clean_line(result, path: Path) -> str:
    assert result.exit_code == 1, result.output
    assert not isinstance(result.exception, SystemExit) or result.exception.code == 1
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith(f"Error: {path}: "), result.output
    assert "Traceback" not in result.output and "weights_only" not in result.output
    return lines[0]


def _checkpoints(folder: Path) -> dict[str, tuple[Path, str]]:
    made = {}
    garbage = folder / "garbage.pt"
    garbage.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    made["garbage"] = (garbage, "not a readable depthgait checkpoint")
    objects = folder / "objects.pt"
    torch.save({"where": Path("/x"), "w": torch.zeros(2)}, objects)
    made["objects"] = (objects, "holds a Python object (pathlib.PosixPath)")
    legacy = folder / "legacy.pt"
    legacy.write_bytes(pickle.dumps({"w": [1, 2]}))
    made["legacy"] = (legacy, "old-style or foreign pickle")
    whole = folder / "whole.pt"
    torch.save({"format": "depthgait-checkpoint", "w": torch.zeros(1000)}, whole)
    cut = folder / "cut.pt"
    cut.write_bytes(whole.read_bytes()[:2000])
    made["cut"] = (cut, "truncated or corrupt zip archive")
    empty = folder / "empty.pt"
    empty.write_bytes(b"")
    made["empty"] = (empty, "empty or truncated")
    foreign = folder / "foreign.pt"
    torch.save({"state_dict": {"w": torch.zeros(2)}}, foreign)
    made["foreign"] = (foreign, "not a depthgait checkpoint (format None")
    damaged = folder / "damaged.pt"
    torch.save({"format": "depthgait-checkpoint", "version": 1, "iteration": 3, "config": {}, "label_map": {}, "model": [], "rng": {}}, damaged)
    made["damaged"] = (damaged, "'model' is list, expected dict")
    return made


@pytest.mark.parametrize("kind", ["garbage", "objects", "legacy", "cut", "empty", "foreign", "damaged"])
def test_bad_checkpoint_is_one_line(tmp_path: Path, kind: str) -> None:
    path, reason = _checkpoints(tmp_path)[kind]
    result = CliRunner().invoke(model_main, ["test", "--checkpoint", str(path), "--data", str(tmp_path / "none.h5")])
    assert reason in _one_clean_line(result, path)


def _aligned(path: Path) -> None:
    rng = np.random.default_rng(1)
    with AlignedWriter(path, {"made_by": "test"}) as writer:
        for subject in ("001", "002", "003", "004"):
            for view in ("000", "090"):
                sil = np.where(rng.random((12, 64, 64)) < 0.3, 255, 0).astype(np.uint8)
                writer.add(AlignedSequence(SequenceId(subject, "nm-01", view), sil, sil.copy(), np.arange(12, dtype=np.int32)))


def test_damaged_aligned_file_is_one_line(tmp_path: Path) -> None:
    good = tmp_path / "good.h5"
    _aligned(good)
    data = bytearray(good.read_bytes())
    middle = len(data) // 3
    data[middle : middle + 2000] = bytes(b ^ 0x5A for b in data[middle : middle + 2000])  # damaged chunks
    damaged = tmp_path / "damaged.h5"
    damaged.write_bytes(bytes(data))
    cut = tmp_path / "cut.h5"
    cut.write_bytes(bytes(data[: len(data) // 2]))
    runner = CliRunner()
    train = ["train", "--config", "tiny", "--manifest", "synthetic", "--out", str(tmp_path / "run"), "-q", "--data"]
    line = _one_clean_line(runner.invoke(model_main, [*train, str(damaged)]), damaged)
    assert "damaged" in line and "sequence 0" in line  # which structure the flips hit varies (HDF5 stores times)
    assert "not an HDF5 file (" in _one_clean_line(runner.invoke(model_main, [*train, str(cut)]), cut)
    assert not (tmp_path / "run" / "ckpt.pt").exists()
    # export skips the damaged sequences by name and writes the rest
    result = runner.invoke(prep_main, ["export", "--data", str(damaged), "--out", str(tmp_path / "og"), "--manifest", "synthetic", "-q"])
    assert result.exit_code == 1 and "Traceback" not in result.output
    skipped = [line for line in result.output.splitlines() if line.startswith("skipped: ")]
    assert skipped and all(f"{damaged}: sequence " in line and "damaged" in line for line in skipped)


def test_damaged_embeddings_npz_is_one_line(tmp_path: Path) -> None:
    good = tmp_path / "good.npz"
    n = 6
    save_embeddings(good, Embeddings(np.ones((n, 8), np.float32), np.array(["1"] * n), np.array(["nm-01"] * n), np.array(["000"] * n)))
    with zipfile.ZipFile(good) as z:
        info = z.getinfo("embeddings.npy")
    data = bytearray(good.read_bytes())
    at = info.header_offset
    start = at + 30 + int.from_bytes(data[at + 26 : at + 28], "little") + int.from_bytes(data[at + 28 : at + 30], "little")
    data[start + 4 : start + 20] = bytes(16)  # inside the deflated member
    bad = tmp_path / "bad.npz"
    bad.write_bytes(bytes(data))
    header = tmp_path / "header.npz"
    with zipfile.ZipFile(header, "w") as z:
        for key in ("embeddings", "labels", "types", "views"):
            z.writestr(f"{key}.npy", b"\x93NUMPY garbage")
    runner = CliRunner()
    for path in (bad, header):
        line = _one_clean_line(runner.invoke(model_main, ["evaluate", str(path)]), path)
        assert "not a readable .npz file" in line


@pytest.mark.parametrize(
    ("text", "reason"),
    [
        ("name: x\nsplit: [1, 2\n", "not valid YAML (expected ',' or ']', but got '<stream end>' at line 3"),
        ("- a\n- b\n", "expected a mapping of manifest keys, got list"),
        ("naming: 5\n", "naming must be a mapping"),
        ("protocol: {kind: casia-b, gallery: 5, probes: {}}\n", "malformed manifest (TypeError"),
        ("\xff\xfe\x00", None),
    ],
)
def test_bad_manifest_and_recipe_are_one_line(tmp_path: Path, text: str, reason: str | None) -> None:
    path = tmp_path / "bad.yaml"
    path.write_bytes(text.encode("latin-1"))
    emb = tmp_path / "e.npz"
    emb.write_bytes(b"")
    runner = CliRunner()
    line = _one_clean_line(runner.invoke(model_main, ["evaluate", str(tmp_path / "missing.npz"), "--protocol", str(path)]), path)
    assert (reason or "not a text file") in line
    line = _one_clean_line(runner.invoke(model_main, ["train", "--config", str(path), "--out", str(tmp_path / "r"), "-q"]), path)
    if reason and reason.startswith("not valid YAML"):
        assert reason in line
