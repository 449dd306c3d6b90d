"""`depthgait embed` / `identify` on synthetic walking videos with a briefly trained tiny model."""
from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from click.testing import CliRunner
from tiny_models import save_tiny_depth_anything

from cli.main import main as depthgait
from depthgait_model.embeddings import Embeddings, load_embeddings
from depthgait_model.infer import rank_identities

SUBJECTS = ("001", "002", "003")
GALLERY = ("nm-01", "nm-02", "nm-03")
PROBE = "nm-04"
DEPTH_HEIGHT = "56"  # a small depth-model input keeps the random tiny model cheap




@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> dict[str, Path]:
    """Gallery and probe videos, the offline pipeline's aligned file of the gallery, a trained tiny model."""
    from depthgait_model.config import load_config
    from depthgait_model.train import train
    from pipeline.align.batch import run_align
    from pipeline.extract.batch import run_extract
    from pipeline.extract.settings import ExtractSettings
    from pipeline.synthetic.dataset import generate_dataset

    root = tmp_path_factory.mktemp("infer")
    videos, probes = root / "gallery", root / "probe"
    generate_dataset(videos, subjects=len(SUBJECTS), views=["090"], conditions=[*GALLERY, PROBE], frames=20,
                     size=(160, 120), quiet=True)  # fmt: skip
    probes.mkdir()
    for video in videos.glob(f"*-{PROBE}-*.avi"):  # held out: never in the gallery, never trained on
        shutil.move(video, probes / video.name)
    shutil.rmtree(videos / "truth")
    depth = save_tiny_depth_anything(root / "tiny-depth")
    settings = ExtractSettings(depth=str(depth), depth_input_height=int(DEPTH_HEIGHT))
    run_extract(videos, root / "cache", settings, manifest="synthetic", quiet=True)
    report = run_align(root / "cache", quiet=True)
    aligned = root / "cache" / "aligned.h5"
    assert aligned.is_file(), report
    manifest = root / "all-train.yaml"  # every subject trains: the gallery subjects are known people
    manifest.write_text(
        (Path(__file__).parent.parent / "data_manifests" / "synthetic.yaml").read_text()
        .replace("train_share: 0.5", "train: ['001-003']\n  test: ['004-999']")
    )
    cfg = load_config("tiny").override({"train.iterations": 20, "train.milestones": [15], "train.checkpoint_every": 20})
    result = train(cfg, aligned, str(manifest), root / "run", device="cpu", quiet=True)
    return {"videos": videos, "probes": probes, "aligned": aligned, "ckpt": result.checkpoint, "depth": depth, "root": root}


def _common(paths: dict[str, Path]) -> list[str]:
    return ["--checkpoint", str(paths["ckpt"]), "--depth", str(paths["depth"]), "--depth-input-height", DEPTH_HEIGHT,
            "--manifest", "synthetic", "-q"]  # fmt: skip


@pytest.fixture(scope="module")
def gallery(trained) -> Path:
    """`depthgait embed` over the gallery videos: the whole chain in memory."""
    out = trained["root"] / "gallery.npz"
    res = CliRunner().invoke(depthgait, ["embed", str(trained["videos"]), "--out", str(out), *_common(trained)])
    assert res.exit_code == 0, res.output
    assert "wrote 9 embeddings of 3 subjects" in res.output
    return out


def test_embed_videos_then_identify_held_out_probe(trained, gallery) -> None:
    emb = load_embeddings(gallery)
    assert sorted(zip(emb.labels, emb.types, emb.views, strict=True)) == [(s, c, "090") for s in SUBJECTS for c in GALLERY]
    assert emb.embeddings.ndim == 3 and np.isfinite(emb.embeddings).all()
    runner = CliRunner()
    for subject in SUBJECTS:
        probe = trained["probes"] / f"{subject}-{PROBE}-090.avi"
        res = runner.invoke(depthgait, ["identify", "--gallery", str(gallery), str(probe), "--top-k", "3", "--json", "-",
                                        *_common(trained)])  # fmt: skip
        assert res.exit_code == 0, res.output
        ranking = json.loads(res.output)["matches"]
        assert ranking[0]["label"] == subject, ranking
        assert sorted(m["label"] for m in ranking) == list(SUBJECTS)
        assert ranking[0]["distance"] <= ranking[1]["distance"] <= ranking[2]["distance"]
    res = runner.invoke(depthgait, ["identify", "--gallery", str(gallery), str(probe), *_common(trained)])
    assert res.exit_code == 0 and res.output.splitlines()[1].split()[:2] == ["1.", "003"]


