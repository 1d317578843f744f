"""``check`` on random programs, against claims SymPy derives from the same tree.

The tree is drawn as in ``test_oracles_common``; its text is what the user writes and
its claim is ``sympy.diff`` of the SymPy expression built from the tree with SymPy's own
functions (no graphc code). Properties:

* the right claim, as SymPy and as the text SymPy prints, is never called wrong (a
  counterexample would be false);
* the right claim plus 1, or times 2 where ∂f/∂w is not 0, is never called right, and
  where it is called wrong, SymPy at 30 digits confirms the counterexample.

Smooth ops only (no abs, relu, max, min): a claim SymPy derives at a kink is a
subgradient, which graphc may choose differently.
"""

from __future__ import annotations

import math
from typing import Any

import sympy as sp
from hypothesis import HealthCheck, Phase, assume, given, settings
from hypothesis import strategies as st
from test_oracles_common import VARS, to_sympy, to_text, trees

from graphc import check

SMOOTH = ("exp", "sin", "cos", "tanh", "sigmoid", "softplus")
SYMBOLS = {v: sp.Symbol(v, real=True) for v in VARS}
SETTINGS = settings(
    max_examples=12,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # no shrinking: slow
)


def _inputs(tree: Any) -> list[str]:
    if tree[0] == "var":
        return [tree[1]]
    return [v for c in tree[1:] if isinstance(c, tuple) for v in _inputs(c)]


def _at(expr: sp.Expr, point: dict[str, float]) -> complex:
    subs = {SYMBOLS[k]: sp.Rational(repr(v)) for k, v in point.items()}
    return complex(sp.N(expr.xreplace(subs), 30))


def _oracle(tree):
    """SymPy's f, built from the same tree; a tree whose constants divide by zero
    (-2 / (3 - 3): the oracle folds them as Python floats and raises) is not used."""
    try:
        return to_sympy(tree, SYMBOLS)
    except ZeroDivisionError:  # (found by GRAPHC_FUZZ=1)
        assume(False)


@SETTINGS
@given(trees(max_leaves=5, unary=SMOOTH, binary=()), st.data())
def test_the_right_claim_is_never_called_wrong(tree, data):
    wrt = data.draw(st.sampled_from(sorted(set(_inputs(tree)))))
    claim = sp.diff(_oracle(tree), SYMBOLS[wrt])
    r = check(to_text(tree), wrt, claim, points=40, budget=2.0)
    assert r.verdict != "wrong", (to_text(tree), wrt, claim, str(r))
    if not claim.has(sp.zoo, sp.nan):  # as text the user would write (x**2: graphc reads **)
        text = str(claim)
        r = check(to_text(tree), wrt, text, points=40, budget=2.0)
        assert r.verdict != "wrong", (to_text(tree), wrt, text, str(r))


@SETTINGS
@given(
    trees(max_leaves=5, unary=SMOOTH, binary=()), st.data(), st.sampled_from(["plus one", "twice"])
)
def test_a_wrong_claim_is_never_called_right(tree, data, how):
    wrt = data.draw(st.sampled_from(sorted(set(_inputs(tree)))))
    right = sp.diff(_oracle(tree), SYMBOLS[wrt])
    if how == "twice":
        assume(right != 0)  # (a claim of 2·0 is right)
    wrong = right + 1 if how == "plus one" else 2 * right
    text = to_text(tree)
    r = check(text, wrt, wrong, points=40, budget=2.0)
    assert r.verdict in ("wrong", "undecided"), (text, wrt, wrong, str(r))
    if how == "twice" and r.verdict == "undecided":
        return
    if r.verdict == "wrong":
        point = dict(r[wrt].counterexample)
        true, claimed = _at(right, point), _at(wrong, point)
        assert math.isclose(r[wrt].true_value, true.real, rel_tol=1e-7, abs_tol=1e-10), str(r)
        assert math.isclose(r[wrt].claim_value, claimed.real, rel_tol=1e-7, abs_tol=1e-10)
        assert not math.isclose(true.real, claimed.real, rel_tol=1e-7, abs_tol=1e-10), str(r)
