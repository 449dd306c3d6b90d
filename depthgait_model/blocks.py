"""Small gait layers shared by the branches, the fusion module and the head.

Inside the trunks, feature maps are *frame-folded*: ``[N * T, C, H, W]`` with sequence n's frame t
at row ``n * T + t``, in ``torch.channels_last`` memory. Most layers are frame-wise 2-D, so they run
on the folded map as it is, and oneDNN's convolutions are about 3x faster in channels-last than in
NCHW on CPU (cuDNN likes it too, especially under AMP). Only the layers that mix frames (the
temporal convolution here, temporal pooling in the head) look at ``T``; they view the same memory
as ``[N, C, T, H * W]`` without a copy. ``unfold_frames`` gives the ``[N, C, T, H, W]`` view of a
folded map for callers outside the trunks.

Padded batches carry a frame mask ``[N, T]`` (True = a real frame); only the layers that mix frames
look at it, so that a padded sequence embeds exactly as the same sequence unpadded does.

Parameter names and shapes are those of the first, 5-D formulation (``nn.Conv3d`` weights
``[C_out, C_in, k_t, k_h, k_w]``), so checkpoints written by either load into the other.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def frame_mask(lengths: torch.Tensor, frames: int) -> torch.Tensor:
    """``lengths`` int [N] -> bool [N, T], True where frame t < lengths[n] (padding goes at the end)."""
    steps = torch.arange(frames, device=lengths.device)  # (T,)
    return steps[None, :] < lengths[:, None]  # (N, T)


def fold_frames(x: torch.Tensor) -> torch.Tensor:
    """``[N, C, T, H, W]`` -> frame-folded channels-last ``[N * T, C, H, W]``.

    ``.to(memory_format=...)`` also sets channels-last strides when ``C == 1`` (where
    ``.contiguous`` sees nothing to do), so the first conv already writes channels-last.
    """
    n, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(n * t, c, h, w).to(memory_format=torch.channels_last)  # (N*T, C, H, W)


def unfold_frames(x: torch.Tensor, frames: int) -> torch.Tensor:
    """Frame-folded ``[N * T, C, H, W]`` -> ``[N, C, T, H, W]``; a view (no copy) of any layout."""
    nt, c, h, w = x.shape
    return x.unflatten(0, (nt // frames, frames)).transpose(1, 2)  # (N, C, T, H, W)


def mask_frames(x: torch.Tensor, mask: torch.Tensor | None) -> torch.Tensor:
    """Zero the padded frames of a folded ``[N * T, C, H, W]`` map (``mask`` bool [N, T] or None)."""
    if mask is None:
        return x
    return x * mask.reshape(-1, 1, 1, 1).to(x.dtype)  # (N*T, C, H, W)


def conv3x3(in_ch: int, out_ch: int, stride: int = 1) -> nn.Conv2d:
    return nn.Conv2d(in_ch, out_ch, kernel_size=3, stride=stride, padding=1, bias=False)


class Conv1x1(nn.Conv2d):
    """A bias-free 1x1 ``nn.Conv2d`` with ``stride``, computed as subsampling + a stride-1 1x1 conv.

    (Subsampling by a 1x1 average pool: one pass forward and backward, where slicing takes two.)

    Same parameters and result as the strided conv. The detour matters: oneDNN's strided 1x1
    backward-weights kernel for channels-last input with fewer than 16 input channels writes past
    its workspace (uxlfoundation/oneDNN#6035), which crashes or silently corrupts gradients.
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__(in_ch, out_ch, kernel_size=1, stride=stride, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.stride != (1, 1):
            x = F.avg_pool2d(x, 1, self.stride)  # (B, C_in, ceil(H / s), ceil(W / s)): every s-th pixel, exactly
        return F.conv2d(x, self.weight)  # (B, C_out, ceil(H / s), ceil(W / s))


class FrameConv1x1(nn.Conv3d):
    """A 1x1x1 ``nn.Conv3d`` (weight ``[C_out, C_in, 1, 1, 1]``) run as a 1x1 2-D conv on folded frames.

    Same parameters and initialisation as the Conv3d; only the kernel call differs. Several inputs
    are convolved as their channel concatenation, computed as a sum of convs over weight slices:
    no concatenated copy of big maps (about 3x cheaper, forward + backward, at stage 1).
    """

    def __init__(self, in_ch: int, out_ch: int, bias: bool = True) -> None:
        super().__init__(in_ch, out_ch, kernel_size=1, bias=bias)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        weight = self.weight.flatten(2).unsqueeze(-1)  # (C_out, C_in, 1, 1)
        total = sum(x.shape[1] for x in inputs)
        assert total == weight.shape[1], f"inputs have {total} channels, the conv takes {weight.shape[1]}"
        out, start = None, 0
        for x in inputs:
            part = F.conv2d(x, weight[:, start : start + x.shape[1]], self.bias if out is None else None)
            out = part if out is None else out.add_(part)  # (N*T, C_out, H, W)
            start += x.shape[1]
        return out

    def forward_split(self, x: torch.Tensor, chunks: int) -> list[torch.Tensor]:
        """``forward(x).chunk(chunks, dim=1)``, each chunk computed on its own (contiguous, no split copies)."""
        weight = self.weight.flatten(2).unsqueeze(-1).chunk(chunks)  # (C_out / chunks, C_in, 1, 1) each
        bias = self.bias.chunk(chunks) if self.bias is not None else [None] * chunks
        return [F.conv2d(x, w, b) for w, b in zip(weight, bias, strict=True)]  # (N*T, C_out / chunks, H, W) each


class Pointwise(nn.Sequential):
    """1x1 conv + BN + ReLU on folded frames; several inputs act as their channel concatenation."""

    def __init__(self, in_ch: int, out_ch: int) -> None:
        super().__init__(FrameConv1x1(in_ch, out_ch, bias=False), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:  # type: ignore[override]
        conv, bn, relu = self
        return relu(bn(conv(*inputs)))  # (N*T, C_out, H, W)


class TemporalConv(nn.Conv3d):
    """The 3x1x1 temporal ``nn.Conv3d`` (zero-padded by one frame at each end) on folded frames.

    A 3x1x1 conv only mixes frames, pixel by pixel, so it is a 2-D conv with kernel (3, 1) over the
    ``[N, C, T, H * W]`` view of the folded map: the same memory when that map is channels-last.
    """

    def __init__(self, channels: int) -> None:
        super().__init__(channels, channels, kernel_size=(3, 1, 1), padding=(1, 0, 0), bias=False)

    def forward(self, x: torch.Tensor, frames: int) -> torch.Tensor:  # type: ignore[override]
        nt, c, h, w = x.shape
        seq = x.permute(0, 2, 3, 1).reshape(nt // frames, frames, h * w, c).permute(0, 3, 1, 2)  # (N, C, T, H*W)
        out = F.conv2d(seq, self.weight.squeeze(-1), padding=(1, 0))  # (N, C, T, H*W)
        return out.permute(0, 2, 3, 1).reshape(nt, h, w, c).permute(0, 3, 1, 2)  # (N*T, C, H, W)


class SetBlock(nn.Module):
    """A 2-D module applied to every frame of a folded ``[N * T, C, H, W]`` map independently.

    Folding makes this a plain call; the wrapper stays so that parameter names (``...module.0.weight``)
    match the checkpoints. ``frames`` and ``mask`` are accepted and ignored (nothing here mixes
    frames) so that stages can call every block alike.
    """

    def __init__(self, module: nn.Module) -> None:
        super().__init__()
        self.module = module

    def forward(self, x: torch.Tensor, frames: int = 1, mask: torch.Tensor | None = None) -> torch.Tensor:
        return self.module(x)  # (N*T, C', H', W')


class BasicBlock2D(nn.Module):
    """ResNet basic block on single frames (stage 1 of DeepGaitV2): two 3x3 convs plus a shortcut."""

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = conv3x3(in_ch, out_ch, stride)
        self.bn1 = nn.BatchNorm2d(out_ch)
        self.conv2 = conv3x3(out_ch, out_ch)
        self.bn2 = nn.BatchNorm2d(out_ch)
        self.shortcut = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = nn.Sequential(Conv1x1(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)), inplace=True)  # (B, C', H', W')
        out = self.bn2(self.conv2(out))  # (B, C', H', W')
        return F.relu(out.add_(self.shortcut(x)), inplace=True)  # (B, C', H', W')


class BasicBlockP3D(nn.Module):
    """Pseudo-3D residual block (DeepGaitV2 stages 2-4): a frame-wise 3x3 conv, a temporal 3x1x1 conv
    added residually, a second frame-wise 3x3 conv, and a (strided 1x1) shortcut; on folded frames.

    Padded frames are zeroed before the temporal conv so that the last real frame sees the same zero
    padding it would see in the unpadded sequence. ``temporal_bn`` normalises per channel over
    frames and pixels, as the original ``BatchNorm3d`` did (same statistics, same state-dict keys).
    """

    def __init__(self, in_ch: int, out_ch: int, stride: int = 1) -> None:
        super().__init__()
        self.conv1 = SetBlock(
            nn.Sequential(conv3x3(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch), nn.ReLU(inplace=True))
        )
        self.temporal = TemporalConv(out_ch)
        self.temporal_bn = nn.BatchNorm2d(out_ch)
        self.conv2 = SetBlock(nn.Sequential(conv3x3(out_ch, out_ch), nn.BatchNorm2d(out_ch)))
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != out_ch:
            self.shortcut = SetBlock(
                nn.Sequential(Conv1x1(in_ch, out_ch, stride), nn.BatchNorm2d(out_ch))
            )

    def forward(self, x: torch.Tensor, frames: int, mask: torch.Tensor | None = None) -> torch.Tensor:
        out = self.conv1(x)  # (N*T, C', H', W')
        seen = mask_frames(out, mask)  # (N*T, C', H', W')
        out = F.relu(self.temporal_bn(self.temporal(seen, frames)).add_(out), inplace=True)  # (N*T, C', H', W')
        out = self.conv2(out)  # (N*T, C', H', W')
        return F.relu(out.add_(self.shortcut(x)), inplace=True)  # (N*T, C', H', W')


def temporal_max(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Max over frames ``[N, C, T, H, W] -> [N, C, H, W]``, ignoring padded frames when ``mask`` is given."""
    if mask is not None:
        x = x.masked_fill(~mask[:, None, :, None, None], float("-inf"))  # (N, C, T, H, W)
    return x.amax(dim=2)  # (N, C, H, W)


class HorizontalPyramidPooling(nn.Module):
    """Split the map into ``bins`` horizontal strips; each strip -> mean + max over its pixels.

    ``[N, C, H, W] -> [N, C, bins]``. Adaptive pooling gives the usual equal strips when ``H`` is a
    multiple of ``bins`` (16 rows for 64x44 inputs) and still works when it is not.
    """

    def __init__(self, bins: int = 16) -> None:
        super().__init__()
        self.bins = bins

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        size = (self.bins, 1)
        pooled = F.adaptive_avg_pool2d(x, size) + F.adaptive_max_pool2d(x, size)  # (N, C, bins, 1)
        return pooled.squeeze(-1)  # (N, C, bins)


class SeparateFCs(nn.Module):
    """One linear map per horizontal part: ``[N, C_in, P] -> [N, C_out, P]``."""

    def __init__(self, parts: int, in_ch: int, out_ch: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(parts, in_ch, out_ch)))  # (P, C_in, C_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.einsum("ncp,pco->nop", x, self.weight)  # (N, C_out, P)


class SeparateBNNecks(nn.Module):
    """BNNeck per part: BatchNorm over all ``C * P`` features, then a cosine classifier per part.

    Returns the BatchNorm-ed features L2-normalised per part ``[N, C, P]`` (OpenGait's
    ``SeparateBNNecks`` returns them so, and its ``use_emb2`` test embedding is exactly this) and
    cosine logits ``[N, num_classes, P]`` in [-1, 1]; the cross-entropy loss multiplies them by its scale (16).
    """

    def __init__(self, parts: int, in_ch: int, num_classes: int) -> None:
        super().__init__()
        self.bn = nn.BatchNorm1d(in_ch * parts)
        self.weight = nn.Parameter(nn.init.xavier_uniform_(torch.empty(parts, in_ch, num_classes)))  # (P, C, K)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n, c, p = x.shape
        feat = self.bn(x.reshape(n, c * p)).reshape(n, c, p)  # (N, C, P)
        unit = F.normalize(feat, dim=1)  # (N, C, P)
        weight = F.normalize(self.weight, dim=1)  # (P, C, K)
        logits = torch.einsum("ncp,pck->nkp", unit, weight)  # (N, K, P)
        return unit, logits  # (N, C, P) unit length per part, (N, K, P)
