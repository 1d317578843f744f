"""Claimed derivative vs graphc's: prove it, refute it with a counterexample, or say so.

:func:`check` compares a hand-derived derivative with the one graphc derives, in three
steps, each reported in :attr:`PartialCheck.method`:

1. **Symbolic.** The difference of the two SymPy expressions is reduced by cheap
   canonical forms, in order: as built, ``cancel``, and rewriting sigmoid/softplus/tanh
   via ``exp`` then ``cancel``. Differences with more than :data:`MAX_OPS` operations
   are not attempted. Difference 0 means *proved*. A domain's intervals become
   assumptions (``x > 0``: ``x`` is a positive symbol; ``x > 2``: ``x = 2 + t``, ``t``
   positive). ``simplify``, the slow step, runs only after the numbers agree (a wrong
   claim cannot be proved, so it would be time lost), only on small differences
   (:data:`MAX_SIMPLIFY_OPS`) and only while the time budget lasts. Each step runs under
   a deadline (:func:`graphc.deadline.deadline`, a ``SIGALRM`` timer) set to what is
   left of the budget and is stopped there: running out is reported ("undecided within
   the time budget"), not an error, and the numbers decide. In a thread other than the
   main one, or inside a caller's own ``SIGALRM`` timer, no deadline can be armed; the
   clock is then read between steps only, and a step that has started runs to its end.
2. **Numeric.** Both sides at many random points of the domain (seeded, so a run is
   reproducible; points rounded to 2 decimals so a counterexample reads as drawn).
   Points where either side is not finite are skipped. Two values agree when
   ``|a - b| <= rtol·max(|a|, |b|) + atol``. A disagreement in float64 is confirmed
   with SymPy at 30 digits before it is reported, so rounding error is never called a
   counterexample.
3. **Explanation.** When they disagree, cheap guesses over all the points: the claim
   is 0, has the wrong sign, is off by a constant factor or an additive constant,
   misses (or has an extra) factor that is an input, a gate's value or a gate's local
   gradient (the forgotten inner derivative of the chain rule), or is the derivative
   with respect to another input.

>>> r = check("sigmoid(w*x + b)", "w", "sigmoid(w*x+b)*(1-sigmoid(w*x+b))*x")
>>> r.ok, r.verdict
(True, 'proved')
>>> print(check("sigmoid(w*x + b)", "w", "sigmoid(w*x+b)*(1-sigmoid(w*x+b))"))
✗ wrong: at w=0.82, x=-1.08, b=-1.79 the claim is 0.06028 but ∂f/∂w is -0.0651
  ∂f/∂w = x·σ(b + w·x)·(1 - σ(b + w·x)); the claim is missing a factor x
"""

from __future__ import annotations

import contextlib
import time
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
import sympy as sp

from .args import is_whole, names_arg, number_arg, shapes_arg
from .deadline import DeadlineExceeded, deadline
from .domain import Domain, as_domain
from .errors import InputError
from .graph import Graph, parse
from .ops import sigmoid, softplus
from .parse import parse_program
from .pretty import pretty
from .targets import Target, as_claim, as_target

__all__ = ["VERDICTS", "CheckResult", "PartialCheck", "check"]

#: Verdicts from best to worst; ``"undecided"`` when too few points could be tested.
VERDICTS = ("proved", "agrees numerically", "undecided", "wrong")
#: SymPy steps are skipped for differences with more operations than this.
MAX_OPS = 400
#: ``simplify`` (the slow step) only runs below this many operations.
MAX_SIMPLIFY_OPS = 40
_CONFIRM = 10  # float disagreements confirmed at high precision, at most
#: Most random points the numeric step tests (each point a column of every gate's values).
MAX_POINTS = 100_000


Claim = str | Graph | sp.Basic | int | float


