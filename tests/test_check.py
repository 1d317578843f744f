"""graphc.check against independent oracles: SymPy built here by hand, and the notes' numbers.

Every correct claim must pass; every wrong one must fail with a counterexample at which
an independently built SymPy derivative really differs from an independently built
SymPy version of the claim.
"""

from __future__ import annotations

import math

import pytest
import sympy as sp

import graphc
from graphc import ParseError, check
from graphc.errors import InputError

x, y, z, a, b, w = sp.symbols("x y z a b w", real=True)
w0, w1, w2, x0, x1 = sp.symbols("w0 w1 w2 x0 x1", real=True)


def sig(t: sp.Expr) -> sp.Expr:
    return 1 / (1 + sp.exp(-t))


NEURON = "1/(1+exp(-(w0*x0 + w1*x1 + w2)))"
DOT = w0 * x0 + w1 * x1 + w2
STAGED = """
sigy = 1/(1+exp(-y))   # sigmoid in numerator
num = x + sigy
sigx = 1/(1+exp(-x))
xpy = x + y
xpysqr = xpy^2
den = sigx + xpysqr
invden = 1/den
f = num*invden
"""
S_DEN = sig(x) + (x + y) ** 2
S_F = (x + sig(y)) / S_DEN
# The claims' names expanded by hand, for the oracle.
S_NAMES = {
    "dnum": 1 / S_DEN,
    "dxpysqr": -(x + sig(y)) / S_DEN**2,
    "dsigx": -(x + sig(y)) / S_DEN**2,
}

# (id, expression, independent SymPy f, wrt, right claim, wrong claim, wrong claim in SymPy, domain)
TABLE = [
    ("sigmoid", "sigmoid(x)", sig(x), "x",
     "sigmoid(x)*(1-sigmoid(x))", "sigmoid(x)*(1+sigmoid(x))", sig(x) * (1 + sig(x)), None),
    ("tanh", "tanh(x)", sp.tanh(x), "x", "1 - tanh(x)^2", "1 - tanh(x)", 1 - sp.tanh(x), None),
    ("softplus", "softplus(x)", sp.log(1 + sp.exp(x)), "x",
     "sigmoid(x)", "sigmoid(-x)", sig(-x), None),
    ("logsumexp", "log(exp(a) + exp(b))", sp.log(sp.exp(a) + sp.exp(b)), "a",
     "exp(a)/(exp(a) + exp(b))", "1/(exp(a) + exp(b))", 1 / (sp.exp(a) + sp.exp(b)), None),
    ("pow-x", "x^y", x**y, "x", "y*x^(y-1)", "y*x^y", y * x**y, "x>0"),
    ("pow-y", "x^y", x**y, "y", "x^y*log(x)", "y*x^(y-1)", y * x ** (y - 1), "x>0"),
    ("neuron-w0", NEURON, sig(DOT), "w0",
     "x0*sigmoid(w0*x0 + w1*x1 + w2)*(1 - sigmoid(w0*x0 + w1*x1 + w2))",
     "sigmoid(w0*x0 + w1*x1 + w2)*(1 - sigmoid(w0*x0 + w1*x1 + w2))",
     sig(DOT) * (1 - sig(DOT)), None),
    ("neuron-x1", NEURON, sig(DOT), "x1",
     "w1*exp(-(w0*x0 + w1*x1 + w2))/(1 + exp(-(w0*x0 + w1*x1 + w2)))^2",
     "-w1*exp(-(w0*x0 + w1*x1 + w2))/(1 + exp(-(w0*x0 + w1*x1 + w2)))^2",
     -w1 * sp.exp(-DOT) / (1 + sp.exp(-DOT)) ** 2, None),
    ("circuit-x", "(x+y)z", (x + y) * z, "x", "z", "x + y", x + y, None),
    ("circuit-z", "(x+y)z", (x + y) * z, "z", "x + y", "x*y", x * y, None),
    ("staged-y", STAGED, S_F, "y",
     "(1-sigy)*sigy*dnum + 2*xpy*dxpysqr", "(1-sigy)*sigy*dnum",
     sig(y) * (1 - sig(y)) * S_NAMES["dnum"], None),
    ("staged-x", STAGED, S_F, "x",
     "dnum + (1-sigx)*sigx*dsigx + 2*xpy*dxpysqr", "dnum + 2*xpy*dxpysqr",
     S_NAMES["dnum"] + 2 * (x + y) * S_NAMES["dxpysqr"], None),
    ("division", "x/y", x / y, "y", "-x/y^2", "x/y^2", x / y**2, None),
    ("abs", "abs(x)", sp.Abs(x), "x", "x/abs(x)", "1", sp.Integer(1), "x<0"),
    ("max", "max(x, y)", sp.Max(x, y), "x", "1", "0", sp.Integer(0), "x > y + 0.01"),
    ("max-const", "max(x, 2)", sp.Max(x, 2), "x", "1", "x", x, "x > 2"),
]  # fmt: skip

