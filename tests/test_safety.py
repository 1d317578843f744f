"""Issue 13, "safe by default": hostile or unusual input gives a right answer or a
GraphcError, never a silent wrong result.

Oracles: graphc's evaluation (NumPy, one op at a time, no rewriting or folding) for
generated code, NumPy's own float64 arithmetic for constants, ``np.shares_memory``.
"""

from __future__ import annotations

import importlib.util
import itertools
import math
import shutil
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import graphc

#: Names the language accepts that generated code or graphc's own API also uses.
ODD_NAMES = (
    "_x", "x_", "x__2", "np", "math", "forward", "grad", "value_and_grad", "inf", "nan",
    "self", "f", "dx", "mul_1", "_broadcast", "_value", "_grad", "_sigmoid", "_shape",
    "_like", "_dtype", "_forward_body", "float", "x", "_000", "__7", "out",
)  # fmt: skip

_counter = itertools.count()

#: The C target as a test parameter: skipped where there is no C compiler.
C_TARGET = pytest.param(
    "c",
    marks=pytest.mark.skipif(
        shutil.which("cc") is None and shutil.which("gcc") is None, reason="no C compiler"
    ),
)


def _load_saved(c: graphc.Compiled, tmp: Path) -> Any:
    path = c.save(tmp / f"generated_{next(_counter)}.py")
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _same(a: Any, b: Any) -> bool:
    return bool(np.allclose(np.asarray(a, float), np.asarray(b, float), rtol=1e-12, atol=0,
                            equal_nan=True))  # fmt: skip