@dataclass(frozen=True)
class PartialCheck:
    """The check of one claimed partial derivative ∂f/∂wrt.

    Attributes:
        wrt: the variable (an input, or a name bound by the program).
        claim: the claim as text.
        verdict: one of :data:`VERDICTS`.
        derivative: graphc's ∂f/∂wrt as SymPy (``None`` when too large to build).
        derivative_text: the same, readable (``x·σ(b + w·x)·(1 - σ(b + w·x))``).
        method: one line per step taken, in order.
        counterexample: the point where the claim is wrong, ``{input: value}``.
        claim_value, true_value: the claim and ∂f/∂wrt at the counterexample.
        explanation: a short diagnosis of a wrong claim, when one is cheap.
        tested, skipped: points compared, and points skipped (not finite).
        output: the name of f (its bound name, or ``"f"``).
    """

    wrt: str
    claim: str
    verdict: str
    derivative: sp.Expr | None
    derivative_text: str
    method: tuple[str, ...]
    counterexample: Mapping[str, float] | None = None
    claim_value: float | None = None
    true_value: float | None = None
    explanation: str | None = None
    tested: int = 0
    skipped: int = 0
    output: str = "f"

    @property
    def ok(self) -> bool:
        """True when proved, or equal at every tested point."""
        return self.verdict in ("proved", "agrees numerically")

    @property
    def partial(self) -> str:
        return f"∂{self.output}/∂{self.wrt}"

    def lines(self) -> list[str]:
        """The readable report, one line per item."""
        d = self.partial
        if self.verdict == "proved":
            return [f"✓ proved: the claim equals {d}"]
        if self.verdict == "agrees numerically":
            return [
                f"✓ agrees numerically: the claim equals {d} at all {self.tested} points "
                "tested (not proved symbolically)"
            ]
        if self.verdict == "undecided":
            return [
                f"? undecided: not proved, and only {self.tested} of "
                f"{self.tested + self.skipped} points could be tested (not finite elsewhere)"
            ]
        assert self.counterexample is not None
        at = ", ".join(f"{k}={_num(v)}" for k, v in self.counterexample.items())
        c, t = _pair(self.claim_value, self.true_value)
        second = f"  {d} = {self.derivative_text}"
        if self.explanation:
            second += f"; {self.explanation}"
        return [f"✗ wrong: at {at} the claim is {c} but {d} is {t}", second]

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "wrt": self.wrt,
            "claim": self.claim,
            "verdict": self.verdict,
            "ok": self.ok,
            "derivative": self.derivative_text,
            "derivative_sympy": None if self.derivative is None else str(self.derivative),
            "method": list(self.method),
            "counterexample": None
            if self.counterexample is None
            else {k: _plain(v) for k, v in self.counterexample.items()},
            "claim_value": _plain(self.claim_value),
            "true_value": _plain(self.true_value),
            "explanation": self.explanation,
            "tested": self.tested,
            "skipped": self.skipped,
        }


@dataclass(frozen=True)
class CheckResult:
    """The result of :func:`check`: one :class:`PartialCheck` per claimed partial.

    ``ok`` and ``verdict`` sum them up (the worst verdict wins); the other attributes
    (``derivative``, ``counterexample``, ...) are those of the first partial that is not
    ok, or of the only one.
    """

    partials: tuple[PartialCheck, ...]
    expr: str
    domain: str = ""
    points: int = 0
    seed: int = 0
    settings: Mapping[str, float] = field(default_factory=dict)

    @property
    def ok(self) -> bool:
        return all(p.ok for p in self.partials)

    @property
    def verdict(self) -> str:
        return max((p.verdict for p in self.partials), key=VERDICTS.index)

    @property
    def main(self) -> PartialCheck:
        return next((p for p in self.partials if not p.ok), self.partials[0])

    def __getitem__(self, wrt: str) -> PartialCheck:
        for p in self.partials:
            if p.wrt == wrt:
                return p
        raise KeyError(wrt)

    def __getattr__(self, name: str) -> Any:
        if name in PartialCheck.__dataclass_fields__ or name == "partial":
            return getattr(self.main, name)
        raise AttributeError(name)

    def __str__(self) -> str:
        return "\n".join(line for p in self.partials for line in p.lines())

    def to_dict(self) -> dict[str, Any]:
        """Plain data for JSON (``graphc check --json``)."""
        return {
            "ok": self.ok,
            "verdict": self.verdict,
            "expr": self.expr,
            "domain": self.domain,
            "points": self.points,
            "seed": self.seed,
            **dict(self.settings),
            "partials": [p.to_dict() for p in self.partials],
        }


