"""Progress in a log is short plain lines; on a terminal it is tqdm's bar."""
from __future__ import annotations

import io
from pathlib import Path

import pytest
from tqdm import tqdm

from pipeline.progress import MAX_LINE, LineProgress, progress


class FakeTerminal(io.StringIO):
    def isatty(self) -> bool:
        return True


@pytest.fixture(autouse=True)
def progress_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("TQDM_DISABLE", raising=False)  # conftest silences bars; these tests need them
    monkeypatch.delenv("DEPTHGAIT_PROGRESS", raising=False)


def assert_log_friendly(text: str) -> list[str]:
    assert "\r" not in text and "\x1b" not in text
    lines = text.splitlines()
    assert all(len(line) < 1000 for line in lines)
    return lines


def test_a_file_gets_plain_status_lines() -> None:
    out = io.StringIO()
    bar = progress(range(4), desc="align", unit="seq", file=out, interval=0)
    assert isinstance(bar, LineProgress)
    assert list(bar) == [0, 1, 2, 3]
    lines = assert_log_friendly(out.getvalue())
    assert len(lines) == 5  # one per update (interval 0) and the closing one
    assert lines[0].startswith("align: 1/4 seq (25%), ") and lines[0].endswith(" left")
    assert lines[-1].startswith("align: 4/4 seq (100%), ") and " in 00:00" in lines[-1]


def test_update_postfix_and_context_manager() -> None:
    out = io.StringIO()
    with progress(total=10, desc="train", unit="it", initial=4, file=out, interval=3600) as bar:
        for _ in range(6):
            bar.update(1)
        bar.set_postfix(loss="0.123", lr="0.1")
        bar.set_postfix(loss="0.100", lr="0.01", note="x" * 5000)
    lines = assert_log_friendly(out.getvalue())
    assert len(lines) == 1  # nothing between (a long interval), one line at the end
    assert lines[0].startswith("train: 10/10 it (100%)") and "loss=0.100, lr=0.01" in lines[0]
    assert len(lines[0]) == MAX_LINE and lines[0].endswith("...")


def test_unknown_total_counts_only() -> None:
    out = io.StringIO()
    bar = progress(iter("abc"), desc="videos", unit="video", file=out)
    assert list(bar) == ["a", "b", "c"]
    assert out.getvalue().startswith("videos: 3 video, ") and "%" not in out.getvalue()


def test_quiet_inner_and_switched_off_write_nothing(monkeypatch: pytest.MonkeyPatch) -> None:
    out = io.StringIO()
    list(progress(range(3), file=out, disable=True))
    list(progress(range(3), file=out, leave=False))  # a quick inner loop leaves nothing in a log
    monkeypatch.setenv("DEPTHGAIT_PROGRESS", "off")
    list(progress(range(3), file=out))
    assert out.getvalue() == ""
    monkeypatch.setenv("DEPTHGAIT_PROGRESS", "lines")
    assert isinstance(progress(range(3), file=FakeTerminal()), LineProgress)


def test_a_terminal_gets_the_bar() -> None:
    term = FakeTerminal()
    bar = progress(range(3), desc="embed", file=term, dynamic_ncols=True)
    assert isinstance(bar, tqdm)
    list(bar)
    assert "\r" in term.getvalue() and "3/3" in term.getvalue()  # tqdm's redraws, as on a real terminal


def test_a_library_loop_in_a_log(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A real caller (OpenGait export's loop through ``progress``) writes plain lines to a non-tty stderr."""
    import numpy as np

    from pipeline.formats.aligned import AlignedSequence, AlignedWriter
    from pipeline.interop.opengait import export_opengait
    from pipeline.manifest import SequenceId, load_manifest

    aligned = tmp_path / "aligned.h5"
    sil = np.zeros((6, 64, 64), np.uint8)
    sil[:, 10:50, 20:40] = 255
    with AlignedWriter(aligned, settings={}) as writer:
        for subject in ("001", "002"):
            writer.add(AlignedSequence(SequenceId(subject, "nm-01", "090"), sil, sil // 2, np.arange(6, dtype=np.int32)))
    export_opengait(aligned, tmp_path / "og", load_manifest("casia-b"), None, quiet=False)
    err = capsys.readouterr().err
    lines = assert_log_friendly(err)
    assert any(line.startswith("export: 2/2 seq (100%)") for line in lines), err
