"""``graphc params PROGRAM``: each learnable parameter with its shape and size, and the total."""

from __future__ import annotations

import argparse
from typing import Any

from ..graph import parse
from ..shapes import fmt
from . import read_expr


def _params(args: argparse.Namespace) -> int:
    graph = parse(read_expr(args.expr))
    rows = graph.parameters(data=args.data, params=args.params)  # "x, y": names_arg reads it
    width = max((len(n) for n, _, _ in rows), default=0)
    total = 0
    unknown = False
    for name, shape, size in rows:
        print(f"{name:<{width}}  {fmt(shape):<12}  {size if size is not None else '?'}")
        if size is None:
            unknown = True
        else:
            total += size
    print(f"total: {'?' if unknown else total}")
    return 0


def add(sub: Any) -> None:
    """Register the ``params`` subcommand."""
    p = sub.add_parser(
        "params",
        help="list a program's learnable parameters with their shapes, sizes and total",
        description=(
            "Integer labels and inputs named like data (x, X, y, Y, x0, X_train) are data; "
            "every other input is a parameter."
        ),
    )
    p.add_argument("expr", help="program; '-' reads standard input")
    p.add_argument("--data", help="inputs that are data, comma-separated")
    p.add_argument("--params", help="inputs that are parameters, comma-separated")
    p.set_defaults(func=_params)
