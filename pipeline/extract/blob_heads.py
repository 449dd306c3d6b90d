"""Heads along a blob's top edge: two people in one blob that no track has ever seen apart.

Two walkers who come into the picture together and walk side by side, one a little behind the other,
are one background-subtraction blob from their first frame to their last: no track learns their
colours (``track_colour``), no tracker holds two tracks to cut the blob between, and the pair is no
wider than one walker in full stride, so ``split_blobs`` keeps it whole. What still tells them apart is
their heads. The blob's top edge (the first foreground row of each column) rises to a peak at each
head and falls to shoulder level or lower between two; a single walker's top edge has one head (arms,
a bag or a coat hang below the shoulders). So a blob whose top edge has two peaks near its top, far
enough apart and with a deep enough dip between them, holds two people: its frame is not a gait frame
of the one track that follows it, and its colours are not that walker's.
"""
from __future__ import annotations

import numpy as np

HEAD_NEAR = 0.2  # of the blob's height: a head's top lies this close to the blob's top (a farther walker is shorter)
HEAD_DIP = 0.06  # of the blob's height: the top edge falls at least this far between two heads (neck, shoulders)
HEAD_APART = 0.12  # of the blob's height: two heads' columns are at least this far apart (about a head's width)


def _reach(height: int) -> int:
    """Columns on each side that the top edge is smoothed over and a top must out-reach: ~3% of the height."""
    return max(1, int(0.03 * height))


def top_edge(fg: np.ndarray) -> np.ndarray:
    """float [w]: per column of the foreground crop ``fg`` [h, w], its first foreground row (h: none),
    smoothed (a ragged edge of a mask is not a head)."""
    h = fg.shape[0]
    top = np.where(fg.any(0), fg.argmax(0), h).astype(np.float64)
    k = _reach(h)
    return np.convolve(np.pad(top, k, mode="edge"), np.ones(2 * k + 1) / (2 * k + 1), mode="valid")


def head_columns(fg: np.ndarray) -> list[int]:
    """Columns of ``fg`` [h, w] (one blob's foreground crop) where a head tops its top edge, left to right."""
    h, w = fg.shape
    if h < 10 or w < 3 or not fg.any():
        return []
    edge, k = top_edge(fg), _reach(h)
    window = np.lib.stride_tricks.sliding_window_view(np.pad(edge, k, mode="edge"), 2 * k + 1).min(1)  # [w]
    high = np.flatnonzero((edge <= window) & (edge <= edge.min() + HEAD_NEAR * h))  # local tops near the top
    if not len(high):
        return []
    runs = np.split(high, np.flatnonzero(np.diff(high) > 2 * k) + 1)  # neighbouring columns: one top
    heads: list[int] = []
    for col in (int(np.median(r)) for r in runs):
        if not heads:
            heads.append(col)
            continue
        last = heads[-1]
        dip = float(edge[last:col + 1].max()) - max(edge[col], edge[last])
        if dip >= HEAD_DIP * h and col - last >= HEAD_APART * h:
            heads.append(col)
        elif edge[col] < edge[last]:  # the same head, or a shoulder beside it: keep the higher top
            heads[-1] = col
    return heads


__all__ = ["HEAD_APART", "HEAD_DIP", "HEAD_NEAR", "head_columns", "top_edge"]
