"""graphc.compile: generated code against independent oracles.

Oracles: the cs231n / reference numbers (/work/shared/reference-numbers.md), SymPy
``diff`` of independently written expressions, central finite differences, mpmath at
high precision, and NumPy broadcasting written by hand.
"""

from __future__ import annotations

import inspect
import linecache
import math
import os
import subprocess
import sys
import traceback
import tracemalloc
import warnings
from fractions import Fraction
from pathlib import Path

import mpmath
import numpy as np
import pytest
import sympy as sp
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc
from graphc.cli import main
from graphc.codegen import OverwriteError
from graphc.ctarget import CTargetWarning

GOLDEN = Path(__file__).parent / "golden" / "codegen"
UPDATE = os.environ.get("GRAPHC_UPDATE_GOLDEN") == "1"

XYZ = "q = x + y\nf = q * z"
NEURON = "dot = w0*x0 + w1*x1 + w2\nf = 1/(1 + exp(-dot))"
STAGED = (
    "sigy = sigmoid(y)\nnum = x + sigy\nsigx = sigmoid(x)\nxpy = x + y\n"
    "xpysqr = xpy^2\nden = sigx + xpysqr\ninvden = 1/den\nf = num * invden"
)
PATTERNS = "f = 2*(x*y + max(z, w))"
EXAMPLES = {"xyz": XYZ, "neuron": NEURON, "staged": STAGED, "patterns": PATTERNS}

# reference-numbers.md §2-§5: point, value, gradients
REFERENCE = {
    "xyz": ({"x": -2.0, "y": 5.0, "z": -4.0}, -12.0, {"x": -4.0, "y": -4.0, "z": 3.0}),
    "neuron": (
        {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0},
        0.7310585786300049,
        {"w0": -0.19661193324148188, "x0": 0.39322386648296376, "w1": -0.39322386648296376,
         "x1": -0.5898357997244457, "w2": 0.19661193324148188},
    ),
    "staged": ({"x": 3.0, "y": -4.0}, 1.5456448841066441,
               {"x": 2.0595697955721652, "y": 1.5922327514838093}),
    "patterns": ({"x": 3.0, "y": -4.0, "z": 2.0, "w": -1.0}, -20.0,
                 {"x": -8.0, "y": 6.0, "z": 2.0, "w": 0.0}),
}  # fmt: skip


@pytest.mark.parametrize("target", ["numpy", "math"])
@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_reference_numbers(example: str, target: str) -> None:
    point, value, grads = REFERENCE[example]
    c = graphc.compile(EXAMPLES[example], target=target)
    f, g = c.value_and_grad(**point)
    assert float(f) == pytest.approx(value, rel=1e-12)
    assert float(c.forward(**point)) == pytest.approx(value, rel=1e-12)
    assert set(g) == set(grads)
    for name, expected in grads.items():
        assert float(g[name]) == pytest.approx(expected, rel=1e-12, abs=1e-15), name


