"""Syntax tree -> networkx DAG: the graph of gates as the user wrote them.

Node ids are plain strings: an input's id is its name (``"x"``), a constant's is
``"const#k"`` and a gate's is ``"<op>#k"`` (``"mul#3"``), ``k`` counting nodes in
creation order. ``#`` cannot occur in a name, so ids never collide. Node data:

``op``     ``"input"``, ``"const"`` or an op name of :mod:`graphc.ops`
``label``  how a diagram draws it (the input's name, the number, the op's symbol)
``name``   the name the program bound it to, or ``None``
``args``   the argument node ids, in order
``pos``    ``(line, column)`` in the text, or ``None`` for nodes graphc made
``value``  constants only: the exact value (a SymPy Rational; ``oo``, ``-oo`` or
           ``nan`` for a folded non-finite one, see :mod:`graphc.fold`)
``role``   ``"forward"``, or ``"backward"`` for nodes of a gradient
``grad_of`` backward nodes holding ∂f/∂v: the forward node v

Edges run from argument to gate; parallel edges are keyed by argument position, so
``x*x`` is two edges ``x -> mul#0`` with keys 0 and 1 (its gradient is 2x).

Identical subexpressions: the graph is what was written, so ``exp(a) + exp(a)`` has
two exp gates (a diagram shows what the student wrote); bind ``e = exp(a)`` to share
one. An input is one node however often it is used. Graphs graphc builds itself
(gradients) share identical gates (hash-consing), and generated code computes each
common subexpression once.

Nodes are created after their arguments, so the graph's node order is a topological
order; every traversal here and downstream is a loop over it, never recursion.
"""

from __future__ import annotations

import functools
import gc
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import networkx as nx
import sympy as sp

from .errors import GraphcError, InputError, did_you_mean
from .fold import NONFINITE, fold
from .ops import OPS
from .parse import Call, Num, Program, Var, parse_program

if TYPE_CHECKING:
    from .autodiff import Backward
    from .evaluate import Evaluation

__all__ = ["Builder", "Graph", "build", "gc_paused", "parse"]

_P = ParamSpec("_P")
_R = TypeVar("_R")


def gc_paused(fn: Callable[_P, _R]) -> Callable[_P, _R]:
    """Run ``fn`` with Python's cyclic garbage collector paused, then restore it.

    Building a graph allocates many small objects; with SymPy loaded, the collector's
    full passes over the heap made graph building several times slower. graphc's
    graphs hold no reference cycles that need collecting while they are built, and
    whatever becomes garbage is collected once the collector runs again.
    """

    @functools.wraps(fn)
    def paused(*args: _P.args, **kwargs: _P.kwargs) -> _R:
        if not gc.isenabled():
            return fn(*args, **kwargs)
        gc.disable()
        try:
            return fn(*args, **kwargs)
        finally:
            gc.enable()

    return paused


