"""Run configuration: model, training and data settings as dataclasses, loaded strictly from YAML.

Every ablation of the paper (silhouette only, depth only, late fusion, full fusion; which levels
fuse and how) is one field here, so an ablation is a run, not a code change. Loading is strict:
a key the dataclass does not know is an error naming the key and the file, never silently dropped.
``RunConfig.to_dict()`` / ``from_dict()`` round-trip through plain types so a checkpoint carries
the config and alone rebuilds the model.
"""
from __future__ import annotations

import dataclasses
import types
import typing
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from pipeline.errors import DepthgaitError
from pipeline.formats.yaml_file import read_yaml_mapping
from pipeline.geometry import CUT, FRAME_SIZE

CONFIG_DIR = Path(__file__).resolve().parent / "configs"

MODES = ("silhouette-only", "depth-only", "late-fusion", "full")
FUSION_OPS = ("gate", "add", "concat")
LATE_FUSION_OPS = ("concat", "sum")
TEST_EMBEDDINGS = ("fc", "bnneck")
SAMPLINGS = ("fixed_ordered", "contiguous")
AUGMENTS = ("opengait", "light")
WEIGHT_INITS = ("xavier", "torch")


class ConfigError(DepthgaitError, ValueError):
    """A recipe is wrong (unknown key, wrong type, bad value); the message names the file and key."""


