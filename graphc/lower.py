"""Gradient graph -> lines of Python: one assignment per gate, cs231n style.

:func:`lower` walks a :class:`~graphc.autodiff.Backward` and returns the body of
``forward`` or ``value_and_grad`` as text. Forward gates come in topological order,
backward gates in the order reverse mode made them (reverse topological), each a
line ``name = expression  # comment``. Backward lines read as the notes write them:
``dq = z`` (the upstream gradient of a named node), ``dden = dinvden * dinvden_dden``
(upstream × local), and at a fork ``dx = dx_1 + dx_2`` then ``dx += dx_3``.

Only the nodes that the returned values need are lowered (no gradient of an input
that was not asked for; dead code is never written).

NumPy target, in place: every input has been broadcast to one shape and dtype
before the body runs (see :mod:`graphc.codegen`), so every temporary the body makes
is a fresh array of that shape and dtype. A temporary that no later line uses lends
its memory to the gate that consumes it (``f = np.multiply(q, z, out=q)``,
``dx += dx_3``), and a temporary that died earlier lends its memory to the next gate
that would allocate (``sub_1 = np.subtract(1.0, f, out=mul_2)``). That saves the
allocation, the page faults of a new array and, with fewer arrays alive, memory.
"""

from __future__ import annotations

import bisect
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import numpy as np

from .autodiff import Backward
from .graph import ancestors
from .ops import HELPERS, OPS

__all__ = ["Line", "lower", "target_text", "value_roots", "write_into_out"]

_NONE: Mapping[int, str] = {}  # no substituted arguments
#: A pass that replaces runs of lines by fused loops (see graphc.ctarget.fuse).
Fuse = Callable[[list[Any], list[str]], list[Any]]

#: Python operators of the lowering templates and the NumPy ufunc each one calls.
_UFUNC = {"+": "np.add", "-": "np.subtract", "*": "np.multiply", "/": "np.divide", "**": "np.power"}


@dataclass(slots=True)
class Line:
    """One line of a function body, before in-place memory reuse is decided."""

    var: str
    node: str | None
    op: str | None = None
    args: tuple[str, ...] = ()  # argument texts
    arg_nodes: tuple[str | None, ...] = ()
    comment: str = ""
    uses: list[str] = field(default_factory=list)
    out: int | None = None  # argument whose memory the result reuses
    into: str | None = None  # else a dead temporary whose memory the result reuses
    attrs: tuple[tuple[str, Any], ...] = ()
    out_array: str | None = None  # a variable holding the caller's out= array for the result

    def text(self, target: str) -> str:
        if self.op is None:  # an alias: a second name for a value
            code = f"{self.var} = {target_text(self.args[0], target)}"
        else:
            args = []
            for a in self.args:
                if a in _NONFINITE:
                    a = target_text(a, target)
                args.append(f"({a})" if a[:1] == "-" else a)
            if target == "numpy" and self.arg_nodes and not any(self.arg_nodes):
                # a gate of constants that folding kept (-0.0): NumPy's arithmetic, as
                # evaluation's, not Python's (1.0 / -0.0 is -inf, not ZeroDivisionError)
                args[0] = f"np.float64({args[0]})"
            dest = self.into if self.out is None else args[self.out]
            if self.out_array is not None and target == "numpy":  # into out= where given,
                # else into the array it would reuse without out= (write_into_out)
                dest = (
                    self.out_array
                    if dest is None
                    else f"{self.out_array} if {self.out_array} is not None else {dest}"
                )
            form = _in_place(self.op) if dest is not None and target == "numpy" else None
            if form is None:
                row = OPS[self.op]
                lowered = (
                    row.lower(target, args, dict(self.attrs))
                    if row.attrs
                    else (getattr(row, target).format(*args))
                )
                code = f"{self.var} = {lowered}"
            elif form[1] and dest == args[0] == self.var:
                code = f"{self.var} {form[1]}= {args[1]}"
            else:
                code = f"{self.var} = {form[0].format(*args, out=dest)}"
        return f"    {code}  # {self.comment}" if self.comment else f"    {code}"