def test_video_chain_matches_the_offline_pipeline(trained, gallery) -> None:
    """Embedding the videos in memory equals embedding the extract + align output of the same videos."""
    from_h5 = trained["root"] / "h5.npz"
    res = CliRunner().invoke(depthgait, ["embed", str(trained["aligned"]), "--out", str(from_h5), *_common(trained)])
    assert res.exit_code == 0, res.output
    a, b = load_embeddings(from_h5), load_embeddings(gallery)
    order_a = np.lexsort((a.views, a.types, a.labels))
    order_b = np.lexsort((b.views, b.types, b.labels))
    assert np.array_equal(a.labels[order_a], b.labels[order_b]) and np.array_equal(a.types[order_a], b.types[order_b])
    np.testing.assert_allclose(a.embeddings[order_a], b.embeddings[order_b], rtol=1e-4, atol=1e-6)


def test_video_without_a_person_is_said_plainly(trained, gallery, tmp_path: Path) -> None:
    empty = tmp_path / "empty.avi"
    writer = cv2.VideoWriter(str(empty), cv2.VideoWriter_fourcc(*"MJPG"), 25, (160, 120))
    for _ in range(12):
        writer.write(np.full((120, 160, 3), 90, np.uint8))
    writer.release()
    res = CliRunner().invoke(depthgait, ["identify", "--gallery", str(gallery), str(empty), *_common(trained)])
    assert res.exit_code == 1
    assert "no usable person" in res.output and "empty.avi" in res.output and "Traceback" not in res.output
    # in a batch, the empty video (identified through a CSV) is listed and the others are still written
    table = tmp_path / "ids.csv"
    table.write_text("path,subject,condition,view\nempty.avi,999,nm-01,090\n")
    res = CliRunner().invoke(
        depthgait, ["embed", str(trained["aligned"]), str(empty), "--layout", str(table), "--out", str(tmp_path / "m.npz"),
                    *_common(trained)],
    )  # fmt: skip
    assert res.exit_code == 1 and "wrote 9 embeddings" in res.output and "1 inputs skipped" in res.output
    assert "empty.avi: no usable person" in res.output
    assert sorted(set(load_embeddings(tmp_path / "m.npz").labels)) == list(SUBJECTS)


def test_rank_identities_groups_by_subject() -> None:
    gallery = Embeddings(
        embeddings=np.array([[0.0, 0.0], [5.0, 0.0], [1.0, 0.0], [0.0, 3.0], [2.0, 0.0]], np.float32),
        labels=np.array(["a", "b", "c", "b", "a"]),
        types=np.array(["nm-01", "nm-01", "nm-01", "nm-02", "nm-02"]),
        views=np.array(["000", "000", "090", "090", "180"]),
    )
    probe = np.array([2.0, 0.0], np.float32)  # distances: a 2 and 0, b 3 and sqrt(13), c 1
    ranked = rank_identities(probe, gallery, top_k=5)
    assert [m.label for m in ranked] == ["a", "c", "b"]
    assert [round(m.distance, 4) for m in ranked] == [0.0, 1.0, 3.0]
    assert (ranked[0].type, ranked[0].view) == ("nm-02", "180")
    assert [m.label for m in rank_identities(probe, gallery, top_k=1)] == ["a"]
    with pytest.raises(ValueError, match="top-k"):
        rank_identities(probe, gallery, top_k=0)


def test_help_has_examples() -> None:
    for command in ("embed", "identify"):
        res = CliRunner().invoke(depthgait, [command, "--help"])
        assert res.exit_code == 0 and "Example" in res.output and "--device" in res.output