@dataclass(frozen=True)
class ModelConfig:
    """The network. Defaults are the paper-size model for CASIA-B (OpenGait's DeepGaitV2 sizes plus our fusion choices)."""

    # Which modalities and how they meet:
    #   silhouette-only / depth-only: one branch, stages 1-4;
    #   late-fusion: two independent branches through stage 4, merged before the head;
    #   full: the paper's multi-scale cross-level fusion with a shared stage 4.
    mode: str = "full"
    channels: tuple[int, ...] = (64, 128, 256, 512)  # per stage 1-4; the stem outputs channels[0]
    blocks: tuple[int, ...] = (1, 1, 1, 1)  # residual blocks per stage (CASIA-B: one each)
    strides: tuple[int, ...] = (1, 2, 2, 1)  # spatial stride of each stage: 64x44 -> 16x11
    fusion_levels: tuple[int, ...] = (1, 2, 3)  # stages followed by a cross-modal block (full mode)
    # gate: fused = 1x1 conv of the concatenation, plus sigmoid gates re-weighting each branch;
    # concat: the same fused path, no gates; add: fused = sil + depth, no gates, no parameters.
    fusion_op: str = "gate"
    gate_reduction: int = 4  # gate hidden width = max(channels // gate_reduction, 4)
    multiscale: bool = True  # bring every level's fused feature to stage-3 size and mix it in
    late_fusion_op: str = "concat"  # late-fusion: concatenate or sum the two stage-4 maps
    parts: int = 16  # horizontal pyramid bins
    embed_dim: int = 256  # separate-FC output per part

    def __post_init__(self) -> None:
        _choice("mode", self.mode, MODES)
        _choice("fusion_op", self.fusion_op, FUSION_OPS)
        _choice("late_fusion_op", self.late_fusion_op, LATE_FUSION_OPS)
        for name in ("channels", "blocks", "strides"):
            value = getattr(self, name)
            if len(value) != 4 or any(v < 1 for v in value):
                raise ConfigError(f"{name} must be 4 positive integers (stages 1-4), got {list(value)}")
        bad = [lvl for lvl in self.fusion_levels if lvl not in (1, 2, 3)]
        if bad or len(set(self.fusion_levels)) != len(self.fusion_levels):
            raise ConfigError(f"fusion_levels must be distinct stages out of 1, 2, 3, got {list(self.fusion_levels)}")
        object.__setattr__(self, "fusion_levels", tuple(sorted(self.fusion_levels)))
        if self.mode == "full" and self.fusion_op != "gate" and self.fusion_levels and not self.multiscale:
            raise ConfigError(
                f"fusion_op {self.fusion_op} with multiscale false: the fused features would be unused "
                "(use gate, set multiscale true, or fusion_levels [])"
            )
        for name in ("gate_reduction", "parts", "embed_dim"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be >= 1, got {getattr(self, name)}")

    @property
    def modalities(self) -> tuple[str, ...]:
        """The inputs the network reads: ``("sil",)``, ``("depth",)`` or ``("sil", "depth")``."""
        return {"silhouette-only": ("sil",), "depth-only": ("depth",)}.get(self.mode, ("sil", "depth"))


# Every count of the train section: (lowest, highest) allowed. The upper bounds only catch typos
# (an extra zero): 30 frames x 8 x 16 is the paper's batch.
_TRAIN_COUNTS: dict[str, tuple[int, int]] = {
    "batch_p": (2, 4096),
    "batch_k": (1, 1024),
    "frames": (1, 10_000),
    "iterations": (1, 10**9),
    "checkpoint_every": (1, 10**9),
    "log_every": (1, 10**9),
    "num_workers": (0, 1024),
    "seed": (0, 2**32 - 1),
}


@dataclass(frozen=True)
class TrainConfig:
    """Optimisation and sampling. Defaults are OpenGait's DeepGaitV2 CASIA-B recipe."""

    batch_p: int = 8  # subjects per batch
    batch_k: int = 16  # sequences per subject
    frames: int = 30  # ordered frames per training clip
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4
    milestones: tuple[int, ...] = (20000, 40000, 50000)  # lr x gamma at each
    gamma: float = 0.1
    iterations: int = 60000
    amp: bool = True  # mixed precision, used on CUDA only
    grad_clip: float | None = None  # max gradient norm; None = off
    triplet_margin: float = 0.2
    ce_scale: float = 16.0
    label_smoothing: float = 0.1
    triplet_weight: float = 1.0
    ce_weight: float = 1.0
    augment_p: float = 0.2  # probability of each augmentation (perspective, flip, rotation)
    checkpoint_every: int = 10000
    log_every: int = 100
    seed: int = 0
    num_workers: int = 4
    test_embedding: str = "fc"  # "fc": separate-FC output; "bnneck": BNNeck features (unit length per part)
    # OpenGait's DeepGaitV2 recipe unless noted (configs/deepgaitv2/DeepGaitV2_casiab.yaml):
    # fixed_ordered: `frames` sorted frames drawn from a random window of frames + frames_skip_num
    # consecutive ones (OpenGait's CollateFn); contiguous: `frames` consecutive frames.
    sampling: str = "fixed_ordered"
    frames_skip_num: int = 4
    # opengait: RandomPerspective on the 64x64 frame (corners move up to 9-10 px, up to ~1.42x zoom),
    # then the cut, flip and RandomRotate; light: the perspective after the cut, corners up to 4 px.
    augment: str = "opengait"
    weight_init: str = "xavier"  # xavier: OpenGait's init_parameters; torch: PyTorch's layer defaults
    sync_bn: bool = True  # under DDP on CUDA: SyncBatchNorm (OpenGait's sync_BN: true)
    gather_triplet: bool = True  # under DDP: the triplet loss over the batch gathered from every rank
    triplet_self_pairs: bool = False  # OpenGait counts (a, a) as a positive pair; we do not (see losses.py)
    eval_every: int = 0  # > 0: evaluate on the test split every this many iterations, keep ckpt-best.pt
    eval_metric: str | None = None  # distance for eval_every [default: the manifest's]

    def __post_init__(self) -> None:
        _choice("test_embedding", self.test_embedding, TEST_EMBEDDINGS)
        _choice("sampling", self.sampling, SAMPLINGS)
        _choice("augment", self.augment, AUGMENTS)
        _choice("weight_init", self.weight_init, WEIGHT_INITS)
        if self.eval_metric is not None:
            _choice("eval_metric", self.eval_metric, ("euc", "cos"))
        if self.frames_skip_num < 0 or self.eval_every < 0:
            raise ConfigError("frames_skip_num and eval_every must be >= 0")
        for name, (low, high) in _TRAIN_COUNTS.items():
            value = getattr(self, name)
            if not low <= value <= high:
                raise ConfigError(f"{name} must be an integer in [{low}, {high}], got {value}")
        if self.batch_p < 2:
            raise ConfigError(f"batch_p must be >= 2 (a triplet needs a negative subject), got {self.batch_p}")
        if self.batch_k < 2 and self.triplet_weight > 0:
            raise ConfigError(
                f"batch_k must be >= 2 with a triplet loss (an anchor needs a positive of its own subject; "
                f"with {self.batch_k} the triplet loss is always 0), got {self.batch_k}; or set train.triplet_weight 0"
            )
        if list(self.milestones) != sorted(self.milestones):
            raise ConfigError(f"milestones must be increasing, got {list(self.milestones)}")
        if not 0.0 <= self.label_smoothing < 1.0 or not 0.0 <= self.augment_p <= 1.0:
            raise ConfigError("label_smoothing must be in [0, 1) and augment_p in [0, 1]")
        if self.lr <= 0 or (self.grad_clip is not None and self.grad_clip <= 0):
            raise ConfigError("lr and grad_clip must be > 0")


@dataclass(frozen=True)
class DataConfig:
    """Input geometry: aligned frames are 64x64; ``cut`` pixels per side are dropped at load time."""

    cut: int = CUT  # columns removed from each side of the stored 64x64 frame (64 - 2 * 10 = 44)

    def __post_init__(self) -> None:
        if not 0 <= self.cut < FRAME_SIZE // 2:
            raise ConfigError(f"data: cut must be in [0, {FRAME_SIZE // 2}) pixels per side, got {self.cut}")

    @property
    def height(self) -> int:
        return FRAME_SIZE

    @property
    def width(self) -> int:
        return FRAME_SIZE - 2 * self.cut


def _drop_derived_data_keys(data: Mapping[str, Any], source: str) -> Mapping[str, Any]:
    """Recipes and checkpoints written before ``data.height``/``data.width`` were derived still load:
    the keys are accepted when they equal what ``cut`` gives, refused otherwise."""
    section = data.get("data")
    if not isinstance(section, Mapping) or not {"height", "width"} & set(section):
        return data
    rest = {k: v for k, v in section.items() if k not in ("height", "width")}
    derived = DataConfig(**{k: v for k, v in rest.items() if k == "cut"})
    for key in ("height", "width"):
        if key in section and section[key] != getattr(derived, key):
            raise ConfigError(
                f"{source}: data.{key} is {section[key]}, but aligned frames are {FRAME_SIZE}x{FRAME_SIZE} and cut "
                f"{derived.cut} gives {getattr(derived, key)} (set data.cut instead)"
            )
    return {**data, "data": rest}


@dataclass(frozen=True)
class RunConfig:
    """One recipe: everything needed to rebuild the model and repeat the run."""

    name: str = ""
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    data: DataConfig = field(default_factory=DataConfig)

    def to_dict(self) -> dict[str, Any]:
        """Plain dict (lists, not tuples) that YAML, JSON and ``torch.save`` all keep."""
        return _plain(dataclasses.asdict(self))

    @classmethod
    def from_dict(cls, data: Mapping[str, Any], source: str = "config") -> RunConfig:
        """Build strictly from a dict; ``source`` (a file name) prefixes every error message."""
        return _build(cls, _drop_derived_data_keys(data, source), source, "")

    def override(self, changes: Mapping[str, Any], source: str = "overrides") -> RunConfig:
        """A copy with dotted keys changed, e.g. ``{"train.iterations": 200}``, validated like YAML."""
        data = self.to_dict()
        for dotted, value in changes.items():
            *path, leaf = dotted.split(".")
            node = data
            for key in path:
                if not isinstance(node.get(key), dict):
                    raise ConfigError(f"{source}: unknown key {dotted!r}")
                node = node[key]
            if leaf not in node:
                raise ConfigError(f"{source}: unknown key {dotted!r}")
            node[leaf] = value
        return RunConfig.from_dict(data, source)


def load_config(name_or_path: str | Path) -> RunConfig:
    """Load a recipe by shipped name (``casia-b``, ``small-cpu``, ``tiny``) or by YAML path."""
    path = Path(name_or_path)
    if not path.is_file():
        shipped = CONFIG_DIR / f"{Path(str(name_or_path)).stem}.yaml"
        if path.suffix in ("", ".yaml", ".yml") and path.parent == Path(".") and shipped.is_file():
            path = shipped
        else:
            names = ", ".join(shipped_configs())
            raise FileNotFoundError(f"no config {str(name_or_path)!r}: not a file, not a shipped recipe ({names})")
    data = read_yaml_mapping(path, ConfigError, "model/train/data sections")
    data.setdefault("name", path.stem)
    return RunConfig.from_dict(data, str(path))


def shipped_configs() -> list[str]:
    """Names of the recipes in ``depthgait_model/configs/``."""
    return sorted(p.stem for p in CONFIG_DIR.glob("*.yaml"))


# ---- strict construction ------------------------------------------------------------------


def _choice(name: str, value: str, allowed: tuple[str, ...]) -> None:
    if value not in allowed:
        raise ConfigError(f"{name} must be one of {', '.join(allowed)}; got {value!r}")


def _plain(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    return value


def _build(cls: type, data: Any, source: str, prefix: str) -> Any:
    """Instantiate dataclass ``cls`` from ``data``, rejecting unknown keys and wrong types."""
    where = prefix.rstrip(".") or "top level"
    if not isinstance(data, Mapping):
        raise ConfigError(f"{source}: {where} must be a mapping, got {type(data).__name__}")
    hints = typing.get_type_hints(cls)
    names = [f.name for f in dataclasses.fields(cls)]
    unknown = [k for k in data if k not in names]
    if unknown:
        raise ConfigError(f"{source}: unknown key {prefix}{unknown[0]!s} (allowed in {where}: {', '.join(names)})")
    kwargs = {}
    for key, value in data.items():
        hint = hints[key]
        if dataclasses.is_dataclass(hint):
            kwargs[key] = _build(hint, value, source, f"{prefix}{key}.")
        else:
            kwargs[key] = _coerce(value, hint, f"{source}: {prefix}{key}")
    try:
        return cls(**kwargs)
    except ConfigError as exc:
        raise ConfigError(f"{source}: {prefix}{exc}") from exc


def _coerce(value: Any, hint: Any, where: str) -> Any:
    """Check ``value`` against a simple type hint; tuples from lists, floats from ints and '5e-4'."""
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        options = typing.get_args(hint)
        if value is None and type(None) in options:
            return None
        (inner,) = [t for t in options if t is not type(None)]
        return _coerce(value, inner, where)
    if origin is tuple:
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        (inner, _) = typing.get_args(hint)
        return tuple(_coerce(v, inner, where) for v in value)
    if hint is bool:
        if not isinstance(value, bool):
            raise ConfigError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ConfigError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, str):  # PyYAML reads 5e-4 (no dot) as a string
            try:
                return float(value)
            except ValueError:
                raise ConfigError(f"{where} must be a number, got {value!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ConfigError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise ConfigError(f"{where} must be a string, got {value!r}")
        return value
    raise TypeError(f"{where}: unsupported config type {hint!r}")  # a bug in this module, not in the YAML
