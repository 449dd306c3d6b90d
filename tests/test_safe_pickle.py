"""The restricted unpickler: numpy arrays and containers load, anything that calls code is refused."""
from __future__ import annotations

import os
import pickle
import pickletools
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
    value = {"sil": sil, "extra": [np.float32(2.5), (1, "a"), {3, 4}], "f": rng.random((2, 3))}
    back = loads(pickle.dumps(value, protocol=protocol))
    assert back["sil"].dtype == np.uint8 and np.array_equal(back["sil"], sil)
    assert np.array_equal(back["f"], value["f"])
    assert back["extra"][0] == np.float32(2.5) and back["extra"][1] == (1, "a") and back["extra"][2] == {3, 4}


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
