"""``depthgait evaluate`` / ``depthgait test`` through the real CLI, the npz contract and embed_aligned."""
from __future__ import annotations

import json
import re

import numpy as np
import pytest
import torch
from click.testing import CliRunner

from cli.main import main
from depthgait_model.embeddings import Embeddings, embed_aligned, length_batches, load_embeddings, save_embeddings
from depthgait_model.protocols import evaluate
from pipeline.formats.aligned import AlignedReader, AlignedSequence, AlignedWriter
from pipeline.manifest import SequenceId, load_manifest

CASIA = load_manifest("casia-b")
PNG = b"\x89PNG\r\n\x1a\n"


def _casia_npz(path, rng) -> Embeddings:
    subjects = ["075", "076", "077", "078"]
    rows = [(s, c, v) for s in subjects for c in CASIA.conditions for v in CASIA.views]
    centres = {s: rng.normal(size=(8, 4)) for s in subjects}
    emb = Embeddings(
        embeddings=np.stack([centres[s] + rng.normal(size=(8, 4)) * 0.8 for s, _, _ in rows]).astype(np.float32),
        labels=np.array([r[0] for r in rows]),
        types=np.array([r[1] for r in rows]),
        views=np.array([r[2] for r in rows]),
    )
    np.savez(path, embeddings=emb.embeddings, labels=emb.labels, types=emb.types, views=emb.views)
    return emb


def test_evaluate_cli_writes_documented_json(tmp_path):
    npz, out = tmp_path / "emb.npz", tmp_path / "out" / "report.json"
    emb = _casia_npz(npz, np.random.default_rng(0))
    result = CliRunner().invoke(
        main, ["evaluate", str(npz), "--protocol", "casia-b", "--json", str(out), "--plots", str(tmp_path / "p"), "-q"]
    )
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["metric"] == "euc" and report["protocol"] == "casia-b"
    for cond in ("NM", "BG", "CL"):
        assert len(report[cond]["per_view"]) == 11 and all(isinstance(x, float) for x in report[cond]["per_view"])
        assert report[cond]["mean"] == pytest.approx(np.mean(report[cond]["per_view"]))
        assert np.array(report[cond]["cells"]).shape == (11, 11)
    direct = evaluate(emb, CASIA)
    assert [report[c]["mean"] for c in ("NM", "BG", "CL")] == [direct[c]["mean"] for c in ("NM", "BG", "CL")]
    assert f"{direct['CL']['mean']:.2f}" in result.output.splitlines()[4]  # CL row of the printed table
    for name in ("rank1_views.png", "cmc.png"):
        assert (tmp_path / "p" / name).read_bytes()[:8] == PNG
    cos = CliRunner().invoke(main, ["evaluate", str(npz), "--metric", "cos", "--json", str(out), "-q"])
    assert cos.exit_code == 0 and json.loads(out.read_text())["metric"] == "cos"


@pytest.mark.parametrize(
    "arrays, message",
    [
        ({"embeddings": np.zeros((3, 4, 2)), "labels": ["a"] * 3, "types": ["nm-01"] * 3}, "missing key 'views'"),
        ({"embeddings": np.zeros((3, 4, 2, 1)), "labels": ["a"] * 3, "types": ["x"] * 3, "views": ["0"] * 3}, r"\[N, C, P\]"),
        ({"embeddings": np.zeros((3, 4)), "labels": ["a"] * 2, "types": ["x"] * 3, "views": ["0"] * 3}, "'labels' must be"),
        ({"embeddings": np.full((3, 4), np.nan), "labels": ["a"] * 3, "types": ["x"] * 3, "views": ["0"] * 3}, "NaN"),
    ],
)
def test_bad_npz_is_a_clear_error(tmp_path, arrays, message):
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    result = CliRunner().invoke(main, ["evaluate", str(path)])
    assert result.exit_code == 1
    assert str(path) in result.output and "Traceback" not in result.output
    assert re.search(message, result.output), result.output


def test_not_an_npz_and_missing_file(tmp_path):
    junk = tmp_path / "junk.npz"
    junk.write_bytes(b"not a zip")
    result = CliRunner().invoke(main, ["evaluate", str(junk)])
    assert result.exit_code == 1 and f"{junk}: not an .npz file" in result.output
    result = CliRunner().invoke(main, ["evaluate", str(tmp_path / "none.npz")])
    assert result.exit_code == 1 and "no such embeddings file" in result.output
    np.savez(junk, embeddings=np.zeros((2, 3)), labels=np.array([1, 2], dtype=object), types=["a", "b"], views=["0", "1"])
    result = CliRunner().invoke(main, ["evaluate", str(junk)])
    assert result.exit_code == 1 and "string arrays" in result.output


def test_help_has_examples():
    for cmd in ("test", "evaluate"):
        result = CliRunner().invoke(main, [cmd, "--help"])
        assert result.exit_code == 0 and "Example:" in result.output and f"depthgait {cmd}" in result.output


def test_npz_round_trip(tmp_path):
    emb = Embeddings(np.ones((2, 3, 4), np.float32), np.array([75, 76]), np.array([b"nm-01", b"nm-05"]), ["000", "090"])
    back = load_embeddings(save_embeddings(tmp_path / "e.npz", emb))
    assert back.labels.tolist() == ["75", "76"] and back.types.tolist() == ["nm-01", "nm-05"]
    np.testing.assert_array_equal(back.embeddings, emb.embeddings)


