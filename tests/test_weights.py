"""A missing weight is one clear message (what, how to fetch it, where to put it), fast, offline."""

from __future__ import annotations

import socket
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner

from pipeline.extract import weights
from pipeline.extract.weights import (
    MissingWeightsError,
    host_reachable,
    resolve_hf_model,
    resolve_sam_checkpoint,
    resolve_yolo_weights,
    sam_type_from_name,
)


@pytest.fixture(autouse=True)
def no_weights_anywhere(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """No weight folder of this machine may satisfy a lookup: every search place is an empty temp folder."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    monkeypatch.setenv("DEPTHGAIT_WEIGHTS", str(tmp_path / "weights-env"))
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hf"))
    monkeypatch.setattr("pipeline.extract.weights._ultralytics_weights_dir", lambda: tmp_path / "ul")
    host_reachable.cache_clear()
    yield tmp_path
    host_reachable.cache_clear()


OFFLINE_SWITCHES = ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", "YOLO_OFFLINE", "DEPTHGAIT_OFFLINE")


@pytest.fixture
def no_network(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """A user who never set an offline switch, on a machine without network: every connection fails."""
    for name in OFFLINE_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    for name in ("HTTPS_PROXY", "https_proxy", "ALL_PROXY"):
        monkeypatch.delenv(name, raising=False)
    attempts: list[object] = []

    def refuse(address: object, *args: object, **kwargs: object) -> None:
        attempts.append(address)
        raise OSError(101, "Network is unreachable")

    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket.socket, "connect", lambda self, address: refuse(address))
    return attempts


@pytest.fixture
def online(monkeypatch: pytest.MonkeyPatch) -> None:
    """No offline switch and every host reachable; the downloads themselves are faked by each test."""
    for name in OFFLINE_SWITCHES:
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(weights, "host_reachable", lambda host, port=443, timeout=2.0: True)


def test_hub_model_not_cached_fails_fast_offline() -> None:
    with pytest.raises(MissingWeightsError) as err:
        resolve_hf_model("depth-anything/Depth-Anything-V2-Small-hf")
    msg = str(err.value)
    assert "depth-anything/Depth-Anything-V2-Small-hf" in msg and "HF_HUB_OFFLINE=1" in msg
    assert "hf download depth-anything/Depth-Anything-V2-Small-hf" in msg and "--depth" in msg
    assert "huggingface-cli" not in msg  # not a command of the installed huggingface_hub


def test_hub_model_resolves_when_online_or_local(tmp_path: Path, online: None) -> None:
    assert resolve_hf_model("owner/model") == "owner/model"  # from_pretrained downloads it
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
        ([], "hf download depth-anything/Depth-Anything-V2-Small-hf"),
        (["--depth", str(tmp_path), "--detector", "yolo"], "no config.json"),
        (["--segmenter", "sam", "--depth", "owner/other"], "owner/other"),
    ]:
        result = CliRunner().invoke(main, ["extract", str(videos), "--cache", str(tmp_path / "cache"), "--quiet", *args])
        assert result.exit_code == 1 and result.output.startswith("Error: ") and expect in result.output, result.output
        assert "Traceback" not in result.output
    assert not (tmp_path / "cache" / "videos").exists()  # nothing was extracted


def test_no_network_is_found_at_once_and_named(no_network: list[object]) -> None:
    """Without any offline switch, a missing weight still fails at once when the host cannot be reached."""
    with pytest.raises(MissingWeightsError) as err:
        resolve_hf_model("depth-anything/Depth-Anything-V2-Small-hf")
    assert "huggingface.co cannot be reached" in str(err.value)
    assert "`hf download depth-anything/Depth-Anything-V2-Small-hf`" in str(err.value)
    with pytest.raises(MissingWeightsError, match=r"'yolo11n.pt' not found .* github.com cannot be reached.*releases/download"):
        resolve_yolo_weights("yolo11n.pt")
    with pytest.raises(MissingWeightsError, match=r"sam_vit_b_01ec64.pth .* dl.fbaipublicfiles.com cannot be reached"):
        resolve_sam_checkpoint("vit_b")
    assert {a[0] for a in no_network if isinstance(a, tuple)} == {"huggingface.co", "github.com", "dl.fbaipublicfiles.com"}
    with pytest.raises(MissingWeightsError, match="not found"):
        resolve_yolo_weights("my-detector.pt")  # not an official name: nothing to download, no probe
    assert len(no_network) == 3  # one probe per host per process


def test_probe_goes_through_the_proxy_and_gives_up_on_a_hang(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HTTPS_PROXY", "http://proxy.example:8080")
    monkeypatch.delenv("NO_PROXY", raising=False)
    assert weights._proxy_for("huggingface.co") == ("proxy.example", 8080)
    monkeypatch.setenv("NO_PROXY", "localhost,.huggingface.co")
    assert weights._proxy_for("huggingface.co") is None and weights._proxy_for("github.com") == ("proxy.example", 8080)
    release = threading.Event()

    def black_hole(*args: object, **kwargs: object) -> None:  # a resolver or route that never answers
        release.wait(30)
        raise OSError("timed out")

    monkeypatch.setattr(socket, "create_connection", black_hole)
    assert host_reachable("hang.example", 443, 0.1) is False
    release.set()


def test_online_downloads_the_ecosystem_way(tmp_path: Path, online: None, monkeypatch: pytest.MonkeyPatch) -> None:
    """Online, an official YOLO name goes through ultralytics' own downloader into its weights_dir, a SAM size
    into torch's hub cache from its official URL."""
    import ultralytics.utils.downloads as ul_downloads

    fetched: list[str] = []

    def fake_safe_download(url: str, file: Path, **kwargs: object) -> None:
        fetched.append(url)
        Path(file).write_bytes(b"weights")

    monkeypatch.setattr(ul_downloads, "safe_download", fake_safe_download)
    assert resolve_yolo_weights("yolo11n-seg.pt") == str(tmp_path / "ul" / "yolo11n-seg.pt")
    assert fetched == ["https://github.com/ultralytics/assets/releases/download/v8.4.0/yolo11n-seg.pt"]
    with pytest.raises(MissingWeightsError, match="'best.pt' not found"):
        resolve_yolo_weights("best.pt")  # not an ultralytics asset: no download is tried
    assert len(fetched) == 1

    def fake_torch_download(url: str, dst: str, progress: bool = True) -> None:
        fetched.append(url)
        Path(dst).write_bytes(b"sam")

    monkeypatch.setattr(torch.hub, "download_url_to_file", fake_torch_download)
    hub = tmp_path / "torch" / "hub" / "checkpoints"
    assert resolve_sam_checkpoint("vit_h") == ("vit_h", hub / "sam_vit_h_4b8939.pth")
    assert fetched[-1] == "https://dl.fbaipublicfiles.com/segment_anything/sam_vit_h_4b8939.pth"
    assert resolve_sam_checkpoint("vit_h") == ("vit_h", hub / "sam_vit_h_4b8939.pth") and len(fetched) == 2  # cached


def test_cli_without_offline_switches_or_network(tmp_path: Path, no_network: list[object]) -> None:
    """The issue's user: no offline switch, no network. Each missing weight is one short line, no traceback."""
    from cli.prep import main

    videos = tmp_path / "videos"
    videos.mkdir()
    (videos / "001-nm-01-090.avi").write_bytes(b"x")
    for args, expect in [
        ([], "huggingface.co cannot be reached"),
        (["--depth", "depthgait/synthdepth-small", "--detector", "yolo"], "github.com cannot be reached"),
    ]:
        result = CliRunner().invoke(main, ["extract", str(videos), "--cache", str(tmp_path / "cache"), "--quiet", *args])
        assert result.exit_code == 1 and result.output.startswith("Error: ") and expect in result.output, result.output
        assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 4
