"""Shareable models: a trained run as a Hub-style folder, loaded by folder or Hub id, pushed through huggingface_hub."""
from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from click.testing import CliRunner
from test_data import write_toy_aligned

from cli.main import main as depthgait
from depthgait_model import hub
from depthgait_model.checkpoint import load_model
from depthgait_model.config import load_config
from depthgait_model.model import DepthGait
from depthgait_model.train import train


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("hub")
    aligned = write_toy_aligned(root / "aligned.h5", subjects=6, views=("090",))
    cfg = load_config("tiny").override({"train.batch_p": 3, "train.batch_k": 2, "train.frames": 4, "train.iterations": 4,
                                        "train.log_every": 2, "train.checkpoint_every": 4})
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        result = train(cfg, aligned, "synthetic", root / "run", device="cpu", quiet=True)
    finally:
        torch.set_num_threads(before)
    report = {"protocol": "synthetic", "kind": "cross-view", "metric": "euc", "exclude_identical_view": True,
              "ranks": [1], "views": ["090"], "conditions": ["NM"], "NM": {"per_view": [75.0], "mean": 75.0},
              "sequences": 6}
    (root / "test.json").write_text(json.dumps(report))
    return {"root": root, "aligned": aligned, "ckpt": result.checkpoint, "report": root / "test.json"}


def _embeddings(model: torch.nn.Module) -> torch.Tensor:
    torch.manual_seed(0)
    sil = (torch.rand(2, 6, 64, 44) > 0.5).float()
    return model.embed(sil, sil * 0.5)


def test_folder_round_trip_gives_the_same_embeddings(run: dict[str, Path]) -> None:
    folder = run["root"] / "shared"
    result = CliRunner().invoke(depthgait, ["push", "--checkpoint", str(run["ckpt"]), "you/depthgait-tiny",
                                            "--report", str(run["report"]), "--to-folder", str(folder)])
    assert result.exit_code == 0, result.output
    assert {p.name for p in folder.iterdir()} == {"config.json", "model.safetensors", "README.md", "test.json"}
    card = (folder / "README.md").read_text()
    assert card.startswith("---\nlibrary_name: depthgait") and 'DepthGait.from_pretrained("you/depthgait-tiny")' in card
    assert "recipe `tiny`" in card and "4 iterations of P x K = 3 x 2" in card  # the recipe
    assert f"aligned file `{run['aligned']}`, manifest `synthetic`" in card and "3 training subjects" in card  # the data
    assert "NM" in card and "75.0" in card  # the test table

    original, cfg, meta = load_model(run["ckpt"])
    shared = DepthGait.from_pretrained(folder)
    assert not shared.training and shared.classes == meta["classes"]
    assert torch.equal(_embeddings(original), _embeddings(shared))
    via_checkpoint_option, cfg2, meta2 = load_model(folder)  # what test/embed/identify --checkpoint FOLDER do
    assert cfg2 == cfg and meta2["iteration"] == meta["iteration"] == 4
    assert torch.equal(_embeddings(via_checkpoint_option), _embeddings(original))


def test_hub_id_from_the_cache_or_a_clear_offline_error(run: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    folder = hub.save_pretrained(run["ckpt"], run["root"] / "cache-snapshot", "you/depthgait-tiny")
    calls: list[dict] = []

    def cached_only(repo_id: str, **kwargs: object) -> str:
        calls.append({"repo_id": repo_id, **kwargs})
        if repo_id != "you/depthgait-tiny":
            raise FileNotFoundError("not in the cache")  # what huggingface_hub raises offline is an OSError too
        return str(folder)

    monkeypatch.setattr("huggingface_hub.snapshot_download", cached_only)
    model = DepthGait.from_pretrained("you/depthgait-tiny")
    assert torch.equal(_embeddings(model), _embeddings(load_model(run["ckpt"])[0]))
    assert calls[0]["local_files_only"] is True and calls[0]["allow_patterns"] == hub.HUB_FILES
    with pytest.raises(hub.PretrainedError) as err:
        DepthGait.from_pretrained("you/not-there")  # the tests run with HF_HUB_OFFLINE=1
    assert "'you/not-there' is no local file or folder, not in the Hugging Face cache, and HF_HUB_OFFLINE=1" in str(err.value)
    assert "`hf download you/not-there`" in str(err.value)
    assert len(calls) == 2  # no download was tried


def test_push_uploads_the_folder(run: dict[str, Path], monkeypatch: pytest.MonkeyPatch) -> None:
    from huggingface_hub import HfApi

    uploaded: dict[str, object] = {}
    monkeypatch.setattr("pipeline.extract.weights.why_no_download", lambda *a: None)
    monkeypatch.setattr(HfApi, "create_repo", lambda self, repo_id, **kw: uploaded.update(created=repo_id, **kw))

    def upload_folder(self: HfApi, folder_path: str, repo_id: str, **kw: object) -> str:
        uploaded.update(files=sorted(p.name for p in Path(folder_path).iterdir()), repo=repo_id)
        return "https://huggingface.co/you/depthgait-tiny/commit/abc"

    monkeypatch.setattr(HfApi, "upload_folder", upload_folder)
    result = CliRunner().invoke(depthgait, ["push", "--checkpoint", str(run["ckpt"]), "you/depthgait-tiny", "--private"])
    assert result.exit_code == 0, result.output
    assert uploaded["created"] == "you/depthgait-tiny" and uploaded["private"] is True
    assert uploaded["files"] == ["README.md", "config.json", "model.safetensors"]  # no test.json beside this ckpt
    assert "commit/abc" in result.output


def test_push_offline_and_bad_ids_are_one_line(run: dict[str, Path]) -> None:
    offline = CliRunner().invoke(depthgait, ["push", "--checkpoint", str(run["ckpt"]), "you/depthgait-tiny"])
    assert offline.exit_code == 1 and "HF_HUB_OFFLINE=1" in offline.output and "--to-folder" in offline.output
    bad = CliRunner().invoke(depthgait, ["push", "--checkpoint", str(run["ckpt"]), "no-owner"])
    assert bad.exit_code == 2 and "not a Hub repo id" in bad.output


def test_a_run_folder_is_not_a_model_folder(run: dict[str, Path]) -> None:
    with pytest.raises(hub.PretrainedError, match=r"not a depthgait model folder .* pass .*ckpt.pt"):
        load_model(run["ckpt"].parent)
    result = CliRunner().invoke(depthgait, ["test", "--checkpoint", str(run["ckpt"].parent), "--data", str(run["aligned"])])
    assert result.exit_code == 1 and "Traceback" not in result.output and "ckpt.pt" in result.output
