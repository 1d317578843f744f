"""DAG -> gradient DAG: reverse mode, as the cs231n notes teach it.

For every gate v and each argument u the op table's partial rule builds the *local
gradient* ∂v/∂u as new gates; the *contribution* of that branch is
``upstream(v) × local``; the *upstream gradient* ∂f/∂u is the sum of the
contributions of all of u's consumers (gradients add at branches). Everything is
built with the same ops as the forward graph, into one graph, so a gradient can be
evaluated, drawn, lowered and differentiated again by the same code.

Tensor programs: a row with vector-Jacobian products (``@``, ``sum``, ``softmax``...)
gives each argument's contribution directly from the upstream gradient
(``dA = dC @ Bᵀ``), and no local gradient is kept for it (the diagram shows the
rule); an elementwise row keeps upstream × local, summed over the axes its argument
was broadcast along (``db = sum(dscores, axis=0)``), so every upstream gradient has
its node's shape. For an array-valued output the seed is an array of ones (the
gradient of ``sum(f)``).

The walk is one loop over the reversed topological order; each gate adds a constant
number of nodes per argument, so the gradient graph is built in linear time.
Whole-function SymPy expressions come from :func:`to_sympy`, only on request.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any

import networkx as nx
import sympy as sp

from . import shapes as S  # noqa: N812  (S.broadcast, S.fmt read as math)
from .deadline import DeadlineExceeded, deadline
from .errors import GraphcError
from .fold import check_exact
from .graph import Builder, Graph, ancestors, gc_paused
from .ops import OPS, SYMPY

__all__ = ["Backward", "backward", "local_sympy", "tensor_sympy", "to_sympy"]


@dataclass(frozen=True)
class Backward:
    """A gradient graph and where each part of the chain rule lives in it.

    Attributes:
        graph: forward and backward nodes together; ``graph.output`` is f.
        wrt: the inputs differentiated for.
        upstream: forward node -> node holding ∂f/∂node (nodes on a path to ``wrt``).
        local: ``(gate, i)`` -> node holding ∂gate/∂(argument i).
        contributions: ``(gate, i)`` -> node holding upstream(gate) × local, the
            part of ∂f/∂(argument i) that flows through this edge.
        grads: input name -> node holding ∂f/∂input.
    """

    graph: Graph
    wrt: tuple[str, ...]
    upstream: Mapping[str, str]
    local: Mapping[tuple[str, int], str]
    contributions: Mapping[tuple[str, int], str]
    grads: Mapping[str, str] = field(default_factory=dict)

    def branches(self, node: str) -> list[tuple[tuple[str, int], str]]:
        """The ``((consumer, i), contribution node)`` pairs that add up to ∂f/∂node, in
        the graph's order of the consumers (then of ``i``)."""
        return self._branches.get(node, [])

    @cached_property
    def _branches(self) -> dict[str, list[tuple[tuple[str, int], str]]]:
        # contributions come in reverse topological order of their gates, arguments
        # in order within a gate: reverse the gates, keep each gate's arguments
        gates: list[tuple[str, list[int]]] = []
        for consumer, i in self.contributions:
            if not gates or gates[-1][0] != consumer:
                gates.append((consumer, []))
            gates[-1][1].append(i)
        nodes, contributions = self.graph.nodes, self.contributions
        out: dict[str, list[tuple[tuple[str, int], str]]] = {}
        for consumer, positions in reversed(gates):
            args = nodes[consumer]["args"]
            for i in positions:
                out.setdefault(args[i], []).append(((consumer, i), contributions[(consumer, i)]))
        return out


class _Handle:
    """A node of the graph being built, with arithmetic that adds gates."""

    __slots__ = ("alg", "id")

    def __init__(self, alg: _GraphAlgebra, node: str) -> None:
        self.alg = alg
        self.id = node

    def __add__(self, o: Any) -> _Handle:
        return self.alg.apply("add", self, o)

    def __radd__(self, o: Any) -> _Handle:
        return self.alg.apply("add", o, self)

    def __sub__(self, o: Any) -> _Handle:
        return self.alg.apply("sub", self, o)

    def __rsub__(self, o: Any) -> _Handle:
        return self.alg.apply("sub", o, self)

    def __mul__(self, o: Any) -> _Handle:
        return self.alg.apply("mul", self, o)

    def __rmul__(self, o: Any) -> _Handle:
        return self.alg.apply("mul", o, self)

    def __truediv__(self, o: Any) -> _Handle:
        return self.alg.apply("div", self, o)

    def __rtruediv__(self, o: Any) -> _Handle:
        return self.alg.apply("div", o, self)

    def __pow__(self, o: Any) -> _Handle:
        return self.alg.apply("pow", self, o)

    def __rpow__(self, o: Any) -> _Handle:
        return self.alg.apply("pow", o, self)

    def __neg__(self) -> _Handle:
        return self.alg.apply("neg", self)


