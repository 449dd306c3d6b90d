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
                     size=(160, 120), quiet=True)
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
            "--manifest", "synthetic", "-q"]


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
                                        *_common(trained)])
        assert res.exit_code == 0, res.output
        (track,) = json.loads(res.output)["tracks"]  # one walker per video
        ranking = track["matches"]
        assert ranking[0]["label"] == subject and track["identity"] == subject, ranking
        assert sorted(m["label"] for m in ranking) == list(SUBJECTS)
        assert ranking[0]["distance"] <= ranking[1]["distance"] <= ranking[2]["distance"]
    res = runner.invoke(depthgait, ["identify", "--gallery", str(gallery), str(probe), *_common(trained)])
    assert res.exit_code == 0 and res.output.splitlines()[2].split()[:2] == ["1.", "003"]
    assert res.output.splitlines()[1].startswith("track 0: frames ") and res.output.splitlines()[1].endswith(": 003")


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
    )
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


def test_a_probe_in_the_gallery_is_at_distance_zero() -> None:
    """Embeddings of a trained model's size and scale ([256, 16], values ~20): the matrix-product form
    leaves cancellation noise between equal rows; identification must not."""
    rng = np.random.default_rng(3)
    feats = (rng.normal(20.0, 5.0, size=(6, 256, 16))).astype(np.float32)
    gallery = Embeddings(embeddings=feats, labels=np.array(list("abcdef")), types=np.array(["nm-01"] * 6),
                         views=np.array(["090"] * 6))
    ranked = rank_identities(feats[4].copy(), gallery, top_k=2)
    assert ranked[0].label == "e" and ranked[0].distance == 0.0
    second = "abcdef".index(ranked[1].label)
    direct = np.mean([np.linalg.norm(feats[4][:, p] - feats[second][:, p]) for p in range(16)])
    assert ranked[1].distance == pytest.approx(direct, rel=1e-5)


def test_help_has_examples() -> None:
    for command in ("embed", "identify"):
        res = CliRunner().invoke(depthgait, [command, "--help"])
        assert res.exit_code == 0 and "Example" in res.output and "--device" in res.output


def decode_frames(path: Path) -> list[np.ndarray]:
    capture = cv2.VideoCapture(str(path))
    frames = []
    while True:
        ok, image = capture.read()
        if not ok:
            break
        frames.append(image)
    capture.release()
    return frames


def test_identify_open_set_json_and_annotated_video(trained, gallery, tmp_path: Path) -> None:
    probe = trained["probes"] / f"002-{PROBE}-090.avi"
    out = tmp_path / "annotated.mp4"
    res = CliRunner().invoke(depthgait, ["identify", "--gallery", str(gallery), str(probe), "--json", "-", "--max-distance",
                                         "0", "--save-video", str(out), *_common(trained)])
    assert res.exit_code == 0, res.output
    result = json.loads(res.stdout)
    assert result["max_distance"] == 0.0 and len(result["tracks"]) == 1  # one entry per track
    (track,) = result["tracks"]
    assert track["identity"] == "unknown" and track["matches"][0]["distance"] > 0  # nobody is that close
    assert track["track"] == 0 and 0 <= track["frames"]["first"] < track["frames"]["last"] < 20
    x0, y0, x1, y1 = track["box_span"]
    assert 0 <= x0 < x1 <= 160 and 0 <= y0 < y1 <= 120
    frames, source = decode_frames(out), decode_frames(probe)
    assert len(frames) == len(source) == 20  # every input frame, decodable
    first, last = track["frames"]["first"], track["frames"]["last"]
    changed = [np.abs(a.astype(int) - b.astype(int)).max() > 60 for a, b in zip(frames, source, strict=True)]
    assert all(changed[first:last + 1]) and not any(changed[:first] + changed[last + 1:])  # drawn where tracked


def test_a_gallery_of_another_checkpoint_is_refused(trained, gallery, tmp_path: Path) -> None:
    import torch

    from depthgait_model.embeddings import save_embeddings

    payload = torch.load(trained["ckpt"], map_location="cpu", weights_only=True)
    name = next(k for k, v in payload["model"].items() if v.is_floating_point())
    payload["model"][name] = payload["model"][name] + 0.01
    other = tmp_path / "other.pt"
    torch.save(payload, other)
    probe = trained["probes"] / f"001-{PROBE}-090.avi"
    args = _common(trained)
    args[1] = str(other)
    res = CliRunner().invoke(depthgait, ["identify", "--gallery", str(gallery), str(probe), *args])
    assert res.exit_code == 1 and "Traceback" not in res.output
    assert "embedded by another model" in res.output and len(res.output.strip().splitlines()) == 1
    # a gallery from before fingerprints: a warning, then the ranking
    old = load_embeddings(gallery)
    old.fingerprint = None
    save_embeddings(tmp_path / "old.npz", old)
    res = CliRunner().invoke(depthgait, ["identify", "--gallery", str(tmp_path / "old.npz"), str(probe), *_common(trained)])
    assert res.exit_code == 0 and "records no model fingerprint" in res.stderr


