"""What a diagram shows, before any DOT is written: folded constants, groups, paths.

:mod:`graphc.render` draws a :class:`View`; this module decides it. A *view* maps
every node of the graph to the node that draws it: a constant operand folded into its
gate (``+1``, ``*2``, ``1/x``) is drawn by nothing, the gates of a group
(``1/(1+exp(-z))`` as one σ gate) are drawn by the group's output gate. All functions
here are pure and read per-op facts (``symbol``, ``folded``, ``partials``) from the
op table only.
"""

from __future__ import annotations

import functools
import itertools
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import networkx as nx
import numpy as np
import sympy as sp

from .args import got
from .errors import GraphcError, did_you_mean
from .graph import Graph
from .naming import size_text
from .ops import OPS, SYMPY

__all__ = ["RenderError", "View", "auto_groups", "chain_rule", "fmt_value", "make_view"]

_MAX_PATHS = 8  # chain-rule products written out in a caption
_AUTO_DEPTH = 6  # gates a group found by automatic detection may span


class RenderError(GraphcError):
    """A diagram cannot be drawn or written (bad option, missing Graphviz, bad path)."""


@dataclass(frozen=True)
class Group:
    """Gates drawn as one gate: ``out`` draws them, labelled ``label``.

    Attributes:
        out: the group's output gate (the one used outside the group).
        members: every gate of the group, ``out`` included.
        op: the op the group computes when it is one of the op table's (``"sigmoid"``).
        label: the gate's label (the op's symbol, or the group's name).
        inputs: the nodes outside the group that feed it, in order of first use.
    """

    out: str
    members: frozenset[str]
    op: str | None
    label: str
    inputs: tuple[str, ...]


@dataclass(frozen=True)
class View:
    """How a graph is drawn.

    Attributes:
        drawn: node -> the node that draws it (itself, its group's output), or
            ``None`` for a constant folded into its gate.
        labels: gate -> the label in its circle.
        groups: group output -> :class:`Group`.
        wires: drawn node -> its outgoing wires ``(source, consumer, i, drawn consumer)``
            (``source`` is the drawn node itself; ``consumer, i`` the real edge).
    """

    drawn: Mapping[str, str | None]
    labels: Mapping[str, str]
    groups: Mapping[str, Group] = field(default_factory=dict)
    wires: Mapping[str, tuple[tuple[str, str, int, str], ...]] = field(default_factory=dict)


def fmt_value(value: Any, precision: int) -> str:
    """A value as a diagram writes it: ``-4.00``; arrays of at most 12 entries in full
    (as the cs231n linear classifier figure does), larger ones by shape and range.

    >>> fmt_value(-4, 2), fmt_value(-0.001, 2), fmt_value(np.array([1, 2.5]), 1)
    ('-4.00', '-0.001', '[1.0, 2.5]')
    >>> fmt_value(0.0, 2), fmt_value(0.00357, 2), fmt_value(-2.3e-9, 2)
    ('0.00', '0.0036', '-2.3e-09')
    >>> fmt_value(np.zeros((2, 3)), 1), fmt_value(np.zeros((4, 4)), 2)
    ('[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]]', '4×4 in [0.00, 0.00]')

    Integer arrays (labels, as evaluation holds them) are written as integers:

    >>> fmt_value(np.array([0, 2]), 2), fmt_value(np.array(1), 2), fmt_value(3, 2)
    ('[0, 2]', '1', '3.00')
    """
    labels = isinstance(value, np.ndarray) and value.dtype.kind in "iub"
    a = np.asarray(value, dtype=float)

    def one(v: float) -> str:
        if labels:
            return str(int(v))
        s = f"{v:.{precision}f}"
        if float(s) == 0 and v != 0 and np.isfinite(v):  # never show a nonzero as zero
            return f"{v:.2g}"
        return s[1:] if s.startswith("-") and float(s) == 0 else s

    if a.ndim == 0:
        return one(float(a))
    if a.ndim == 1 and a.size <= 12:
        return "[" + ", ".join(one(float(v)) for v in a) + "]"
    if a.ndim == 2 and 0 < a.size <= 12:
        return "[" + ", ".join("[" + ", ".join(one(float(v)) for v in r) + "]" for r in a) + "]"
    shape = "×".join(str(n) for n in a.shape)
    if a.size == 0:
        return f"{shape} (empty)"
    return f"{shape} in [{one(float(a.min()))}, {one(float(a.max()))}]"


