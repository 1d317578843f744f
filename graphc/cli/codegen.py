"""``graphc codegen EXPR [-o FILE] [--wrt x,y] [--target numpy|math|c] [--force]``.

Prints the generated module, or writes it to FILE. Writing refuses to replace a file
that graphc did not write unless ``--force`` is given (exit status 2).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..codegen import TARGETS, OverwriteError, compile
from ..errors import InputError
from ..graph import parse
from . import parse_shapes, read_expr


def _codegen(args: argparse.Namespace) -> int:
    graph = parse(read_expr(args.expr))
    given = parse_shapes(args.shape)
    unknown = sorted(set(given) - set(graph.inputs))
    if unknown:
        raise InputError(f"--shape names {unknown[0]}, not an input of the program")
    compiled = compile(graph, args.wrt or None, target=args.target, shapes=given or None)
    if args.output is None:
        sys.stdout.write(compiled.source)
        return 0
    try:
        path = compiled.save(args.output, overwrite=args.force)
    except OverwriteError:  # say it in the command line's words
        raise OverwriteError(
            f"{args.output} exists and was not written by graphc; pass --force to replace it"
        ) from None
    print(f"wrote {path}", file=sys.stderr)
    return 0


def add(sub: Any) -> None:
    """Register the ``codegen`` subcommand."""
    p = sub.add_parser(
        "codegen", help="print or write a standalone module computing f and its gradients"
    )
    p.add_argument("expr", help="expression or program; '-' reads standard input")
    p.add_argument("-o", "--output", metavar="FILE", help="write the module to FILE")
    p.add_argument("--wrt", help="comma-separated inputs to differentiate for (default: all)")
    p.add_argument(
        "--target",
        choices=(*TARGETS, "c"),
        default="numpy",
        help="numpy (default), math, or c (the fused C loop; for a tensor program the"
        " module with its C loops; see docs/codegen.md)",
    )
    p.add_argument(
        "--shape",
        nargs="+",
        action="extend",
        metavar="NAME=DIMS",
        help="shapes of inputs the program does not declare (w=3, W=3,4)",
    )
    p.add_argument(
        "--force", action="store_true", help="replace FILE even if graphc did not write it"
    )
    p.set_defaults(func=_codegen)
