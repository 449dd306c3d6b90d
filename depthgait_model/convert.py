"""OpenGait DeepGaitV2 checkpoints as depthgait checkpoints, and ``train --init`` from any checkpoint.

Our ``silhouette-only`` network is DeepGaitV2 (mode ``p3d``) layer for layer, so each of OpenGait's
97 state-dict tensors (parameters and BatchNorm buffers) has exactly one counterpart here; only
the names differ, and the strided shortcuts of stages 2-4, an ``nn.Conv3d`` 1x1x1 in OpenGait
(``[C_out, C_in, 1, 1, 1]``), are a 2-D 1x1 conv here (``[C_out, C_in, 1, 1]``). The renaming is
one table of name templates (``RULES``) read in both directions, so the inverse (``to_opengait``)
is the same table, not a second copy.

Channels, blocks per stage, parts, embedding width and classes are read from the tensor shapes;
strides cannot be (a conv's weight does not show its stride) and come from the recipe (DeepGaitV2's
1, 2, 2, 1 by default). OpenGait does not store its class names, so the classes are named
``opengait-000``, ... in its label order (the sorted training subjects).
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from torch import nn

from depthgait_model.checkpoint import CheckpointError, config_of, load_checkpoint, save_checkpoint
from depthgait_model.config import ConfigError, RunConfig, load_config
from pipeline.errors import DepthgaitError

SOURCES = ("opengait",)

# (OpenGait template, our template, reshape): {b} is a block index, {i} an index inside a Sequential,
# {x} the rest of the name (weight, bias, running_mean, ...). Stages 2-4 share a shape, one row each.
_STEM_AND_STAGE1 = [
    ("layer0.forward_block.{i}.{x}", "trunk.branch.stem.module.{i}.{x}", False),
    ("layer1.forward_block.{b}.downsample.{i}.{x}", "trunk.branch.stages.0.blocks.{b}.module.shortcut.{i}.{x}", False),
    ("layer1.forward_block.{b}.{x}", "trunk.branch.stages.0.blocks.{b}.module.{x}", False),
]
_P3D_STAGES = [
    rule
    for layer in (2, 3, 4)
    for rule in (
        (f"layer{layer}.{{b}}.conv1.forward_block.{{i}}.{{x}}", f"trunk.branch.stages.{layer - 1}.blocks.{{b}}.conv1.module.{{i}}.{{x}}", False),
        (f"layer{layer}.{{b}}.conv2.forward_block.{{i}}.{{x}}", f"trunk.branch.stages.{layer - 1}.blocks.{{b}}.conv2.module.{{i}}.{{x}}", False),
        (f"layer{layer}.{{b}}.shortcut3d.{{x}}", f"trunk.branch.stages.{layer - 1}.blocks.{{b}}.temporal.{{x}}", False),
        (f"layer{layer}.{{b}}.sbn.{{x}}", f"trunk.branch.stages.{layer - 1}.blocks.{{b}}.temporal_bn.{{x}}", False),
        (f"layer{layer}.{{b}}.downsample.0.{{x}}", f"trunk.branch.stages.{layer - 1}.blocks.{{b}}.shortcut.module.0.{{x}}", True),
        (f"layer{layer}.{{b}}.downsample.1.{{x}}", f"trunk.branch.stages.{layer - 1}.blocks.{{b}}.shortcut.module.1.{{x}}", False),
    )
]
_HEAD = [
    ("FCs.fc_bin", "fcs.weight", False),
    ("BNNecks.fc_bin", "bnnecks.weight", False),
    ("BNNecks.bn1d.{x}", "bnnecks.bn.{x}", False),
]
RULES: list[tuple[str, str, bool]] = [*_STEM_AND_STAGE1, *_P3D_STAGES, *_HEAD]


class ConvertError(DepthgaitError, ValueError):
    """A checkpoint cannot be converted or used for init; the message names the file and the problem."""


def _pattern(template: str) -> re.Pattern[str]:
    """``layer{b}.{x}`` -> a regex with named groups (indices are digits, ``x`` is the rest)."""
    regex = re.escape(template)
    for name, part in (("b", r"\d+"), ("i", r"\d+"), ("x", r"[A-Za-z_][\w.]*")):
        regex = regex.replace(re.escape("{" + name + "}"), f"(?P<{name}>{part})")
    return re.compile(regex + r"\Z")


_FORWARD = [(_pattern(og), ours, reshape) for og, ours, reshape in RULES]
_BACKWARD = [(_pattern(ours), og, reshape) for og, ours, reshape in RULES]


def _rename(state: dict[str, torch.Tensor], rules, to_2d: bool, source: str) -> dict[str, torch.Tensor]:
    out: dict[str, torch.Tensor] = {}
    for name, tensor in state.items():
        for pattern, template, reshape in rules:
            match = pattern.match(name)
            if match:
                new = template.format(**match.groupdict())
                if reshape and tensor.ndim > 1:  # the strided 1x1 shortcut: Conv3d [o, i, 1, 1, 1] <-> Conv2d [o, i, 1, 1]
                    tensor = tensor.flatten(2).unsqueeze(-1) if to_2d else tensor.unsqueeze(-1)
                out[new] = tensor
                break
        else:
            raise ConvertError(f"{source}: tensor {name!r} has no counterpart (is this a DeepGaitV2 p3d checkpoint?)")
    return out


def from_opengait(state: dict[str, torch.Tensor], source: str = "state dict") -> dict[str, torch.Tensor]:
    """OpenGait DeepGaitV2 names and layout -> our ``silhouette-only`` state dict."""
    return _rename(state, _FORWARD, to_2d=True, source=source)


def to_opengait(state: dict[str, torch.Tensor], source: str = "state dict") -> dict[str, torch.Tensor]:
    """Our ``silhouette-only`` state dict -> OpenGait DeepGaitV2 names and layout (the inverse)."""
    return _rename(state, _BACKWARD, to_2d=False, source=source)


def read_opengait(path: str | Path) -> tuple[dict[str, torch.Tensor], int]:
    """The model tensors of an OpenGait checkpoint (``{'model': ..., 'iteration': ...}`` or a bare state dict)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such checkpoint")
    try:
        payload = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError... for bad files
        raise ConvertError(f"{path}: not a readable torch checkpoint ({type(exc).__name__}: {exc})") from exc
    state = payload.get("model", payload) if isinstance(payload, dict) else None
    if not isinstance(state, dict) or not state or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ConvertError(f"{path}: expected an OpenGait checkpoint ({{'model': state_dict, ...}}) or a state dict")
    state = {k.removeprefix("module."): v for k, v in state.items()}  # saved from a DDP wrapper
    iteration = payload.get("iteration", 0) if isinstance(payload, dict) else 0
    return state, int(iteration) if isinstance(iteration, int) else 0


