"""Checking gradient *code*: finite differences, and hand-written backward passes vs graphc.

:func:`gradcheck` checks a NumPy function that returns its value and its gradients
(``fn(**inputs) -> (value, {name: grad})``, like the cs231n assignments' loss
functions) against central finite differences ``(f(x+h) - f(x-h)) / 2h`` of its
value (the sum of it, for an array value). :func:`check_backward` checks a user's
hand-written backward function against graphc's own gradients of a graph, on random
arrays.

Both report, per input, the *relative error* the cs231n notes recommend,
``|a - n| / max(|a|, |n|)`` (entries where both are below ``floor`` count as equal,
since a ratio of two roundoff-sized numbers means nothing), and where it is worst.
The notes' reading: above 1e-2 the gradient is probably wrong; 1e-4 is suspicious
unless the function has kinks; below 1e-7 is what a correct float64 gradient gives.
"""

from __future__ import annotations

import inspect
import math
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .args import MAX_DRAWN, got, is_whole, number_arg, shapes_arg
from .domain import Domain, as_domain
from .errors import InputError

__all__ = ["GradcheckResult", "InputReport", "check_backward", "gradcheck", "relative_error"]

#: Most random points check_backward tries.
MAX_TRIALS = 10_000


@dataclass(frozen=True)
class InputReport:
    """One input: its worst relative error and where it occurs."""

    name: str
    error: float
    index: tuple[int, ...]
    expected: float
    got: float
    note: str = ""
    #: entries checked, where fewer than all (drawn at random), and how many there are
    sampled: tuple[int, int] | None = None


@dataclass(frozen=True)
class GradcheckResult:
    """The result of :func:`gradcheck` or :func:`check_backward`.

    Attributes:
        ok: every input's worst relative error is at most ``tol`` (and nothing missing).
        inputs: one :class:`InputReport` per input, in order.
        tol: the tolerance used.
        what: ``"numeric"`` (finite differences) or ``"graphc"`` (the reference).
    """

    inputs: tuple[InputReport, ...]
    tol: float
    what: str = "numeric"

    @property
    def ok(self) -> bool:
        return all(r.error <= self.tol and not r.note for r in self.inputs)

    @property
    def errors(self) -> dict[str, float]:
        """``{input: worst relative error}``."""
        return {r.name: r.error for r in self.inputs}

    @property
    def worst(self) -> InputReport:
        """The input with the largest relative error."""
        return max(self.inputs, key=lambda r: (bool(r.note), r.error))

    def __str__(self) -> str:
        head = "✓ gradients agree" if self.ok else "✗ gradients disagree"
        lines = [f"{head} (relative error tolerance {self.tol:g})"]
        for r in self.inputs:
            if r.note:
                lines.append(f"  {r.name}: {r.note}")
                continue
            mark = "ok" if r.error <= self.tol else "WRONG"
            where = f"{r.name}[{', '.join(map(str, r.index))}]" if r.index else r.name
            lines.append(
                f"  {r.name}: relative error {r.error:.2e} ({mark}); worst at {where}: "
                f"yours {r.got:.6g}, {self.what} {r.expected:.6g}"
                + (f" ({r.sampled[0]:,} of its {r.sampled[1]:,} entries, drawn at random)"
                   if r.sampled else "")
            )  # fmt: skip
        return "\n".join(lines)


def relative_error(a: Any, b: Any, floor: float = 1e-8) -> np.ndarray:
    """``|a - b| / max(|a|, |b|)`` entrywise; 0 where both are below ``floor``.

    Non-finite entries agree only with the same value (nan with nan, inf with inf);
    anything else, say inf against a finite number, is an infinite error.

    >>> round(float(relative_error(1.0, 1.1)), 4)
    0.0909
    >>> float(relative_error(np.inf, 1.0))
    inf
    """
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    scale = np.maximum(np.abs(a), np.abs(b))
    with np.errstate(all="ignore"):
        err = np.abs(a - b) / scale
    err = np.where(scale < floor, 0.0, err)
    differ = (np.isnan(a) != np.isnan(b)) | ((np.isinf(a) | np.isinf(b)) & (a != b))
    return np.where(differ, np.inf, np.nan_to_num(err, nan=0.0))


