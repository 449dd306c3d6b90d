"""Progress that fits where it is written: a bar on a terminal, short status lines in a log.

tqdm redraws its bar with carriage returns (and, for nested bars, cursor-up codes). On a terminal
that is a bar; in a file (CI, ``nohup``, a cluster job) it is one line tens of thousands of
characters long. ``progress()`` returns a tqdm bar when the stream is a terminal and otherwise a
``LineProgress``, which writes one plain line (counts, rate, time left) every ``interval`` seconds
and one at the end. Both have tqdm's everyday API: iteration, ``update``, ``set_postfix``,
``set_description``, ``close`` and ``with``.

``DEPTHGAIT_PROGRESS=bar|lines|off`` overrides the choice; ``TQDM_DISABLE=1`` silences both.
"""
from __future__ import annotations

import os
import sys
import time
from collections.abc import Iterable, Iterator
from typing import IO, Any

PROGRESS_ENV = "DEPTHGAIT_PROGRESS"
DEFAULT_INTERVAL = 5.0  # seconds between status lines in a log
MAX_LINE = 200  # a status line never grows past this (long postfixes are cut)


def _env_true(name: str) -> bool:
    return os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}


def _duration(seconds: float) -> str:
    seconds = max(0, int(round(seconds)))
    hours, rest = divmod(seconds, 3600)
    return f"{hours}:{rest // 60:02d}:{rest % 60:02d}" if hours else f"{rest // 60:02d}:{rest % 60:02d}"


class LineProgress:
    """tqdm's API, written as one plain status line every ``interval`` seconds and one when closed.

    ``leave=False`` (a bar inside another) writes its closing line only when it wrote any before, so a
    quick inner loop leaves nothing in the log.
    """

    def __init__(
        self, iterable: Iterable[Any] | None = None, total: float | None = None, desc: str = "", unit: str = "it",
        disable: bool = False, initial: float = 0, leave: bool = True, file: IO[str] | None = None,
        interval: float = DEFAULT_INTERVAL,
    ) -> None:
        if total is None and iterable is not None and hasattr(iterable, "__len__"):
            total = len(iterable)  # type: ignore[arg-type]
        self.iterable, self.total, self.desc, self.unit = iterable, total, desc, unit
        self.disable, self.leave, self.interval = disable, leave, interval
        self.file = file if file is not None else sys.stderr
        self.n = self.initial = initial
        self.postfix = ""
        self.start = self.last_print = time.monotonic()
        self.lines_written = 0
        self.closed = False

    # -- tqdm's API --------------------------------------------------------------------------------

    def __iter__(self) -> Iterator[Any]:
        if self.iterable is None:
            raise TypeError("LineProgress without an iterable cannot be iterated; use update()")
        try:
            for item in self.iterable:
                yield item
                self.update(1)
        finally:
            self.close()

    def __enter__(self) -> LineProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def update(self, n: float = 1) -> None:
        self.n += n
        if not self.disable and time.monotonic() - self.last_print >= self.interval:
            self._write()

    def set_postfix(self, ordered_dict: dict[str, Any] | None = None, refresh: bool = True, **kwargs: Any) -> None:
        items = {**(ordered_dict or {}), **kwargs}
        self.postfix = ", ".join(f"{k}={v}" for k, v in items.items())

    def set_postfix_str(self, s: str = "", refresh: bool = True) -> None:
        self.postfix = s

    def set_description(self, desc: str | None = None, refresh: bool = True) -> None:
        self.desc = desc or ""

    def refresh(self) -> None:
        """Nothing to redraw: lines are written on their own schedule."""

    def write(self, s: str, file: IO[str] | None = None, end: str = "\n") -> None:
        """A message between status lines (tqdm's ``write``): shown even when the bar is disabled."""
        print(s, file=file or self.file, end=end, flush=True)

    def close(self) -> None:
        if self.closed:
            return
        self.closed = True
        if not self.disable and (self.leave or self.lines_written):
            self._write(final=True)

    # -- the line --------------------------------------------------------------------------------------

    def format_line(self, final: bool = False) -> str:
        """``extract: 40/1000 video (4%), 2.1 video/s, 07:37 left`` (at the end: ``..., in 01:05``)."""
        elapsed = time.monotonic() - self.start
        done = self.n - self.initial
        rate = done / elapsed if elapsed > 0 else 0.0
        count = f"{self.n:g}/{self.total:g} {self.unit}" if self.total else f"{self.n:g} {self.unit}"
        parts = [f"{self.desc}: {count}" if self.desc else count]
        if self.total:
            parts[0] += f" ({100 * self.n / self.total:.0f}%)"
        parts.append(f"{rate:.3g} {self.unit}/s")
        if final:
            parts.append(f"in {_duration(elapsed)}")
        elif self.total and rate > 0:
            parts.append(f"{_duration((self.total - self.n) / rate)} left")
        if self.postfix:
            parts.append(self.postfix)
        line = ", ".join(parts)
        return line if len(line) <= MAX_LINE else line[: MAX_LINE - 3] + "..."

    def _write(self, final: bool = False) -> None:
        self.file.write(self.format_line(final) + "\n")
        self.file.flush()
        self.last_print = time.monotonic()
        self.lines_written += 1


def _is_terminal(stream: IO[str]) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):  # a closed or odd stream
        return False


def progress(
    iterable: Iterable[Any] | None = None, total: float | None = None, desc: str = "", unit: str = "it",
    disable: bool = False, initial: float = 0, leave: bool = True, file: IO[str] | None = None,
    interval: float | None = None, **tqdm_kwargs: Any,
) -> Any:
    """A tqdm bar on a terminal, a ``LineProgress`` elsewhere (a pipe, a file, a notebook's captured stream).

    Drop-in for ``tqdm(...)`` with the arguments depthgait uses; other tqdm arguments (``position``,
    ``dynamic_ncols``) reach the bar and are ignored by the lines. ``interval``: seconds between lines.
    """
    stream = file if file is not None else sys.stderr
    mode = os.environ.get(PROGRESS_ENV, "").strip().lower()
    disable = disable or mode == "off" or _env_true("TQDM_DISABLE")
    if mode == "bar" or (mode != "lines" and _is_terminal(stream)):
        from tqdm import tqdm

        return tqdm(iterable, total=total, desc=desc, unit=unit, disable=disable, initial=initial, leave=leave,
                    file=stream, **tqdm_kwargs)
    return LineProgress(iterable, total=total, desc=desc, unit=unit, disable=disable, initial=initial, leave=leave,
                        file=stream, interval=DEFAULT_INTERVAL if interval is None else interval)