class _GraphAlgebra:
    """The algebra ``F`` that makes the op table's partial rules build gates."""

    def __init__(self, builder: Builder) -> None:
        self.b = builder

    def handle(self, node: str) -> _Handle:
        return _Handle(self, node)

    def node(self, value: Any) -> str:
        if isinstance(value, _Handle):
            return value.id
        return self.b.const(sp.Rational(value))

    def apply(self, opname: str, *args: Any, **attrs: Any) -> _Handle:
        nodes = [self.node(a) for a in args]
        return _Handle(self, self.b.gate(opname, nodes, None, tuple(attrs.items())))

    def ndim(self, value: Any) -> int:
        return len(self.b.shape(self.node(value)))

    def shape(self, value: Any) -> tuple[Any, ...]:
        return self.b.shape(self.node(value))

    def is_const(self, value: Any, const: Any) -> bool:
        return self.b.const_value(self.node(value)) == const

    def __getattr__(self, opname: str) -> Any:
        if opname not in OPS:
            raise AttributeError(opname)
        return lambda *args, **attrs: self.apply(opname, *args, **attrs)


def _needed(graph: Graph, wrt: Iterable[str]) -> set[str]:
    """Nodes on a path from an input in ``wrt`` to the output (two linear sweeps)."""
    nodes = graph.nodes
    order = graph.order
    down = set(wrt)
    for v in order:
        if v not in down and any(a in down for a in nodes[v]["args"]):
            down.add(v)
    up = {graph.output}
    for v in reversed(order):
        if v in up:
            up.update(nodes[v]["args"])
    return down & up


@gc_paused
def backward(graph: Graph, wrt: Sequence[str] | None = None) -> Backward:
    """Build the reverse-mode gradient graph of ``graph`` with respect to ``wrt``.

    >>> from graphc import parse
    >>> bw = backward(parse("q = x + y; f = q * z"))
    >>> bw.grads["x"], bw.grads["z"]     # ∂f/∂x is the input z; ∂f/∂z is the gate q
    ('z', 'add#2')
    """
    wrt = tuple(graph.differentiable if wrt is None else wrt)
    inputs, labels = set(graph.inputs), set(graph.labels)  # sets: a sum of 10,000 inputs
    for name in wrt:
        if name not in inputs:
            graph.check_input(name)
        if name in labels:
            raise GraphcError(f"'{name}' holds integer labels: it has no gradient")
    tensor = graph.tensor
    if tensor and graph.unknown_shapes():
        graph = graph.resolved()
    b = Builder.extending(graph)
    b.role = "backward"
    F = _GraphAlgebra(b)
    need = _needed(graph, wrt)
    fwd = graph
    upstream: dict[str, str] = {}
    local: dict[tuple[str, int], str] = {}
    contributions: dict[tuple[str, int], str] = {}
    pending: dict[str, list[str]] = {}
    for v in reversed(graph.order):
        if v not in need:
            continue
        if v == graph.output:
            up = b.const(1)  # ∂sum(f)/∂f: ones of f's shape, broadcast when needed
        else:
            parts = pending.pop(v, None)
            if parts is None:  # its consumers read only its shape or labels (zero)
                continue
            parts = parts[::-1]  # consumers in forward order
            up = parts[0]
            for p in parts[1:]:
                up = b.gate("add", (up, p))
        upstream[v] = up
        data = fwd.nodes[v]
        _name_gradient(b, up, v, data)
        if data["op"] in ("input", "const"):
            continue
        row = OPS[data["op"]]
        args = data["args"]
        handles = [F.handle(a) for a in args]
        attrs = row.attr_dict(data.get("attrs", ())) if row.attrs else _NO_ATTRS
        for i, a in enumerate(args):
            if a not in need:
                continue
            if row.vjps is not None:
                rule = row.vjps[i]
                if rule is None:  # integer labels
                    continue
                g = up
                if b.shape(up) != b.shape(v):  # a broadcast upstream, spelled out
                    g = b.gate("expand", (up, v))
                contrib = F.node(rule(F, F.handle(g), F.handle(v), *handles, **attrs))
            else:
                loc = F.node(row.partials[i](F, F.handle(v), *handles))
                local[(v, i)] = loc
                contrib = _times(b, up, loc) if tensor else b.gate("mul", (up, loc))
                if tensor:
                    contrib = _unbroadcast(b, contrib, b.shape(a), v)
            contributions[(v, i)] = contrib
            pending.setdefault(a, []).append(contrib)
    full = Graph(b.g, graph.output, graph.inputs, graph.text, graph.declared)
    grads = {n: upstream[n] if n in upstream else b.const(0) for n in wrt}
    return Backward(
        full,
        wrt,
        MappingProxyType(upstream),
        MappingProxyType(local),
        MappingProxyType(contributions),
        MappingProxyType(grads),
    )


