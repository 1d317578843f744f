"""Issue 13 for ``graphc check``: hints true of the counterexample shown, tolerances
validated. Oracle: SymPy's ``diff`` of the expression, evaluated at the counterexample."""

from __future__ import annotations

import re

import pytest
import sympy as sp

import graphc
from graphc.cli import main

_SYMPY = {"max": sp.Max, "sigmoid": lambda z: 1 / (1 + sp.exp(-z)), "exp": sp.exp,
          "sin": sp.sin, "relu": lambda z: sp.Max(z, 0), "abs": sp.Abs}  # fmt: skip

CASES = [
    ("max(x, y)", "x", "1"),
    ("max(x, y)", "x", "2"),
    ("relu(x)*y", "x", "3*y"),
    ("abs(x)*y", "x", "y"),
    ("x^2", "x", "x"),
    ("sin(x)*y", "x", "-cos(x)*y"),
    ("exp(x)*y", "x", "2*exp(x)*y"),
    ("max(x, y)*z", "x", "z"),
]


@pytest.mark.parametrize(("expr", "wrt", "claim"), CASES)
def test_hints_hold_at_the_counterexample(expr: str, wrt: str, claim: str) -> None:
    p = graphc.check(expr, wrt, claim)[wrt]
    assert p.verdict == "wrong"
    syms = {n: sp.Symbol(n, real=True) for n in p.counterexample}
    at = {syms[n]: sp.Rational(repr(v)) for n, v in p.counterexample.items()}
    f = sp.sympify(expr.replace("^", "**"), locals={**_SYMPY, **syms})
    true = float(sp.diff(f, syms[wrt]).subs(at).doit())  # Max' at a non-tie: Heaviside
    c = float(sp.sympify(claim.replace("^", "**"), locals={**_SYMPY, **syms}).subs(at))
    assert true == pytest.approx(p.true_value) and c == pytest.approx(p.claim_value)
    hint = p.explanation or ""
    m = re.search(r"constant factor: \S+ = (\S+) × the claim", hint)
    if m:
        assert true == pytest.approx(float(sp.Rational(m.group(1))) * c), hint
    if "wrong sign" in hint and "factor" not in hint:
        assert true == pytest.approx(-c), hint
    m = re.search(r"off by the constant (\S+)", hint)
    if m:
        assert c - true == pytest.approx(float(sp.Rational(m.group(1)))), hint


def test_max_claim_one_is_not_called_a_constant_factor() -> None:
    hint = graphc.check("max(x, y)", "x", "1")["x"].explanation or ""
    assert "constant factor" not in hint


@pytest.mark.parametrize(
    "settings",
    [{"rtol": float("inf")}, {"rtol": float("nan")}, {"rtol": -1e-7}, {"rtol": 1.0},
     {"atol": float("inf")}, {"atol": -1.0}, {"budget": -1.0}, {"budget": float("inf")}],
)  # fmt: skip
def test_tolerances_are_validated(settings: dict[str, float]) -> None:
    with pytest.raises(graphc.InputError, match=next(iter(settings))):
        graphc.check("x^2", "x", "x", **settings)


def test_cli_refuses_an_infinite_tolerance(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "x^2", "--wrt", "x", "--claim", "x", "--rtol", "inf"]) == 2
    err = capsys.readouterr().err
    assert "rtol" in err and len(err.strip().splitlines()) == 1
