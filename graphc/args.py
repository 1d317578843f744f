"""The arguments of graphc's Python API, read in one place.

Each reader turns what a caller passed into what graphc uses, or raises
:class:`~graphc.errors.InputError` naming the argument, what it takes and what it got
(``compile(g, wrt=3)``: "wrt must be an input's name, names separated by commas or a
list of names, got int 3"), never a raw ``TypeError`` or ``AttributeError`` from deep
inside.
"""

from __future__ import annotations

import math
import os
from collections.abc import Iterable, Mapping
from numbers import Integral, Real
from pathlib import Path
from typing import Any

from .errors import InputError

__all__ = ["MAX_DRAWN", "got", "is_whole", "names_arg", "number_arg", "path_arg", "shapes_arg"]

#: Most elements of one input that graphc draws at random itself (``check`` of a tensor
#: program, ``check_backward``): 8 MB of float64, of which it evaluates many.
MAX_DRAWN = 1_000_000


def got(value: Any) -> str:
    """What a caller passed, for a message: ``int 3``, ``str 'x'``, ``a function``."""
    if callable(value) and not isinstance(value, type):
        return "a function"
    shape = getattr(value, "shape", None)
    if isinstance(shape, tuple) and len(shape) and hasattr(value, "dtype"):  # an array:
        return f"{type(value).__name__} of shape {shape} and dtype {value.dtype}"  # one line
    text = repr(value)
    text = text if len(text) <= 60 else text[:57] + "..."
    return f"{type(value).__name__} {text}"


def is_whole(n: Any) -> bool:
    """Whether ``n`` is a whole number for a count or a seed: an int or a NumPy integer,
    not a bool (``points=True`` is a slip, not one point)."""
    return isinstance(n, Integral) and not isinstance(n, bool)


def names_arg(value: Any, what: str = "wrt") -> tuple[str, ...] | None:
    """``None``, ``"x, y"`` or an iterable of names as a tuple of names, each once, in
    order (``None`` kept)."""
    if value is None:
        return None
    if isinstance(value, str):
        return tuple(dict.fromkeys(w.strip() for w in value.split(",") if w.strip()))
    if isinstance(value, Iterable) and not isinstance(value, bytes | Mapping):
        names = tuple(value)
        if all(isinstance(n, str) for n in names):
            return tuple(dict.fromkeys(names))
        bad = next(n for n in names if not isinstance(n, str))
        raise InputError(f"{what} must hold names (text), got {got(bad)} in it")
    raise InputError(
        f"{what} must be an input's name, names separated by commas or a list of names,"
        f" got {got(value)}"
    )


def _dim(d: Any) -> bool:
    return (is_whole(d) and d >= 0) or (isinstance(d, str) and d.isidentifier())


def shapes_arg(value: Any, what: str = "shapes", max_elements: int | None = None
               ) -> dict[str, Any]:  # fmt: skip
    """``None`` or ``{name: shape}`` as a dict of tuples; a shape is a number of elements
    (``3``) or a sequence of dims, each a whole number or a dim's name (``(N, 3)``).
    ``max_elements``: where graphc itself makes arrays of these shapes, the most a
    shape of whole numbers may hold."""
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise InputError(f"{what} must map inputs to shapes ({{'x': (3,)}}), got {got(value)}")
    out: dict[str, Any] = {}
    for name, shape in value.items():
        if not isinstance(name, str):
            raise InputError(f"{what} must map names (text) to shapes, got the key {got(name)}")
        dims = (shape,) if is_whole(shape) else shape
        ok = isinstance(dims, Iterable) and not isinstance(dims, str | bytes | Mapping)
        dims = tuple(dims) if ok else ()
        if not ok or not all(_dim(d) for d in dims):
            raise InputError(
                f"{what}[{name!r}] must be a shape such as (3,), (N, 3) or () (dims: whole"
                f" numbers, 0 or more, or names), got {got(shape)}"
            )
        numbers = [int(d) for d in dims if not isinstance(d, str)]
        size = math.prod(numbers)
        if max_elements is not None and len(numbers) == len(dims) and size > max_elements:
            raise InputError(
                f"{what}[{name!r}] = {dims} holds {size:,} elements; graphc draws at most"
                f" {max_elements:,} for an input"
            )
        out[name] = tuple(d if isinstance(d, str) else int(d) for d in dims)
    return out


def path_arg(value: Any, what: str = "path") -> Path:
    """A file or folder path given as text or a path object; not ``""`` (which
    ``pathlib`` reads as the current folder: writing there was not asked for)."""
    if isinstance(value, str) and not value:
        kind = "a folder" if what == "directory" else "a file or folder"
        raise InputError(f"the {what} given is empty text: name {kind} ('.' for this one)")
    if isinstance(value, str | os.PathLike) and not isinstance(value, bytes):
        try:
            return Path(value)
        except TypeError:  # a PathLike whose __fspath__ gives bytes
            pass
    raise InputError(f"{what} must be a path (text or pathlib.Path), got {got(value)}")


def number_arg(value: Any, what: str, *, low: float = -math.inf, high: float = math.inf
               ) -> float:  # fmt: skip
    """A finite real number (not a bool) with ``low <= value < high``."""
    ok = isinstance(value, Real) and not isinstance(value, bool)
    try:
        number = float(value) if ok else math.nan
    except OverflowError:  # an int past float's range
        number = math.inf if value > 0 else -math.inf
    if not ok or not math.isfinite(number) or not low <= number < high:
        bounds = (f" from {low:g}" if low > -math.inf else "") + (
            f" and below {high:g}" if high < math.inf else ""
        )
        raise InputError(f"{what} must be a finite number{bounds}, got {got(value)}")
    return number
