"""Losses of the field's recipe (OpenGait's DeepGaitV2): batch-all triplet on the FC embeddings and
scaled, label-smoothed cross-entropy on the BNNeck logits, each computed per horizontal part.

Every loss returns ``(loss, info)``: the scalar to back-propagate and a ``dict[str, float]`` the
trainer logs without knowing which loss it came from.
"""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

from depthgait_model.config import TrainConfig


def part_distances(embeddings: torch.Tensor) -> torch.Tensor:
    """Euclidean distance between every pair of sequences, per part: ``[N, C, P] -> [P, N, N]``.

    Squared norms are clamped at 1e-12 before the square root, so coincident points (the diagonal)
    have a finite gradient instead of NaN.
    """
    x = embeddings.float().permute(2, 0, 1)  # (P, N, C)
    sq = x.pow(2).sum(-1)  # (P, N)
    d2 = sq[:, :, None] + sq[:, None, :] - 2 * torch.bmm(x, x.transpose(1, 2))  # (P, N, N)
    return d2.clamp_min(1e-12).sqrt()  # (P, N, N)


def gather_keep_grad(x: torch.Tensor) -> torch.Tensor:
    """Concatenate ``x`` [n, ...] from every rank (rank order); gradients flow into this rank's part only.

    OpenGait's ``ddp_all_gather``: the other ranks' rows are constants here, and each rank's own
    rows carry its gradient; with the loss scaled by the world size, DDP's gradient averaging then
    gives the gradient of the loss over the whole gathered batch.
    """
    world = dist.get_world_size()
    parts = [torch.empty_like(x) for _ in range(world)]
    dist.all_gather(parts, x.contiguous())
    parts[dist.get_rank()] = x
    return torch.cat(parts, dim=0)


class TripletLoss(nn.Module):
    """Batch-all triplet loss per part: every (anchor, positive, negative) of the batch.

    Per part the hinge terms ``relu(d(a, p) - d(a, n) + margin)`` are averaged over the non-zero
    ones (OpenGait's "non-zero mean", so easy triplets do not dilute the signal), then parts are
    averaged. ``info``: ``loss``, ``nonzero_frac`` (share of active triplets), ``mean_dist``.

    Self pairs. OpenGait's ``Convert2Triplets`` takes every same-label pair as a positive, the
    anchor itself included, so each anchor adds ``relu(margin - d(a, n))`` terms with d(a, a) = 0.
    By default we leave (a, a) out (``self_pairs=False``): those terms only push negatives
    beyond the margin, with no positive pulled in, which the real positive pairs already do more
    strongly (``d(a, p) >= 0``); they add 1/K of the triplets, inflating the "non-zero" denominator
    and ``nonzero_frac`` while the embeddings are still collapsed; and the distance's square root
    has no derivative at d = 0, where OpenGait relies on the clamp. ``self_pairs=True`` is
    OpenGait's count, for runs that must match its loss values.
    """

    def __init__(self, margin: float = 0.2, self_pairs: bool = False) -> None:
        super().__init__()
        self.margin = margin
        self.self_pairs = self_pairs

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        assert embeddings.dim() == 3, f"embeddings must be [N, C, P], got shape {tuple(embeddings.shape)}"
        assert labels.shape == embeddings.shape[:1], f"labels must be [N], got shape {tuple(labels.shape)}"
        dist = part_distances(embeddings)  # (P, N, N)
        same = labels[:, None] == labels[None, :]  # (N, N)
        positive = same if self.self_pairs else same & ~torch.eye(len(labels), dtype=torch.bool, device=labels.device)
        valid = positive[:, :, None] & ~same[:, None, :]  # (N, N, N): anchor, positive, negative
        a, p, n = valid.nonzero(as_tuple=True)  # (M,) each
        hinge = F.relu(dist[:, a, p] - dist[:, a, n] + self.margin)  # (P, M)
        active = (hinge > 0).sum(dim=1)  # (P,)
        loss = (hinge.sum(dim=1) / active.clamp_min(1)).mean()  # ()
        info = {
            "loss": loss.item(),
            "nonzero_frac": active.sum().item() / max(hinge.numel(), 1),
            "mean_dist": dist.mean().item(),
        }
        return loss, info


class CrossEntropyLoss(nn.Module):
    """Cross-entropy on ``scale`` x cosine logits with label smoothing, every part against the label.

    ``logits`` [N, K, P] -> mean over sequences and parts; ``info``: ``loss``, ``accuracy`` (share
    of (sequence, part) pairs whose arg-max is the label).
    """

    def __init__(self, scale: float = 16.0, label_smoothing: float = 0.1) -> None:
        super().__init__()
        self.scale = scale
        self.label_smoothing = label_smoothing

    def forward(self, logits: torch.Tensor, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        assert logits.dim() == 3, f"logits must be [N, num_classes, P], got shape {tuple(logits.shape)}"
        assert labels.shape == logits.shape[:1], f"labels must be [N], got shape {tuple(labels.shape)}"
        target = labels[:, None].expand(-1, logits.shape[2])  # (N, P)
        loss = F.cross_entropy(logits.float() * self.scale, target, label_smoothing=self.label_smoothing)  # ()
        accuracy = (logits.argmax(dim=1) == target).float().mean()  # ()
        return loss, {"loss": loss.item(), "accuracy": accuracy.item()}


class GaitLoss(nn.Module):
    """The training objective: ``triplet_weight * triplet(embeddings) + ce_weight * CE(logits)``.

    ``info`` holds ``loss`` and each part's entries prefixed ``triplet/`` and ``ce/``.
    """

    def __init__(self, cfg: TrainConfig) -> None:
        super().__init__()
        self.triplet = TripletLoss(cfg.triplet_margin, cfg.triplet_self_pairs)
        self.ce = CrossEntropyLoss(cfg.ce_scale, cfg.label_smoothing)
        self.triplet_weight = cfg.triplet_weight
        self.ce_weight = cfg.ce_weight
        self.gather_triplet = cfg.gather_triplet

    def forward(self, output: tuple, labels: torch.Tensor) -> tuple[torch.Tensor, dict[str, float]]:
        """``output``: a ``GaitOutput`` (embeddings, bnneck, logits); ``labels`` int64 [N] class indices.

        Under DDP with ``gather_triplet`` the triplet loss sees the batch of every rank (more
        positives and negatives per anchor, as OpenGait's ``gather_and_scale_wrapper``) and is
        scaled by the world size, so that DDP's averaged gradient is the global loss's. The
        cross-entropy is per sequence, so gathering it would change nothing: it stays local.
        """
        if self.gather_triplet and dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
            triplet, triplet_info = self.triplet(gather_keep_grad(output.embeddings), gather_keep_grad(labels))
            triplet = triplet * dist.get_world_size()
        else:
            triplet, triplet_info = self.triplet(output.embeddings, labels)
        ce, ce_info = self.ce(output.logits, labels)
        loss = self.triplet_weight * triplet + self.ce_weight * ce  # ()
        info = {"loss": loss.item()}
        info.update({f"triplet/{k}": v for k, v in triplet_info.items()})
        info.update({f"ce/{k}": v for k, v in ce_info.items()})
        return loss, info
