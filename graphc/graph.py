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
``attrs``  gates of ops with attributes: ``((name, value), ...)`` (``(("axis", 1),)``)
``shape``  tensor programs only: the node's shape, dims ints or symbols (``("N", 10)``)
``dtype``  tensor programs' inputs: ``"float"``, or ``"int"`` for integer labels

Tensor programs (a declaration such as ``W: (K, D)``, or a tensor op such as ``@`` or
``sum``) carry a shape on every node, inferred gate by gate from the op table's shape
rules as the graph is built; a gate whose arguments do not fit raises
:class:`~graphc.errors.ShapeError` at its position. An undeclared input of a tensor
program has no shape until values or ``shapes=`` give one (:meth:`Graph.with_shapes`);
gates that depend on it are checked then. Programs with neither stay scalar programs: their inputs
broadcast together at evaluation, as before.

Edges run from argument to gate; parallel edges are keyed by argument position, so
``x*x`` is two edges ``x -> mul#0`` with keys 0 and 1 (its gradient is 2x).

Identical subexpressions: the graph is what was written, so ``exp(a) + exp(a)`` has
two exp gates (a diagram shows what the student wrote); bind ``e = exp(a)`` to share
one. An input is one node however often it is used. Graphs graphc builds itself
(gradients) share identical gates (hash-consing), and generated code computes each
common subexpression once.

Nodes are created after their arguments, so the graph's node order is a topological
order; every traversal here and downstream is a loop over it, never recursion.