@cache
def _in_place(op: str) -> tuple[str, str] | None:
    """Op's NumPy lowering as a template that writes into the array ``{out}``, and the
    operator of its augmented assignment (``"+"``: ``x += y``; ``""`` for a call);
    ``None`` where it cannot (a NumPy function that is not a ufunc, a helper without
    ``out``)."""
    template = OPS[op].numpy
    head = template.partition("(")[0]
    if template.endswith(")") and (_is_ufunc(head) or _helper_takes_out(head)):
        return template[:-1] + ", out={out})", ""
    if template == "-{0}":
        return "np.negative({0}, out={out})", ""
    if template == "{0} @ {1}":  # (no ``@=``: NumPy has no in-place matrix product)
        return "np.matmul({0}, {1}, out={out})", ""
    parts = template.split(" ")
    if len(parts) == 3 and parts[1] in _UFUNC:
        return f"{_UFUNC[parts[1]]}({parts[0]}, {parts[2]}, out={{out}})", parts[1]
    return None


def write_into_out(lines: list[Any], arrays_of: Mapping[str, str],
                 fits: Callable[[Line, str], bool]) -> None:  # fmt: skip
    """Let the gate that computes each returned value write it into the caller's
    ``out=`` array: ``arrays_of`` maps a returned variable to the variable holding that
    array (``None`` in a call without ``out=``). The gate is the line that binds the
    variable, before any lines that then add into it in place (``dx += dx_3``) and
    through aliases (``dz = q``). Its op must have a form that takes ``out=``
    (``np.tanh(t)``, ``_sigmoid(t)``; an operator line ``q = x + y`` becomes
    ``q = np.add(x, y, out=_out_dz)``: ``forward`` keeps the notes' operators, and a
    value copied into the caller's array at the end would cost a pass more than no
    ``out=``). It must ``fits(line, returned)`` (its result has the returned value's shape).
    A fused loop (the C target) writes a returned value into the array itself, or, where
    it writes the value over a dying matrix product's array (``Kernel.into``), the
    product is computed into the array (``np.matmul(X.T, dh, out=_out_dW1)``) and the
    loop updates it in place; so too a NumPy line that writes over a dying product
    (``dW1 = np.add(matmul_4, mul_5, out=matmul_4)``)."""
    binds: dict[str, list[int]] = {}  # variable -> the lines that bind it, in order
    for k, line in enumerate(lines):
        for var in getattr(line, "outputs", None) or (line.var,):
            binds.setdefault(var, []).append(k)

    def binding(var: str, before: int) -> tuple[int, Any]:
        """The last line before ``before`` that binds var, and its index; (-1, None)."""
        ks = binds.get(var, [])
        i = bisect.bisect_left(ks, before) - 1
        return (ks[i], lines[ks[i]]) if i >= 0 else (-1, None)

    def product(line: Any, returned: str) -> bool:  # a matrix product that may take it
        return getattr(line, "op", None) == "matmul" and line.out_array is None and fits(
            line, returned
        )

    for returned, array in arrays_of.items():
        var, before = returned, len(lines)
        while True:
            k, line = binding(var, before)
            if line is None:
                break
            if getattr(line, "outputs", None) is not None:  # a fused loop
                if var in line.into:  # over a dying product: the product takes the array
                    _, src = binding(line.into[var], k)
                    if product(src, returned):
                        src.out_array = array
                    break
                inner = [x for x in line.lines if x.var == var]
                if inner and fits(inner[-1], returned):
                    line.out_arrays[var] = array
                break
            dest = line.into if line.out is None else line.args[line.out]
            if line.op is not None and dest == var:  # into its own array (dx += dx_3)
                before = k
                continue
            if line.op is None and line.args[0].isidentifier():
                var, before = line.args[0], k  # an alias (dz = q): q's gate
                continue
            if line.op is not None and line.out is not None and line.out_array is None:
                # into a dying matrix product (dW1 = np.add(matmul_4, mul_5, out=matmul_4)):
                # the product is computed into the array, and the line adds in place
                _, src = binding(dest, k)
                if product(src, returned):
                    src.out_array = array
                    break
            if (
                line.op is not None
                and line.out_array is None
                and _in_place(line.op) is not None
                and fits(line, returned)
            ):
                line.out_array = array
            break


def _is_ufunc(head: str) -> bool:
    return head.startswith("np.") and isinstance(getattr(np, head[3:], None), np.ufunc)


def _helper_takes_out(head: str) -> bool:
    """Whether ``head`` is a helper whose signature ends in ``out=None``."""
    return HELPERS["numpy"].get(head, "").startswith(f"def {head}(") and (
        HELPERS["numpy"][head].partition("\n")[0].endswith(", out=None):")
    )


