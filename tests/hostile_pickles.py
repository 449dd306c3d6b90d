"""Crafted hostile / broken pickles and a seeded mutation fuzzer for ``pipeline.safe_pickle``.

Every crafted file uses only globals the old allow-list admitted (numpy's rebuilders, ``bytearray``,
``set``, ``_codecs.encode``, ...) or plain opcodes: what a file can do *without* ``os.system``.
``python tests/hostile_pickles.py`` rewrites ``tests/data/hostile_pickles/`` (the files and
``expected.json``, the reason each must be refused with); a test checks the folder matches.
``python tests/hostile_pickles.py --plain`` loads each with plain ``pickle`` in a subprocess and
prints what that does (segfault, MemoryError, ...): how hostile each file really is.
"""
from __future__ import annotations

import json
import pickle
import struct
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np

CORPUS = Path(__file__).parent / "data" / "hostile_pickles"
EXPECTED = "expected.json"


# ---- a tiny pickle assembler (protocol 2-4 opcodes) ---------------------------------------------
def glob(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def text(value: str) -> bytes:
    raw = value.encode("utf-8")
    return b"X" + struct.pack("<I", len(raw)) + raw


def data(value: bytes) -> bytes:
    return b"B" + struct.pack("<I", len(value)) + value


def num(value: int) -> bytes:
    if 0 <= value < 256:
        return b"K" + bytes([value])
    if -(2**31) <= value < 2**31:
        return b"J" + struct.pack("<i", value)
    raw = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
    return b"\x8a" + bytes([len(raw)]) + raw


def tup(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def call(func: bytes, *args: bytes) -> bytes:
    return func + tup(*args) + b"R"


PROTO = b"\x80\x02"
STOP = b"."
NONE, TRUE, FALSE = b"N", b"\x88", b"\x89"
DTYPE = glob("numpy", "dtype")
NDARRAY = glob("numpy", "ndarray")
RECONSTRUCT = glob("numpy.core.multiarray", "_reconstruct")


def dtype(code: str) -> bytes:
    return call(DTYPE, text(code), FALSE, TRUE)


def dtype_state(order: str = "|", names: bytes = NONE, fields: bytes = NONE, elsize: int = -1, align: int = -1, flags: int = 0) -> bytes:
    return tup(num(3), text(order), NONE, names, fields, num(elsize), num(align), num(flags))


def shape(*dims: int) -> bytes:
    return tup(*(num(d) for d in dims))


def reconstructed(state: bytes) -> bytes:
    """``_reconstruct(ndarray, (0,), b'b')`` then BUILD ``state``: numpy's own array pickle."""
    return call(RECONSTRUCT, NDARRAY, shape(0), data(b"b")) + state + b"b"


def wrap(body: bytes) -> bytes:
    return PROTO + body + STOP


# ---- the crafted corpus: name -> (bytes, a substring of the refusal) ----------------------------
def crafted() -> dict[str, tuple[bytes, str]]:
    u1 = dtype("u1") + dtype_state() + b"b"
    cases: dict[str, tuple[bytes, str]] = {}
    # A dtype rewritten by BUILD so that field "f" sits 1 TiB past its 1-byte item; a 1-byte array of
    # it, hashed in a set: plain pickle reads (or crashes on) memory far outside the buffer.
    bad_fields = b"}" + text("f") + tup(u1, num(1 << 40)) + b"s"
    evil = dtype("V1") + dtype_state(names=tup(text("f")), fields=bad_fields, elsize=1, align=1, flags=16) + b"b"
    array = call(NDARRAY, shape(1), evil, data(b"\0"))  # read-only: its items are hashable np.void
    cases["dtype_build_fields.pkl"] = (wrap(call(glob("builtins", "set"), array)), "builtins.set")
    cases["dtype_build_fields_noset.pkl"] = (wrap(array), "refused dtype 'V1'")
    u1_fields = dtype("u1") + dtype_state(names=tup(text("f")), fields=bad_fields, elsize=1, align=1, flags=16) + b"b"
    cases["dtype_build_fields_u1.pkl"] = (wrap(call(NDARRAY, shape(1), u1_fields, data(b"\0"))), "dtype BUILD")
    cases["dtype_build_twice.pkl"] = (wrap(call(NDARRAY, shape(1), u1 + dtype_state(">") + b"b", data(b"\0"))), "second BUILD")
    cases["dtype_build_elsize.pkl"] = (wrap(call(NDARRAY, shape(1), dtype("u1") + dtype_state(elsize=4096) + b"b", data(b"\0"))), "changes fields")
    cases["dtype_structured.pkl"] = (wrap(call(NDARRAY, shape(1), dtype("u1,u2"), data(b"\0" * 3))), "refused dtype")
    cases["dtype_void.pkl"] = (wrap(call(NDARRAY, shape(1), dtype("V16"), data(b"\0" * 16))), "refused dtype")
    # (all hand-assembled, so that the corpus does not depend on the numpy that wrote it)
    def array_of(code: str, raw: bytes, n: int) -> bytes:
        return wrap(reconstructed(tup(num(1), shape(n), dtype(code) + dtype_state("<") + b"b", FALSE, raw)))

    cases["dtype_complex.pkl"] = (array_of("c8", data(bytes(32)), 4), "refused dtype")
    cases["dtype_object.pkl"] = (array_of("O8", b"](" + num(1) + text("x") + b"e", 2), "object-dtype")
    cases["dtype_datetime.pkl"] = (array_of("M8", data(bytes(16)), 2), "refused dtype")
    # arrays without (enough) data: uninitialised memory
    cases["ndarray_no_buffer.pkl"] = (wrap(call(NDARRAY, shape(400, 64, 64), text("|u1"))), "uninitialised memory")
    cases["reconstruct_no_build.pkl"] = (wrap(call(RECONSTRUCT, NDARRAY, shape(0), data(b"b"))), "without a buffer")
    cases["buffer_too_short.pkl"] = (wrap(call(NDARRAY, shape(1000, 64, 64), text("|u1"), data(b"x"))), "buffer has 1")
    cases["buffer_too_long.pkl"] = (wrap(call(NDARRAY, shape(1), text("|u1"), data(b"xy"))), "buffer has 2")
    cases["shape_huge.pkl"] = (wrap(call(NDARRAY, shape(1 << 40, 1 << 40), text("|u1"), data(b"x"))), "needs")
    cases["shape_huge_empty.pkl"] = (wrap(call(NDARRAY, shape(1 << 62, 1 << 62, 0), text("|u1"), data(b""))), "empty array")
    cases["shape_negative.pkl"] = (wrap(reconstructed(tup(num(1), shape(-1, 64), u1, FALSE, data(b"")))), "non-negative")
    cases["state_object_list.pkl"] = (wrap(reconstructed(tup(num(1), shape(1), u1, FALSE, b"]" + NONE + b"a"))), "object-dtype")
    cases["scalar_wrong_size.pkl"] = (wrap(call(glob("numpy.core.multiarray", "scalar"), dtype("f8"), data(b"\0"))), "buffer has 1")
    # allocations from a few bytes
    cases["bytearray_1gib.pkl"] = (wrap(call(glob("builtins", "bytearray"), num(1 << 30))), "never bytearray(n)")
    copies = data(b"\0" * 65536) + b"q\x000](" + (glob("builtins", "bytearray") + b"h\x00\x85R") * 64 + b"e"
    cases["bytearray_copies.pkl"] = (wrap(copies), "more data than the file holds")
    # opcodes and globals a sequence pickle never needs
    cases["set.pkl"] = (PROTO.replace(b"\x02", b"\x04") + b"\x8f" + b"(" + num(1) + b"\x90" + STOP, "set")
    cases["frozenset.pkl"] = (b"\x80\x04(" + num(1) + b"\x91" + STOP, "frozenset")
    cases["set_global.pkl"] = (wrap(call(glob("builtins", "set"), b"]")), "builtins.set")
    cases["complex_global.pkl"] = (wrap(call(glob("builtins", "complex"), num(1), num(2))), "builtins.complex")
    cases["ordereddict.pkl"] = (wrap(call(glob("collections", "OrderedDict"))), "collections.OrderedDict")
    cases["os_system.pkl"] = (wrap(call(glob("os", "system"), text("touch /tmp/depthgait-pwned"))), "system")
    cases["persistent_id.pkl"] = (wrap(text("x") + b"Q"), "persistent id")
    cases["newobj.pkl"] = (wrap(NDARRAY + b")\x81"), "NEWOBJ")
    cases["ext_registry.pkl"] = (wrap(b"\x82\x01"), "EXT1")
    cases["build_on_list.pkl"] = (wrap(b"]" + b"}" + b"b"), "BUILD")
    # broken streams
    cases["frame_overflow.pkl"] = (b"\x80\x04\x95" + struct.pack("<Q", (1 << 63) - 1) + b"K\x01.", "FRAME")
    cases["bad_encoding.pkl"] = (wrap(call(glob("_codecs", "encode"), text("x"), text("no-such-codec"))), "latin-1")
    cases["bad_utf8.pkl"] = (wrap(b"X\x02\x00\x00\x00\xff\xfe"), "UnicodeDecodeError")
    cases["long4_past_end.pkl"] = (wrap(b"\x8b" + struct.pack("<i", 1 << 30) + b"\x01"), "not a readable pickle")
    cases["unknown_opcode.pkl"] = (wrap(b"\xff"), "not a readable pickle")
    cases["truncated.pkl"] = (wrap(call(NDARRAY, shape(3, 64, 64), text("|u1"), data(bytes(3 * 64 * 64))))[:100], "not a readable pickle")
    cases["empty.pkl"] = (b"", "not a readable pickle")
    cases["not_a_pickle.pkl"] = (b"hello, I am a text file\n", "not a readable pickle")
    cases["stack_underflow.pkl"] = (wrap(b"R"), "stack underflow")
    cases["memo_missing.pkl"] = (wrap(b"h\x07"), "memo key")
    # shapes of the value
    cases["list_holds_itself.pkl"] = (wrap(b"]q\x00h\x00a"), "appears twice")
    cases["nested_deep.pkl"] = (wrap(b"]" * 5000 + b"a" * 4999), "nested deeper")
    laughs = b"]" + num(0) + b"aq\x000"
    for _ in range(30):  # [[x, x], [x, x]] ...: 2**30 leaves in 250 bytes
        laughs += b"(h\x00h\x00lq\x000"
    cases["billion_laughs.pkl"] = (wrap(laughs + b"h\x00"), "appears twice")
    cases["shared_array.pkl"] = (wrap(b"](" + call(NDARRAY, shape(4), text("|u1"), data(bytes(4))) + b"q\x01h\x01h\x01e"), "appears twice")
    cases["dict_key_array.pkl"] = (wrap(b"}" + reconstructed(tup(num(1), shape(1), u1, FALSE, data(b"\0"))) + num(1) + b"s"), "dict key")
    return cases


# ---- seeded mutations of real pickles -----------------------------------------------------------
def seed_pickles() -> list[bytes]:
    """Valid sequence pickles in every protocol: numpy's own, ``dump_array``'s, lists of arrays."""
    from pipeline.interop.safe_pickle import PICKLE_PROTOCOL

    rng = np.random.default_rng(0)
    sil = rng.integers(0, 256, size=(3, 8, 8), dtype=np.uint8)
    seeds = [pickle.dumps(value, protocol=p) for p in (0, 2, 4, 5) for value in (sil, [sil, sil[:1].astype(np.float32)])]
    seeds.append(pickle.dumps((np.float32(2.5), np.arange(6, dtype=">i4").reshape(2, 3, order="F")), protocol=3))
    payload = (np.ndarray, (sil.shape, sil.dtype.str, bytearray(sil.tobytes())))

    class _Array:
        def __reduce__(self) -> tuple:
            return payload

    seeds.append(pickle.dumps(_Array(), protocol=PICKLE_PROTOCOL))  # dump_array's form
    return seeds


def mutations(seed: int, count: int) -> Iterator[bytes]:
    """``count`` mutants: byte flips, bit flips, cuts, insertions, deletions and spliced chunks."""
    rng = np.random.default_rng(seed)
    seeds = seed_pickles()
    interesting = [b"\x00", b"\xff", b"\x7f", b"\x80", b"b", b"R", b"(", b"t", b"\x93", b"\x95", b"h", b"q"]
    for _ in range(count):
        data = bytearray(seeds[int(rng.integers(len(seeds)))])
        for _ in range(int(rng.integers(1, 4))):
            if not data:
                break
            at = int(rng.integers(len(data)))
            how = int(rng.integers(6))
            if how == 0:
                data[at] = int(rng.integers(256))
            elif how == 1:
                data[at] ^= 1 << int(rng.integers(8))
            elif how == 2:
                del data[at:]
            elif how == 3:
                data[at:at] = interesting[int(rng.integers(len(interesting)))]
            elif how == 4:
                del data[at : at + int(rng.integers(1, 9))]
            else:
                end = min(len(data), at + int(rng.integers(1, 33)))
                data[int(rng.integers(len(data))) : 0] = data[at:end]
        yield bytes(data)


def fuzz(seed: int, count: int) -> dict[str, int]:
    """Load ``count`` mutants; anything but a value or a PickleLoadError raises. Returns counts."""
    from pipeline.interop.safe_pickle import PickleLoadError, loads

    counts = {"loaded": 0, "refused": 0}
    for i, mutant in enumerate(mutations(seed, count)):
        try:
            loads(mutant, f"mutant-{i}")
        except PickleLoadError as exc:
            assert f"mutant-{i}" in str(exc) and "\n" not in str(exc), str(exc)
            counts["refused"] += 1
        else:
            counts["loaded"] += 1
    return counts


# ---- writing the corpus -------------------------------------------------------------------------
def write_corpus(folder: Path = CORPUS) -> dict[str, str]:
    folder.mkdir(parents=True, exist_ok=True)
    expected = {}
    for name, (blob, reason) in sorted(crafted().items()):
        (folder / name).write_bytes(blob)
        expected[name] = reason
    (folder / EXPECTED).write_text(json.dumps(expected, indent=1, sort_keys=True) + "\n")
    return expected


def _plain(folder: Path, run: Callable[..., subprocess.CompletedProcess] = subprocess.run) -> None:
    """What plain ``pickle.load`` does with each file (in a subprocess, 2 GiB address space)."""
    code = (
        "import pickle, resource, sys; resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30));"
        "v = pickle.loads(open(sys.argv[1], 'rb').read()); print('loaded', type(v).__name__, getattr(v, 'shape', ''))"
    )
    for path in sorted(p for p in folder.glob("*.pkl") if p.name != "os_system.pkl"):  # that one would run
        try:
            done = run([sys.executable, "-c", code, str(path)], capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired:
            print(f"{path.name:28s} still running after 30 s")
            continue
        last = (done.stdout + done.stderr).strip().splitlines()[-1:] or [""]
        print(f"{path.name:28s} rc={done.returncode:4d} {last[0][:90]}")


if __name__ == "__main__":
    if "--plain" in sys.argv:
        _plain(CORPUS)
    else:
        print(f"wrote {len(write_corpus())} files to {CORPUS}")
