"""Extract under faults: a full or read-only disk, damaged caches, killed runs, shared caches, odd videos.

The disk faults use a small tmpfs where the sandbox allows ``mount`` (the test runs as root, so
``chmod`` would not stop a write); elsewhere the write is made to fail with the same errno.
"""
from __future__ import annotations

import errno
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from pathlib import Path

import cv2
import h5py
import numpy as np
import pytest
from click.testing import CliRunner
from tiny_models import save_tiny_depth_anything

from pipeline.errors import Failure, append_failure, prune_failures, read_failures
from pipeline.extract.batch import run_extract
from pipeline.extract.claims import STALE_S, claim_path
from pipeline.extract.settings import ExtractSettings
from pipeline.formats.video_cache import (
    STALE,
    check_cache,
    list_caches,
    read_video_cache,
    temp_files,
)
from pipeline.synthetic.dataset import generate_dataset

REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def kit(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, ExtractSettings]:
    root = tmp_path_factory.mktemp("faults")
    generate_dataset(root / "videos", subjects=1, views=("090",), conditions=("nm-01", "bg-01"), frames=12,
                     size=(160, 120), quiet=True)
    depth = save_tiny_depth_anything(root / "depth")
    return root / "videos", ExtractSettings(depth=str(depth), depth_input_height=56, batch_size=4, threads=1)


@pytest.fixture(scope="module")
def done(kit: tuple[Path, ExtractSettings], tmp_path_factory: pytest.TempPathFactory) -> Path:
    videos, settings = kit
    cache = tmp_path_factory.mktemp("done") / "cache"
    assert run_extract(videos, cache, settings, "synthetic", quiet=True).done == 2
    return cache


def _mount_tmpfs(path: Path, size: str) -> bool:
    path.mkdir(parents=True, exist_ok=True)
    if shutil.which("mount") is None:
        return False
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)],
                          capture_output=True).returncode == 0


@pytest.fixture
def tmpfs(tmp_path: Path):
    """A 2 MB tmpfs, or None where mounting is not allowed."""
    mnt = tmp_path / "mnt"
    if not _mount_tmpfs(mnt, "2m"):
        yield None
        return
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _cli(videos: Path, cache: Path, settings: ExtractSettings) -> list[str]:
    return ["extract", str(videos), "--cache", str(cache), "--manifest", "synthetic", "--depth", settings.depth,
            "--batch-size", "4", "--threads", "1", "--device", "cpu", "--quiet"]


def _complete(cache: Path) -> None:
    """Every file under a final name is a complete cache; no temporary file is left."""
    assert all(check_cache(p) is None for p in list_caches(cache)), [check_cache(p) for p in list_caches(cache)]
    assert temp_files(cache) == []


# ---- disk faults ----------------------------------------------------------------------------------------
def test_full_disk_is_one_line_and_no_crash(kit, tmpfs, tmp_path, monkeypatch) -> None:
    videos, settings = kit
    if tmpfs is None:  # no mount here: every write of the cache file fails as a full disk would
        from cli.prep import main
        from pipeline.formats.storage import GuardedFile

        def full(self, data):
            self.error = self.error or OSError(errno.ENOSPC, "No space left on device")
            return len(data)

        monkeypatch.setattr(GuardedFile, "write", full)
        result = CliRunner().invoke(main, _cli(videos, tmp_path / "cache", settings))
        assert result.exit_code == 1 and "disk full" in result.output and "free of" in result.output, result.output
        _complete(tmp_path / "cache")
        return
    cache = tmpfs / "cache"
    cache.mkdir()
    free = shutil.disk_usage(tmpfs).free
    (tmpfs / "filler").write_bytes(b"\0" * (free - 28 * 1024))  # room for the probe and claim, not a cache
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.run([sys.executable, "-m", "cli.prep", *_cli(videos, cache, settings)], capture_output=True,
                          text=True, env=env, timeout=120)
    assert proc.returncode == 1, (proc.returncode, proc.stderr[-2000:])  # not 139 (a segfault at exit)
    assert "Traceback" not in proc.stderr
    line = proc.stderr.strip().splitlines()[-1]
    assert line.startswith("Error: cannot write to ") and "disk full" in line and "free of 2.0 MB" in line, line
    assert str(cache / "videos") in line
    _complete(cache)


def test_read_only_cache_is_one_line(kit, done, tmpfs, tmp_path, monkeypatch) -> None:
    from cli.prep import main

    videos, settings = kit
    if tmpfs is None:
        import pipeline.extract.batch as batch

        def read_only(*args, **kwargs):
            raise OSError(errno.EROFS, "Read-only file system")

        monkeypatch.setattr(batch.tempfile, "mkstemp", read_only)
        cache = tmp_path / "cache"
    else:
        cache = tmpfs / "cache"
        shutil.copytree(done, cache)
        (cache / "videos/001/bg-01/090.h5").unlink()  # one video still to do
        assert subprocess.run(["mount", "-o", "remount,ro", str(tmpfs)], capture_output=True).returncode == 0
    result = CliRunner().invoke(main, _cli(videos, cache, settings))
    assert result.exit_code == 1 and result.exception is None or isinstance(result.exception, SystemExit)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith(f"Error: cannot write to {cache}: read-only file system"), lines
    assert "free of" in lines[0]


