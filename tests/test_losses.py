"""Losses against brute-force loop implementations on small random batches."""
from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from depthgait_model.config import TrainConfig
from depthgait_model.losses import CrossEntropyLoss, GaitLoss, TripletLoss
from depthgait_model.model import GaitOutput


def brute_triplet(emb: torch.Tensor, labels: list[int], margin: float) -> tuple[float, float, float]:
    """Loop over parts and (anchor, positive != anchor, negative) triples; non-zero mean per part."""
    n, _, parts = emb.shape
    losses, active, total, dists = [], 0, 0, []
    for p in range(parts):
        x = emb[:, :, p].double()
        terms = []
        for a, b, c in itertools.product(range(n), repeat=3):
            if a != b and labels[a] == labels[b] and labels[a] != labels[c]:
                terms.append(max(0.0, float((x[a] - x[b]).norm() - (x[a] - x[c]).norm()) + margin))
        nonzero = [t for t in terms if t > 0]
        losses.append(sum(nonzero) / len(nonzero) if nonzero else 0.0)
        active += len(nonzero)
        total += len(terms)
        dists += [float((x[i] - x[j]).norm()) for i in range(n) for j in range(n)]
    return sum(losses) / parts, active / total, sum(dists) / len(dists)


@pytest.mark.parametrize("labels", [[0, 0, 1, 1, 2, 2, 3, 3], [5, 5, 5, 1, 2, 2, 7]])
def test_triplet_matches_brute_force(labels: list[int]) -> None:
    torch.manual_seed(0)
    emb = torch.randn(len(labels), 6, 3) * 0.3  # small spread: a mix of active and inactive triplets
    loss, info = TripletLoss(margin=0.2)(emb, torch.tensor(labels))
    ref_loss, ref_frac, ref_dist = brute_triplet(emb, labels, 0.2)
    assert 0.0 < ref_frac < 1.0  # the batch exercises both sides of the hinge
    assert loss.item() == pytest.approx(ref_loss, rel=1e-5)
    assert info["nonzero_frac"] == pytest.approx(ref_frac)
    assert info["mean_dist"] == pytest.approx(ref_dist, rel=1e-4)
    assert info["loss"] == pytest.approx(ref_loss, rel=1e-5)


def test_triplet_separated_clusters_give_zero_and_coincident_points_no_nan() -> None:
    centers = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.0, 10.0]])
    emb = centers.repeat_interleave(2, dim=0)[:, :, None].repeat(1, 1, 2)  # (6, 2, 2): exact duplicates
    emb.requires_grad_(True)
    loss, info = TripletLoss(0.2)(emb, torch.tensor([0, 0, 1, 1, 2, 2]))
    loss.backward()
    assert loss.item() == 0.0 and info["nonzero_frac"] == 0.0
    assert torch.isfinite(emb.grad).all()


def test_cross_entropy_matches_torch_per_part() -> None:
    torch.manual_seed(1)
    logits = torch.rand(6, 5, 4) * 2 - 1  # cosine logits in [-1, 1]
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    loss, info = CrossEntropyLoss(scale=16.0, label_smoothing=0.1)(logits, labels)
    per_part = [F.cross_entropy(16 * logits[:, :, p], labels, label_smoothing=0.1) for p in range(4)]
    assert loss.item() == pytest.approx(torch.stack(per_part).mean().item(), rel=1e-6)
    # The same by the smoothing formula: (1 - e) * NLL + e * mean over classes of -log p.
    logp = torch.log_softmax(16 * logits, dim=1)  # (N, K, P)
    nll = -logp.gather(1, labels[:, None, None].expand(-1, 1, 4)).squeeze(1)  # (N, P)
    manual = (0.9 * nll + 0.1 * (-logp.mean(dim=1))).mean()
    assert loss.item() == pytest.approx(manual.item(), rel=1e-5)
    hits = sum(int(logits[i, :, p].argmax() == labels[i]) for i in range(6) for p in range(4))
    assert info["accuracy"] == pytest.approx(hits / 24)


