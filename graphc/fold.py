"""Constant folding with the semantics of evaluation: NumPy float64, one gate at a time.

A gate whose arguments are all constants is computed once, when graphc builds a graph
itself (gradient graphs, the graph :func:`graphc.rewrite.prepare` makes for code
generation), exactly as evaluation would compute it: by the op's NumPy lowering in
float64, so ``(-8)^(1/3)`` and ``(-1)^0.5`` are nan, ``1/0`` is inf and ``sqrt(-1)``
is nan, never a complex number or a ``ZeroDivisionError``.

The folded value is kept as an exact SymPy Rational where SymPy's exact result is a
small Rational (numerator and denominator under 2**64) that float64 represents as the
NumPy result (``3 - 1`` is 2, so ``x^3`` still differentiates to ``3*x^2``);
otherwise as the float's own exact value. A non-finite result is ``sp.oo``, ``-sp.oo``
or ``sp.nan`` (generated code spells them ``np.inf``, ``math.nan``). SymPy is asked
only for cheap ops on small operands, so a power tower never runs SymPy's big-integer
arithmetic.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import sympy as sp

from .ops import numpy_callable

__all__ = ["MAX_DIGITS", "NONFINITE", "check_exact", "fold"]

#: The constant values that are not Rationals.
NONFINITE = (sp.oo, -sp.oo, sp.nan)
_EXACT_OPS = frozenset({"add", "sub", "mul", "div", "neg", "abs", "max", "min", "relu", "sign"})
_SMALL = 2**64
_MAX_POWER = 64  # largest integer exponent computed exactly
#: Most decimal digits of an exact power SymPy is asked to compute in a closed form.
MAX_DIGITS = 4000


def _small(v: Any) -> bool:
    return isinstance(v, sp.Rational) and abs(v.p) < _SMALL and v.q < _SMALL


def _exact(op: str, consts: tuple[Any, ...]) -> sp.Rational | None:
    from .ops import OPS

    if not all(_small(c) for c in consts):
        return None
    if op == "pow":
        base, power = consts
        if not (power.is_Integer and abs(power) <= _MAX_POWER) or (base == 0 and power < 0):
            return None
    elif op not in _EXACT_OPS or (op == "div" and consts[1] == 0):
        return None
    value = sp.sympify(OPS[op].sympy(*consts))
    return value if _small(value) else None


def fold(op: str, consts: tuple[Any, ...]) -> Any:
    """The value of op applied to constant values, as evaluation computes it (``None``
    for -0.0, which stays a gate: its sign matters to a later division).

    >>> fold("pow", (sp.Integer(-8), sp.Rational(1, 3)))
    nan
    >>> fold("div", (sp.Integer(1), sp.Integer(0)))
    oo
    >>> fold("sub", (sp.Integer(3), sp.Integer(1)))
    2
    """
    with np.errstate(all="ignore"):
        value = float(numpy_callable(op)(*(np.float64(float(c)) for c in consts)))
    if math.isnan(value):
        return sp.nan
    if math.isinf(value):
        return sp.oo if value > 0 else -sp.oo
    if value == 0.0 and math.copysign(1.0, value) < 0:
        return None  # -0.0: a Rational would lose the sign (x / (0 / -inf) is -inf)
    exact = _exact(op, consts)
    if exact is not None and float(exact) == value:
        return exact
    return sp.Rational(value)


def _huge(q: sp.Rational) -> bool:
    return max(abs(q.p).bit_length(), q.q.bit_length()) > 100  # about 30 digits


def check_exact(op: str, args: tuple[Any, ...]) -> None:
    """Raise :class:`~graphc.errors.GraphcError` before SymPy computes an exact power of
    more than :data:`MAX_DIGITS` digits (``2^2^2^2^2^2``, ``1e400^1e400``), which would
    take minutes and gigabytes; evaluation and generated code compute it in float64.
    """
    if op != "pow":
        return
    if not all(isinstance(a, sp.Rational) for a in args):
        # a power of a product with a huge coefficient, (1e400*x)^(1/3): SymPy takes the
        # coefficient's root exactly, factoring a 400-digit integer (minutes)
        coeff = sp.sympify(args[0]).as_coeff_Mul()[0]
        if isinstance(coeff, sp.Rational) and not args[1].is_Integer and _huge(coeff):
            from .errors import GraphcError

            raise GraphcError(
                "a root of a constant too large to compute exactly: too large to print; "
                "use the gradient graph (evaluate or compile)"
            )
        return
    base, power = args
    if base in (0, 1, -1):
        return
    digits = max(abs(base.p).bit_length(), base.q.bit_length()) * math.log10(2)
    if digits * abs(float(power)) > MAX_DIGITS:
        from .errors import GraphcError

        raise GraphcError(
            f"a power of constants too large to compute exactly (more than {MAX_DIGITS:,} "
            "digits): too large to print; use the gradient graph (evaluate or compile)"
        )