def _report(name: str, expected: Any, got: Any, floor: float,
            only: np.ndarray | None = None) -> InputReport:  # fmt: skip
    """The worst relative error of ``got`` against ``expected`` (at the flat indices
    ``only``, where not every entry was computed)."""
    expected = np.asarray(expected, dtype=float)
    got = _returned(f"the gradient of {name}" if name != "value" else "the value", got)
    try:
        got = np.broadcast_to(got, expected.shape)
    except ValueError:
        return InputReport(
            name, np.inf, (), np.nan, np.nan,
            f"gradient of shape {np.shape(got)}, expected {expected.shape}",
        )  # fmt: skip
    flat = np.arange(expected.size) if only is None else only
    err = relative_error(got.reshape(-1)[flat], expected.reshape(-1)[flat], floor)
    worst = int(flat[int(np.argmax(err))]) if err.size else 0
    at = tuple(int(i) for i in np.unravel_index(worst, expected.shape)) if expected.ndim else ()
    sampled = None if only is None else (int(only.size), int(expected.size))
    return InputReport(name, float(np.max(err, initial=0.0)), at, float(expected[at]),
                       float(got[at]), sampled=sampled)  # fmt: skip


def _floats(value: Any, message: str, copy: bool = False) -> np.ndarray:
    """``value`` as a float array (a copy where ``copy``); InputError(``message`` with
    ``{}`` as what it was) for what is not numbers (text, a ragged list, a function, an
    int past float's range)."""
    try:
        return np.array(value, dtype=float) if copy else np.asarray(value, dtype=float)
    except (TypeError, ValueError, OverflowError):
        raise InputError(message.format(got(value))) from None


def _returned(what: str, value: Any) -> np.ndarray:
    """What the user's function returned, as floats."""
    return _floats(value, f"{what} that the function returned is not a number or an array"
                          " of numbers: {}")  # fmt: skip


def _split(out: Any, names: tuple[str, ...]) -> tuple[Any, Mapping[str, Any]]:
    """``(value, grads)`` from what a user's function returned."""
    if not (isinstance(out, tuple) and len(out) == 2):
        raise InputError("the function must return (value, grads): grads a dict or a tuple")
    value, grads = out
    if isinstance(grads, Mapping):
        return value, grads
    if len(names) == 1 and not isinstance(grads, tuple | list):
        return value, {names[0]: grads}
    if isinstance(grads, tuple | list) and len(grads) == len(names):
        return value, dict(zip(names, grads, strict=True))
    raise InputError(
        f"grads must be a dict {{name: grad}} or a tuple of {len(names)} arrays in input order"
    )


