"""Graph -> graph: the forward graph made ready for code generation.

:func:`prepare` rebuilds a graph gate by gate with a sharing
:class:`~graphc.graph.Builder`, so that

* each common subexpression is one node (hash-consing: ``exp(a) + exp(a)`` computes
  ``exp(a)`` once), constants are folded and the op table's ``simplify`` rules apply
  (no multiplication by 1);
* the rewrites of :data:`REWRITES` replace unstable compositions by stable ops
  *before* differentiation, so that values and gradients are both computed by stable
  forms: ``log(1 + exp(z))`` becomes ``softplus(z)``, ``1/(1 + exp(-z))`` becomes
  ``sigmoid(z)``, ``log(exp(a) + exp(b))`` becomes ``logaddexp(a, b)``, and
  ``log(1 - sigmoid(z))`` becomes ``-softplus(z)`` (through ``sigmoid(-z)``).

Each rewrite is data: a pattern and a replacement written as nested tuples
``(op, arg, ...)`` whose leaves are pattern variables (strings) or exact constants
(ints). Arguments of commutative ops match in either order. The walk is one loop over
the topological order; each gate tries each rewrite once, with a bounded number of
cascaded rewrites, so preparation is linear in the graph's size.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sympy as sp

from .graph import Builder, Graph, rebuild
from .ops import OPS

__all__ = ["REWRITES", "Rewrite", "prepare"]

Pattern = Any  # str (variable) | int (constant) | tuple (op, *patterns)


@dataclass(frozen=True)
class Rewrite:
    """``pattern`` is replaced by ``replacement``; ``why`` says what it buys."""

    name: str
    pattern: Pattern
    replacement: Pattern
    why: str


_EXP_NEG = ("exp", ("neg", "z"))

#: The stability rewrites, tried in order on every gate.
REWRITES: tuple[Rewrite, ...] = (
    Rewrite("log(sigmoid(z)) = -softplus(-z)", ("log", ("sigmoid", "z")),
            ("neg", ("softplus", ("neg", "z"))), "log of 0 for z < -745"),
    Rewrite("log(1 + exp(z)) = softplus(z)", ("log", ("add", 1, ("exp", "z"))),
            ("softplus", "z"), "exp overflows for z > 709"),
    Rewrite("log(exp(a) + exp(b)) = logaddexp(a, b)",
            ("log", ("add", ("exp", "a"), ("exp", "b"))), ("logaddexp", "a", "b"),
            "exp overflows or underflows to 0 for large |a|, |b|"),
    Rewrite("1/(1 + exp(-z)) = sigmoid(z)", ("div", 1, ("add", 1, _EXP_NEG)),
            ("sigmoid", "z"), "exp(-z) overflows for z < -709"),
    Rewrite("1/(1 + exp(z)) = sigmoid(-z)", ("div", 1, ("add", 1, ("exp", "z"))),
            ("sigmoid", ("neg", "z")), "exp(z) overflows for z > 709"),
    Rewrite("exp(z)/(1 + exp(z)) = sigmoid(z)", ("div", ("exp", "z"), ("add", 1, ("exp", "z"))),
            ("sigmoid", "z"), "inf/inf for z > 709"),
    Rewrite("exp(a)/(exp(a) + exp(b)) = sigmoid(a - b)",
            ("div", ("exp", "a"), ("add", ("exp", "a"), ("exp", "b"))),
            ("sigmoid", ("sub", "a", "b")), "inf/inf or 0/0 for large |a|, |b|"),
    Rewrite("1 - sigmoid(z) = sigmoid(-z)", ("sub", 1, ("sigmoid", "z")),
            ("sigmoid", ("neg", "z")),
            "1 - σ(z) rounds to 0 for z > 37: log(1 - σ(z)), the cross-entropy of label 0,"
            " was -inf and its gradient NaN"),
    Rewrite("log(exp(a)/b) = a - log(b)", ("log", ("div", ("exp", "a"), "b")),
            ("sub", "a", ("log", "b")),
            "exp(a) overflows for a > 709 (the lecture's softmax e^(s_y) / Σ e^(s_j))"),
    Rewrite("-(-z) = z", ("neg", ("neg", "z")), "z", "no work"),
)  # fmt: skip

#: The rewrites by the op at their pattern's root, each in :data:`REWRITES`' order: a
#: gate tries only those whose root is its op.
_BY_ROOT: dict[str, tuple[Rewrite, ...]] = {}
for _rw in REWRITES:
    _BY_ROOT[_rw.pattern[0]] = (*_BY_ROOT.get(_rw.pattern[0], ()), _rw)

_MAX_CASCADE = 8


class _Rebuilder:
    """A sharing builder that applies :data:`REWRITES` to every gate it makes."""

    def __init__(self, graph: Graph) -> None:
        self.b = Builder(share=True, shapes=graph.declared, text=graph.text)
        self.b.ieee = True  # the user's x*0 is nan at x = inf: keep it

    def _match(self, pattern: Pattern, node: str, env: dict[str, str]) -> bool:
        g = self.b.g
        if isinstance(pattern, str):
            if pattern in env:
                return env[pattern] == node
            env[pattern] = node
            return True
        data = g.nodes[node]
        if isinstance(pattern, int):
            return data["op"] == "const" and data["value"] == pattern
        op, *subs = pattern
        if data["op"] != op:
            return False
        args = data["args"]
        orders = [args]
        if OPS[op].commutative and len(args) == 2:
            orders.append(args[::-1])
        for order in orders:
            trial = dict(env)
            if all(self._match(p, a, trial) for p, a in zip(subs, order, strict=True)):
                env.clear()
                env.update(trial)
                return True
        return False

    def _build(self, pattern: Pattern, env: Mapping[str, str], depth: int) -> str:
        if isinstance(pattern, str):
            return env[pattern]
        if isinstance(pattern, int):
            return self.b.const(sp.Integer(pattern))
        op, *subs = pattern
        return self.gate(op, [self._build(p, env, depth) for p in subs], None, depth + 1)

    def gate(
        self, op: str, args: list[str], pos: Any, depth: int = 0, attrs: tuple[Any, ...] = ()
    ) -> str:
        """The gate ``op(*args)``, rewritten into a stable form where a rewrite applies."""
        node = self.b.gate(op, args, pos, attrs)
        made = self.b.g._node[node]["op"]  # (folding may have made another op)
        if depth >= _MAX_CASCADE or made in ("input", "const"):
            return node
        if op == "mean":
            fused = self._softmax_ce(node)
            if fused is not None:
                return fused
        if op == "sum":
            fused = self._sumsq(node)
            if fused is not None:
                return fused
        if made in ("log", "div") and self.b.shapes is not None:  # a tensor program
            fused = self._log_softmax(node, depth) if made == "log" else self._softmax(node)
            if fused is not None:
                return fused
        for rw in _BY_ROOT.get(made, ()):
            env: dict[str, str] = {}
            if self._match(rw.pattern, node, env):
                return self._build(rw.replacement, env, depth)
        return node

    def _sumsq(self, node: str) -> str | None:
        """``sum(x^2)`` over all entries as one gate, without the array ``x^2``."""
        nodes = self.b.g.nodes
        data = nodes[node]
        (sq,) = data["args"]
        if data.get("attrs") or nodes[sq]["op"] != "pow":
            return None
        x, two = nodes[sq]["args"]
        if nodes[two]["op"] != "const" or nodes[two]["value"] != 2 or not nodes[x]["shape"]:
            return None
        return self.b.gate("sumsq", (x,), data["pos"])

    def _softmax(self, node: str) -> str | None:
        """``exp(s) / sum(exp(s), axis=k, keepdims=True)`` as ``softmax(s, axis=k)``
        (a 1-d ``s`` may leave out ``axis`` and ``keepdims``): exp(s) overflows for
        scores past 709, and inf/inf is NaN; softmax subtracts the largest score."""
        nodes = self.b.g.nodes
        data = nodes[node]
        num, den = data["args"]
        if nodes[num]["op"] != "exp" or nodes[den]["op"] != "sum" or nodes[den]["args"] != (num,):
            return None
        (s,) = nodes[num]["args"]
        axis = _axis(nodes[den], s, nodes)
        keep = dict(nodes[den].get("attrs", ())).get("keepdims", False)
        ndim = len(nodes[s]["shape"] or ())
        if axis is None or not (keep or ndim == 1) or nodes[node]["shape"] != nodes[s]["shape"]:
            return None
        return self.b.gate("softmax", (s,), data["pos"], (("axis", axis),))

    def _log_softmax(self, node: str, depth: int) -> str | None:
        """``log(sum(exp(s), ...))`` as ``logsumexp(s, ...)``; ``log(softmax(s))`` as
        ``log_softmax(s)``; ``log(pick(softmax(s), y))`` (the softmax loss as the lecture
        writes it) as ``pick(log_softmax(s), y)``: a probability that rounds to 0 has
        log -inf, where the log-probability itself is finite."""
        nodes = self.b.g.nodes
        data = nodes[node]
        (arg,) = data["args"]
        inner = nodes[arg]
        if inner["op"] == "sum" and nodes[inner["args"][0]]["op"] == "exp":
            (s,) = nodes[inner["args"][0]]["args"]
            return self.b.gate("logsumexp", (s,), data["pos"], inner.get("attrs", ()))
        if inner["op"] == "softmax":
            return self.b.gate("log_softmax", inner["args"], data["pos"], inner.get("attrs", ()))
        if inner["op"] == "pick" and nodes[inner["args"][0]]["op"] == "softmax":
            probs = nodes[inner["args"][0]]
            (s,) = probs["args"]
            if _axis(probs, s, nodes, -1) != len(nodes[s]["shape"]) - 1:
                return None  # pick reads the last axis; this softmax normalises another
            logp = self.b.gate("log_softmax", (s,), data["pos"], probs.get("attrs", ()))
            return self.gate("pick", [logp, inner["args"][1]], data["pos"], depth + 1,
                             inner.get("attrs", ()))  # fmt: skip
        return None

    def _softmax_ce(self, node: str) -> str | None:
        """``mean(logsumexp(s, axis=1) - pick(s, y))`` of 2-d scores as one fused gate,
        whose gradient is the cs231n form ``(softmax(s) - one_hot(y)) / N``."""
        nodes = self.b.g.nodes
        data = nodes[node]
        if data.get("attrs"):
            return None
        (diff,) = data["args"]
        if nodes[diff]["op"] != "sub":
            return None
        lse, picked = nodes[diff]["args"]
        if nodes[lse]["op"] != "logsumexp" or nodes[picked]["op"] != "pick":
            return None
        (s,) = nodes[lse]["args"]
        s2, y = nodes[picked]["args"]
        axis = dict(nodes[lse].get("attrs", ())).get("axis")
        if s2 != s or nodes[picked].get("attrs") or len(nodes[s]["shape"]) != 2:
            return None
        if axis not in (1, -1) or dict(nodes[lse]["attrs"]).get("keepdims"):
            return None
        return self.b.gate("softmax_ce", (s, y), data["pos"])


def _axis(data: Mapping[str, Any], s: str, nodes: Mapping[str, Any], default: Any = None
          ) -> int | None:  # fmt: skip
    """The axis a reduction or softmax gate works along, from 0 (``-1`` of a 2-d ``s`` is
    1); a 1-d ``s`` reduced over all entries is its axis 0; None for several axes."""
    axis = dict(data.get("attrs", ())).get("axis", default)
    ndim = len(nodes[s]["shape"] or ())
    if axis is None:
        return 0 if ndim == 1 else None
    return axis % ndim if isinstance(axis, int) and ndim else None


def prepare(graph: Graph) -> Graph:
    """``graph`` hash-consed, constant-folded and rewritten into stable forms.

    Bound names carry over to the nodes that replace the named gates.

    >>> from graphc import parse
    >>> prepare(parse("f = log(1 + exp(z))")).to_text()
    'softplus(z)'
    >>> prepare(parse("dot = w*x + b; f = 1/(1 + exp(-dot))")).to_text()
    'sigmoid(w * x + b)'
    >>> prepare(parse("exp(a) * 1 + exp(a)")).to_text()
    'exp(a) + exp(a)'
    >>> len(prepare(parse("exp(a) + exp(a)")))   # a, exp(a), the sum
    3
    """
    rb = _Rebuilder(graph)
    return rebuild(graph, rb.b, lambda op, args, pos, attrs: rb.gate(op, args, pos, 0, attrs))
