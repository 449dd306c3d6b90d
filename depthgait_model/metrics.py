"""Retrieval metrics for gait embeddings: part-wise distances, rank-k, CMC, mAP and mINP.

Distances follow OpenGait's ``cuda_dist``: for embeddings [N, C, P] (P horizontal parts) the
Euclidean distance is computed per part and averaged over parts; the cosine distance is
1 - the mean over parts of the per-part cosine similarity. The evaluators use OpenGait's matrix-product
form (|x|^2 + |y|^2 - 2xy: one matrix product, but its cancellation left 0.0026 between a probe and its
own gallery sequence in the README example, whose embeddings differ by 1e-5); ``exact=True`` takes the differences directly, for identification,
where a user reads the distance itself and thresholds it. [N, D] embeddings are one part.
Everything is blocked over probe rows so that the full CASIA-B test set (3,300 probes x 2,200
gallery sequences x 16 parts) never materialises a [P, N, M] tensor at once, and it all runs on
the device the embeddings live on. Ties in ranking are broken by gallery order (stable sort),
so results are deterministic.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Literal

import numpy as np
import torch

from pipeline.errors import InputError

Metric = Literal["euc", "cos"]
METRICS: tuple[str, ...] = ("euc", "cos")

# Upper bound on the per-part distance block held at once (floats): P x rows x M.
_BLOCK_FLOATS = 32 * 1024 * 1024


def as_parts(x: torch.Tensor | np.ndarray, device: torch.device | str | None = None) -> torch.Tensor:
    """[N, C, P] or [N, D] embeddings -> float [N, C, P] tensor (D becomes C with one part)."""
    t = torch.as_tensor(x, device=device)
    if t.ndim == 2:
        t = t.unsqueeze(-1)  # [N, D, 1]
    if t.ndim != 3:
        raise InputError(f"embeddings must be [N, C, P] or [N, D], got shape {tuple(t.shape)}")
    if not t.is_floating_point() or t.dtype in (torch.float16, torch.bfloat16):
        t = t.float()
    return t


def _part_major(x: torch.Tensor, metric: str) -> torch.Tensor:
    """[N, C, P] -> [P, N, C], L2-normalised per part for the cosine metric."""
    if metric not in METRICS:
        raise InputError(f"unknown metric {metric!r} (use one of {', '.join(METRICS)})")
    if metric == "cos":
        x = torch.nn.functional.normalize(x, p=2, dim=1)  # [N, C, P], unit norm per part
    return x.permute(2, 0, 1).contiguous()  # [P, N, C]


def _block_distance(p: torch.Tensor, g: torch.Tensor, metric: str, exact: bool = False) -> torch.Tensor:
    """Part-major probe [P, n, C] and gallery [P, m, C] -> distance [n, m] averaged over parts."""
    if metric == "cos":
        return 1.0 - torch.bmm(p, g.transpose(1, 2)).mean(0)  # [n, m]
    mode = "donot_use_mm_for_euclid_dist" if exact else "use_mm_for_euclid_dist"
    return torch.cdist(p, g, compute_mode=mode).mean(0)  # [n, m]


def default_chunk(n_gallery: int, n_parts: int) -> int:
    """Probe rows per block so that a [P, rows, M] block stays under ~128 MB of float32."""
    return max(1, _BLOCK_FLOATS // max(1, n_gallery * n_parts))


def iter_distance_chunks(
    probe: torch.Tensor | np.ndarray,
    gallery: torch.Tensor | np.ndarray,
    metric: str = "euc",
    chunk_size: int | None = None,
    exact: bool = False,
) -> Iterator[tuple[slice, torch.Tensor]]:
    """Yield (probe row slice, distances [rows, M]) block by block, on the probe's device."""
    p = as_parts(probe)
    g = as_parts(gallery, device=p.device)
    if p.shape[1:] != g.shape[1:]:
        raise InputError(f"probe embeddings {tuple(p.shape[1:])} and gallery {tuple(g.shape[1:])} differ in [C, P]")
    g_parts = _part_major(g, metric)  # [P, M, C]
    step = chunk_size or default_chunk(g.shape[0], g.shape[2])
    for start in range(0, p.shape[0], step):
        rows = slice(start, min(start + step, p.shape[0]))
        p_parts = _part_major(p[rows], metric)  # [P, rows, C]
        yield rows, _block_distance(p_parts, g_parts, metric, exact)  # [rows, M]


def distance_matrix(
    probe: torch.Tensor | np.ndarray,
    gallery: torch.Tensor | np.ndarray,
    metric: str = "euc",
    chunk_size: int | None = None,
    exact: bool = False,
) -> torch.Tensor:
    """Full distance matrix [N, M]; for modest sizes (tests, plots, identification). Evaluators stream the chunks."""
    blocks = [d for _, d in iter_distance_chunks(probe, gallery, metric, chunk_size, exact)]
    if not blocks:
        return torch.zeros(0, as_parts(gallery).shape[0])
    return torch.cat(blocks, 0)  # [N, M]