A text builds at most :data:`MAX_GATES` gates: compiling costs up to about 64 KB of
memory per gate (``python -m benchmarks.memory``), so the largest program accepted
compiles within 2 GB. Past it :func:`build` raises :class:`~graphc.errors.ParseError`
at the gate that crossed it, before the rest of the graph costs memory.
"""

from __future__ import annotations

import functools
import gc
import itertools
from collections.abc import Callable, Iterable, Mapping
from functools import cached_property
from typing import TYPE_CHECKING, Any, ParamSpec, TypeVar

import networkx as nx
import numpy as np
import sympy as sp

from . import shapes as S  # noqa: N812  (S.broadcast, S.fmt read as math)
from .args import got, names_arg, shapes_arg
from .errors import (
    GraphcError,
    GraphcWarning,
    InputError,
    ParseError,
    ShapeError,
    did_you_mean,
    limit,
    warn,
)
from .fold import NONFINITE, fold
from .ops import OPS, SIGNED_ZERO
from .ops import REQUIRED as REQ
from .parse import Call, Num, Program, Var, error_at, parse_program

if TYPE_CHECKING:
    from .autodiff import Backward
    from .evaluate import Evaluation

__all__ = [
    "MAX_GATES",
    "Builder",
    "Graph",
    "ancestors",
    "build",
    "gc_paused",
    "link",
    "parse",
    "rebuild",
]

#: Most gates one text may build (``graphc.graph.MAX_GATES = ...`` or the environment
#: variable ``GRAPHC_MAX_GATES`` raises it): about 1.5 GB to compile at this size for the
#: costliest program measured (``a2 = a1^a0; a3 = a2^a1; ...``); see docs/performance.md.
MAX_GATES = limit("MAX_GATES", 25_000)

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

    def __init__(
        self,
        share: bool = False,
        nxgraph: nx.MultiDiGraph | None = None,
        shapes: Mapping[str, tuple[S.Shape, str]] | None = None,
        text: str | None = None,
    ) -> None:
        self.g = nx.MultiDiGraph() if nxgraph is None else nxgraph
        self.share = share
        #: tensor mode: each input's (shape, dtype); ``None`` for a scalar program
        self.shapes = shapes
        self.text = text
        self.role = "forward"
        self._count = 1 + max(
            (int(n.rsplit("#", 1)[1]) for n in self.g if "#" in n), default=len(self.g) - 1
        )
        self.created: set[str] = set()
        self._cons: dict[tuple[Any, ...], str] = {}
        if share:
            for node, data in self.g.nodes(data=True):
                extra = data.get("value") if data["op"] == "const" else data.get("attrs", ())
                self._cons.setdefault(self._key(data["op"], data["args"], extra), node)

    @classmethod
    def extending(cls, graph: Graph) -> Builder:
        """A sharing builder that starts from a copy of ``graph``'s nodes."""
        return cls(share=True, nxgraph=_copy(graph._g), shapes=graph.declared, text=graph.text)

    @staticmethod
    def _key(op: str, args: tuple[str, ...], extra: Any) -> tuple[Any, ...]:
        """The hash-consing key: a constant's value, or a gate's attributes (``()``)."""
        return (op, args, extra)

    def shape(self, node: str) -> S.Shape:
        """The shape of ``node`` (tensor mode)."""
        return self.g._node[node]["shape"]

    def _shape_error(self, message: str, pos: Any) -> ShapeError:
        if pos and self.text is not None:
            lines = self.text.split("\n")
            line = lines[pos[0] - 1] if 0 < pos[0] <= len(lines) else ""
            return ShapeError(message, pos[0], pos[1], line)
        return ShapeError(message)

    def _infer(self, opname: str, args: tuple[str, ...], attrs: tuple[Any, ...], pos: Any) -> Any:
        """The shape of gate ``opname(*args)``; checks labels and shapes at ``pos``."""
        row = OPS[opname]
        nodes = self.g._node
        what = row.function or row.symbol
        for i, a in enumerate(args):
            is_int = nodes[a].get("dtype") == "int"
            if i in row.labels and not is_int:
                raise self._shape_error(
                    f"{what}: argument {i + 1} must be integer labels (declare it: y: (N,) int)",
                    pos,
                )
            if is_int and i not in row.labels and opname != "size":  # (size reads a shape)
                raise self._shape_error(
                    f"{what}: '{a}' holds integer labels, not numbers"
                    " (pick(s, y) and one_hot(y, C) read labels)",
                    pos,
                )
        arg_shapes = [nodes[a]["shape"] for a in args]
        if any(sh is None for sh in arg_shapes):
            return None  # inferred when values (or shapes=) give the inputs' shapes
        try:
            if row.shape is None:
                return S.broadcast(*arg_shapes)
            return row.shape(arg_shapes, **dict(attrs))
        except S.ShapeMismatch as e:
            shown = ", ".join(
                f"{_describe(nodes[a], a)} {S.fmt(sh)}"
                for a, sh in zip(args, arg_shapes, strict=True)
            )
            raise self._shape_error(f"{what} gate: {e} (arguments: {shown})", pos) from None

    def _add(self, node: str, **data: Any) -> str:
        """Add a new node (its argument edges come with :func:`link`, when the networkx
        graph is first asked for them: compiling reads only the nodes' ``args``)."""
        data.setdefault("name", None)
        data.setdefault("pos", None)
        data["role"] = self.role
        self.g._node[node] = data
        self.created.add(node)
        return node

    def _new_id(self, prefix: str) -> str:
        node = f"{prefix}#{self._count}"
        self._count += 1
        return node

    def input(self, name: str, pos: tuple[int, int] | None = None) -> str:
        """The input node called ``name`` (created on first use)."""
        if name not in self.g:
            self._count += 1
            if self.shapes is None:
                self._add(name, op="input", label=name, args=(), pos=pos)
            else:
                shape, dtype = self.shapes.get(name, (None, "float"))  # None: not known yet
                self._add(name, op="input", label=name, args=(), pos=pos, shape=shape,
                          dtype=dtype)  # fmt: skip
        return name

    def const(self, value: sp.Rational | int, text: str | None = None, pos: Any = None) -> str:
        """A constant node of exact value ``value`` (or ±oo, nan), drawn as ``text``."""
        if not isinstance(value, sp.Rational):  # (a Rational is finite: no comparisons)
            value = value if value in NONFINITE else sp.Rational(value)
        key = self._key("const", (), value)
        if self.share and key in self._cons:
            return self._cons[key]
        label = text if text is not None else _number_text(value)
        node = self._add(
            self._new_id("const"), op="const", label=label, args=(), value=value, pos=pos
        )
        if self.shapes is not None:
            self.g._node[node]["shape"] = ()
        if self.share:
            self._cons[key] = node
        return node

    def const_value(self, node: str) -> sp.Rational | None:
        data = self.g.nodes[node]
        return data["value"] if data["op"] == "const" else None

    def gate(
        self, opname: str, args: Iterable[str], pos: Any = None, attrs: Iterable[Any] = ()
    ) -> str:
        """A gate ``opname(*args)``; simplified and shared when the builder shares."""
        args = tuple(args)
        row = OPS[opname]
        if attrs:  # one spelling per gate: defaults dropped, names sorted
            defaults = dict(row.attrs)
            attrs = tuple(sorted((k, v) for k, v in attrs if defaults.get(k, REQ) != v))
        else:
            attrs = ()
        if len(args) != row.arity:
            raise GraphcError(f"op {opname} takes {row.arity} arguments, got {len(args)}")
        extra: dict[str, Any] = {}
        if self.shapes is not None:
            extra["shape"] = self._infer(opname, args, attrs, pos)
            if attrs:
                extra["attrs"] = attrs
        elif attrs:
            raise GraphcError(f"op {opname}: attributes need a tensor program")
        if not self.share:
            return self._add(self._new_id(opname), op=opname, label=row.symbol, args=args,
                             pos=pos, **extra)  # fmt: skip
        if not row.tensor:
            folded = self._simplified(row, args, pos)
            # a rewrite that would change the shape (x*0 -> 0) is not taken
            if folded is not None and self.g._node[folded].get("shape") == extra.get("shape"):
                return folded
        key = self._key(opname, args, attrs)
        hit = self._cons.get(key)
        if hit is not None:
            return hit
        node = self._add(
            self._new_id(opname), op=opname, label=row.symbol, args=args, pos=pos, **extra
        )
        self._cons[key] = node
        return node

    def _simplified(self, row: Any, args: tuple[str, ...], pos: Any) -> str | None:
        """The node a gate of constants folds to, or a simplify rule rewrites it to."""
        nodes = self.g._node
        for a in args:  # rules fire only with a constant (only constants have a value)
            if nodes[a].get("value") is not None:
                break
        else:
            return None
        consts = tuple([nodes[a].get("value") for a in args])
        if all(c is not None for c in consts):
            if not self.ieee and row.simplify(consts) == ("const", 0):
                return self.const(0)  # a symbolic zero wins: 0 * inf is 0 here
            value = fold(row.name, consts)
            if value is not None:  # None: -0.0, which no Rational can hold
                return self.const(value)
            return None
        rewrite = row.simplify(consts)
        if self.ieee and (rewrite == ("const", 0) or rewrite in SIGNED_ZERO.get(row.name, ())):
            rewrite = None  # x*0 and 0/x: nan at inf, 0; x + 0 at x = -0 is +0
        if rewrite is not None:
            if rewrite[0] == "arg":
                return args[rewrite[1]]
            if rewrite[0] == "const":
                return self.const(rewrite[1])
            return self.gate(rewrite[1], (args[i] for i in rewrite[2]), pos)
        return None

    def bind(self, node: str, name: str) -> None:
        """Record that the program named ``node`` ``name`` (the first name a gate gets wins)."""
        data = self.g.nodes[node]
        if data["op"] not in ("input", "const") and data["name"] is None:
            data["name"] = name

    def finish(self, output: str, inputs: Iterable[str], text: str | None = None) -> Graph:
        """A :class:`Graph` of the nodes ``output`` needs, plus every input."""
        inputs = tuple(inputs)
        keep = ancestors(self.g._node, [output]) | set(inputs)
        g = self.g if len(keep) == len(self.g) else _copy(self.g, keep)
        return Graph(g, output, inputs, text, self.shapes)