class Builder:
    """Adds nodes to a networkx MultiDiGraph, keeping ids deterministic.

    With ``share=True`` identical gates and equal constants are one node
    (hash-consing) and ops' ``simplify`` rules apply; graphc builds gradient graphs
    this way. User text is built with ``share=False``: the graph is what was written.

    With ``ieee = True`` (the graph code generation prepares from a user's program)
    only rewrites that hold in IEEE arithmetic apply: ``x*0`` and ``0/x`` stay gates,
    since they are nan at x = inf or 0. Gradient graphs keep them (a zero local
    gradient is a symbolic zero, as in JAX: ``d(x*0)/dx`` is 0 even at x = inf).
    """

    ieee = False

    def __init__(self, share: bool = False, nxgraph: nx.MultiDiGraph | None = None) -> None:
        self.g = nx.MultiDiGraph() if nxgraph is None else nxgraph
        self.share = share
        self.role = "forward"
        self._count = 1 + max(
            (int(n.rsplit("#", 1)[1]) for n in self.g if "#" in n), default=len(self.g) - 1
        )
        self.created: set[str] = set()
        self._cons: dict[tuple[Any, ...], str] = {}
        if share:
            for node, data in self.g.nodes(data=True):
                self._cons.setdefault(self._key(data["op"], data["args"], data.get("value")), node)

    @classmethod
    def extending(cls, graph: Graph) -> Builder:
        """A sharing builder that starts from a copy of ``graph``'s nodes."""
        return cls(share=True, nxgraph=_copy(graph.nx))

    @staticmethod
    def _key(op: str, args: tuple[str, ...], value: Any) -> tuple[Any, ...]:
        return (op, args, value) if op == "const" else (op, args)

    def _add(self, node: str, **data: Any) -> str:
        """Add a new node and its argument edges (key and ``index`` = argument position).

        Writes networkx's adjacency dicts directly, as ``add_node``/``add_edge`` would
        for a node that is new and arguments that exist: graph building is graphc's hot
        loop, and those methods' checks cost more than the insertion itself.
        """
        g = self.g
        data.setdefault("name", None)
        data.setdefault("pos", None)
        data["role"] = self.role
        g._node[node] = data
        g._succ[node] = {}
        pred: dict[str, dict[int, dict[str, int]]] = {}
        g._pred[node] = pred
        for i, arg in enumerate(data["args"]):
            keydict = pred.get(arg)
            if keydict is None:
                keydict = pred[arg] = {}
                g._succ[arg][node] = keydict
            keydict[i] = {"index": i}
        self.created.add(node)
        cache = getattr(g, "__networkx_cache__", None)
        if cache:  # what networkx cached about the graph is stale now
            cache.clear()
        return node

    def _new_id(self, prefix: str) -> str:
        node = f"{prefix}#{self._count}"
        self._count += 1
        return node

    def input(self, name: str, pos: tuple[int, int] | None = None) -> str:
        """The input node called ``name`` (created on first use)."""
        if name not in self.g:
            self._count += 1
            self._add(name, op="input", label=name, args=(), pos=pos)
        return name

    def const(self, value: sp.Rational | int, text: str | None = None, pos: Any = None) -> str:
        """A constant node of exact value ``value`` (or ±oo, nan), drawn as ``text``."""
        value = value if value in NONFINITE else sp.Rational(value)
        key = self._key("const", (), value)
        if self.share and key in self._cons:
            return self._cons[key]
        label = text if text is not None else _number_text(value)
        node = self._add(
            self._new_id("const"), op="const", label=label, args=(), value=value, pos=pos
        )
        if self.share:
            self._cons[key] = node
        return node

    def const_value(self, node: str) -> sp.Rational | None:
        data = self.g.nodes[node]
        return data["value"] if data["op"] == "const" else None

    def gate(self, opname: str, args: Iterable[str], pos: Any = None) -> str:
        """A gate ``opname(*args)``; simplified and shared when the builder shares."""
        args = tuple(args)
        row = OPS[opname]
        if len(args) != row.arity:
            raise GraphcError(f"op {opname} takes {row.arity} arguments, got {len(args)}")
        if self.share:
            nodes = self.g._node
            consts = tuple([nodes[a].get("value") for a in args])  # only constants have one
            if any(c is not None for c in consts):  # rules fire only with a constant
                if all(c is not None for c in consts):
                    if not self.ieee and row.simplify(consts) == ("const", 0):
                        return self.const(0)  # a symbolic zero wins: 0 * inf is 0 here
                    return self.const(fold(opname, consts))
                rewrite = row.simplify(consts)
                if rewrite == ("const", 0) and self.ieee:  # x*0 and 0/x: nan at inf, 0
                    rewrite = None
                if rewrite is not None:
                    if rewrite[0] == "arg":
                        return args[rewrite[1]]
                    if rewrite[0] == "const":
                        return self.const(rewrite[1])
                    return self.gate(rewrite[1], (args[i] for i in rewrite[2]), pos)
            key = self._key(opname, args, None)
            hit = self._cons.get(key)
            if hit is not None:
                return hit
            node = self._add(self._new_id(opname), op=opname, label=row.symbol, args=args, pos=pos)
            self._cons[key] = node
            return node
        return self._add(self._new_id(opname), op=opname, label=row.symbol, args=args, pos=pos)

    def bind(self, node: str, name: str) -> None:
        """Record that the program named ``node`` ``name`` (the first name a gate gets wins)."""
        data = self.g.nodes[node]
        if data["op"] not in ("input", "const") and data["name"] is None:
            data["name"] = name

    def finish(self, output: str, inputs: Iterable[str], text: str | None = None) -> Graph:
        """A :class:`Graph` of the nodes ``output`` needs, plus every input."""
        inputs = tuple(inputs)
        keep = nx.ancestors(self.g, output) | {output} | set(inputs)
        g = self.g if len(keep) == len(self.g) else _copy(self.g, keep)
        return Graph(g, output, inputs, text)


