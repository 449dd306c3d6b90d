"""Training end to end on a tiny synthetic aligned file: the loss drops, resume is bit-for-bit,
the checkpoint alone rebuilds the model, the run folder is complete, the CLI is strict."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from test_data import write_toy_aligned

from cli.main import main
from depthgait_model.checkpoint import CheckpointError, load_checkpoint, load_model
from depthgait_model.config import load_config
from depthgait_model.data import GaitDataset, collate
from depthgait_model.model import DepthGait
from depthgait_model.train import train


def tiny(**changes):
    """The tiny recipe with a batch that fits the toy data: 4 train subjects x 2 clips of 4 frames."""
    base = {"train.batch_p": 4, "train.batch_k": 2, "train.frames": 4, "train.lr": 0.05, "train.augment_p": 0.5}
    return load_config("tiny").override({**base, **changes})


@pytest.fixture(scope="module")
def toy_file(tmp_path_factory) -> Path:
    return write_toy_aligned(tmp_path_factory.mktemp("train") / "aligned.h5")


@pytest.fixture(scope="module")
def trained(toy_file, tmp_path_factory):
    out = tmp_path_factory.mktemp("run") / "tiny"
    cfg = tiny(**{"train.iterations": 30, "train.milestones": [24], "train.log_every": 5, "train.checkpoint_every": 15})
    return cfg, train(cfg, toy_file, "synthetic", out, device="cpu", quiet=True)


def test_training_lowers_the_loss(trained):
    _, result = trained
    losses = [r["loss"] for r in result.history]
    assert [r["iter"] for r in result.history] == [5, 10, 15, 20, 25, 30]
    assert result.iterations == 30 and result.start_iteration == 0
    assert result.first_loss == losses[0] and result.final_loss == losses[-1]
    assert sum(losses[-2:]) / 2 < 0.5 * losses[0], losses  # a real drop (measured ~0.33x), not noise
    assert result.history[-1]["lr"] == pytest.approx(0.005)  # x0.1 after milestone 24
    assert result.history[0]["lr"] == pytest.approx(0.05)


def test_run_folder_is_complete(trained):
    cfg, result = trained
    out = result.out_dir
    assert {p.name for p in out.iterdir()} == {
        "ckpt-15.pt", "ckpt-30.pt", "ckpt.pt", "metrics.jsonl", "loss.png", "config.yaml"
    }
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert records == result.history
    for key in ("loss", "triplet/loss", "triplet/nonzero_frac", "ce/loss", "ce/accuracy", "lr", "it_s"):
        assert key in records[0]
    assert 0.0 <= records[-1]["triplet/nonzero_frac"] <= 1.0 and records[-1]["it_s"] > 0
    assert (out / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert load_config(out / "config.yaml") == cfg  # the recipe as it ran, loadable again
    assert load_checkpoint(out / "ckpt.pt")["iteration"] == 30
    assert load_checkpoint(out / "ckpt-15.pt")["iteration"] == 15


def ranking_auc(model, batch) -> float:
    """Share of (anchor, same-subject, other-subject) triples where the same subject is nearer."""
    emb = model.embed(**batch.model_inputs("cpu")).flatten(1)  # [N, C*P]
    dist = torch.cdist(emb, emb)  # [N, N]
    same = batch.labels[:, None] == batch.labels[None]
    triples = (same & ~torch.eye(len(same), dtype=torch.bool))[:, :, None] & ~same[:, None, :]  # [N, N, N]
    return ((dist[:, :, None] < dist[:, None, :]) & triples).sum().item() / triples.sum().item()


def test_checkpoint_alone_rebuilds_a_model_that_recognises(trained, toy_file):
    cfg, result = trained
    model, run_cfg, meta = load_model(result.checkpoint, "cpu")
    assert run_cfg == cfg and meta["iteration"] == 30
    assert meta["classes"] == ["001", "002", "003", "004"]
    stored = load_checkpoint(result.checkpoint)["model"]
    assert all(torch.equal(v, stored[k]) for k, v in model.state_dict().items())
    assert not model.training
    # whole sequences (all frames, padded batch) of the train subjects, across views and the bag condition
    ds = GaitDataset(toy_file, "synthetic", "train", frames=None, label_map=meta["label_map"], quiet=True)
    batch = collate([ds[i] for i in range(len(ds))])
    torch.manual_seed(0)
    untrained = DepthGait(run_cfg.model, num_classes=4).eval()
    before, after = ranking_auc(untrained, batch), ranking_auc(model, batch)
    assert after >= 0.85 and after > before + 0.15, (before, after)  # measured: ~0.65 -> ~0.93


def test_resume_continues_bit_for_bit(toy_file, tmp_path):
    cfg = tiny(**{"train.iterations": 6, "train.milestones": [4], "train.checkpoint_every": 3, "train.augment_p": 1.0})
    whole = train(cfg, toy_file, "synthetic", tmp_path / "whole", device="cpu", quiet=True)
    first = train(cfg.override({"train.iterations": 3}), toy_file, "synthetic", tmp_path / "split", device="cpu",
                  quiet=True)
    assert first.iterations == 3
    resumed = train(cfg, toy_file, "synthetic", tmp_path / "split", resume=True, device="cpu", quiet=True)
    assert resumed.start_iteration == 3 and resumed.iterations == 6
    a, b = load_checkpoint(whole.checkpoint), load_checkpoint(resumed.checkpoint)
    assert a["model"].keys() == b["model"].keys()
    for key in a["model"]:
        assert torch.equal(a["model"][key], b["model"][key]), key
    for sa, sb in zip(a["optimizer"]["state"].values(), b["optimizer"]["state"].values(), strict=True):
        assert torch.equal(sa["momentum_buffer"], sb["momentum_buffer"])
    assert a["scheduler"]["last_epoch"] == b["scheduler"]["last_epoch"] == 6
    assert a["sampler"] == b["sampler"] and a["sampler"]["next_batch"] == 6
    losses = lambda r: [(x["iter"], x["loss"]) for x in r.history]  # noqa: E731
    assert losses(resumed) == losses(whole)  # the log was carried over and continued identically
    # already done: resuming again trains nothing
    again = train(cfg, toy_file, "synthetic", tmp_path / "split", resume=True, device="cpu", quiet=True)
    assert again.iterations == again.start_iteration == 6


def test_resume_and_run_folder_guards(toy_file, tmp_path):
    cfg = tiny(**{"train.iterations": 1})
    with pytest.raises(FileNotFoundError, match="nothing to resume"):
        train(cfg, toy_file, "synthetic", tmp_path / "run", resume=True, device="cpu", quiet=True)
    train(cfg, toy_file, "synthetic", tmp_path / "run", device="cpu", quiet=True)
    with pytest.raises(ValueError, match="exists: pass --resume"):
        train(cfg, toy_file, "synthetic", tmp_path / "run", device="cpu", quiet=True)
    with pytest.raises(ValueError, match=r"different settings \(model.embed_dim, train.lr\)"):
        train(cfg.override({"model.embed_dim": 4, "train.lr": 0.2}), toy_file, "synthetic", tmp_path / "run",
              resume=True, device="cpu", quiet=True)
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match="junk.pt: not a readable"):
        load_model(tmp_path / "junk.pt")
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="no CUDA GPU"):
            train(cfg, toy_file, "synthetic", tmp_path / "gpu", device="cuda", quiet=True)


def test_cli_trains_and_is_strict(toy_file, tmp_path):
    runner = CliRunner()
    out = tmp_path / "cli"
    args = ["train", "--data", str(toy_file), "--manifest", "synthetic", "--config", "tiny", "--out", str(out),
            "--device", "cpu", "--quiet", "--set", "train.batch_p=4", "--set", "train.frames=4"]
    result = runner.invoke(main, [*args, "--iterations", "2", "--seed", "3", "--threads", "1"])
    assert result.exit_code == 0, result.output
    assert "trained iterations 1-2" in result.output and f"checkpoint: {out / 'ckpt.pt'}" in result.output
    stored = load_checkpoint(out / "ckpt.pt")["config"]["train"]
    assert (stored["iterations"], stored["seed"], stored["batch_p"], stored["frames"]) == (2, 3, 4, 4)

    resumed = runner.invoke(main, [*args, "--iterations", "3", "--seed", "3", "--resume"])
    assert resumed.exit_code == 0 and "trained iterations 3-3" in resumed.output, resumed.output

    bad_key = runner.invoke(main, [*args, "--set", "train.bogus=1"])
    assert bad_key.exit_code == 1 and "unknown key 'train.bogus'" in bad_key.output
    assert "Traceback" not in bad_key.output
    bad_pair = runner.invoke(main, [*args, "--set", "lr0.1"])
    assert bad_pair.exit_code == 2 and "is not KEY=VALUE" in bad_pair.output
    no_data = runner.invoke(main, ["train", "--data", str(tmp_path / "none.h5"), "--config", "tiny",
                                   "--out", str(tmp_path / "x"), "--quiet"])
    assert no_data.exit_code == 1 and "none.h5: no such aligned file" in no_data.output
    help_text = runner.invoke(main, ["train", "--help"]).output
    assert "Example:" in help_text and "--resume" in help_text


def test_init_starts_a_new_run_from_a_checkpoint(trained, toy_file, tmp_path):
    cfg, result = trained
    one = {"train.iterations": 1, "train.log_every": 1, "train.augment_p": 0.0}
    fresh = train(cfg.override(one), toy_file, "synthetic", tmp_path / "fresh", device="cpu", quiet=True)
    warm = train(cfg.override(one), toy_file, "synthetic", tmp_path / "warm", device="cpu", quiet=True, init=result.checkpoint)
    # Same batch, same seed: the only difference is the starting weights (the 30-iteration run's).
    assert warm.history[0]["loss"] < 0.7 * fresh.history[0]["loss"], (warm.history[0], fresh.history[0])
    assert load_checkpoint(warm.checkpoint)["extra"]["init"] == str(result.checkpoint)
