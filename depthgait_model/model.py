"""DepthGait: gait recognition from silhouette and monocular-depth sequences (ACM MM 2025).

The trunk (``trunks.py``: one branch, two late-fused branches, or the paper's cross-level
fusion) turns the input sequences, folded to frames ``[N * T, 1, H, W]``
(channels-last, see blocks.py), into a ``[N * T, C, h, w]`` map, viewed as ``[N, C, T, h, w]``; the head pools
it over time (max, padded frames ignored) and over horizontal strips (16 bins, mean + max), maps
every strip with its own FC (the embedding) and a BNNeck (the classifier features and logits).

    out = DepthGait(cfg.model, num_classes=74)(sil, depth, lengths)   # sil, depth [N, T, 64, 44]
    out.embeddings  # [N, 256, 16] for the triplet loss and for testing
    out.logits      # [N, 74, 16] cosine logits for the cross-entropy loss
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, NamedTuple

import torch
from torch import nn

from depthgait_model.blocks import (
    HorizontalPyramidPooling,
    SeparateBNNecks,
    SeparateFCs,
    fold_frames,
    frame_mask,
    temporal_max,
    unfold_frames,
)
from depthgait_model.config import ModelConfig
from depthgait_model.trunks import make_trunk


class GaitOutput(NamedTuple):
    embeddings: torch.Tensor  # (N, C, P) separate-FC output: triplet loss, default test embedding
    bnneck: torch.Tensor  # (N, C, P) BNNeck features, unit length per part: optional test embedding
    logits: torch.Tensor  # (N, num_classes, P) cosine logits in [-1, 1]: cross-entropy loss


class DepthGait(nn.Module):
    """The whole network: a trunk chosen by ``cfg.mode``, then the OpenGait-style head."""

    def __init__(self, cfg: ModelConfig, num_classes: int) -> None:
        super().__init__()
        assert num_classes >= 1, f"num_classes must be >= 1, got {num_classes}"
        self.cfg = cfg
        self.num_classes = num_classes
        self.trunk = make_trunk(cfg)
        self.hpp = HorizontalPyramidPooling(cfg.parts)
        self.fcs = SeparateFCs(cfg.parts, self.trunk.out_channels, cfg.embed_dim)
        self.bnnecks = SeparateBNNecks(cfg.parts, cfg.embed_dim, num_classes)

    def forward(
        self, sil: torch.Tensor | None, depth: torch.Tensor | None, lengths: torch.Tensor | None = None
    ) -> GaitOutput:
        """``sil``, ``depth`` float [N, T, H, W] in [0, 1] (unused modality may be None); ``lengths``
        int [N] counts each sequence's real frames, padding at the end (None = all frames real).
        Padded frames are masked wherever frames mix; BatchNorm in training mode still counts them
        in its batch statistics, so train on fixed-length clips and pad only at test time."""
        sil, depth, mask = self._check_inputs(sil, depth, lengths)
        frames = (sil if sil is not None else depth).shape[1]
        x_sil = fold_frames(sil.unsqueeze(1)) if sil is not None else None  # (N*T, 1, H, W)
        x_depth = fold_frames(depth.unsqueeze(1)) if depth is not None else None  # (N*T, 1, H, W)
        feat = self.trunk(x_sil, x_depth, frames, mask)  # (N*T, C, h, w)
        feat = temporal_max(unfold_frames(feat, frames), mask)  # (N, C, h, w)
        parts = self.hpp(feat)  # (N, C, P)
        embeddings = self.fcs(parts)  # (N, E, P)
        bnneck, logits = self.bnnecks(embeddings)  # (N, E, P), (N, K, P)
        return GaitOutput(embeddings, bnneck, logits)

    @torch.no_grad()
    def embed(
        self,
        sil: torch.Tensor | None,
        depth: torch.Tensor | None,
        lengths: torch.Tensor | None = None,
        which: str = "fc",
    ) -> torch.Tensor:
        """Test-time embedding ``[N, E, P]``: the FC output (``fc``) or BNNeck features (``bnneck``).
        Call ``model.eval()`` first so BatchNorm uses its running statistics."""
        assert which in ("fc", "bnneck"), f"which must be 'fc' or 'bnneck', got {which!r}"
        out = self(sil, depth, lengths)
        return out.embeddings if which == "fc" else out.bnneck  # (N, E, P)

    @classmethod
    def from_pretrained(cls, name_or_path: str | Path, device: Any = "cpu") -> DepthGait:
        """A shared model (``user/name`` on the Hub, or a folder from ``depthgait push --to-folder``), in
        eval mode; its subjects in class order are ``model.classes``. See ``depthgait_model.hub``."""
        from depthgait_model.hub import load_pretrained

        model, _, meta = load_pretrained(name_or_path, device)
        model.classes = meta["classes"]
        return model

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())

    def _check_inputs(
        self, sil: torch.Tensor | None, depth: torch.Tensor | None, lengths: torch.Tensor | None
    ) -> tuple[torch.Tensor | None, torch.Tensor | None, torch.Tensor | None]:
        """Assert the forward contract; drop unused modalities; lengths -> frame mask (or None)."""
        used = self.cfg.modalities
        sil = sil if "sil" in used else None
        depth = depth if "depth" in used else None
        for name, x in (("sil", sil), ("depth", depth)):
            if name in used:
                assert x is not None, f"mode {self.cfg.mode!r} needs {name}, got None"
                assert x.dim() == 4, f"{name} must be [N, T, H, W], got shape {tuple(x.shape)}"
                assert x.is_floating_point(), f"{name} must be a float tensor in [0, 1], got {x.dtype}"
        if sil is not None and depth is not None:
            assert sil.shape == depth.shape, f"sil {tuple(sil.shape)} and depth {tuple(depth.shape)} differ"
        x = sil if sil is not None else depth
        n, t, h, _ = x.shape
        assert h >= self.cfg.parts, f"frame height {h} is below the {self.cfg.parts} horizontal parts"
        if lengths is None:
            return sil, depth, None
        assert lengths.shape == (n,), f"lengths must be [N] = [{n}], got shape {tuple(lengths.shape)}"
        lengths = lengths.to(device=x.device, dtype=torch.long)
        assert bool(((lengths >= 1) & (lengths <= t)).all()), f"lengths must be in 1..{t}, got {lengths.tolist()}"
        if bool((lengths == t).all()):
            return sil, depth, None  # nothing padded: skip the masking
        return sil, depth, frame_mask(lengths, t)