def infer_shapes(state: dict[str, torch.Tensor], source: str = "state dict") -> tuple[dict[str, Any], int]:
    """``({channels, blocks, parts, embed_dim}, classes)`` from OpenGait DeepGaitV2 tensor shapes."""
    def shape(name: str) -> tuple[int, ...]:
        if name not in state:
            raise ConvertError(f"{source}: no tensor {name!r} (is this a DeepGaitV2 checkpoint?)")
        return tuple(state[name].shape)

    stem = shape("layer0.forward_block.0.weight")
    if stem[1] != 1:
        raise ConvertError(f"{source}: the stem takes {stem[1]} input channels; depthgait's silhouette branch takes 1")
    channels = [stem[0], *(shape(f"layer{layer}.0.conv1.forward_block.0.weight")[0] for layer in (2, 3, 4))]
    block_re = [re.compile(r"layer1\.forward_block\.(\d+)\.conv1\.weight\Z")]
    block_re += [re.compile(rf"layer{layer}\.(\d+)\.conv1\.forward_block\.0\.weight\Z") for layer in (2, 3, 4)]
    blocks = [len({m.group(1) for m in map(rx.match, state) if m}) for rx in block_re]
    parts, fc_in, embed_dim = shape("FCs.fc_bin")
    if fc_in != channels[3]:
        raise ConvertError(f"{source}: FCs take {fc_in} channels but stage 4 gives {channels[3]}")
    classes = shape("BNNecks.fc_bin")[2]
    return {"channels": channels, "blocks": blocks, "parts": parts, "embed_dim": embed_dim}, classes


@dataclass
class ConvertResult:
    out: Path
    config: RunConfig
    classes: int
    tensors: int
    parameters: int


