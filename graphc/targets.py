"""The two sides of a check: the function (and graphc's derivatives of it) and a claim.

A :class:`Target` is the function being differentiated, built from text or a
:class:`~graphc.Graph` (derivatives from graphc's gradient graph; claims may use the
program's bound names and ``d<name>`` gradients) or from a SymPy expression
(derivatives from ``sympy.diff``). ``Target.at(point, n)`` evaluates it at ``n``
points at once (arrays), giving derivative values, values of names for claims, and
candidate factors for explanations.

A :class:`ClaimSide` is a claimed derivative: its text, its SymPy expression with
names expanded (``None`` when too large), and its values at the points.
"""

from __future__ import annotations

import warnings
from collections.abc import Callable, Mapping
from typing import Any, Protocol

import numpy as np
import sympy as sp

from .autodiff import backward, to_sympy, tree_sizes
from .errors import GraphcError, InputError, ParseError, did_you_mean
from .evaluate import evaluate
from .graph import Graph, parse
from .pretty import pretty

__all__ = ["ClaimSide", "GraphTarget", "SympyTarget", "Target", "as_claim", "as_target"]

#: Graphs with more nodes get no SymPy expressions (closed forms swell on DAGs).
SYMPY_NODES = 400
#: Graphs with more nodes get no explanation candidates.
CANDIDATE_NODES = 200
#: Longest candidate, in operations written out: a hint names a short expression
#: ("missing a factor (1 - σ(z))"), and printing long closed forms took seconds each.
CANDIDATE_OPS = 60

Ref = tuple[str, str]  # ("value" | "grad", node)


def _numpy_sigmoid(x: Any) -> Any:
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


_LAMBDIFY_MODULES = [
    {"sigmoid": _numpy_sigmoid, "softplus": lambda x: np.logaddexp(0.0, x)},
    "numpy",
]


def _lambdify(symbols: list[sp.Symbol], expr: sp.Expr) -> Callable[..., Any]:
    """NumPy code for expr (graphc's or a caller's SymPy, never text): InputError, not
    SymPy's own error, where it uses a function SymPy cannot write for NumPy (an
    Integral, besselj without SciPy), when made or when called."""
    # lambdify prints a SymPy expression graphc built or was handed (never user text).
    try:
        fn = sp.lambdify(symbols, expr, modules=_LAMBDIFY_MODULES)
    except Exception as e:  # (SymPy's printers raise several kinds)
        raise _unevaluable(expr, e) from None

    def values(*args: Any) -> Any:
        try:
            return fn(*args)
        except (NameError, TypeError, AttributeError) as e:  # a function NumPy lacks
            raise _unevaluable(expr, e) from None

    return values


def _unevaluable(expr: sp.Expr, e: Exception) -> InputError:
    why = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
    return InputError(f"graphc cannot evaluate {pretty(expr)} with NumPy ({why})")


#: The largest float64.
_MAX = sp.Float(np.finfo(np.float64).max)
#: SymPy operations that hold a result not yet computed (``doit`` computes them).
_UNEVALUATED = (sp.Derivative, sp.Integral, sp.Subs, sp.Sum, sp.Product, sp.Limit)


def sympy_side(expr: Any, what: str) -> sp.Expr:
    """``expr``, a function or a claim given as SymPy, as one graphc can evaluate: with
    derivatives, integrals and sums computed (``doit``) and ``zoo`` (SymPy's 1/0) as
    NaN, a point where it has no value. InputError for what is not a real-valued
    expression: a relation or a matrix, a function SymPy leaves undefined (``g(x)``),
    ``I``, an integral SymPy cannot do."""
    if isinstance(expr, sp.Expr) and expr.has(*_UNEVALUATED):
        expr = expr.doit()
    if not isinstance(expr, sp.Expr) or getattr(expr, "is_Matrix", False):
        raise InputError(
            f"{what} must be a real-valued SymPy expression, got {type(expr).__name__}: {expr}"
        )
    from sympy.core.function import AppliedUndef

    for kinds, why in (
        ((AppliedUndef,), "a function SymPy does not define"),
        (_UNEVALUATED, "which SymPy could not compute"),
    ):
        found = sorted(map(str, expr.atoms(*kinds)))
        if found:
            raise InputError(f"{what} contains {found[0]}, {why}: graphc cannot evaluate it")
    if expr.has(sp.I):
        raise InputError(f"{what} is complex ({pretty(expr)}): graphc checks real values")
    # numbers past float64's range are ±inf there (NumPy cannot hold 10**400 as a float)
    swap: dict[sp.Basic, sp.Basic] = {sp.zoo: sp.nan}
    swap.update((a, sp.oo if a > 0 else -sp.oo) for a in expr.atoms(sp.Rational) if abs(a) > _MAX)
    return expr.xreplace(swap)