@pytest.mark.parametrize("example", sorted(EXAMPLES))
def test_golden_source(example: str) -> None:
    source = graphc.compile(EXAMPLES[example]).source
    assert graphc.compile(EXAMPLES[example]).source == source  # deterministic
    path = GOLDEN / f"{example}.py"
    if UPDATE:
        path.write_text(source, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == source, "run with GRAPHC_UPDATE_GOLDEN=1"


def _value_and_grad(source: str) -> str:
    """The text of the module's value_and_grad (the function before forward)."""
    return source.split("def value_and_grad")[1].split("\ndef forward(")[0]


def test_source_reads_like_the_notes() -> None:
    staged = graphc.compile(STAGED).source
    body = _value_and_grad(staged)
    for line in ("dnum = invden", "dinvden = num", "dx += dxpy", "dsigx = dden"):
        assert line in body
    # the sigmoid neuron is fused into a sigmoid gate whose local gradient reuses f
    neuron = _value_and_grad(graphc.compile(NEURON).source)
    assert "f = _sigmoid(dot" in neuron and "np.subtract(1.0, f, " in neuron
    assert "dw2 = ddot" in neuron and "1.0 * " not in neuron
    # no gradient lines for inputs not asked for
    only_x = _value_and_grad(graphc.compile(XYZ, wrt="x").source)
    assert '"x"' in only_x and '"z"' not in only_x and "dz" not in only_x


def test_common_subexpressions_once() -> None:
    src = (
        graphc.compile("f = exp(a) * exp(a) + 2*3")
        .source.split("def forward")[1]
        .split("def value_and")[0]
    )
    assert src.count("np.exp(") == 1 and "6.0" in src


def test_tracebacks_and_getsource_show_generated_lines() -> None:
    c = graphc.compile(XYZ)
    text = inspect.getsource(c.namespace["value_and_grad"])
    assert "q = np.add(x, y, out=_out_dz)  # + gate" in text
    assert "q = x + y  # + gate" in inspect.getsource(c.namespace["forward"])
    with pytest.raises(graphc.InputError, match="missing value for input z"):
        c.value_and_grad(x=1.0, y=2.0)
    with pytest.raises(graphc.InputError, match="unknown input 'w'"):
        c.forward(x=1.0, y=2.0, z=3.0, w=1.0)


@pytest.mark.parametrize("target", ["numpy", "math"])
def test_forward_is_compiled_on_first_use_with_the_modules_line_numbers(target: str) -> None:
    c = graphc.compile("q = x + y; f = log(q) * z", target=target)
    assert "forward" not in c.module.__dict__  # value_and_grad alone was compiled
    f, _ = c.module.value_and_grad(1.0, 2.0, 3.0)
    assert c.module.forward(1.0, 2.0, 3.0) == f and "forward" in c.module.__dict__
    lines = c.source.splitlines()
    for fn in (c.module.forward, c.module.value_and_grad):
        first = fn.__code__.co_firstlineno
        assert lines[first - 1].startswith(f"def {fn.__name__}(")
        assert inspect.getsource(fn).startswith(f"def {fn.__name__}(")
    # a traceback through forward points at the generated line that failed
    with pytest.raises((ValueError, FloatingPointError)) as err, np.errstate(all="raise"):
        c.module.forward(-1.0, 0.0, 1.0)
    failure = err.value
    if target == "math":  # math.log's ValueError, turned into an InputError that says why
        assert isinstance(failure, graphc.InputError) and "math domain error" in str(failure)
        failure = failure.__context__
    frames = traceback.extract_tb(failure.__traceback__)
    line = next(f.lineno for f in frames if f.name == "forward")
    assert "log" in lines[line - 1]
    with pytest.raises(AttributeError, match="no attribute 'backward'"):
        c.module.backward  # noqa: B018


@pytest.mark.parametrize("target", ["numpy", "math"])
def test_the_modules_functions_check_their_calls_only_when_they_fail(target: str) -> None:
    c = graphc.compile(XYZ, target=target)
    assert c.value_and_grad is c.module.value_and_grad  # no method call in between
    assert c.module.__doc__.startswith("f(x, y, z) = z*(x + y)")
    assert c.value_and_grad.__doc__.startswith("f and its gradients at the point")
    # the text inspect shows is the saved module's function
    saved = c.source[c.source.index("def value_and_grad(") : c.source.index("\n\n\ndef forward(")]
    assert inspect.getsource(c.module.value_and_grad) == saved + "\n"
    f, grads = c.value_and_grad(-2.0, 5.0, -4.0)
    assert float(f) == -12.0 and {k: float(v) for k, v in grads.items()} == {
        "x": -4.0, "y": -4.0, "z": 3.0}  # fmt: skip
    bad = [
        ({"x": 1.0, "y": 2.0, "z": 3.0, "w": 1.0}, (), "unknown input 'w'"),
        ({"x": 1.0, "y": 2.0}, (), "missing value for input z"),
        ({}, (1.0, 2.0, 3.0, 4.0), "4 values for 3 inputs"),
        ({"x": "a", "y": 2.0, "z": 3.0}, (),
         "input 'x': the math target computes on Python numbers, got str 'a'"
         if target == "math" else "cannot compute with these inputs"),
    ]  # fmt: skip
    for fn in (c.module.value_and_grad, c.module.forward, c.forward):
        for kwargs, args, message in bad:
            with pytest.raises(graphc.InputError, match=message):
                fn(*args, **kwargs)


@pytest.mark.parametrize("target", ["numpy", "math"])
def test_forward_is_lowered_only_when_asked_for_and_keeps_the_modules_lines(
    target: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    made: list[bool] = []
    real = graphc.codegen._function

    def recording(bw, wrt, inputs, target, grads, *args, **kwargs):
        made.append(grads)
        return real(bw, wrt, inputs, target, grads, *args, **kwargs)

    monkeypatch.setattr(graphc.codegen, "_function", recording)
    c = graphc.compile(NEURON, target=target)
    assert made == [True]  # value_and_grad only
    point = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
    assert float(c.value_and_grad(**point)[1]["w0"]) == pytest.approx(-0.196612, abs=1e-6)
    lines = inspect.getsource(c.module.value_and_grad)
    # forward comes: the module's whole text, value_and_grad's lines where they were
    assert float(c.forward(**point)) == pytest.approx(0.731059, abs=1e-6) and made == [True, False]
    source = c.source
    assert source == graphc.codegen.module_source(graphc.parse(NEURON), target=target)
    assert source.endswith(inspect.getsource(c.module.forward))
    assert made == [True, False, True, False]  # module_source: both, value_and_grad first
    assert inspect.getsource(c.module.value_and_grad) == lines
    first = source.splitlines()[c.module.value_and_grad.__code__.co_firstlineno - 1]
    assert first.startswith("def value_and_grad(")
    assert linecache.getlines(c.filename) == source.splitlines(keepends=True)
    assert c == graphc.compile(NEURON, target=target) and c != graphc.compile(XYZ, target=target)


def test_a_program_with_an_input_named_like_the_checks_keeps_the_method_checks() -> None:
    c = graphc.compile("_graphc_more * x", target="math")
    assert "_graphc_more" in c.inputs and c.value_and_grad != c.module.value_and_grad
    f, grads = c.value_and_grad(_graphc_more=2.0, x=3.0)
    assert f == 6.0 and grads == {"_graphc_more": 3.0, "x": 2.0}
    with pytest.raises(graphc.InputError, match="missing value for input x"):
        c.value_and_grad(_graphc_more=2.0)


def _sympy_grads(text_expr: str, names: list[str], point: dict[str, float]) -> dict[str, float]:
    syms = {n: sp.Symbol(n, real=True) for n in names}
    expr = sp.sympify(text_expr, locals=syms)
    return {n: float(sp.diff(expr, syms[n]).subs({syms[k]: v for k, v in point.items()}))
            for n in names}  # fmt: skip


def test_hessian_entries_compile() -> None:
    g = graphc.parse("f = x^3 * y + sin(x*y)")
    point = {"x": 0.7, "y": -1.3}
    d = graphc.compile(g.derivative("x"))
    value, grads = d.value_and_grad(**point)
    x, y = sp.symbols("x y", real=True)
    fx = sp.diff(x**3 * y + sp.sin(x * y), x)
    at = {x: point["x"], y: point["y"]}
    assert float(value) == pytest.approx(float(fx.subs(at)), rel=1e-12)
    assert float(grads["x"]) == pytest.approx(float(sp.diff(fx, x).subs(at)), rel=1e-12)
    assert float(grads["y"]) == pytest.approx(float(sp.diff(fx, y).subs(at)), rel=1e-12)


# --- random expressions: compiled vs Graph.evaluate vs finite differences ---------------

_UNARY = ["exp({})", "tanh({})", "sigmoid({})", "sin({})", "softplus({})", "-({})"]
_BINARY = ["({} + {})", "({} - {})", "({} * {})", "({} / (1.5 + {}^2))"]


@st.composite
def expressions(draw: st.DrawFn) -> str:
    terms = ["x", "y", "z", "0.5"]
    for _ in range(draw(st.integers(2, 8))):
        if draw(st.booleans()):
            terms.append(draw(st.sampled_from(_UNARY)).format(draw(st.sampled_from(terms))))
        else:
            a, b = draw(st.sampled_from(terms)), draw(st.sampled_from(terms))
            terms.append(draw(st.sampled_from(_BINARY)).format(a, b))
    return "a = " + terms[-1] + "\nf = a * x + a"  # fan-out through a and x


@settings(max_examples=25, deadline=None)
@given(expressions(), st.lists(st.floats(-1.5, 1.5), min_size=3, max_size=3))
def test_random_expressions(text: str, values: list[float]) -> None:
    graph = graphc.parse(text)
    point = dict(zip(("x", "y", "z"), values, strict=True))
    point = {k: v for k, v in point.items() if k in graph.inputs}
    ev = graph.evaluate(**point)
    for target in ("numpy", "math"):
        f, grads = graphc.compile(graph, target=target).value_and_grad(**point)
        assert float(f) == pytest.approx(float(ev.value), rel=1e-9, abs=1e-12)
        for name in graph.inputs:
            assert float(grads[name]) == pytest.approx(float(ev.grads[name]), rel=1e-8, abs=1e-10)
    forward = graphc.compile(graph).forward
    for name in graph.inputs:  # central finite differences
        h = 1e-6
        up = forward(**{**point, name: point[name] + h})
        down = forward(**{**point, name: point[name] - h})
        fd = (float(up) - float(down)) / (2 * h)
        assert float(grads[name]) == pytest.approx(fd, rel=1e-4, abs=1e-5)


@settings(max_examples=25, deadline=None)
@given(expressions(), st.integers(0, 2**32 - 1))
def test_random_expressions_on_arrays_leave_inputs_alone(text: str, seed: int) -> None:
    # Arrays exercise the in-place lines: a temporary lends its memory to a later
    # gate, never an input. Each element must agree with the math target.
    graph = graphc.parse(text)
    rng = np.random.default_rng(seed)
    point = {name: rng.uniform(-1.5, 1.5, size=5) for name in graph.inputs}
    saved = {name: v.copy() for name, v in point.items()}
    vg = graphc.compile(graph).value_and_grad
    first = vg(**point)
    # again, into the first result's arrays (out=): the same numbers, the same arrays
    f, grads = vg(**point, out=first)
    assert f is first[0] and all(grads[k] is first[1][k] for k in grads)
    scalar = graphc.compile(graph, target="math")
    for name, v in point.items():
        np.testing.assert_array_equal(v, saved[name], err_msg=f"input {name} was written")
    for k in range(5):
        fk, gk = scalar.value_and_grad(**{name: float(v[k]) for name, v in point.items()})
        assert f[k] == pytest.approx(fk, rel=1e-12, abs=1e-14)
        for name in graph.inputs:
            assert grads[name][k] == pytest.approx(gk[name], rel=1e-10, abs=1e-12), name


@pytest.mark.parametrize("example", ["neuron", "patterns"])
def test_temporaries_lend_memory_so_peak_is_the_returned_arrays(example: str) -> None:
    # Every temporary of these two functions dies into a later gate's memory, so at
    # the peak only the arrays the function returns are alive (NumPy reports its
    # array memory to tracemalloc).
    c = graphc.compile(EXAMPLES[example])
    n = 50_000
    rng = np.random.default_rng(0)
    point = {name: rng.normal(size=n) for name in graphc.parse(EXAMPLES[example]).inputs}
    c.value_and_grad(**point)
    tracemalloc.start()
    try:
        f, grads = c.value_and_grad(**point)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    returned = {id(a): a for a in (f, *grads.values()) if not any(a is v for v in point.values())}
    assert peak < (len(returned) + 0.5) * 8 * n


# --- broadcasting and dtypes ----------------------------------------------------------


def test_broadcast_gradients_have_input_shapes() -> None:
    rng = np.random.default_rng(0)
    x, y, b = rng.normal(size=(3, 1)), rng.normal(size=(1, 4)), 0.5
    c = graphc.compile("f = x * y + exp(b) * x")
    f, g = c.value_and_grad(x=x, y=y, b=b)
    np.testing.assert_allclose(f, x * y + np.exp(b) * x)
    # d sum(f): written out by hand with NumPy broadcasting
    np.testing.assert_allclose(g["x"], (y + np.exp(b)).sum(axis=1, keepdims=True) + 0 * x)
    np.testing.assert_allclose(g["y"], x.sum(axis=0, keepdims=True) + 0 * y)
    assert g["x"].shape == (3, 1) and g["y"].shape == (1, 4) and np.ndim(g["b"]) == 0
    assert float(g["b"]) == pytest.approx(np.exp(b) * x.sum() * 4)


def test_float32_in_float32_out() -> None:
    x = np.linspace(-2, 2, 5, dtype=np.float32)
    c = graphc.compile(NEURON)
    f, g = c.value_and_grad(w0=np.float32(2), x0=x, w1=x, x1=x, w2=1.0)
    assert f.dtype == np.float32 and g["x0"].dtype == np.float32
    assert g["w0"].dtype == np.float32 and g["w2"].dtype == np.float64  # a Python float
    z = 2 * x + x * x + 1.0
    s = 1 / (1 + np.exp(-z.astype(np.float64)))
    np.testing.assert_allclose(f, s, rtol=1e-6)
    np.testing.assert_allclose(g["w2"], (s * (1 - s)).sum(), rtol=1e-5)


def test_int_inputs_and_constant_gradient() -> None:
    f, g = graphc.compile("f = x + y").value_and_grad(x=np.arange(3), y=2)
    np.testing.assert_array_equal(f, [2.0, 3.0, 4.0])
    np.testing.assert_array_equal(g["x"], [1.0, 1.0, 1.0])
    assert float(g["y"]) == 3.0


@pytest.mark.parametrize("target", ["numpy", "math", "c", "evaluate"])
def test_a_python_int_past_int64_is_a_real_number_on_every_target(target) -> None:
    """2**70 was "expected real numbers, got an array of dtype object" on the NumPy
    target and in evaluation (NumPy keeps such an int as an object), while the math
    target computed with it. 10**400 is past float64 on every target."""
    text = "q = x + y; f = q * z"
    if target == "evaluate":
        ev = graphc.parse(text).evaluate(x=2**70, y=1.0, z=-4.0)
        f, g = ev.value, ev.grads
        with pytest.raises(graphc.InputError, match="int too large to convert to float"):
            graphc.parse(text).evaluate(x=10**400, y=1.0, z=-4.0)
    else:  # (the math target computes with the numbers given: ints stay ints there)
        c = graphc.compile(text, target=target)
        f, g = c.value_and_grad(x=2**70, y=1.0, z=-4.0)
        with pytest.raises(graphc.InputError, match="int too large to convert to float"):
            c.value_and_grad(x=10**400, y=1.0, z=-4.0)
    assert float(f) == (float(2**70) + 1.0) * -4.0  # Python's own float arithmetic
    assert (float(g["x"]), float(g["z"])) == (-4.0, float(2**70) + 1.0)


@pytest.mark.parametrize(
    "target, program",
    [
        ("numpy", "q = x + y; f = q * z"),
        ("c", "q = x + y; f = q * z"),
        ("numpy", "x: (2,)\nf = sum((x + y) * z)"),
        ("evaluate", "q = x + y; f = q * z"),
    ],
)
def test_a_masked_array_is_refused_not_read_without_its_mask(target, program) -> None:
    """NumPy's asarray drops a mask: f and the gradients came back computed on the
    masked entries too, as if there were no mask."""
    x = np.ma.array([1.0, 2.0], mask=[False, True])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CTargetWarning)  # (a target that falls back)
        with pytest.raises(graphc.InputError, match=r"masked arrays .*a\.filled\(value\)"):
            if target == "evaluate":
                graphc.parse(program).evaluate(x=x, y=1.0, z=2.0)
            else:
                graphc.compile(program, target=target).value_and_grad(x=x, y=1.0, z=2.0)
    # the same numbers as a plain array compute
    f, _ = graphc.compile(program).value_and_grad(x=x.filled(0.0), y=1.0, z=2.0)
    assert float(np.sum(f)) == (1.0 + 1.0) * 2.0 + (0.0 + 1.0) * 2.0


def test_the_math_target_refuses_arrays_and_complex_numbers() -> None:
    """Arrays computed on the math target (x*y has no math function to refuse them) and
    gave y's gradient the array's shape, not ∂sum(f)/∂y; complex numbers computed too."""
    c = graphc.compile("q = x + y; f = q * z", target="math")
    for fn in (c.value_and_grad, c.forward):
        with pytest.raises(graphc.InputError, match=r"input 'x': the math target .*target='numpy'"):
            fn(x=np.ones(3), y=1.0, z=2.0)
        with pytest.raises(graphc.InputError, match=r"input 'z': .* got complex"):
            fn(x=1.0, y=1.0, z=2j)
    # an array that fails inside a gate (the math target's sigmoid and max branch on
    # the value: "the truth value of an array ... is ambiguous") is refused as an array
    branching = graphc.compile("f = sigmoid(x * y) + max(x, y)", target="math")
    for fn in (branching.value_and_grad, branching.forward):
        for x in (np.ones((3, 1)), np.ones(0)):
            with pytest.raises(graphc.InputError) as caught:
                fn(x=x, y=1.0)
            assert str(caught.value) == (
                f"input 'x': the math target computes on Python numbers, got ndarray of"
                f" shape {x.shape} and dtype float64: use target='numpy' for arrays"
            )
    # a program whose functions wrap their bodies (an input named like a helper: _x)
    wrapped = graphc.compile("_x * x_", target="math")
    assert float(wrapped.value_and_grad(_x=2.0, x_=3.0)[0]) == 6.0
    with pytest.raises(graphc.InputError, match=r"input '_x': the math target"):
        wrapped.value_and_grad(_x=np.ones(2), x_=3.0)
    # every kind of real number still computes, to the NumPy target's numbers
    for point in ({"x": 1, "y": 2, "z": 3}, {"x": np.float32(1.5), "y": True, "z": 2.0},
                  {"x": Fraction(1, 2), "y": 0.25, "z": np.int64(4)}):  # fmt: skip
        f, grads = c.value_and_grad(**point)
        floats = {k: float(v) for k, v in point.items()}  # (NumPy has no Fraction)
        want_f, want = graphc.compile("q = x + y; f = q * z").value_and_grad(**floats)
        assert float(f) == float(want_f)
        assert {k: float(v) for k, v in grads.items()} == {k: float(v) for k, v in want.items()}
        assert float(c.forward(**point)) == float(want_f)


# --- stability ------------------------------------------------------------------------

STABLE = {
    "sigmoid(z)": lambda z: 1 / (1 + mpmath.exp(-z)),
    "softplus(z)": lambda z: mpmath.log(1 + mpmath.exp(z)),
    "log(sigmoid(z))": lambda z: mpmath.log(1 / (1 + mpmath.exp(-z))),
    "log(1 + exp(z))": lambda z: mpmath.log(1 + mpmath.exp(z)),
    "1/(1 + exp(-z))": lambda z: 1 / (1 + mpmath.exp(-z)),
    "tanh(z)": mpmath.tanh,
    "log(exp(z) + exp(2*z))": lambda z: mpmath.log(mpmath.exp(z) + mpmath.exp(2 * z)),
    "exp(z)/(exp(z) + exp(-z))": lambda z: mpmath.exp(z) / (mpmath.exp(z) + mpmath.exp(-z)),
    # the cross-entropy of label 0; 1 - σ(z) = 1/(1 + e^z) exactly (mpmath's 1 - σ(z)
    # would round to 0 at 50 digits too)
    "log(1 - sigmoid(z))": lambda z: mpmath.log(1 / (1 + mpmath.exp(z))),
    "log(1 - 1/(1 + exp(-z)))": lambda z: -mpmath.log(1 + mpmath.exp(z)),
    "sigmoid(z) * (1 - sigmoid(z))": lambda z: mpmath.exp(-z) / (1 + mpmath.exp(-z)) ** 2,
}


@pytest.mark.parametrize("text", sorted(STABLE))
def test_stable_for_large_z(text: str) -> None:
    z = np.array([-1000.0, -700.0, -40.0, -1.0, 0.0, 1.0, 40.0, 700.0, 1000.0])
    mpmath.mp.dps = 50
    exact = STABLE[text]
    c = graphc.compile("f = " + text)
    with np.errstate(all="raise"):
        f, g = c.value_and_grad(z=z)
    for k, zk in enumerate(z):
        value = exact(mpmath.mpf(zk))
        slope = mpmath.diff(exact, mpmath.mpf(zk))
        assert f[k] == pytest.approx(float(value), rel=1e-12, abs=1e-300), (text, zk)
        # gradients like s*(1-s) and 1-t^2 round to 0 once s or t rounds to 1 (|z| > 37)
        assert g["z"][k] == pytest.approx(float(slope), rel=1e-9, abs=1e-15), (text, zk)
        assert np.isfinite(g["z"][k])


@pytest.mark.parametrize("target", ["numpy", "c", "math"])
def test_binary_cross_entropy_is_finite_on_every_target(target: str) -> None:
    """log(1 - σ(z)) was -inf with a NaN gradient on the NumPy target from z = 37, and
    "math domain error" on the C and math targets: 1 - σ(z) rounds to 0 there."""
    text = "p = sigmoid(w*x); f = -(y*log(p) + (1 - y)*log(1 - p))"
    c = graphc.compile(text, target=target)
    for w in (37.0, 50.0, 700.0, -700.0):
        f, g = c.value_and_grad(w=w, x=1.0, y=0.0)
        z = mpmath.mpf(w)
        assert float(f) == pytest.approx(float(mpmath.log(1 + mpmath.exp(z))), rel=1e-14)
        sig = float(1 / (1 + mpmath.exp(-z)))  # ∂f/∂w = (σ(wx) - y)·x
        assert float(g["w"]) == pytest.approx(sig, rel=1e-14, abs=1e-300)


# --- math target, standalone module, CLI, save ------------------------------------------


def test_math_target_has_no_numpy() -> None:
    src = graphc.compile(STAGED, target="math").source
    assert "numpy" not in src and "np." not in src and "errstate" not in src
    assert "import math" in src


@pytest.mark.parametrize(
    "text",
    ["abs(x)", "sign(x)", "heaviside(x, 0.5)", "max(x, 0)", "min(x, 1)", "relu(x)",
     "step(x)", "softplus(x)", "sigmoid(x)", "logaddexp(x, 2*x)", "logaddexp(x, -x)"],
)  # fmt: skip
def test_math_target_helpers_give_numpys_numbers_at_nan_inf_and_zero(text: str) -> None:
    """The math target's own helpers against the NumPy target at the IEEE special points
    (sign and heaviside gave 0 at NaN, so |x|' and max' were 0 there; sign gave ints;
    logaddexp(inf, inf) was NaN)."""
    numpy_c, math_c = graphc.compile(text), graphc.compile(text, target="math")
    for x in (math.nan, math.inf, -math.inf, 0.0, -0.0, 2.5, -2.5):
        with np.errstate(all="ignore"):
            want = numpy_c.value_and_grad(x=x)
        got = math_c.value_and_grad(x=x)
        for w, v in ((want[0], got[0]), (want[1]["x"], got[1]["x"])):
            assert type(v) is float, (text, x, v)
            same = math.isclose(v, float(w), rel_tol=1e-15, abs_tol=0)  # inf == inf too
            assert same or (math.isnan(v) and math.isnan(float(w))), (text, x, v, w)


def test_saved_module_runs_without_graphc(tmp_path: Path) -> None:
    path = graphc.compile(STAGED).save(tmp_path / "staged.py")
    code = (
        "import sys\n"
        "sys.modules['graphc'] = None  # any import of graphc now fails\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import staged\n"
        "f, g = staged.value_and_grad(x=3.0, y=-4.0)\n"
        "print(repr(float(f)), repr(float(g['x'])), repr(float(g['y'])))\n"
    )
    out = subprocess.run(
        [sys.executable, "-I", "-c", code, str(path.parent)],
        capture_output=True, text=True, check=True, cwd=tmp_path,
    )  # fmt: skip
    value, dx, dy = (float(v) for v in out.stdout.split()[:3])
    assert value == pytest.approx(1.5456448841066441, rel=1e-12)
    assert dx == pytest.approx(2.0595697955721652, rel=1e-12)
    assert dy == pytest.approx(1.5922327514838093, rel=1e-12)


def test_save_refuses_to_overwrite(tmp_path: Path) -> None:
    c = graphc.compile(XYZ)
    theirs = tmp_path / "theirs.py"
    theirs.write_text("print('mine')\n")
    with pytest.raises(OverwriteError, match="not written by graphc"):
        c.save(theirs)
    assert theirs.read_text() == "print('mine')\n"
    c.save(theirs, overwrite=True)
    ours = c.save(tmp_path / "ours.py")
    graphc.compile(STAGED).save(ours)  # graphc's own file: replaced
    assert "sigy" in ours.read_text()


def test_cli(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["codegen", "(x+y)*z", "--wrt", "x,y", "--target", "math"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("# Generated by graphc") and "import math" in out
    target = tmp_path / "g.py"
    assert main(["codegen", "(x+y)*z", "-o", str(target)]) == 0
    assert target.read_text() == graphc.compile("(x+y)*z").source
    other = tmp_path / "other.py"
    other.write_text("x = 1\n")
    assert main(["codegen", "x*y", "-o", str(other)]) == 2
    assert main(["codegen", "x*y", "-o", str(other), "--force"]) == 0
    assert main(["codegen", "x*", "-o", str(tmp_path / "bad.py")]) == 2
    assert main(["codegen", "x*y", "--wrt", "q"]) == 2
    with pytest.raises(SystemExit) as e:
        main(["codegen", "x*y", "--target", "fortran"])
    assert e.value.code == 2


@pytest.mark.parametrize("text", ["x", "-(-(x))", "(3) * (0.5)", "x + 0*y"])
@pytest.mark.parametrize("target", ["numpy", "math"])
def test_outputs_that_compute_nothing_still_compile(text, target):
    compiled = graphc.compile(text, target=target)
    point = {n: 2.0 for n in compiled.inputs}
    ev = graphc.parse(text).evaluate(**point)
    value, grads = compiled.value_and_grad(**point)
    assert float(value) == float(ev.value)
    assert {k: float(v) for k, v in grads.items()} == {k: float(v) for k, v in ev.grads.items()}


def test_large_graph_docstring_counts_gates_instead_of_inlining() -> None:
    text = "\n".join(["t0 = x * y", *(f"t{k} = sin(t{k - 1}) * t{k - 1}" for k in range(1, 30))])
    c = graphc.compile(text)
    assert c.module.__doc__.startswith("t29(x, y): a graph of 59 gates, computed line by line")
    assert "∂t29/∂x =" not in c.module.__doc__  # no symbolic gradients for big graphs
    assert c.value_and_grad(x=0.3, y=0.2)[1].keys() == {"x", "y"}
