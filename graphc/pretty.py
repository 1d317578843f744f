"""SymPy expression -> short text as a teacher writes it: ``x·σ(b + w·x)·(1 - σ(b + w·x))``.

Products use ``·``, small integer powers superscripts (``x²``), the op table's display
symbols name the functions graphc keeps whole (``σ`` for sigmoid), and factors are
ordered simple first: numbers, names, powers, function calls, then sums. The output is
deterministic (SymPy's canonical order inside sums).

>>> import sympy as sp
>>> from graphc.ops import sigmoid
>>> x, w, b = sp.symbols("x w b", real=True)
>>> s = sigmoid(w * x + b)
>>> pretty(x * (1 - s) * s)
'x·σ(b + w·x)·(1 - σ(b + w·x))'
>>> pretty(1 - sp.tanh(x) ** 2), pretty(sp.exp(-x) / (1 + sp.exp(-x)) ** 2)
('1 - tanh(x)²', 'exp(-x)/(1 + exp(-x))²')
"""

from __future__ import annotations

import math
from typing import Any

import sympy as sp
from sympy.printing.precedence import PRECEDENCE, precedence
from sympy.printing.str import StrPrinter

from . import shapes as S  # noqa: N812
from .naming import size_text

__all__ = ["RENAMED", "pretty", "tensor_gradients", "vjp_text"]

_SUPERSCRIPT = str.maketrans("0123456789-", "⁰¹²³⁴⁵⁶⁷⁸⁹⁻")
#: Function names printed differently from their SymPy name (σ comes from the op table).
RENAMED = {"Abs": "abs", "Max": "max", "Min": "min", "Heaviside": "heaviside"}


def _display_names() -> dict[str, str]:
    from .ops import OPS

    names = dict(RENAMED)
    names["sigmoid"] = OPS["sigmoid"].symbol
    return names


def _rank(factor: sp.Expr) -> tuple[int, int]:
    """Sort key of a product's factors: numbers, names, powers, calls, sums."""
    base = factor.base if factor.is_Pow else factor
    if factor.is_Number:
        kind = 0
    elif base.is_Symbol:
        kind = 1 if not factor.is_Pow else 2
    elif base.is_Function:
        kind = 3
    else:
        kind = 4
    return (kind, sp.count_ops(factor))


class _Printer(StrPrinter):
    def __init__(self) -> None:
        super().__init__({"order": None})
        self._names = _display_names()

    def _print_Function(self, expr: Any) -> str:
        name = self._names.get(type(expr).__name__, type(expr).__name__)
        return f"{name}({', '.join(self._print(a) for a in expr.args)})"

    def _print_Abs(self, expr: Any) -> str:
        return self._print_Function(expr)

    def _print_Max(self, expr: Any) -> str:
        return self._print_Function(expr)

    def _print_Min(self, expr: Any) -> str:
        return self._print_Function(expr)

    def _print_Heaviside(self, expr: Any) -> str:
        return f"heaviside({', '.join(self._print(a) for a in expr.args)})"

    def _print_Exp1(self, expr: Any) -> str:
        return "e"

    def _print_Pow(self, expr: Any, rational: bool = False) -> str:
        base, e = expr.args
        if e == sp.Rational(1, 2):
            return f"sqrt({self._print(base)})"
        if e.is_Number and e.is_negative:
            return f"1/{self._wrap(base ** (-e), PRECEDENCE['Mul'] + 1)}"
        shown = self._wrap(base, PRECEDENCE["Pow"] + 1)
        if e.is_Integer and 1 < e < 10:
            return shown + str(e).translate(_SUPERSCRIPT)
        return f"{shown}^{self._wrap(e, PRECEDENCE['Pow'] + 1)}"

    def _wrap(self, expr: Any, level: int) -> str:
        text = self._print(expr)
        if precedence(expr) < level or (expr.is_Number and expr.is_negative):
            return f"({text})"
        if expr.is_Rational and not expr.is_Integer:
            return f"({text})"
        return text

    def _print_Mul(self, expr: Any) -> str:
        coeff, factors = expr.as_coeff_mul()
        sign = ""
        if coeff.is_negative:
            sign, coeff = "-", -coeff
        num: list[Any] = []
        den: list[Any] = []
        for f in factors:
            if f.is_Pow and f.exp.is_Number and f.exp.is_negative:
                den.append(f.base ** (-f.exp))
            else:
                num.append(f)
        if coeff.is_Rational and not coeff.is_Integer:
            if coeff.p != 1:
                num.append(sp.Integer(coeff.p))
            den.append(sp.Integer(coeff.q))
        elif coeff != 1:
            num.append(coeff)
        level = PRECEDENCE["Mul"]
        top = "·".join(self._wrap(f, level) for f in sorted(num, key=_rank)) or "1"
        if not den:
            return sign + top
        bottom = "·".join(self._wrap(f, level) for f in sorted(den, key=_rank))
        if len(den) > 1:
            bottom = f"({bottom})"
        if len(num) > 1:
            top = f"({top})"
        return f"{sign}{top}/{bottom}"

    def _print_Add(self, expr: Any, order: Any = None) -> str:
        terms = list(expr.as_ordered_terms())
        out = self._print(terms[0])
        for t in terms[1:]:
            text = self._print(t)
            if text.startswith("-"):
                out += f" - {text[1:]}"
            else:
                out += f" + {text}"
        return out

    def _print_Rational(self, expr: Any) -> str:
        return f"{expr.p}/{expr.q}"

    def _print_Float(self, expr: Any) -> str:
        return f"{float(expr):.6g}"


