"""Load and write OpenGait's ``.pkl`` sequence files without running code from them.

Unpickling calls whatever global the file names, and even the harmless-looking numpy globals are
dangerous: ``numpy.dtype`` plus BUILD rewrites a dtype so that a field lies outside its item (a
166-byte file then reads or writes arbitrary memory), ``numpy.ndarray(shape, dtype)`` without a
buffer hands back uninitialised memory, ``bytearray(1 << 30)`` allocates a gigabyte from 46 bytes.
So ``load_pickle`` never calls ``pickle``'s machinery at all: it walks the opcode stream
(``pickletools.genops``) with its own small stack machine that understands exactly what an
OpenGait / SUSTech1K pickle is:

- numeric ndarrays (bool, int, uint, float; not structured, not object, not complex) rebuilt from
  a buffer whose length equals ``prod(shape) * itemsize``, checked before anything is allocated;
- dtypes made here from their type code; a BUILD on a dtype is accepted only when it is the
  canonical state numpy itself writes (it may set the byte order, nothing else);
- lists, tuples and dicts (plain keys) of those, numpy numeric scalars, and plain ints, floats,
  str, bytes, None and bools; no container or array appears twice (shared or cyclic), so the value
  is exactly as big as the data in the file.

Anything else (other globals, sets, frozensets, ``bytearray(n)``, complex, OrderedDict, objects,
persistent ids, out-of-band buffers) is refused by name. The whole load is bounded (file size,
opcode count, bytes produced, nesting depth), every exception of one file becomes that file's
:class:`PickleLoadError`, and the result is walked once more before it is returned. Not read:
Python 2 protocol-0 pickles whose array data holds non-ASCII bytes (``pickletools`` cannot decode
their text strings); Python 2 binary protocols and every Python 3 protocol are.

``dump_array`` writes an array as ``numpy.ndarray(shape, dtype, bytearray)``: that pickle loads in
numpy 1.x and 2.x alike (numpy 2's own pickles name ``numpy._core``, which numpy 1.x cannot import)
and gives a writable array.
"""
from __future__ import annotations

import _compat_pickle
import io
import pickle
import pickletools
import re
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import atomic_path
from pipeline.errors import DepthgaitError, InputError

PICKLE_PROTOCOL = 4  # readable by every Python 3 that OpenGait supports
MAX_FILE_BYTES = 128 << 20  # a [T, 64, 64] uint8 sequence of 32,000 frames; real ones are < 2 MiB (peak memory ~3x)
MAX_OPCODES = 1_000_000  # an array is ~30 opcodes; bounds the Python objects a file can create
MAX_DEPTH = 32  # nesting of containers in the result
MAX_NDIM = 32
SLACK_BYTES = 1 << 20  # bytes a file may produce beyond twice its own size (small arrays, names)

_NUMERIC_KINDS = "biuf"
_TYPECODE = re.compile(r"[<>|=]?[biuf][0-9]{1,2}")


class PickleLoadError(DepthgaitError, ValueError):
    """A pickle file could not be read (truncated, not a pickle, ...); the message names the file."""


class UnsafePickleError(PickleLoadError):
    """A pickle file asked for something outside what an OpenGait sequence pickle holds."""


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