# ---- damaged, stale, copied ------------------------------------------------------------------------------
def test_damaged_caches_are_redone(kit, done, tmp_path) -> None:
    videos, settings = kit
    cache = tmp_path / "cache"
    shutil.copytree(done, cache)
    first, second = list_caches(cache)
    with h5py.File(first, "a") as h5:
        del h5["depth"]  # a missing dataset
    data = second.read_bytes()
    second.write_bytes(data[: len(data) // 2])  # a cut file
    assert "depth missing" in check_cache(first) and "unreadable" in check_cache(second)
    summary = run_extract(videos, cache, settings, "synthetic", quiet=True)
    assert (summary.done, summary.redone, summary.skipped) == (2, 2, 0)
    _complete(cache)
    for a, b in zip(list_caches(cache), list_caches(done), strict=True):
        np.testing.assert_array_equal(read_video_cache(a).depth, read_video_cache(b).depth)
    with h5py.File(first, "a") as h5:  # a wrong dtype is damage too
        score = h5["score"][()]
        del h5["score"]
        h5["score"] = score.astype(np.float64)
    assert "score is float64" in check_cache(first)


def test_copied_dataset_is_not_extracted_again(kit, done, tmp_path) -> None:
    videos, settings = kit
    new_videos, new_cache = tmp_path / "videos", tmp_path / "cache"
    shutil.copytree(videos, new_videos, copy_function=shutil.copy)  # new mtimes, as cp -r gives
    shutil.copytree(done, new_cache, copy_function=shutil.copy)
    src = next(videos.glob("*.avi"))
    assert (new_videos / src.name).stat().st_mtime_ns != src.stat().st_mtime_ns
    again = run_extract(new_videos, new_cache, settings, "synthetic", quiet=True)
    assert (again.skipped, again.done) == (2, 0)
    with open(new_videos / src.name, "r+b") as f:  # a changed byte at the end is a changed video
        f.seek(-1, os.SEEK_END)
        last = f.read(1)
        f.seek(-1, os.SEEK_END)
        f.write(bytes([last[0] ^ 1]))
    assert run_extract(new_videos, new_cache, settings, "synthetic", quiet=True).done == 1


def test_version_1_files_still_read(done, tmp_path) -> None:
    """A cache written the old way (version 1: whole arrays at the end, per-frame chunks) reads the same."""
    record = read_video_cache(list_caches(done)[0])
    old = tmp_path / "v1.h5"
    with h5py.File(old, "w") as h5:
        h5.attrs.update({
            "format": "depthgait-extract", "version": 1, "video": record.video, "subject": record.subject,
            "condition": record.condition, "view": record.view, "fps": record.fps, "width": record.width,
            "height": record.height, "n_frames": record.n_frames, "fingerprint": "old-mtime-based",
            "settings": json.dumps(record.settings), "depth_near_is_large": record.depth_near_is_large,
        })
        for name in ("frames", "box", "score", "crop_box", "crop_size", "mask", "depth"):
            data = getattr(record, name)
            h5.create_dataset(name, data=data, chunks=(1, *data.shape[1:]), compression="gzip", shuffle=True)
    back = read_video_cache(old)
    for name in ("frames", "box", "score", "crop_box", "crop_size", "mask", "depth"):
        np.testing.assert_array_equal(getattr(back, name), getattr(record, name))
    assert check_cache(old) is None and check_cache(old, record.fingerprint) == STALE  # readable, but redone


# ---- shared caches ---------------------------------------------------------------------------------------
def test_claims_keep_two_runs_from_doing_one_video_twice(kit, tmp_path, monkeypatch) -> None:
    import pipeline.extract.batch as batch

    videos, settings = kit
    cache = tmp_path / "cache"
    calls: list[str] = []
    real = batch.extract_to_cache

    def counted(video, *args, **kwargs):
        calls.append(Path(video).name)
        time.sleep(0.3)  # both runs are inside their first video at the same time
        return real(video, *args, **kwargs)

    monkeypatch.setattr(batch, "extract_to_cache", counted)
    results = []
    runs = [threading.Thread(target=lambda: results.append(run_extract(videos, cache, settings, "synthetic", quiet=True)))
            for _ in range(2)]
    for r in runs:
        r.start()
    for r in runs:
        r.join()
    assert sorted(Counter(calls).values()) == [1, 1], calls  # each video done once, by one of the runs
    assert sum(s.done for s in results) == 2 and sum(s.done + s.claimed + s.skipped for s in results) == 4
    _complete(cache)
    assert not list(cache.glob("videos/*/*/*.claim"))
    # A live claim of another machine is respected; once stale (no heartbeat for STALE_S) it is taken over.
    target = list_caches(cache)[0]
    target.unlink()
    claim = claim_path(target)
    claim.write_text(json.dumps({"host": "other-machine", "pid": 1}))
    assert run_extract(videos, cache, settings, "synthetic", quiet=True).claimed == 1 and not target.exists()
    os.utime(claim, (time.time() - STALE_S - 1,) * 2)
    assert run_extract(videos, cache, settings, "synthetic", quiet=True).done == 1 and not claim.exists()


def _append_rows(cache: str, tag: str, n: int) -> None:
    for i in range(n):
        append_failure(cache, Failure(f"{tag}-{i}", "detect", "x" * 200))


def test_errors_log_keeps_every_row_while_another_process_prunes(tmp_path) -> None:
    import multiprocessing as mp

    cache = tmp_path / "cache"
    append_failure(cache, Failure("old", "decode", "to be pruned"))
    ctx = mp.get_context("fork")
    procs = [ctx.Process(target=_append_rows, args=(str(cache), tag, 150)) for tag in ("a", "b")]
    for p in procs:
        p.start()
    while any(p.is_alive() for p in procs):
        prune_failures(cache, {"old", "nothing"})
        append_failure(cache, Failure("old", "decode", "again"))
    for p in procs:
        p.join()
    items = Counter(f.item for f in read_failures(cache))
    assert sum(v for k, v in items.items() if k != "old") == 300  # nothing lost, nothing doubled
    assert all(items[f"{t}-{i}"] == 1 for t in "ab" for i in range(150)) and items["old"] == 1


# ---- processes -------------------------------------------------------------------------------------------
_PARENT = """
import multiprocessing as mp, os, sys, time
sys.path.insert(0, {repo!r})
from pipeline.extract.worker import die_with_parent

def work(parent):
    die_with_parent(parent)
    time.sleep(60)

if __name__ == "__main__":
    child = mp.get_context("spawn").Process(target=work, args=(os.getpid(),))
    child.start()
    print(child.pid, flush=True)
    time.sleep(60)
"""


def _gone(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().split(")")[-1].split()[0]
    except FileNotFoundError:
        return True
    return state in ("Z", "X")  # a zombie no one reaps is dead too


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl(PR_SET_PDEATHSIG) is Linux only")
def test_a_worker_dies_with_its_parent(tmp_path) -> None:
    script = tmp_path / "parent.py"
    script.write_text(_PARENT.format(repo=str(REPO)))
    parent = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, text=True)
    child = int(parent.stdout.readline())
    time.sleep(1.0)  # the child has armed itself
    assert not _gone(child)
    parent.send_signal(signal.SIGKILL)
    parent.wait()
    deadline = time.time() + 10
    while not _gone(child) and time.time() < deadline:
        time.sleep(0.1)
    assert _gone(child)


# ---- odd videos ------------------------------------------------------------------------------------------
def _write(path: Path, n: int, size: tuple[int, int]) -> bytes:
    w, h = size
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"PIM1"), 25, (w, h))
    for i in range(n):
        frame = np.full((h, w, 3), 90, np.uint8)
        cv2.rectangle(frame, (10 + 3 * i, h // 4), (30 + 3 * i, 3 * h // 4), (0, 0, 255), -1)
        writer.write(frame)
    writer.release()
    return path.read_bytes()


def test_a_frame_size_change_mid_stream_is_an_error(kit, tmp_path) -> None:
    pytest.importorskip("av")
    _, settings = kit
    src = tmp_path / "in"
    src.mkdir()
    both = _write(tmp_path / "a.mpg", 15, (160, 120)) + _write(tmp_path / "b.mpg", 15, (320, 240))
    (src / "001-nm-01-090.avi").write_bytes(both)  # MPEG program streams concatenate; the container is probed
    cache = tmp_path / "cache"
    summary = run_extract(src, cache, settings, quiet=True)
    assert summary.failed == 1 and not list_caches(cache)
    (row,) = [r for r in read_failures(cache) if r.level == "error"]
    assert row.stage == "decode" and "changes mid-stream (160x120 then 320x240)" in row.error


def test_status_reports_temp_files_and_claims(done, tmp_path) -> None:
    from pipeline.tools.status import cache_status

    cache = tmp_path / "cache"
    shutil.copytree(done, cache)
    (cache / "videos/001/nm-01/.tmp-090-abcd1234.h5").write_bytes(b"\0" * 2048)
    claim_path(cache / "videos/001/nm-01/090.h5").write_text(json.dumps({"host": "elsewhere", "pid": 7}))
    status = cache_status(cache)
    assert status.temp_files == 1 and status.temp_bytes == 2048 and status.claims_live == 1
    text = status.format()
    assert "1 temporary file(s)" in text and "swept by the next extract" in text and "1 video being extracted" in text


# ---- several videos in flight ----------------------------------------------------------------------------
def test_streams_batch_across_videos_and_write_the_same_bytes(kit, done, tmp_path) -> None:
    videos, settings = kit
    summary = run_extract(videos, tmp_path / "cache", settings, "synthetic", quiet=True, streams=2)
    assert (summary.done, summary.failed) == (2, 0)
    pairs = list(zip(list_caches(tmp_path / "cache"), list_caches(done), strict=True))
    for a, b in pairs:
        with h5py.File(a) as ha, h5py.File(b) as hb:
            for name in ("frames", "box", "crop_box", "crop_size", "mask", "depth"):
                assert ha[name][()].tobytes() == hb[name][()].tobytes(), name