IDS = [row[0] for row in TABLE]


def _at(expr: sp.Expr, point: dict[str, float]) -> float:
    subs = {s: sp.Rational(repr(point[s.name])) for s in expr.free_symbols}
    return float(sp.N(expr.xreplace(subs), 30))


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_right_claim_passes(row: tuple) -> None:
    _, expr, _, wrt, right, _, _, domain = row
    r = check(expr, wrt, right, domain=domain, points=60)
    assert r.ok, str(r)
    assert r.verdict in ("proved", "agrees numerically")
    assert str(r).startswith("✓")


@pytest.mark.parametrize("row", TABLE, ids=IDS)
def test_wrong_claim_fails_with_a_real_counterexample(row: tuple) -> None:
    _, expr, f, wrt, _, wrong, wrong_sympy, domain = row
    r = check(expr, wrt, wrong, domain=domain, points=60)
    assert not r.ok and r.verdict == "wrong", str(r)
    point = dict(r.counterexample)
    true = _at(sp.diff(f, sp.Symbol(wrt, real=True)), point)
    claim = _at(wrong_sympy, point)
    assert math.isclose(r.true_value, true, rel_tol=1e-9, abs_tol=1e-12)
    assert math.isclose(r.claim_value, claim, rel_tol=1e-9, abs_tol=1e-12)
    assert not math.isclose(true, claim, rel_tol=1e-6, abs_tol=1e-9)
    assert str(r).startswith("✗ wrong: at ")


def test_neuron_is_proved_symbolically_and_matches_the_notes() -> None:
    s = "sigmoid(w0*x0+w1*x1+w2)"
    r = check(NEURON, ["w0", "x1"], {"w0": f"x0*{s}*(1-{s})", "x1": f"w1*{s}*(1-{s})"})
    assert r.verdict == "proved"
    # graphc's derivative, at the notes' point, gives the notes' numbers
    pt = {w0: 2, w1: -3, w2: -3, x0: -1, x1: -2}
    assert float(r["w0"].derivative.subs(pt)) == pytest.approx(-0.19661193324148188, rel=1e-12)
    assert float(r["x1"].derivative.subs(pt)) == pytest.approx(-0.5898357997244457, rel=1e-12)


def test_staged_claims_in_bound_names_give_the_reference_numbers() -> None:
    # the claims, with names expanded, evaluate to reference-numbers.md at x=3, y=-4
    r = check(STAGED, None, {"x": "dnum + (1-sigx)*sigx*dsigx + 2*xpy*dxpysqr",
                             "y": "(1-sigy)*sigy*dnum + 2*xpy*dxpysqr",
                             "den": "-num/den^2", "xpy": "2*xpy*dxpysqr"})  # fmt: skip
    assert r.ok, str(r)
    assert r.output == "f"
    assert float(r["x"].derivative.subs({x: 3, y: -4})) == pytest.approx(2.05956979593, rel=1e-9)
    assert float(r["y"].derivative.subs({x: 3, y: -4})) == pytest.approx(1.59223275176, rel=1e-9)
    assert float(r["den"].derivative.subs({x: 3, y: -4})) == pytest.approx(-0.7915934472725935)
    wrong = check(STAGED, "den", "num/den^2")
    assert wrong.verdict == "wrong"
    assert wrong.explanation == "the claim has the wrong sign"


def test_issue_example_output() -> None:
    right = check("sigmoid(w*x + b)", "w", "sigmoid(w*x+b)*(1-sigmoid(w*x+b))*x")
    assert str(right) == "✓ proved: the claim equals ∂f/∂w"
    r = check("sigmoid(w*x + b)", "w", "sigmoid(w*x+b)*(1-sigmoid(w*x+b))")
    first, second = str(r).splitlines()
    pt = r.counterexample
    assert first.startswith(
        f"✗ wrong: at w={pt['w']:g}, x={pt['x']:g}, b={pt['b']:g} the claim is "
    )
    assert second == "  ∂f/∂w = x·σ(b + w·x)·(1 - σ(b + w·x)); the claim is missing a factor x"
    s = sig(w * x + b)
    assert r.true_value == pytest.approx(_at(x * s * (1 - s), pt), rel=1e-9)
    assert r.claim_value == pytest.approx(_at(s * (1 - s), pt), rel=1e-9)
    assert [m.split(":")[0] for m in r.method] == ["symbolic", "numeric", "explanation"]


@pytest.mark.parametrize(
    ("expr", "wrt", "claim", "explanation"),
    [
        ("x^2", "x", "x", "the claim is off by a constant factor: ∂f/∂x = 2 × the claim"),
        ("x*y", "x", "x", "the claim is ∂f/∂y, not ∂f/∂x"),
        ("sin(x)", "x", "-cos(x)", "the claim has the wrong sign"),
        ("x^2 + 3x", "x", "2x", "the claim is off by the constant -3 (claim - ∂f/∂x)"),
        ("exp(x)", "x", "0", "the claim is 0 but ∂f/∂x is not"),
        ("tanh(x^2)", "x", "1 - tanh(x^2)^2", "the claim is missing a factor 2·x"),
    ],
)
def test_explanations(expr: str, wrt: str, claim: str, explanation: str) -> None:
    r = check(expr, wrt, claim, points=40)
    assert r.verdict == "wrong"
    assert r.explanation == explanation