def ancestors(nodes: Mapping[str, Mapping[str, Any]], roots: Iterable[str | None]) -> set[str]:
    """The roots (``None`` skipped) and every node they read, by the nodes' ``args``
    (``nodes``: node -> its data; networkx's own walk costs twice this)."""
    seen: set[str] = set()
    stack = [r for r in roots if r is not None]
    while stack:
        n = stack.pop()
        if n not in seen:
            seen.add(n)
            stack.extend(nodes[n]["args"])
    return seen


def _describe(data: Mapping[str, Any], node: str) -> str:
    """A node as a shape error names it: its bound name, the input, the number, or its
    gate (``max(…)``, ``the @ gate``)."""
    if data["op"] in ("input", "const"):
        return node if data["op"] == "input" else data["label"]
    if data["name"]:
        return data["name"]
    row = OPS[data["op"]]
    function = row.called()
    return f"{function}(…)" if function else f"the {row.symbol} gate"


def link(g: nx.MultiDiGraph) -> nx.MultiDiGraph:
    """Give ``g``'s nodes that lack them their argument edges (key and ``index`` =
    argument position), in node order; returns ``g``.

    Graph building writes only the node dicts (``Builder._add``): parsing, preparing,
    differentiating and lowering read a node's ``args``, and networkx's adjacency dicts
    (a dict per node each way, two per edge) were three quarters of a gradient graph's
    memory. The linked nodes are always a prefix of the node order, as nodes are only
    ever added after their arguments.
    """
    succ, pred, nodes = g._succ, g._pred, g._node
    if len(succ) == len(nodes):
        return g
    for node in itertools.islice(nodes, len(succ), None):
        succ[node] = {}
        pred[node] = mine = {}
        for i, arg in enumerate(nodes[node]["args"]):
            keydict = mine.get(arg)
            if keydict is None:
                keydict = mine[arg] = {}
                succ[arg][node] = keydict
            keydict[i] = {"index": i}
    cache = getattr(g, "__networkx_cache__", None)
    if cache:  # what networkx cached about the graph is stale now
        cache.clear()
    return g


def _copy(g: nx.MultiDiGraph, keep: set[str] | None = None) -> nx.MultiDiGraph:
    """A copy of ``g``'s nodes (those in ``keep``, if given), in ``g``'s node order,
    with fresh node dicts; :func:`link` gives it its edges when they are asked for."""
    out = nx.MultiDiGraph()
    out.graph.update(g.graph)
    nodes = g._node if keep is None else [n for n in g._node if n in keep]
    mine = out._node
    for n in nodes:
        mine[n] = dict(g._node[n])
    return out