def _plain(v: Any) -> Any:
    """A value as JSON holds it: a tensor program's arrays as nested lists of floats."""
    return np.asarray(v).tolist() if isinstance(v, np.ndarray | np.generic) else v


def _num(v: Any) -> str:
    if np.ndim(v):
        return np.array2string(np.asarray(v), precision=4, separator=", ").replace("\n", "")
    return f"{v:.6g}"


def _pair(a: Any, b: Any) -> tuple[str, str]:
    """Both values with as few digits (4 or more) as tell them apart."""
    if a is None or b is None:
        return (str(a), str(b))
    if np.ndim(a) or np.ndim(b):
        return _num(a), _num(b)
    for digits in range(4, 17):
        sa, sb = f"{a:.{digits}g}", f"{b:.{digits}g}"
        if sa != sb:
            return sa, sb
    return sa, sb


def check(
    expr: str | Graph | sp.Basic,
    wrt: str | Sequence[str] | None,
    claimed: Claim | Mapping[str, Claim],
    *,
    domain: Domain | str | Mapping[str, Any] | None = None,
    points: int = 200,
    seed: int = 0,
    rtol: float = 1e-7,
    atol: float = 1e-10,
    budget: float = 10.0,
    shapes: Mapping[str, Any] | None = None,
) -> CheckResult:
    """Check claimed partial derivatives of ``expr``.

    Args:
        expr: the function: text (an expression or a staged program), a
            :class:`~graphc.Graph`, or a SymPy expression.
        wrt: the variable (an input, or a name the program binds, whose derivative is
            the upstream gradient at that node), or a list of them; ``None`` takes the
            keys of ``claimed``.
        claimed: the claim (text, Graph or SymPy), or ``{wrt: claim}``. Text claims
            may use the program's bound names (``sigy``) and ``d<name>`` for the
            gradient flowing into a name (``dnum``); they are expanded.
        domain: where the claim should hold: ``"x>0"``, ``"0<x<1, y>=2"``, or
            ``{"x": (0, None)}`` (open intervals).
        points: random points for the numeric step. seed: their seed.
        rtol, atol: numeric tolerance. budget: seconds for each claim's symbolic step,
            counted from the start of its check (its numbers included); a SymPy step
            still running then is stopped.
        shapes: tensor programs: shapes of inputs (``{"w": (3,)}``) or numbers of dim
            symbols (``{"D": 3}``); see :mod:`graphc.check_tensor`.

    Returns:
        a :class:`CheckResult`.

    Raises:
        ParseError: a claim, the expression or the domain cannot be read.
        InputError: unknown names, or claims that do not match ``wrt``.

    >>> r = check("x^y", ["x", "y"], {"x": "y*x^(y-1)", "y": "x^y*log(x)"}, domain="x>0")
    >>> r.verdict, r["y"].verdict
    ('proved', 'proved')
    """
    if not is_whole(points) or not 1 <= points <= MAX_POINTS:
        raise InputError(f"points must be a whole number from 1 to {MAX_POINTS:,}, got {points!r}")
    # nan and inf tolerances are refused: they would accept any claim
    rtol = number_arg(rtol, "rtol", low=0.0, high=1.0)
    atol = number_arg(atol, "atol", low=0.0)
    if not (is_whole(seed) and seed >= 0):
        raise InputError(f"seed must be a whole number, 0 or more, got {seed!r}")
    budget = number_arg(budget, "budget (seconds)", low=0.0)
    given = shapes_arg(shapes)
    if wrt is not None and not isinstance(wrt, str):
        wrt = names_arg(wrt)
    if isinstance(expr, str):
        program = parse_program(expr)
        # shapes for the program's names; a dim's number (N=3) stays a dim's, even
        # where the program reads N as a value (its size)
        names = _names_used(program) - set(program.dims())
        graph = parse(expr, {k: v for k, v in given.items() if k in names})
    else:
        graph = expr
    dom = as_domain(domain)
    if isinstance(graph, Graph) and graph.tensor:
        from .check_tensor import check_tensor

        return check_tensor(graph, _pairs(wrt, claimed), shapes=given, points=points,
                            seed=seed, rtol=rtol, atol=atol, budget=budget,
                            domain=dom)  # fmt: skip
    target = as_target(graph)
    pairs = _pairs(wrt, claimed)
    dom.check_names(target.inputs)
    rng = np.random.default_rng(seed)
    point = dom.sample(target.inputs, points, rng)
    n = len(next(iter(point.values()))) if point else points
    ctx = target.at(point, n)
    results = []
    for name, claim in pairs:
        results.append(_check_one(target, ctx, name, claim, dom, point, n, rtol, atol, budget))
    settings = {"rtol": rtol, "atol": atol, "budget": budget}
    return CheckResult(tuple(results), target.text, dom.describe(), points, seed, settings)