def _no_delta(expr: sp.Expr) -> sp.Expr:
    """A derivative SymPy wrote with DiracDelta (of Heaviside, sign), with the delta as
    0: its value away from the jump, as graphc's local gradients take it."""
    return expr.replace(sp.DiracDelta, lambda *a: sp.S.Zero) if expr.has(sp.DiracDelta) else expr


def _quiet(fn: Callable[..., Any], *args: Any) -> Any:
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        return fn(*args)


def _real(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


class Target(Protocol):
    inputs: tuple[str, ...]
    text: str
    output: str

    def check_wrt(self, wrt: str) -> None: ...
    def ref(self, name: str) -> Ref | None: ...
    def sympy_of(self, ref: Ref) -> sp.Expr | None: ...
    def derivative_sympy(self, wrt: str) -> sp.Expr | None: ...
    def at(self, point: Mapping[str, np.ndarray], n: int) -> Any: ...
    def names(self) -> list[str]: ...


class GraphTarget:
    """A function given as text or a Graph; derivatives from graphc's gradient graph."""

    def __init__(self, graph: Graph) -> None:
        self.graph = graph
        self.inputs = graph.inputs
        self.text = graph.text if graph.text is not None else graph.to_text()
        data = graph.nodes[graph.output]
        self.output = data["name"] if data["op"] not in ("input", "const") and data["name"] else "f"
        self.small = len(graph) <= SYMPY_NODES

    def names(self) -> list[str]:
        bound = [d["name"] for _, d in self.graph.nodes.items() if d["name"]]
        return list(self.inputs) + bound + ["d" + n for n in list(self.inputs) + bound]

    def ref(self, name: str) -> Ref | None:
        if name in self.inputs:
            return ("value", name)
        named = [n for n, d in self.graph.nodes.items() if d["name"] == name]
        if named:
            return ("value", named[-1])
        if name.startswith("d") and len(name) > 1:
            inner = self.ref(name[1:])
            if inner is not None and inner[0] == "value":
                return ("grad", inner[1])
        return None

    def check_wrt(self, wrt: str) -> None:
        self.graph.wrt_node(wrt)  # raises for labels and names the program lacks

    def sympy_of(self, ref: Ref) -> sp.Expr | None:
        if not self.small:
            return None
        kind, node = ref
        try:  # a closed form too large to build is no closed form: the numbers decide
            if kind == "value":
                return to_sympy(self.graph, [node])[0]
            bw = self.graph.backward
            if node not in bw.upstream:
                return sp.Integer(0)
            return to_sympy(bw.graph, [bw.upstream[node]])[0]
        except GraphcError:
            return None

    def derivative_sympy(self, wrt: str) -> sp.Expr | None:
        ref = self.ref(wrt)
        assert ref is not None
        return self.sympy_of(("grad", ref[1]))

    def at(self, point: Mapping[str, np.ndarray], n: int) -> _GraphPoints:
        return _GraphPoints(self, _quiet(evaluate, self.graph, dict(point)), n)


class _GraphPoints:
    """A graph evaluated at ``n`` points at once."""

    def __init__(self, target: GraphTarget, ev: Any, n: int) -> None:
        self.target = target
        self.ev = ev
        self.n = n
        self.value = ev.value

    def values_of(self, ref: Ref) -> Any:
        kind, node = ref
        ne = self.ev.nodes[node]
        out = ne.value if kind == "value" else ne.upstream
        return 0.0 if out is None else out

    def derivative(self, wrt: str) -> Any:
        ref = self.target.ref(wrt)
        assert ref is not None
        return self.values_of(("grad", ref[1]))

    def candidates(self) -> list[tuple[str, Any]]:
        """``(text, values)`` of inputs, gate values and local gradients, shortest first."""
        graph = self.target.graph
        if len(graph) > CANDIDATE_NODES:
            return []
        bw = graph.backward
        nodes: list[str] = []
        values: list[Any] = []
        for node, data in graph.nodes.items():
            if data["op"] == "const":
                continue
            ne = self.ev.nodes[node]
            if node != graph.output:
                nodes.append(node)
                values.append(ne.value)
            for i in range(len(data["args"])):
                if (node, i) in bw.local:
                    nodes.append(bw.local[(node, i)])
                    values.append(ne.local[i])
        size = tree_sizes(bw.graph, nodes, CANDIDATE_OPS)
        short = [k for k, n in enumerate(nodes) if size[n] <= CANDIDATE_OPS]
        nodes, values = [nodes[k] for k in short], [values[k] for k in short]
        try:
            exprs = to_sympy(bw.graph, nodes)
        except GraphcError:  # too large to print: no hints from these
            return []
        seen: dict[str, Any] = {}
        for expr, value in zip(exprs, values, strict=True):
            if expr.is_number:
                continue
            seen.setdefault(pretty(expr), value)
        return sorted(seen.items(), key=lambda kv: (len(kv[0]), kv[0]))


class SympyTarget:
    """A function given as a SymPy expression; derivatives from ``sympy.diff``."""

    def __init__(self, expr: sp.Expr) -> None:
        expr = sympy_side(expr, "the function")
        syms = sorted(expr.free_symbols, key=lambda s: s.name)
        self.expr = expr.xreplace({s: _real(s.name) for s in syms})
        self.inputs = tuple(s.name for s in syms)
        self.text = pretty(self.expr)
        self.output = "f"
        self.symbols = [_real(n) for n in self.inputs]

    def names(self) -> list[str]:
        return list(self.inputs) + ["d" + n for n in self.inputs]

    def ref(self, name: str) -> Ref | None:
        if name in self.inputs:
            return ("value", name)
        if name.startswith("d") and name[1:] in self.inputs:
            return ("grad", name[1:])
        return None

    def check_wrt(self, wrt: str) -> None:
        if wrt not in self.inputs:
            raise InputError(
                f"cannot differentiate with respect to '{wrt}': not a symbol of the expression "
                f"(symbols: {', '.join(self.inputs)}){did_you_mean(wrt, self.inputs)}"
            )

    def sympy_of(self, ref: Ref) -> sp.Expr:
        kind, name = ref
        return _real(name) if kind == "value" else self.derivative_sympy(name)

    def derivative_sympy(self, wrt: str) -> sp.Expr:
        return _no_delta(sp.diff(self.expr, _real(wrt)))

    def at(self, point: Mapping[str, np.ndarray], n: int) -> _SympyPoints:
        return _SympyPoints(self, point, n)


class _SympyPoints:
    def __init__(self, target: SympyTarget, point: Mapping[str, np.ndarray], n: int) -> None:
        self.target = target
        self.args = [point[k] for k in target.inputs]
        self.n = n
        self._compiled: dict[sp.Expr, Callable[..., Any]] = {}
        self.value = self._eval(target.expr)

    def _eval(self, expr: sp.Expr) -> Any:
        if expr not in self._compiled:
            self._compiled[expr] = _lambdify(self.target.symbols, expr)
        return _quiet(self._compiled[expr], *self.args)

    def values_of(self, ref: Ref) -> Any:
        return self._eval(self.target.sympy_of(ref))

    def derivative(self, wrt: str) -> Any:
        return self._eval(self.target.derivative_sympy(wrt))

    def candidates(self) -> list[tuple[str, Any]]:
        return [(n, a) for n, a in zip(self.target.inputs, self.args, strict=True)]


def as_target(expr: Any) -> GraphTarget | SympyTarget:
    """The function of a check, from text, a Graph or a SymPy expression."""
    if isinstance(expr, str):
        return GraphTarget(parse(expr))
    if isinstance(expr, Graph):
        return GraphTarget(expr)
    if isinstance(expr, sp.Basic):
        return SympyTarget(expr)
    raise InputError(
        f"expected text, a graphc Graph or a SymPy expression, got {type(expr).__name__}"
    )


class ClaimSide:
    """A claimed derivative: text, SymPy (names expanded) and values at points."""

    def __init__(
        self,
        text: str,
        refs: Mapping[str, Ref],
        sympy_expr: sp.Expr | None,
        values: Callable[[Any], Any],
    ) -> None:
        self.text = text
        self.refs = refs
        self.sympy = sympy_expr
        self._values = values

    def values(self, points: Any) -> Any:
        return self._values(points)


def _resolve(names: list[str], target: Any, wrt: str) -> dict[str, Ref]:
    refs = {}
    for name in names:
        ref = target.ref(name)
        if ref is None:
            raise InputError(
                f"the claim for ∂{target.output}/∂{wrt} uses '{name}', which is not an input "
                f"or a name of the program{did_you_mean(name, target.names())}"
            )
        refs[name] = ref
    return refs


def _expand(expr: sp.Expr, refs: Mapping[str, Ref], target: Any) -> sp.Expr | None:
    subs = {}
    for name, ref in refs.items():
        value = target.sympy_of(ref)
        if value is None:
            return None
        subs[_real(name)] = value
    return expr.xreplace(subs)


def as_claim(claimed: Any, target: Any, wrt: str, symbolic: bool = True) -> ClaimSide:
    """A claim from text (read by graphc's parser), a Graph, a SymPy expression or a number.

    ``symbolic=False``: no SymPy form of a claim given as text (``.sympy`` is None), as
    when the time for the symbolic step has run out.
    """
    if isinstance(claimed, bool):
        raise InputError("a claim must be text, a Graph, a SymPy expression or a number")
    if isinstance(claimed, int | float):
        claimed = sp.Integer(claimed) if isinstance(claimed, int) else sp.Float(claimed)
    if isinstance(claimed, str | Graph):
        try:
            graph = parse(claimed) if isinstance(claimed, str) else claimed
        except ParseError as e:
            raise ParseError(
                f"in the claim for ∂{target.output}/∂{wrt}: {e.message}",
                e.line,
                e.column,
                e.source_line,
            ) from None
        text = claimed.strip() if isinstance(claimed, str) else graph.to_text()
        refs = _resolve(list(graph.inputs), target, wrt)
        sym = None
        if symbolic and len(graph) <= SYMPY_NODES:
            try:  # a closed form too large or too slow to build: the numbers decide
                sym = _expand(graph.to_sympy(), refs, target)
            except GraphcError:
                sym = None
        forward_only = backward(graph, wrt=())

        def graph_values(points: Any) -> Any:
            vals = {k: points.values_of(r) for k, r in refs.items()}
            return _quiet(evaluate, graph, vals, forward_only).value

        return ClaimSide(text, refs, sym, graph_values)
    if isinstance(claimed, sp.Basic):
        claimed = sympy_side(claimed, f"the claim for ∂{target.output}/∂{wrt}")
        syms = sorted(claimed.free_symbols, key=lambda s: s.name)
        expr = claimed.xreplace({s: _real(s.name) for s in syms})
        refs = _resolve([s.name for s in syms], target, wrt)
        fn = _lambdify([_real(s.name) for s in syms], expr)

        def sympy_values(points: Any) -> Any:
            return _quiet(fn, *(points.values_of(refs[s.name]) for s in syms))

        return ClaimSide(pretty(expr), refs, _expand(expr, refs, target), sympy_values)
    raise InputError(
        f"a claim must be text, a Graph, a SymPy expression or a number, "
        f"got {type(claimed).__name__}"
    )