def _writes_into(op: str) -> bool:
    """Whether op's NumPy lowering can write its result into a given array."""
    return _in_place(op) is not None


def _literal(value: Any) -> str:
    return repr(float(value))


#: Non-finite constants as :func:`_literal` writes them, and as each target spells them
#: (a bare ``inf`` would be a name: undefined, or an input called ``inf``).
_NONFINITE = {"inf": "{m}.inf", "-inf": "-{m}.inf", "nan": "{m}.nan"}


def target_text(text: str, target: str) -> str:
    """An argument's text as ``target`` spells it (``inf`` -> ``np.inf`` / ``math.inf``)."""
    spelled = _NONFINITE.get(text)
    return text if spelled is None else spelled.format(m="np" if target == "numpy" else "math")


def output_name(graph: Any) -> str:
    """The output's name in the generated code: its bound name, or ``f``."""
    return graph.names[graph.output] if graph.nodes[graph.output]["name"] else "f"


class _Lowerer:
    def __init__(self, bw: Backward, wrt: Sequence[str]) -> None:
        self.bw = bw
        self.nd: dict[str, dict[str, Any]] = bw.graph.nodes
        self.wrt = tuple(wrt)
        self.names = bw.graph.names
        self.f = output_name(bw.graph)  # ∂loss/∂W in the comments, as the docstring writes
        self.used = set(self.names.values())
        self._literals: dict[str, str] = {}

    def ref(self, node: str) -> str:
        data = self.nd[node]
        return self.literal(node) if data["op"] == "const" else self.names[node]

    def literal(self, node: str) -> str:
        """A constant node's value as a Python float literal (computed once per node)."""
        text = self._literals.get(node)
        if text is None:
            text = self._literals[node] = _literal(self.nd[node]["value"])
        return text

    def claim(self, base: str) -> str:
        name, k = base, 2
        while name in self.used:
            name, k = f"{base}_{k}", k + 1
        self.used.add(name)
        return name

    def gate_line(
        self,
        node: str,
        var: str,
        comment: str,
        subst: Mapping[int, str],
        rename: Mapping[str, str] | None = None,
    ) -> Line:
        """The line ``var = op(args)``; ``subst`` replaces argument texts by position,
        and an argument still written by its node name is written ``rename[arg]``
        (``rename`` maps every node: the backward pass starts it as ``dict(names)``)."""
        nd, names = self.nd, self.names
        data = nd[node]
        texts: list[str] = []
        nodes: list[str | None] = []
        uses: list[str] = []
        for i, a in enumerate(data["args"]):
            if nd[a]["op"] == "const":
                nodes.append(None)
                text = subst[i] if subst and i in subst else self.literal(a)
            else:
                nodes.append(a)
                uses.append(a)
                if not subst or i not in subst:  # the argument's name, as renamed
                    texts.append(names[a] if rename is None else rename[a])
                    continue
                text = subst[i]
            if rename is not None and text == names[a]:
                text = rename[a]
            texts.append(text)
        attrs = data.get("attrs", ())
        return Line(var, node, data["op"], tuple(texts), tuple(nodes), comment, uses, attrs=attrs)

    def forward_lines(self, needed: set[str]) -> list[Line]:
        lines = []
        for node, data in self.nd.items():
            if (
                node in needed
                and data["role"] == "forward"
                and data["op"] not in ("input", "const")
            ):
                comment = f"{OPS[data['op']].symbol} gate"
                lines.append(self.gate_line(node, self.names[node], comment, {}))
        return lines


def value_roots(lines: list[Line], inputs: Sequence[str]) -> dict[str, tuple[str, str]]:
    """What each variable holds after ``lines``: ``("input", name)``, ``("gate", node)``
    or ``("literal", text)``, following alias lines (``dx = dq``) and rebinding.
    Two returned texts with one root are one array; a root ``("input", x)`` is x's."""
    root: dict[str, tuple[str, str]] = {n: ("input", n) for n in inputs}
    for line in lines:
        fused = getattr(line, "outputs", None)  # a fused loop (graphc.ctarget.Kernel)
        if fused is not None:
            root.update((var, ("gate", var)) for var in fused)
        elif line.op is None:  # an alias line: the value of its argument
            root[line.var] = root.get(line.args[0], ("literal", line.args[0]))
        else:
            root[line.var] = ("gate", line.node or line.var)
    return root