def _names_used(program: Any) -> set[str]:
    """Every name a program's statements read or bind (dim symbols are not among them)."""
    from .parse import Call, Var

    names: set[str] = set()
    stack = [st.expr for st in program.statements]
    names |= {st.name for st in program.statements if st.name}
    while stack:
        e = stack.pop()
        if isinstance(e, Var):
            names.add(e.name)
        elif isinstance(e, Call):
            stack.extend(e.args)
    return names


def _pairs(
    wrt: str | Sequence[str] | None, claimed: Claim | Mapping[str, Claim]
) -> list[tuple[str, Claim]]:
    if isinstance(claimed, Mapping):
        if wrt is None:
            return [(str(k), v) for k, v in claimed.items()]
        names = [wrt] if isinstance(wrt, str) else list(wrt)
        missing = [k for k in names if k not in claimed]
        extra = [k for k in claimed if k not in names]
        if missing or extra:
            raise InputError(
                "claims do not match wrt: "
                + "; ".join(
                    s
                    for s in (
                        f"no claim for {', '.join(missing)}" if missing else "",
                        f"claims for {', '.join(map(str, extra))} not in wrt" if extra else "",
                    )
                    if s
                )
            )
        return [(k, claimed[k]) for k in names]
    if wrt is None:
        raise InputError("wrt is needed unless the claims are a {name: claim} mapping")
    if not isinstance(wrt, str):
        names = list(wrt)
        if len(names) != 1:
            raise InputError(f"{len(names)} variables in wrt but one claim: pass {{name: claim}}")
        wrt = names[0]
    return [(wrt, claimed)]