def test_explanations_print_only_short_candidates(monkeypatch: pytest.MonkeyPatch) -> None:
    """A wrong claim on a 70-gate program with fan-out: the hints are drawn only from
    expressions short enough to read. Printing every gate's closed form (up to 200,000
    operations each) took 10 s here, outside the check's budget."""
    from benchmarks.workloads import random_dag
    from graphc import targets

    printed: list[sp.Expr] = []
    real = targets.pretty
    monkeypatch.setattr(targets, "pretty", lambda e: printed.append(e) or real(e))
    r = check(random_dag(70, seed=0).text, "y", "1", points=40)
    assert r.verdict == "wrong" and r.true_value != 1.0
    assert printed and max(sp.count_ops(e) for e in printed) <= targets.CANDIDATE_OPS


def test_sqrt_of_square_needs_the_domain() -> None:
    assert check("sqrt(x^2)", "x", "1", domain="x>0").verdict == "proved"
    assert check("sqrt(x^2)", "x", "1", domain={"x": (0, None)}).ok
    r = check("sqrt(x^2)", "x", "1")
    assert r.verdict == "wrong" and r.counterexample["x"] < 0
    assert r.true_value == -1.0


def test_log_and_reciprocal_on_their_domains() -> None:
    assert check("log(x)", "x", "1/x", domain="x>0").verdict == "proved"
    assert check("log(x - 1)", "x", "1/(x-1)", domain="x >= 1.5").verdict == "proved"
    assert check("sqrt(x)", "x", "1/(2 sqrt(x))", domain="0<x<1").ok


def test_seeded_and_reproducible() -> None:
    one = check("x^3", "x", "3x", seed=7)
    two = check("x^3", "x", "3x", seed=7)
    assert one.counterexample == two.counterexample
    assert one.to_dict() == two.to_dict()


def test_points_where_either_side_is_not_finite_are_skipped() -> None:
    r = check("sqrt(x)", "x", "1/(2 sqrt(x))", points=50)  # no domain: about half have x < 0
    assert r.ok
    assert r.skipped > 0 and r.tested + r.skipped == 50


def test_sympy_inputs_and_outputs() -> None:
    r = check(x**2 * sp.sin(y), "y", x**2 * sp.cos(y))
    assert r.verdict == "proved"
    assert r.derivative == x**2 * sp.cos(y)
    bad = check(x**2 * sp.sin(y), "y", "x^2 * sin(y)")
    assert bad.verdict == "wrong"
    graph = graphc.parse("x*x")
    assert check(graph, "x", graphc.parse("2*x")).verdict == "proved"


def test_several_partials_and_worst_verdict() -> None:
    r = check("(x+y)z", ["x", "y", "z"], {"x": "z", "y": "z", "z": "x - y"})
    assert not r.ok and r.verdict == "wrong"
    assert [p.verdict for p in r.partials] == ["proved", "proved", "wrong"]
    assert r.wrt == "z"
    assert len(str(r).splitlines()) == 4


def test_unparseable_claims_give_a_positioned_parse_error() -> None:
    with pytest.raises(ParseError) as e:
        check("x^2", "x", "2*x +")
    assert (e.value.line, e.value.column) == (1, 6)
    assert "^" in str(e.value)
    with pytest.raises(ParseError) as e:
        check("x^2", "x", "2*(x")
    assert e.value.column >= 3


def test_bad_names_give_input_errors() -> None:
    with pytest.raises(InputError, match="did you mean 'sigy'"):
        check(STAGED, "y", "sigg*(1-sigy)")
    with pytest.raises(InputError, match="not an input"):
        check("x^2", "q", "2q")
    with pytest.raises(InputError, match="not an input of the expression"):
        check("x^2", "x", "2x", domain="y>0")
    with pytest.raises(InputError, match="no claim for y"):
        check("x*y", ["x", "y"], {"x": "y"})


def test_budget_overrun_is_not_an_error() -> None:
    r = check("sigmoid(w*x + b)", "w", "x*exp(-(w*x+b))/(1+exp(-(w*x+b)))^2", budget=0.0)
    assert r.verdict == "agrees numerically"
    assert "budget" in r.method[0]


def test_step_is_a_function_claims_may_use() -> None:
    """relu's derivative is written step(x) (1 where x > 0, else 0): a claim may say so."""
    assert check("relu(x)*y", "x", "step(x)*y").verdict == "proved"
    assert check("relu(x)*y", "x", "step(-x)*y", points=60).verdict == "wrong"
