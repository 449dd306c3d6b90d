"""OpenGait DeepGaitV2 checkpoints: renaming round trip, shape inference, embeddings by value, train --init."""
from __future__ import annotations

import collections
import dataclasses
import json
import math
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from click.testing import CliRunner

from cli.main import main
from depthgait_model.checkpoint import load_model
from depthgait_model.config import ModelConfig, load_config
from depthgait_model.convert import (
    ConvertError,
    convert_opengait,
    from_opengait,
    infer_shapes,
    init_from_checkpoint,
    to_opengait,
)
from depthgait_model.model import DepthGait

FIXTURE = Path(__file__).parent / "fixtures" / "opengait_deepgaitv2_casiab.json"


def _opengait_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Random tensors under OpenGait's DeepGaitV2 names and shapes (the fixture), BN buffers plausible."""
    g = torch.Generator().manual_seed(seed)
    state = {}
    for name, shape in json.loads(FIXTURE.read_text())["tensors"]:
        if name.endswith("num_batches_tracked"):
            state[name] = torch.tensor(60000)
        elif name.endswith("running_var"):
            state[name] = torch.rand(shape, generator=g) + 0.5
        elif name.endswith(("running_mean", "bias")):
            state[name] = torch.randn(shape, generator=g) * 0.1
        elif len(shape) == 1:  # BN weight
            state[name] = 1 + torch.randn(shape, generator=g) * 0.1
        else:  # conv / fc: xavier-like scale keeps activations finite through 5 stages
            fan = math.prod(shape[1:]) if not name.endswith("fc_bin") else shape[1]
            state[name] = torch.randn(shape, generator=g) / math.sqrt(fan)
    return state


def _save_opengait(path: Path, state: dict[str, torch.Tensor]) -> Path:
    """As OpenGait's save_ckpt writes it (model, optimizer, scheduler with a Counter, iteration)."""
    sched = {"milestones": collections.Counter({20000: 1, 40000: 1, 50000: 1}), "gamma": 0.1, "last_epoch": 60000}
    torch.save({"model": state, "optimizer": {"state": {}, "param_groups": []}, "scheduler": sched, "iteration": 60000}, path)
    return path