class _Machine:
    """The stack machine: one instance per file, bounded in opcodes, bytes produced and depth."""

    def __init__(self, data: bytes) -> None:
        self.data = data
        self.budget = 2 * len(data) + SLACK_BYTES  # bytes that REDUCE/BUILD may still allocate

    def spend(self, nbytes: int) -> None:
        if nbytes > self.budget:
            raise _Refused("builds more data than the file holds (a pickle bomb?)")
        self.budget -= nbytes

    def array(self, buffer: Any, dtype: np.dtype, shape: tuple[int, ...], fortran: bool) -> np.ndarray:
        """A writable array that owns a copy of ``buffer``, whose length must match ``shape`` exactly."""
        buffer = _data(buffer, "array data")
        count = 1
        for n in shape:
            count *= n
        if count == 0 and any(n > SLACK_BYTES for n in shape):  # len() of it would still be huge
            raise _Refused(f"refused an empty array of shape {list(shape)}")
        if count * dtype.itemsize != len(buffer):
            raise _Refused(
                f"array of shape {list(shape)} {dtype} needs {count * dtype.itemsize} bytes, its buffer has {len(buffer)}"
            )
        self.spend(len(buffer))
        flat = np.frombuffer(buffer, dtype=dtype).copy()
        return flat.reshape(shape, order="F" if fortran else "C")

    # -- REDUCE: what each allowed global may be called with --
    def call(self, func: Any, args: Any) -> Any:
        if not isinstance(func, _Global):
            raise _Refused(f"refused to call a {type(func).__name__}: only numpy's array rebuilders may be called")
        if type(args) is not tuple:
            raise _Refused(f"{func.qualname}: arguments must be a tuple")
        kind = func.kind
        if kind == "dtype":
            if not 1 <= len(args) <= 3:
                raise _Refused("numpy.dtype takes a type code and two flags")
            return _DtypeRef(_numeric_dtype(args[0]))
        if kind == "reconstruct":  # (ndarray, (0,), b"b"): an empty array that BUILD fills
            if len(args) != 3 or not (isinstance(args[0], _Global) and args[0].kind == "ndarray"):
                raise _Refused("_reconstruct may only rebuild a numpy.ndarray")
            return _PendingArray()
        if kind == "ndarray":  # (shape, dtype, buffer): dump_array's form; no buffer is refused
            if len(args) != 3:
                raise _Refused("numpy.ndarray without a buffer would hold uninitialised memory")
            return self.array(args[2], _dtype_of(args[1]), _shape(args[0]), False)
        if kind == "frombuffer":  # protocol 5: (buffer, dtype, shape, order)
            if len(args) != 4 or args[3] not in ("C", "F"):
                raise _Refused("_frombuffer takes a buffer, a dtype, a shape and an order C or F")
            return self.array(args[0], _dtype_of(args[1]), _shape(args[2]), args[3] == "F")
        if kind == "scalar":  # (dtype, bytes): np.float32(2.5) and friends
            if len(args) != 2:
                raise _Refused("numpy scalar takes a dtype and its bytes")
            dtype = _dtype_of(args[0])
            return self.array(args[1], dtype, (), False)[()]
        if kind == "encode":  # (text, "latin1") -> bytes
            if len(args) != 2 or _text(args[1], "encoding").lower().replace("-", "") != "latin1":
                raise _Refused("_codecs.encode is allowed only for latin-1 text")
            text = _text(args[0], "encoded text")
            self.spend(len(text))
            return text.encode("latin-1")
        if kind == "bytearray":
            if len(args) == 0:
                return bytearray()
            if len(args) != 1 or not isinstance(args[0], bytes | bytearray):
                raise _Refused("bytearray is allowed only as a copy of bytes from the file (never bytearray(n))")
            self.spend(len(args[0]))
            return bytearray(args[0])
        if kind == "bytes":
            if args:
                raise _Refused("bytes(...) is allowed only empty")
            return b""
        raise _Refused(f"refused to call {func.qualname}")  # pragma: no cover - every kind is handled

    # -- BUILD: only numpy's own array state and the canonical dtype state --
    def build(self, obj: Any, state: Any) -> Any:
        if isinstance(obj, _DtypeRef):
            if obj.built:
                raise _Refused("refused a second BUILD on a dtype")
            if type(state) is not tuple or len(state) != 8:
                raise _Refused("refused a dtype BUILD: not numpy's plain dtype state")
            version, order, subarray, names, fields, elsize, alignment, flags = state
            if (version, subarray, names, fields, elsize, alignment) != (3, None, None, None, -1, -1) or type(flags) is not int:
                raise _Refused("refused a dtype BUILD that changes fields, sizes or alignment")
            order = _text(order, "byte order")
            if order not in ("<", ">", "|", "="):
                raise _Refused(f"refused dtype byte order {order[:8]!r}")
            if flags != obj.dtype.flags:
                raise _Refused("refused a dtype BUILD that changes the dtype's flags")
            obj.built = True
            obj.dtype = obj.dtype.newbyteorder(order) if order in "<>" and obj.dtype.itemsize > 1 else obj.dtype
            return obj
        if isinstance(obj, _PendingArray):
            if obj.array is not None:
                raise _Refused("refused a second BUILD on an ndarray")
            if type(state) is not tuple or len(state) not in (4, 5):
                raise _Refused("refused an ndarray BUILD: not numpy's array state")
            if len(state) == 5:
                if state[0] != 1 or type(state[0]) is not int:
                    raise _Refused("refused an ndarray state of an unknown version")
                state = state[1:]
            shape, dtype, fortran, raw = state
            if type(fortran) not in (bool, int):
                raise _Refused("ndarray order flag must be a bool")
            if isinstance(raw, list):
                raise _Refused("refused an object-dtype array: only numeric arrays are allowed")
            obj.array = self.array(raw, _dtype_of(dtype), _shape(shape), bool(fortran))
            return obj.array  # a later GET of the memoized _reconstruct result sees this array
        raise _Refused(f"refused BUILD on a {_kind(obj)}: only numpy arrays and dtypes take a state")

    # -- the opcode loop --
    def run(self) -> Any:
        stack: list[Any] = []
        marks: list[list[Any]] = []
        memo: dict[int, Any] = {}
        end = len(self.data)

        def pop_mark() -> list[Any]:
            nonlocal stack
            if not marks:
                raise _Malformed("no MARK on the stack")
            items, stack = stack, marks.pop()
            return items

        def pop() -> Any:
            if not stack:
                raise _Malformed("stack underflow")
            return stack.pop()

        def top() -> Any:
            if not stack:
                raise _Malformed("stack underflow")
            return stack[-1]

        for count, (op, arg, pos) in enumerate(pickletools.genops(io.BytesIO(self.data))):
            if count >= MAX_OPCODES:
                raise _Refused(f"more than {MAX_OPCODES} opcodes: not a sequence pickle")
            name = op.name
            if name in _PUSH_ARG:
                if name in ("STRING", "BINSTRING", "SHORT_BINSTRING"):
                    arg = _Py2Str(arg.encode("latin-1") if isinstance(arg, str) else arg)
                stack.append(arg)
            elif name in _PUSH_CONST:
                stack.append(_PUSH_CONST[name]())
            elif name == "MARK":
                marks.append(stack)
                stack = []
            elif name == "STOP":
                if len(stack) != 1 or marks:
                    raise _Malformed("the stack does not hold one value at STOP")
                return stack[0]
            elif name in ("PROTO", "FRAME"):
                if name == "FRAME" and arg > end - pos - 9:
                    raise _Malformed(f"FRAME of {arg} bytes runs past the end of the file")
            elif name == "POP":
                if stack:
                    stack.pop()
                else:
                    pop_mark()
            elif name == "POP_MARK":
                pop_mark()
            elif name == "DUP":
                stack.append(top())
            elif name in ("PUT", "BINPUT", "LONG_BINPUT", "MEMOIZE"):
                memo[len(memo) if name == "MEMOIZE" else int(arg)] = top()
            elif name in ("GET", "BINGET", "LONG_BINGET"):
                if int(arg) not in memo:
                    raise _Malformed(f"memo key {arg} was never stored")
                value = memo[int(arg)]
                if isinstance(value, _PendingArray) and value.array is not None:
                    value = value.array
                stack.append(value)
            elif name == "TUPLE":  # (pop_mark rebinds ``stack``: call it before naming ``stack``)
                items = tuple(pop_mark())
                stack.append(items)
            elif name in ("TUPLE1", "TUPLE2", "TUPLE3"):
                n = int(name[-1])
                if len(stack) < n:
                    raise _Malformed("stack underflow")
                items = tuple(stack[-n:])
                del stack[-n:]
                stack.append(items)
            elif name == "LIST":
                items = pop_mark()
                stack.append(items)
            elif name == "DICT":
                items = _set_items({}, pop_mark())
                stack.append(items)
            elif name in ("APPEND", "APPENDS"):
                items = [pop()] if name == "APPEND" else pop_mark()
                target = top()
                if type(target) is not list:
                    raise _Refused(f"refused APPEND to a {_kind(target)}: only lists take items")
                target.extend(items)
            elif name in ("SETITEM", "SETITEMS"):
                if name == "SETITEM":
                    value, key = pop(), pop()
                    items = [key, value]
                else:
                    items = pop_mark()
                target = top()
                if type(target) is not dict:
                    raise _Refused(f"refused SETITEM on a {_kind(target)}: only dicts take items")
                _set_items(target, items)
            elif name in ("GLOBAL", "STACK_GLOBAL"):
                if name == "GLOBAL":
                    module, _, attr = arg.partition(" ")
                else:
                    attr = _text(pop(), "global name")
                    module = _text(pop(), "module name")
                stack.append(_find_global(module, attr))
            elif name == "REDUCE":
                args = pop()
                stack.append(self.call(pop(), args))
            elif name == "BUILD":
                state = pop()
                stack.append(self.build(pop(), state))
            elif name in _REFUSED_OPS:
                raise _Refused(_REFUSED_OPS[name])
            else:
                raise _Refused(f"refused opcode {name}: not used by a numpy array pickle")
        raise _Malformed("no STOP")  # pragma: no cover - genops raises first


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


