"""Compiled Python modules kept on disk: ``graphc.compile(text, cache=True)``.

A program compiled once with ``cache=True`` is kept under
``$XDG_CACHE_HOME/graphc/py`` (default ``~/.cache/graphc/py``): the module's text
(``value_and_grad`` and ``forward``), its inputs and gradients, and the code object
Python compiled from it (``marshal``, as ``__pycache__`` keeps ``.pyc`` files). A later
``graphc.compile`` of the same text with the same arguments, in any process, skips
parsing, differentiating, lowering and Python's own compile: a 10,000-gate program is
callable in tens of milliseconds instead of seconds (docs/performance.md).

On the C target an entry keeps the C source and what the loader needs beside the
library (each gradient's source for an elementwise loop; the module's text and code
object for a tensor program); the library itself is the one :mod:`graphc.c_runtime`
keeps under ``~/.cache/graphc/c`` by the source's hash (compiled again if it was
deleted). Python floats on an elementwise program still take the math target's
function, made on their first call from the text, parsed again.

An entry is keyed by a SHA-256 of the text, the arguments (``wrt``, ``target``,
``shapes``, ``zero_copy``) and everything the module's text and code depend on:
graphc's own source files, the Python version (code objects are version-specific),
NumPy's and SymPy's versions (the docstring's closed forms are SymPy's printing). An
entry that cannot be read (truncated, damaged, another format) is a miss and is written
again; a cache that cannot be written is no failure (the compile's result is the same).
Entries are written to a temporary file and renamed into place: a concurrent process
sees a whole entry or none. Nothing is ever evicted; delete the folder to empty it.

Like numba's ``cache=True`` and JAX's persistent compilation cache it is asked for
(``cache=True``): by default nothing is written, so a program's compile always runs
graphc's stages, and a benchmark of them measures them.
"""

from __future__ import annotations

import functools
import hashlib
import marshal
import os
import sys
import tempfile
import types
from pathlib import Path
from typing import Any

from . import c_runtime

__all__ = ["cache_dir", "get", "get_c", "key", "put", "put_c"]

#: The entry's layout; an entry of another layout is a miss.
FORMAT = 1
#: The layout of a C target's entry (its own tag: a Python module's entry is never
#: read as one, nor the other way round).
FORMAT_C = "c1"


def cache_dir() -> Path:
    """$XDG_CACHE_HOME/graphc/py, or ~/.cache/graphc/py (beside the C target's)."""
    return c_runtime.cache_dir().parent / "py"


@functools.cache
def _depends() -> str:
    """A digest of what a compiled module depends on besides its arguments: graphc's
    source files (so an edited checkout never serves an old module), Python's version,
    its code objects' format and its -O level (compile drops asserts and docstrings),
    NumPy's and SymPy's versions."""
    import numpy
    import sympy

    h = hashlib.sha256()
    package = Path(__file__).resolve().parent
    for path in sorted(package.rglob("*.py")):
        h.update(str(path.relative_to(package)).encode() + b"\0" + path.read_bytes() + b"\0")
    for part in (sys.version, sys.implementation.cache_tag, marshal.version,
                 sys.flags.optimize, numpy.__version__, sympy.__version__):  # fmt: skip
        h.update(str(part).encode() + b"\0")
    return h.hexdigest()


def key(text: str, wrt: tuple[str, ...] | None, target: str, shapes: Any,
        zero_copy: bool) -> str:  # fmt: skip
    """The entry's name for a compile of ``text`` with these arguments."""
    fixed = sorted(shapes.items()) if isinstance(shapes, dict) else shapes
    what = repr((FORMAT, _depends(), text, wrt, target, fixed, zero_copy))
    return hashlib.sha256(what.encode()).hexdigest()


def get(name: str) -> tuple[tuple[str, ...], tuple[str, ...], str, str, str, types.CodeType] | None:
    """``(inputs, wrt, target, head, forward, code)`` of entry ``name``, or None."""
    entry = _read(name)
    if (
        type(entry) is not tuple
        or len(entry) != 7
        or entry[0] != FORMAT
        or not all(map(_names, entry[1:3]))
        or not all(type(v) is str for v in entry[3:6])
        or type(entry[6]) is not types.CodeType
    ):
        return None
    return entry[1:]  # type: ignore[return-value]


def _read(name: str) -> Any:
    """Entry ``name`` as marshal reads it, or None (none yet, or damaged)."""
    try:
        return marshal.loads((cache_dir() / name).read_bytes())
    except (OSError, EOFError, ValueError, TypeError):
        return None


def _names(v: Any) -> bool:
    """Whether v is a tuple of names (an entry's inputs or wrt)."""
    return type(v) is tuple and all(type(s) is str for s in v)


def get_c(name: str) -> tuple[Any, ...] | None:
    """A C target's entry (what :func:`graphc.codegen._compile_c` kept), or None:
    ``("loop", inputs, wrt, C source, ((input, kind, value), ...), zero_copy)`` for an
    elementwise program, ``("tensor", inputs, wrt, module text, C source, code)`` for a
    tensor program's module."""
    entry = _read(name)
    if type(entry) is not tuple or len(entry) != 2 or entry[0] != FORMAT_C:
        return None
    kept = entry[1]
    if type(kept) is not tuple or len(kept) != 6 or not all(map(_names, kept[1:3])):
        return None
    kind, rest = kept[0], kept[3:]
    if kind == "loop":  # (C source, ((input, kind, value), ...), zero_copy)
        source, how, zero_copy = rest
        ok = type(source) is str and type(zero_copy) is bool and type(how) is tuple and all(
            type(t) is tuple and len(t) == 3 and type(t[0]) is str and type(t[1]) is str
            and type(t[2]) in (str, int) for t in how
        )  # fmt: skip
    elif kind == "tensor":  # (module text, C source, code object)
        source, c_text, code = rest
        ok = type(source) is str and type(c_text) is str and type(code) is types.CodeType
    else:
        ok = False
    return kept if ok else None


def put_c(name: str, kept: tuple[Any, ...]) -> None:
    """Keep a C target's entry (see :func:`get_c`; best effort, as :func:`put`)."""
    _write(name, (FORMAT_C, kept))


def put(name: str, inputs: tuple[str, ...], wrt: tuple[str, ...], target: str, head: str,
        forward: str, code: types.CodeType) -> None:  # fmt: skip
    """Keep an entry (best effort: a folder that cannot be written is left alone)."""
    _write(name, (FORMAT, inputs, wrt, target, head, forward, code))


def _write(name: str, entry: tuple[Any, ...]) -> None:
    """Write ``entry`` as file ``name``: to a temporary file, renamed into place."""
    folder = cache_dir()
    try:
        folder.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=".tmp-")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(marshal.dumps(entry))
            os.replace(tmp, folder / name)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
    except (OSError, ValueError):  # read-only, full, or a code object marshal refuses
        pass
