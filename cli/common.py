"""Shared pieces of the click front ends: lazy sub-commands, shared options, error mapping.

The library does the work; commands parse, call one function and turn the library's own
errors into ``click.ClickException`` once, here, at the boundary.
"""
from __future__ import annotations

import contextlib
import functools
import importlib
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import click

from pipeline.errors import DepthgaitError

# What is shown as one line: the library's own errors, and the operating system's (a missing file, a
# read-only folder, a full disk). Anything else is a bug and shows its traceback.
EXPECTED_ERRORS: tuple[type[BaseException], ...] = (DepthgaitError, FileNotFoundError, PermissionError, OSError)
DEBUG_ENV = "DEPTHGAIT_DEBUG"  # set to 1: every error shows its traceback
# -h as well as --help, on every group and command (sub-command contexts inherit it).
CONTEXT_SETTINGS: dict[str, Any] = {"help_option_names": ["-h", "--help"], "max_content_width": 100}
DEFAULT_DATA = Path("cache/aligned.h5")


def package_version() -> str:
    """The installed depthgait version (setup.cfg's), or ``unknown`` in a tree that was never installed."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("depthgait")
    except PackageNotFoundError:
        return "unknown"


# `python -m cli.main --version` names the program as the installed script does.
PROGRAMS = {"cli.main": "depthgait", "cli.prep": "depthgait-prep", "cli.demo": "depthgait demo"}


def _print_version(ctx: click.Context, _param: click.Parameter, value: bool) -> None:
    if value and not ctx.resilient_parsing:
        name = ctx.find_root().info_name or "depthgait"
        name = next((prog for module, prog in PROGRAMS.items() if module in name), name)
        click.echo(f"{name} {package_version()}")
        ctx.exit()


VERSION_OPTION: dict[str, Any] = {"is_flag": True, "expose_value": False, "is_eager": True, "callback": _print_version,
                                  "help": "Show the version and exit."}


def version_param() -> click.Option:
    """``--version`` as a parameter object, for the commands a ``LazyGroup`` loads."""
    return click.Option(["--version"], **VERSION_OPTION)


def version_option(func: Callable[..., Any]) -> Callable[..., Any]:
    """``--version`` as a decorator, for groups and stand-alone commands."""
    return click.option("--version", **VERSION_OPTION)(func)


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
            command: click.Command = getattr(module, attr)
            if not any(p.name == "version" for p in command.params):
                command.params.append(version_param())
            return command
        return super().get_command(ctx, name)


def error_line(exc: BaseException) -> str:
    """One line for an expected error; an OS error names its file when the message does not."""
    text = str(exc) or type(exc).__name__
    if isinstance(exc, OSError) and exc.filename and str(exc.filename) not in text:
        text = f"{exc.filename}: {text}"
    return " ".join(text.split())


def handle_errors(func: Callable[..., Any]) -> Callable[..., Any]:
    """Turn expected errors into a clean one-line ``Error: ...`` and exit code 1 (``DEPTHGAIT_DEBUG=1``
    re-raises them with their traceback)."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        try:
            return func(*args, **kwargs)
        except click.ClickException:
            raise
        except EXPECTED_ERRORS as exc:
            if os.environ.get(DEBUG_ENV, "") not in ("", "0"):
                raise
            raise click.ClickException(error_line(exc)) from exc

    return wrapper


quiet_option = click.option("--quiet", "-q", is_flag=True, help="Silence progress bars and status lines.")


def data_option(help_text: str = "Aligned file from `depthgait-prep align`.", default: Path | None = DEFAULT_DATA) -> Any:
    """``--data``: the aligned file a command reads, the same name and default everywhere."""
    return click.option("--data", type=click.Path(dir_okay=False, path_type=Path), default=default,
                        show_default=default is not None, help=help_text)


json_option = click.option(
    "--json", "json_path", type=click.Path(dir_okay=False, allow_dash=True, path_type=Path), default=None,
    metavar="FILE", help="Also write the result as JSON to FILE ('-': print only the JSON, to standard output).",
)


