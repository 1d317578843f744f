"""DAG + point -> values and gradients at every node.

One loop over the gradient graph's topological order, each node computed by its
op's NumPy lowering from :mod:`graphc.ops`. Inputs may be Python numbers or NumPy
arrays that broadcast together. For an array-valued output f, gradients are those
of ``sum(f)`` (as ``jax.grad`` of a sum, or PyTorch's ``backward(ones)``), and each
gradient is summed over broadcast axes to its node's shape.

Tensor programs: each input keeps its own shape (integer labels stay integers);
declared shapes are checked and their symbols bound (``N`` must be one number in
``X: (N, D)`` and ``y: (N,) int``); an undeclared input given an array takes that
array's shape (:meth:`~graphc.graph.Graph.with_shapes`). Every upstream gradient has its
node's shape.

A gate that leaves its domain at the point (log of a negative, division by zero,
overflow) gives NaN or inf and a :class:`~graphc.errors.DomainWarning` naming the gate
and its position in the text; evaluation never stops for it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from . import shapes as S  # noqa: N812  (S.broadcast, S.fmt read as math)
from .autodiff import Backward
from .errors import DomainWarning, InputError, MemoryInputError, ShapeError, warn
from .graph import Graph, gc_paused
from .ops import OPS, numpy_callable

__all__ = ["Evaluation", "NodeEval", "evaluate", "sum_to_shape"]


@dataclass(frozen=True)
class NodeEval:
    """One node at the point.

    Attributes:
        node: the node id.
        value: its forward value.
        upstream: ∂f/∂node (``None`` when no input's gradient flows through it).
        local: per argument, ∂node/∂argument (``None`` for arguments that need none).
        contributions: ``((consumer, i), value)`` for each branch into this node;
            they add up to ``upstream``.
    """

    node: str
    value: Any
    upstream: Any
    local: tuple[Any, ...]
    contributions: tuple[tuple[tuple[str, int], Any], ...]


@dataclass(frozen=True)
class Evaluation:
    """A graph evaluated at a point.

    Attributes:
        graph: the graph.
        point: the input values used (as arrays).
        value: f at the point.
        grads: ``{input: ∂f/∂input}``, each of its input's shape.
        nodes: ``{node id: NodeEval}`` for every node of the graph.
    """

    graph: Graph
    point: Mapping[str, Any]
    value: Any
    grads: Mapping[str, Any]
    nodes: Mapping[str, NodeEval]

    def __getitem__(self, key: str) -> NodeEval:
        """The :class:`NodeEval` of a node id, input name or bound name."""
        return self.nodes[self.graph.node(key)]

    def gradient(self, name: str) -> Any:
        """∂f/∂name: an input's gradient, or for a name the program binds the upstream
        gradient at it (zeros of its shape where none flows).

        >>> from graphc import parse
        >>> ev = parse("q = x + y; f = q * z").evaluate(x=-2, y=5, z=-4)
        >>> float(ev.gradient("q")), float(ev.gradient("z"))
        (-4.0, 3.0)
        """
        node = self.graph.wrt_node(name)
        if node in self.graph.inputs:
            return self.grads[node]
        up = self.nodes[node].upstream
        return np.zeros(np.shape(self.nodes[node].value)) if up is None else up

    def __repr__(self) -> str:
        grads = ", ".join(f"{k}={_short(v)}" for k, v in self.grads.items())
        return f"<graphc.Evaluation value={_short(self.value)} grads: {grads}>"

    def _repr_mimebundle_(self, include: Any = None, exclude: Any = None) -> dict[str, Any]:
        """Jupyter shows an evaluation as the annotated diagram."""
        from .render import mimebundle

        return mimebundle(self.graph, self, include, exclude)


def _short(v: Any) -> str:
    a = np.asarray(v)
    return f"{float(a):.6g}" if a.ndim == 0 else f"array{a.shape}"


def _as_value(name: str, v: Any) -> Any:
    try:
        a = np.asarray(float(v) if type(v) is int else v)  # (2**70: past int64, a float)
    except Exception as e:
        raise InputError(
            f"input '{name}': cannot use {type(v).__name__} as a number ({e})"
        ) from None
    if isinstance(v, np.ma.MaskedArray):
        raise InputError(
            f"input '{name}': masked arrays are not supported (the mask would be ignored):"
            " pass a.filled(value)"
        )
    if a.dtype.kind in "biu":
        a = a.astype(np.float64)
    elif a.dtype.kind != "f":
        raise InputError(f"input '{name}': expected real numbers, got dtype {a.dtype}")
    return a


def _check_names(graph: Graph, values: Mapping[str, Any]) -> None:
    """Every value names an input, and every input has a value."""
    for k in values:
        graph.check_input(k)
    missing = [k for k in graph.inputs if k not in values]
    if missing:
        raise InputError(
            f"missing value for input{'s' if len(missing) > 1 else ''} {', '.join(missing)}"
        )


def check_point(graph: Graph, values: Mapping[str, Any]) -> dict[str, Any]:
    """Validate ``values`` against the graph's inputs; return them as float arrays."""
    _check_names(graph, values)
    point = {k: _as_value(k, values[k]) for k in graph.inputs}
    try:
        np.broadcast_shapes(*(np.shape(v) for v in point.values()))
    except ValueError:
        shapes = ", ".join(f"{k}{np.shape(v)}" for k, v in point.items())
        raise InputError(f"input shapes do not broadcast together: {shapes}") from None
    return point


def sum_to_shape(g: Any, full: tuple[int, ...], shape: tuple[int, ...]) -> Any:
    """Broadcast ``g`` to ``full`` and sum it down to ``shape`` (NumPy/JAX broadcasting)."""
    g = np.broadcast_to(g, full)
    lead = len(full) - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    if axes:
        g = g.sum(axis=axes, keepdims=True)
    return np.array(g) if g.ndim else g[()]


_RAISE = {"divide": "raise", "invalid": "raise", "over": "raise", "under": "ignore"}


def tensor_point(
    graph: Graph, values: Mapping[str, Any]
) -> tuple[Graph, dict[str, Any], dict[str, int]]:
    """Validate ``values`` for a tensor program: the graph specialised to the shapes of
    undeclared inputs, the values as arrays, and the dims the declarations' symbols take."""
    _check_names(graph, values)
    labels = set(graph.labels)
    point: dict[str, Any] = {}
    for k in graph.inputs:
        if k in labels:
            a = np.asarray(values[k])
            if a.dtype.kind not in "iub":
                raise InputError(f"input '{k}' holds integer labels; got dtype {a.dtype}")
            point[k] = a.astype(np.intp, copy=False)
        else:
            point[k] = _as_value(k, values[k])
    declared = graph.declared or {}
    shapes = {k: tuple(np.shape(v)) for k, v in point.items()}
    try:
        dims = S.bind({k: declared[k][0] for k in declared}, shapes)
    except S.ShapeMismatch as e:
        raise ShapeError(str(e)) from None
    nodes = graph.nodes
    undeclared = {k: shapes[k] for k in graph.inputs if nodes[k].get("shape") != shapes[k]}
    undeclared = {k: v for k, v in undeclared.items() if k not in declared}
    if undeclared:
        graph = graph.with_shapes(undeclared)
    return graph, point, dims


def _compute(graph: Graph, node: str, data: Mapping[str, Any], args: list[Any],
             attrs: Mapping[str, Any] | None = None) -> Any:  # fmt: skip
    """Apply the node's op; called with floating-point errors raising (underflow ignored).

    Gates of constants only get Python floats: they compute in float64 through NumPy
    (so 0^-1 is inf, not ZeroDivisionError) and stay Python floats, which do not
    promote float32 arrays they meet later.
    """
    fn = numpy_callable(data["op"])
    scalar = all(type(a) is float for a in args)
    if scalar:
        args = [np.float64(a) for a in args]
    kw = attrs or {}
    try:
        out = fn(*args, **kw)
    except FloatingPointError as e:
        with np.errstate(all="ignore"):
            out = fn(*args, **kw)
        warn(DomainWarning(f"{_where(graph, node, data)}: {e}"))
    except ValueError as e:  # a value the gate cannot take (a label that is no class)
        raise InputError(f"{_where(graph, node, data)}: {e}") from None
    except MemoryError as e:  # inputs that broadcast to a huge shape
        raise MemoryInputError(f"{_where(graph, node, data)}: {e}") from None
    return float(out) if scalar else out


def _where(graph: Graph, node: str, data: Mapping[str, Any]) -> str:
    origin = data.get("origin") or data.get("grad_of")
    pos = data["pos"]
    what = f"{OPS[data['op']].function or data['op']} gate"
    if data["name"]:
        what += f" '{data['name']}'"
    if pos:
        what += f" at line {pos[0]}, column {pos[1]}"
    elif origin:
        what = f"gradient gate {what} (for node {origin})"
    return what


@gc_paused
def evaluate(
    graph: Graph, values: Mapping[str, Any], backward: Backward | None = None
) -> Evaluation:
    """Evaluate ``graph`` and its gradients at ``values``.

    >>> from graphc import parse
    >>> ev = parse("q = x + y; f = q * z").evaluate(x=-2, y=5, z=-4)
    >>> float(ev.value), {k: float(v) for k, v in ev.grads.items()}
    (-12.0, {'x': -4.0, 'y': -4.0, 'z': 3.0})
    >>> float(ev["q"].upstream)
    -4.0
    """
    if graph.tensor:  # shapes checked, symbols bound, undeclared shapes from the values
        specialised, point, dims = tensor_point(graph, values)
        if specialised is not graph:
            graph, backward = specialised, None
    else:
        point, dims = check_point(graph, values), {}
    bw = graph.backward if backward is None else backward
    g = bw.graph.nx
    vals: dict[str, Any] = {}
    with np.errstate(**_RAISE):
        for node, data in g.nodes(data=True):
            op = data["op"]
            if op == "input":
                vals[node] = point[node]
            elif op == "const":
                vals[node] = float(data["value"])
            else:
                args = [vals[a] for a in data["args"]]
                attrs = dict(S.bind_attrs(data["attrs"], dims)) if "attrs" in data else None
                vals[node] = _compute(bw.graph, node, data, args, attrs)
    full = np.shape(vals[graph.output])

    def fit(v: Any, shape: tuple[int, ...]) -> Any:
        """A gradient in ``shape``: scalar programs' upstream gradients have the output's
        shape and are summed down; tensor programs' may be left broadcast."""
        if graph.tensor:
            return v if np.shape(v) == shape else np.broadcast_to(v, shape)
        return sum_to_shape(v, full, shape)

    def at(node: str, like: str) -> Any:
        return fit(vals[node], np.shape(vals[like]))

    nodes: dict[str, NodeEval] = {}
    for node, data in graph.nodes.items():
        args = data["args"]
        nodes[node] = NodeEval(
            node,
            _plain(vals[node]),
            at(bw.upstream[node], node) if node in bw.upstream else None,
            tuple(
                _plain(vals[bw.local[(node, i)]]) if (node, i) in bw.local else None
                for i in range(len(args))
            ),
            tuple((edge, at(c, node)) for edge, c in bw.branches(node)),
        )
    grads = {}
    for name in bw.wrt:
        like = point[name]
        grads[name] = _plain(np.array(fit(vals[bw.grads[name]], like.shape), dtype=like.dtype))
    return Evaluation(graph, point, _plain(vals[graph.output]), grads, nodes)


def _plain(v: Any) -> Any:
    """0-d arrays as NumPy scalars, arrays as they are."""
    return v[()] if isinstance(v, np.ndarray) and v.ndim == 0 else v