def lower(
    bw: Backward, wrt: Sequence[str], grads: bool, fuse: Fuse | None = None
) -> tuple[list[Any], str, dict[str, str]]:
    """Body lines, the output's text and ``{input: gradient text}`` (empty unless ``grads``).

    ``fuse`` (tensor programs, the C target): called with the lines and the returned
    texts, it replaces runs of lines by fused loops; the lines then keep fresh arrays.
    """
    low = _Lowerer(bw, wrt)
    out = bw.graph.output
    fwd = bw.graph  # forward nodes have role "forward"
    if not grads:
        lines = low.forward_lines(ancestors(low.nd, [out]))
        returned, texts, grad_text = [out], [low.ref(out)], {}
    else:
        returned = [out, *(bw.grads[n] for n in wrt)]
        needed = ancestors(low.nd, returned)
        lines = low.forward_lines(needed)
        back = _backward_lines(low, needed, fwd)
        lines += back.lines
        grad_text = {n: back.grad_ref(n) for n in wrt}
        texts = [low.ref(out), *grad_text.values()]
    if not bw.graph.tensor:
        return _reuse(lines, returned), low.ref(out), grad_text
    # Tensor programs: a transpose used once is written where it is used
    # (``dh = ds @ W2.T``); an array lends its memory only to an elementwise gate of
    # its own shape, at the line where it dies.
    lines = _inline_transposes(lines, returned)
    if fuse is not None:
        return fuse(lines, texts), low.ref(out), grad_text
    return _reuse_same_shape(lines, returned, low.nd), low.ref(out), grad_text


@dataclass
class _Back:
    lines: list[Line]
    alias: dict[str, str]  # forward node -> the variable holding ∂f/∂node
    low: _Lowerer

    def grad_ref(self, name: str) -> str:
        return self.alias.get(name) or self.low.ref(self.low.bw.grads[name])


def _backward_lines(low: _Lowerer, needed: set[str], fwd: Any) -> _Back:
    """Backward lines with the notes' names: ``dq = z``, ``dx = dx_1 + dx_2``."""
    bw, nd, names = low.bw, low.nd, low.names
    upstream = dict(bw.upstream)  # (a dict's lookups are faster than its read-only view's)
    order = []  # the needed backward gates, in the graph's order
    readers: dict[str, int] = {}  # how many needed gates read each node (see below)
    for n in bw.graph.order:
        if n in needed:
            data = nd[n]
            if data["role"] == "backward" and data["op"] not in ("input", "const"):
                order.append(n)
                for a in data["args"]:
                    readers[a] = readers.get(a, 0) + 1
    # Which forward node's upstream gradient each needed node holds (first wins), and
    # the variable that will hold each upstream gradient. (readers: a partial sum that
    # another gate reads too, w1 + 1 in ∂f/∂x and in ∂f/∂w2, keeps a name of its own,
    # not the chain's.)
    out = fwd.output
    fwd_order = [v for v in fwd.order if v in upstream and v != out]
    wrt = set(bw.wrt)
    alias: dict[str, str] = {}
    holder: dict[str, str] = {}  # node -> forward node whose upstream it is
    for v in reversed(fwd_order):
        up = upstream[v]
        if up not in needed and v not in wrt:
            continue
        vdata, updata = nd[v], nd[up]
        if updata.get("grad_of") == v and updata["role"] == "backward":
            alias[v] = names[up]
        elif vdata["op"] == "input" or vdata["name"]:
            alias[v] = low.claim("d" + names[v])
        holder.setdefault(up, v)
    # Names for the branches of a fork and for local gradients.
    var = dict(names)
    subst: dict[str, dict[int, str]] = {}
    chains: dict[str, str] = {}
    branch: dict[str, tuple[str, str]] = {}
    for v in fwd_order:
        branches = bw.branches(v)
        for (w, _i), c in branches:
            if w in alias and c in needed and nd[c]["op"] == "mul":
                args = nd[c]["args"]
                if upstream[w] in args:  # the upstream factor is written by its name
                    subst.setdefault(c, {})[args.index(upstream[w])] = alias[w]
        if len(branches) < 2 or v not in alias:
            continue
        part: dict[str, str] = {}
        for k, ((w, _i), c) in enumerate(branches, 1):
            cdata = nd[c]
            if c == upstream.get(w) and w in alias:
                part.setdefault(c, alias[w])
            elif cdata["role"] == "backward" and cdata["name"] is None and c not in holder:
                var[c] = cdata["name"] = low.claim(f"{alias[v]}_{k}")
                branch[c] = (v, w)
            part.setdefault(c, _text(low, var, c))
        node = upstream[v]
        while nd[node]["op"] == "add" and nd[node]["role"] == "backward":
            chains[node] = var[node] = alias[v]
            a0, a1 = nd[node]["args"]
            subst.setdefault(node, {})[1] = part.get(a1) or _text(low, var, a1)
            if nd[a0]["op"] != "add" or a0 in holder or a0 in part or readers.get(a0, 0) > 1:
                subst[node][0] = part.get(a0) or _text(low, var, a0)
                break
            node = a0
    for (w, i), loc in bw.local.items():
        d = nd[loc]
        if loc in needed and d["role"] == "backward" and d["name"] is None and loc not in holder:
            a = nd[w]["args"][i]
            var[loc] = d["name"] = low.claim(f"d{names[w]}_d{names[a]}")
    lines: list[Line] = []
    after: dict[str, list[str]] = {}
    for v in reversed(fwd_order):
        up = upstream[v]
        if v in alias and (nd[up]["role"] != "backward" or nd[up]["op"] == "const"):
            lines.append(_alias_line(low, v, alias, holder))
        elif v in alias:
            after.setdefault(up, []).append(v)
    gate_line, f = low.gate_line, low.f
    for node in order:
        first = holder.get(node)  # the forward node whose upstream gradient node is
        if first is not None:
            comment = f"∂{f}/∂{names[first]}"
            target = alias.get(first) or var[node]
        else:
            comment = _comment(low, node, branch, chains)
            target = var[node]
        target = chains.get(node) or target
        lines.append(gate_line(node, target, comment, subst.get(node, _NONE), var))
        if node in after:
            for v in after[node]:
                if alias[v] != target:
                    lines.append(_alias_line(low, v, alias, holder))
    return _Back(lines, alias, low)


