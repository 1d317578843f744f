"""Size and depth: deep and wide inputs parse and differentiate without recursion."""

from __future__ import annotations

import math

import pytest

import graphc
from graphc.parse import MAX_DEPTH

N = 10_000


def test_ten_thousand_nested_sin():
    text = "sin(" * N + "x" + ")" * N
    g = graphc.parse(text)
    assert len(g) == N + 1
    bw = g.backward
    assert bw.grads["x"] in bw.graph.nx
    ev = g.evaluate(x=0.5)
    # independent oracle: iterate sin and multiply the cos factors
    v, d = 0.5, 1.0
    for _ in range(N):
        d *= math.cos(v)
        v = math.sin(v)
    assert float(ev.value) == pytest.approx(v, rel=1e-12)
    assert float(ev.grads["x"]) == pytest.approx(d, rel=1e-9)


def test_ten_thousand_term_sum():
    text = " + ".join(f"{i % 7}*x{i % 50}" for i in range(N))
    g = graphc.parse(text)
    assert len(g.inputs) == 50
    ev = g.evaluate(**{f"x{j}": 1.0 for j in range(50)})
    assert float(ev.value) == sum(i % 7 for i in range(N))
    assert float(ev.grads["x3"]) == sum(i % 7 for i in range(N) if i % 50 == 3)


def test_deep_sympy_request_is_a_clear_error_or_works():
    g = graphc.parse("sin(" * 3000 + "x" + ")" * 3000)
    try:
        g.to_sympy()
    except graphc.GraphcError as e:
        assert "too deep" in str(e)


def test_past_the_nesting_limit_is_a_parse_error():
    assert MAX_DEPTH > N
    with pytest.raises(graphc.ParseError, match="nesting deeper"):
        graphc.parse("-(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1))


@pytest.mark.parametrize("text", ["x*1e99999999", "x + 1e-99999999", "x*2.5E+4001"])
def test_huge_exponent_literals_are_refused_at_once(text):
    with pytest.raises(graphc.ParseError, match="exponent") as e:
        graphc.parse(text)
    assert e.value.column == text.index(next(c for c in text if c.isdigit())) + 1


@pytest.mark.parametrize(("text", "expected"), [("x*1e400", math.inf), ("x*1e-400", 0.0),
                                                ("x*1e4000", math.inf)])  # fmt: skip
def test_large_exponents_within_the_limit_are_float64_values(text, expected):
    assert float(graphc.parse(text).evaluate(x=1.0).value) == expected
    assert float(graphc.compile(text).forward(x=1.0)) == expected