def _times(b: Builder, up: str, loc: str) -> str:
    """``up * loc``, with a scalar upstream folded into a constant factor of the local
    gradient first (``(0.5 reg * 2) * W`` is one array operation, not two)."""
    data = b.g.nodes[loc]
    if b.shape(up) == () and data["op"] == "mul":
        x, y = data["args"]
        for c, arr in ((x, y), (y, x)):
            if b.g.nodes[c]["op"] == "const":
                return b.gate("mul", (b.gate("mul", (up, c)), arr))
    return b.gate("mul", (up, loc))


_NO_ATTRS: Mapping[str, Any] = MappingProxyType({})


def _unbroadcast(b: Builder, node: str, shape: tuple[Any, ...], gate: str) -> str:
    """``node`` (a contribution through elementwise ``gate``) in shape ``shape``: summed
    over the axes along which ``shape`` was broadcast, spread over the axes along which
    an upstream gradient was left broadcast."""
    full = b.shape(gate)  # what node stands for, broadcast or not
    if full == shape:
        return node
    if b.shape(node) != full:  # a broadcast upstream must be spelled out to be summed
        node = b.gate("expand", (node, gate))
    for attrs in S.sums_to(full, shape):
        node = b.gate("sum", (node,), None, tuple(attrs.items()))
    return node


def _name_gradient(b: Builder, up: str, v: str, data: Mapping[str, Any]) -> None:
    """Mark the node holding ∂f/∂v, and call it ``d<name>`` when v has a name."""
    up_data = b.g.nodes[up]
    if up not in b.created or up_data.get("grad_of") is not None:
        return
    up_data["grad_of"] = v
    name = data["name"] if data["op"] != "input" else v
    if name and up_data["name"] is None:
        up_data["name"] = "d" + name


#: Largest closed form built: operations of the expression written out as a tree (on
#: DAGs with fan-out it grows exponentially with the graph, and SymPy with it).
MAX_CLOSED_FORM = 200_000
#: Deepest closed form returned: SymPy prints (and simplifies) by recursion.
MAX_NESTING = 150
#: Seconds a closed form may take to build (SymPy's exact roots of large integers can
#: take minutes); past it, a GraphcError.
CLOSED_FORM_SECONDS = 5.0


def _symbol(name: str) -> sp.Symbol:
    return sp.Symbol(name, real=True)


def tree_sizes(graph: Graph, nodes: Sequence[str], cap: int) -> dict[str, int]:
    """Operations of the expression of each of ``nodes`` and of every node they read,
    written out as a tree (capped at ``cap + 1``): what a closed form of it would hold,
    counted in one pass over the graph without building it."""
    keep = ancestors(graph.nodes, nodes)
    size: dict[str, int] = {}
    for v, data in graph.nodes.items():
        if v in keep:
            size[v] = min(1 + sum(size[a] for a in data["args"]), cap + 1)
    return size


@gc_paused
def to_sympy(graph: Graph, nodes: Sequence[str]) -> list[sp.Expr]:
    """SymPy expressions of ``nodes``, in the graph's input symbols (real).

    One loop over the topological order, each node built once from its arguments.

    Raises:
        GraphcError: when the expression written out would have more than
            :data:`MAX_CLOSED_FORM` operations ("too large to print"), is too deep for
            SymPy's recursive algorithms,
            or SymPy cannot build it (``max(x, sqrt(-1))``: SymPy's ``sqrt(-1)`` is ``I``).
    """
    g = graph.nx
    size = tree_sizes(graph, nodes, MAX_CLOSED_FORM)
    keep = set(size)
    if any(size[n] > MAX_CLOSED_FORM for n in nodes):
        raise GraphcError(
            f"closed form too large to print (over {MAX_CLOSED_FORM:,} operations written "
            "out); use the gradient graph: evaluate, compile or render it"
        )
    exprs: dict[str, sp.Expr] = {}
    nesting = _Nesting()
    try:
        with deadline(CLOSED_FORM_SECONDS):
            for v in graph.order:
                if v not in keep:
                    continue
                data = g.nodes[v]
                if data["op"] == "input":
                    exprs[v] = _symbol(v)
                elif data["op"] == "const":
                    exprs[v] = data["value"]
                else:
                    args = tuple(exprs[a] for a in data["args"])
                    check_exact(data["op"], args)
                    exprs[v] = e = OPS[data["op"]].sympy(*args)
                    if nesting(e) > MAX_NESTING:  # before SymPy builds on it: a product
                        # of 200 deep factors took 15 s to sort (their comparisons recurse)
                        raise GraphcError(_too_deep(nesting(e), "a part of it "))
    except DeadlineExceeded:
        raise GraphcError(
            f"closed form took over {CLOSED_FORM_SECONDS:g} s to build (SymPy's exact "
            "arithmetic); use the gradient graph: evaluate, compile or render it"
        ) from None
    except RecursionError:
        raise GraphcError(
            "this graph is too deep for a SymPy expression; evaluate or compile it instead"
        ) from None
    except (TypeError, ValueError, ArithmeticError) as e:  # max(x, sqrt(-1)): "I is not
        # comparable"; mpmath's overflow deciding the sign of softplus(-1e400)
        raise GraphcError(
            f"no closed form for this graph (SymPy: {e}); evaluate or compile it instead"
        ) from None
    out = [exprs[n] for n in nodes]
    deepest = max((nesting(e) for e in out), default=0)
    if deepest > MAX_NESTING:  # SymPy's printers recurse: RecursionError past about 200
        raise GraphcError(_too_deep(deepest))
    return out