def _folded(graph: Graph, gate: str) -> int | None:
    """The argument index of a constant operand the gate draws inside itself, if any."""
    data = graph.nodes[gate]
    row = OPS[data["op"]]
    if not row.folded:
        return None
    kinds = [graph.nodes[a]["op"] == "const" for a in data["args"]]
    if sum(kinds) != 1 or len(kinds) < 2:
        return None
    return kinds.index(True)


def _group_from(graph: Graph, name: str, keys: Sequence[str]) -> Group:
    g = graph.nx
    members = frozenset(graph.node(k) for k in keys)
    for m in sorted(members):
        if g.nodes[m]["op"] in ("input", "const"):
            raise RenderError(f"group {name!r}: {m!r} is not a gate; list gates only")
    outs = [
        m for m in members if m == graph.output or any(c not in members for _, c in g.out_edges(m))
    ]
    if len(outs) != 1:
        raise RenderError(
            f"group {name!r} must have one output gate used outside it, found {len(outs)}"
            f" ({', '.join(sorted(outs)) or 'none'}); list every gate between its input and output"
        )
    inputs: list[str] = []
    for m in graph.order:
        if m in members:
            for a in g.nodes[m]["args"]:
                if a not in members and g.nodes[a]["op"] != "const" and a not in inputs:
                    inputs.append(a)
    op = name if name in OPS and OPS[name].arity == len(inputs) else None
    label = OPS[name].symbol if name in OPS else name
    return Group(outs[0], members, op, label, tuple(inputs))


def _fusable() -> tuple[str, ...]:
    """Unary ops that SymPy keeps whole but that gates can spell out (σ, tanh, softplus)."""
    z = sp.Symbol("z", real=True)
    found = []
    for name, row in OPS.items():
        if row.arity != 1 or row.function is None or row.tensor:
            continue
        whole = sp.sympify(row.sympy(z))
        spelled = whole.rewrite(sp.exp)
        if spelled != whole and not spelled.has(sp.I) and spelled.has(sp.exp):
            found.append(name)
    return tuple(found)


def _region(graph: Graph, z: str, v: str) -> list[str] | None:
    """Gates strictly after ``z`` up to ``v`` when they only depend on ``z`` and constants."""
    g = graph.nx
    between = (nx.descendants(g, z) & nx.ancestors(g, v)) | {v}
    for m in between:
        for a in g.nodes[m]["args"]:
            if a != z and a not in between and g.nodes[a]["op"] != "const":
                return None
        if m != v and (m == graph.output or any(c not in between for _, c in g.out_edges(m))):
            return None
    return [m for m in graph.order if m in between]


def _matches(graph: Graph, z: str, region: list[str], target: sp.Expr, sym: sp.Symbol) -> bool:
    g = graph.nx
    expr: dict[str, Any] = {z: sym}
    for m in region:
        args = []
        for a in g.nodes[m]["args"]:
            args.append(g.nodes[a]["value"] if g.nodes[a]["op"] == "const" else expr[a])
        expr[m] = sp.sympify(OPS[g.nodes[m]["op"]].sympy(*args))
    got = expr[region[-1]]
    for point in (sp.Rational(3, 7), sp.Rational(-5, 4)):
        if abs(complex(sp.N((got - target).subs(sym, point)))) > 1e-9:
            return False
    return sp.simplify(got - target) == 0


def auto_groups(graph: Graph) -> dict[str, list[list[str]]]:
    """Find spelled-out σ, tanh, softplus (``1/(1+exp(-z))``) to draw as one gate.

    >>> from graphc import parse
    >>> g = parse("1/(1+exp(-(a*b)))")
    >>> [[g.nodes[n]["op"] for n in r] for r in auto_groups(g)["sigmoid"]]
    [['neg', 'exp', 'add', 'div']]
    """
    g = graph.nx
    sym = sp.Symbol("z", real=True)
    targets = {name: sp.sympify(OPS[name].sympy(sym)).rewrite(sp.exp) for name in _fusable()}
    taken: set[str] = set()
    found: dict[str, list[list[str]]] = {}
    for v in reversed(graph.order):
        if v in taken or g.nodes[v]["op"] in ("input", "const"):
            continue
        # candidate inputs z: non-constant ancestors within a few gates, farthest first
        near = nx.single_source_shortest_path_length(g.reverse(copy=False), v, _AUTO_DEPTH)
        zs = sorted(
            (n for n in near if n != v and g.nodes[n]["op"] != "const"),
            key=lambda n: (-near[n], graph.order.index(n)),
        )
        for z in zs:
            region = _region(graph, z, v)
            if region is None or len(region) < 2 or taken & set(region):
                continue
            if any(OPS[g.nodes[m]["op"]].tensor for m in region):  # σ, tanh, softplus are
                continue  # elementwise (and a tensor op's SymPy rule takes matrices)
            hit = next((n for n, t in targets.items() if _matches(graph, z, region, t, sym)), None)
            if hit:
                found.setdefault(hit, []).append(region)
                taken |= set(region)
                break
    return found


