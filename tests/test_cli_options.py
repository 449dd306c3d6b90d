"""One CLI: the same options mean the same everywhere, -h/--version work, typos fail fast and say what is allowed."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click
import pytest
from click.testing import CliRunner

from cli.common import package_version
from cli.main import COMMANDS as MAIN_COMMANDS
from cli.main import main as depthgait
from cli.prep import COMMANDS as PREP_COMMANDS
from cli.prep import main as depthgait_prep

REPO = Path(__file__).resolve().parent.parent
ALL = [(depthgait_prep, n) for n in sorted(PREP_COMMANDS)] + [(depthgait, n) for n in sorted(MAIN_COMMANDS)]


def _command(group: click.Group, name: str) -> click.Command:
    command = group.get_command(click.Context(group), name)
    assert command is not None
    return command


def _option(command: click.Command, name: str) -> click.Option | None:
    return next((p for p in command.params if isinstance(p, click.Option) and name in p.opts), None)


def test_version_and_short_help_everywhere() -> None:
    runner = CliRunner()
    for group, prog in ((depthgait, "depthgait"), (depthgait_prep, "depthgait-prep")):
        result = runner.invoke(group, ["--version"], prog_name=prog)
        assert result.exit_code == 0 and result.output == f"{prog} {package_version()}\n"
        assert runner.invoke(group, ["-h"]).output == runner.invoke(group, ["--help"]).output
    for group, name in ALL:
        short = runner.invoke(group, [name, "-h"])
        assert short.exit_code == 0 and "Usage:" in short.output, (name, short.output)
        assert runner.invoke(group, [name, "--version"]).exit_code == 0
    assert package_version() != ""


@pytest.mark.parametrize(("group", "name"), ALL)
def test_every_option_has_help(group: click.Group, name: str) -> None:
    command = _command(group, name)
    missing = [p.opts[0] for p in command.params if isinstance(p, click.Option) and not p.help]
    assert not missing, f"{name}: options without help: {missing}"


def test_shared_options_mean_the_same_everywhere() -> None:
    commands = {name: _command(group, name) for group, name in ALL}
    devices = {n: _option(c, "--device") for n, c in commands.items() if _option(c, "--device")}
    assert len(devices) >= 6 and {o.default for o in devices.values()} == {"auto"}
    assert {tuple(o.type.choices) for o in devices.values()} == {("auto", "cpu", "cuda")}
    jsons = {n: _option(c, "--json") for n, c in commands.items() if _option(c, "--json")}
    assert {"test", "evaluate", "identify", "status", "train"} <= set(jsons)
    assert all(not o.is_flag and o.metavar == "FILE" for o in jsons.values())  # a file everywhere, never a flag
    datas = {n: _option(c, "--data") for n, c in commands.items() if _option(c, "--data")}
    assert {"train", "test", "export", "status", "show"} <= set(datas)
    for name, opt in datas.items():  # the same file: cache/aligned.h5, or CACHE/aligned.h5 where --cache is given
        assert str(opt.default) == "cache/aligned.h5" or "[default: CACHE/aligned.h5]" in opt.help, name
    quiet = [n for n, c in commands.items() if _option(c, "--quiet")]
    assert {"synth", "extract", "align", "export", "import", "train", "test", "evaluate", "embed", "identify"} <= set(quiet)
    assert all(_option(c, "-q") for n, c in commands.items() if n in quiet)


def test_identify_manifest_help_mentions_only_its_own_options() -> None:
    text = CliRunner().invoke(depthgait, ["identify", "--help"]).output
    manifest_help = text[text.index("--manifest"):].split("\n  -")[0]
    assert "--layout" not in manifest_help and "--layout" not in _option(_command(depthgait, "identify"), "--manifest").help


def test_typos_are_rejected_before_importing_torch(tmp_path: Path) -> None:
    """A typo in a recipe, a --set key, a data path or a checkpoint fails at once: torch is never imported."""
    aligned = tmp_path / "aligned.h5"
    aligned.write_bytes(b"")
    script = (
        "import sys\nfrom click.testing import CliRunner\nfrom cli.main import main\n"
        "for args in sys.argv[1:]:\n"
        "    r = CliRunner().invoke(main, args.split())\n"
        "    print(r.exit_code, r.output.replace('\\n', ' '))\n"
        "print('torch imported:', 'torch' in sys.modules)\n"
    )
    cases = [
        f"train --config casia-bb --data {aligned}",
        f"train --config tiny --set train.lrr=0.1 --data {aligned}",
        f"train --config tiny --set trian.lr=0.1 --data {aligned}",
        f"train --config tiny --set train=3 --data {aligned}",
        "train --config tiny --data nowhere.h5",
        f"train --config tiny --manifest nope --data {aligned}",
        f"test --checkpoint runs/nowhere/ckpt.pt --data {aligned}",
        f"identify --checkpoint ./nowhere --gallery g.npz {aligned}",
    ]
    out = subprocess.run([sys.executable, "-c", script, *cases], capture_output=True, text=True, cwd=REPO,
                         timeout=120, check=True).stdout.splitlines()
    assert out[-1] == "torch imported: False", out
    recipe, lrr, trian, section, data, manifest, test_ckpt, identify_ckpt = out[:-1]
    assert recipe.startswith("1 ") and "casia-bb" in recipe and "small-cpu" in recipe  # names the shipped recipes
    assert lrr.startswith("1 ") and "unknown key 'train.lrr'" in lrr and "train.lr," in lrr and "train.iterations" in lrr
    assert trian.startswith("1 ") and "valid keys: data, model, name, train" in trian
    assert section.startswith("1 ") and "'train' is a section" in section and "train.batch_p" in section
    assert data.startswith("1 ") and "nowhere.h5: no such aligned file" in data
    assert manifest.startswith("1 ") and "nope" in manifest
    assert test_ckpt.startswith("2 ") and "runs/nowhere/ckpt.pt: no such checkpoint file, model folder or Hub id" in test_ckpt
    assert identify_ckpt.startswith("2 ") and "./nowhere: no such checkpoint" in identify_ckpt


def test_gpu_recipe_on_a_cpu_is_a_warning(capsys: pytest.CaptureFixture[str]) -> None:
    from cli.model_train import warn_if_gpu_recipe_on_cpu
    from depthgait_model.config import load_config

    warn_if_gpu_recipe_on_cpu(load_config("casia-b"), "cpu")
    err = capsys.readouterr().err
    assert err.startswith("warning: recipe casia-b is a GPU recipe (60,000 iterations of 8 x 16 clips") and "small-cpu" in err
    warn_if_gpu_recipe_on_cpu(load_config("casia-b"), "cuda")
    warn_if_gpu_recipe_on_cpu(load_config("small-cpu"), "cpu")
    assert capsys.readouterr().err == ""


def test_export_of_nothing_is_an_error_and_writes_nothing(tmp_path: Path) -> None:
    from pipeline.formats.aligned import AlignedWriter

    empty = tmp_path / "empty.h5"
    with AlignedWriter(empty, settings={}):
        pass
    result = CliRunner().invoke(depthgait_prep, ["export", "--out", str(tmp_path / "og"), "--data", str(empty), "-q"])
    assert result.exit_code == 1 and "holds no sequences to export" in result.output, result.output
    assert not (tmp_path / "og" / "partition.json").exists()


def test_status_json_to_a_file_or_stdout(tmp_path: Path) -> None:
    cache = tmp_path / "cache"
    (cache / "videos").mkdir(parents=True)
    runner = CliRunner()
    to_file = runner.invoke(depthgait_prep, ["status", "--cache", str(cache), "--json", str(tmp_path / "s.json")])
    assert to_file.exit_code == 0, to_file.output
    report = json.loads((tmp_path / "s.json").read_text())
    assert report["videos_done"] == 0 and "videos" in to_file.output  # the text summary still prints
    to_stdout = runner.invoke(depthgait_prep, ["status", "--cache", str(cache), "--json", "-"])
    assert json.loads(to_stdout.output) == report  # only the JSON on standard output


def test_extract_prints_the_first_failures_with_reasons(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from cli import prep_extract
    from pipeline.errors import Failure
    from pipeline.extract.batch import ExtractSummary

    rows = [Failure(f"v{i:02d}.avi", "decode", f"v{i:02d}.avi: empty file") for i in range(7)]
    rows.insert(1, Failure("w.avi", "detect", "w.avi: only 2 frames", "warning"))
    summary = ExtractSummary(found=9, done=1, failed=7, warnings=1, rows=rows)
    monkeypatch.setattr("pipeline.extract.batch.run_extract", lambda *a, **k: summary)
    (tmp_path / "videos").mkdir()
    result = CliRunner().invoke(depthgait_prep, ["extract", str(tmp_path / "videos"), "--cache", str(tmp_path / "c")])
    assert result.exit_code == 1
    failed = [line for line in result.output.splitlines() if line.startswith("failed: ")]
    assert failed == [f"failed: v{i:02d}.avi: empty file" for i in range(prep_extract.SHOW_FAILURES)]
    assert f"... and 2 more in {tmp_path / 'c' / 'errors.jsonl'}" in result.output


def test_demo_shows_the_commands_a_user_types() -> None:
    from cli.demo import typed_command

    assert typed_command([sys.executable, "-m", "cli.prep", "synth", "demo/videos"]) == "depthgait-prep synth demo/videos"
    assert typed_command([sys.executable, "-m", "cli.main", "train", "--set", "a=[1, 2]"]) == "depthgait train --set 'a=[1, 2]'"


def test_json_dash_puts_only_json_on_stdout(capsys: pytest.CaptureFixture[str]) -> None:
    """``--json -`` for commands whose library writes the file itself (test, evaluate): the text goes to stderr."""
    from cli.common import echo_for, json_target

    with json_target(Path("-")) as target:
        assert target is not None and target.name == "report.json"
        echo_for(Path("-"))("the table")
        target.write_text('{"NM": 1}')
    out = capsys.readouterr()
    assert json.loads(out.out) == {"NM": 1} and out.err == "the table\n"
    with json_target(None) as none:
        echo_for(None)("text")
    assert none is None and capsys.readouterr().out == "text\n"


def test_demo_manifest_holds_out_the_last_subjects(tmp_path) -> None:
    """The demo's own split: 24 people -> 001-016 train, 017-024 test; protocol and naming as shipped."""
    from cli.demo import demo_manifest
    from pipeline.manifest import load_manifest

    manifest = load_manifest(demo_manifest(tmp_path, 24, 8))
    train, test = manifest.split_subjects(f"{i:03d}" for i in range(1, 25))
    assert train == [f"{i:03d}" for i in range(1, 17)] and test == [f"{i:03d}" for i in range(17, 25)]
    shipped = load_manifest("synthetic")
    assert manifest.protocol == shipped.protocol and manifest.identify("x/003-bg-01-090.avi").subject == "003"
