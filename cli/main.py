"""``depthgait``: train and evaluate the DepthGait fusion network, and use it on new videos."""
from __future__ import annotations

import click

from cli.common import CONTEXT_SETTINGS, LazyGroup, version_option

COMMANDS = {
    "train": "cli.model_train:train",
    "test": "cli.model_eval:test",
    "evaluate": "cli.model_eval:evaluate",
    "embed": "cli.model_infer:embed",
    "identify": "cli.model_infer:identify",
    "convert": "cli.model_convert:convert",
    "push": "cli.model_push:push",
}


@click.group(cls=LazyGroup, lazy=COMMANDS, context_settings=CONTEXT_SETTINGS)
@version_option
def main() -> None:
    """Train, test and use the DepthGait silhouette + depth gait-recognition model.

    \b
    Example:
      depthgait train --data cache/aligned.h5 --manifest casia-b --config small-cpu
      depthgait test --checkpoint runs/small-cpu/ckpt.pt --manifest casia-b
    """


if __name__ == "__main__":
    main()