def _copy(g: nx.MultiDiGraph, keep: set[str] | None = None) -> nx.MultiDiGraph:
    """A copy of ``g`` (restricted to the nodes in ``keep``, if given), in ``g``'s node
    order, with fresh node, adjacency and edge-data dicts: a fast ``g.copy()`` or
    ``g.subgraph(keep).copy()`` that keeps the (topological) order."""
    out = nx.MultiDiGraph()
    out.graph.update(g.graph)
    nodes = g._node if keep is None else [n for n in g._node if n in keep]
    for n in nodes:
        out._node[n] = dict(g._node[n])
        out._succ[n] = {}
        out._pred[n] = {}
    succ, pred = out._succ, out._pred
    for u in nodes:
        su = succ[u]
        for v, keydict in g._succ[u].items():
            if keep is None or v in keep:
                kd = {k: dict(d) for k, d in keydict.items()}
                su[v] = kd
                pred[v][u] = kd
    return out


def _number_text(value: sp.Rational) -> str:
    if value in NONFINITE:
        return str(float(value))
    if value.is_Integer:
        return str(value)
    f = float(value)
    return repr(f) if sp.Rational(f) == value else str(value)


@gc_paused
def build(program: Program) -> Graph:
    """Turn a parsed program into a :class:`Graph` (rebinding: later uses see the new binding)."""
    b = Builder()
    env: dict[str, str] = {}
    node = ""
    for st in program.statements:
        node = _build_expr(b, st.expr, env)
        if st.name is not None:
            env[st.name] = node
            b.bind(node, st.name)
    inputs = [n for n, d in b.g.nodes(data=True) if d["op"] == "input"]
    return b.finish(node, inputs, program.text)


def _build_expr(b: Builder, root: Any, env: Mapping[str, str]) -> str:
    """Post-order walk with an explicit stack (no recursion, any depth)."""
    done: dict[int, str] = {}
    stack: list[tuple[Any, bool]] = [(root, False)]
    while stack:
        expr, ready = stack.pop()
        if isinstance(expr, Num):
            done[id(expr)] = b.const(
                sp.Rational(expr.value.numerator, expr.value.denominator), expr.text, expr.pos
            )
        elif isinstance(expr, Var):
            done[id(expr)] = env[expr.name] if expr.name in env else b.input(expr.name, expr.pos)
        elif isinstance(expr, Call) and ready:
            done[id(expr)] = b.gate(expr.op, (done.pop(id(a)) for a in expr.args), expr.pos)
        else:
            stack.append((expr, True))
            stack.extend((a, False) for a in reversed(expr.args))
    return done[id(root)]


@gc_paused
def parse(text: str) -> Graph:
    """Parse an expression or a program into a :class:`Graph`.

    Raises:
        ParseError: for text graphc cannot read, with line, column and caret.

    >>> g = parse("(x+y)z")
    >>> g.inputs
    ('x', 'y', 'z')
    >>> float(g.evaluate(x=-2, y=5, z=-4).value)
    -12.0
    """
    return build(parse_program(text))