def convert_opengait(
    src: str | Path,
    out: str | Path,
    config: str | Path | None = None,
    manifest: str | None = None,
) -> ConvertResult:
    """Write our checkpoint for an OpenGait DeepGaitV2 checkpoint; ``config`` must agree with the shapes."""
    from depthgait_model.model import DepthGait

    src = Path(src)
    state, iteration = read_opengait(src)
    shapes, classes = infer_shapes(state, str(src))
    if config is None:
        run_cfg = load_config("casia-b").override({"model.mode": "silhouette-only", **{f"model.{k}": v for k, v in shapes.items()}})
        run_cfg = RunConfig.from_dict({**run_cfg.to_dict(), "name": "opengait-deepgaitv2"})
    else:
        run_cfg = load_config(config)
        given = run_cfg.to_dict()["model"]
        wrong = [f"model.{k}: config {given[k]}, checkpoint {v}" for k, v in shapes.items() if given[k] != v]
        if given["mode"] != "silhouette-only":
            wrong.insert(0, f"model.mode: config {given['mode']}, an OpenGait DeepGaitV2 is silhouette-only")
        if wrong:
            raise ConvertError(f"{config}: does not fit {src} ({'; '.join(wrong)})")
    ours = from_opengait(state, str(src))
    model = DepthGait(run_cfg.model, num_classes=classes)
    try:
        model.load_state_dict(ours)
    except RuntimeError as exc:  # e.g. a stride the shapes cannot show, or a missing tensor
        raise ConvertError(f"{src}: the tensors do not fit the model of the recipe ({exc})") from exc
    label_map = {f"opengait-{k:03d}": k for k in range(classes)}
    extra = {"converted_from": str(src), "source_format": "opengait", "source_iteration": iteration}
    if manifest:
        extra["manifest"] = manifest
    save_checkpoint(out, model=model, run_config=run_cfg, label_map=label_map, iteration=0, extra=extra)
    return ConvertResult(Path(out), run_cfg, classes, len(ours), model.num_parameters())


# ---- train --init ------------------------------------------------------------------------------
@dataclass
class InitReport:
    """What ``init_from_checkpoint`` did: tensors loaded, tensors skipped (and why), tensors left fresh."""

    loaded: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    fresh: list[str] = field(default_factory=list)

    def summary(self) -> str:
        text = f"init: {len(self.loaded)} tensors loaded, {len(self.fresh)} left as initialised"
        return text + (f", {len(self.skipped)} skipped ({'; '.join(self.skipped[:3])})" if self.skipped else "")


def _branch_target(mode: str, name: str) -> str | None:
    """Where a ``silhouette-only`` tensor goes in a model of ``mode`` (None: nowhere)."""
    if not name.startswith("trunk.branch."):
        return name  # the head: same names in every mode
    rest = name.removeprefix("trunk.branch.")
    if mode == "silhouette-only":
        return name
    if mode == "late-fusion":
        return "trunk.sil." + rest
    if mode == "full":  # stem + stages 1-3 are the silhouette branch; stage 4 is the shared stage
        if rest.startswith("stages.3."):
            return "trunk.stage4." + rest.removeprefix("stages.3.")
        return "trunk.sil." + rest
    return None


def init_from_checkpoint(model: nn.Module, path: str | Path) -> InitReport:
    """Start ``model`` from a checkpoint's weights: the same mode, or a silhouette-only one.

    From ``silhouette-only`` into ``full``, the stem and stages 1-3 fill the silhouette branch and
    stage 4 the shared stage 4; into ``late-fusion``, the silhouette branch. The head (FCs, BNNeck)
    is taken where the shapes agree; the classifier is left fresh when the classes differ.
    """
    path = Path(path)
    try:
        payload = load_checkpoint(path)
    except CheckpointError as exc:
        raise ConvertError(f"{exc} (convert an OpenGait checkpoint first: depthgait convert --from opengait)") from exc
    src_mode = config_of(payload, path).model.mode
    mode = model.cfg.mode
    if src_mode != mode and (src_mode != "silhouette-only" or mode == "depth-only"):
        raise ConvertError(f"{path}: a {src_mode} checkpoint cannot start a {mode} model (same mode, or silhouette-only into full/late-fusion)")
    target = model.state_dict()
    report = InitReport()
    chosen: dict[str, torch.Tensor] = {}
    for name, tensor in payload["model"].items():
        dest = name if src_mode == mode else _branch_target(mode, name)
        if dest is None or dest not in target:
            report.skipped.append(f"{name}: no counterpart")
        elif target[dest].shape != tensor.shape:
            report.skipped.append(f"{name}: shape {tuple(tensor.shape)} vs {tuple(target[dest].shape)}")
        else:
            chosen[dest] = tensor
            report.loaded.append(dest)
    if not chosen:
        raise ConvertError(f"{path}: no tensor fits the {mode} model (different channels or blocks?)")
    model.load_state_dict(chosen, strict=False)
    report.fresh = [k for k in target if k not in chosen]
    return report


def check_source(name: str) -> None:
    if name not in SOURCES:
        raise ConfigError(f"--from must be one of {', '.join(SOURCES)}, got {name!r}")