def _text(low: _Lowerer, var: Mapping[str, str], node: str) -> str:
    return low.ref(node) if low.nd[node]["op"] == "const" else var[node]


def _alias_line(low: _Lowerer, v: str, alias: Mapping[str, str], holder: Mapping[str, str]) -> Line:
    up = low.bw.upstream[v]
    first = holder.get(up)
    text = alias[first] if first not in (None, v) and first in alias else low.ref(up)
    uses = [] if low.nd[up]["op"] == "const" else [up]
    return Line(alias[v], up, None, (text,), (up,), f"∂{low.f}/∂{low.names[v]}", uses)


def _comment(
    low: _Lowerer,
    node: str,
    branch: Mapping[str, tuple[str, str]],
    chains: Mapping[str, str],
) -> str:
    """The comment of a backward line whose node holds no upstream gradient."""
    names = low.names
    if node in branch:
        v, w = branch[node]
        return f"branch of ∂{low.f}/∂{names[v]} through {names[w]}"
    if node in chains:
        return "gradients add at a fork"
    if low.nd[node]["name"]:
        return "local gradient"
    return f"{OPS[low.nd[node]['op']].symbol}"


def _inline_transposes(lines: list[Line], returned: Sequence[str]) -> list[Line]:
    """Drop each ``t = a.T`` line whose value one later line reads once, and write
    ``a.T`` in that line instead, as the cs231n code does (``dW2 = h.T @ dscores``)."""
    count: dict[str, int] = {}
    for line in lines:
        for n in line.uses:
            count[n] = count.get(n, 0) + 1
    keep = set(returned)
    inline: dict[str, str] = {}  # variable -> text that replaces it
    reads: dict[str, list[str]] = {}  # transpose node -> the nodes its text reads
    out = []
    for line in lines:
        if inline and any(a in inline for a in line.args):
            line.args = tuple(inline.pop(a) if a in inline else a for a in line.args)
            # the line now reads the transposed array itself: its memory must live
            # until here (not be lent to a gate between the transpose and this line)
            line.uses = [u for n in line.uses for u in reads.pop(n, [n])]
        if line.op == "transpose" and count.get(line.node or "", 0) == 1 and line.node not in keep:
            arg = line.args[0]
            inline[line.var] = f"{arg}.T" if arg.isidentifier() else f"({arg}).T"
            reads[line.node or ""] = list(line.uses)
            continue
        out.append(line)
    return out