class Graph:
    """A computation graph: a networkx DAG of inputs, constants and gates, and its output.

    Attributes:
        nx: the ``networkx.MultiDiGraph`` itself (treat it as read-only).
        output: id of the output node.
        inputs: input names, in order of first appearance.
        text: the program text it was parsed from, if any.
    """

    def __init__(
        self, g: nx.MultiDiGraph, output: str, inputs: tuple[str, ...], text: str | None = None
    ) -> None:
        self.nx = g
        self.output = output
        self.inputs = inputs
        self.text = text

    # -- structure ------------------------------------------------------------------
    def __len__(self) -> int:
        return self.nx.number_of_nodes()

    def __repr__(self) -> str:
        gates = sum(1 for _, d in self.nx.nodes(data=True) if d["op"] not in ("input", "const"))
        return f"<graphc.Graph {gates} gates, inputs {', '.join(self.inputs)}: {self.to_text()}>"

    @property
    def order(self) -> list[str]:
        """Node ids in a topological order (creation order, deterministic)."""
        return list(self.nx.nodes)

    def args(self, node: str) -> tuple[str, ...]:
        """The argument node ids of ``node``, in order."""
        return self.nx.nodes[node]["args"]

    def node(self, key: str) -> str:
        """The node id for ``key``: a node id, an input name or a bound name."""
        if key in self.nx:
            return key
        named = [n for n, d in self.nx.nodes(data=True) if d["name"] == key]
        if named:
            return named[-1]
        names = list(self.inputs) + [d["name"] for _, d in self.nx.nodes(data=True) if d["name"]]
        raise InputError(f"no node called '{key}' in this graph{did_you_mean(key, names)}")

    @cached_property
    def names(self) -> Mapping[str, str]:
        """A readable, unique Python identifier for every node (see :mod:`graphc.naming`)."""
        from .naming import node_names

        return node_names(self)

    # -- meaning --------------------------------------------------------------------
    def to_sympy(self, node: str | None = None) -> sp.Expr:
        """The function computed at ``node`` (default: the output) as one SymPy expression.

        Built only when asked: on DAGs with fan-out, SymPy's closed forms can grow
        exponentially. Input symbols are real.
        """
        from .autodiff import to_sympy

        return to_sympy(self, [self.output if node is None else self.node(node)])[0]

    def to_text(self) -> str:
        """The output as one expression in graphc's language (inlined, as a string)."""
        from .naming import to_text

        return to_text(self, self.output)

    @cached_property
    def backward(self) -> Backward:
        """The reverse-mode gradient graph with respect to every input (built once)."""
        from .autodiff import backward

        return backward(self)

    def gradients(self, wrt: Iterable[str] | None = None) -> dict[str, sp.Expr]:
        """``{input: ∂f/∂input}`` as SymPy expressions (built on request).

        >>> parse("(x+y)*z").gradients()
        {'x': z, 'y': z, 'z': x + y}
        """
        names = self.inputs if wrt is None else tuple(wrt)
        for name in names:
            self.check_input(name)
        from .autodiff import to_sympy

        bw = self.backward
        exprs = to_sympy(bw.graph, [bw.grads[n] for n in names])
        return dict(zip(names, exprs, strict=True))

    def derivative(self, name: str) -> Graph:
        """∂f/∂name as a new Graph of the same ops (call again for second derivatives).

        >>> d2 = parse("x^3").derivative("x").derivative("x")
        >>> float(d2.evaluate(x=2.0).value)
        12.0
        """
        self.check_input(name)
        from .autodiff import backward

        bw = backward(self, wrt=(name,))
        b = Builder(nxgraph=bw.graph.nx)
        return b.finish(bw.grads[name], self.inputs, None)

    def evaluate(self, /, **values: Any) -> Evaluation:
        """Values and gradients at a point; see :class:`graphc.evaluate.Evaluation`."""
        from .evaluate import evaluate

        return evaluate(self, values)

    def check_input(self, name: str) -> None:
        """Raise :class:`InputError` (with a "did you mean") unless ``name`` is an input."""
        if name not in self.inputs:
            listed = ", ".join(self.inputs) or "none"
            raise InputError(
                f"'{name}' is not an input of this graph (inputs: {listed})"
                f"{did_you_mean(name, self.inputs)}"
            )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Jupyter shows a graph as its diagram."""
        from .render import mimebundle

        return mimebundle(self, None, include, exclude)
