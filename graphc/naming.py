"""Names for nodes: one helper gives every layer the same readable identifiers.

Inputs keep their names; a gate the program bound keeps its bound name (a rebound
name gets ``_2``, ``_3``, ... in order of binding); a gradient node of a named node v
is ``d<v>``; an unnamed output is ``f``; other gates are ``<op>_<k>``. Names that
would clash with Python keywords or with the names generated code uses (``np``,
``math``, ``inf``, and every name starting with ``_``) get a trailing underscore in
place of leading ones (``_x`` is ``x_``; ``_000`` is ``v000_``: an identifier cannot
start with a digit).
"""

from __future__ import annotations

import keyword
from typing import TYPE_CHECKING, Any

from .ops import OPS

if TYPE_CHECKING:
    from .graph import Graph

__all__ = ["RESERVED", "identifier", "node_names", "size_text", "to_text", "to_texts"]

#: Identifiers generated code needs for itself.
RESERVED = frozenset(
    {"np", "math", "value_and_grad", "forward", "grad", "_unbroadcast", "inf", "nan"}
)


def identifier(name: str) -> str:
    """``name`` as generated code writes it (see the module docstring)."""
    if keyword.iskeyword(name) or name in RESERVED or name.startswith("_"):
        rest = name.lstrip("_")
        return ("v" + rest if not rest or rest[0].isdigit() else rest) + "_"
    return name


def node_names(graph: Graph) -> dict[str, str]:
    """``{node id: unique identifier}`` for every node, deterministic."""
    used: set[str] = set()
    names: dict[str, str] = {}
    start: dict[tuple[str, bool], int] = {}  # numbers below are taken: linear, not quadratic
    spelled: dict[str, str] = {}  # identifier() of each base met (most are op names)

    def claim(base: str, numbered: bool) -> str:
        base = spelled.get(base) or spelled.setdefault(base, identifier(base))
        if not numbered and base not in used:
            used.add(base)
            return base
        key = (base, numbered)
        k = start.get(key, 1 if numbered else 2)
        name = f"{base}_{k}"
        while name in used:
            k += 1
            name = f"{base}_{k}"
        used.add(name)
        start[key] = k + 1
        return name

    for name in graph.inputs:
        names[name] = claim(name, False)
    for node, data in graph.nodes.items():
        if node in names:
            continue
        op = data["op"]
        if op == "input":
            names[node] = claim(node, False)
        elif data["name"]:
            names[node] = claim(data["name"], False)
        elif node == graph.output and op != "const":
            names[node] = claim("f", False)
        else:
            names[node] = claim("c" if op == "const" else op, True)
    return names


_MAX_TEXT = 2000


def size_text(g: Any, data: Any) -> str:
    """A size gate as the dim it reads: ``N`` for ``size(X, axis=0)`` where X is
    ``(N, D)``, or the number where the shape is known (text that reads back)."""
    (of,) = data["args"]
    axis = dict(data.get("attrs", ()))["axis"]
    return str(g.nodes[of]["shape"][axis])


def to_text(graph: Graph, node: str) -> str:
    """``node`` as one inlined expression of graphc's language (long parts elided)."""
    return _texts(graph, node)[node][0]


def to_texts(graph: Graph) -> dict[str, str]:
    """Every node as :func:`to_text` writes it, in one walk of the graph (a walk per
    node was quadratic: a diagram of 1,300 unnamed gates took seconds)."""
    return {v: t for v, (t, _) in _texts(graph, None).items()}


def _texts(graph: Graph, until: str | None) -> dict[str, tuple[str, int]]:
    """Node -> (text, precedence; 9 = an atom), in graph order up to ``until``."""
    g = graph
    text: dict[str, tuple[str, int]] = {}  # node -> (text, precedence; 9 = atom)
    for v in graph.order:
        data = g.nodes[v]
        op = data["op"]
        if op == "input":
            text[v] = (v, 9)
        elif op == "const":
            label = data["label"]
            text[v] = (label, 3 if label.startswith("-") else 2 if "/" in label else 9)
        elif op == "size":
            text[v] = (size_text(g, data), 9)
        else:
            row = OPS[op]
            parts = [text[a] for a in data["args"]]
            if row.infix:
                shown = []
                for i, (t, p) in enumerate(parts):
                    right_assoc = row.name == "pow"
                    tight = p < row.infix or (p == row.infix and (i == 1) != right_assoc)
                    shown.append(f"({t})" if tight else t)
                s = row.numpy.format(*shown).replace(" ** ", "^")
                text[v] = (s, row.infix)
            elif row.name == "transpose":
                t, p = parts[0]
                text[v] = (f"{t if p == 9 else f'({t})'}.T", 9)
            else:
                from .ops import _attr_text

                name = row.called() or row.name
                given = dict(data.get("attrs", ()))
                kw = "".join(f", {k}={_attr_text(x)}" for k, x in given.items())
                text[v] = (f"{name}({', '.join(t for t, _ in parts)}{kw})", 9)
            if len(text[v][0]) > _MAX_TEXT:
                text[v] = ("…", 9)
        if v == until:
            break
    return text
