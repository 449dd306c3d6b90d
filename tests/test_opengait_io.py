"""OpenGait export/import: exact round trip, OpenGait's conventions, bad sequences skipped by name."""
from __future__ import annotations

import json
import pickle
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

from cli.prep import main as prep_main
from pipeline.formats.aligned import AlignedReader, AlignedSequence, AlignedWriter
from pipeline.interop.opengait import PARTITION_NAME, export_opengait, import_opengait
from pipeline.interop.safe_pickle import dump_array
from pipeline.manifest import SequenceId, load_manifest

SETTINGS = {"made_by": "test", "depth_model": "tiny"}


def _sequence(seq_id: SequenceId, rng: np.random.Generator, t: int, depth: bool = True) -> AlignedSequence:
    sil = np.where(rng.random((t, 64, 64)) < 0.3, 255, 0).astype(np.uint8)
    dep = (rng.integers(1, 256, size=(t, 64, 64)) * (sil > 0)).astype(np.uint8) if depth else None
    frames = np.sort(rng.choice(400, size=t, replace=False)).astype(np.int32)  # gaps, as after dropped frames
    return AlignedSequence(seq_id, sil, dep, frames)


@pytest.fixture()
def aligned(tmp_path: Path) -> tuple[Path, list[AlignedSequence]]:
    rng = np.random.default_rng(0)
    seqs = []
    for i, subject in enumerate(["001", "002", "003", "004"]):
        for condition in ["nm-01", "cl-01"]:
            for view in ["000", "090"]:
                has_depth = not (subject == "004" and view == "090")  # one silhouette-only sequence
                seqs.append(_sequence(SequenceId(subject, condition, view), rng, 6 + i, has_depth))
    path = tmp_path / "aligned.h5"
    with AlignedWriter(path, SETTINGS) as writer:
        for seq in seqs:
            writer.add(seq)
    return path, seqs


def test_export_then_import_is_bit_exact(tmp_path: Path, aligned) -> None:
    path, seqs = aligned
    tree = tmp_path / "og"
    result = export_opengait(path, tree, load_manifest("synthetic"), quiet=True)
    assert result.exported == 16 and result.with_depth == 14 and not result.failed
    back = import_opengait(tree, tmp_path / "back.h5", quiet=True)
    assert back.imported == 16 and back.with_depth == 14 and not back.failed
    with AlignedReader(tmp_path / "back.h5") as reader:
        assert reader.ids() == sorted(s.id for s in seqs)
        assert reader.settings["made_by"] == "test"
        for seq in seqs:
            got = reader.load(seq.id)
            assert got.sil.dtype == np.uint8 and np.array_equal(got.sil, seq.sil)
            assert np.array_equal(got.frames, seq.frames) and got.frames.dtype == np.int32
            if seq.depth is None:
                assert got.depth is None
            else:
                assert np.array_equal(got.depth, seq.depth)


def test_export_follows_opengait_conventions(tmp_path: Path, aligned) -> None:
    path, seqs = aligned
    tree = tmp_path / "og"
    export_opengait(path, tree, load_manifest("synthetic"), quiet=True)
    folder = tree / "002" / "cl-01" / "090"
    files = sorted(p.name for p in folder.iterdir())
    assert files == ["00-sil-090.pkl", "01-depth-090.pkl"]  # sorted order: silhouette, then depth
    seq = next(s for s in seqs if s.id == SequenceId("002", "cl-01", "090"))
    with open(folder / files[0], "rb") as handle:  # OpenGait's loader: plain pickle.load
        assert np.array_equal(pickle.load(handle), seq.sil)
    with open(folder / files[1], "rb") as handle:
        assert np.array_equal(pickle.load(handle), seq.depth)
    assert sorted(p.name for p in (tree / "004" / "nm-01" / "090").iterdir()) == ["00-sil-090.pkl"]
    partition = json.loads((tree / PARTITION_NAME).read_text())
    assert partition == {"TRAIN_SET": ["001", "002"], "TEST_SET": ["003", "004"]}  # synthetic: share 0.5
    # CASIA-B's ranges put these subjects in training only
    export_opengait(path, tmp_path / "og2", load_manifest("casia-b"), modalities=["sil"], quiet=True)
    assert json.loads((tmp_path / "og2" / PARTITION_NAME).read_text())["TEST_SET"] == []
    assert sorted(p.name for p in (tmp_path / "og2" / "002" / "cl-01" / "090").iterdir()) == ["00-sil-090.pkl"]


def test_export_requested_modality_missing_is_reported(tmp_path: Path, aligned) -> None:
    path, _ = aligned
    result = export_opengait(path, tmp_path / "og", load_manifest("synthetic"), modalities=["sil", "depth"], quiet=True)
    assert result.exported == 14
    assert [f.item for f in result.failed] == ["004/cl-01/090", "004/nm-01/090"]
    assert "has no depth" in result.failed[0].error
    assert not (tmp_path / "og" / "004" / "nm-01" / "090").exists()


