"""``graphc grad EXPR [--at NAME=VALUE ...] [--wrt x,y]``: gradients, symbolic and at a point."""

from __future__ import annotations

import argparse
from typing import Any

import numpy as np

from ..args import names_arg
from ..errors import GraphcError, InputError
from ..graph import parse
from ..shapes import fmt as fmt_shape
from . import fmt, parse_point, read_expr

_SYMBOLIC_LIMIT = 400  # nodes; past this, closed forms are not printed


def _grad(args: argparse.Namespace) -> int:
    graph = parse(read_expr(args.expr))
    if not graph.inputs:
        raise InputError(
            f"'{graph.to_text()}' has no inputs, so it has no gradients: "
            "write an expression of names, such as (x+y)*z"
        )
    wrt = names_arg(args.wrt) if args.wrt else graph.differentiable
    for name in wrt:  # a name the program binds is taken too (its upstream gradient);
        graph.wrt_node(name)  # labels and names the program lacks are refused here
    out = (
        graph.names[graph.output]
        if graph.nodes[graph.output]["op"] not in ("input", "const")
        else "f"
    )
    lines = []
    point = parse_point(args.at) if args.at is not None else None
    if graph.tensor:  # matrix notation, with the shapes the values give
        if point is not None:
            from ..evaluate import tensor_point

            graph = tensor_point(graph, point)[0]
        shapes = ", ".join(f"{n}: {fmt_shape(graph.shape(n))}" for n in graph.inputs)
        lines.append(f"{out} = {graph.to_text()}    ({shapes})")
        lines += [f"∂{out}/∂{n} = {t}" for n, t in graph.gradients(wrt).items()]
    elif len(graph) <= _SYMBOLIC_LIMIT:
        try:
            symbolic = [f"{out} = {graph.to_sympy()}"]
            for name, expr in graph.gradients(wrt).items():
                symbolic.append(f"∂{out}/∂{name} = {expr}")
            lines += symbolic
        except GraphcError as e:  # too large to print: the numbers below still come
            lines.append(f"({e})")
        except Exception as e:  # SymPy failed while printing (it evaluates): numbers still come
            lines.append(f"(closed forms not printed: SymPy failed: {type(e).__name__}: {e})")
    else:
        lines.append(f"({len(graph):,} nodes: closed forms not printed; use --at for values)")
    if point is not None:
        ev = graph.evaluate(**point)
        point = ", ".join(f"{k}={fmt(v)}" for k, v in ev.point.items())
        lines += ["", f"at {point}:", f"{out} = {fmt(ev.value)}"]
        # an array-valued f: the gradients are those of sum(f), and say so
        d = f"∂sum({out})" if np.ndim(ev.value) else f"∂{out}"
        lines += [f"{d}/∂{name} = {fmt(ev.gradient(name))}" for name in wrt]
    print("\n".join(lines))
    return 0


def add(sub: Any) -> None:
    p = sub.add_parser("grad", help="print each input's gradient, symbolically and at a point")
    p.add_argument("expr", help="expression or program; '-' reads standard input")
    p.add_argument(
        "--at",
        nargs="+",
        action="extend",
        metavar="NAME=VALUE",
        help="a point, e.g. --at x=-2 y=5 z=-4; vectors w=1,2,3 (one number: w=[3]); "
        "matrices W='1,2;3,4'",
    )
    p.add_argument("--wrt", help="comma-separated inputs (default: all)")
    p.set_defaults(func=_grad)
