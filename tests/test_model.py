"""The network on the tiny recipe: speed, shapes, gradients, modality ablations, padding, and the
head's layers compared with their reference formulas by value."""
from __future__ import annotations

import dataclasses
import time
from collections.abc import Iterator

import pytest
import torch
import torch.nn.functional as F

from depthgait_model.blocks import HorizontalPyramidPooling, SeparateBNNecks, SeparateFCs, frame_mask, temporal_max
from depthgait_model.branch import Branch
from depthgait_model.config import ModelConfig, load_config
from depthgait_model.losses import GaitLoss
from depthgait_model.model import DepthGait

NUM_CLASSES = 5
MODES = ("silhouette-only", "depth-only", "late-fusion", "full")


@pytest.fixture(scope="module", autouse=True)
def one_thread() -> Iterator[None]:
    """Tiny models gain nothing from threads, and two threads thrash on a shared 2-core machine."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


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
def test_every_mode_trains_fast_with_right_shapes_and_full_gradients(tiny: ModelConfig, mode: str) -> None:
    model = build(tiny, mode=mode)
    sil, depth = clips()
    times = []
    for _ in range(3):  # best of 3: the first call allocates, and other processes share the CPU
        model.zero_grad(set_to_none=True)
        start = time.perf_counter()
        loss = train_step(model, sil, depth)
        times.append(time.perf_counter() - start)
    assert min(times) < 1.0, f"tiny {mode} forward+backward took {min(times):.2f} s at best"
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
    assert torch.allclose(feat, bn.reshape(4, 5, 3), atol=1e-5)
    for p in range(3):
        cos = F.normalize(feat[:, :, p], dim=1) @ F.normalize(necks.weight[p], dim=0)  # (N, K)
        assert torch.allclose(logits[:, :, p], cos, atol=1e-6)