def check_group(group: Any) -> None:
    """Raise RenderError unless ``group`` is one render takes: None, True/False,
    ``"auto"``, or names mapped to gates (a list of names, or a list of such lists)."""

    def names(v: Any) -> bool:
        return isinstance(v, list | tuple) and all(isinstance(k, str) for k in v)

    def gates(v: Any) -> bool:
        return names(v) or (isinstance(v, list | tuple) and all(map(names, v)))

    if group is None or isinstance(group, bool) or (isinstance(group, str) and group == "auto"):
        return
    if isinstance(group, Mapping) and all(
        isinstance(n, str) and gates(v) for n, v in group.items()
    ):
        return
    raise RenderError(
        f"group must be 'auto' or a dict name -> gates ({{'sigmoid': ['a', 'b']}}, or a"
        f" list of such lists), got {got(group)}"
    )


def make_view(graph: Graph, group: Any = None) -> View:
    """Decide how each node is drawn (see :class:`View`)."""
    g = graph.nx
    check_group(group)
    spec: Mapping[str, Any]
    if group in ("auto", True):
        spec = auto_groups(graph)
    elif isinstance(group, Mapping):
        spec = group
    else:  # None or False
        spec = {}
    groups: dict[str, Group] = {}
    owner: dict[str, str] = {}
    for name in sorted(spec):
        lists = spec[name]
        if lists and all(isinstance(k, str) for k in lists):
            lists = [lists]
        for keys in lists:
            grp = _group_from(graph, name, keys)
            if owner.keys() & grp.members:
                raise RenderError(f"group {name!r} overlaps another group")
            groups[grp.out] = grp
            owner.update(dict.fromkeys(grp.members, grp.out))
    drawn: dict[str, str | None] = {v: owner.get(v, v) for v in g}
    labels: dict[str, str] = {}
    folded: set[tuple[str, str]] = set()
    for v, data in g.nodes(data=True):
        if v in groups:
            labels[v] = groups[v].label
        elif data["op"] not in ("input", "const") and v not in owner:
            i = _folded(graph, v)
            row = OPS[data["op"]]
            if i is None:  # a size gate is drawn as the dim it reads: N
                labels[v] = size_text(g, data) if data["op"] == "size" else row.symbol
            else:
                labels[v] = row.folded[i].format(c=g.nodes[data["args"][i]]["label"])
                folded.add((data["args"][i], v))
    wires: dict[str, list[tuple[str, str, int, str]]] = {}
    for u, v, i in g.edges(keys=True):
        du, dv = drawn[u], drawn[v]
        const = g.nodes[u]["op"] == "const"
        if du == dv or (u, v) in folded or (const and v in owner):
            continue
        wires.setdefault(du, []).append((u, v, i, dv))  # type: ignore[arg-type]
    for v, data in g.nodes(data=True):
        if data["op"] == "const" and v not in wires and v != graph.output:
            drawn[v] = None
    return View(drawn, labels, groups, {k: tuple(w) for k, w in wires.items()})


def paths_to_output(graph: Graph, start: str) -> tuple[list[list[tuple[str, str, int]]], bool]:
    """Up to a few edge paths from ``start`` to the output, and whether there are more."""
    if start == graph.output:
        return [[]], False
    nodes = graph.nodes

    def passes(u: str, v: str, i: int) -> bool:  # no path through a size's or a label's edge
        vjps = OPS[nodes[v]["op"]].vjps
        return vjps is None or vjps[i] is not None

    gen = nx.all_simple_edge_paths(nx.subgraph_view(graph.nx, filter_edge=passes), start,
                                   graph.output)  # fmt: skip
    paths = [list(p) for p in itertools.islice(gen, _MAX_PATHS + 1)]
    return paths[:_MAX_PATHS], len(paths) > _MAX_PATHS


_SHOWN_TEXT = 24  # characters: longer unnamed gates are called by their symbol and place