def stable_order(dist: torch.Tensor) -> torch.Tensor:
    """Gallery indices sorted by distance per row; ties keep gallery order."""
    return torch.sort(dist, dim=1, stable=True).indices  # [n, M]


def topk_hits(dist: torch.Tensor, probe_labels: torch.Tensor, gallery_labels: torch.Tensor, k: int) -> torch.Tensor:
    """bool [n, k]: whether the correct identity is within the first r+1 ranked gallery items (OpenGait's cumsum > 0)."""
    k_eff = min(k, dist.shape[1])
    if k_eff == 1:  # argmin returns the first of tied minima: the same as a stable sort, much cheaper
        order = dist.argmin(1, keepdim=True)  # [n, 1]
    else:
        order = stable_order(dist)[:, :k_eff]  # [n, k_eff]
    hit = gallery_labels[order] == probe_labels[:, None]  # [n, k_eff]
    hits = hit.cumsum(1) > 0  # [n, k_eff]
    if k_eff < k:  # fewer gallery items than k: later ranks repeat the last value
        hits = torch.cat([hits, hits[:, -1:].expand(-1, k - k_eff)], 1)  # [n, k]
    return hits


@dataclass
class RankStats:
    """Per-probe ranking outcome; ``first_hit`` is -1 (and ap/inp NaN) when no gallery item matches."""

    first_hit: np.ndarray  # int64 [N]: 0-based rank of the first correct gallery item
    ap: np.ndarray  # float64 [N]: average precision
    inp: np.ndarray  # float64 [N]: inverse negative penalty (num positives / rank of the last one)

    @property
    def valid(self) -> np.ndarray:
        return self.first_hit >= 0

    def subset(self, mask: np.ndarray) -> RankStats:
        return RankStats(self.first_hit[mask], self.ap[mask], self.inp[mask])

    @staticmethod
    def concat(parts: list[RankStats]) -> RankStats:
        if not parts:
            return RankStats(np.zeros(0, np.int64), np.zeros(0), np.zeros(0))
        return RankStats(*(np.concatenate([getattr(p, f) for p in parts]) for f in ("first_hit", "ap", "inp")))


def rank_stats(
    dist: torch.Tensor,
    probe_labels: torch.Tensor,
    gallery_labels: torch.Tensor,
    exclude: torch.Tensor | None = None,
) -> RankStats:
    """First-hit rank, AP and INP per probe row; ``exclude`` (bool [n, M]) removes gallery items per probe.

    Excluded items are pushed past every kept one (distance +inf) and never count as matches,
    which is the same as deleting them from that probe's gallery.
    """
    if exclude is not None:
        dist = dist.masked_fill(exclude, float("inf"))  # [n, M]
    order = stable_order(dist)  # [n, M]
    match = gallery_labels[order] == probe_labels[:, None]  # [n, M]
    if exclude is not None:
        match &= ~torch.gather(exclude, 1, order)  # [n, M]
    hits_so_far = match.int().cumsum(1)  # [n, M]: exact counts
    n_rel = hits_so_far[:, -1]  # [n]
    positions = torch.arange(1, match.shape[1] + 1, device=dist.device)  # [M]
    precision_at_hits = torch.where(match, hits_so_far / positions, 0.0)  # [n, M]
    has = n_rel > 0  # [n]
    ap = torch.where(has, precision_at_hits.sum(1, dtype=torch.float64) / n_rel.clamp_min(1), torch.nan)  # [n]
    first = torch.where(has, match.int().argmax(1), -1)  # [n]
    last = match.shape[1] - 1 - match.flip(1).int().argmax(1)  # [n]
    inp = torch.where(has, n_rel.double() / (last + 1).double(), torch.nan)  # [n]
    return RankStats(first.cpu().numpy().astype(np.int64), ap.cpu().numpy(), inp.cpu().numpy())


def cmc(stats: RankStats, max_rank: int, valid_only: bool = True) -> np.ndarray:
    """CMC curve in percent, ranks 1..max_rank; over probes with a match (Gait3D) or all probes (OpenGait ACC)."""
    fh = stats.first_hit[stats.valid] if valid_only else stats.first_hit
    if len(fh) == 0:
        return np.full(max_rank, np.nan)
    ranks = np.arange(max_rank)[None, :]  # [1, R]
    return ((fh[:, None] >= 0) & (fh[:, None] <= ranks)).mean(0) * 100.0  # [R]


def rank_k(stats: RankStats, k: int, valid_only: bool = True) -> float:
    """Rank-k accuracy in percent."""
    return float(cmc(stats, k, valid_only)[k - 1])


def mean_ap(stats: RankStats) -> float:
    """mAP in percent over probes that have at least one match."""
    return float(np.mean(stats.ap[stats.valid]) * 100.0) if stats.valid.any() else float("nan")


def mean_inp(stats: RankStats) -> float:
    """mINP in percent over probes that have at least one match."""
    return float(np.mean(stats.inp[stats.valid]) * 100.0) if stats.valid.any() else float("nan")