def check_checkpoint(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """``--checkpoint``: a file, a model folder or a Hub id (user/name); anything else fails before torch loads."""
    if value is None:
        return value
    from depthgait_model.hub import is_pretrained_name

    if not Path(value).is_file() and not is_pretrained_name(value):
        raise click.BadParameter(f"{value}: no such checkpoint file, model folder or Hub id (user/name)")
    return value


def checkpoint_option(help_text: str) -> Any:
    return click.option("--checkpoint", required=True, metavar="CKPT", callback=check_checkpoint, help=help_text)


def write_json(path: Path | None, data: Any) -> bool:
    """Write ``data`` for ``--json FILE`` (``-``: standard output); True when it went to standard output."""
    if path is None:
        return False
    text = json.dumps(data, indent=2) + "\n"
    if str(path) == "-":
        click.echo(text, nl=False)
        return True
    from pipeline.atomic import write_text_atomic

    write_text_atomic(path, text)
    return False


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
    """The library's one device policy (``pipeline.device``), its error as one CLI line."""
    from pipeline.device import resolve_device as resolve

    try:
        return resolve(name)
    except DepthgaitError as exc:
        raise click.ClickException(str(exc)) from exc


def extract_options(func: Callable[..., Any]) -> Callable[..., Any]:
    """The extract options that ``extract``, ``embed`` and ``identify`` share, with their defaults read
    from ``ExtractSettings()``; the command receives them as one ``extract_settings: ExtractSettings``."""
    from pipeline.extract.settings import DETECTORS, SEGMENTERS, TRACK_MODES, TRACKERS, ExtractSettings

    d = ExtractSettings()
    options = [
        click.option("--detector", type=click.Choice(DETECTORS), default=d.detector, show_default=True,
                     help="bgsub: background subtraction of a static camera (no weights); yolo: ultralytics YOLO."),
        click.option("--detector-weights", default=d.detector_weights, show_default=True, help="YOLO weights name or path."),
        click.option("--segmenter", type=click.Choice(SEGMENTERS), default=d.segmenter, show_default=True,
                     help="Silhouette inside the box: background subtraction, segment-anything, or YOLO-seg."),
        click.option("--sam", default=d.sam, show_default=True, help="SAM size (vit_b, vit_l, vit_h) or checkpoint path."),
        click.option("--seg-weights", default=d.seg_weights, show_default=True, help="YOLO-seg weights name or path."),
        click.option("--depth", default=d.depth, show_default=True,
                     help="Depth model: Hugging Face Hub id (from the local cache offline) or a local folder."),
        click.option("--depth-input-height", type=click.IntRange(14, 2048), default=d.depth_input_height,
                     help="Crop height fed to the depth model [default: its own input size, at most 266]."),
        click.option("--margin", type=click.FloatRange(0, 1), default=d.margin, show_default=True,
                     help="Share of the box size added on each side of the crop."),
        click.option("--threads", type=click.IntRange(1, 1024), default=d.threads, show_default=True,
                     help="Model threads per process, whatever --workers (the bytes of depth depend on it: keep it "
                          "fixed for a cache; --workers x --threads about the number of cores)."),
        click.option("--half/--no-half", default=d.half, show_default=True,
                     help="fp16 autocast on CUDA for detection, segmentation and depth (no effect on a CPU)."),
        click.option("--batch-size", type=click.IntRange(1, 4096), default=d.batch_size, show_default=True,
                     help="Frames per model call."),
        click.option("--tracks", type=click.Choice(TRACK_MODES), default=None,
                     help="longest: one walker per video; all: one sequence per person track (subject "
                          "<name>.<track>) [default: all with --layout footage, else longest]."),
        click.option("--tracker", type=click.Choice(TRACKERS), default=d.tracker, show_default=True,
                     help="ultralytics multi-object tracker used with --tracks all."),
        device_option,
    ]

    @functools.wraps(func)
    def wrapper(
        *args: Any, detector: str, detector_weights: str, segmenter: str, sam: str, seg_weights: str, depth: str,
        depth_input_height: int | None, margin: float, threads: int, half: bool, batch_size: int, tracks: str | None,
        tracker: str, device: str, **kwargs: Any,
    ) -> Any:
        settings = ExtractSettings(
            detector=detector, detector_weights=detector_weights, segmenter=segmenter, sam=sam,
            seg_weights=seg_weights, depth=depth, depth_input_height=depth_input_height, margin=margin,
            threads=threads, half=half, batch_size=batch_size, tracks=tracks, tracker=tracker,
            device=resolve_device(device),
        )
        return func(*args, extract_settings=settings, **kwargs)

    for option in reversed(options):
        wrapper = option(wrapper)
    return wrapper


@contextlib.contextmanager
def json_target(path: Path | None) -> Iterator[Path | None]:
    """A file path for a library that writes ``--json FILE`` itself; for ``-`` a temporary file printed at the end."""
    if path is None or str(path) != "-":
        yield path
        return
    with tempfile.TemporaryDirectory(prefix="depthgait-json-") as tmp:
        target = Path(tmp) / "report.json"
        yield target
        if target.is_file():
            click.echo(target.read_text(), nl=False)


def echo_for(json_path: Path | None) -> Callable[[str], None]:
    """Where a command's text goes: standard output, or standard error when the JSON takes standard output."""
    to_err = json_path is not None and str(json_path) == "-"
    return lambda message: click.echo(message, err=to_err)