def _agree(text: str, point: dict[str, float], tmp: Path) -> None:
    """Compiled NumPy, compiled math and a saved module agree with evaluation."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = graphc.parse(text).evaluate(**point)
        for target in ("numpy", "math"):
            c = graphc.compile(text, target=target)
            for fn in (c.value_and_grad, _load_saved(c, tmp).value_and_grad):
                f, grads = fn(**point)
                assert _same(f, ev.value), (text, target, f, ev.value)
                assert set(grads) == set(ev.grads)
                for k in grads:
                    assert _same(grads[k], ev.grads[k]), (text, target, k)
            assert _same(c.forward(**point), ev.value)


_names = st.sampled_from(ODD_NAMES)


@st.composite
def _programs(draw: Any) -> tuple[str, dict[str, float]]:
    names = draw(st.lists(_names, min_size=1, max_size=4, unique=True))
    terms = []
    for _ in range(draw(st.integers(1, 4))):
        a, b = draw(st.sampled_from(names)), draw(st.sampled_from(names))
        form = draw(st.sampled_from(["{a}*{b}", "{a} - 3*{b}", "sigmoid({a})*{b}",
                                     "max({a}, {b})", "sin({a}) + {b}^2"]))  # fmt: skip
        terms.append(form.format(a=a, b=b))
    text = " + ".join(terms)
    point = {n: draw(st.floats(-3, 3).map(lambda v: round(v, 2))) for n in names}
    return text, {n: v for n, v in point.items() if n in graphc.parse(text).inputs}


_FIXTURE_OK = [HealthCheck.function_scoped_fixture]


@settings(max_examples=40, deadline=None, suppress_health_check=_FIXTURE_OK)
@given(prog=_programs())
def test_unusual_input_names_work_everywhere(
    tmp_path: Path, prog: tuple[str, dict[str, float]]
) -> None:
    _agree(*prog, tmp_path)


@pytest.mark.parametrize(
    ("text", "point"),
    [
        ("_x*3 + x_*0", {"_x": 1.0, "x_": 5.0}),
        ("_x*y", {"_x": 2.0, "y": 3.0}),
        ("np*math + forward*grad + value_and_grad*inf*self",
         {"np": 1.0, "math": 2.0, "forward": 3.0, "grad": 4.0, "value_and_grad": 5.0,
          "inf": 6.0, "self": 7.0}),
        ("sigmoid(_sigmoid) * _broadcast + _grad/_value",
         {"_sigmoid": 0.5, "_broadcast": 2.0, "_grad": 3.0, "_value": 4.0}),
        ("_000*x + __7 - v000_", {"_000": 2.0, "x": 3.0, "__7": 4.0, "v000_": 5.0}),
        ("out*x", {"out": 2.0, "x": 3.0}),
        ("_forward_body * _value_and_grad_body + mul_1*dx*f",
         {"_forward_body": 2.0, "_value_and_grad_body": 3.0, "mul_1": 4.0, "dx": 5.0, "f": 6.0}),
    ],
)  # fmt: skip
def test_names_that_collide_with_generated_code(text: str, point: dict[str, float],
                                                tmp_path: Path) -> None:  # fmt: skip
    _agree(text, point, tmp_path)


def test_an_input_named_self_in_the_api() -> None:
    ev = graphc.parse("self * 2").evaluate(self=3.0)
    assert float(ev.value) == 6.0 and float(ev.grads["self"]) == 2.0
    f, g = graphc.compile("self * 2").value_and_grad(self=3.0)
    assert float(f) == 6.0 and float(g["self"]) == 2.0


@pytest.mark.parametrize(
    ("text", "point"),
    [
        ("x + 1e400", {"x": 0.5}),
        ("x - 1e400", {"x": 0.5}),
        ("x*1e400 + inf", {"x": 1.0, "inf": 2.0}),
        ("x*-1e400 + nan*2", {"x": 1.0, "nan": 2.0}),
    ],
)
def test_constants_that_overflow(text: str, point: dict[str, float], tmp_path: Path) -> None:
    _agree(text, point, tmp_path)
    assert np.isinf(float(graphc.compile(text).forward(**point)))
    assert "np.inf" in graphc.compile(text).source
    assert "math.inf" in graphc.compile(text, target="math").source


_CONSTANT_PARTS = ["(-8)^(1/3)", "(-1)^0.5", "1/0", "-1/0", "0/0", "sqrt(-1)", "log(0)",
                   "2^1024", "10^-400", "(1/3 - 1)", "0.1*3", "exp(800)*0", "(1/0)*0",
                   "(-2)^3", "2^-2", "(1e200*1e200)/1e400"]  # fmt: skip


@pytest.mark.parametrize("part", _CONSTANT_PARTS)
def test_constants_fold_as_numpy_computes_them(part: str, tmp_path: Path) -> None:
    with np.errstate(all="ignore"):  # the oracle: NumPy float64, step by step, by hand
        expected = {
            "(-8)^(1/3)": np.float64(-8.0) ** (np.float64(1.0) / 3.0),
            "(-1)^0.5": np.float64(-1.0) ** np.float64(0.5),
            "1/0": np.float64(1.0) / 0.0, "-1/0": np.float64(-1.0) / 0.0,
            "0/0": np.float64(0.0) / 0.0, "sqrt(-1)": np.sqrt(np.float64(-1.0)),
            "log(0)": np.log(np.float64(0.0)), "2^1024": np.float64(2.0) ** 1024.0,
            "10^-400": np.float64(10.0) ** -400.0, "(1/3 - 1)": np.float64(1.0) / 3.0 - 1.0,
            "0.1*3": np.float64(0.1) * 3.0, "exp(800)*0": np.exp(np.float64(800.0)) * 0.0,
            "(1/0)*0": np.float64(1.0) / 0.0 * 0.0, "(-2)^3": np.float64(-2.0) ** 3.0,
            "2^-2": np.float64(2.0) ** -2.0,
            "(1e200*1e200)/1e400": np.float64(1e200) * 1e200 / np.float64(np.inf),
        }[part]  # fmt: skip
    for target in ("numpy", "math"):
        c = graphc.compile(f"x + ({part})", target=target)
        f, grads = c.value_and_grad(x=0.5)
        assert _same(f, 0.5 + expected), (part, target, f)
        assert float(grads["x"]) == 1.0
        c = graphc.compile(f"x * ({part})", target=target)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # inf * 0.5 is fine, but 0 * inf warns
            f, grads = c.value_and_grad(x=0.5)
        assert _same(f, 0.5 * expected) and _same(grads["x"], expected), (part, target)
    _agree(f"x + ({part})", {"x": 0.5}, tmp_path)
    _agree(f"x * ({part})", {"x": 0.5}, tmp_path)


def test_max_with_a_constant_that_sympy_finds_complex() -> None:
    c = graphc.compile("max(x, sqrt(-1))")  # SymPy's sqrt(-1) is I: "not comparable"
    f, grads = c.value_and_grad(x=1.0)
    assert np.isnan(f) and np.isnan(grads["x"])
    with pytest.raises(graphc.GraphcError, match="no closed form"):
        graphc.parse("max(x, sqrt(-1))").gradients()


def test_exact_constants_stay_exact() -> None:
    import sympy as sp

    x = sp.Symbol("x", real=True)
    assert sp.simplify(graphc.parse("x^3").gradients()["x"] - 3 * x**2) == 0
    d2 = graphc.parse("x^3/6").derivative("x").derivative("x")
    assert sp.simplify(d2.to_sympy() - x) == 0


@pytest.mark.parametrize("text", ["0/x", "x*0", "0*x", "y + 0/x", "(x*0)*y", "0/x^2"])
@pytest.mark.parametrize("x", [0.0, np.inf, -np.inf, np.nan])
def test_simplifier_keeps_nan_and_inf(text: str, x: float, tmp_path: Path) -> None:
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        # the oracle: the same formula by hand in NumPy float64
        xv, y = np.float64(x), np.float64(2.0)
        expected = {"0/x": 0.0 / xv, "x*0": xv * 0.0, "0*x": 0.0 * xv,
                    "y + 0/x": y + 0.0 / xv, "(x*0)*y": xv * 0.0 * y,
                    "0/x^2": 0.0 / xv**2}[text]  # fmt: skip
        point = {"x": x, "y": 2.0} if "y" in text else {"x": x}
        f = graphc.compile(text).forward(**point)
        assert _same(f, expected), (text, x, f)
        if x != 0.0:  # the math target's 0.0/0.0 raises ZeroDivisionError (Python floats)
            assert _same(graphc.compile(text, target="math").forward(**point), expected)
            _agree(text, point, tmp_path)


_TERMS = ["{a}*{b}", "{a} + {b}", "{a}", "{a} - {b}", "({a} + {b})*{c}", "max({a}, {b})",
          "sigmoid({a})", "{a}*2", "-{a}"]  # fmt: skip


@st.composite
def _alias_programs(draw: Any) -> str:
    names = ["w1", "w2", "x", "b"]
    pick = st.sampled_from(names)
    parts = [
        draw(st.sampled_from(_TERMS)).format(a=draw(pick), b=draw(pick), c=draw(pick))
        for _ in range(draw(st.integers(1, 3)))
    ]
    return draw(st.sampled_from(["{}", "q = {}; q"])).format(" + ".join(parts))


def _assert_no_aliasing(f: Any, grads: dict[str, Any], point: dict[str, Any]) -> None:
    returned = [("f", f), *grads.items()]
    for i, (k, v) in enumerate(returned):
        for name, a in point.items():
            assert not np.shares_memory(v, a), f"{k} shares memory with input {name}"
        for k2, v2 in returned[:i]:
            assert not np.shares_memory(v, v2), f"{k} shares memory with {k2}"


@settings(max_examples=60, deadline=None, suppress_health_check=_FIXTURE_OK)
@given(text=_alias_programs(), same_shapes=st.booleans())
def test_returned_arrays_never_alias(tmp_path: Path, text: str, same_shapes: bool) -> None:
    inputs = graphc.parse(text).inputs
    rng = np.random.default_rng(0)
    shapes = [(3,)] * len(inputs) if same_shapes else [(3,), (1,), (3,), ()][: len(inputs)]
    point = {n: rng.normal(size=s) for n, s in zip(inputs, shapes, strict=True)}
    for target in ("numpy", "math"):
        c = graphc.compile(text, target=target)
        pt = point if target == "numpy" else {n: float(np.sum(v)) for n, v in point.items()}
        for fn in (c.value_and_grad, _load_saved(c, tmp_path).value_and_grad):
            f, grads = fn(**pt)
            _assert_no_aliasing(f, grads, pt)
        _assert_no_aliasing(c.forward(**pt), {}, pt)


def test_zero_copy_is_an_explicit_choice() -> None:
    x, y, z = (np.arange(3.0) + k for k in range(3))
    _, g = graphc.compile("(x+y)*z").value_and_grad(x=x, y=y, z=z)
    g["x"] -= 1.0  # a training loop's in-place update changes nothing else
    assert np.array_equal(g["y"], z) and np.array_equal(z, np.arange(3.0) + 2)
    _, g = graphc.compile("(x+y)*z", zero_copy=True).value_and_grad(x=x, y=y, z=z)
    assert np.shares_memory(g["x"], z) and "zero_copy" in graphc.compile("x", zero_copy=True).source


@pytest.mark.parametrize("bad", [np.inf, -np.inf, np.nan])
def test_non_finite_gradients_are_failures(bad: float) -> None:
    def mine(x: Any, y: Any, z: Any) -> dict[str, Any]:
        with np.errstate(invalid="ignore"):
            return {"x": z * bad, "y": z, "z": x + y}

    r = graphc.check_backward("(x+y)*z", mine)
    assert not r.ok and r.errors["x"] == np.inf and r.errors["y"] == 0.0

    def fn(w: Any) -> tuple[Any, dict[str, Any]]:  # f = sum(w^2), gradient 2w, one entry bad
        g = 2 * w
        g[1] = bad
        return np.sum(w * w), {"w": g}

    assert not graphc.gradcheck(fn, w=np.array([1.0, 2.0, 3.0])).ok


def test_relative_error_of_non_finite_values() -> None:
    from graphc.gradcheck import relative_error

    a = np.array([np.inf, -np.inf, np.nan, np.inf, np.inf, 1.0, np.nan])
    b = np.array([np.inf, -np.inf, np.nan, -np.inf, 1e308, 1.0, 0.0])
    assert relative_error(a, b).tolist() == [0.0, 0.0, 0.0, np.inf, np.inf, 0.0, np.inf]


# --- differential fuzz: compiled NumPy, compiled math, saved module and evaluation ----

_LEAVES = ["x", "_x", "np", "inf", "self", "y_", "0", "1", "2.5", "1e400", "(-1e400)",
           "(1/0)", "(0/0)", "(-8)^(1/3)", "sqrt(-1)", "0.1"]  # fmt: skip
_UNARY = ["sin({})", "log({})", "sqrt({})", "tanh({})", "relu({})", "abs({})",
          "softplus({})", "-{}", "({})^2", "cos({})"]  # fmt: skip
_BINARY = ["({} + {})", "({} - {})", "({} * {})", "({} / {})", "max({}, {})", "min({}, {})",
           "({})^({})", "xlogy({}, {})", "above({}, {})", "logaddexp({}, {})"]  # fmt: skip
_EDGES = [0.0, 1.5, -2.0, np.inf, -np.inf, np.nan]


def _expressions(depth: int) -> st.SearchStrategy[str]:
    leaf = st.sampled_from(_LEAVES)
    if depth == 0:
        return leaf
    sub = _expressions(depth - 1)
    return st.one_of(
        leaf,
        st.tuples(st.sampled_from(_UNARY), sub).map(lambda t: t[0].format(t[1])),
        st.tuples(st.sampled_from(_BINARY), sub, sub).map(lambda t: t[0].format(t[1], t[2])),
    )


def _all_agree(text: str, point: dict[str, float]) -> None:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        graph = graphc.parse(text)
        pt = {n: point[n] for n in graph.inputs}
        ev = graph.evaluate(**pt)
        want = [ev.value, *(ev.grads[n] for n in graph.inputs)]
        c = graphc.compile(graph)
        f, g = c.value_and_grad(**pt)
        got = [f, *(g[n] for n in graph.inputs)]
        _compare(got, want, (text, pt))
        fwd = c.forward(**pt)
        assert _same(fwd, ev.value) or _numpy_power_edge((text, pt), fwd, ev.value)
        if not all(np.isfinite(want)):  # the math target has Python's float semantics
            return  # (max(1, nan) is 1, 0.0/0.0 raises): compared where all is finite
        try:
            f, g = graphc.compile(graph, target="math").value_and_grad(**pt)
        except (ArithmeticError, ValueError):  # math.log(0), 1.0/0.0 in a gradient line
            return
        got = [f, *(g[n] for n in graph.inputs)]
        _compare(got, want, (text, pt))


def _numpy_power_edge(what: Any, a: Any, b: Any) -> bool:
    """Whether ``a`` and ``b`` (values at ``what`` = (text, point)) may differ as NumPy's
    power differs from itself: at a base of -inf and an exponent that is no integer,
    ``np.float64(-inf) ** 0.5`` (evaluation, at a point) is inf (C's pow), but
    ``np.power(-inf, np.array([0.5]))`` (generated code: a scalar base against an
    array) is nan, as is ``np.power(np.array(-inf), 0.5)``; the loop over two arrays
    gives inf again. The difference flows on through the gates after the power
    (``tanh(log(...))``: 1 against nan), so it excuses a nan on one side only where
    evaluation meets such a power."""
    if np.isnan(a) == np.isnan(b):
        return False
    text, point = what
    graph = graphc.parse(text)
    nodes = graph.evaluate(**{n: point[n] for n in graph.inputs}).nodes
    for data in graph.backward.graph.nx.nodes.values():
        if data["op"] == "pow" and all(x in nodes for x in data["args"]):
            base, power = (float(nodes[x].value) for x in data["args"])
            if base == -np.inf and np.isfinite(power) and power != round(power):
                return True
    return False


def _compare(got: list[Any], want: list[Any], what: Any) -> None:
    """Values agree (same, or both nan). Gradients agree wherever neither is nan: where
    the chain rule meets nan (heaviside(x + inf) at x = -inf), generated code may have
    dropped a gate that a valid value rewrite removed (x^0 is 1); and NumPy itself
    computes (-inf) ** 0.5 as nan on a 0-d array (evaluation) but inf in its 1-d power
    loop (generated code)."""
    assert _same(got[0], want[0]) or _numpy_power_edge(what, got[0], want[0]), (
        what, got, want)  # fmt: skip
    for a, b in zip(got[1:], want[1:], strict=True):
        # gradients: branches that cancel (a - a) add in another order in the shared
        # graph than in the one evaluation walks: 0 against 1e-16
        close = np.isclose(a, b, rtol=1e-12, atol=1e-12)
        assert np.isnan(a) or np.isnan(b) or _same(a, b) or close, (what, got, want)


@settings(max_examples=150, deadline=None)
@given(text=_expressions(3), values=st.lists(st.sampled_from(_EDGES), min_size=5, max_size=5))
def test_differential_fuzz(text: str, values: list[float]) -> None:
    names = ["x", "_x", "np", "inf", "self", "y_"]
    _all_agree(text, dict(zip(names, [*values, 0.5], strict=True)))


@pytest.mark.slow
@settings(max_examples=500, deadline=None)
@given(text=_expressions(4), values=st.lists(st.sampled_from(_EDGES), min_size=5, max_size=5))
def test_differential_fuzz_deeper(text: str, values: list[float]) -> None:
    names = ["x", "_x", "np", "inf", "self", "y_"]
    _all_agree(text, dict(zip(names, [*values, 0.5], strict=True)))


@pytest.mark.parametrize(
    ("text", "point"),
    [
        ("-((1/0) * (x * 0))", {"x": 0.0}),  # a symbolic zero meets a folded inf
        ("0.1 - softplus(-1e400 - (-8)^(1/3)) - log(softplus(np))", {"np": 1.5}),
        # SymPy, printing the module docstring's closed form, asked mpmath for the log
        # of 1 + exp(-1e400 + 1.7j), which overflowed its integers: a raw OverflowError
        ("(sin(softplus(((-1e400) + (-8)^(1/3)))) * log((x + sin(x))))", {"x": 1.0}),
        ("(tanh(softplus(((-1e400) + (-8)^(1/3)))) * sin((x + sin(x))))", {"x": 1.0}),
    ],
)
def test_fuzz_findings(text: str, point: dict[str, float], tmp_path: Path) -> None:
    _all_agree(text, point)
    _agree(text, point, tmp_path)


def test_math_target_max_min_relu_propagate_nan_as_numpy_does():
    nan = float("nan")
    for text in ("max(x, y)", "min(x, y)", "relu(x) + 0*y"):
        c = graphc.compile(text, target="math")
        for x, y in ((nan, 1.0), (1.0, nan), (2.0, 1.0), (-1.0, 3.0)):
            got = c.value_and_grad(x=x, y=y)[0]
            want = graphc.compile(text).value_and_grad(x=x, y=y)[0]
            assert (math.isnan(got) and np.isnan(want)) or got == want, (text, x, y)


def test_math_target_powers_are_real_or_a_domain_error():
    """Python's (-2.0) ** 1.5 is a complex number, which flowed through the gates into
    f (a fuzz finding); the math target's powers are math.pow: a ValueError, as
    math.log(-1) is, where NumPy gives nan."""
    text = "(x + (x + (1)^((_x)^(x))))"
    _all_agree(text, {"x": 1.5, "_x": -2.0})  # NumPy: (-2)^1.5 is nan, 1^nan is 1
    with pytest.raises(ValueError, match="math domain error"):
        graphc.compile(text, target="math").value_and_grad(x=1.5, _x=-2.0)
    c = graphc.compile("f = x^y + x", wrt="x", target="math")
    with pytest.raises(ValueError, match="math domain error"):
        c.value_and_grad(x=-2.0, y=1.5)
    f, g = c.value_and_grad(x=-2.0, y=2.0)  # an integral power of a negative base
    assert type(f) is float and f == 2.0 and g["x"] == -3.0
    f, _ = graphc.compile("(1)^((z)^(x))", target="math").value_and_grad(x=0.5, z=4.0)
    assert type(f) is float and f == 1.0


def test_a_partial_sum_two_gradients_read_keeps_its_own_variable():
    # w1 + 1 is part of both ∂f/∂x and ∂f/∂w2; the generated code once wrote the chain
    # for ∂f/∂x over it, then computed ∂f/∂w2 from the overwritten name (wrong values)
    import sympy as sp

    text = "(w2 + x)*w1 + w2 + x + (w1 + w2)*x"
    w1, w2, x = sp.symbols("w1 w2 x")
    f = (w2 + x) * w1 + w2 + x + (w1 + w2) * x
    point = {"w1": np.array([0.3, -1.2]), "w2": np.array([2.0, 0.5]), "x": np.array([-0.7, 1.1])}
    _, grads = graphc.compile(text).value_and_grad(**point)
    for name, sym in (("w1", w1), ("w2", w2), ("x", x)):
        want = [float(sp.diff(f, sym).subs({w1: a, w2: b, x: c}))
                for a, b, c in zip(point["w1"], point["w2"], point["x"], strict=True)]  # fmt: skip
        np.testing.assert_allclose(grads[name], want, rtol=1e-12)


def test_deadline_stops_a_long_computation():
    import time

    from graphc.deadline import DeadlineExceeded, deadline

    start = time.monotonic()
    with pytest.raises(DeadlineExceeded), deadline(0.2):
        while True:
            sum(range(1000))
    assert time.monotonic() - start < 2


@pytest.mark.parametrize("text", ["log(0 - x)", "1/(x + 0)", "1/(0 + x)", "log(x - 0)"])
@pytest.mark.parametrize("x", [0.0, -0.0])
def test_rewrites_keep_the_sign_of_zero(text, x):
    # 0 - x is +0 at x = +0 where -x is -0; x + 0 is +0 at x = -0: 1/ and log then differ
    with np.errstate(all="ignore"), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ev = graphc.parse(text).evaluate(x=x)
        f, grads = graphc.compile(text).value_and_grad(x=x)
    for got, want in ((f, ev.value), (grads["x"], ev.grads["x"])):
        assert float(got) == float(want) and np.signbit(got) == np.signbit(want), (got, want)


@pytest.mark.parametrize("target", ["numpy", "math", C_TARGET])
def test_power_gradient_for_the_exponent_is_its_limit_where_the_base_is_0(target: str) -> None:
    """∂(x^y)/∂y = x^y log(x) is 0 at x = 0 for y > 0 (its limit, which JAX and PyTorch
    give), not 0 * log(0): the NumPy target gave NaN with a RuntimeWarning, the math and
    C targets a math domain error. Oracle: SymPy's limit of its own derivative."""
    import sympy as sp

    x, y = sp.symbols("x y", positive=True)
    slope = sp.diff(x**y, y)
    c = graphc.compile("f = x^y", target=target)
    for yv in (1.5, 2.0, 3.0):  # (below 1, ∂/∂x is infinite at 0)
        want = float(sp.limit(slope.subs(y, sp.Float(yv)), x, 0, "+"))
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            f, g = c.value_and_grad(x=0.0, y=yv)
        assert float(f) == 0.0 and float(g["y"]) == want == 0.0, (yv, g)
        assert float(g["x"]) == float(sp.limit(sp.diff(x**y, x).subs(y, sp.Float(yv)), x, 0, "+"))
        # and away from 0 the rule is unchanged (x^y log x)
        f, g = c.value_and_grad(x=1.7, y=yv)
        assert math.isclose(float(g["y"]), float(slope.subs({x: 1.7, y: yv})), rel_tol=1e-14)
    if target != "math":  # arrays: 0 only where the base is 0; NaN stays NaN
        xs, ys = np.array([0.0, 0.0, 2.0, math.nan]), np.array([2.0, math.nan, 0.5, 2.0])
        with np.errstate(invalid="ignore"):
            _, g = c.value_and_grad(x=xs, y=ys)
        assert g["y"][0] == 0.0 and np.isnan(g["y"][1]) and np.isnan(g["y"][3])
        assert math.isclose(g["y"][2], float(slope.subs({x: 2, y: 0.5})), rel_tol=1e-14)


@pytest.mark.parametrize("target", ["numpy", "math"])
def test_xlogy_gives_0_where_x_is_0_as_scipy_does(target: str) -> None:
    """xlogy(a, b) = a log(b), the op that writes x^y's exponent gradient: 0 where a is 0
    and b is not NaN (log(b) never computed there), a log(b) elsewhere (math.log's)."""
    c = graphc.compile("f = xlogy(a, b)", target=target)
    for a, b in ((0.0, 0.0), (0.0, 5.0), (0.0, math.inf), (-0.0, 1e-300)):
        assert float(c.forward(a=a, b=b)) == 0.0
    assert math.isnan(float(c.forward(a=0.0, b=math.nan)))
    for a, b in ((2.0, 3.0), (-1.5, 0.25), (1e-300, 1e300)):  # (NumPy's log and libm's
        # may differ in the last bit)
        assert math.isclose(float(c.forward(a=a, b=b)), a * math.log(b), rel_tol=1e-15)
        _, g = c.value_and_grad(a=a, b=b)
        assert math.isclose(float(g["a"]), math.log(b), rel_tol=1e-15)
        assert math.isclose(float(g["b"]), a / b, rel_tol=1e-15)


@pytest.mark.parametrize("target", ["numpy", C_TARGET, "evaluate"])
def test_inputs_that_broadcast_past_memory_raise_a_graphc_error(target: str) -> None:
    """x of shape (N, 1) and y of (1, N) broadcast to N * N values: with N = 10**7 that
    is 800 TB, past any allocator. NumPy's MemoryError came out of the generated code
    raw; it is a MemoryInputError (an InputError, and still a MemoryError) that keeps
    NumPy's words, with the gate where evaluation met it."""
    from graphc.errors import MemoryInputError

    n = 10**7  # (views of one number: the inputs themselves take no memory)
    x, y = np.broadcast_to(np.ones((1, 1)), (n, 1)), np.broadcast_to(np.ones((1, 1)), (1, n))
    if target == "evaluate":
        call = lambda: graphc.parse("f = x*y + y").evaluate(x=x, y=y)
    else:
        call = lambda: graphc.compile("f = x*y + y", target=target).value_and_grad(x=x, y=y)
    with pytest.raises(MemoryInputError, match=r"shape \(10000000, 10000000\)") as caught:
        call()
    assert isinstance(caught.value, MemoryError) and isinstance(caught.value, graphc.InputError)
    if target == "evaluate":
        assert "mul gate at line 1, column 6" in str(caught.value)


@pytest.mark.parametrize("target", ["numpy", "math", C_TARGET, "evaluate"])
def test_max_and_min_gradients_come_from_comparisons(target: str) -> None:
    """max's and min's derivatives were heaviside(a - b, 1/2): a - b overflowed past
    1e308 (a RuntimeWarning, for a right answer) and was NaN at a tie of infinities,
    where JAX and PyTorch split the gradient evenly as at any tie. They are now
    above(a, b), from comparisons. The program also makes the NumPy target write a
    comparison into the array of one of its arguments (out= aliasing b): the helper
    reads both before writing."""
    text = "f = max(x, y) + min(x, 2*y)"

    def compiled(text: str) -> Any:
        if target != "evaluate":
            return graphc.compile(text, target=target).value_and_grad
        g = graphc.parse(text)
        return lambda **kw: (lambda ev: (ev.value, ev.grads))(g.evaluate(**kw))

    vg = compiled(text)
    inf = math.inf
    # (x, y) -> (∂f/∂x, ∂f/∂y), by the rule: 1 to the larger argument, 1/2 each at a tie,
    # min's y-branch times 2; worked out here by hand, point by point
    cases = {
        (1e307, -1e307): (1.0, 2.0),  # max: x; min(x, 2y): 2y
        (-1e307, 1e307): (1.0, 1.0),  # max: y; min: x
        (2.0, 1.0): (1.5, 1.0),  # max: x; min(2, 2): a tie
        (inf, inf): (1.0, 1.5),  # both ties of infinities
        (-inf, -inf): (1.0, 1.5),
    }
    for (x, y), want in cases.items():
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            _, grads = vg(x=x, y=y)
        assert (float(grads["x"]), float(grads["y"])) == want, (target, x, y, grads)
    _, grads = vg(x=math.nan, y=1.0)  # NaN stays NaN (as max's own value)
    assert math.isnan(float(grads["x"])) and math.isnan(float(grads["y"]))
    with warnings.catch_warnings():  # (1e308 - -1e308 overflowed)
        warnings.simplefilter("error")
        _, grads = compiled("f = max(x, y)")(x=1e308, y=-1e308)
    assert (float(grads["x"]), float(grads["y"])) == (1.0, 0.0)
    if target in ("numpy", "c"):  # arrays: every case at once, and against finite differences
        xs = np.array([k[0] for k in cases] + [0.3, -1.7])
        ys = np.array([k[1] for k in cases] + [0.9, 0.4])
        _, grads = vg(x=xs, y=ys)
        want = np.array(list(cases.values()))
        np.testing.assert_array_equal(grads["x"][:5], want[:, 0])
        np.testing.assert_array_equal(grads["y"][:5], want[:, 1])
        h = 1e-6
        fd = lambda **kw: vg(**kw)[0]
        for name in ("x", "y"):
            up = {"x": xs[5:], "y": ys[5:]}
            dn = {"x": xs[5:], "y": ys[5:]}
            up[name] = up[name] + h
            dn[name] = dn[name] - h
            slope = (fd(**up) - fd(**dn)) / (2 * h)
            np.testing.assert_allclose(grads[name][5:], slope, rtol=1e-6)