def test_gait_loss_weights_both_terms() -> None:
    torch.manual_seed(2)
    emb, logits = torch.randn(4, 3, 2), torch.rand(4, 2, 2)
    labels = torch.tensor([0, 0, 1, 1])
    out = GaitOutput(emb, emb, logits)
    loss, info = GaitLoss(TrainConfig(triplet_weight=2.0, ce_weight=0.5))(out, labels)
    t, _ = TripletLoss(0.2)(emb, labels)
    c, _ = CrossEntropyLoss(16.0, 0.1)(logits, labels)
    assert loss.item() == pytest.approx(2.0 * t.item() + 0.5 * c.item(), rel=1e-6)
    assert {"loss", "triplet/loss", "triplet/nonzero_frac", "triplet/mean_dist", "ce/loss", "ce/accuracy"} <= set(info)


def test_triplet_self_pairs_hand_computed() -> None:
    """1-D embeddings A = {0, 0.1}, B = {0.25, 1.0}, margin 0.2 (hinge terms worked out by hand)."""
    emb = torch.tensor([0.0, 0.1, 0.25, 1.0]).reshape(4, 1, 1)
    labels = torch.tensor([0, 0, 1, 1])
    ours, info = TripletLoss(0.2)(emb, labels)
    # 8 triplets; non-zero: 0.05 (a0,a1,b0), 0.15 (a1,a0,b0), 0.7, 0.8 (b0,b1,a*), 0.05 (b1,b0,a1)
    assert ours.item() == pytest.approx(1.75 / 5, abs=1e-5) and info["nonzero_frac"] == pytest.approx(5 / 8)
    opengait, info = TripletLoss(0.2, self_pairs=True)(emb, labels)
    # (a, a) adds 8 more terms 0.2 - d(a, n); two are non-zero: 0.05 (a1 vs b0) and 0.05 (b0 vs a1)
    assert opengait.item() == pytest.approx(1.85 / 7, abs=1e-5) and info["nonzero_frac"] == pytest.approx(7 / 16)
    assert GaitLoss(TrainConfig(triplet_self_pairs=True)).triplet.self_pairs


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    """One rank of a 2-process gloo group: half the batch, gathered triplet, gradient of a shared weight."""
    import torch.distributed as dist

    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world)
    try:
        x, labels, theta = _ddp_case()
        half = len(x) // world
        rows = slice(rank * half, (rank + 1) * half)
        weight = theta.clone().requires_grad_(True)
        emb = x[rows] * weight  # [n, C, P]
        out_ = GaitOutput(emb, emb, torch.zeros(half, 3, emb.shape[2]))
        loss, _ = GaitLoss(TrainConfig(ce_weight=0.0))(out_, labels[rows])
        loss.backward()
        dist.all_reduce(weight.grad)
        weight.grad /= world  # what DDP does to every parameter's gradient
        if rank == 0:
            torch.save(weight.grad, out)
    finally:
        dist.destroy_process_group()


def _ddp_case() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    g = torch.Generator().manual_seed(0)
    x = torch.randn(8, 5, 2, generator=g)
    labels = torch.tensor([0, 0, 1, 1, 0, 0, 1, 1])  # each rank's half holds both subjects
    return x, labels, torch.rand(5, 2, generator=g) + 0.5


def test_triplet_over_the_gathered_batch_under_ddp(tmp_path) -> None:
    """Under DDP the averaged gradient equals the full-batch triplet loss's (OpenGait's gather and scale)."""
    import socket

    import torch.multiprocessing as mp

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    out = tmp_path / "grad.pt"
    mp.start_processes(_ddp_worker, args=(2, port, str(out)), nprocs=2, start_method="spawn")
    x, labels, theta = _ddp_case()
    weight = theta.clone().requires_grad_(True)
    full, _ = TripletLoss(0.2)(x * weight, labels)
    full.backward()
    torch.testing.assert_close(torch.load(out), weight.grad, rtol=1e-5, atol=1e-6)
    local = theta.clone().requires_grad_(True)  # without the gather, each half alone: a different gradient
    (TripletLoss(0.2)(x[:4] * local, labels[:4])[0] + TripletLoss(0.2)(x[4:] * local, labels[4:])[0]).div(2).backward()
    assert not torch.allclose(local.grad, weight.grad, atol=1e-4)
