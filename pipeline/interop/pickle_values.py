"""What the restricted unpickler may build: bounds, the stand-ins for globals, dtype and shape checks,
and the final walk over a loaded value (``_check_result``). ``pipeline.interop.pickle_machine`` runs
the opcodes; ``pipeline.interop.safe_pickle`` is the public face."""
from __future__ import annotations

import _compat_pickle
import re
from typing import Any

import numpy as np

PICKLE_PROTOCOL = 4  # readable by every Python 3 that OpenGait supports
MAX_FILE_BYTES = 128 << 20  # a [T, 64, 64] uint8 sequence of 32,000 frames; real ones are < 2 MiB (peak memory ~3x)
MAX_OPCODES = 1_000_000  # an array is ~30 opcodes; bounds the Python objects a file can create
MAX_DEPTH = 32  # nesting of containers in the result
MAX_NDIM = 32
SLACK_BYTES = 1 << 20  # bytes a file may produce beyond twice its own size (small arrays, names)

_NUMERIC_KINDS = "biuf"
_TYPECODE = re.compile(r"[<>|=]?[biuf][0-9]{1,2}")


class _Refused(Exception):
    """Raised inside the machine for something not allowed; ``loads`` names the file."""


class _Malformed(Exception):
    """Raised inside the machine for a stream that is not a well-formed pickle."""


# ---- what the machine knows ---------------------------------------------------------------------


class _Global:
    """A symbolic global: the machine dispatches on ``kind`` and never calls anything it imported."""

    __slots__ = ("kind", "qualname")

    def __init__(self, kind: str, qualname: str) -> None:
        self.kind, self.qualname = kind, qualname


_GLOBALS: dict[tuple[str, str], str] = {}
for _mod in ("numpy.core", "numpy._core"):
    for _sub in ("multiarray", "_multiarray_umath"):
        _GLOBALS[(f"{_mod}.{_sub}", "_reconstruct")] = "reconstruct"
        _GLOBALS[(f"{_mod}.{_sub}", "scalar")] = "scalar"
    _GLOBALS[(f"{_mod}.numeric", "_frombuffer")] = "frombuffer"
_GLOBALS.update(
    {
        ("numpy", "ndarray"): "ndarray",
        ("numpy", "dtype"): "dtype",
        ("_codecs", "encode"): "encode",  # protocols 0-2 store bytes as latin-1 text
        ("builtins", "bytearray"): "bytearray",  # only bytearray(<bytes>): dump_array's buffer
        ("builtins", "bytes"): "bytes",  # only bytes(): protocols 0-2 write b"" this way
    }
)


class _DtypeRef:
    """A dtype from ``numpy.dtype(code, ...)``; one canonical BUILD may set its byte order."""

    __slots__ = ("dtype", "built")

    def __init__(self, dtype: np.dtype) -> None:
        self.dtype, self.built = dtype, False


class _PendingArray:
    """``_reconstruct``'s empty array: it becomes ``array`` only when BUILD gives it a buffer."""

    __slots__ = ("array",)

    def __init__(self) -> None:
        self.array: np.ndarray | None = None


class _Py2Str(bytes):
    """A protocol 0-2 ``str`` from Python 2: bytes for array data, ASCII text for names."""


class _Mark:
    __slots__ = ()


_MARK = _Mark()


def _text(value: Any, what: str) -> str:
    if isinstance(value, _Py2Str):
        return value.decode("ascii")
    if type(value) is not str:
        raise _Refused(f"{what} must be a string, got {type(value).__name__}")
    return value


def _data(value: Any, what: str) -> bytes | bytearray:
    if isinstance(value, str):  # a Python 2 str read as text: numpy's own rule is latin-1
        value = value.encode("latin-1")
    if not isinstance(value, bytes | bytearray):
        raise _Refused(f"{what} must be bytes, got {type(value).__name__}")
    return value