#: Tensor ops whose NumPy lowering may return a view of an argument.
VIEW_OPS = frozenset({"transpose", "expand", "reshape"})
#: Tensor ops whose NumPy lowering may return a view of an argument, or a label array.
NOT_OWNED = VIEW_OPS | {"one_hot"}


def _reuse_same_shape(
    lines: list[Line], returned: Sequence[str], nd: Mapping[str, Mapping[str, Any]]
) -> list[Line]:
    """Tensor programs: an elementwise gate writes into an argument that dies at its
    line when that argument is an array this call made (not an input, not a view), of
    the gate's shape (``np.add(matmul_1, b1, out=matmul_1)``), else into such an array
    that died earlier (``dW1_2 = np.multiply(mul_4, W1, out=pow_1)``): fewer fresh
    arrays, fewer page faults, less memory alive."""
    last: dict[str, int] = {}
    assigned: dict[str, int] = {}  # variable -> last line that binds it
    aliased: set[str] = set()
    for k, line in enumerate(lines):
        for n in line.uses:
            last[n] = k
        assigned[line.var] = k
        if line.op is None:
            aliased.update(n for n in line.arg_nodes if n is not None)
    for n in returned:
        last[n] = len(lines)
    # a view (``dV = matmul_2.T``) reads its base's memory for as long as it is read
    for line in reversed(lines):
        if line.op in VIEW_OPS and line.node in last:
            for n in line.uses:  # (an inlined transpose's uses name the array it reads)
                last[n] = max(last.get(n, -1), last[line.node])
    owned: dict[str, str] = {}  # node -> the variable holding its fresh array
    free: dict[Any, list[str]] = {}  # shape -> variables whose arrays are dead
    for k, line in enumerate(lines):
        node = line.node
        if line.op is None or node is None:
            continue
        shape = nd[node].get("shape")
        dying = list(dict.fromkeys(n for n in line.arg_nodes if n in owned and last.get(n) == k))
        if line.op in OPS and not OPS[line.op].tensor and _in_place(line.op) and shape:
            for i, n in enumerate(line.arg_nodes):
                if n in dying and nd[n].get("shape") == shape:
                    line.out = i
                    del owned[n]
                    dying.remove(n)
                    break
            else:
                if free.get(shape):
                    line.into = free[shape].pop()
        for n in dying:  # dead after this line: its array may serve a later gate
            var = owned.pop(n)
            if assigned[var] <= k:
                free.setdefault(nd[n].get("shape"), []).append(var)
        if line.op not in NOT_OWNED and shape and node not in aliased:
            owned[node] = line.var
    return lines


def _reuse(lines: list[Line], returned: Sequence[str]) -> list[Line]:
    """Mark, per line, the memory its result may take over: an argument that dies at
    the line, else the array of a temporary that died earlier (most recent first)."""
    last: dict[str, int] = {}
    for k, line in enumerate(lines):
        for n in line.uses:
            last[n] = k
    end = len(lines)
    for n in returned:
        last[n] = end
    owned: set[str] = set()  # gates whose result is a fresh array
    scalar: set[str] = set()  # gates of constants only: NumPy scalars, not arrays
    name: dict[str, str] = {}  # owned node -> the variable that holds its array
    bound: dict[str, str] = {}  # variable -> the node it holds
    free: dict[str, None] = {}  # variables holding arrays no later line reads, in order
    writes_into = _writes_into
    for k, line in enumerate(lines):
        node, var = line.node, line.var
        if line.op is not None:
            dying = []
            is_scalar = True
            for n in line.arg_nodes:
                if n is None:
                    continue
                if n not in scalar:
                    is_scalar = False
                if last[n] == k and n in owned:
                    dying.append(n)
            if is_scalar:
                scalar.add(node)
            elif dying:
                taken = dying[0]  # its array now holds this line's result
                line.out = line.arg_nodes.index(taken)
                name.pop(taken, None)
                for n in dying[1:]:
                    if n in name:  # dies here: its array is free after the line
                        free[name.pop(n)] = None
            elif free and writes_into(line.op):
                line.into = free.popitem()[0]
            if not is_scalar:
                owned.add(node)
        # The line (re)binds var: an array only that name held is gone.
        old = bound.get(var)
        if old is not None and name.get(old) == var:
            del name[old]
        free.pop(var, None)
        bound[var] = node
        if line.op is not None and node in owned and last.get(node, -1) > k:
            name[node] = var
    return lines