_PUSH_ARG = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
    "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
}  # fmt: skip
_PUSH_CONST = {
    "NONE": lambda: None,
    "NEWTRUE": lambda: True,
    "NEWFALSE": lambda: False,
    "EMPTY_LIST": list,
    "EMPTY_TUPLE": tuple,
    "EMPTY_DICT": dict,
}
_REFUSED_OPS = {
    "PERSID": "refused persistent id: only numpy arrays and plain containers are allowed",
    "BINPERSID": "refused persistent id: only numpy arrays and plain containers are allowed",
    "EMPTY_SET": "refused a set: OpenGait pickles hold arrays, lists and tuples",
    "ADDITEMS": "refused a set: OpenGait pickles hold arrays, lists and tuples",
    "FROZENSET": "refused a frozenset: OpenGait pickles hold arrays, lists and tuples",
    "NEXT_BUFFER": "refused an out-of-band buffer: the file must hold its own data",
    "READONLY_BUFFER": "refused an out-of-band buffer: the file must hold its own data",
}


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


# ---- public API ---------------------------------------------------------------------------------
def _one_line(text: str, limit: int = 200) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` with the allow-list; every failure is a :class:`PickleLoadError` naming ``source``."""
    try:
        value = _Machine(data if type(data) is bytes else bytes(data)).run()
        _check_result(value)
    except _Refused as exc:
        raise UnsafePickleError(f"{source}: unsafe pickle, {_one_line(str(exc))}") from None
    except _Malformed as exc:
        raise PickleLoadError(f"{source}: not a readable pickle ({_one_line(str(exc))})") from None
    except (KeyboardInterrupt, SystemExit):
        raise
    except Exception as exc:  # noqa: BLE001 - any failure of one file is that file's failure
        reason = _one_line(f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__)
        raise PickleLoadError(f"{source}: not a readable pickle ({reason})") from None
    return value


def load_pickle(path: str | Path, max_bytes: int = MAX_FILE_BYTES) -> Any:
    """Read one ``.pkl`` file with the allow-list; a refused or broken file raises naming ``path``."""
    path = Path(path)
    try:
        size = path.stat().st_size
        if size > max_bytes:
            raise PickleLoadError(f"{path}: {size >> 20} MiB, larger than the {max_bytes >> 20} MiB a sequence pickle may be")
        data = path.read_bytes()
    except OSError as exc:
        raise PickleLoadError(f"{path}: cannot read ({exc.strerror or exc})") from exc
    return loads(data, str(path))


def dump_array(array: np.ndarray, path: str | Path) -> None:
    """Write ``array`` as a version-neutral, plain-``pickle``-loadable file, atomically."""
    array = np.ascontiguousarray(array)
    if array.dtype.hasobject or array.dtype.names:
        raise InputError(f"{path}: only plain numeric arrays can be written, got {array.dtype}")
    payload = (np.ndarray, (array.shape, array.dtype.str, bytearray(array.tobytes())))

    class _Array:  # the pickler calls __reduce__ and stores its callable by name: numpy.ndarray
        def __reduce__(self) -> tuple:
            return payload

    with atomic_path(path) as tmp, open(tmp, "wb") as handle:
        pickle.dump(_Array(), handle, protocol=PICKLE_PROTOCOL)
