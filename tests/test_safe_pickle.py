"""The restricted unpickler: numpy arrays and containers load, anything that calls code is refused."""
from __future__ import annotations

import json
import os
import pickle
import pickletools
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from pipeline.interop.safe_pickle import PickleLoadError, UnsafePickleError, dump_array, load_pickle, loads


class _RunsCommand:
    """What a crafted pkl does: its reduce calls os.system on load."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (os.system, (f"touch {self.marker}",))


def _globals_of(data: bytes) -> set[str]:
    """Module and names a pickle refers to (the strings pushed for STACK_GLOBAL, or GLOBAL args)."""
    found = set()
    for op, arg, _ in pickletools.genops(data):
        if op.name == "GLOBAL" or (op.name.endswith("UNICODE") and isinstance(arg, str)):
            found.add(arg)
    return found


@pytest.mark.parametrize("protocol", [0, 2, 3, 4, 5])
def test_arrays_and_containers_load_in_every_protocol(protocol: int) -> None:
    rng = np.random.default_rng(0)
    sil = rng.integers(0, 256, size=(7, 64, 64), dtype=np.uint8)
    value = {"sil": sil, "extra": [np.float32(2.5), (1, "a"), [3, None, 1.5]], "f": rng.random((2, 3))}
    back = loads(pickle.dumps(value, protocol=protocol))
    assert back["sil"].dtype == np.uint8 and np.array_equal(back["sil"], sil)
    assert np.array_equal(back["f"], value["f"])
    assert back["extra"][0] == np.float32(2.5) and back["extra"][1] == (1, "a") and back["extra"][2] == [3, None, 1.5]


def test_numpy1_pickle_names_are_accepted() -> None:
    # A numpy 1.x pickle names numpy.core.multiarray; protocol 0 is text, so rename in place.
    sil = np.arange(2 * 64 * 64, dtype=np.uint32).reshape(2, 64, 64).astype(np.uint8)
    data = pickle.dumps(sil, protocol=0)
    assert b"numpy._core" in data
    back = loads(data.replace(b"numpy._core", b"numpy.core"))
    assert np.array_equal(back, sil)


def test_code_calling_pickle_is_refused_and_not_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    path = tmp_path / "evil.pkl"
    path.write_bytes(pickle.dumps(_RunsCommand(marker)))
    with pytest.raises(UnsafePickleError) as info:
        load_pickle(path)
    message = str(info.value)
    assert str(path) in message and "system" in message and "refused" in message
    assert not marker.exists()
    # the same bytes through the plain unpickler do run it: the test pickle is really dangerous
    pickle.loads(path.read_bytes())
    assert marker.exists()


def test_object_arrays_and_other_classes_are_refused(tmp_path: Path) -> None:
    with pytest.raises(UnsafePickleError, match="object-dtype"):
        loads(pickle.dumps(np.array([1, "x"], dtype=object)))
    with pytest.raises(UnsafePickleError, match="pathlib"):
        loads(pickle.dumps(Path("/etc/passwd")))


def test_broken_files_name_the_file(tmp_path: Path) -> None:
    good = tmp_path / "good.pkl"
    dump_array(np.zeros((3, 64, 64), np.uint8), good)
    cut = tmp_path / "cut.pkl"
    cut.write_bytes(good.read_bytes()[:80])
    with pytest.raises(PickleLoadError, match="cut.pkl: not a readable pickle"):
        load_pickle(cut)
    with pytest.raises(PickleLoadError, match="missing.pkl: cannot read"):
        load_pickle(tmp_path / "missing.pkl")


def test_dump_array_is_version_neutral_and_loads_writable(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    depth = rng.integers(0, 256, size=(5, 64, 64), dtype=np.uint8)
    path = tmp_path / "d.pkl"
    dump_array(depth[:, ::-1], path)  # a non-contiguous view is written as its values
    data = path.read_bytes()
    # only numpy.ndarray and builtins.bytearray: loadable by numpy 1.x and 2.x (no numpy._core)
    assert not any("_core" in name or "numpy.core" in name for name in _globals_of(data))
    for back in (pickle.loads(data), load_pickle(path)):  # OpenGait uses plain pickle.load
        assert back.dtype == np.uint8 and back.shape == (5, 64, 64)
        assert np.array_equal(back, depth[:, ::-1])
        assert back.flags.writeable
    assert not list(tmp_path.glob(".tmp-*"))


# ---- the restricted machine: every legitimate form, and everything hostile refused ---------------
CORPUS = Path(__file__).parent / "data" / "hostile_pickles"


@pytest.mark.parametrize("protocol", [0, 2, 3, 4, 5])
def test_every_numeric_array_form_loads_exactly(protocol: int) -> None:
    rng = np.random.default_rng(protocol)
    arrays = [
        rng.integers(0, 256, (4, 64, 64), dtype=np.uint8),
        np.asfortranarray(rng.random((3, 5))),  # order F
        np.arange(12, dtype=">i4").reshape(3, 4),  # big-endian
        rng.random((2, 3)).astype(np.float16),
        rng.random(7) < 0.5,  # bool
        np.zeros((0, 64, 64), np.uint8),  # empty
        np.arange(10, dtype=np.int64)[::3],  # non-contiguous view
    ]
    back = loads(pickle.dumps(arrays, protocol=protocol))
    assert len(back) == len(arrays)
    for got, want in zip(back, arrays, strict=True):
        assert got.dtype == want.dtype and got.shape == want.shape and np.array_equal(got, want)
        assert got.flags.writeable and got.flags.owndata or got.base.flags.owndata


def test_python2_pickle_loads() -> None:
    # a Python 2 numpy pickle: type codes, byte order and data are py2 str (SHORT_BINSTRING)
    def s(raw: bytes) -> bytes:
        return b"U" + bytes([len(raw)]) + raw

    raw = bytes(range(6))
    data = (
        b"\x80\x02cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\nK\x00\x85" + s(b"b") + b"\x87R"
        b"(K\x01K\x02K\x03\x86cnumpy\ndtype\n" + s(b"u1") + b"K\x00K\x01\x87R"
        b"(K\x03" + s(b"|") + b"NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89" + s(raw) + b"tb."
    )
    assert np.array_equal(pickle.loads(data, encoding="latin1"), np.arange(6, dtype=np.uint8).reshape(2, 3))
    assert np.array_equal(loads(data), np.arange(6, dtype=np.uint8).reshape(2, 3))


def test_crafted_corpus_is_what_the_generator_writes(tmp_path: Path) -> None:
    from hostile_pickles import EXPECTED, write_corpus

    expected = write_corpus(tmp_path)
    assert json.loads((CORPUS / EXPECTED).read_text()) == expected
    for name in expected:
        assert (CORPUS / name).read_bytes() == (tmp_path / name).read_bytes(), name


@pytest.mark.parametrize("name", sorted(json.loads((CORPUS / "expected.json").read_text())))
def test_crafted_files_are_refused_with_their_reason(name: str) -> None:
    reason = json.loads((CORPUS / "expected.json").read_text())[name]
    tracemalloc.start()
    try:
        with pytest.raises(PickleLoadError) as info:
            load_pickle(CORPUS / name)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    message = str(info.value)
    assert message.startswith(f"{CORPUS / name}: ") and reason in message and "\n" not in message
    assert peak < 8 << 20, f"{name}: {peak} bytes allocated while refusing it"  # bytearray(1 << 30) is not built


def test_bounds_on_opcodes_file_size_and_surprises(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import pipeline.interop.pickle_machine as machine

    monkeypatch.setattr(machine, "MAX_OPCODES", 500)
    with pytest.raises(UnsafePickleError, match="more than 500 opcodes"):
        loads(pickle.dumps(list(range(1000))))
    path = tmp_path / "big.pkl"
    dump_array(np.zeros((4, 64, 64), np.uint8), path)
    with pytest.raises(PickleLoadError, match="larger than the 0 MiB"):
        load_pickle(path, max_bytes=1000)

    def broken(*args, **kwargs):  # any exception inside one load is that file's failure
        raise SystemError("error return without exception set")

    monkeypatch.setattr(np, "frombuffer", broken)
    with pytest.raises(PickleLoadError, match="big.pkl: not a readable pickle .SystemError"):
        load_pickle(path)


def test_seeded_fuzz_never_escapes_or_crashes() -> None:
    # a subprocess: a segfault is a failed test, not a dead test run
    code = "import json, hostile_pickles as h; print(json.dumps(h.fuzz(seed=13, count=20000)))"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent), str(Path(__file__).parents[1])])}
    done = subprocess.run([sys.executable, "-X", "faulthandler", "-c", code], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts["loaded"] + counts["refused"] == 20000
    assert counts["refused"] > 10000 and counts["loaded"] > 100  # the mutants do reach both outcomes