def _numeric_dtype(code: Any) -> np.dtype:
    """A builtin numeric dtype from a type code such as ``u1``, ``<f4`` (never a structured one)."""
    code = _text(code, "dtype code")
    if code[:1] == "O":
        raise _Refused("refused an object-dtype array: only numeric arrays are allowed")
    if not _TYPECODE.fullmatch(code):
        raise _Refused(f"refused dtype {code[:40]!r}: only bool, integer and float arrays are allowed")
    try:
        dtype = np.dtype(code)
    except TypeError:
        raise _Refused(f"refused dtype {code!r}: not a numpy type") from None
    if dtype.kind not in _NUMERIC_KINDS or dtype.names is not None or dtype.hasobject:
        raise _Refused(f"refused dtype {code!r}: only bool, integer and float arrays are allowed")
    return dtype


def _dtype_of(value: Any) -> np.dtype:
    if isinstance(value, _DtypeRef):
        return value.dtype
    return _numeric_dtype(value)


def _shape(value: Any) -> tuple[int, ...]:
    if type(value) is not tuple or len(value) > MAX_NDIM:
        raise _Refused(f"array shape must be a tuple of at most {MAX_NDIM} sizes")
    if any(type(n) is not int or n < 0 for n in value):
        raise _Refused(f"array shape {value!r:.80} holds a size that is not a non-negative integer")
    return value


def _kind(obj: Any) -> str:
    if isinstance(obj, _Global):
        return obj.qualname
    return type(obj).__name__.lstrip("_")


def _set_items(target: dict, items: list[Any]) -> dict:
    if len(items) % 2:
        raise _Malformed("odd number of dict items")
    for key, value in zip(items[::2], items[1::2], strict=True):
        if type(key) not in (str, int, float, bool, bytes, _Py2Str) and key is not None:
            raise _Refused(f"refused a dict key of type {_kind(key)}")
        target[key] = value
    return target


def _find_global(module: str, name: str) -> _Global:
    # Python 2 names (``__builtin__.bytearray`` in protocols 0-2), mapped as pickle.Unpickler does
    module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
    module = _compat_pickle.IMPORT_MAPPING.get(module, module)
    kind = _GLOBALS.get((module, name))
    if kind is None:
        raise _Refused(f"refused to load global {module[:60]}.{name[:60]}: only numpy arrays and plain containers are allowed")
    return _Global(kind, f"{module}.{name}")


# ---- the result, once more ----------------------------------------------------------------------


def _check_result(obj: Any) -> None:
    """Walk the loaded value once more and check every part of it.

    A container or array reached twice is refused: sequence pickles share nothing, and a shared
    (or self-holding) one is how a few bytes describe a structure that ``np.asarray`` would blow up
    to terabytes. So the walk is linear in the file, and the value is exactly as big as its data.
    """
    seen: set[int] = set()
    todo: list[tuple[Any, int]] = [(obj, 0)]
    while todo:
        item, depth = todo.pop()
        if isinstance(item, list | tuple | dict | np.ndarray):
            if id(item) in seen:
                raise _Refused(f"refused a {_kind(item)} that appears twice (shared or self-holding)")
            seen.add(id(item))
        if isinstance(item, list | tuple | dict):
            if depth >= MAX_DEPTH:
                raise _Refused(f"containers nested deeper than {MAX_DEPTH}")
            children = item.values() if isinstance(item, dict) else item
            todo.extend((child, depth + 1) for child in children)
        elif isinstance(item, np.ndarray):
            dtype = item.dtype
            owner = item if item.base is None else item.base
            if dtype.kind not in _NUMERIC_KINDS or dtype.names is not None or not (
                isinstance(owner, np.ndarray) and owner.base is None and owner.flags.owndata
            ):
                raise _Refused(f"refused an array of dtype {dtype} that does not own its data")
        elif isinstance(item, np.generic):
            if item.dtype.kind not in _NUMERIC_KINDS:
                raise _Refused(f"refused a numpy scalar of dtype {item.dtype}")
        elif isinstance(item, _PendingArray):
            raise _Refused("refused an ndarray without a buffer (it would hold uninitialised memory)")
        elif item is not None and type(item) not in (str, int, float, bool, bytes, bytearray, _Py2Str):
            raise _Refused(f"refused a {_kind(item)} in the result: only arrays and plain containers are allowed")