def _check_one(
    target: Target,
    ctx: Any,
    wrt: str,
    claimed: Claim,
    dom: Domain,
    point: Mapping[str, np.ndarray],
    n: int,
    rtol: float,
    atol: float,
    budget: float,
) -> PartialCheck:
    target.check_wrt(wrt)
    start = time.monotonic()
    try:  # the closed forms are symbolic work too: built within the budget
        with deadline(budget):
            claim = as_claim(claimed, target, wrt)
            true_sym = target.derivative_sympy(wrt)
    except DeadlineExceeded:  # the numbers decide
        claim, true_sym = as_claim(claimed, target, wrt, symbolic=False), None
    claim_sym = claim.sympy
    method: list[str] = []
    proved = False
    # The numbers are computed first, so that a claim they refute (confirmed at 30
    # digits) is spared the symbolic steps that cannot prove it; the report keeps the
    # order symbolic, numeric, explanation.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        t = np.broadcast_to(np.asarray(ctx.derivative(wrt), dtype=float), (n,))
        c = np.broadcast_to(np.asarray(claim.values(ctx), dtype=float), (n,))
        finite = np.isfinite(t) & np.isfinite(c)
        close = np.abs(t - c) <= rtol * np.maximum(np.abs(t), np.abs(c)) + atol
    bad = np.flatnonzero(finite & ~close)
    tested = int(finite.sum())
    skipped = n - tested
    found, noise = _confirm(bad, point, true_sym, claim_sym)
    unresolved = 0
    if (true_sym is None or claim_sym is None) and len(bad):  # no 30-digit confirmation
        shaky = _shaky(bad, t, c, target, claim, wrt, point, n)
        unresolved = int(shaky.sum())
        kept = bad[~shaky]
        found = int(kept[0]) if len(kept) else None
        tested -= unresolved  # points that decide nothing are not counted as tested
    subs = _assumptions(dom, target.inputs)
    diff = None
    if true_sym is not None and claim_sym is not None:
        diff = _difference(true_sym, claim_sym, subs)
    if diff is None:
        method.append("symbolic: skipped (expression too large for SymPy)")
    elif found is not None:
        proved, note = _prove(diff, _CHEAP_STEPS[:1], start + budget, bool(subs))
        if not proved:
            note += "; further steps skipped, since the numbers below refute the claim"
        method.append(f"symbolic: {note}")
    else:
        proved, note = _prove(diff, _CHEAP_STEPS, start + budget, bool(subs))
        method.append(f"symbolic: {note}")
    common = {
        "wrt": wrt,
        "claim": claim.text,
        "derivative": true_sym,
        "derivative_text": "(too large to print)" if true_sym is None else pretty(true_sym),
        "tested": tested,
        "skipped": skipped,
        "output": target.output,
    }
    if found is None:
        extra = f"; {noise} differed in float64 only" if noise else ""
        if unresolved:
            extra += (
                f"; {unresolved} not counted: float64 cannot tell there (nudging the point"
                " by 1e-9 moves a side by as much as they differ: cancellation)"
            )
        method.append(f"numeric: equal at {tested} of {n} points, {skipped} not finite{extra}")
        if not proved and diff is not None and time.monotonic() < start + budget:
            proved, note = _prove(diff, _SLOW_STEPS, start + budget, bool(subs), MAX_SIMPLIFY_OPS)
            method.append(f"symbolic: {note}")
        if proved:
            verdict = "proved"
        else:
            verdict = "agrees numerically" if tested >= min(n, 10) else "undecided"
        return PartialCheck(verdict=verdict, method=tuple(method), **common)
    i = int(found)
    method.append(
        f"numeric: {len(bad) - noise - unresolved} of {tested} points disagree"
        + (" (contradicting the symbolic step)" if proved else "")
    )
    explanation = None
    try:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            explanation = _explain(t[finite], c[finite], ctx, finite, wrt, target)
    except Exception:  # a guess that fails is no guess
        explanation = None
    if explanation:
        method.append(f"explanation: {explanation}")
    return PartialCheck(
        verdict="wrong",
        method=tuple(method),
        counterexample={k: float(v[i]) for k, v in point.items()},
        claim_value=float(c[i]),
        true_value=float(t[i]),
        explanation=explanation,
        **common,
    )


def _assumptions(dom: Domain, inputs: Sequence[str]) -> dict[sp.Symbol, sp.Expr]:
    """``{real symbol: symbol with assumptions or shifted positive symbol}`` from intervals."""
    subs: dict[sp.Symbol, sp.Expr] = {}
    for name in inputs:
        iv = dom.intervals.get(name)
        shift = None if iv is None else iv.positive_shift()
        if iv is None or shift is None:
            continue
        c, s = shift
        closed = iv.closed_low if s > 0 else iv.closed_high
        kind = {"nonnegative": True} if closed else {"positive": True}
        if c == 0:
            subs[sp.Symbol(name, real=True)] = s * sp.Symbol(name, **kind)
        else:
            subs[sp.Symbol(name, real=True)] = sp.nsimplify(c) + s * sp.Symbol(f"{name}_", **kind)
    return subs


def _as_built(d: sp.Expr) -> sp.Expr:
    return d


_CHEAP_STEPS: tuple[tuple[str, Any], ...] = (
    ("as built", _as_built),
    ("cancel", sp.cancel),
    (
        "rewrite via exp, cancel",
        lambda d: sp.cancel(sp.expand_power_exp(d.rewrite(sp.exp))),
    ),
)
#: Functions the exp rewrite step acts on; without them the step is skipped.
_REWRITTEN = (sigmoid, softplus, sp.tanh, sp.sinh, sp.cosh, sp.sin, sp.cos, sp.tan)
_SLOW_STEPS: tuple[tuple[str, Any], ...] = (("simplify", sp.simplify),)


