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

import pickle
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import atomic_path
from pipeline.errors import DepthgaitError, InputError
from pipeline.interop.pickle_machine import _Machine
from pipeline.interop.pickle_values import MAX_FILE_BYTES, PICKLE_PROTOCOL, _check_result, _Malformed, _Refused


class PickleLoadError(DepthgaitError, ValueError):
    """A pickle file could not be read (truncated, not a pickle, ...); the message names the file."""


class UnsafePickleError(PickleLoadError):
    """A pickle file asked for something outside what an OpenGait sequence pickle holds."""


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
