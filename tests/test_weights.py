"""A missing weight is one clear message (what, how to fetch it, where to put it), fast, offline."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from pipeline.extract.weights import (
    MissingWeightsError,
    resolve_hf_model,
    resolve_sam_checkpoint,
    resolve_yolo_weights,
    sam_type_from_name,
)


@pytest.fixture(autouse=True)
def no_weights_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No weight folder of this machine may satisfy a lookup: every search place is an empty temp folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEPTHGAIT_WEIGHTS", str(tmp_path / "weights-env"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("pipeline.extract.weights._ultralytics_weights_dir", lambda: tmp_path / "ul")
    return tmp_path


def test_hub_model_not_cached_fails_fast_offline() -> None:
    with pytest.raises(MissingWeightsError) as err:
        resolve_hf_model("depth-anything/Depth-Anything-V2-Small-hf")
    msg = str(err.value)
    assert "depth-anything/Depth-Anything-V2-Small-hf" in msg and "HF_HUB_OFFLINE=1" in msg
    assert "huggingface-cli download depth-anything/Depth-Anything-V2-Small-hf" in msg and "--depth" in msg


def test_hub_model_resolves_when_online_or_local(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("HF_HUB_OFFLINE")
    assert resolve_hf_model("owner/model") == "owner/model"  # from_pretrained may download it
    folder = tmp_path / "local-depth"
    folder.mkdir()
    with pytest.raises(MissingWeightsError, match="local-depth has no config.json"):
        resolve_hf_model(str(folder))
    (folder / "config.json").write_text("{}")
    assert resolve_hf_model(str(folder)) == str(folder)
    with pytest.raises(MissingWeightsError, match="no such folder, and not a Hub id"):
        resolve_hf_model("./models/missing")


def test_depth_folder_without_weights_is_a_clear_error(tmp_path: Path) -> None:
    from transformers import DepthAnythingConfig, Dinov2Config

    from pipeline.depth.estimator import DepthEstimator

    folder = tmp_path / "half"
    DepthAnythingConfig(backbone_config=Dinov2Config(hidden_size=8, num_hidden_layers=1, num_attention_heads=1,
                                                     out_features=["stage1"])).save_pretrained(folder)
    with pytest.raises(MissingWeightsError, match=r"depth model .*half.* cannot be loaded"):
        DepthEstimator(str(folder))


def test_yolo_weights(tmp_path: Path) -> None:
    with pytest.raises(MissingWeightsError) as err:
        resolve_yolo_weights("yolo11n.pt")
    msg = str(err.value)
    assert "'yolo11n.pt' not found" in msg and "releases/download" in msg and "yolo predict model=yolo11n.pt" in msg
    assert str(tmp_path / "ul") in msg  # says where to put it
    with pytest.raises(MissingWeightsError, match="custom/best.pt"):
        resolve_yolo_weights("custom/best.pt")
    (tmp_path / "weights-env").mkdir()
    (tmp_path / "weights-env" / "yolo11n.pt").write_bytes(b"x")
    assert resolve_yolo_weights("yolo11n.pt") == str(tmp_path / "weights-env" / "yolo11n.pt")
    assert resolve_yolo_weights("yolo11n.yaml") == "yolo11n.yaml"  # architecture only (random weights)


def test_sam_checkpoints(tmp_path: Path) -> None:
    from pipeline.extract.segment import load_sam

    with pytest.raises(MissingWeightsError) as err:
        resolve_sam_checkpoint("vit_b")
    assert "sam_vit_b_01ec64.pth" in str(err.value) and "https://dl.fbaipublicfiles.com/segment_anything/" in str(err.value)
    with pytest.raises(MissingWeightsError, match="nowhere.pth"):
        resolve_sam_checkpoint("nowhere.pth")
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    hub.mkdir(parents=True)
    (hub / "sam_vit_l_0b3195.pth").write_bytes(b"x")
    assert resolve_sam_checkpoint("vit_l") == ("vit_l", hub / "sam_vit_l_0b3195.pth")
    assert sam_type_from_name("my_sam_vit_h.pth") == "vit_h" and sam_type_from_name("sam.pth") is None
    # A file of another name: its size comes from the encoder width; a wrong file is a clear error.
    torch.save({"image_encoder.patch_embed.proj.weight": torch.zeros(5, 3, 16, 16)}, tmp_path / "odd.pth")
    with pytest.raises(MissingWeightsError, match="odd.pth: not a vit_b/vit_l/vit_h"):
        load_sam(str(tmp_path / "odd.pth"))
    (tmp_path / "junk.pth").write_text("junk")
    with pytest.raises(MissingWeightsError, match="junk.pth: cannot be read"):
        load_sam(str(tmp_path / "junk.pth"))


def test_cli_missing_weight_is_one_line_before_any_work(tmp_path: Path) -> None:
    from cli.prep import main

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "001-nm-01-090.avi").write_bytes(b"x")
    for args, expect in [
        ([], "huggingface-cli download depth-anything/Depth-Anything-V2-Small-hf"),
        (["--depth", str(tmp_path), "--detector", "yolo"], "no config.json"),
        (["--segmenter", "sam", "--depth", "owner/other"], "owner/other"),
    ]:
        result = CliRunner().invoke(main, ["extract", str(videos), "--cache", str(tmp_path / "cache"), "--quiet", *args])
        assert result.exit_code == 1 and result.output.startswith("Error: ") and expect in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "cache" / "videos").exists()  # nothing was extracted
