"""PyTorch autograd (float64) as an independent oracle for graphc's gradients.

Random expressions of graphc's grammar are built as graphc text and, separately, as
PyTorch code (see ``test_oracles_common.py``); graphc's ``Graph.evaluate`` and both
targets of ``graphc.compile`` must give PyTorch's value and gradients. micrograd's two
engine-test programs are written directly in PyTorch, as micrograd's own tests do.
"""

from __future__ import annotations

import math
import warnings

import numpy as np
import pytest
from hypothesis import assume, example, given

import graphc

torch = pytest.importorskip("torch")

from test_oracles_common import (  # noqa: E402
    DEGENERATE,
    SETTINGS,
    VARS,
    Kink,
    assert_close,
    graphc_results,
    points,
    to_library,
    to_text,
    trees,
)

F = torch.nn.functional
F64 = torch.float64


def _on_tensors(fn):
    """``fn`` with constant arguments (``exp(2)``) made float64 tensors, as torch needs."""

    def call(*args):
        return fn(*(a if torch.is_tensor(a) else torch.tensor(a, dtype=F64) for a in args))

    return call


TORCH = {
    "exp": torch.exp,
    "log": torch.log,
    "sqrt": torch.sqrt,
    "sin": torch.sin,
    "cos": torch.cos,
    "tan": torch.tan,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "relu": torch.relu,
    "softplus": F.softplus,
    "abs": torch.abs,
    "max": torch.maximum,
    "min": torch.minimum,
}
TORCH = {name: _on_tensors(fn) for name, fn in TORCH.items()}


POINT = {"x": 0.75, "y": -1.25, "z": 1.5}


def torch_value_and_grad(tree, point):
    xs = {v: torch.tensor(point[v], dtype=torch.float64, requires_grad=True) for v in VARS}
    f = to_library(tree, xs, TORCH, value=lambda a: float(a.detach()) if torch.is_tensor(a) else a)
    if not isinstance(f, torch.Tensor) or not f.requires_grad:
        return None
    grads = torch.autograd.grad(f, list(xs.values()), allow_unused=True)
    return f.item(), {v: (0.0 if g is None else g.item()) for v, g in zip(VARS, grads, strict=True)}


@SETTINGS
@given(trees(), points())
@example(DEGENERATE[0], POINT)
@example(DEGENERATE[1], POINT)
@example(DEGENERATE[2], POINT)
def test_random_expressions_match_torch_autograd(tree, point):
    try:
        got = torch_value_and_grad(tree, point)
    except Kink:
        assume(False)
    assume(got is not None)
    value, grads = got
    assume(all(math.isfinite(v) and abs(v) < 1e8 for v in (value, *grads.values())))
    text = to_text(tree)
    # PyTorch's relu backward masks (0 where x <= 0, whatever flows in); graphc's, as
    # JAX's, multiplies by relu's slope: behind an infinite inner value (relu(y)^-1 at
    # y < 0) an upstream inf * 0 is NaN there and 0 in PyTorch (a fuzz finding)
    g = graphc.parse(text)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        inner = g.evaluate(**{k: point[k] for k in g.inputs}).nodes.values()
    assume(all(np.isfinite(n.value).all() for n in inner))
    results = graphc_results(text, point)
    assert [r[0] for r in results][:2] == ["evaluate", "compile numpy"]
    for where, gvalue, ggrads in results:
        assert_close(gvalue, value, f"{where}: {text}")
        for name, g in ggrads.items():
            assert_close(g, grads[name], f"{where} d/d{name}: {text}")
        for name in VARS:
            if name not in ggrads:  # an input absent from the text has gradient 0
                assert grads[name] == 0


SANITY = """
z = 2*x + 2 + x
q = relu(z) + z*x
h = relu(z*z)
y = h + q + q*x
"""

MORE_OPS = """
c = a + b
d = a*b + b^3
c = c + c + 1
c = c + 1 + c + (-a)
d = d + d*2 + relu(b + a)
d = d + 3*d + relu(b - a)
e = c - d
f = e^2
g = f / 2
g = g + 10 / f
"""


def test_micrograd_sanity_check_program_matches_torch():
    x = torch.tensor([-4.0], dtype=torch.float64, requires_grad=True)
    z = 2 * x + 2 + x
    q = z.relu() + z * x
    h = (z * z).relu()
    y = h + q + q * x
    y.backward()
    for where, value, grads in graphc_results(SANITY, {"x": -4.0}):
        assert_close(value, y.item(), where)
        assert_close(grads["x"], x.grad.item(), where)


def test_micrograd_more_ops_program_matches_torch():
    a = torch.tensor([-4.0], dtype=torch.float64, requires_grad=True)
    b = torch.tensor([2.0], dtype=torch.float64, requires_grad=True)
    c = a + b
    d = a * b + b**3
    c = c + c + 1
    c = c + 1 + c + (-a)
    d = d + d * 2 + (b + a).relu()
    d = d + 3 * d + (b - a).relu()
    e = c - d
    f = e**2
    g = f / 2.0
    g = g + 10.0 / f
    g.backward()
    results = graphc_results(MORE_OPS, {"a": -4.0, "b": 2.0})
    assert len(results) == 3  # evaluate, compile numpy, compile math
    for where, value, grads in results:
        assert_close(value, g.item(), where)
        assert_close(grads["a"], a.grad.item(), where)
        assert_close(grads["b"], b.grad.item(), where)


def test_power_gradients_where_the_base_is_zero_match_torch():
    """x^y at x = 0: PyTorch's gradient for the exponent is 0 there (x^y log x's limit)."""
    for yv in (1.5, 2.0, 3.0):
        x = torch.tensor([0.0], dtype=F64, requires_grad=True)
        y = torch.tensor([yv], dtype=F64, requires_grad=True)
        (x**y).sum().backward()
        results = graphc_results("f = x^y", {"x": 0.0, "y": yv})
        assert len(results) == 3  # evaluate, compile numpy, compile math
        for where, value, grads in results:
            assert_close(value, 0.0, where)
            assert_close(grads["x"], x.grad.item(), where)
            assert_close(grads["y"], y.grad.item(), where)


def test_max_and_min_at_ties_and_extremes_match_torch():
    """max and min split the gradient evenly at a tie (infinite ties too), and route it
    whole past 1e308, as PyTorch's maximum and minimum do."""
    text = "f = max(x, y) + min(x, 2*y)"
    inf = math.inf
    for xv, yv in ((1.0, 1.0), (inf, inf), (-inf, -inf), (2.0, 1.0), (1e307, -1e307)):
        x = torch.tensor([xv], dtype=F64, requires_grad=True)
        y = torch.tensor([yv], dtype=F64, requires_grad=True)
        (torch.maximum(x, y) + torch.minimum(x, 2 * y)).sum().backward()
        results = graphc_results(text, {"x": xv, "y": yv})
        assert len(results) == 3  # evaluate, compile numpy, compile math
        for where, _, grads in results:
            assert_close(grads["x"], x.grad.item(), where)
            assert_close(grads["y"], y.grad.item(), where)
