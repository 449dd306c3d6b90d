"""The shipped synthetic-data depth model and the depth metrics that judge it.

Metrics are checked on hand-made arrays with answers worked out by hand; the shipped model is loaded
offline through the same ``AutoModelForDepthEstimation`` path as a real checkpoint and must beat a
constant map and its own untrained architecture on held-out synthetic subjects.
"""
from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch

from pipeline.depth.metrics import align_scale_shift, depth_errors
from pipeline.depth.shipped import SYNTH_DEPTH_DIR, SYNTH_DEPTH_NAME, resolve_shipped
from pipeline.depth.training import ssi_loss


# ---- metrics on hand-made arrays ------------------------------------------------------------------
def _two_pixel_frame() -> tuple[np.ndarray, np.ndarray]:
    depth = np.zeros((1, 2, 3), np.float32)
    mask = np.zeros((1, 2, 3), bool)
    depth[0, 0, 0], depth[0, 1, 2] = 2.0, 4.0
    mask[0, 0, 0] = mask[0, 1, 2] = True
    return depth, mask


def test_constant_prediction_gets_the_mean_inverse_depth() -> None:
    depth, mask = _two_pixel_frame()
    # Best constant inverse depth is (1/2 + 1/4) / 2 = 0.375, i.e. 8/3 m for both pixels.
    errors = depth_errors(np.full(depth.shape, 7.0), depth, mask).summary()
    assert errors["abs_rel"] == pytest.approx(((8 / 3 - 2) / 2 + (4 - 8 / 3) / 4) / 2)  # 1/3
    assert errors["si_rmse"] == pytest.approx(math.log(2) / 2)  # half the log-depth gap
    assert errors["frames"] == 1


def test_affine_inverse_depth_is_exact_and_outside_pixels_are_ignored() -> None:
    rng = np.random.default_rng(0)
    depth = rng.uniform(2.0, 6.0, (3, 8, 5))
    mask = rng.random((3, 8, 5)) > 0.4
    pred = 3.5 / depth - 0.1  # any positive scale and shift of 1/depth
    pred[~mask] = rng.normal(0, 100, (~mask).sum())  # garbage off the silhouette
    depth_out = depth.copy()
    depth_out[~mask] = 0.0
    errors = depth_errors(pred, depth_out, mask)
    np.testing.assert_allclose(errors.abs_rel, 0.0, atol=1e-9)
    np.testing.assert_allclose(errors.si_rmse, 0.0, atol=1e-6)


def test_wrong_convention_depth_instead_of_inverse_depth_is_penalised() -> None:
    rng = np.random.default_rng(1)
    depth = rng.uniform(1.0, 5.0, (2, 6, 6))
    mask = np.ones_like(depth, bool)
    right = depth_errors(1.0 / depth, depth, mask).summary()
    wrong = depth_errors(depth, depth, mask).summary()  # affine in depth, not in inverse depth
    assert right["abs_rel"] < 1e-9
    assert wrong["abs_rel"] > 0.05


def test_alignment_recovers_scale_and_shift_per_frame() -> None:
    rng = np.random.default_rng(2)
    target = rng.uniform(0.1, 0.5, (4, 5, 7))
    mask = rng.random((4, 5, 7)) > 0.3
    scales, shifts = np.array([2.0, 0.5, -1.0, 10.0]), np.array([0.3, -0.2, 0.0, 1.0])
    pred = (target - shifts[:, None, None]) / scales[:, None, None]
    pred[~mask] = 123.0
    scale, shift = align_scale_shift(pred, target, mask)
    np.testing.assert_allclose(scale, scales, rtol=1e-9)
    np.testing.assert_allclose(shift, shifts, atol=1e-9)