def _too_deep(levels: int, where: str = "") -> str:
    return (
        f"closed form too deep to print ({where}nested {levels} levels, at most "
        f"{MAX_NESTING}); use the gradient graph: evaluate, compile or render it"
    )


class _Nesting:
    """How deeply an expression's arguments nest, without recursion; shared parts are
    measured once, across every expression asked about (each kept alive with its
    depth, so that an id is never another object's)."""

    def __init__(self) -> None:
        self.depth: dict[int, tuple[sp.Basic, int]] = {}

    def __call__(self, expr: sp.Basic) -> int:
        depth = self.depth
        if id(expr) in depth:
            return depth[id(expr)][1]
        stack: list[tuple[sp.Basic, bool]] = [(expr, False)]
        while stack:
            e, ready = stack.pop()
            if id(e) in depth:
                continue
            if ready or not e.args:
                depth[id(e)] = (e, 1 + max((depth[id(a)][1] for a in e.args), default=0))
            else:
                stack.append((e, True))
                stack.extend((a, False) for a in e.args if id(a) not in depth)
        return depth[id(expr)][1]


def tensor_symbols(graph: Graph) -> dict[str, Any]:
    """Each input of a tensor program with numeric shapes as an object array of real
    SymPy symbols named by their entries (``W[0,1]``); a scalar input as one symbol."""
    import numpy as np

    out: dict[str, Any] = {}
    for name in graph.inputs:
        shape = graph.nodes[name]["shape"]
        if shape is None or any(not isinstance(d, int) for d in shape):
            raise GraphcError(
                f"{name} has shape {S.fmt(shape)}: give numbers for its shape"
                " (Graph.with_shapes) to expand it into SymPy"
            )
        if not shape:
            out[name] = _symbol(name)
            continue
        arr = np.empty(shape, dtype=object)
        for idx in np.ndindex(*shape):
            arr[idx] = _symbol(f"{name}[{','.join(map(str, idx))}]")
        out[name] = arr
    return out


def tensor_sympy(graph: Graph, nodes: Sequence[str], inputs: Mapping[str, Any]) -> list[Any]:
    """Nodes of a tensor program with numeric shapes as SymPy, entry by entry: each
    input is an object array of SymPy symbols (``inputs``), each op its SymPy rule
    applied to object arrays. Raises ``NotImplementedError`` for ops without one."""
    import numpy as np

    g = graph.nx
    keep = set(nodes)
    for n in nodes:
        keep |= nx.ancestors(g, n)
    vals: dict[str, Any] = {}
    for v in graph.order:
        if v not in keep:
            continue
        data = g.nodes[v]
        op = data["op"]
        if op == "input":
            vals[v] = inputs[v]
        elif op == "const":
            vals[v] = data["value"]
        else:
            row = OPS[op]
            args = [vals[a] for a in data["args"]]
            if row.tensor:
                vals[v] = row.sympy(*args, **dict(data.get("attrs", ())))
            elif any(isinstance(a, np.ndarray) for a in args):
                vals[v] = np.vectorize(row.sympy, otypes=[object])(*args)
            else:
                vals[v] = row.sympy(*args)
    return [vals[n] for n in nodes]


def local_sympy(graph: Graph, gate: str, i: int) -> sp.Expr:
    """∂gate/∂(argument i) as SymPy, in symbols named after the arguments.

    For ``f = q * z``: ∂f/∂q = z. Symbols come from ``graph.names`` (bound names,
    input names, deterministic names for unnamed gates).
    """
    data = graph.nodes[gate]
    if data["op"] in ("input", "const"):
        raise GraphcError(f"node {gate!r} is not a gate")
    row = OPS[data["op"]]
    names = graph.names
    args = []
    for a in data["args"]:
        adata = graph.nodes[a]
        args.append(adata["value"] if adata["op"] == "const" else _symbol(names[a]))
    out = sp.sympify(row.sympy(*args))
    return sp.sympify(row.partials[i](SYMPY, out, *args))
