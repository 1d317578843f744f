"""``graphc render EXPR --at NAME=VALUE ... -o FILE``: draw the circuit (Graphviz)."""

from __future__ import annotations

import argparse
import sys
from typing import Any

from ..graph import parse
from ..render import render
from ..render_steps import render_steps
from . import parse_point, read_expr


def _render(args: argparse.Namespace) -> int:
    graph = parse(read_expr(args.expr))
    at = parse_point(args.at) if args.at is not None else None
    options: dict[str, Any] = {
        "precision": args.precision,
        "local": args.local,
        "symbolic": args.symbolic,
        "highlight": args.highlight,
        "group": args.group,
        "cluster": args.cluster,
    }
    if args.steps is not None:  # (an empty DIR is refused there, as -o '' is)
        written = render_steps(graph, at, args.steps, fmt=args.steps_format,
                               overwrite=args.force, **options)  # fmt: skip
        print(f"wrote {len(written) - 1} steps and {written[-1]}", file=sys.stderr)
    if args.output or args.steps is None:
        output = args.output if args.output not in (None, "-") else None
        d = render(graph, at, output, overwrite=args.force, **options)
        if args.output in (None, "-"):
            sys.stdout.write(d.source)
        else:
            print(f"wrote {args.output}", file=sys.stderr)
    return 0


def add(sub: Any) -> None:
    """Register the ``render`` subcommand."""
    p = sub.add_parser(
        "render",
        help="draw the circuit with values and gradients on every wire (Graphviz)",
        description=(
            "Draw EXPR as a circuit, as the cs231n notes do: values (green) above and "
            "gradients (red) below every wire. Without -o, prints the DOT text."
        ),
    )
    p.add_argument("expr", help="expression or program; '-' reads standard input")
    p.add_argument(
        "--at", nargs="+", action="extend", metavar="NAME=VALUE", help="a point, e.g. --at x=-2 y=5"
    )
    p.add_argument("-o", "--output", metavar="FILE", help="file to write: .svg, .png, .pdf or .dot")
    p.add_argument("--local", action="store_true", help="write each gate's local gradients")
    p.add_argument("--symbolic", action="store_true", help="write gradients as formulas")
    p.add_argument("--highlight", metavar="NAME", help="highlight NAME's paths; chain rule")
    p.add_argument("--steps", metavar="DIR", help="one diagram per backward step + index.html")
    p.add_argument(
        "--force", action="store_true", help="replace files graphc did not draw (-o, --steps)"
    )
    p.add_argument(
        "--steps-format", choices=("svg", "png", "dot"), default="svg", help="format of --steps"
    )
    p.add_argument("--precision", type=int, default=2, metavar="N", help="decimals (default 2)")
    p.add_argument("--group", choices=("auto",), help="auto: draw 1/(1+exp(-z)) as one σ gate")
    p.add_argument("--cluster", action="store_true", help="box each named statement")
    p.set_defaults(func=_render)
