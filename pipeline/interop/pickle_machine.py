"""The restricted unpickler's machine: an opcode walker that builds only what a sequence pickle holds.

``pickletools.genops`` yields the opcodes; ``_Machine`` keeps its own stack and memo and never calls
``pickle``'s machinery or any global from the file. ``_check_result`` walks the value once more.
``pipeline.interop.safe_pickle`` is the public face (``load_pickle``, ``loads``, ``dump_array``); it
turns this module's ``_Refused`` and ``_Malformed`` into one-line errors naming the file.
"""
from __future__ import annotations

import io
import pickletools
from typing import Any

import numpy as np

from pipeline.interop.pickle_values import (
    MAX_OPCODES,
    SLACK_BYTES,
    _data,
    _dtype_of,
    _DtypeRef,
    _find_global,
    _Global,
    _kind,
    _Malformed,
    _numeric_dtype,
    _PendingArray,
    _Py2Str,
    _Refused,
    _set_items,
    _shape,
    _text,
)


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


_PUSH_ARG = {
    "INT", "BININT", "BININT1", "BININT2", "LONG", "LONG1", "LONG4", "FLOAT", "BINFLOAT",
    "STRING", "BINSTRING", "SHORT_BINSTRING", "UNICODE", "BINUNICODE", "SHORT_BINUNICODE",
    "BINUNICODE8", "BINBYTES", "SHORT_BINBYTES", "BINBYTES8", "BYTEARRAY8",
}
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
