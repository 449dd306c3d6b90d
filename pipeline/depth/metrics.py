"""Depth error inside the silhouette for relative (affine-invariant) depth models.

Depth Anything and DPT predict relative inverse depth (larger = nearer) with an unknown scale and
shift per image, so a raw comparison with metric depth is meaningless. As in MiDaS / Depth Anything
evaluations, each frame's prediction is first aligned to the true inverse depth by least squares
(scale and shift, silhouette pixels only), converted to depth, and only then compared:

- AbsRel:  mean |d_hat - d| / d
- SI-RMSE: Eigen's scale-invariant RMSE of log depth, sqrt(mean(e^2) - mean(e)^2), e = log d_hat - log d

Everything is vectorised over frames and pixels (masked sums), with no per-frame Python loop.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pipeline.errors import InputError

# The aligned inverse depth is clamped from below so that a wild prediction gives a large but finite
# depth: at most this many times the frame's largest true depth (MiDaS clamps disparity the same way).
MAX_DEPTH_FACTOR = 10.0


@dataclass(frozen=True)
class DepthErrors:
    """Per-frame errors; ``summary()`` gives the means over frames."""

    abs_rel: np.ndarray  # float64 [N]
    si_rmse: np.ndarray  # float64 [N]

    def summary(self) -> dict[str, float]:
        return {"abs_rel": float(self.abs_rel.mean()), "si_rmse": float(self.si_rmse.mean()), "frames": int(self.abs_rel.size)}


def _check_inputs(pred: np.ndarray, depth: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Validate shapes and values; return float64 [N, H, W] arrays and a bool mask."""
    pred = np.asarray(pred, dtype=np.float64)
    depth = np.asarray(depth, dtype=np.float64)
    mask = np.asarray(mask).astype(bool)
    if pred.ndim == 2:
        pred, depth, mask = pred[None], depth[None], mask[None]
    if pred.ndim != 3 or pred.shape != depth.shape or pred.shape != mask.shape:
        raise InputError(
            f"depth metrics need pred, depth and mask of one shape [N, H, W]; got {pred.shape}, {depth.shape}, {mask.shape}"
        )
    counts = mask.sum(axis=(1, 2))
    if (counts < 2).any():
        bad = np.flatnonzero(counts < 2).tolist()
        raise InputError(f"depth metrics: frames {bad} have fewer than 2 silhouette pixels")
    if not np.isfinite(pred[mask]).all():
        raise InputError("depth metrics: the prediction holds NaN or infinite values inside the silhouette")
    if not (depth[mask] > 0).all():
        raise InputError("depth metrics: true depth must be > 0 at every silhouette pixel")
    return pred, depth, mask


def align_scale_shift(pred: np.ndarray, target: np.ndarray, mask: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-frame least-squares ``scale, shift`` (float64 [N]) minimising sum_mask (scale*pred + shift - target)^2.

    A frame whose prediction is constant on the mask (a degenerate fit) gets scale 0 and shift equal
    to the target's mean, which is the best any constant map can do.
    """
    m = mask.astype(np.float64)  # [N, H, W]
    n = m.sum(axis=(1, 2))  # [N]
    sp = (m * pred).sum(axis=(1, 2))  # [N]
    st = (m * target).sum(axis=(1, 2))  # [N]
    mean_p, mean_t = sp / n, st / n  # [N]
    dp = (pred - mean_p[:, None, None]) * m  # [N, H, W] centred prediction, 0 off the mask
    dt = (target - mean_t[:, None, None]) * m  # [N, H, W]
    var_p = (dp * dp).sum(axis=(1, 2))  # [N]
    cov = (dp * dt).sum(axis=(1, 2))  # [N]
    degenerate = var_p <= 1e-12 * np.maximum((m * pred * pred).sum(axis=(1, 2)), 1e-300)
    scale = np.where(degenerate, 0.0, cov / np.where(degenerate, 1.0, var_p))  # [N]
    shift = mean_t - scale * mean_p  # [N]
    return scale, shift


def depth_errors(pred_inverse: np.ndarray, depth: np.ndarray, mask: np.ndarray) -> DepthErrors:
    """AbsRel and SI-RMSE inside ``mask`` after aligning ``pred_inverse`` to ``1 / depth``.

    pred_inverse: [N, H, W] or [H, W] relative inverse depth (larger = nearer, any scale and shift).
    depth: same shape, true depth in metres (> 0 on the mask; anything elsewhere).
    mask: same shape, bool silhouette; at least 2 pixels per frame.
    """
    pred, depth, mask = _check_inputs(pred_inverse, depth, mask)
    inv_true = np.where(mask, 1.0 / np.where(mask, depth, 1.0), 0.0)  # [N, H, W]
    scale, shift = align_scale_shift(pred, inv_true, mask)
    aligned = scale[:, None, None] * pred + shift[:, None, None]  # [N, H, W] inverse depth
    max_depth = np.where(mask, depth, 0.0).max(axis=(1, 2))  # [N]
    floor = 1.0 / (MAX_DEPTH_FACTOR * max_depth)  # [N] smallest allowed inverse depth
    aligned = np.maximum(aligned, floor[:, None, None])
    safe_depth = np.where(mask, depth, 1.0)
    pred_depth = np.where(mask, 1.0 / aligned, 1.0)  # [N, H, W] metres, 1 off the mask (ignored)

    m = mask.astype(np.float64)
    n = m.sum(axis=(1, 2))
    abs_rel = (m * np.abs(pred_depth - safe_depth) / safe_depth).sum(axis=(1, 2)) / n  # [N]
    log_err = m * (np.log(pred_depth) - np.log(safe_depth))  # [N, H, W]
    mean_e = log_err.sum(axis=(1, 2)) / n
    mean_e2 = (log_err * log_err).sum(axis=(1, 2)) / n
    si_rmse = np.sqrt(np.maximum(mean_e2 - mean_e**2, 0.0))  # [N]
    return DepthErrors(abs_rel=abs_rel, si_rmse=si_rmse)
