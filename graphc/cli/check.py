"""``graphc check EXPR --wrt NAME --claim EXPR``: check a hand-derived derivative.

Several partials: ``--claim x=EXPR --claim y=EXPR`` (``--wrt`` may then be left out),
or ``--wrt x,y`` with unnamed claims in that order. Exit status: 0 when every claim
is right (proved or equal at every point), 1 when one is wrong (the counterexample is
printed), 3 when one cannot be decided (too few points where both sides are finite),
2 on a usage or parse error.
"""

from __future__ import annotations

import argparse
import json
import re
from typing import Any

from ..check import check
from ..errors import InputError
from . import parse_shapes, read_expr

_NAMED = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*=(?!=)(.*)$", re.S)
_EXIT = {"proved": 0, "agrees numerically": 0, "wrong": 1, "undecided": 3}


def claims_of(wrt: str | None, claims: list[str]) -> tuple[list[str] | None, dict[str, str]]:
    """Match ``--wrt`` and ``--claim`` options: ``(wrt list or None, {name: claim})``."""
    names = [w.strip() for w in wrt.split(",") if w.strip()] if wrt else None
    named: dict[str, str] = {}
    unnamed: list[str] = []
    for c in claims:
        m = _NAMED.match(c)
        if m and (names is None or m.group(1) in names) and m.group(2).strip():
            if m.group(1) in named:
                raise InputError(f"two claims for {m.group(1)}")
            named[m.group(1)] = m.group(2).strip()
        else:
            unnamed.append(c)
    if unnamed:
        if names is None:
            raise InputError("give --wrt NAME, or write the claim as --claim NAME=EXPR")
        rest = [n for n in names if n not in named]
        if len(rest) != len(unnamed):
            raise InputError(
                f"{len(unnamed)} unnamed claim(s) for {len(rest)} variable(s) in --wrt "
                f"without a claim ({', '.join(rest) or 'none'})"
            )
        named.update(zip(rest, unnamed, strict=True))
    if names is not None:
        missing = [n for n in names if n not in named]
        if missing:
            raise InputError(f"no --claim for {', '.join(missing)}")
        named = {n: named[n] for n in names}
    return names, named


def _check(args: argparse.Namespace) -> int:
    # --wrt h --claim A --wrt b2 --claim B pairs as --wrt h,b2 --claim A --claim B
    wrt, claims = claims_of(",".join(args.wrt) if args.wrt else None, args.claim)
    domain = ", ".join(args.domain) if args.domain else None
    result = check(
        read_expr(args.expr),
        wrt,
        claims,
        domain=domain,
        points=args.points,
        seed=args.seed,
        rtol=args.rtol,
        budget=args.budget,
        shapes=parse_shapes(args.shape),
    )
    if args.json:
        print(json.dumps(result.to_dict(), indent=2, ensure_ascii=False))
    else:
        print(result)
        if args.verbose:
            for p in result.partials:
                print(f"  method for ∂{p.output}/∂{p.wrt}:")
                print("\n".join(f"    {m}" for m in p.method))
    codes = [_EXIT[p.verdict] for p in result.partials]
    if args.strict:
        codes = [4 if p.verdict == "agrees numerically" else c
                 for p, c in zip(result.partials, codes, strict=True)]  # fmt: skip
    return 1 if 1 in codes else max(codes)


def _positive_int(text: str) -> int:
    try:
        n = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {text!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"expected at least 1, got {n}")
    return n


def add(sub: Any) -> None:
    """Register the ``check`` subcommand."""
    p = sub.add_parser(
        "check",
        help="check a hand-derived derivative: proved, wrong (with a counterexample) or undecided",
        description=(
            "Exit status: 0 proved, or agrees numerically (equal at every tested point, not "
            "proved); 1 wrong; 2 usage or parse error; 3 undecided. With --strict, a claim "
            "that agrees numerically but is not proved exits 4."
        ),
    )
    p.add_argument(
        "--strict",
        action="store_true",
        help="accept proofs only: 'agrees numerically (not proved)' exits 4",
    )
    p.add_argument("expr", help="expression or program; '-' reads standard input")
    p.add_argument(
        "--wrt",
        action="append",
        help="variable(s), comma-separated or repeated (inputs or names of the program)",
    )
    p.add_argument(
        "--claim",
        action="append",
        required=True,
        metavar="[NAME=]EXPR",
        help="the claimed derivative; repeat as --claim x=EXPR --claim y=EXPR",
    )
    p.add_argument(
        "--domain",
        action="append",
        metavar="TEXT",
        help='where the claim should hold, e.g. "x>0" or "0<x<1, y>=2"',
    )
    p.add_argument("--points", type=_positive_int, default=200, help="random points (200)")
    p.add_argument("--seed", type=int, default=0, help="seed of the random points (0)")
    p.add_argument("--rtol", type=float, default=1e-7, help="relative tolerance (1e-7)")
    p.add_argument("--budget", type=float, default=10.0, help="seconds for SymPy (10)")
    p.add_argument("--json", action="store_true", help="machine-readable output")
    p.add_argument(
        "--shape",
        nargs="+",
        action="extend",
        metavar="NAME=DIMS",
        help="tensor programs: an input's shape (w=3, W=3,4) or a dim's number (D=3)",
    )
    p.add_argument("-v", "--verbose", action="store_true", help="print the method's steps")
    p.set_defaults(func=_check)
