"""The op table, checked row by row against SymPy (table-driven, as JAX's lax tests do).

Every row's partial derivatives must equal ``sympy.diff`` of its forward rule, and its
NumPy and ``math`` lowerings must equal SymPy's value, on the row's test domain.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import sympy as sp

from graphc.ops import HELPERS, OPS, SYMPY, numpy_callable

ROWS = sorted(n for n in OPS if not OPS[n].tensor)  # tensor rows: test_tensor_ops.py
RNG = np.random.default_rng(20261125)


def points(row, n=5):
    return [tuple(RNG.uniform(lo, hi) for lo, hi in row.domain) for _ in range(n)]


def symbols(row):
    return sp.symbols(f"a0:{row.arity}", real=True)


@pytest.mark.parametrize("name", ROWS)
def test_row_is_complete(name):
    row = OPS[name]
    assert len(row.partials) == row.arity
    assert len(row.domain) == row.arity, "each row needs a test domain"
    assert row.symbol and row.latex


@pytest.mark.parametrize("name", ROWS)
def test_partials_equal_sympy_diff(name):
    row = OPS[name]
    syms = symbols(row)
    out = row.sympy(*syms)
    for i in range(row.arity):
        rule = sp.sympify(row.partials[i](SYMPY, out, *syms))
        # away from 0, the derivatives of a step (DiracDelta, d/dh0) vanish
        oracle = sp.diff(out, syms[i]).replace(
            lambda e: isinstance(e, sp.DiracDelta | sp.Derivative), lambda e: sp.Integer(0)
        )
        for p in points(row):
            subs = dict(zip(syms, p, strict=True))
            got = complex(rule.evalf(subs=subs))
            want = complex(oracle.rewrite(sp.exp).evalf(subs=subs))
            assert got == pytest.approx(want, rel=1e-10, abs=1e-12), (name, i, p)


@pytest.mark.parametrize("name", ROWS)
def test_numpy_lowering_equals_sympy(name):
    row = OPS[name]
    syms = symbols(row)
    fn = numpy_callable(name)
    for p in points(row):
        want = float(sp.sympify(row.sympy(*syms)).evalf(subs=dict(zip(syms, p, strict=True))))
        assert float(fn(*(np.float64(v) for v in p))) == pytest.approx(want, rel=1e-12)
        # and elementwise on arrays, broadcasting
        arrays = [np.full((2, 1), v) if j == 0 else np.full((3,), v) for j, v in enumerate(p)]
        got = fn(*arrays)
        assert np.shape(got) == np.broadcast_shapes(*(a.shape for a in arrays))
        assert np.allclose(got, want, rtol=1e-12)


def lowered(row, target, params, body):
    """``def fn(*params): return body`` beside the target's helpers that ``row`` calls,
    and only the module the target's generated code imports (math or np)."""
    namespace = {"np": np} if target == "numpy" else {"math": math}
    for helper in row.helpers(target):
        exec(HELPERS[target][helper], namespace)
    exec(f"def fn({', '.join(params)}):\n    return {body}", namespace)
    return namespace["fn"]


@pytest.mark.parametrize("name", ROWS)
def test_math_lowering_equals_sympy(name):
    row = OPS[name]
    params = [f"a{i}" for i in range(row.arity)]
    fn = lowered(row, "math", params, row.math.format(*params))
    syms = symbols(row)
    for p in points(row):
        want = float(sp.sympify(row.sympy(*syms)).evalf(subs=dict(zip(syms, p, strict=True))))
        assert fn(*p) == pytest.approx(want, rel=1e-12)


def test_stable_sigmoid_and_softplus_at_large_inputs():
    z = np.array([-1000.0, -40.0, 0.0, 40.0, 1000.0])
    with np.errstate(all="raise"):
        s = numpy_callable("sigmoid")(z)
        sp_ = numpy_callable("softplus")(z)
    assert s[0] == 0.0 and s[-1] == 1.0 and s[2] == 0.5
    assert s[1] == pytest.approx(math.exp(-40), rel=1e-12)
    assert sp_[-1] == 1000.0 and sp_[0] == 0.0
    assert sp_[1] == pytest.approx(math.log1p(math.exp(-40)), rel=1e-15)
    assert sp_[3] == pytest.approx(40 + math.log1p(math.exp(-40)), rel=1e-15)


@pytest.mark.parametrize("name", ROWS)
def test_numpy_lowering_written_into_an_argument_gives_the_same_values(name):
    """Generated code lets a gate write into the array of an argument that dies there
    (``dx = _above(x, y, out=y)``): every lowering that takes ``out=`` must read its
    arguments before it writes (``_above`` wrote its comparison into b, then read b)."""
    from graphc.lower import _in_place

    form = _in_place(name)
    if form is None:
        pytest.skip("no out= form: the gate always makes a fresh array")
    row = OPS[name]
    params = [f"a{i}" for i in range(row.arity)]
    fresh = numpy_callable(name)
    into = lowered(row, "numpy", [*params, "out"], form[0].format(*params, out="out"))
    # the domain's values, ties and the IEEE special values, one array per argument
    specials = [0.0, -0.0, 1.0, math.inf, -math.inf, math.nan]
    columns = [
        np.array([*(p[j] for p in points(row, 6)), *specials, *specials[::-1]])
        for j in range(row.arity)
    ]
    with np.errstate(all="ignore"):
        want = fresh(*columns)
        for k in range(row.arity):
            args = [c.copy() for c in columns]
            got = into(*args, out=args[k])
            np.testing.assert_array_equal(got, want, err_msg=f"{name}: out= argument {k}")