def _difference(true: sp.Expr, claim: sp.Expr, subs: Mapping[sp.Symbol, sp.Expr]) -> sp.Expr | None:
    try:
        return (true - claim).xreplace(dict(subs)) if subs else true - claim
    except Exception:
        return None


def _prove(
    diff: sp.Expr,
    steps: tuple[tuple[str, Any], ...],
    until: float,
    assumed: bool,
    limit: int = MAX_OPS,
) -> tuple[bool, str]:
    """Try to reduce ``diff`` to 0 with ``steps``, each stopped at ``until`` (a
    ``time.monotonic()`` reading); the difference as built is looked at even then."""
    tried: list[str] = []
    for name, step in steps:
        left = until - time.monotonic()
        if step is not _as_built and left <= 0:
            return False, f"undecided within the time budget (tried {', '.join(tried) or 'none'})"
        ops = sp.count_ops(diff)
        if ops > limit:
            tried.append(f"{name} skipped ({ops} operations)")
            continue
        if name.startswith("rewrite") and not diff.has(*_REWRITTEN):
            tried.append(f"{name} (nothing to rewrite)")
            continue
        try:
            with deadline(left) if step is not _as_built else contextlib.nullcontext():
                reduced = step(diff)
                smaller = reduced == 0 or sp.count_ops(reduced) <= ops
        except DeadlineExceeded:
            tried.append(f"{name} stopped at the budget")
            return False, f"undecided within the time budget (tried {', '.join(tried)})"
        except Exception:
            tried.append(f"{name} failed")
            continue
        tried.append(name)
        if reduced == 0:
            where = " using the domain's intervals" if assumed else ""
            return True, f"proved: the difference is 0 after {name}{where}"
        if smaller:
            diff = reduced
    return False, f"not proved (tried {', '.join(tried)})"


def _confirm(
    bad: np.ndarray,
    point: Mapping[str, np.ndarray],
    true: sp.Expr | None,
    claim: sp.Expr | None,
) -> tuple[int | None, int]:
    """The first float disagreement that SymPy confirms at 30 digits, and how many were noise."""
    if len(bad) == 0:
        return None, 0
    if true is None or claim is None:
        return int(bad[0]), 0
    noise = 0
    for i in bad[:_CONFIRM]:
        # Floats of 40 digits hold the printed point exactly; an exact Rational would make
        # SymPy compute x^99999999 as an integer of millions of digits
        subs = {sp.Symbol(k, real=True): sp.Float(repr(float(v[i])), 40) for k, v in point.items()}
        try:
            a = complex(true.xreplace(subs).evalf(30))
            b = complex(claim.xreplace(subs).evalf(30))
        except (TypeError, ValueError, ZeroDivisionError):
            return int(i), noise
        if abs(a - b) <= 1e-12 * max(abs(a), abs(b)) + 1e-300:
            noise += 1
            continue
        return int(i), noise
    if noise == len(bad):
        return None, noise
    return (None, len(bad)) if noise == _CONFIRM else (int(bad[noise]), noise)


def _shaky(bad: np.ndarray, t: np.ndarray, c: np.ndarray, target: Target, claim: Any,
           wrt: str, point: Mapping[str, np.ndarray], n: int) -> np.ndarray:  # fmt: skip
    """Of the disagreeing points ``bad``, those where float64 cannot tell the two sides
    apart: nudging every input by a relative 1e-9 moves the claim or the derivative by
    as much as they differ. That is cancellation eating every digit (an expanded
    ``(x+y-3)^39`` at x + y near 3), not a wrong claim; where SymPy's closed forms are
    too large to confirm a disagreement at 30 digits, such points decide nothing."""
    rng = np.random.default_rng(0)
    spread = np.zeros(len(bad))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        for _ in range(5):
            nudged = {
                k: np.asarray(v, dtype=float) * (1 + 1e-9 * rng.choice([-1.0, 1.0], np.shape(v)))
                for k, v in point.items()
            }
            ctx = target.at(nudged, n)
            t2 = np.broadcast_to(np.asarray(ctx.derivative(wrt), dtype=float), (n,))
            c2 = np.broadcast_to(np.asarray(claim.values(ctx), dtype=float), (n,))
            moved = np.abs(t2[bad] - t[bad]) + np.abs(c2[bad] - c[bad])
            spread = np.maximum(spread, np.where(np.isfinite(moved), moved, np.inf))
    # a wrong claim differs by rtol (1e-6 and up); a nudge of 1e-9 moves a well-conditioned
    # side by about 1e-9: a hundred times that still tells them apart
    return np.abs(t[bad] - c[bad]) <= 100 * spread


