"""The README's examples are real: the Python API snippet runs, the manifest and CSV examples load, every
command and option it quotes exists."""
from __future__ import annotations

import os
import re
import shlex
import subprocess
import sys
from pathlib import Path

import click

from cli.main import main as depthgait
from cli.prep import main as depthgait_prep

REPO = Path(__file__).resolve().parent.parent
README = (REPO / "README.md").read_text()


def section(title: str) -> str:
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start:end if end > 0 else None]


def fenced(text: str, language: str) -> list[str]:
    return re.findall(rf"```{language}\n(.*?)\n```", text, re.DOTALL)


def test_python_api_snippet_runs(tmp_path: Path) -> None:
    (code,) = fenced(section("Python API"), "python")
    env = {**os.environ, "PYTHONPATH": str(REPO), "TQDM_DISABLE": "1"}
    run = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr[-3000:]
    out = run.stdout
    assert "40 videos: 40 extracted, 0 already done, 0 failed" in out, out
    assert "wrote api-demo/cache/aligned.h5: 40 sequences" in out
    assert "trained 20 iterations" in out
    assert "closest: [('004', 0.0)" in out  # the probe's own sequence is in the gallery: distance 0, rank 1
    nm = float(re.search(r"rank-1 NM: ([\d.]+)%", out).group(1))
    assert 0.0 <= nm <= 100.0
    assert "shared: ['README.md', 'config.json', 'model.safetensors', 'test.json']" in out
    assert (tmp_path / "api-demo" / "run" / "ckpt.pt").is_file()


def test_manifest_and_csv_examples_load(tmp_path: Path) -> None:
    from pipeline.manifest import SequenceId, load_manifest, read_identity_csv

    text = section("Bring your own data")
    (manifest_yaml,) = fenced(text, "yaml")
    (table,) = fenced(text, "csv")
    (tmp_path / "my-gait-set.yaml").write_text(manifest_yaml)
    manifest = load_manifest(tmp_path / "my-gait-set.yaml")
    assert manifest.identify("x/001_nm-05_090.mp4") == SequenceId("001", "nm-05", "090")
    assert manifest.split_subjects(["001", "050", "051", "080", "081"]) == (["001", "050"], ["051", "080"])
    assert manifest.protocol.probes == {"NM": ("nm-05",), "BG": ("bg-01",), "CL": ("cl-01",)}
    (tmp_path / "videos").mkdir()
    (tmp_path / "videos" / "identities.csv").write_text(table + "\n")
    rows = read_identity_csv(tmp_path / "videos" / "identities.csv")
    assert rows[(tmp_path / "videos" / "bob" / "with_bag_side.mp4").resolve()] == SequenceId("bob", "bg-01", "090")
    assert len(rows) == 3


def _quoted_commands() -> list[list[str]]:
    """Every `depthgait ...` / `depthgait-prep ...` the README quotes: in code spans and in bash blocks."""
    lines = [ln for block in fenced(README, "bash") for ln in block.replace("\\\n", " ").splitlines()]
    lines += re.findall(r"`((?:depthgait|depthgait-prep) [^`]+)`", README)
    commands = []
    for line in lines:
        line = line.split("#")[0].strip()
        if not re.match(r"^(depthgait|depthgait-prep) ", line):
            continue
        commands.append(shlex.split(line.replace("\\|", "|")))
    return commands


def test_every_quoted_command_and_option_exists() -> None:
    groups = {"depthgait": depthgait, "depthgait-prep": depthgait_prep}
    commands = _quoted_commands()
    assert len(commands) >= 25
    for argv in commands:
        group = groups[argv[0]]
        name = argv[1]
        if name.startswith("-"):
            assert name in ("--version", "-h", "--help"), argv
            continue
        command = group.get_command(click.Context(group), name)
        assert command is not None, f"README quotes a command that does not exist: {' '.join(argv)}"
        known = {opt for p in command.params if isinstance(p, click.Option) for opt in [*p.opts, *p.secondary_opts]}
        known |= {"-h", "--help"}
        for token in argv[2:]:
            option = token.strip("[]").split("=")[0]
            if option.startswith("-"):
                assert option in known, f"{argv[0]} {name} has no option {option} (README: {' '.join(argv)})"