def pretty(expr: Any) -> str:
    """Short readable text of a SymPy expression (``·`` for products, ``σ`` for sigmoid)."""
    return _Printer().doprint(expr if isinstance(expr, sp.Basic) else sp.Float(expr))


# --- Tensor programs: gradients in matrix notation --------------------------------

_MAX_TENSOR_TEXT = 2000


def _count(g: Any, data: Any) -> str:
    """The number of entries a mean's gradient is divided by (an expand gate's), as
    text of its dims: ``N``, ``(N * D)``, or a number."""
    attrs = dict(data.get("attrs", ()))
    shape = g.nodes[data["args"][1]]["shape"]
    axis = attrs.get("axis")
    axes = range(len(shape)) if axis is None else S.norm_axes(axis, len(shape))
    dims = [shape[a] for a in axes]
    if all(isinstance(d, int) for d in dims):
        return str(math.prod(dims))
    return str(dims[0]) if len(dims) == 1 else f"({' * '.join(map(str, dims))})"


def _tensor_text(
    row: Any, node_args: list[tuple[str, int]], attrs: dict[str, Any], count: str = "count"
) -> tuple[str, int]:
    """One gate as (text, precedence) in matrix notation; 9 is an atom. ``count``: a
    mean's number of entries (:func:`_count`)."""
    from .ops import _attr_text

    def wrap(k: int, prec: int) -> str:
        t, p = node_args[k]
        return t if p >= prec else f"({t})"

    name = row.name
    if name == "transpose":
        return wrap(0, 9) + "ᵀ", 9
    if name == "expand":
        kept = {k: v for k, v in attrs.items() if k in ("axis",) and v is not None}
        t = node_args[0][0]
        if attrs.get("mean"):
            return f"{wrap(0, 2)} / {count}", 2
        return (f"expand({t}, axis={_attr_text(kept['axis'])})", 9) if kept else node_args[0]
    if name == "softmax_ce_grad":
        s, y, g = (t for t, _ in node_args)
        core = f"(softmax({s}) - onehot({y}))/N"
        return (core, 2) if g in ("1", "1.0") else (f"{core} * {wrap(2, 2)}", 2)
    if name == "heaviside":
        return f"[{node_args[0][0]} > 0]", 9
    if name == "above":
        return f"[{node_args[0][0]} > {node_args[1][0]}]", 9
    if name == "outer":
        return f"{wrap(0, 9)} {wrap(1, 9)}ᵀ", 2
    if name == "unpick":
        return f"unpick({node_args[0][0]}, {node_args[2][0]})", 9
    if name == "mul" and "1" in (node_args[0][0], node_args[1][0]):  # ones times a
        return node_args[1] if node_args[0][0] == "1" else node_args[0]
    if name == "mul" and "0" in (node_args[0][0], node_args[1][0]):  # zeros (sign's slope)
        return "0", 9
    if row.infix:
        texts = [wrap(0, row.infix + (1 if name == "pow" else 0))]
        texts.append(wrap(1, row.infix + (0 if name == "pow" else 1)) if len(node_args) > 1 else "")
        if name == "neg":
            return "-" + wrap(0, 3), 3
        return row.numpy.format(*texts).replace(" ** ", "^"), row.infix
    kw = "".join(f", {k}={_attr_text(v)}" for k, v in attrs.items() if dict(row.attrs).get(k) != v)
    fname = row.called() or name
    return f"{fname}({', '.join(t for t, _ in node_args)}{kw})", 9


