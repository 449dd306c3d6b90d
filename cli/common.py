"""Shared pieces of the click front ends: lazy sub-commands, shared options, error mapping.

The library does the work; commands parse, call one function and turn the library's own
errors into ``click.ClickException`` once, here, at the boundary.
"""
from __future__ import annotations

import functools
import importlib
from collections.abc import Callable
from typing import Any

import click

# Errors the library raises on purpose (bad input, missing weights, wrong files): shown as one line.
# OSError covers a full disk or a read-only folder (pipeline.atomic.FileWriteError names the file).
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (ValueError, OSError, KeyError)


class LazyGroup(click.Group):
    """A group whose sub-commands live in their own modules and are imported only when used.

    ``--help`` stays fast (no torch import) and each command's module has one job.
    ``lazy`` maps a command name to ``"module.path:attribute"``.
    """

    def __init__(self, *args: Any, lazy: dict[str, str] | None = None, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.lazy = dict(lazy or {})

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(super().list_commands(ctx)) | set(self.lazy))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.lazy:
            module_name, attr = self.lazy[name].split(":")
            try:
                module = importlib.import_module(module_name)
            except ModuleNotFoundError as exc:
                if exc.name != module_name:
                    raise  # a dependency of the command is missing: show the real cause
                raise click.ClickException(f"command {name!r} is not available in this install ({exc})") from exc
            return getattr(module, attr)
        return super().get_command(ctx, name)


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn the library's expected errors into a clean one-line ``Error: ...`` and exit code 1."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except EXPECTED_ERRORS as exc:
            message = exc.args[0] if isinstance(exc, KeyError) and exc.args else str(exc)
            raise click.ClickException(str(message)) from exc

    return wrapper


quiet_option = click.option("--quiet", "-q", is_flag=True, help="Silence progress bars.")
device_option = click.option(
    "--device",
    type=click.Choice(["auto", "cpu", "cuda"]),
    default="auto",
    show_default=True,
    help="Where models run; auto picks CUDA when available.",
)
workers_option = click.option(
    "--workers", type=click.IntRange(1, 1024), default=1, show_default=True, help="Processes for CPU-bound work (joblib)."
)


def resolve_device(name: str) -> str:
    """``auto`` -> ``cuda`` when available else ``cpu``; ``cuda`` without a GPU is a clear error."""
    import torch

    if name == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if name == "cuda" and not torch.cuda.is_available():
        raise click.ClickException("--device cuda was asked for, but torch sees no CUDA GPU here")
    return name
