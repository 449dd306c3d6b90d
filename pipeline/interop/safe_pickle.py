"""Load and write OpenGait's ``.pkl`` sequence files without running code from them.

Unpickling calls whatever global the file names, so a crafted ``.pkl`` runs code on load. OpenGait
datasets are pickled numpy arrays; the only globals such a file needs are numpy's array rebuilders and
a few builtin containers. ``load_pickle`` admits exactly those and refuses any other global (and
object-dtype arrays, whose elements could be anything) with an error naming the file and the global.

``dump_array`` writes an array as ``numpy.ndarray(shape, dtype, bytearray)``: that pickle loads in
numpy 1.x and 2.x alike (numpy 2's own pickles name ``numpy._core``, which numpy 1.x cannot import)
and gives a writable array.
"""
from __future__ import annotations

import _compat_pickle
import io
import pickle
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from pipeline.atomic import atomic_path
from pipeline.errors import DepthgaitError, InputError

try:  # numpy >= 2
    from numpy._core import multiarray as _multiarray
    from numpy._core import numeric as _numeric
except ImportError:  # pragma: no cover - numpy 1.x
    from numpy.core import multiarray as _multiarray  # type: ignore[no-redef]
    from numpy.core import numeric as _numeric  # type: ignore[no-redef]

PICKLE_PROTOCOL = 4  # readable by every Python 3 that OpenGait supports


class PickleLoadError(DepthgaitError, ValueError):
    """A pickle file could not be read (truncated, not a pickle, ...); the message names the file."""


class UnsafePickleError(PickleLoadError):
    """A pickle file asked for a global outside the numpy/containers allow-list."""


def _safe_dtype(*args: Any) -> np.dtype:
    """``numpy.dtype`` that refuses object dtypes: their elements would be arbitrary pickled objects."""
    dtype = np.dtype(*args)
    if dtype.hasobject:
        raise UnsafePickleError("refused an object-dtype array: only numpy arrays and plain containers are allowed")
    return dtype


# (module, name) -> the object the unpickler gets. numpy 1.x pickles name ``numpy.core``,
# numpy 2.x ``numpy._core``: both resolve to the functions of the numpy installed here.
_ALLOWED: dict[tuple[str, str], Callable[..., Any]] = {}
for _mod in ("numpy.core", "numpy._core"):
    _ALLOWED[(f"{_mod}.multiarray", "_reconstruct")] = _multiarray._reconstruct
    _ALLOWED[(f"{_mod}.multiarray", "scalar")] = _multiarray.scalar
    _ALLOWED[(f"{_mod}.numeric", "_frombuffer")] = _numeric._frombuffer
_ALLOWED.update(
    {
        # the class itself: ``_reconstruct`` needs it, and ``dump_array`` calls it with a buffer
        # (numpy refuses a buffer for object dtypes, so that call cannot build objects)
        ("numpy", "ndarray"): np.ndarray,
        ("numpy", "dtype"): _safe_dtype,
        ("_codecs", "encode"): __import__("codecs").encode,  # protocol 2 stores bytes as latin-1 text
        ("builtins", "bytearray"): bytearray,
        ("builtins", "set"): set,
        ("builtins", "frozenset"): frozenset,
        ("builtins", "complex"): complex,
        ("collections", "OrderedDict"): __import__("collections").OrderedDict,
    }
)


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str) -> Any:
        # Python 2 names (``__builtin__.set`` in protocols 0-2), mapped as pickle.Unpickler does
        module, name = _compat_pickle.NAME_MAPPING.get((module, name), (module, name))
        module = _compat_pickle.IMPORT_MAPPING.get(module, module)
        try:
            return _ALLOWED[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refused to load global {module}.{name}: only numpy arrays and plain containers are allowed"
            ) from None

    def persistent_load(self, pid: Any) -> Any:
        raise UnsafePickleError("refused persistent id: only numpy arrays and plain containers are allowed")


def loads(data: bytes, source: str = "<bytes>") -> Any:
    """Unpickle ``data`` with the allow-list; errors name ``source``."""
    try:
        return _RestrictedUnpickler(io.BytesIO(data)).load()
    except UnsafePickleError as exc:
        raise UnsafePickleError(f"{source}: unsafe pickle, {exc}") from None
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError, IndexError, MemoryError) as exc:
        reason = str(exc) or type(exc).__name__
        raise PickleLoadError(f"{source}: not a readable pickle ({reason})") from exc


def load_pickle(path: str | Path) -> Any:
    """Read one ``.pkl`` file with the allow-list; a refused or broken file raises naming ``path``."""
    path = Path(path)
    try:
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