def tensor_gradients(graph: Any, wrt: Any = None) -> dict[str, str]:
    """``{input: ∂f/∂input}`` of a tensor program in matrix notation, as text; for a
    name the program binds, the upstream gradient at its last binding.

    Forward values the program named appear by their names (``h``, ``s``); the rest
    is inlined. Too long a formula reads "too large to print; use the gradient graph".

    >>> from graphc import parse
    >>> tensor_gradients(parse("w: (D,); x: (D,); e = (y - w @ x)^2"), ["w"])
    {'w': '-(2 * (y - w @ x)) * x'}
    >>> tensor_gradients(parse("W: (K, D); x: (D,); s = W @ x; L = sum(s^2)"), ["W"])
    {'W': '(2 * s) xᵀ'}
    >>> tensor_gradients(parse("w: (D,); x: (D,); h = w @ x; e = (y - h)^2"), ["h"])
    {'h': '-(2 * (y - h))'}
    """
    from .autodiff import backward
    from .rewrite import prepare

    graph = graph.resolved()
    wrt = tuple(graph.differentiable if wrt is None else wrt)
    bound = any(n not in graph.inputs for n in wrt)

    def texts(g: Any, names: list[str]) -> dict[str, str]:
        bw = backward(g, tuple(graph.differentiable) if bound else wrt)
        text = tensor_texts(bw)
        at = {n: bw.grads[n] if n in g.inputs else bw.upstream.get(g.bound_node(n))
              for n in names}  # fmt: skip
        return {n: "0" if at[n] is None else text[at[n]] for n in names}

    prepared = prepare(graph)
    out = texts(prepared, [n for n in wrt if n in graph.inputs or prepared.bound_node(n)])
    lost = [n for n in wrt if n not in out]  # a rewrite took the name's gate
    if lost:  # (-log(sigmoid(h1)) is one stable gate): the program as written
        out |= texts(graph, lost)
    return {n: out[n] for n in wrt}


def tensor_texts(bw: Any) -> dict[str, str]:
    """Every node of a tensor program's gradient graph in matrix notation, as text:
    forward values the program named by their names, the rest inlined (the gradients
    of :func:`tensor_gradients`, and a diagram's formulas with ``symbolic=True``)."""
    from .ops import OPS

    g = bw.graph.nx
    text: dict[str, tuple[str, int]] = {}
    for v in bw.graph.order:
        data = g.nodes[v]
        op = data["op"]
        if op == "input":
            text[v] = (v, 9)
        elif op == "const":
            label = data["label"]
            text[v] = (label, 3 if label.startswith("-") else 9)
        elif data["role"] == "forward" and data["name"] and v != bw.graph.output:
            text[v] = (data["name"], 9)
        elif op == "size":
            text[v] = (size_text(g, data), 9)
        else:
            row = OPS[op]
            args = [text[a] for a in data["args"]]
            count = _count(g, data) if op == "expand" else "count"
            text[v] = _tensor_text(row, args, row.attr_dict(data.get("attrs", ())), count)
            if len(text[v][0]) > _MAX_TENSOR_TEXT:
                text[v] = ("(too large to print; use the gradient graph)", 9)
    return {v: t for v, (t, _) in text.items()}


def vjp_text(bw: Any, gate: str, i: int, names: Any) -> str | None:
    """The contribution of tensor ``gate`` to ∂f/∂(argument i) as its VJP rule, in the
    diagram's names (``dout`` is an unnamed gate's upstream): ``dout xᵀ`` for W in
    ``W @ x``, ``Wᵀ @ dout`` for x."""
    from .ops import OPS

    node = bw.contributions.get((gate, i))
    if node is None:
        return None
    g = bw.graph.nx
    up = bw.upstream[gate]
    named = g.nodes[gate]["name"]
    stop = {up: (f"d{names[gate]}" if named else "dout", 9)}  # dout: the gate's upstream
    need: list[str] = []
    seen: set[str] = set()
    stack = [node]
    while stack:  # the contribution's own gates, back to forward values and the upstream
        n = stack.pop()
        if n in seen or n in stop:
            continue
        seen.add(n)
        if g.nodes[n]["role"] == "backward" and g.nodes[n]["op"] not in ("input", "const"):
            need.append(n)
            stack.extend(g.nodes[n]["args"])
    text: dict[str, tuple[str, int]] = dict(stop)
    for v in bw.graph.order:
        if v in text or (v not in seen):
            continue
        data = g.nodes[v]
        if v not in need:
            label = data["label"] if data["op"] == "const" else names.get(v, v)
            label = size_text(g, data) if data["op"] == "size" else label
            text[v] = (label, 9)
            continue
        row = OPS[data["op"]]
        args = [text[a] if a in text else (names.get(a, a), 9) for a in data["args"]]
        count = _count(g, data) if data["op"] == "expand" else "count"
        text[v] = _tensor_text(row, args, row.attr_dict(data.get("attrs", ())), count)
    return text[node][0] if node in text else None
