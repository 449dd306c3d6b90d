"""Tiny random-weight models saved exactly like Hub checkpoints, shared by several test modules."""
from __future__ import annotations

from pathlib import Path


def save_tiny_depth_anything(folder: Path) -> Path:
    """A random-weight Depth Anything saved like a Hub checkpoint (head scaled so its output varies)."""
    import torch
    from transformers import DepthAnythingConfig, DepthAnythingForDepthEstimation, Dinov2Config, DPTImageProcessor

    torch.manual_seed(0)
    backbone = Dinov2Config(
        hidden_size=32, num_hidden_layers=2, num_attention_heads=2, image_size=56, patch_size=14,
        out_indices=[1, 2], reshape_hidden_states=False,
    )
    cfg = DepthAnythingConfig(
        backbone_config=backbone, patch_size=14, reassemble_hidden_size=32, reassemble_factors=[2, 1],
        neck_hidden_sizes=[16, 32], fusion_hidden_size=16, head_hidden_size=8,
    )
    model = DepthAnythingForDepthEstimation(cfg)
    with torch.no_grad():
        for layer in model.head.modules():
            if isinstance(layer, torch.nn.Conv2d):
                torch.nn.init.normal_(layer.weight, std=0.5)
                torch.nn.init.constant_(layer.bias, 0.1)
    model.save_pretrained(folder)
    DPTImageProcessor(ensure_multiple_of=14, keep_aspect_ratio=True).save_pretrained(folder)
    return folder
