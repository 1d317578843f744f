"""``graphc params PROGRAM``: each learnable parameter with its shape and size, and the total."""

from __future__ import annotations

import argparse
from typing import Any

import sympy as sp

from ..graph import parse
from ..shapes import fmt, substitute
from . import parse_shapes, read_expr


def _size(shape: tuple[Any, ...]) -> sp.Expr:
    """The number of entries of a shape: a number, or a product of dim symbols."""
    return sp.Mul(*(sp.Integer(d) if isinstance(d, int) else sp.Symbol(d) for d in shape))


def _params(args: argparse.Namespace) -> int:
    graph = parse(read_expr(args.expr))
    given = parse_shapes(args.shape)
    graph.check_shape_names(given, "--shape")
    shapes = {k: v for k, v in given.items() if k in graph.inputs}
    if shapes:
        graph = graph.with_shapes(shapes)  # binds the dims they fix everywhere
    if graph.tensor:
        graph = graph.resolved()  # an undeclared input is a scalar (reg), where that fits
    dims = {k: v[0] for k, v in given.items() if k not in graph.inputs}
    rows = graph.parameters(data=args.data, params=args.params)  # "x, y": names_arg reads it
    width = max((len(n) for n, _, _ in rows), default=0)
    total = sp.Integer(0)
    for name, shape, _ in rows:
        shape = substitute(shape, dims)
        size = _size(shape)
        total += size
        text = f"{int(size):,}" if size.is_Integer else str(size).replace("*", "·")
        print(f"{name:<{width}}  {fmt(shape):<12}  {text}")
    counted = {n for n, _, _ in rows}
    data = [n for n in graph.inputs if n not in counted]
    if data:
        print(f"not counted (data or labels): {', '.join(data)}")
    total = sp.expand(total)
    print(f"total: {f'{int(total):,}' if total.is_Integer else str(total).replace('*', '·')}")
    return 0


def add(sub: Any) -> None:
    """Register the ``params`` subcommand."""
    p = sub.add_parser(
        "params",
        help="list a program's learnable parameters with their shapes, sizes and total",
        description=(
            "Integer labels and inputs named like data (x, X, y, Y, x0, X_train) are data; "
            "every other input is a parameter. Sizes with dim symbols are written as "
            "products (D·H); --shape gives the symbols numbers."
        ),
    )
    p.add_argument("expr", help="program; '-' reads standard input")
    p.add_argument("--data", help="inputs that are data, comma-separated")
    p.add_argument("--params", help="inputs that are parameters, comma-separated")
    p.add_argument(
        "--shape", nargs="+", action="extend", metavar="NAME=DIMS",
        help="numbers for dim symbols (D=784 H=100) or inputs' shapes (W1=784,100)",
    )  # fmt: skip
    p.set_defaults(func=_params)