def _reference_deepgaitv2(state: dict[str, torch.Tensor], sils: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """DeepGaitV2 (OpenGait, p3d, eval mode) written from its source with functional ops, on its own names.

    ``sils`` [n, s, h, w] -> (embed_1 [n, c, p], BNNeck feature [n, c, p]).
    """
    def bn(x, p):
        return F.batch_norm(x, state[f"{p}.running_mean"], state[f"{p}.running_var"], state[f"{p}.weight"], state[f"{p}.bias"], False, 0.0, 1e-5)

    def per_frame(f, x):  # SetBlockWrapper: [n, c, s, h, w] -> frames -> back
        n, c, s, h, w = x.shape
        y = f(x.transpose(1, 2).reshape(-1, c, h, w))
        return y.reshape(n, s, *y.shape[1:]).transpose(1, 2)

    x = sils.unsqueeze(1)  # [n, 1, s, h, w]
    x = per_frame(lambda z: F.relu(bn(F.conv2d(z, state["layer0.forward_block.0.weight"], padding=1), "layer0.forward_block.1")), x)
    p = "layer1.forward_block.0"
    x = per_frame(lambda z: F.relu(bn(F.conv2d(F.relu(bn(F.conv2d(z, state[f"{p}.conv1.weight"], padding=1), f"{p}.bn1")),
                                               state[f"{p}.conv2.weight"], padding=1), f"{p}.bn2") + z), x)
    for layer, stride in ((2, 2), (3, 2), (4, 1)):
        p = f"layer{layer}.0"
        out = per_frame(lambda z, p=p, s=stride: F.relu(bn(F.conv2d(z, state[f"{p}.conv1.forward_block.0.weight"], stride=s, padding=1),
                                                          f"{p}.conv1.forward_block.1")), x)
        out = F.relu(out + bn(F.conv3d(out, state[f"{p}.shortcut3d.weight"], padding=(1, 0, 0)), f"{p}.sbn"))
        out = per_frame(lambda z, p=p: bn(F.conv2d(z, state[f"{p}.conv2.forward_block.0.weight"], padding=1), f"{p}.conv2.forward_block.1"), out)
        identity = bn(F.conv3d(x, state[f"{p}.downsample.0.weight"], stride=(1, stride, stride)), f"{p}.downsample.1")
        x = F.relu(out + identity)
    feat = x.max(2)[0]  # TP: [n, c, h, w]
    n, c = feat.shape[:2]
    z = feat.view(n, c, 16, -1)
    feat = z.mean(-1) + z.max(-1)[0]  # HPP: [n, c, 16]
    embed_1 = feat.permute(2, 0, 1).matmul(state["FCs.fc_bin"]).permute(1, 2, 0)  # [n, 256, 16]
    y = bn(embed_1.reshape(n, -1), "BNNecks.bn1d").view(n, embed_1.shape[1], 16)
    embed_2 = F.normalize(y.permute(2, 0, 1), dim=-1).permute(1, 2, 0)  # [n, 256, 16]
    return embed_1, embed_2


def test_renaming_round_trips_every_tensor():
    state = _opengait_state()
    ours = from_opengait(state)
    assert len(ours) == len(state) == 97
    model = DepthGait(ModelConfig(mode="silhouette-only"), num_classes=74)
    assert sorted(ours) == sorted(model.state_dict())  # one-to-one onto our silhouette-only model
    assert ours["trunk.branch.stages.1.blocks.0.shortcut.module.0.weight"].shape == (128, 64, 1, 1)  # Conv3d 1x1x1 -> 2-D
    back = to_opengait(ours)
    assert list(back) == list(state)
    for name, tensor in state.items():
        assert back[name].shape == tensor.shape and torch.equal(back[name], tensor), name


def test_shapes_are_read_from_the_tensors():
    shapes, classes = infer_shapes(_opengait_state())
    assert shapes == {"channels": [64, 128, 256, 512], "blocks": [1, 1, 1, 1], "parts": 16, "embed_dim": 256}
    assert classes == 74
    with pytest.raises(ConvertError, match="no counterpart"):
        from_opengait({**_opengait_state(), "Head.extra.weight": torch.zeros(1)}, "x.pt")


def test_converted_checkpoint_embeds_like_opengait(tmp_path):
    state = _opengait_state(1)
    src = _save_opengait(tmp_path / "DeepGaitV2-60000.pt", state)
    result = CliRunner().invoke(main, ["convert", "--from", "opengait", str(src), "--out", str(tmp_path / "ck.pt")])
    assert result.exit_code == 0, result.output
    assert "97 tensors, 8,339,392 parameters" in result.output and "74 classes" in result.output
    model, cfg, meta = load_model(tmp_path / "ck.pt")
    assert cfg.model.mode == "silhouette-only" and list(cfg.model.channels) == [64, 128, 256, 512]
    assert len(meta["classes"]) == 74 and meta["extra"]["source_iteration"] == 60000
    model = model.double()
    sils = (torch.rand(2, 6, 64, 44, generator=torch.Generator().manual_seed(2)) > 0.5).double()
    with torch.no_grad():
        ref_fc, ref_bnneck = _reference_deepgaitv2({k: v.double() if v.is_floating_point() else v for k, v in state.items()}, sils)
        fc = model.embed(sils, None, which="fc")
        bnneck = model.embed(sils, None, which="bnneck")
    assert ref_fc.abs().mean() > 1e-3  # not a vanishing signal
    torch.testing.assert_close(fc, ref_fc, rtol=1e-9, atol=1e-9)
    torch.testing.assert_close(bnneck, ref_bnneck, rtol=1e-9, atol=1e-9)


def test_config_that_disagrees_with_the_shapes_is_refused(tmp_path):
    src = _save_opengait(tmp_path / "og.pt", _opengait_state())
    with pytest.raises(ConvertError, match=r"model.channels: config \[4, 8, 8, 16\]"):
        convert_opengait(src, tmp_path / "ck.pt", config="tiny")


def test_init_fills_the_silhouette_branch_of_full(tmp_path):
    tiny = load_config("tiny").model
    sil_model = DepthGait(dataclasses.replace(tiny, mode="silhouette-only"), num_classes=5)
    src = _save_opengait(tmp_path / "og.pt", to_opengait(sil_model.state_dict()))
    convert_opengait(src, tmp_path / "ck.pt", config=_tiny_sil_yaml(tmp_path))
    full = DepthGait(tiny, num_classes=3)  # other classes: the classifier must stay fresh
    before = {k: v.clone() for k, v in full.state_dict().items()}
    report = init_from_checkpoint(full, tmp_path / "ck.pt")
    after = full.state_dict()
    src_sd = sil_model.state_dict()
    assert torch.equal(after["trunk.sil.stem.module.0.weight"], src_sd["trunk.branch.stem.module.0.weight"])
    assert torch.equal(after["trunk.sil.stages.2.blocks.0.temporal.weight"], src_sd["trunk.branch.stages.2.blocks.0.temporal.weight"])
    assert torch.equal(after["trunk.stage4.blocks.0.conv1.module.0.weight"], src_sd["trunk.branch.stages.3.blocks.0.conv1.module.0.weight"])
    assert torch.equal(after["fcs.weight"], src_sd["fcs.weight"])
    for name in ("trunk.depth.stem.module.0.weight", "bnnecks.weight", "trunk.aggregate.mix.0.weight"):
        assert torch.equal(after[name], before[name]), name  # untouched
    assert "bnnecks.weight" in report.fresh and any(s.startswith("bnnecks.weight: shape") for s in report.skipped)
    assert len(report.loaded) == 96  # all but the 5-class classifier


def _tiny_sil_yaml(tmp_path: Path) -> Path:
    cfg = load_config("tiny").to_dict()
    cfg["model"]["mode"] = "silhouette-only"
    path = tmp_path / "tiny-sil.yaml"
    import yaml

    path.write_text(yaml.safe_dump(cfg))
    return path