def _close(a: Any, b: Any) -> bool:
    a, b = np.asarray(a, dtype=float), np.asarray(b, dtype=float)
    ok = np.isfinite(a) & np.isfinite(b)
    if not ok.any():
        return False
    a, b = a[ok] if a.ndim else a, b[ok] if b.ndim else b
    return bool(np.all(np.abs(a - b) <= 1e-6 * np.maximum(np.abs(a), np.abs(b)) + 1e-9))


def _number(k: float) -> str:
    f = Fraction(k).limit_denominator(12)
    if abs(float(f) - k) <= 1e-9 * max(1.0, abs(k)):
        return str(f)
    short = f"{k:.4g}"
    # never a factor that reads as a simpler number than it is (1.000001 is not "1")
    return short if abs(float(short) - k) <= 1e-3 * abs(k) and "." in short else f"{k:.10g}"


def _wrap(text: str) -> str:
    return f"({text})" if (" " in text or "/" in text) and not text.startswith("(") else text


def _explain(
    t: np.ndarray, c: np.ndarray, ctx: Any, mask: np.ndarray, wrt: str, target: Target
) -> str | None:
    """A short diagnosis of why ``c`` (claim) differs from ``t`` (true), or ``None``."""
    if len(t) < 3:
        return None
    d = f"∂{target.output}/∂{wrt}"
    if _close(c, 0):
        return f"the claim is 0 but {d} is not"
    cands = [(text, np.broadcast_to(v, mask.shape)[mask]) for text, v in ctx.candidates()]
    # Ratios are found where both sides are nonzero, but each hint must hold at every
    # point (the counterexample shown included): t = k·c, t = v·c, t·v = c.
    nz = (np.abs(c) > 1e-12) & (np.abs(t) > 1e-12)
    ratio = t[nz] / c[nz] if nz.sum() >= 3 else None
    if ratio is not None and _close(ratio, ratio[0]) and _close(t, ratio[0] * c):
        if _close(ratio[0], -1):
            return "the claim has the wrong sign"
        return f"the claim is off by a constant factor: {d} = {_number(ratio[0])} × the claim"
    if ratio is not None:
        for text, v in cands:
            if text in target.inputs and _close(t, v * c):
                return f"the claim is missing a factor {text}"
    for other in target.inputs:
        if other != wrt and _close(c, np.broadcast_to(ctx.derivative(other), mask.shape)[mask]):
            return f"the claim is ∂{target.output}/∂{other}, not {d}"
    if _close(c, np.broadcast_to(ctx.value, mask.shape)[mask]):
        return f"the claim is {target.output} itself, not its derivative"
    if ratio is not None:
        for text, v in cands:
            if _close(t, v * c):
                return f"the claim is missing a factor {_wrap(text)}"
            if _close(t, -v * c):
                return f"the claim has the wrong sign and is missing a factor {_wrap(text)}"
            if _close(t * v, c):
                return f"the claim has an extra factor {_wrap(text)}"
    diff = t - c
    if _close(diff, diff[0]):
        return f"the claim is off by the constant {_number(-diff[0])} (claim - {d})"
    for text, v in cands:
        if _close(diff, v):
            return f"the claim is missing the term {text}"
        if _close(diff, -v):
            return f"the claim has an extra term {text}"
    return None