def _number_text(value: sp.Rational) -> str:
    if value in NONFINITE:
        return str(float(value))
    if value.is_Integer:
        return str(value)
    f = float(value)
    return repr(f) if sp.Rational(f) == value else str(value)


@gc_paused
def build(program: Program, shapes: Mapping[str, Any] | None = None) -> Graph:
    """Turn a parsed program into a :class:`Graph` (rebinding: later uses see the new binding).

    A program with declarations or tensor ops is a tensor program: its declared inputs
    come first, in declaration order, and every node gets a shape.
    """
    declared = {d.name: (d.shape, d.dtype) for d in program.declarations}
    for name, shape in (shapes or {}).items():
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        declared[name] = (shape, declared.get(name, ((), "float"))[1])
    tensor = bool(declared) or _uses_tensor_ops(program)
    b = Builder(shapes=declared if tensor else None, text=program.text)
    for name, pos in program.header:  # the header's order is the parameter order
        b.input(name, pos)
    for d in program.declarations:
        b.input(d.name, d.pos)
    env: dict[str, str] = {}
    node = ""
    gates = [0]
    # A dim read as a value (N in `sum(X) / N`, the notes' 1/N) is the length of the
    # first declared input with that dim: a size gate, size(X, 0). As a name of its
    # own it would be a new input, free to differ from X's rows.
    for name, (of, axis) in program.dims().items():
        pos = _value_named(program, name) if name not in declared else None
        if pos is not None:
            env[name] = b.gate("size", [of], pos, (("axis", axis),))
    if "e" not in env and "e" not in declared:
        _warn_euler(program)
    for st in program.statements:
        node = _build_expr(b, st.expr, env, gates)
        if st.name is not None:
            env[st.name] = node
            b.bind(node, st.name)
    _check_attr_dims(b, program, declared)
    inputs = [n for n, d in b.g.nodes(data=True) if d["op"] == "input"]
    if program.header:
        listed = {name for name, _ in program.header}
        extra = [n for n in inputs if n not in listed]
        if extra:
            names = ", ".join(name for name, _ in program.header)
            pos = b.g.nodes[extra[0]]["pos"] or (1, 1)
            raise error_at(program.text, f"'{extra[0]}' is an input but not in the header"
                           f" ({names}) ->; add it there", pos)  # fmt: skip
    return b.finish(node, inputs, program.text)


def _check_attr_dims(b: Builder, program: Program, declared: Mapping[str, Any]) -> None:
    """A dim an option names (one_hot(y, C), reshape(x, (N, 1))) must be one a
    declaration has, so that values give it a number: else a ParseError at the gate
    (evaluation met the text 'C' where a number belongs: a raw NumPy error)."""
    known = {d for shape, _ in declared.values() for d in shape or () if isinstance(d, str)}
    for data in b.g._node.values():
        for d in S.attr_dims(data.get("attrs", ())):
            if d not in known:
                fn = OPS[data["op"]].called() or data["op"]
                message = (f"{fn}: the dim {d} is in no declaration, so no value gives it a"
                           f" number; declare an input with it (s: (N, {d})) or write the"
                           " number")  # fmt: skip
                raise error_at(program.text, message, data["pos"] or (1, 1))


def _warn_euler(program: Program) -> None:
    """Warn, once, where an input called ``e`` is raised to a power before any statement
    binds ``e``: the lecture's ``e^x`` is Euler's number, which graphc writes ``exp(x)``
    (it has no constant ``e``)."""
    for st in program.statements:
        stack: list[Any] = [st.expr]
        while stack:
            expr = stack.pop()
            if not isinstance(expr, Call) or not expr.args:
                continue
            base = expr.args[0]
            if expr.op == "pow" and isinstance(base, Var) and base.name == "e":
                line, column = base.pos
                warn(GraphcWarning(
                    f"line {line}, column {column}: e^… raises the input e to a power;"
                    " graphc has no constant e: for Euler's number write exp(…)"
                ))  # fmt: skip
                return
            stack.extend(expr.args)
        if st.name == "e":
            return


def _value_named(program: Program, name: str) -> tuple[int, int] | None:
    """Where the program first reads ``name`` as a value before any binding of it, or None."""
    for st in program.statements:
        stack: list[Any] = [st.expr]
        while stack:
            e = stack.pop()
            if isinstance(e, Var) and e.name == name:
                return e.pos
            if isinstance(e, Call):
                stack.extend(reversed(e.args))
        if st.name == name:
            return None
    return None