def gradcheck(
    fn: Callable[..., Any],
    inputs: Mapping[str, Any] | None = None,
    /,
    *,
    eps: float = 1e-5,
    tol: float = 1e-6,
    floor: float = 1e-8,
    checks: int | None = 1000,
    seed: int = 0,
    **named: Any,
) -> GradcheckResult:
    """Check ``fn``'s own gradients against central finite differences.

    Args:
        fn: ``fn(**inputs) -> (value, grads)``; ``grads`` is ``{name: array}`` or a
            tuple in input order. An array value stands for its sum.
        inputs: the point, ``{name: value}`` (or pass them as keywords, as below).
        eps: finite-difference step. tol: largest relative error accepted.
        floor: entries where both gradients are below it count as equal.
        checks: the most entries checked per input (two calls of ``fn`` each): an input
            with more has that many drawn at random (``seed``), as cs231n's
            ``grad_check_sparse`` does, and the report says so; ``None`` checks all.

    Returns:
        a :class:`GradcheckResult` (``.ok``, ``.errors``, ``.worst``, readable ``str``).

    >>> import numpy as np
    >>> def f(w, x):                 # f = sum(w * x); df/dw = x, df/dx = w
    ...     return np.sum(w * x), {"w": x, "x": w}
    >>> gradcheck(f, w=np.array([1.0, 2.0]), x=np.array([3.0, -1.0])).ok
    True
    >>> def broken(w, x):
    ...     return np.sum(w * x), {"w": x, "x": 2 * w}
    >>> r = gradcheck(broken, w=np.array([1.0, 2.0]), x=np.array([3.0, -1.0]))
    >>> r.ok, r.worst.name
    (False, 'x')
    """
    if not callable(fn):
        raise InputError(f"fn must be a function fn(**inputs) -> (value, grads), got {got(fn)}")
    if inputs is not None and not isinstance(inputs, Mapping):
        raise InputError(f"inputs must map names to values ({{'x': 1.0}}), got {got(inputs)}")
    point = {**(inputs or {}), **named}
    if not point:
        raise InputError("gradcheck needs the point: gradcheck(fn, x=..., w=...)")
    if number_arg(eps, "eps (the step)") <= 0:
        raise InputError(f"eps must be a positive step, got {eps!r}")
    tol, floor = number_arg(tol, "tol", low=0.0), number_arg(floor, "floor", low=0.0)
    if checks is not None and not (is_whole(checks) and checks >= 1):
        raise InputError(f"checks must be a whole number from 1, or None, got {got(checks)}")
    if not is_whole(seed):
        raise InputError(f"seed must be a whole number, got {got(seed)}")
    rng = np.random.default_rng(seed)
    point = {k: _numbers(k, v) for k, v in point.items()}
    empty = [k for k, v in point.items() if v.size == 0]
    if empty:
        raise InputError(f"input {empty[0]} is an empty array: nothing to check")
    names = tuple(point)
    value, grads = _split(fn(**point), names)
    total = float(np.sum(_returned("the value", value)))
    if not math.isfinite(total):  # every difference would be nan (or inf): no check
        shown = "the sum of the value" if np.ndim(value) else "the value"
        raise InputError(
            f"{shown} is {total} at this point, so finite differences cannot check the"
            " gradients there; choose a point where f is finite"
        )
    reports = []
    for name in names:
        if name not in grads:
            reports.append(InputReport(name, np.inf, (), np.nan, np.nan, "no gradient returned"))
            continue
        numeric = np.zeros_like(point[name])
        flat = point[name].reshape(-1)
        only = None  # every entry, unless there are more than `checks`
        if checks is not None and flat.size > checks:
            only = np.sort(rng.choice(flat.size, size=checks, replace=False))
        for j in range(flat.size) if only is None else only:
            old = flat[j]
            flat[j] = old + eps
            up = float(np.sum(_returned("the value", _split(fn(**point), names)[0])))
            flat[j] = old - eps
            down = float(np.sum(_returned("the value", _split(fn(**point), names)[0])))
            flat[j] = old
            numeric.reshape(-1)[j] = (up - down) / (2 * eps)
        reports.append(_report(name, numeric, grads[name], floor, only))
    return GradcheckResult(tuple(reports), tol, "numeric")


