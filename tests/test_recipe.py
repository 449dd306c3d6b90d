"""OpenGait's recipe options: weight initialisation by value, evaluation during training."""
from __future__ import annotations

import dataclasses
import json
import math

import pytest
import torch
from test_data import write_toy_aligned
from torch import nn

from depthgait_model.checkpoint import load_checkpoint
from depthgait_model.config import ModelConfig, load_config
from depthgait_model.evaluate import test_checkpoint
from depthgait_model.model import DepthGait
from depthgait_model.train import maybe_sync_bn, plot_losses, train
from depthgait_model.weight_init import init_weights


def test_xavier_init_is_opengaits():
    torch.manual_seed(0)
    model = init_weights(DepthGait(ModelConfig(mode="silhouette-only"), num_classes=74), "xavier")
    convs = [m for m in model.modules() if isinstance(m, (nn.Conv2d, nn.Conv3d))]
    assert len(convs) == 1 + 2 + 3 * 4  # stem, stage-1 block, three P3D blocks (conv1, conv2, temporal, shortcut)
    for conv in convs:
        w = conv.weight.detach()
        fan_in, fan_out = w.shape[1] * w[0, 0].numel(), w.shape[0] * w[0, 0].numel()
        bound = math.sqrt(6 / (fan_in + fan_out))
        assert float(w.abs().max()) <= bound + 1e-7
        if w.numel() > 10000:  # uniform(-b, b): std b / sqrt(3)
            assert float(w.std()) == pytest.approx(bound / math.sqrt(3), rel=0.03)
    norms = [m for m in model.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    weights = torch.cat([m.weight.detach() for m in norms])
    assert len(norms) == 16 and float(weights.mean()) == pytest.approx(1.0, abs=0.002)
    assert float(weights.std()) == pytest.approx(0.02, rel=0.05)
    assert all(float(m.bias.detach().abs().max()) == 0 for m in norms)
    # torch's defaults differ: BatchNorm weight exactly 1, convs kaiming-uniform (bound 1 / sqrt(fan_in))
    torch.manual_seed(0)
    plain = init_weights(DepthGait(ModelConfig(mode="silhouette-only"), num_classes=74), "torch")
    stem = plain.trunk.branch.stem.module[0].weight
    assert float(stem.detach().abs().max()) <= 1 / math.sqrt(9) and float(plain.trunk.branch.stem.module[1].weight.detach().std()) == 0
    with pytest.raises(ValueError, match="weight_init"):
        init_weights(plain, "he")


def test_recipe_defaults_are_opengaits():
    tc = load_config("casia-b").train
    assert (tc.sampling, tc.frames, tc.frames_skip_num, tc.augment, tc.weight_init) == ("fixed_ordered", 30, 4, "opengait", "xavier")
    assert tc.sync_bn and tc.gather_triplet and not tc.triplet_self_pairs and tc.eval_every == 0
    assert dataclasses.replace(tc) == type(tc)()  # the shipped recipe is the dataclass defaults


def test_eval_every_logs_rank1_and_keeps_the_best(tmp_path):
    data = write_toy_aligned(tmp_path / "aligned.h5")
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = load_config("tiny").override({"train.batch_p": 4, "train.batch_k": 2, "train.frames": 4, "train.iterations": 6,
                                            "train.checkpoint_every": 3, "train.log_every": 3, "train.eval_every": 3})
        result = train(cfg, data, "synthetic", tmp_path / "run", device="cpu", quiet=True)
    finally:
        torch.set_num_threads(before)
    records = [json.loads(line) for line in (tmp_path / "run" / "metrics.jsonl").read_text().splitlines()]
    evals = [r for r in records if "eval/rank1" in r]
    assert [r["iter"] for r in evals] == [3, 6] and all(0 <= r["eval/rank1"] <= 100 for r in evals)
    assert set(evals[0]) == {"iter", "eval/rank1", "eval/NM"}  # the toy set has no BG / CL probes
    assert result.final_loss == [r for r in records if "loss" in r][-1]["loss"]
    # The logged number is what `depthgait test` reports for that checkpoint (mean over conditions).
    report = test_checkpoint(tmp_path / "run" / "ckpt-6.pt", data, "synthetic", quiet=True, echo=None)
    assert report["BG"]["mean"] is None and report["CL"]["mean"] is None
    assert evals[1]["eval/rank1"] == pytest.approx(report["NM"]["mean"]) and evals[1]["eval/NM"] == evals[1]["eval/rank1"]
    best = max(evals, key=lambda r: r["eval/rank1"])
    stored = load_checkpoint(tmp_path / "run" / "ckpt-best.pt")
    assert stored["iteration"] == best["iter"] and stored["extra"]["eval"]["eval/rank1"] == best["eval/rank1"]
    assert plot_losses(records, tmp_path / "loss.png").read_bytes()[:4] == b"\x89PNG"


def test_sync_bn_under_ddp_on_cuda_only():
    model = DepthGait(dataclasses.replace(load_config("tiny").model, mode="silhouette-only"), num_classes=3)
    keys = list(model.state_dict())
    cuda, cpu = torch.device("cuda", 0), torch.device("cpu")
    assert maybe_sync_bn(model, True, 1, cuda) is model and maybe_sync_bn(model, True, 2, cpu) is model
    assert maybe_sync_bn(model, False, 2, cuda) is model
    synced = maybe_sync_bn(model, True, 2, cuda)
    kinds = [type(m) for m in synced.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert len(kinds) == 16 and set(kinds) == {nn.SyncBatchNorm}
    assert list(synced.state_dict()) == keys  # checkpoints stay interchangeable