def _build_expr(b: Builder, root: Any, env: Mapping[str, str], gates: list[int]) -> str:
    """Post-order walk with an explicit stack (no recursion, any depth); ``gates[0]``
    counts the gates built so far, against :data:`MAX_GATES`."""
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
            gates[0] += 1
            if gates[0] > MAX_GATES:
                raise _too_many_gates(b.text, expr.pos)
            args = [done.pop(id(a)) for a in expr.args]
            if expr.implicit and b.shapes is not None:
                _check_implicit(b, args, expr.pos)
            done[id(expr)] = b.gate(expr.op, args, expr.pos, expr.attrs)
        else:
            stack.append((expr, True))
            stack.extend((a, False) for a in reversed(expr.args))
    return done[id(root)]


def _check_implicit(b: Builder, args: list[str], pos: tuple[int, int]) -> None:
    """Refuse a product written without an operator between two tensors (``W x``): the
    notes mean the matrix product there, which graphc's ``*`` (entry by entry, with
    broadcasting) is not. A number or a scalar beside anything (``2x``) is a product."""
    shapes = [b.shape(a) for a in args]
    if any(not sh for sh in shapes):  # a scalar, or a shape not known yet
        return
    left, right = (_describe(b.g._node[a], a) for a in args)
    kind = "dot" if len(shapes[0]) == len(shapes[1]) == 1 else "matrix"
    if left.isidentifier() and right.isidentifier():
        what, matmul, mul = f"{left} {right}: two", f"{left} @ {right}", f"{left} * {right}"
    else:
        what, matmul, mul = "two", "@", "*"
    raise b._shape_error(
        f"{what} tensors side by side multiply entry by entry in graphc, not as the {kind}"
        f" product of the notes; write {matmul} for the {kind} product, or {mul} for the"
        " product entry by entry",
        pos,
    )


def _too_many_gates(text: str | None, pos: tuple[int, int]) -> ParseError:
    return error_at(
        text,
        f"program larger than {MAX_GATES:,} gates (compiling takes up to about 64 KB of "
        "memory per gate): the limit is graphc.graph.MAX_GATES; set it (or the environment "
        "variable GRAPHC_MAX_GATES) higher to raise it",
        pos,
    )


def rebuild(graph: Graph, b: Builder, gate: Callable[..., str] | None = None) -> Graph:
    """``graph`` built again node by node into ``b`` (``gate(op, args, pos, attrs)``
    makes each gate, ``b.gate`` by default), its bound names carried over."""
    make = b.gate if gate is None else gate
    new: dict[str, str] = {}
    for node, data in graph.nodes.items():
        op = data["op"]
        if op == "input":
            new[node] = b.input(node, data["pos"])
        elif op == "const":
            new[node] = b.const(data["value"], data["label"], data["pos"])
        else:
            args = [new[a] for a in data["args"]]
            new[node] = make(op, args, data["pos"], data.get("attrs", ()))
        if data["name"]:
            b.bind(new[node], data["name"])
    return b.finish(new[graph.output], graph.inputs, graph.text)


def _uses_tensor_ops(program: Program) -> bool:
    stack: list[Any] = [st.expr for st in program.statements]
    while stack:
        expr = stack.pop()
        if isinstance(expr, Call):
            if OPS[expr.op].tensor:
                return True
            stack.extend(expr.args)
    return False


@gc_paused
def parse(text: str, shapes: Mapping[str, Any] | None = None) -> Graph:
    """Parse an expression or a program into a :class:`Graph`.

    ``shapes`` gives inputs' shapes as declarations would (``{"w": (3,)}``), making
    the program a tensor program.

    Raises:
        ParseError: for text graphc cannot read, with line, column and caret.
        ShapeError: for shapes that do not fit a gate.

    >>> g = parse("(x+y)z")
    >>> g.inputs
    ('x', 'y', 'z')
    >>> float(g.evaluate(x=-2, y=5, z=-4).value)
    -12.0
    """
    return build(parse_program(text), shapes_arg(shapes) or None)


def as_graph(value: Any, what: str = "graph") -> Graph:
    """A :class:`Graph`, or program text parsed into one; InputError for anything else."""
    if isinstance(value, Graph):
        return value
    if isinstance(value, str):
        return parse(value)
    raise InputError(f"{what} must be a graphc Graph or program text, got {got(value)}")