def check_backward(
    graph: Any,
    my_backward: Callable[..., Any],
    *,
    shapes: Mapping[str, tuple[int, ...]] | None = None,
    domain: Domain | str | Mapping[str, Any] | None = None,
    trials: int = 3,
    seed: int = 0,
    tol: float = 1e-7,
    floor: float = 1e-10,
) -> GradcheckResult:
    """Check a hand-written NumPy backward function against graphc's gradients.

    Args:
        graph: the function, as text or a :class:`~graphc.Graph`.
        my_backward: ``my_backward(**inputs)`` returning ``{input: grad}``, or
            ``(value, {input: grad})`` (then the value is checked too); ``grad`` is
            the gradient of ``sum(f)``, of its input's shape.
        shapes: per input, the array shape drawn (default ``(5,)``; ``()`` for scalars).
        domain: where inputs are drawn (as in :func:`graphc.check`).
        trials: random points tried. seed: their seed. tol: largest relative error.

    Returns:
        a :class:`GradcheckResult` of the worst trial.

    >>> import numpy as np
    >>> def mine(x, y, z):           # f = (x + y) * z
    ...     return {"x": z, "y": z, "z": x + y}
    >>> check_backward("(x+y)*z", mine).ok
    True
    >>> check_backward("(x+y)*z", lambda x, y, z: {"x": z, "y": z, "z": x * y}).ok
    False
    """
    from .graph import as_graph

    g = as_graph(graph)
    if not callable(my_backward):
        raise InputError(f"my_backward must be a function of the inputs, got {got(my_backward)}")
    if not g.inputs:
        raise InputError("the function has no inputs: there is no gradient to check")
    if not (is_whole(trials) and 1 <= trials <= MAX_TRIALS):
        raise InputError(f"trials must be a whole number from 1 to {MAX_TRIALS:,}, got {trials!r}")
    if not (is_whole(seed) and seed >= 0):
        raise InputError(f"seed must be a whole number, 0 or more, got {seed!r}")
    tol, floor = number_arg(tol, "tol", low=0.0), number_arg(floor, "floor", low=0.0)
    dom = as_domain(domain)
    shapes = shapes_arg(shapes, max_elements=MAX_DRAWN)
    named = [k for k, s in shapes.items() if any(isinstance(d, str) for d in s)]
    if named:
        raise InputError(f"shapes[{named[0]!r}] = {shapes[named[0]]}: arrays are drawn in"
                         " sizes, give numbers")  # fmt: skip
    unknown = [k for k in shapes if k not in g.inputs]
    if unknown:
        raise InputError(f"shapes for {', '.join(unknown)}: not inputs of the graph")
    dom.check_names(g.inputs, "an input of the graph")
    drawn = {name: tuple(shapes.get(name, (5,))) for name in g.inputs}
    if dom.relations and len(set(drawn.values())) > 1:  # relations hold entry by entry
        raise InputError("a domain relating inputs (x < y) needs the inputs in one shape;"
                         f" shapes: {drawn}")  # fmt: skip
    _signature_check(my_backward, g.inputs)
    rng = np.random.default_rng(seed)
    worst: GradcheckResult | None = None
    defined = False  # whether f was finite at an entry of a point drawn
    for _ in range(trials):
        if dom.relations:  # drawn together: every entry's point satisfies them
            size = math.prod(next(iter(drawn.values())))
            joint = dom.sample(g.inputs, size, rng)
            point = {name: joint[name].reshape(drawn[name]) for name in g.inputs}
        else:
            point = {name: dom.sample((name,), math.prod(shape), rng)[name].reshape(shape)
                     for name, shape in drawn.items()}  # fmt: skip
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")  # entries outside f's domain: NaN, compared
            ev = g.evaluate(**point)
        defined = defined or bool(np.isfinite(ev.value).any())
        out = my_backward(**{k: v.copy() for k, v in point.items()})
        reports = []
        if isinstance(out, tuple):
            value, grads = _split(out, g.inputs)
            reports.append(_report("value", ev.value, value, floor))
        elif isinstance(out, Mapping):
            grads = out
        else:
            raise InputError("my_backward must return {input: grad} or (value, {input: grad})")
        extra = [k for k in grads if k not in g.inputs]
        if extra:
            raise InputError(f"my_backward returned gradients for unknown inputs: {extra}")
        for name in g.inputs:
            if name not in grads:
                reports.append(
                    InputReport(name, np.inf, (), np.nan, np.nan, "no gradient returned")
                )
            else:
                reports.append(_report(name, ev.grads[name], grads[name], floor))
        result = GradcheckResult(tuple(reports), tol, "graphc")
        if worst is None or (result.worst.error, bool(result.worst.note)) > (
            worst.worst.error,
            bool(worst.worst.note),
        ):
            worst = result
    assert worst is not None
    if not defined:  # graphc's gradients are NaN too: a NaN from my_backward would agree
        raise InputError(
            f"f is not finite at any of the {trials} points drawn, so nothing can be"
            " compared; give a domain where f is defined (domain='x > 0')"
        )
    return worst


def _numbers(name: str, value: Any) -> np.ndarray:
    """An input's value as a float array (a copy: finite differences move its entries)."""
    return _floats(value, f"input {name}: {{}} is not a number or an array of numbers", copy=True)


def _signature_check(fn: Callable[..., Any], names: tuple[str, ...]) -> None:
    try:
        inspect.signature(fn).bind(**dict.fromkeys(names, 0.0))
    except TypeError as e:
        raise InputError(
            f"my_backward must accept the inputs as keywords ({', '.join(names)}): {e}"
        ) from None
    except ValueError:  # builtins without a signature
        return
