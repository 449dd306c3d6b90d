"""Strict recipe loading: shipped recipes, the paper's values, and clear errors for bad YAML."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

from depthgait_model.config import ConfigError, RunConfig, load_config, shipped_configs


def write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_shipped_recipes_load_and_round_trip() -> None:
    assert {"casia-b", "small-cpu", "tiny"} <= set(shipped_configs())
    for name in ("casia-b", "small-cpu", "tiny"):
        cfg = load_config(name)
        assert cfg.name == name
        plain = json.loads(json.dumps(cfg.to_dict()))  # checkpoints and logs keep plain types
        assert RunConfig.from_dict(plain) == cfg


def test_casia_b_recipe_has_the_papers_values() -> None:
    cfg = load_config("casia-b")
    t, m = cfg.train, cfg.model
    assert (t.batch_p, t.batch_k, t.frames) == (8, 16, 30)
    assert (t.lr, t.momentum, t.weight_decay, t.gamma) == (0.1, 0.9, 5e-4, 0.1)
    assert t.milestones == (20000, 40000, 50000) and t.iterations == 60000
    assert (t.triplet_margin, t.ce_scale, t.label_smoothing, t.triplet_weight, t.ce_weight) == (0.2, 16.0, 0.1, 1, 1)
    assert t.amp is True and t.grad_clip is None and t.augment_p == 0.2 and t.test_embedding == "fc"
    assert m.mode == "full" and m.channels == (64, 128, 256, 512) and m.blocks == (1, 1, 1, 1)
    assert m.strides == (1, 2, 2, 1) and m.fusion_levels == (1, 2, 3) and m.fusion_op == "gate"
    assert (m.parts, m.embed_dim) == (16, 256)
    assert (cfg.data.height, cfg.data.width, cfg.data.cut) == (64, 44, 10)


def test_load_by_path_and_string_numbers(tmp_path: Path) -> None:
    path = write(tmp_path, "model:\n  mode: depth-only\ntrain:\n  weight_decay: 5e-4\n  grad_clip: 5\n")
    cfg = load_config(path)
    assert cfg.model.mode == "depth-only" and cfg.model.modalities == ("depth",)
    assert cfg.train.weight_decay == 5e-4 and cfg.train.grad_clip == 5.0  # PyYAML reads 5e-4 as a string
    assert cfg.name == "recipe"


@pytest.mark.parametrize(
    "text, key",
    [
        ("model:\n  chanels: [1, 2, 3, 4]\n", "model.chanels"),
        ("train:\n  learning_rate: 0.1\n", "train.learning_rate"),
        ("modle:\n  mode: full\n", "modle"),
    ],
)
def test_unknown_key_is_an_error_naming_key_and_file(tmp_path: Path, text: str, key: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value) and f"unknown key {key}" in str(err.value)


@pytest.mark.parametrize(
    "text, words",
    [
        ("model:\n  mode: early\n", "model.mode must be one of"),
        ("model:\n  channels: 64\n", "model.channels must be a list"),
        ("model:\n  channels: [8, 16, 32]\n", "channels must be 4 positive integers"),
        ("model:\n  fusion_levels: [1, 4]\n", "fusion_levels"),
        ("train:\n  iterations: 1.5\n", "train.iterations must be an integer"),
        ("train:\n  amp: 1\n", "train.amp must be true or false"),
        ("train:\n  test_embedding: logits\n", "test_embedding must be one of"),
        ("- just\n- a list\n", "expected a mapping"),
    ],
)
def test_bad_values_name_the_file_and_field(tmp_path: Path, text: str, words: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(ConfigError, match=words) as err:
        load_config(path)
    assert str(path) in str(err.value)


def test_unknown_recipe_name_lists_the_shipped_ones() -> None:
    with pytest.raises(FileNotFoundError, match="casia-b"):
        load_config("no-such-recipe")


def test_override_is_validated() -> None:
    cfg = load_config("tiny").override({"train.iterations": 200, "model.mode": "late-fusion"})
    assert cfg.train.iterations == 200 and cfg.model.mode == "late-fusion"
    with pytest.raises(ConfigError, match="unknown key 'train.iters'"):
        cfg.override({"train.iters": 3})
    with pytest.raises(ConfigError, match="must be an integer"):
        cfg.override({"train.iterations": "many"})


def test_derived_data_keys_of_older_recipes_load_or_are_refused(tmp_path: Path) -> None:
    """data.height/width are derived from cut now; older files that state them still load when they agree."""
    cfg = load_config(write(tmp_path, "data:\n  height: 64\n  width: 48\n  cut: 8\n"))
    assert (cfg.data.height, cfg.data.width, cfg.data.cut) == (64, 48, 8)
    assert "height" not in cfg.to_dict()["data"]
    with pytest.raises(ConfigError, match="data.width is 44.*cut 8 gives 48"):
        load_config(write(tmp_path, "data:\n  width: 44\n  cut: 8\n"))