class Graph:
    """A computation graph: a networkx DAG of inputs, constants and gates, and its output.

    Attributes:
        nx: the ``networkx.MultiDiGraph`` itself (treat it as read-only).
        output: id of the output node.
        inputs: input names: declared ones in declaration order, then the others in
            order of first appearance.
        text: the program text it was parsed from, if any.
        declared: tensor programs: ``{input: (shape, dtype)}`` for the inputs whose
            shape was declared or given; ``None`` for a scalar program.
    """

    def __init__(
        self,
        g: nx.MultiDiGraph,
        output: str,
        inputs: tuple[str, ...],
        text: str | None = None,
        declared: Mapping[str, tuple[S.Shape, str]] | None = None,
    ) -> None:
        self._g = g
        self.output = output
        self.inputs = inputs
        self.text = text
        self.declared = declared

    @property
    def nx(self) -> nx.MultiDiGraph:
        """The ``networkx.MultiDiGraph`` itself (treat it as read-only)."""
        return link(self._g)

    @property
    def nodes(self) -> dict[str, dict[str, Any]]:
        """Node id -> node data, in topological order: ``nx.nodes`` without the edges
        (what graphc's own passes read; see :func:`link`)."""
        return self._g._node

    @property
    def tensor(self) -> bool:
        """Whether this is a tensor program (every node has a shape)."""
        return self.declared is not None

    def shape(self, key: str) -> S.Shape | None:
        """The shape of a node, input or bound name (``()``: a scalar; ``None``: not known
        until values give the shapes of undeclared inputs)."""
        data = self.nodes[self.node(key)]
        return data.get("shape", ())

    def wrt_node(self, name: str) -> str:
        """The node ∂f/∂name is taken at: the input ``name``, or the last binding of a
        name the program binds (its upstream gradient). Raises :class:`InputError` for
        labels and for names the program lacks (with a "did you mean")."""
        if not isinstance(name, str):
            raise InputError(f"expected an input's name (text), got {got(name)}")
        if name in self.labels:
            raise InputError(f"{name} holds integer labels: f has no derivative with respect to it")
        if name in self.inputs:
            return name
        bound = self.bound_node(name)
        if bound is not None:
            return bound
        raise InputError(
            f"cannot differentiate with respect to '{name}': it is not an input or a name "
            f"of the program (inputs: {', '.join(self.inputs)}){did_you_mean(name, self._names())}"
        )

    def bound_node(self, name: str) -> str | None:
        """The node of the last binding of ``name`` by the program, or None."""
        named = [n for n, d in self.nodes.items() if d["name"] == name]
        return named[-1] if named else None

    def _names(self) -> list[str]:
        """The inputs and the names the program binds (for "did you mean")."""
        return [*self.inputs, *(d["name"] for _, d in self.nodes.items() if d["name"])]

    def dims(self) -> tuple[str, ...]:
        """The dim symbols of the inputs' shapes, in order of first appearance."""
        nodes = self.nodes
        found = [d for n in self.inputs for d in nodes[n].get("shape") or () if isinstance(d, str)]
        return tuple(dict.fromkeys(found))

    def check_shape_names(self, names: Iterable[str], option: str = "shapes") -> None:
        """Raise :class:`InputError` for a name given a shape or a number that is neither
        an input nor a dim symbol (it would be ignored: a typo goes unseen)."""
        known = [*self.inputs, *self.dims()]
        for name in names:
            if name not in known:
                raise InputError(
                    f"{option} names '{name}', not an input or a dim symbol of the program"
                    f" (inputs: {', '.join(self.inputs)}; dims: {', '.join(self.dims()) or 'none'})"
                    f"{did_you_mean(name, known)}"
                )

    def unknown_shapes(self) -> tuple[str, ...]:
        """Inputs of a tensor program whose shapes are not known yet."""
        nodes = self.nodes
        return tuple(n for n in self.inputs if self.tensor and nodes[n].get("shape") is None)

    def resolved(self, shapes: Mapping[str, Any] | None = None) -> Graph:
        """This tensor program with every input's shape known: ``shapes`` where given,
        a scalar ``()`` for the other undeclared inputs (the way ``reg`` in
        ``0.5 * reg * sum(W^2)`` is meant). When scalars do not fit the program
        (``sum(W @ x)``), raises :class:`InputError` asking for the shapes."""
        given = shapes_arg(shapes)
        unknown = [n for n in self.unknown_shapes() if n not in given]
        if not given and not unknown:
            return self
        try:
            return self.with_shapes({**{n: () for n in unknown}, **given})
        except ShapeError:
            if not unknown:
                raise
            listed = ", ".join(unknown)
            raise InputError(
                f"the shape of {listed} is needed: declare it in the program"
                f" ({unknown[0]}: (3,), or {unknown[0]}: () for a scalar) or give"
                f" shapes={{{unknown[0]!r}: (3,)}}"
            ) from None

    @property
    def labels(self) -> tuple[str, ...]:
        """Inputs that hold integer labels (``y: (N,) int``): never differentiated."""
        nodes = self.nodes
        return tuple(n for n in self.inputs if nodes[n].get("dtype") == "int")

    @property
    def differentiable(self) -> tuple[str, ...]:
        """Inputs that gradients are taken for by default (all but integer labels)."""
        labels = set(self.labels)
        return tuple(n for n in self.inputs if n not in labels)

    def parameters(
        self, data: Iterable[str] | None = None, params: Iterable[str] | None = None
    ) -> list[tuple[str, S.Shape, int | None]]:
        """The learnable parameters: ``[(name, shape, size), ...]`` (size ``None`` while
        a dim is a symbol).

        Integer labels and inputs named like data (``x``, ``X``, ``y``, ``Y``, alone or
        followed by digits or ``_`` and a suffix: ``x0``, ``X_train``) are data; every
        other input is a parameter. ``data`` and ``params`` name inputs to move.

        >>> g = parse("x: (3,); W1: (4, 3); b1: (4,); W2: (2, 4); b2: (2,); f = W1 @ x")
        >>> [(n, s) for n, s, _ in g.parameters()], sum(k for *_, k in g.parameters())
        ([('W1', (4, 3)), ('b1', (4,)), ('W2', (2, 4)), ('b2', (2,))], 26)
        """
        import math
        import re

        data_set = set(names_arg(data, "data") or ())
        param_set = set(names_arg(params, "params") or ())
        for name in data_set | param_set:
            self.check_input(name)
        labels = set(self.labels)
        out = []
        for name in self.inputs:
            is_data = name in labels or re.fullmatch(r"[xXyY](\d+|_\w+)?", name) is not None
            if (is_data or name in data_set) and name not in param_set:
                continue
            shape = self.nodes[name].get("shape", ())
            shape = tuple(shape) if shape is not None else None
            known = shape is not None and all(isinstance(d, int) for d in shape)
            size = math.prod(shape) if known else None
            out.append((name, shape, size))
        return out

    def with_shapes(self, shapes: Mapping[str, Any]) -> Graph:
        """This tensor program with the given inputs' shapes (``{"x": (3,)}``); shapes
        are inferred again, so a mismatch raises :class:`ShapeError` at its gate."""
        declared = dict(self.declared or {})
        given = shapes_arg(shapes)
        for name in given:
            self.check_input(name)
        # The dims the given shapes bind (W: (D, C) given (4, 2): C = 2) hold in the
        # other declarations and in gates' attributes too (one_hot(y, C)); a shape that
        # does not fit its declaration replaces it, and the gates say where it fails.
        try:
            known = {k: declared[k][0] for k in given if k in declared}
            dims = S.bind({k: v for k, v in known.items() if v is not None}, given)
        except S.ShapeMismatch:
            dims = {}
        for name, shape in given.items():
            dtype = declared.get(name, ((), "float"))[1]
            declared[name] = (shape, dtype)
        if not dims:
            return rebuild(self, Builder(shapes=declared, text=self.text))
        declared = {k: (S.substitute(s, dims), d) for k, (s, d) in declared.items()}
        b = Builder(shapes=declared, text=self.text)
        return rebuild(
            self, b, lambda op, args, pos, attrs: b.gate(op, args, pos, S.bind_attrs(attrs, dims))
        )

    # -- structure ------------------------------------------------------------------
    def __len__(self) -> int:
        return len(self.nodes)

    def __repr__(self) -> str:
        gates = sum(1 for _, d in self.nodes.items() if d["op"] not in ("input", "const"))
        inputs = f"inputs {', '.join(self.inputs)}" if self.inputs else "no inputs"
        return f"<graphc.Graph {gates} gate{'' if gates == 1 else 's'}, {inputs}: {self.to_text()}>"

    @property
    def order(self) -> list[str]:
        """Node ids in a topological order (creation order, deterministic)."""
        return list(self.nodes)

    def args(self, node: str) -> tuple[str, ...]:
        """The argument node ids of ``node``, in order."""
        return self.nodes[node]["args"]

    def node(self, key: str) -> str:
        """The node id for ``key``: a node id, an input name or a bound name."""
        if not isinstance(key, str):
            raise InputError(f"expected a node's name (text), got {got(key)}")
        if key in self.nodes:
            return key
        bound = self.bound_node(key)
        if bound is not None:
            return bound
        raise InputError(f"no node called '{key}' in this graph{did_you_mean(key, self._names())}")

    @cached_property
    def names(self) -> Mapping[str, str]:
        """A readable, unique Python identifier for every node (see :mod:`graphc.naming`)."""
        from .naming import node_names

        return node_names(self)

    # -- meaning --------------------------------------------------------------------
    def to_sympy(self, node: str | None = None) -> sp.Expr:
        """The function computed at ``node`` (default: the output) as one SymPy expression.

        Built only when asked: on DAGs with fan-out, SymPy's closed forms can grow
        exponentially. Input symbols are real. A tensor program with numeric shapes
        expands entry by entry (symbols ``W[0,1]``, ``x[2]``) into a SymPy matrix (a
        column for a vector) or, for a scalar, an expression.
        """
        target = self.output if node is None else self.node(node)
        if self.tensor:
            from .autodiff import tensor_symbols, tensor_sympy

            value = tensor_sympy(self, [target], tensor_symbols(self))[0]
            if not isinstance(value, np.ndarray):
                return sp.sympify(value)
            if value.ndim <= 2:
                return sp.Matrix(value.tolist())
            return sp.Array(value.tolist())
        from .autodiff import to_sympy

        return to_sympy(self, [target])[0]

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
        """``{input: ∂f/∂input}`` as SymPy expressions (built on request); for a tensor
        program, as text in matrix notation (``hᵀ @ ((softmax(s) - onehot(y))/N)``).
        ``wrt`` may also name values the program binds: the upstream gradient there.

        >>> parse("(x+y)*z").gradients()
        {'x': z, 'y': z, 'z': x + y}
        >>> parse("q = x + y; f = q * z").gradients(["q"])
        {'q': z}
        """
        names = names_arg(wrt) or () if wrt is not None else self.differentiable
        nodes = {name: self.wrt_node(name) for name in names}
        if self.tensor:
            from .pretty import tensor_gradients

            return tensor_gradients(self, names)  # type: ignore[return-value]
        from .autodiff import to_sympy

        bw = self.backward
        held = [bw.grads[n] if nodes[n] == n else bw.upstream.get(nodes[n]) for n in names]
        exprs = iter(to_sympy(bw.graph, [h for h in held if h is not None]))
        return {
            n: next(exprs) if h is not None else sp.Integer(0)
            for n, h in zip(names, held, strict=True)
        }

    def derivative(self, name: str) -> Graph:
        """∂f/∂name as a new Graph of the same ops (call again for second derivatives).

        >>> d2 = parse("x^3").derivative("x").derivative("x")
        >>> float(d2.evaluate(x=2.0).value)
        12.0
        """
        self.check_input(name)
        from .autodiff import backward

        bw = backward(self, wrt=(name,))
        b = Builder(nxgraph=bw.graph._g, shapes=self.declared)
        grad = bw.grads[name]
        if self.tensor and b.shape(grad) != b.shape(name):  # 0 where f does not read it:
            grad = b.gate("expand", (grad, name))  # zeros of its shape, as evaluation gives
        return b.finish(grad, self.inputs, None)

    def vjp(self, name: str, cotangent: str) -> Graph:
        """∂/∂name of ``sum(f * cotangent)``, a new input of f's shape, as a Graph: a
        vector-Jacobian product. Of a gradient it is a Hessian-vector product:
        ``g.derivative("W").vjp("W", "v")`` is H·v.

        >>> hv = parse("x: (2,); f = sum(x^3)").derivative("x").vjp("x", "v")
        >>> [float(t) for t in hv.evaluate(x=[1.0, 2.0], v=[1.0, 1.0]).value]
        [6.0, 12.0]
        """
        self.check_input(name)
        if not (isinstance(cotangent, str) and cotangent.isidentifier()):
            raise InputError(f"the cotangent must be a new input's name, got {got(cotangent)}")
        if cotangent in self.inputs or cotangent in set(self.names.values()):
            raise InputError(f"'{cotangent}' is already a name of this graph; choose another")
        base = self if self.tensor else self.with_shapes({})
        out_shape = base.nodes[base.output]["shape"]
        declared = dict(base.declared or {})
        declared[cotangent] = (out_shape, "float")
        b = Builder(nxgraph=_copy(base._g), shapes=declared, text=None)
        v = b.input(cotangent)
        total = b.gate("sum", (b.gate("mul", (base.output, v)),))
        return b.finish(total, (*base.inputs, cotangent), None).derivative(name)

    def evaluate(self, /, **values: Any) -> Evaluation:
        """Values and gradients at a point; see :class:`graphc.evaluate.Evaluation`."""
        from .evaluate import evaluate

        return evaluate(self, values)

    def _input_set(self) -> frozenset[str]:
        """The inputs as a set (made again if ``inputs`` is rebound): a check per input
        against the tuple made a program of 8,000 inputs quadratic."""
        seen = self.__dict__.get("_inputs_as_set")
        if seen is None or seen[0] is not self.inputs:
            seen = self.__dict__["_inputs_as_set"] = (self.inputs, frozenset(self.inputs))
        return seen[1]

    def check_input(self, name: str) -> None:
        """Raise :class:`InputError` (with a "did you mean") unless ``name`` is an input."""
        if not isinstance(name, str):
            raise InputError(f"expected an input's name (text), got {got(name)}")
        if name not in self._input_set():
            listed = ", ".join(self.inputs) or "none"
            raise InputError(
                f"'{name}' is not an input of this graph (inputs: {listed})"
                f"{did_you_mean(name, self.inputs)}"
            )

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Jupyter shows a graph as its diagram."""
        from .render import mimebundle

        return mimebundle(self, None, include, exclude)
