"""The network on the tiny recipe: speed, shapes, gradients, modality ablations, padding, and the
head's layers compared with their reference formulas by value."""
from __future__ import annotations

import dataclasses

import pytest
import torch
import torch.nn.functional as F

from depthgait_model.blocks import (
    BasicBlockP3D,
    Conv1x1,
    FrameConv1x1,
    HorizontalPyramidPooling,
    SeparateBNNecks,
    SeparateFCs,
    TemporalConv,
    fold_frames,
    frame_mask,
    temporal_max,
    unfold_frames,
)
from depthgait_model.config import ModelConfig, load_config
from depthgait_model.losses import GaitLoss
from depthgait_model.model import DepthGait
from depthgait_model.trunks import Branch

NUM_CLASSES = 5
MODES = ("silhouette-only", "depth-only", "late-fusion", "full")


@pytest.fixture(scope="module")
def tiny() -> ModelConfig:
    return load_config("tiny").model


def build(cfg: ModelConfig, seed: int = 0, **changes: object) -> DepthGait:
    torch.manual_seed(seed)
    return DepthGait(dataclasses.replace(cfg, **changes), NUM_CLASSES)


def clips(n: int = 4, t: int = 4, seed: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    sil = (torch.rand(n, t, 64, 44, generator=g) > 0.5).float()  # (N, T, 64, 44)
    depth = torch.rand(n, t, 64, 44, generator=g) * sil  # (N, T, 64, 44): zero outside the silhouette
    return sil, depth


def train_step(model: DepthGait, sil: torch.Tensor, depth: torch.Tensor) -> torch.Tensor:
    labels = torch.tensor([0, 0, 1, 1])
    loss, _ = GaitLoss(load_config("tiny").train)(model(sil, depth), labels)
    loss.backward()
    return loss


@pytest.mark.parametrize("mode", MODES)
def test_every_mode_trains_with_right_shapes_and_full_gradients(tiny: ModelConfig, mode: str) -> None:
    """(Speed is measured in bench/bench_model.py, not here.)"""
    model = build(tiny, mode=mode)
    sil, depth = clips()
    loss = train_step(model, sil, depth)
    assert torch.isfinite(loss)
    out = model(sil, depth)
    assert out.embeddings.shape == (4, tiny.embed_dim, tiny.parts)
    assert out.bnneck.shape == (4, tiny.embed_dim, tiny.parts)
    assert out.logits.shape == (4, NUM_CLASSES, tiny.parts)
    assert out.logits.abs().max() <= 1 + 1e-5  # cosine logits
    missing = [name for name, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing, f"{mode}: parameters without gradient: {missing}"


@pytest.mark.parametrize(
    "changes",
    [
        {"fusion_op": "add"},
        {"fusion_op": "concat"},
        {"fusion_levels": (2,)},
        {"fusion_levels": ()},
        {"multiscale": False},
        {"mode": "late-fusion", "late_fusion_op": "sum"},
    ],
)
def test_fusion_ablations_build_run_and_get_gradients(tiny: ModelConfig, changes: dict) -> None:
    model = build(tiny, **changes)
    train_step(model, *clips())
    missing = [name for name, p in model.named_parameters() if p.grad is None]
    assert not missing, f"{changes}: parameters without gradient: {missing}"


def test_ablations_differ_in_parameters(tiny: ModelConfig) -> None:
    counts = {mode: build(tiny, mode=mode).num_parameters() for mode in MODES}
    assert counts["silhouette-only"] == counts["depth-only"] < counts["full"] < counts["late-fusion"]
    assert build(tiny, fusion_op="add").num_parameters() < build(tiny, fusion_op="concat").num_parameters()
    assert build(tiny, fusion_op="concat").num_parameters() < counts["full"]  # gate = concat + gates


def test_single_modality_modes_ignore_the_other_input(tiny: ModelConfig) -> None:
    sil, depth = clips()
    other_sil, other_depth = clips(seed=7)
    sil_only = build(tiny, mode="silhouette-only").eval()
    ref = sil_only.embed(sil, depth)
    assert torch.equal(ref, sil_only.embed(sil, other_depth))
    assert torch.equal(ref, sil_only.embed(sil, None))
    assert not torch.allclose(ref, sil_only.embed(other_sil, depth))
    depth_only = build(tiny, mode="depth-only").eval()
    ref = depth_only.embed(sil, depth)
    assert torch.equal(ref, depth_only.embed(other_sil, depth))
    assert torch.equal(ref, depth_only.embed(None, depth))
    assert not torch.allclose(ref, depth_only.embed(sil, other_depth))


@pytest.mark.parametrize("mode", ["full", "late-fusion"])
def test_fused_modes_use_depth(tiny: ModelConfig, mode: str) -> None:
    model = build(tiny, mode=mode).eval()
    sil, depth = clips()
    _, other_depth = clips(seed=7)
    assert (model.embed(sil, depth) - model.embed(sil, other_depth)).abs().max() > 1e-4
    with pytest.raises(AssertionError, match="needs depth"):
        model(sil, None)


def test_padded_batch_with_lengths_embeds_like_unpadded_sequences(tiny: ModelConfig) -> None:
    model = build(tiny).eval()
    short_sil, short_depth = clips(n=1, t=3, seed=3)
    long_sil, long_depth = clips(n=1, t=6, seed=4)
    junk_sil, junk_depth = clips(n=1, t=3, seed=5)  # padding that is not zero: masking must matter
    sil = torch.cat([torch.cat([short_sil, junk_sil], dim=1), long_sil])  # (2, 6, 64, 44)
    depth = torch.cat([torch.cat([short_depth, junk_depth], dim=1), long_depth])  # (2, 6, 64, 44)
    lengths = torch.tensor([3, 6])
    for which in ("fc", "bnneck"):
        padded = model.embed(sil, depth, lengths, which=which)
        assert torch.allclose(padded[0], model.embed(short_sil, short_depth, which=which)[0], atol=1e-5)
        assert torch.allclose(padded[1], model.embed(long_sil, long_depth, which=which)[0], atol=1e-5)
    unmasked = model.embed(sil, depth)  # the same batch without lengths sees the junk frames
    assert not torch.allclose(unmasked[0], model.embed(short_sil, short_depth)[0], atol=1e-4)


def test_single_frame_and_single_sequence_at_test_time(tiny: ModelConfig) -> None:
    model = build(tiny).eval()
    sil, depth = clips(n=1, t=1)
    assert model.embed(sil, depth).shape == (1, tiny.embed_dim, tiny.parts)
    sil, depth = clips(n=1, t=37)  # a whole test sequence, longer than any training clip
    emb = model.embed(sil, depth, torch.tensor([37]))
    assert torch.isfinite(emb).all()


def test_input_contract_asserts(tiny: ModelConfig) -> None:
    model = build(tiny).eval()
    sil, depth = clips()
    with pytest.raises(AssertionError, match=r"sil must be \[N, T, H, W\]"):
        model(sil[0], depth[0])
    with pytest.raises(AssertionError, match="differ"):
        model(sil, depth[:, :2])
    with pytest.raises(AssertionError, match="lengths must be in 1..4"):
        model(sil, depth, torch.tensor([4, 4, 0, 4]))
    with pytest.raises(AssertionError, match="float"):
        model((sil * 255).to(torch.uint8), depth)


def test_branch_feature_info_matches_its_features(tiny: ModelConfig) -> None:
    branch = Branch(tiny.channels, tiny.blocks, tiny.strides)
    feats = branch.forward_features(torch.rand(2, 1, 3, 64, 44))
    assert [f.shape[1] for f in feats] == [info["num_chs"] for info in branch.feature_info]
    assert [64 // f.shape[3] for f in feats] == [info["reduction"] for info in branch.feature_info] == [1, 2, 4, 4]
    assert feats[-1].shape == (2, tiny.channels[3], 3, 16, 11)


def test_hpp_equals_strip_mean_plus_max() -> None:
    x = torch.randn(2, 3, 32, 11)
    ref = x.view(2, 3, 16, -1).mean(-1) + x.view(2, 3, 16, -1).amax(-1)  # 2 rows per strip
    assert torch.allclose(HorizontalPyramidPooling(16)(x), ref, atol=1e-6)


def test_temporal_max_ignores_padded_frames() -> None:
    x = torch.randn(2, 3, 5, 4, 4)
    x[0, :, 2:] = 100.0  # padding that would win an unmasked max
    out = temporal_max(x, frame_mask(torch.tensor([2, 5]), 5))
    assert torch.equal(out[0], x[0, :, :2].amax(dim=1)) and torch.equal(out[1], x[1].amax(dim=1))


def test_separate_fcs_and_bnnecks_match_per_part_formulas() -> None:
    torch.manual_seed(0)
    x = torch.randn(4, 6, 3)
    fcs = SeparateFCs(3, 6, 5)
    out = fcs(x)
    for p in range(3):
        assert torch.allclose(out[:, :, p], x[:, :, p] @ fcs.weight[p], atol=1e-6)
    necks = SeparateBNNecks(3, 5, 7).eval()
    with torch.no_grad():
        necks.bn.running_mean.uniform_(-1, 1)
        necks.bn.running_var.uniform_(0.5, 2)
    feat, logits = necks(out)
    bn = (out.reshape(4, 15) - necks.bn.running_mean) / torch.sqrt(necks.bn.running_var + necks.bn.eps)
    # The BNNeck feature is L2-normalised per part, as OpenGait's SeparateBNNecks returns it.
    assert torch.allclose(feat, F.normalize(bn.reshape(4, 5, 3), dim=1), atol=1e-5)
    assert torch.allclose(feat.norm(dim=1), torch.ones(4, 3), atol=1e-6)
    for p in range(3):
        cos = feat[:, :, p] @ F.normalize(necks.weight[p], dim=0)  # (N, K)
        assert torch.allclose(logits[:, :, p], cos, atol=1e-6)


# --- The frame-folded, channels-last layers against straightforward 5-D formulations -------------

CL = torch.channels_last


def folded(n: int, c: int, t: int, h: int, w: int, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """A random ``[N, C, T, H, W]`` map (float64: equality to 1e-10 means same math) and its folded view."""
    g = torch.Generator().manual_seed(seed)
    x5 = torch.randn(n, c, t, h, w, generator=g, dtype=torch.float64)  # (N, C, T, H, W)
    return x5, fold_frames(x5)  # (N*T, C, H, W) channels_last


def test_fold_and_unfold_frames_are_inverse_and_channels_last() -> None:
    x5, x4 = folded(2, 3, 4, 5, 6)
    assert x4.shape == (8, 3, 5, 6) and x4.is_contiguous(memory_format=CL)
    assert torch.equal(x4[1 * 4 + 2], x5[1, :, 2])  # row n * T + t is sequence n, frame t
    assert torch.equal(unfold_frames(x4, 4), x5)
    one = fold_frames(torch.rand(2, 1, 3, 8, 4))  # one channel: strides still say channels-last
    assert one.stride()[1] == 1 and one.is_contiguous(memory_format=CL)


@pytest.mark.parametrize("layout", ["channels_last", "contiguous"])
def test_temporal_conv_equals_conv3d_with_the_same_weight(layout: str) -> None:
    torch.manual_seed(0)
    conv = TemporalConv(6).double()
    x5, x4 = folded(3, 6, 5, 4, 3)
    if layout == "contiguous":
        x4 = x4.contiguous()
    x4.requires_grad_(True)
    ref = F.conv3d(x5, conv.weight, padding=(1, 0, 0))  # (N, C, T, H, W)
    out = conv(x4, 5)  # (N*T, C, H, W)
    assert out.is_contiguous(memory_format=CL)
    assert torch.allclose(unfold_frames(out, 5), ref, atol=1e-10)
    grad = torch.randn_like(ref)
    out.backward(fold_frames(grad))
    x5.requires_grad_(True)
    ref_x, ref_w = torch.autograd.grad(F.conv3d(x5, conv.weight, padding=(1, 0, 0)), (x5, conv.weight), grad)
    assert torch.allclose(unfold_frames(x4.grad, 5), ref_x, atol=1e-10)
    assert torch.allclose(conv.weight.grad, ref_w, atol=1e-10)


def test_frame_conv1x1_of_several_inputs_equals_conv3d_of_their_concatenation() -> None:
    torch.manual_seed(0)
    conv = FrameConv1x1(7, 6).double()
    a5, a4 = folded(2, 3, 4, 5, 4, seed=1)
    b5, b4 = folded(2, 4, 4, 5, 4, seed=2)
    ref = F.conv3d(torch.cat([a5, b5], dim=1), conv.weight, conv.bias)  # (N, 6, T, H, W)
    assert torch.allclose(unfold_frames(conv(a4, b4), 4), ref, atol=1e-10)
    parts = conv.forward_split(torch.cat([a4, b4], dim=1), 2)
    assert [p.shape[1] for p in parts] == [3, 3]
    assert torch.allclose(unfold_frames(torch.cat(parts, dim=1), 4), ref, atol=1e-10)
    with pytest.raises(AssertionError, match="inputs have 3 channels, the conv takes 7"):
        conv(a4)


@pytest.mark.parametrize("in_ch", [4, 8, 24])  # fewer than 16 input channels hit oneDNN's strided-1x1 bug
def test_strided_conv1x1_equals_the_strided_conv_in_value_and_gradient(in_ch: int) -> None:
    torch.manual_seed(0)
    conv = Conv1x1(in_ch, 16, stride=2)
    x = torch.randn(6, in_ch, 15, 11).to(memory_format=CL).requires_grad_(True)  # odd sizes: ceil(H / 2)
    out = conv(x)
    assert out.shape == (6, 16, 8, 6)
    grad = torch.randn_like(out)
    out.backward(grad)
    ref_in = x.detach().contiguous().requires_grad_(True)  # NCHW: oneDNN's blocked path, not the buggy one
    ref = F.conv2d(ref_in, conv.weight.detach(), stride=2)
    ref_x, = torch.autograd.grad(ref, ref_in, grad.contiguous())
    ref_w = torch.einsum("nohw,nihw->oi", grad, ref_in.detach()[:, :, ::2, ::2])  # (C_out, C_in)
    assert torch.allclose(out, ref, atol=1e-5)
    assert torch.allclose(x.grad, ref_x, atol=1e-5)
    assert torch.allclose(conv.weight.grad[:, :, 0, 0], ref_w, atol=1e-4)


def reference_p3d(block: BasicBlockP3D, x5: torch.Tensor, mask: torch.Tensor | None, stride: int) -> torch.Tensor:
    """The pseudo-3D block written in 5-D, frame-wise convs as (1, k, k) conv3d: the first formulation."""

    def bn(layer: torch.nn.BatchNorm2d, x: torch.Tensor) -> torch.Tensor:
        return F.batch_norm(x, None, None, layer.weight, layer.bias, True, 0.0, layer.eps)  # batch statistics

    conv1, bn1 = block.conv1.module[0], block.conv1.module[1]
    out = F.relu(bn(bn1, F.conv3d(x5, conv1.weight.unsqueeze(2), stride=(1, stride, stride), padding=(0, 1, 1))))
    seen = out if mask is None else out * mask[:, None, :, None, None].to(out.dtype)
    out = F.relu(out + bn(block.temporal_bn, F.conv3d(seen, block.temporal.weight, padding=(1, 0, 0))))
    conv2, bn2 = block.conv2.module[0], block.conv2.module[1]
    out = bn(bn2, F.conv3d(out, conv2.weight.unsqueeze(2), padding=(0, 1, 1)))
    short_conv, short_bn = block.shortcut.module[0], block.shortcut.module[1]
    short = bn(short_bn, F.conv3d(x5, short_conv.weight.unsqueeze(2), stride=(1, stride, stride)))
    return F.relu(out + short)  # (N, C', T, H', W')


@pytest.mark.parametrize("masked", [False, True])
def test_p3d_block_equals_its_5d_reference_in_value_and_gradient(masked: bool) -> None:
    torch.manual_seed(0)
    block = BasicBlockP3D(3, 5, stride=2).double().train()
    x5, x4 = folded(2, 3, 4, 9, 6)
    mask = frame_mask(torch.tensor([4, 2]), 4) if masked else None
    x4.requires_grad_(True)
    out = block(x4, 4, mask)  # (N*T, 5, 5, 3)
    assert out.is_contiguous(memory_format=CL)
    x5.requires_grad_(True)
    ref = reference_p3d(block, x5, mask, 2)
    assert torch.allclose(unfold_frames(out, 4), ref, atol=1e-10)
    grad = torch.randn_like(ref)
    params = list(block.parameters())
    got = torch.autograd.grad(out, [x4, *params], fold_frames(grad))
    want = torch.autograd.grad(ref, [x5, *params], grad)
    assert torch.allclose(unfold_frames(got[0], 4), want[0], atol=1e-10)
    for name, g, w in zip([n for n, _ in block.named_parameters()], got[1:], want[1:], strict=True):
        assert torch.allclose(g, w, atol=1e-10), name


def test_state_dict_layout_is_the_first_formulations(tiny: ModelConfig) -> None:
    """Checkpoints of the 5-D network load unchanged: same keys, element count and Conv3d-shaped weights."""
    state = build(tiny).state_dict()
    assert len(state) == 199 and sum(v.numel() for v in state.values()) == 15067
    five_d = {k: tuple(v.shape) for k, v in state.items() if v.dim() == 5}
    for branch in ("sil", "depth"):
        for stage in (1, 2):
            assert five_d.pop(f"trunk.{branch}.stages.{stage}.blocks.0.temporal.weight") == (8, 8, 3, 1, 1)
    assert five_d.pop("trunk.stage4.blocks.0.temporal.weight") == (16, 16, 3, 1, 1)
    assert five_d.pop("trunk.aggregate.mix.0.weight") == (8, 36, 1, 1, 1)
    for level, c in ((1, 4), (2, 8), (3, 8)):
        assert five_d.pop(f"trunk.cross.{level}.fuse.0.weight") == (c, 2 * c, 1, 1, 1)
        assert five_d.pop(f"trunk.cross.{level}.gate.0.weight") == (4, c, 1, 1, 1)
        assert five_d.pop(f"trunk.cross.{level}.gate.2.weight") == (2 * c, 4, 1, 1, 1)
    assert not five_d


def test_embeddings_equal_those_of_the_first_5d_network(tiny: ModelConfig) -> None:
    """Seed 0 builds the same weights as the first formulation, and a padded batch embeds as it did there
    (values recorded from that implementation, commit 8347537)."""
    model = build(tiny).eval()
    g = torch.Generator().manual_seed(1)
    sil = (torch.rand(2, 5, 64, 44, generator=g) > 0.5).float()  # (2, 5, 64, 44)
    depth = torch.rand(2, 5, 64, 44, generator=g) * sil  # (2, 5, 64, 44)
    emb = model.embed(sil, depth, torch.tensor([5, 3]))  # (2, 8, 16)
    assert emb.abs().sum().item() == pytest.approx(0.5652637, rel=1e-5)
    first = torch.tensor([0.0039710090, -0.0006567937, -0.0018230856, -0.0018524969])
    last = torch.tensor([0.0015669886, 0.0011980230, -0.0029900004, 0.0005315736])
    assert torch.allclose(emb[0, :4, 0], first, rtol=1e-4, atol=1e-8)
    assert torch.allclose(emb[1, :4, 15], last, rtol=1e-4, atol=1e-8)


def test_branch_features_stay_channels_last(tiny: ModelConfig) -> None:
    """oneDNN convs are ~3x faster channels-last on CPU; a layer that drops the layout costs copies."""
    branch = Branch(tiny.channels, tiny.blocks, tiny.strides)
    feats = branch.forward_folded(fold_frames(torch.rand(2, 1, 3, 64, 44)), 3)
    assert all(f.is_contiguous(memory_format=CL) for f in feats)