def test_vectorised_metrics_match_a_per_frame_reference() -> None:
    rng = np.random.default_rng(3)
    depth = rng.uniform(2.0, 4.0, (5, 9, 6))
    mask = rng.random(depth.shape) > 0.3
    pred = 1.0 / depth + rng.normal(0, 0.03, depth.shape)
    errors = depth_errors(pred, depth, mask)
    for i in range(5):
        p, d = pred[i][mask[i]], depth[i][mask[i]]
        s, t = np.polyfit(p, 1.0 / d, 1)
        d_hat = 1.0 / np.maximum(s * p + t, 1.0 / (10 * d.max()))
        e = np.log(d_hat) - np.log(d)
        assert errors.abs_rel[i] == pytest.approx(np.mean(np.abs(d_hat - d) / d), rel=1e-9)
        assert errors.si_rmse[i] == pytest.approx(np.sqrt(np.mean(e**2) - np.mean(e) ** 2), rel=1e-6)


@pytest.mark.parametrize(
    ("pred_shape", "mask_pixels", "depth_value", "message"),
    [
        ((1, 2, 3), 0, 2.0, "fewer than 2 silhouette pixels"),
        ((1, 3, 3), 6, 2.0, "one shape"),
        ((1, 2, 3), 6, 0.0, "must be > 0"),
    ],
)
def test_bad_inputs_are_clear_errors(pred_shape: tuple[int, ...], mask_pixels: int, depth_value: float, message: str) -> None:
    depth = np.full((1, 2, 3), depth_value)
    mask = np.zeros((1, 2, 3), bool)
    mask.flat[:mask_pixels] = True
    with pytest.raises(ValueError, match=message):
        depth_errors(np.ones(pred_shape), depth, mask)


# ---- shipped-name resolution ----------------------------------------------------------------------
def test_resolve_shipped_name() -> None:
    assert resolve_shipped(SYNTH_DEPTH_NAME) == SYNTH_DEPTH_DIR
    assert resolve_shipped("depth-anything/Depth-Anything-V2-Small-hf") is None
    assert (SYNTH_DEPTH_DIR / "README.md").is_file()


def test_shipped_folder_is_small_and_complete() -> None:
    names = {p.name for p in SYNTH_DEPTH_DIR.iterdir()}
    assert {"config.json", "preprocessor_config.json", "model.safetensors", "README.md", "training_metrics.json"} <= names
    size_mb = sum(p.stat().st_size for p in SYNTH_DEPTH_DIR.iterdir()) / 1e6
    assert size_mb < 10, f"shipped depth model is {size_mb:.1f} MB"
    card = (SYNTH_DEPTH_DIR / "README.md").read_text()
    assert "synthetic data only" in card and "depth-anything/Depth-Anything-V2-Small-hf" in card


# ---- the training loss -----------------------------------------------------------------------------


def test_training_loss_is_scale_and_shift_invariant_keeps_the_sign_and_sees_only_the_mask() -> None:
    gen = torch.Generator().manual_seed(0)
    target = torch.rand(3, 16, 12, generator=gen) + 0.1  # [B, H, W] inverse depth
    mask = torch.rand(3, 16, 12, generator=gen) > 0.3
    perfect = torch.where(mask, 4.0 * target - 0.7, torch.full_like(target, 99.0))  # affine; garbage off the mask
    loss, _ = ssi_loss(perfect, target, mask, grad_weight=0.5)
    assert float(loss) < 1e-6
    noisy, _ = ssi_loss(perfect + 0.3 * torch.randn(3, 16, 12, generator=gen), target, mask, grad_weight=0.5)
    flat, info = ssi_loss(torch.zeros(3, 16, 12), target, mask, grad_weight=0.5)  # dead ReLU: finite
    flipped, flipped_info = ssi_loss(-perfect, target, mask, grad_weight=0.5)  # depth instead of inverse depth
    assert 0.05 < float(noisy) < float(flat) < float(flipped)
    assert info["ssi"] == pytest.approx(1.0, abs=1e-4)  # 2 (1 - correlation) with correlation 0 ...
    assert flipped_info["ssi"] == pytest.approx(4.0, abs=1e-3)  # ... and with correlation -1


