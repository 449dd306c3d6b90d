"""``depthgait-prep``: the offline preprocessing pipeline (videos -> HDF5 caches -> aligned sequences)."""
from __future__ import annotations

import click

from cli.common import CONTEXT_SETTINGS, LazyGroup, version_option

COMMANDS = {
    "synth": "cli.prep_synth:synth",
    "extract": "cli.prep_extract:extract",
    "align": "cli.prep_align:align",
    "status": "cli.prep_align:status",
    "show": "cli.prep_align:show",
    "export": "cli.prep_interop:export",
    "import": "cli.prep_interop:import_",
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings=CONTEXT_SETTINGS)
@version_option
def main() -> None:
    """Turn RGB walking videos into aligned silhouette + depth sequences.

    \b
    Example:
      depthgait-prep synth videos/ --subjects 3 --views 000,090,180
      depthgait-prep extract videos/ --detector bgsub --segmenter bgsub
      depthgait-prep align
    """


if __name__ == "__main__":
    main()