def test_length_batches_respect_limits():
    lengths = [5, 1, 9, 3, 7, 2]
    batches = length_batches(lengths, batch_size=2, max_frames=14)
    assert sorted(i for b in batches for i in b) == list(range(6))
    assert all(len(b) <= 2 and len(b) * max(lengths[i] for i in b) <= 14 for b in batches)
    assert [[lengths[i] for i in b] for b in batches] == [[1, 2], [3, 5], [7], [9]]


# ---- a real tiny model on a small aligned file -------------------------------------------------
def _write_aligned(path, subjects, views, conditions, seed=0):
    rng = np.random.default_rng(seed)
    with AlignedWriter(path) as writer:
        for s in subjects:
            for c in conditions:
                for v in views:
                    t = int(rng.integers(3, 7))
                    sil = np.zeros((t, 64, 64), np.uint8)
                    width = 6 + 3 * int(s)  # the subject decides the blob's width
                    sil[:, 10:60, 32 - width // 2 : 32 + width // 2] = 255
                    depth = (sil // 255 * rng.integers(50, 255, (t, 64, 64))).astype(np.uint8)
                    writer.add(AlignedSequence(SequenceId(s, c, v), sil, depth, np.arange(t, dtype=np.int32)))


@pytest.fixture(scope="module")
def tiny_run(tmp_path_factory):
    from depthgait_model.checkpoint import save_checkpoint
    from depthgait_model.config import load_config
    from depthgait_model.model import DepthGait

    root = tmp_path_factory.mktemp("run")
    data = root / "aligned.h5"
    # A cut-down CASIA-B protocol (one sequence per condition) keeps the model work small.
    (root / "mini.yaml").write_text(
        "name: mini\nviews: ['000', '090']\nsplit: {train_share: 0.5}\n"
        "protocol: {kind: cross-view, gallery: [nm-01], probes: {NM: [nm-02], BG: [bg-01], CL: [cl-01]}}\n"
    )
    _write_aligned(data, ["001", "002", "003", "004"], ["000", "090"], ["nm-01", "nm-02", "bg-01", "cl-01", "cl-02"])
    cfg = load_config("tiny")
    torch.manual_seed(0)
    model = DepthGait(cfg.model, num_classes=2)
    ckpt = save_checkpoint(root / "ckpt.pt", model=model, run_config=cfg, label_map={"001": 0, "002": 1}, iteration=3)
    return root, data, ckpt, model.eval()


def test_embed_aligned_batches_equal_one_by_one(tiny_run):
    _, data, _, model = tiny_run
    with AlignedReader(data) as reader:
        ids = [i for i in reader.ids() if i.subject == "003"][:6]
        batched = embed_aligned(model, reader, ids, batch_size=3, quiet=True)
        single = embed_aligned(model, reader, ids, batch_size=1, quiet=True)
        lengths = {reader.length(i) for i in ids}
    assert len(lengths) > 1  # padding really happened in the batched run
    assert batched.embeddings.shape == (6, 8, 16)
    assert batched.types.tolist() == [i.condition for i in ids] and batched.views.tolist() == [i.view for i in ids]
    np.testing.assert_allclose(batched.embeddings, single.embeddings, rtol=1e-4, atol=1e-5)


def test_test_cli_prints_table_writes_json_and_matches_evaluate(tiny_run):
    root, data, ckpt, _ = tiny_run
    out, npz = root / "test.json", root / "emb.npz"
    mini = str(root / "mini.yaml")
    args = ["test", "--checkpoint", str(ckpt), "--data", str(data), "--manifest", mini, "--device", "cpu"]
    result = CliRunner().invoke(main, [*args, "--batch-size", "16", "--json", str(out), "--save-embeddings", str(npz), "--plots", str(root / "p"), "-q"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split() == ["000", "090", "mean"] and [ln.split()[0] for ln in lines[2:5]] == ["NM", "BG", "CL"]
    report = json.loads(out.read_text())
    # Test subjects 003, 004 only, and only protocol types (cl-02 is in the file but in no set).
    assert report["iteration"] == 3 and report["sequences"] == 2 * 4 * 2
    emb = load_embeddings(npz)
    assert sorted(set(emb.labels)) == ["003", "004"]
    again = CliRunner().invoke(main, ["evaluate", str(npz), "--protocol", mini, "--json", str(root / "e.json"), "-q"])
    assert again.exit_code == 0, again.output
    assert json.loads((root / "e.json").read_text())["NM"]["cells"] == report["NM"]["cells"]
    assert (root / "p" / "rank1_views.png").read_bytes()[:8] == PNG


def test_test_cli_bad_checkpoint(tmp_path):
    bad = tmp_path / "ckpt.pt"
    bad.write_bytes(b"junk")
    result = CliRunner().invoke(main, ["test", "--checkpoint", str(bad), "--data", str(tmp_path / "a.h5")])
    assert result.exit_code == 1 and str(bad) in result.output and "Traceback" not in result.output