def _foreign_tree(root: Path) -> dict[str, np.ndarray]:
    """An OpenGait tree as the official releases look: one ``<view>.pkl`` per folder, plus bad ones."""
    rng = np.random.default_rng(3)
    good = {}
    for subject in ["075", "076"]:
        for view in ["018", "036"]:
            sil = rng.integers(0, 256, size=(9, 64, 64), dtype=np.uint8)  # grey edges survive
            folder = root / subject / "nm-05" / view
            folder.mkdir(parents=True)
            with open(folder / f"{view}.pkl", "wb") as handle:  # written as OpenGait's pretreatment does
                pickle.dump(sil, handle)
            good[f"{subject}/nm-05/{view}"] = sil
    two = root / "077" / "bg-01" / "090"
    two.mkdir(parents=True)
    pair = [rng.integers(0, 256, size=(4, 64, 64), dtype=np.uint8) for _ in range(2)]
    dump_array(pair[0], two / "a-sil.pkl")
    dump_array(pair[1], two / "b-depth.pkl")
    good["077/bg-01/090"] = pair[0]
    bad = {
        "broken": lambda f: (f / "000.pkl").write_bytes(pickle.dumps(np.zeros((3, 64, 64), np.uint8))[:50]),
        "floats": lambda f: dump_array(np.zeros((3, 64, 64), np.float32), f / "000.pkl"),
        "narrow": lambda f: dump_array(np.zeros((3, 64, 44), np.uint8), f / "000.pkl"),
        "lengths": lambda f: (
            dump_array(np.zeros((3, 64, 64), np.uint8), f / "00-sil-000.pkl"),
            dump_array(np.zeros((4, 64, 64), np.uint8), f / "01-depth-000.pkl"),
        ),
        "many": lambda f: [dump_array(np.zeros((3, 64, 64), np.uint8), f / f"{i}.pkl") for i in range(3)],
    }
    for condition, make in bad.items():
        folder = root / "078" / condition / "000"
        folder.mkdir(parents=True)
        make(folder)
    (root / "partition.json").write_text("{}")  # root-level files are not subjects
    return good


def test_import_skips_bad_sequences_by_name(tmp_path: Path) -> None:
    good = _foreign_tree(tmp_path / "tree")
    result = import_opengait(tmp_path / "tree", tmp_path / "a.h5", quiet=True)
    assert result.imported == 5 and result.with_depth == 1 and result.short == ["077/bg-01/090"]
    reasons = {f.item: f.error for f in result.failed}
    assert len(reasons) == 5
    assert "not a readable pickle" in reasons[str(tmp_path / "tree/078/broken/000")]
    assert "000.pkl: expected uint8 [T, 64, 64], got float32" in reasons[str(tmp_path / "tree/078/floats/000")]
    assert "got uint8 [3, 64, 44]" in reasons[str(tmp_path / "tree/078/narrow/000")]
    assert "has 3 frames but 01-depth-000.pkl has 4" in reasons[str(tmp_path / "tree/078/lengths/000")]
    assert "3 pkls" in reasons[str(tmp_path / "tree/078/many/000")]
    with AlignedReader(tmp_path / "a.h5") as reader:
        assert [s.key for s in reader.ids()] == sorted(good)
        for key, sil in good.items():
            seq = reader.load(SequenceId.from_key(key))
            assert np.array_equal(seq.sil, sil) and np.array_equal(seq.frames, np.arange(len(sil)))
        assert reader.load(SequenceId("075", "nm-05", "018")).depth is None
        assert reader.load(SequenceId("077", "bg-01", "090")).depth is not None


def test_import_patterns_choose_modalities_and_total_failure_writes_nothing(tmp_path: Path) -> None:
    folder = tmp_path / "tree" / "0001" / "00-nm" / "000"
    folder.mkdir(parents=True)
    sils = np.full((5, 64, 64), 7, np.uint8)
    dump_array(np.zeros((5, 64, 64, 3), np.uint8), folder / "05-000-Camera-RGB_raw.pkl")
    dump_array(sils, folder / "06-000-Camera-Sils_aligned.pkl")
    dump_array(np.zeros((5, 64, 64), np.uint8), folder / "07-000-Camera-Sils_raw.pkl")
    with pytest.raises(ValueError, match="3 pkls"):
        import_opengait(tmp_path / "tree", tmp_path / "x.h5", quiet=True)
    assert not (tmp_path / "x.h5").exists() and not list(tmp_path.glob(".tmp-*"))
    result = import_opengait(tmp_path / "tree", tmp_path / "x.h5", sil_pattern="*Sils_aligned.pkl", quiet=True)
    assert result.imported == 1
    with AlignedReader(tmp_path / "x.h5") as reader:
        assert np.array_equal(reader.load(SequenceId("0001", "00-nm", "000")).sil, sils)


def test_cli_round_trip_and_messages(tmp_path: Path, aligned) -> None:
    path, seqs = aligned
    runner = CliRunner()
    res = runner.invoke(prep_main, ["export", "--out", str(tmp_path / "og"), "--data", str(path), "--manifest", "synthetic", "-q"])
    assert res.exit_code == 0, res.output
    assert "exported 16 sequences (14 with depth)" in res.output and "2 train / 2 test" in res.output
    out = tmp_path / "back.h5"
    res = runner.invoke(prep_main, ["import", str(tmp_path / "og"), "--out", str(out), "-q", "--manifest", "synthetic"])
    assert res.exit_code == 0, res.output
    assert "imported 16 sequences" in res.output and "2 train / 2 test" in res.output
    res = runner.invoke(prep_main, ["import", str(tmp_path / "og"), "--out", str(out), "-q"])
    assert res.exit_code == 1 and "--overwrite" in res.output
    # a bad sequence: exit code 1, named, the rest imported
    (tmp_path / "og" / "001" / "nm-01" / "000" / "01-depth-000.pkl").write_bytes(b"junk")
    res = runner.invoke(prep_main, ["import", str(tmp_path / "og"), "--out", str(out), "-q", "--overwrite"])
    assert res.exit_code == 1 and "01-depth-000.pkl" in res.output and "1 sequences skipped" in res.output
    with AlignedReader(out) as reader:
        assert len(reader) == 15
    for command in ("export", "import"):
        res = runner.invoke(prep_main, [command, "--help"])
        assert res.exit_code == 0 and "Example" in res.output