def display_names(graph: Graph) -> dict[str, str]:
    """How captions and labels name each node, in words the diagram shows: inputs and
    bound names as they are, the output f, an unnamed gate by its expression
    (``(x + y)``) when short, else by its symbol and the column it was written at.

    >>> from graphc import parse
    >>> g = parse("(x+y)*exp(z)")
    >>> names = display_names(g)
    >>> names["add#2"], names["exp#4"], names[g.output]
    ('(x + y)', 'exp(z)', 'f')
    """
    from .naming import to_texts

    names = graph.names
    out: dict[str, str] = {}
    texts: dict[str, str] = {}  # every node's text, made at the first unnamed gate
    for v, data in graph.nodes.items():
        if data["op"] in ("input", "const") or data["name"] or v == graph.output:
            out[v] = names[v]
            continue
        texts = texts or to_texts(graph)
        text = texts[v]
        if len(text) <= _SHOWN_TEXT:
            out[v] = text if _atomic(text) else f"({text})"
        else:
            pos = data["pos"]
            where = f" at column {pos[1]}" if pos else ""
            out[v] = f"[{OPS[data['op']].symbol} gate{where}]"
    return out


def _atomic(text: str) -> bool:
    """A name, or one call ``f(...)`` whose first '(' closes at the end."""
    if text.isidentifier():
        return True
    head, paren, _ = text.partition("(")
    if not (paren and head.isidentifier() and text.endswith(")")):
        return False
    depth = 0
    for k, ch in enumerate(text):
        depth += (ch == "(") - (ch == ")")
        if depth == 0 and ch == ")":
            return k == len(text) - 1
    return False


def chain_rule(graph: Graph, start: str, ev: Any, precision: int) -> list[str]:
    """Caption lines writing ∂f/∂start as a sum over paths of products of local gradients.

    >>> from graphc import parse
    >>> g = parse("q = x + y; f = q * z")
    >>> chain_rule(g, "x", g.evaluate(x=-2, y=5, z=-4), 0)
    ['∂f/∂x = ∂f/∂q · ∂q/∂x = -4 · 1 = -4']
    """
    names = display_names(graph)
    f = names[graph.output]
    paths, more = paths_to_output(graph, start)
    if not paths:
        return [f"∂{f}/∂{names[start]} = 0 (no path to the output)"]
    head = f"∂{f}/∂{names[start]}"
    lines = []
    numbers = True  # every path's factors are numbers to multiply
    for path in paths:
        factors = [(f"∂{names[v]}/∂{names[u]}", (v, i)) for u, v, i in reversed(path)]
        line = " · ".join(s for s, _ in factors) or "1"
        vals = [] if ev is None else [ev.nodes[v].local[i] for _, (v, i) in factors]
        if any(x is None for x in vals):
            # a tensor op (@, sum, ...) passes on a vector-Jacobian product, not a local
            # gradient to multiply: the path is written by its factors' names only
            numbers = False
        elif ev is not None:
            line += " = " + (" · ".join(fmt_value(x, precision) for x in vals) or "1")
            product = functools.reduce(np.multiply, map(np.asarray, vals), np.float64(1.0))
            line += " = " + fmt_value(product, precision)
        lines.append(line)
    total = ev.nodes[start].upstream if ev is not None else None
    end = "" if total is None else " = " + fmt_value(total, precision)
    if len(paths) == 1 and not more:
        return [f"{head} = {lines[0]}" + ("" if numbers else end)]
    out = [f"{head} = sum over the {len(paths)} paths from {names[start]} to {f}{end}:"]
    out += [f"    path {k}: {line}" for k, line in enumerate(lines, start=1)]
    if more:
        out.append(f"    (only the first {_MAX_PATHS} paths are written out)")
    return out


def group_local(
    group: Group, k: int, out: Any, arg: Any, out_name: str, arg_name: str
) -> tuple[str, float | None] | None:
    """A group gate's local gradient for input ``k``: a formula in its output, a value.

    >>> grp = Group("div#7", frozenset({"div#7"}), "sigmoid", "σ", ("z",))
    >>> group_local(grp, 0, 0.5, 0.0, "s", "z")
    ('s·(1 - s)', 0.25)
    """
    if group.op is None:
        return None
    row = OPS[group.op]
    o, z = sp.Symbol(out_name), sp.Symbol(arg_name)
    formula = sp.sympify(row.partials[k](SYMPY, o, z))
    value = None
    if out is not None and np.ndim(out) == 0 and np.ndim(arg) == 0:
        value = float(formula.subs({o: float(out), z: float(arg)}))
    return str(formula).replace("**", "^").replace("*", "·"), value


def check_options(options: Mapping[str, Any], known: Sequence[str]) -> None:
    """Raise :class:`RenderError` for an option ``render`` does not know."""
    for key in options:
        if key not in known:
            raise RenderError(
                f"unknown render option {key!r}{did_you_mean(key, known)}"
                f" (options: {', '.join(known)})"
            )
