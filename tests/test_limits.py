"""Size and depth: deep and wide inputs parse and differentiate without recursion, and
past the limits (nesting, tokens, gates) an input is refused at once with a ParseError
that names the limit and how to raise it."""

from __future__ import annotations

import math
import os
import subprocess
import sys
import time

import pytest

import graphc
import graphc.graph
from graphc.cli import main
from graphc.graph import MAX_GATES
from graphc.parse import MAX_DEPTH, MAX_TOKENS

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


def _products(gates: int) -> str:
    """``x y x y ...``: implicit products, one gate per token after the first."""
    return " ".join("xy"[i % 2] for i in range(gates + 1))


def test_the_gate_limit_accepts_its_size_and_refuses_one_more() -> None:
    assert len(graphc.parse(_products(MAX_GATES))) == MAX_GATES + 2
    text = _products(MAX_GATES + 1)
    t0 = time.perf_counter()
    with pytest.raises(graphc.ParseError, match="larger than 25,000 gates") as e:
        graphc.compile(text)
    assert time.perf_counter() - t0 < 10  # refused while the graph is built, not compiled
    assert "graphc.graph.MAX_GATES" in str(e.value) and "64 KB" in str(e.value)
    # the product past the limit, at the token after its first operand: token MAX_GATES + 2
    assert (e.value.line, e.value.column) == (1, 2 * (MAX_GATES + 1) + 1)


def test_the_gate_limit_counts_gates_of_every_statement(monkeypatch) -> None:
    monkeypatch.setattr(graphc.graph, "MAX_GATES", 5)
    graphc.parse("a = x*y\nb = a + x; c = sin(b)\nc*c + 1")  # five gates
    with pytest.raises(graphc.ParseError, match="larger than 5 gates") as e:
        graphc.parse("a = x*y\nb = a + x; c = sin(b)\nc*c + exp(1)")
    assert e.value.line == 3 and e.value.source_line == "c*c + exp(1)"


def test_raising_the_gate_limit_accepts_more(monkeypatch) -> None:
    monkeypatch.setattr(graphc.graph, "MAX_GATES", MAX_GATES + 10)
    assert len(graphc.parse(_products(MAX_GATES + 1))) == MAX_GATES + 3


def test_constants_and_inputs_are_not_gates(monkeypatch) -> None:
    monkeypatch.setattr(graphc.graph, "MAX_GATES", 1)
    g = graphc.parse("a = 1; b = 2.5; c = x; c*a")
    assert len(g) == 3  # x, 1 and the product (b is not used)


def test_past_the_token_limit_is_a_parse_error_that_says_how_to_raise_it(monkeypatch) -> None:
    parse_module = sys.modules["graphc.parse"]
    monkeypatch.setattr(parse_module, "MAX_TOKENS", 20)
    with pytest.raises(graphc.ParseError, match="longer than 20 tokens") as e:
        graphc.parse("x + " * 10 + "x")
    assert "sys.modules['graphc.parse'].MAX_TOKENS" in str(e.value)
    monkeypatch.setattr(parse_module, "MAX_TOKENS", 21)
    assert len(graphc.parse("x + " * 10 + "x")) == 11


def test_a_program_at_the_gate_limit_is_under_the_token_limit() -> None:
    # a staged program of MAX_GATES gates (four tokens a gate) is refused by neither
    lines = ["a1 = x*y"] + [f"a{i} = a{i - 1}*y + a{i - 1}" for i in range(2, MAX_GATES // 2 + 1)]
    assert MAX_TOKENS >= 20 * MAX_GATES
    assert len(graphc.parse("\n".join(lines))) == MAX_GATES - 1 + 2


@pytest.mark.parametrize("command", [["codegen"], ["grad", "--at", "x=1", "--at", "y=2"]])
def test_cli_refuses_a_program_past_the_gate_limit(command, capsys) -> None:
    assert main([command[0], _products(MAX_GATES + 1), *command[1:]]) == 2
    err = capsys.readouterr().err
    assert "larger than 25,000 gates" in err and "graphc.graph.MAX_GATES" in err


def test_the_command_line_raises_a_limit_with_an_environment_variable(tmp_path) -> None:
    text = "a1 = x*y\n" + "\n".join(f"a{i} = a{i - 1} * y" for i in range(2, 41))
    env = {**os.environ, "GRAPHC_MAX_GATES": "30"}
    cmd = [sys.executable, "-m", "graphc", "codegen", "-"]
    done = subprocess.run(cmd, input=text, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "larger than 30 gates" in done.stderr
    assert "GRAPHC_MAX_GATES" in done.stderr
    env["GRAPHC_MAX_GATES"] = "50"
    done = subprocess.run(cmd, input=text, env=env, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "def value_and_grad" in done.stdout
