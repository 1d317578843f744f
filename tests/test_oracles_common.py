"""Random expressions of graphc's grammar, built twice: as graphc text and as library code.

The oracle tests (``test_oracles_torch.py``, ``test_oracles_jax.py``) draw an expression
tree with :func:`trees`, render it as graphc text with :func:`to_text` and evaluate it
with a library's own functions with :func:`to_library`; the two renderings share no code
with graphc. The test here checks the text rendering against SymPy built from the same
tree, so that a bug in the renderer cannot hide behind a bug in graphc.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import sympy as sp
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st

import graphc

VARS = ("x", "y", "z")
UNARY = ("exp", "log", "sqrt", "sin", "cos", "tan", "tanh", "sigmoid", "relu", "softplus", "abs")
BINARY_FN = ("max", "min")
INFIX = ("+", "-", "*", "/")
POWERS = ("2", "3", "-1")
NUMBERS = ("2", "0.5", "3", "1e-1", "1.25")

# no shrinking: on a slow machine it can take many minutes; the failing example is printed
SETTINGS = settings(
    max_examples=30,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],
)
# outputs that are an input, or an input behind gates that cancel
DEGENERATE = (("var", "x"), ("neg", ("neg", ("var", "y"))), ("pow", ("var", "z"), "2"))


def trees(
    max_leaves: int = 8, unary: tuple[str, ...] = UNARY, binary: tuple[str, ...] = BINARY_FN
) -> st.SearchStrategy[Any]:
    """Expression trees: ("var", n) | ("num", s) | ("neg", t) | ("pow", t, k) |
    ("infix", op, l, r) | ("call", f, t) | ("call2", f, l, r), f from ``unary`` and
    ``binary``. ``log``/``sqrt`` of an arbitrary tree are wrapped as f(abs(t) + 0.5) so
    that they stay in their domain."""
    leaves = st.one_of(
        st.sampled_from(VARS).map(lambda v: ("var", v)),
        st.sampled_from(NUMBERS).map(lambda s: ("num", s)),
    )

    def extend(children: st.SearchStrategy[Any]) -> st.SearchStrategy[Any]:
        return st.one_of(
            st.tuples(st.just("neg"), children),
            st.tuples(st.just("pow"), children, st.sampled_from(POWERS)),
            st.tuples(st.just("infix"), st.sampled_from(INFIX), children, children),
            st.tuples(st.just("call"), st.sampled_from(unary), children),
            *([st.tuples(st.just("call2"), st.sampled_from(binary), children, children)]
              if binary else []),
        )  # fmt: skip

    return st.recursive(leaves, extend, max_leaves=max_leaves).filter(uses_a_variable)


def uses_a_variable(t: Any) -> bool:
    """Whether the tree reads x, y or z (a constant expression has no gradient)."""
    if t[0] == "var":
        return True
    return any(isinstance(c, tuple) and uses_a_variable(c) for c in t[1:])


def points() -> st.SearchStrategy[dict[str, float]]:
    coord = st.floats(-2, 2, allow_nan=False).filter(lambda v: abs(v) > 1e-3)
    return st.fixed_dictionaries({v: coord for v in VARS})


def _guarded(f: str) -> bool:
    return f in ("log", "sqrt")


def to_text(t: Any) -> str:
    """The tree as graphc text, fully parenthesized."""
    kind = t[0]
    if kind == "var":
        return t[1]
    if kind == "num":
        return t[1]
    if kind == "neg":
        return f"-({to_text(t[1])})"
    if kind == "pow":
        return f"({to_text(t[1])})^({t[2]})"
    if kind == "infix":
        return f"({to_text(t[2])}) {t[1]} ({to_text(t[3])})"
    if kind == "call":
        inner = to_text(t[2])
        return f"{t[1]}(abs({inner}) + 0.5)" if _guarded(t[1]) else f"{t[1]}({inner})"
    return f"{t[1]}({to_text(t[2])}, {to_text(t[3])})"


class Kink(Exception):
    """The point lies on a kink (abs/relu at 0, max/min of equal arguments)."""


def to_library(
    t: Any, env: dict[str, Any], ns: dict[str, Callable[..., Any]], value: Callable[[Any], float]
) -> Any:
    """Evaluate the tree with a library's functions ``ns``; ``value`` reads a float.

    Raises :class:`Kink` where a non-differentiable point is hit, since libraries
    disagree on the subgradient there.
    """
    kind = t[0]
    if kind == "var":
        return env[t[1]]
    if kind == "num":
        return float(t[1])
    if kind == "neg":
        return -to_library(t[1], env, ns, value)
    if kind == "pow":
        return to_library(t[1], env, ns, value) ** int(t[2])
    if kind == "infix":
        a, b = to_library(t[2], env, ns, value), to_library(t[3], env, ns, value)
        if t[1] == "+":
            return a + b
        if t[1] == "-":
            return a - b
        return a * b if t[1] == "*" else a / b
    if kind == "call":
        a = to_library(t[2], env, ns, value)
        if t[1] in ("abs", "relu") and value(a) == 0:
            raise Kink
        if _guarded(t[1]):
            a = ns["abs"](a) + 0.5
            if value(a) == 0.5:
                raise Kink
        return ns[t[1]](a)
    a, b = to_library(t[2], env, ns, value), to_library(t[3], env, ns, value)
    if value(a) == value(b):
        raise Kink
    return ns[t[1]](a, b)


def to_sympy(t: Any, env: dict[str, sp.Symbol]) -> sp.Expr:
    """The tree as SymPy, built independently of graphc."""
    fns: dict[str, Callable[..., Any]] = {
        "exp": sp.exp,
        "log": sp.log,
        "sqrt": sp.sqrt,
        "sin": sp.sin,
        "cos": sp.cos,
        "tan": sp.tan,
        "tanh": sp.tanh,
        "sigmoid": lambda a: 1 / (1 + sp.exp(-a)),
        "relu": lambda a: sp.Max(a, 0),
        "softplus": lambda a: sp.log(1 + sp.exp(a)),
        "abs": sp.Abs,
        "max": sp.Max,
        "min": sp.Min,
    }
    return to_library(t, env, fns, value=lambda a: math.nan)


def graphc_results(text: str, point: dict[str, float]) -> list[tuple[str, Any, dict]]:
    """(where, value, grads) from Graph.evaluate and both targets of graphc.compile."""
    g = graphc.parse(text)
    pt = {k: point[k] for k in g.inputs}
    out = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = g.evaluate(**pt)
        out.append(("evaluate", ev.value, dict(ev.grads)))
        for target in ("numpy", "math"):
            try:
                value, grads = graphc.compile(g, target=target).value_and_grad(**pt)
            except (OverflowError, ValueError, ZeroDivisionError):
                continue  # the math target raises where NumPy gives inf/nan
            out.append((f"compile {target}", value, grads))
    return out


def assert_close(got: Any, want: float, where: str) -> None:
    got = float(np.asarray(got))
    assert math.isclose(got, want, rel_tol=1e-9, abs_tol=1e-11), (where, got, want)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(trees(max_leaves=6), points())
def test_text_rendering_matches_sympy_built_from_the_same_tree(tree, point):
    syms = {v: sp.Symbol(v) for v in VARS}
    expr = to_sympy(tree, syms)
    try:
        want = complex(expr.evalf(subs={syms[k]: v for k, v in point.items()}))
    except (ValueError, TypeError, ZeroDivisionError):
        # SymPy cannot order a residue such as 0.e-125 in Max, or meets a pole:
        # 1/log(|x| + 0.5) at x = 0.5 is 1/0 (found by GRAPHC_FUZZ=1)
        assume(False)
    assume(math.isfinite(want.real) and abs(want.imag) < 1e-12 and abs(want.real) < 1e12)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        g = graphc.parse(to_text(tree))
        got = g.evaluate(**{k: point[k] for k in g.inputs}).value
    assert_close(got, want.real, to_text(tree))
