"""Every command of both front ends prints help with an example, without importing torch models."""
from __future__ import annotations

import pytest
from click.testing import CliRunner

from cli.main import COMMANDS as MAIN_COMMANDS
from cli.main import main as depthgait
from cli.prep import COMMANDS as PREP_COMMANDS
from cli.prep import main as depthgait_prep


@pytest.mark.parametrize(
    ("group", "name"),
    [(depthgait_prep, n) for n in sorted(PREP_COMMANDS)] + [(depthgait, n) for n in sorted(MAIN_COMMANDS)],
)
def test_every_command_has_help_with_an_example(group, name):
    result = CliRunner().invoke(group, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Example" in result.output, f"{name} --help has no example"
    assert "Usage:" in result.output


def test_groups_list_all_their_commands():
    for group, commands in ((depthgait_prep, PREP_COMMANDS), (depthgait, MAIN_COMMANDS)):
        result = CliRunner().invoke(group, ["--help"])
        assert result.exit_code == 0 and "Example" in result.output
        for name in commands:
            assert name in result.output


def test_unknown_command_is_a_usage_error():
    result = CliRunner().invoke(depthgait, ["trian"])
    assert result.exit_code == 2 and "No such command" in result.output
