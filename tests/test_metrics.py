"""Distances and retrieval metrics against direct formulas and hand-computed answers."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from depthgait_model.metrics import (
    cmc,
    distance_matrix,
    iter_distance_chunks,
    mean_ap,
    mean_inp,
    rank_k,
    rank_stats,
    topk_hits,
)


def _direct_euc(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """Per part: ||x_p - y_p||, then the mean over parts (loops, no shared code with metrics.py)."""
    out = np.zeros((len(x), len(y)))
    for i in range(len(x)):
        for j in range(len(y)):
            out[i, j] = np.mean([np.linalg.norm(x[i, :, p] - y[j, :, p]) for p in range(x.shape[2])])
    return out


def _direct_cos(x: np.ndarray, y: np.ndarray) -> np.ndarray:
    out = np.zeros((len(x), len(y)))
    for i in range(len(x)):
        for j in range(len(y)):
            sims = [
                x[i, :, p] @ y[j, :, p] / (np.linalg.norm(x[i, :, p]) * np.linalg.norm(y[j, :, p]))
                for p in range(x.shape[2])
            ]
            out[i, j] = 1.0 - np.mean(sims)
    return out


@pytest.fixture
def feats():
    rng = np.random.default_rng(0)
    return rng.normal(size=(9, 6, 4)).astype(np.float32), rng.normal(size=(7, 6, 4)).astype(np.float32)


def test_euclidean_is_per_part_mean(feats):
    x, y = feats
    np.testing.assert_allclose(distance_matrix(x, y, "euc").numpy(), _direct_euc(x, y), rtol=1e-4, atol=1e-5)
    # Not the Euclidean distance of the flattened vectors: that would be a different ranking metric.
    flat = np.linalg.norm(x.reshape(9, 1, -1) - y.reshape(1, 7, -1), axis=-1)
    assert np.abs(distance_matrix(x, y, "euc").numpy() - flat).max() > 0.1


def test_cosine_is_one_minus_mean_part_cosine(feats):
    x, y = feats
    np.testing.assert_allclose(distance_matrix(x, y, "cos").numpy(), _direct_cos(x, y), rtol=1e-4, atol=1e-5)


def test_flat_embeddings_are_one_part(feats):
    x, y = feats[0][:, :, 0], feats[1][:, :, 0]  # [N, D]
    expected = np.linalg.norm(x[:, None] - y[None], axis=-1)
    np.testing.assert_allclose(distance_matrix(x, y, "euc").numpy(), expected, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("metric", ["euc", "cos"])
def test_chunked_equals_unchunked(feats, metric):
    x, y = feats
    whole = distance_matrix(x, y, metric, chunk_size=1000).numpy()
    chunks = list(iter_distance_chunks(x, y, metric, chunk_size=2))
    assert [c[0] for c in chunks][:2] == [slice(0, 2), slice(2, 4)] and len(chunks) == 5
    np.testing.assert_allclose(np.concatenate([d.numpy() for _, d in chunks]), whole, rtol=1e-6, atol=1e-6)


def test_bad_inputs_are_clear(feats):
    x, y = feats
    with pytest.raises(ValueError, match="unknown metric"):
        distance_matrix(x, y, "l1")
    with pytest.raises(ValueError, match=r"\[N, C, P\] or \[N, D\]"):
        distance_matrix(x[None], y, "euc")
    with pytest.raises(ValueError, match="differ"):
        distance_matrix(x, y[:, :5], "euc")


def _case():
    """Three probes against five gallery items; distances given directly."""
    g_lab = torch.tensor([1, 0, 1, 0, 1])
    p_lab = torch.tensor([0, 1, 2])
    dist = torch.tensor(
        [
            [0.1, 0.2, 0.3, 0.4, 0.5],  # label 0 matches at ranks 2 and 4
            [0.1, 0.2, 0.3, 0.4, 0.5],  # label 1 matches at ranks 1, 3 and 5
            [0.5, 0.4, 0.3, 0.2, 0.1],  # label 2 is not in the gallery
        ]
    )
    return dist, p_lab, g_lab


def test_ap_inp_by_hand():
    stats = rank_stats(*_case())
    np.testing.assert_array_equal(stats.first_hit, [1, 0, -1])
    np.testing.assert_allclose(stats.ap[:2], [(1 / 2 + 2 / 4) / 2, (1 + 2 / 3 + 3 / 5) / 3])
    np.testing.assert_allclose(stats.inp[:2], [2 / 4, 3 / 5])
    assert np.isnan(stats.ap[2]) and np.isnan(stats.inp[2])
    assert mean_ap(stats) == pytest.approx(100 * (0.5 + (1 + 2 / 3 + 3 / 5) / 3) / 2)
    assert mean_inp(stats) == pytest.approx(100 * (0.5 + 0.6) / 2)
    assert rank_k(stats, 1) == pytest.approx(50.0)  # over probes with a match (Gait3D)
    assert rank_k(stats, 1, valid_only=False) == pytest.approx(100 / 3)  # over every probe (OpenGait ACC)
    np.testing.assert_allclose(cmc(stats, 3), [50.0, 100.0, 100.0])


def test_excluded_gallery_items_are_removed():
    dist, p_lab, g_lab = _case()
    exclude = torch.zeros_like(dist, dtype=torch.bool)
    exclude[0, 1] = True  # drop probe 0's first true match: remaining order 1, 1, 0, 1
    stats = rank_stats(dist, p_lab, g_lab, exclude=exclude)
    assert stats.first_hit[0] == 2
    assert stats.ap[0] == pytest.approx(1 / 3)
    assert stats.inp[0] == pytest.approx(1 / 3)
    assert stats.ap[1] == pytest.approx((1 + 2 / 3 + 3 / 5) / 3)  # other probes untouched


def test_ties_keep_gallery_order():
    dist = torch.tensor([[0.5, 0.5, 0.9], [0.5, 0.5, 0.9]])
    g_lab = torch.tensor([7, 3, 3])
    p_lab = torch.tensor([3, 7])
    hits = topk_hits(dist, p_lab, g_lab, 2)
    assert hits.tolist() == [[False, True], [True, True]]
    assert rank_stats(dist, p_lab, g_lab).first_hit.tolist() == [1, 0]


def test_topk_beyond_gallery_size_repeats_last():
    dist = torch.tensor([[0.2, 0.1]])
    hits = topk_hits(dist, torch.tensor([1]), torch.tensor([1, 0]), 5)
    assert hits.tolist() == [[False, True, True, True, True]]
