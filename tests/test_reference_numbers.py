"""The numbers of the cs231n backprop notes and micrograd's PyTorch-checked engine tests.

Expected values come from ../shared/reference-numbers.md (the notes' figures, and
values PyTorch computes for micrograd's programs); none is computed by graphc.
"""

from __future__ import annotations

import numpy as np
import pytest

import graphc

STAGED = """
sigy = 1/(1+exp(-y))   # sigmoid in numerator
num = x + sigy
f = num / (sigmoid(x) + (x+y)^2)
"""


def grads(ev):
    return {k: float(v) for k, v in ev.grads.items()}


def test_mul_add_circuit():
    g = graphc.parse("(x+y)z")
    ev = g.evaluate(x=-2, y=5, z=-4)
    assert float(ev.value) == -12
    assert grads(ev) == {"x": -4, "y": -4, "z": 3}
    (add,) = [n for n, d in g.nx.nodes(data=True) if d["op"] == "add"]
    assert float(ev.nodes[add].upstream) == -4
    assert float(ev.nodes[add].value) == 3


NEURON = "1/(1+exp(-(w0*x0+w1*x1+w2)))"
NEURON_POINT = dict(w0=2, w1=-3, w2=-3, x0=-1, x1=-2)


def test_sigmoid_neuron_gate_by_gate():
    ev = graphc.parse(NEURON).evaluate(**NEURON_POINT)
    assert float(ev.value) == pytest.approx(0.7310585786300049, rel=1e-12)
    expected = {
        "w0": -0.19661193324148188,
        "w1": -0.39322386648296376,
        "w2": 0.19661193324148188,
        "x0": 0.39322386648296376,
        "x1": -0.5898357997244457,
    }
    assert grads(ev) == pytest.approx(expected, rel=1e-12)
    # the notes' rounded figures
    assert [round(grads(ev)[k], 4) for k in ("w0", "w1", "w2")] == [-0.1966, -0.3932, 0.1966]
    assert [round(grads(ev)[k], 4) for k in ("x0", "x1")] == [0.3932, -0.5898]


def test_sigmoid_neuron_wires():
    g = graphc.parse(NEURON)
    ev = g.evaluate(**NEURON_POINT)
    by_op = {}
    for n, d in g.nx.nodes(data=True):
        by_op.setdefault(d["op"], []).append(ev.nodes[n])
    (exp,) = by_op["exp"]
    assert float(exp.value) == pytest.approx(0.36787944117144233)
    assert float(exp.upstream) == pytest.approx(-0.534446645388523)
    (neg,) = by_op["neg"]
    assert float(neg.upstream) == pytest.approx(-0.19661193324148188)
    (div,) = by_op["div"]
    assert float(div.upstream) == 1.0
    # local gradient of 1/x is -1/x^2 at x = 1.3678794411714423
    assert float(div.local[1]) == pytest.approx(-1 / 1.3678794411714423**2)


def test_sigmoid_gate_agrees_with_decomposed_form():
    fused = graphc.parse("sigmoid(w0*x0+w1*x1+w2)").evaluate(**NEURON_POINT)
    split = graphc.parse(NEURON).evaluate(**NEURON_POINT)
    assert float(fused.value) == pytest.approx(float(split.value), rel=1e-15)
    assert grads(fused) == pytest.approx(grads(split), rel=1e-14)
    (sig,) = [n for n, d in fused.graph.nx.nodes(data=True) if d["op"] == "sigmoid"]
    assert float(fused.nodes[sig].local[0]) == pytest.approx(0.19661193324148185, rel=1e-14)


def test_backward_flow_patterns_max_routes():
    ev = graphc.parse("2*(x*y + max(z, w))").evaluate(x=3, y=-4, z=2, w=-1)
    assert float(ev.value) == -20
    assert grads(ev) == {"x": -8, "y": 6, "z": 2, "w": 0}


def test_staged_program_matches_notes_and_one_line_form():
    g = graphc.parse(STAGED)
    ev = g.evaluate(x=3, y=-4)
    assert float(ev.value) == pytest.approx(1.5456448841066441, rel=1e-14)
    assert grads(ev) == pytest.approx({"x": 2.0595697955721652, "y": 1.5922327514838093}, rel=1e-13)
    assert float(ev["sigy"].upstream) == pytest.approx(0.5121444488396316, rel=1e-13)
    assert float(ev["num"].upstream) == pytest.approx(0.5121444488396316, rel=1e-13)
    # gradients add at forks: x feeds num, sigmoid(x) and x+y
    branches = sorted(float(v) for _, v in ev["x"].contributions)
    assert branches == pytest.approx(
        sorted([1.583186894545187, -0.03576154781265359, 0.5121444488396316]), rel=1e-12
    )
    assert sum(branches) == pytest.approx(float(ev.grads["x"]), rel=1e-14)
    one_line = graphc.parse("(x + sigmoid(y)) / (sigmoid(x) + (x+y)^2)").evaluate(x=3, y=-4)
    assert float(one_line.value) == pytest.approx(float(ev.value), rel=1e-15)
    assert grads(one_line) == pytest.approx(grads(ev), rel=1e-13)


MICROGRAD_MORE_OPS = """
c = a + b
d = a * b + b**3
c += c + 1
c += 1 + c + (-a)
d += d * 2 + relu(b + a)
d += 3 * d + relu(b - a)
e = c - d
f = e**2
g = f / 2.0
g += 10.0 / f
"""


def test_micrograd_more_ops():
    ev = graphc.parse(MICROGRAD_MORE_OPS).evaluate(a=-4.0, b=2.0)
    assert float(ev.value) == pytest.approx(24.70408163265306, abs=1e-6)
    assert float(ev.grads["a"]) == pytest.approx(138.83381924198252, abs=1e-6)
    assert float(ev.grads["b"]) == pytest.approx(645.5772594752186, abs=1e-6)


MICROGRAD_SANITY = """
z = 2 * x + 2 + x
q = relu(z) + z * x
h = relu(z * z)
y = h + q + q * x
"""


def test_micrograd_sanity_check():
    ev = graphc.parse(MICROGRAD_SANITY).evaluate(x=-4.0)
    assert float(ev.value) == -20
    assert float(ev.grads["x"]) == 46


def test_micrograd_trace_graph_example():
    ev = graphc.parse("y = relu(2x + 1)").evaluate(x=1.0)
    assert (float(ev.value), float(ev.grads["x"])) == (3, 2)


def test_vector_inputs_give_gradients_of_each_shape():
    w = np.array([2.0, -3.0])
    ev = graphc.parse("sigmoid(w*x + b)").evaluate(w=w, x=np.array([[-1.0], [-2.0]]), b=-3.0)
    assert np.shape(ev.grads["w"]) == (2,)
    assert np.shape(ev.grads["x"]) == (2, 1)
    assert np.shape(ev.grads["b"]) == ()
