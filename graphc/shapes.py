"""Shapes: the shape algebra of tensor programs, read by every op's shape rule.

A shape is a tuple of dims; a dim is an ``int`` or a symbol (``"N"``, ``"D"``) that a
declaration introduced and that evaluation binds to a number. Rules follow NumPy:
broadcasting aligns trailing dims, a dim of 1 stretches; ``@`` contracts the last dim
of its left argument with the first (for 1-d and 2-d arguments, as ``np.matmul``).

Symbols are compared by name: two different symbols are two different dims, so
``W1 @ x`` with ``W1: (H, D)`` and ``x: (K,)`` is refused at parse time even though
D and K could turn out equal (the declarations say they are different things, as the
cs231n notes' letters do). A symbol never stands for 1. A symbol against a number
(``D`` against ``3``) is accepted at parse time and checked when values bind ``D``.

Shape rules raise :class:`ShapeMismatch` with a message about their arguments; the
graph builder turns it into a :class:`~graphc.errors.ShapeError` that names the gate,
its line and column.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

__all__ = [
    "Dim",
    "Shape",
    "ShapeMismatch",
    "attr_dims",
    "bind",
    "bind_attrs",
    "broadcast",
    "fmt",
    "matmul",
    "norm_axes",
    "reduce",
    "sum_axes",
    "sums_to",
]

Dim = int | str
Shape = tuple[Dim, ...]


class ShapeMismatch(Exception):  # noqa: N818  (internal; surfaces as ShapeError)
    """Arguments whose shapes an op cannot combine (message without position)."""


def fmt(shape: Shape | None) -> str:
    """``(N, 3)``, ``(3,)``, ``()`` (a scalar), ``?`` (unknown)."""
    if shape is None:
        return "?"
    if len(shape) == 1:
        return f"({shape[0]},)"
    return "(" + ", ".join(str(d) for d in shape) + ")"


def broadcast(*shapes: Shape) -> Shape:
    """The broadcast shape of ``shapes`` (NumPy rules; symbols match by name)."""
    ndim = max((len(s) for s in shapes), default=0)
    out: list[Dim] = []
    for k in range(ndim):
        dim: Dim = 1
        for s in shapes:
            j = k - (ndim - len(s))
            if j < 0:
                continue
            d = s[j]
            if d == 1 or d == dim:
                continue
            if dim == 1 or (isinstance(dim, str) and isinstance(d, int)):
                dim = d
            elif isinstance(d, str) and isinstance(dim, int):
                continue
            else:
                raise ShapeMismatch(
                    "shapes " + " and ".join(fmt(s) for s in shapes) + " do not broadcast"
                    f" (dim {dim} against {d})"
                )
        out.append(dim)
    return tuple(out)


def matmul(a: Shape, b: Shape) -> Shape:
    """Shape of ``a @ b`` for 1-d and 2-d arguments."""
    if not a or not b or len(a) > 2 or len(b) > 2:
        raise ShapeMismatch(
            f"@ takes vectors and matrices (1-d or 2-d), got {fmt(a)} and {fmt(b)}"
            + ("; multiply scalars with *" if not a or not b else "")
        )
    inner_a = a[-1]
    inner_b = b[0]
    if inner_a != inner_b and type(inner_a) is type(inner_b):
        raise ShapeMismatch(
            f"inner dims differ: {fmt(a)} @ {fmt(b)} contracts {inner_a} with {inner_b}"
        )
    return a[:-1] + b[1:]


def norm_axes(axis: Any, ndim: int) -> tuple[int, ...]:
    """``axis`` (None, an int or a tuple, negatives allowed) as sorted non-negative axes."""
    if axis is None:
        return tuple(range(ndim))
    axes = axis if isinstance(axis, tuple) else (axis,)
    out = []
    for ax in axes:
        if not isinstance(ax, int) or isinstance(ax, bool):
            raise ShapeMismatch(f"axis must be an integer, got {ax!r}")
        if not -ndim <= ax < ndim:
            raise ShapeMismatch(f"axis {ax} is out of range for {ndim}-d shapes")
        out.append(ax % ndim)
    if len(set(out)) != len(out):
        raise ShapeMismatch(f"axis {axis!r} repeats an axis")
    return tuple(sorted(out))


def reduce(a: Shape, axis: Any, keepdims: bool) -> Shape:
    """Shape after reducing ``a`` over ``axis``."""
    axes = norm_axes(axis, len(a))
    if keepdims:
        return tuple(1 if i in axes else d for i, d in enumerate(a))
    return tuple(d for i, d in enumerate(a) if i not in axes)


def sum_axes(full: Shape, shape: Shape) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """How to sum an array of shape ``full`` down to ``shape`` (undoing broadcasting).

    Returns ``(lead, kept)``: the leading axes to sum away, then the axes (counted in
    ``shape``) where ``shape`` has 1 and ``full`` does not, summed keeping the dim.
    """
    lead = len(full) - len(shape)
    kept = tuple(i for i, d in enumerate(shape) if d == 1 and full[lead + i] != 1)
    return tuple(range(lead)), kept


def sums_to(full: Shape, shape: Shape) -> list[dict[str, Any]]:
    """The sums, as their attributes, that take an array of shape ``full`` down to
    ``shape`` (:func:`sum_axes`): over the leading axes, then over the kept ones with
    ``keepdims``; none where the shapes are one."""
    lead, kept = sum_axes(full, shape)
    sums: list[dict[str, Any]] = []
    if lead:
        sums.append({"axis": lead[0] if len(lead) == 1 else lead})
    if kept:
        sums.append({"axis": kept[0] if len(kept) == 1 else kept, "keepdims": True})
    return sums


def bind(declared: Mapping[str, Shape], actual: Mapping[str, tuple[int, ...]]) -> dict[str, int]:
    """Bind declared symbols to the numbers of actual shapes; raise on disagreement."""
    dims: dict[str, int] = {}
    where: dict[str, str] = {}
    for name, shape in declared.items():
        if name not in actual:
            continue
        got = actual[name]
        if len(got) != len(shape):
            raise ShapeMismatch(f"{name} is declared {fmt(shape)} but has shape {fmt(got)}")
        for d, n in zip(shape, got, strict=True):
            if isinstance(d, int):
                if d != n:
                    raise ShapeMismatch(f"{name} is declared {fmt(shape)} but has shape {fmt(got)}")
            elif d in dims and dims[d] != n:
                raise ShapeMismatch(
                    f"{d} is {dims[d]} in {where[d]} but {n} in {name}"
                    f" ({name} has shape {fmt(got)})"
                )
            else:
                dims.setdefault(d, n)
                where.setdefault(d, name)
    return dims


def bind_attrs(attrs: Any, dims: Mapping[str, Any]) -> tuple[tuple[str, Any], ...]:
    """A gate's attributes (``(("depth", "C"),)``) with dim symbols replaced by their
    numbers (``(("depth", 10),)``)."""
    out = []
    for k, v in attrs:
        if isinstance(v, tuple):
            v = substitute(v, dims)
        elif isinstance(v, str):
            v = dims.get(v, v)
        out.append((k, v))
    return tuple(out)


def attr_dims(attrs: Any) -> list[str]:
    """The dim symbols a gate's attributes name, in order (``reshape(x, (N, 1))``: N)."""
    return [d for _, v in attrs for d in (v if isinstance(v, tuple) else (v,))
            if isinstance(d, str)]  # fmt: skip


def substitute(shape: Shape, dims: Mapping[str, int]) -> Shape:
    """``shape`` with bound symbols replaced by their numbers."""
    return tuple(dims.get(d, d) if isinstance(d, str) else d for d in shape)


def symbols(shapes: Iterable[Sequence[Dim]]) -> list[str]:
    """The symbols of ``shapes`` in order of first appearance."""
    seen: dict[str, None] = {}
    for s in shapes:
        for d in s:
            if isinstance(d, str):
                seen.setdefault(d)
    return list(seen)