# ---- the shipped model on held-out synthetic subjects --------------------------------------------
HELD_OUT = [(1, "000", "nm-01"), (2, "090", "bg-01"), (3, "144", "cl-01"), (4, "036", "nm-05"), (5, "126", "cl-02")]


@pytest.fixture(scope="module")
def held_out_crops() -> tuple[list[np.ndarray], list[np.ndarray], list[np.ndarray]]:
    """Person crops (box + 10% margin, clipped) of subjects 1..5, which training never saw (it used 1000+)."""
    from pipeline.synthetic.dataset import render_sequence, subject_params

    rgb, depth, mask = [], [], []
    for index, view, condition in HELD_OUT:
        seq = render_sequence(subject_params(index, 0), view, condition, frames=10, size=(320, 240), seed=7)
        for t in range(0, 10, 3):
            x0, y0, x1, y1 = seq.box[t]
            mx, my = 0.1 * (x1 - x0), 0.1 * (y1 - y0)
            x0, y0 = max(0, math.floor(x0 - mx)), max(0, math.floor(y0 - my))
            x1, y1 = min(320, math.ceil(x1 + mx)), min(240, math.ceil(y1 + my))
            rgb.append(np.ascontiguousarray(seq.rgb[t, y0:y1, x0:x1]))
            depth.append(seq.depth[t, y0:y1, x0:x1])
            mask.append(seq.mask[t, y0:y1, x0:x1])
    return rgb, depth, mask


@torch.no_grad()
def _predict(model, processor, images: list[np.ndarray]) -> list[np.ndarray]:
    """The plain transformers recipe, one crop per call, resized back to the crop."""
    out = []
    for image in images:
        outputs = model(**processor(images=image, return_tensors="pt"))
        post = processor.post_process_depth_estimation(outputs, target_sizes=[image.shape[:2]])
        out.append(post[0]["predicted_depth"].numpy())
    return out


def _errors(preds: list[np.ndarray], depth: list[np.ndarray], mask: list[np.ndarray]) -> dict[str, float]:
    per = [depth_errors(p, d, m) for p, d, m in zip(preds, depth, mask, strict=True)]
    return {"abs_rel": float(np.mean([e.abs_rel for e in per])), "si_rmse": float(np.mean([e.si_rmse for e in per]))}


def test_shipped_model_beats_constant_and_untrained_on_held_out_subjects(held_out_crops) -> None:
    from transformers import AutoConfig, AutoImageProcessor, AutoModelForDepthEstimation

    assert os.environ.get("HF_HUB_OFFLINE") == "1"
    folder = resolve_shipped(SYNTH_DEPTH_NAME)
    model = AutoModelForDepthEstimation.from_pretrained(folder).eval()
    processor = AutoImageProcessor.from_pretrained(folder)
    assert model.config.model_type == "depth_anything" and model.config.backbone_config.model_type == "dinov2"
    torch.manual_seed(0)
    untrained = AutoModelForDepthEstimation.from_config(AutoConfig.from_pretrained(folder)).eval()

    rgb, depth, mask = held_out_crops
    trained_pred = _predict(model, processor, rgb)
    trained = _errors(trained_pred, depth, mask)
    constant = _errors([np.ones(m.shape, np.float32) for m in mask], depth, mask)
    random_init = _errors(_predict(untrained, processor, rgb), depth, mask)
    for metric in ("abs_rel", "si_rmse"):
        best_reference = min(constant[metric], random_init[metric])
        assert trained[metric] < 0.7 * best_reference, (metric, trained, constant, random_init)

    # Depth Anything's convention: larger output = nearer, so the fit onto true inverse depth has a positive scale.
    scales = [align_scale_shift(p[None], np.where(m, 1 / np.where(m, d, 1), 0)[None], m[None])[0][0] for p, d, m in zip(trained_pred, depth, mask, strict=True)]
    assert np.mean(np.array(scales) > 0) >= 0.9
