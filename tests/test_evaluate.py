"""Evaluation at a point: per-node values, local and upstream gradients, shapes, domains."""

from __future__ import annotations

import warnings

import numpy as np
import pytest

import graphc


def central_difference(graph, name, point, h=1e-6):
    def f(**p):
        return np.sum(graph.evaluate(**p).value)

    base = {k: np.array(v, dtype=float) for k, v in point.items()}
    grad = np.zeros_like(base[name])
    for idx in np.ndindex(grad.shape):
        up = {k: v.copy() for k, v in base.items()}
        down = {k: v.copy() for k, v in base.items()}
        up[name][idx] += h
        down[name][idx] -= h
        grad[idx] = (f(**up) - f(**down)) / (2 * h)
    return grad


def test_local_upstream_and_contributions_multiply_and_add():
    g = graphc.parse("q = x + y\nf = q * z")
    ev = g.evaluate(x=-2, y=5, z=-4)
    f = ev.nodes[g.output]
    assert float(f.upstream) == 1.0
    assert [float(v) for v in f.local] == [-4.0, 3.0]  # ∂f/∂q = z, ∂f/∂z = q
    q = ev["q"]
    assert [float(v) for v in q.local] == [1.0, 1.0]
    ((edge, value),) = q.contributions
    assert edge == (g.output, 0) and float(value) == float(f.upstream) * float(f.local[0])


def test_branches_add_at_a_fork():
    g = graphc.parse("a = x*y; b = sin(x); f = a + b + x")
    ev = g.evaluate(x=0.3, y=2.0)
    parts = [float(v) for _, v in ev["x"].contributions]
    assert len(parts) == 3
    assert sum(parts) == pytest.approx(float(ev.grads["x"]))
    assert float(ev.grads["x"]) == pytest.approx(2.0 + np.cos(0.3) + 1.0)


@pytest.mark.parametrize(
    "shapes",
    [
        {"x": (3,), "y": (2, 1)},
        {"x": (), "y": (4,)},
        {"x": (2, 3), "y": (3,)},
        {"x": (1, 3), "y": (5, 1), "z": (4, 1, 1)},
    ],
)
def test_gradients_have_each_inputs_shape(shapes):
    rng = np.random.default_rng(0)
    g = graphc.parse("sigmoid(x*y + z) * x" if "z" in shapes else "sigmoid(x*y) * x + y")
    point = {k: rng.normal(size=s) for k, s in shapes.items()}
    ev = g.evaluate(**point)
    for name, shape in shapes.items():
        assert np.shape(ev.grads[name]) == shape
        np.testing.assert_allclose(
            ev.grads[name], central_difference(g, name, point), rtol=1e-6, atol=1e-8
        )


def test_float32_in_float32_out():
    x = np.linspace(-1, 1, 5, dtype=np.float32)
    ev = graphc.parse("exp(2*x) / (1 + x^2)").evaluate(x=x)
    assert ev.value.dtype == np.float32 and ev.grads["x"].dtype == np.float32


def test_python_numbers_give_scalars():
    ev = graphc.parse("x*y").evaluate(x=2, y=3)
    assert np.ndim(ev.grads["x"]) == 0 and float(ev.grads["x"]) == 3.0


def test_domain_error_gives_nan_and_a_warning_naming_the_gate():
    g = graphc.parse("a = 1\nf = log(x) + a/y")
    with pytest.warns(graphc.DomainWarning) as record:
        ev = g.evaluate(x=-1.0, y=0.0)
    assert np.isnan(ev.value)
    messages = [str(w.message) for w in record]
    assert any("log gate at line 2, column 5" in m for m in messages)
    assert any("div gate at line 2, column 15" in m for m in messages)


def test_no_warning_for_underflow():
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        ev = graphc.parse("exp(x)").evaluate(x=-1000.0)
    assert float(ev.value) == 0.0


@pytest.mark.parametrize(
    "values, message",
    [
        ({"x": 1.0}, "missing value for input y"),
        ({"x": 1.0, "y": 2.0, "yy": 3.0}, "did you mean 'y'"),
        ({"x": "a", "y": 1.0}, "expected real numbers"),
        ({"x": np.ones(2), "y": np.ones(3)}, "do not broadcast"),
    ],
)
def test_bad_points_are_input_errors(values, message):
    with pytest.raises(graphc.InputError, match=message):
        graphc.parse("x*y").evaluate(**values)