def test_fingerprint_follows_the_weights(trained) -> None:
    from depthgait_model.checkpoint import load_model
    from depthgait_model.identify import model_fingerprint

    model, cfg, _ = load_model(trained["ckpt"])
    again, _, _ = load_model(trained["ckpt"])
    assert model_fingerprint(model, cfg) == model_fingerprint(again, cfg) == load_embeddings(
        trained["root"] / "gallery.npz").fingerprint
    assert model_fingerprint(model, cfg, which="bnneck") != model_fingerprint(model, cfg)
    next(again.parameters()).data.add_(1e-3)
    assert model_fingerprint(again, cfg) != model_fingerprint(model, cfg)


def test_rank_tracks_gives_one_entry_per_track_and_unknowns() -> None:
    from depthgait_model.identify import TrackProbe, identify_json, rank_tracks
    from pipeline.formats.aligned import AlignedSequence
    from pipeline.manifest import SequenceId

    gallery = Embeddings(embeddings=np.array([[0.0, 0.0], [4.0, 0.0]], np.float32), labels=np.array(["a", "b"]),
                         types=np.array(["nm-01", "nm-01"]), views=np.array(["090", "090"]))
    seq = AlignedSequence(SequenceId("p", "probe", "probe"), np.zeros((2, 64, 64), np.uint8), None, np.arange(2))
    probes = [TrackProbe(3, seq, [5, 9, 7], [[10, 20, 30, 60], [12, 18, 33, 61], [11, 19, 31, 62]]),
              TrackProbe(8, seq, [0, 1], [[0, 0, 5, 5], [1, 1, 6, 6]])]
    tracks = rank_tracks(probes, np.array([[0.5, 0.0], [2.5, 0.0]], np.float32), gallery, top_k=2, max_distance=1.0)
    assert [(t.track, t.identity) for t in tracks] == [(3, "a"), (8, "unknown")]  # 2.5 from b, 1.0 allowed
    assert tracks[0].frames == {"first": 5, "last": 9, "count": 3} and tracks[0].box_span == [10, 18, 33, 62]
    assert [m.label for m in tracks[1].matches] == ["b", "a"] and tracks[1].matches[0].distance == pytest.approx(1.5)
    assert tracks[0].label == "a 0.50"
    doc = json.loads(json.dumps(identify_json("v.avi", tracks, "euc", 1.0)))
    assert [t["track"] for t in doc["tracks"]] == [3, 8] and doc["tracks"][1]["matches"][0]["label"] == "b"


def test_annotate_video_writes_every_frame_and_draws_only_tracked_ones(tmp_path: Path) -> None:
    from depthgait_model.annotate import AnnotatedTrack, annotate_video

    src = tmp_path / "in put.avi"
    writer = cv2.VideoWriter(str(src), cv2.VideoWriter_fourcc(*"MJPG"), 25, (96, 64))
    for _ in range(9):
        writer.write(np.full((64, 96, 3), 100, np.uint8))
    writer.release()
    track = AnnotatedTrack(2, [3, 4, 5], [[20, 20, 50, 60]] * 3, "001 0.42")
    assert annotate_video(src, tmp_path / "out.mp4", [track]) == 9
    frames = decode_frames(tmp_path / "out.mp4")
    assert len(frames) == 9
    drawn = [np.abs(f.astype(int) - 100).max() > 60 for f in frames]
    assert drawn == [False, False, False, True, True, True, False, False, False]
    with pytest.raises(ValueError, match="must end in"):
        annotate_video(src, tmp_path / "out.gif", [track])


def test_identify_on_a_synthetic_crowd_annotates_every_frame(trained, gallery, tmp_path: Path) -> None:
    """Three gallery subjects walking at once: with --tracks all every person track is ranked and drawn."""
    from pipeline.synthetic.crowd import generate_crowds

    (video,) = generate_crowds(tmp_path, people=3, frames=40, size=(160, 120), quiet=True)
    out = tmp_path / "crowd.mp4"
    res = CliRunner().invoke(depthgait, ["identify", "--gallery", str(gallery), str(video), "--tracks", "all", "--json",
                                         "-", "--save-video", str(out), *_common(trained)])
    assert res.exit_code == 0, res.output
    tracks = json.loads(res.stdout)["tracks"]
    assert len(tracks) >= 2 and len({t["track"] for t in tracks}) == len(tracks)
    assert all(t["identity"] in SUBJECTS and t["frames"]["count"] >= 10 for t in tracks)
    spans = sorted(t["box_span"][0] for t in tracks)
    assert spans[0] != spans[-1]  # different people, not one track repeated
    assert len(decode_frames(out)) == len(decode_frames(video)) == 40
