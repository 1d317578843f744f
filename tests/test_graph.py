"""The DAG: gates as written, node data, argument order, sharing rules."""

from __future__ import annotations

import networkx as nx
import pytest
import sympy as sp

import graphc


def ops(g):
    return sorted(d["op"] for _, d in g.nx.nodes(data=True) if d["op"] not in ("input", "const"))


def test_gates_as_written():
    assert ops(graphc.parse("x - y")) == ["sub"]
    assert ops(graphc.parse("a / b")) == ["div"]
    # the decomposed sigmoid stays decomposed: neg, exp, add, div
    assert ops(graphc.parse("1/(1+exp(-z))")) == ["add", "div", "exp", "neg"]
    assert ops(graphc.parse("sigmoid(z)")) == ["sigmoid"]


def test_networkx_dag_with_node_data():
    g = graphc.parse("q = x + y\nf = q * z")
    assert isinstance(g.nx, nx.MultiDiGraph)
    assert nx.is_directed_acyclic_graph(g.nx)
    q = g.node("q")
    data = g.nx.nodes[q]
    assert data["op"] == "add" and data["name"] == "q" and data["label"] == "+"
    assert data["args"] == ("x", "y") and data["pos"] == (1, 7)
    assert g.nx.nodes[g.output]["args"] == (q, "z")
    assert list(nx.topological_sort(g.nx))[-1] == g.output


def test_argument_order_is_kept():
    g = graphc.parse("x - y")
    sub = g.output
    keys = {u: k for u, _, k in g.nx.in_edges(sub, keys=True)}
    assert keys == {"x": 0, "y": 1}
    assert float(g.evaluate(x=5, y=2).value) == 3


def test_input_used_twice_by_one_gate_is_two_edges():
    g = graphc.parse("x*x")
    assert g.nx.number_of_edges("x", g.output) == 2
    assert float(g.evaluate(x=3.0).grads["x"]) == 6.0


def test_input_used_in_several_places_is_one_node_with_several_edges():
    g = graphc.parse("x*y + sin(x) + x")
    assert [n for n, d in g.nx.nodes(data=True) if d["op"] == "input"] == ["x", "y"]
    assert g.nx.out_degree("x") == 3


def test_identical_subexpressions_stay_separate_unless_bound():
    assert ops(graphc.parse("exp(a) + exp(a)")).count("exp") == 2
    assert ops(graphc.parse("e = exp(a)\ne + e")).count("exp") == 1


def test_to_sympy_is_the_whole_function():
    g = graphc.parse("sigy = sigmoid(y)\nnum = x + sigy\nf = num / (x + y)^2")
    x, y = sp.symbols("x y", real=True)
    expected = (x + 1 / (1 + sp.exp(-y))) / (x + y) ** 2
    diff = g.to_sympy().rewrite(sp.exp) - expected
    assert sp.simplify(diff) == 0


def test_dead_statements_are_dropped_but_inputs_kept():
    g = graphc.parse("unused = exp(w)\nf = x + 1")
    assert g.inputs == ("w", "x")
    assert ops(g) == ["add"]
    assert float(g.evaluate(w=1.0, x=1.0).grads["w"]) == 0.0


def test_node_lookup_errors_suggest_names():
    g = graphc.parse("sigy = sigmoid(y); f = sigy * x")
    with pytest.raises(graphc.InputError, match="did you mean 'sigy'"):
        g.node("sigyy")
    with pytest.raises(graphc.InputError, match="did you mean 'x'"):
        g.derivative("xx")


def test_repr_and_text():
    g = graphc.parse("(x+y)z")
    assert g.to_text() == "(x + y) * z"
    assert "2 gates" in repr(g)
    again = graphc.parse(graphc.parse("-x^2 + (a-b)-(c-d) - 2^-x").to_text())
    assert ops(again) == ops(graphc.parse("-x^2 + (a-b)-(c-d) - 2^-x"))


def test_the_texts_of_every_node_in_one_walk_are_each_nodes_text() -> None:
    from graphc.naming import to_text, to_texts

    g = graphc.parse("q = x + y; f = sin(q * z) / (x - 2)^2 + exp(-y) - max(q, 3)")
    texts = to_texts(g)
    assert texts == {v: to_text(g, v) for v in g.nodes}
    assert texts[g.output] == g.to_text() and texts["x"] == "x"
