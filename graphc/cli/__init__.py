"""The ``graphc`` command: argument parsing and printing only; the work is in the library.

One module per subcommand (``grad``, ``codegen``, ``render``, ``check``), each with
``add(subparsers)``; this module holds what they share.

Exit status: 0 on success, 1 when a check finds a claim wrong, 2 on a usage error or
on text graphc cannot read (one line on standard error, or the parse error with its
caret). An argument that starts with ``-`` but is no option (``-log(sigmoid(w*x))``) is
an expression.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings
from collections.abc import Sequence
from typing import Any, NoReturn

import numpy as np

from ..errors import GraphcError, GraphcWarning, InputError

__all__ = ["fmt", "main", "parse_point", "parse_shapes", "read_expr"]


_OPTION = re.compile(r"--?[A-Za-z][-A-Za-z0-9_]*(=.*)?", re.S)


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:
        self.exit(2, f"{self.prog}: error: {message} (see {self.prog} --help)\n")

    def _parse_optional(self, arg_string: str) -> Any:
        """An argument that starts with '-' but cannot be an option (``-log(x)``,
        ``-x*y``, ``-x`` where no ``-x`` option exists) is an expression, not an option."""
        if arg_string.startswith("-") and arg_string != "-":
            known = arg_string.startswith("--") or arg_string[:2] in self._option_string_actions
            if not (known and _OPTION.fullmatch(arg_string)):
                return None
        return super()._parse_optional(arg_string)


def read_expr(text: str) -> str:
    """The program text of an EXPR argument; ``-`` reads standard input."""
    return sys.stdin.read() if text == "-" else text


def parse_point(items: Sequence[str] | None) -> dict[str, Any]:
    """``["x=-2", "w=1,2,3", "W=1,2;3,4"]`` -> ``{"x": -2.0, "w": array([1., 2., 3.]),
    "W": array([[1., 2.], [3., 4.]])}``; integers stay integers (labels: ``y=0,2``). A
    matrix may also be written as nested lists, ``W=[[1,2],[3,4]]``; a vector of one
    number as ``w=[3]`` or ``w=3,``."""
    point: dict[str, Any] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        if not sep or not name.strip():
            raise InputError(f"--at expects NAME=VALUE, got {item!r}")
        if name.strip() in point:
            raise InputError(f"--at gives {name.strip()} twice; give each input once")
        nested = value.strip().replace(" ", "")
        rows = re.findall(r"\[([^\[\]]*)\]", nested[1:-1]) if nested.startswith("[[") else []
        if rows and nested == "[" + ",".join(f"[{r}]" for r in rows) + "]":  # [[1,2],[3,4]]
            value = ";".join(rows)
            if len(rows) == 1:  # one row: still a matrix
                value += ";"
        if ";" in value:  # a matrix, row by row
            try:
                lines = [r for r in value.strip().split(";") if r or not value.endswith(";")]
                if not lines:
                    raise ValueError(value)
                point[name.strip()] = np.array([[float(v) for v in r.split(",")] for r in lines])
            except ValueError:
                raise InputError(
                    f"--at {name}: {item.partition('=')[2]!r} is not a matrix written '1,2;3,4' or"
                    " '[[1,2],[3,4]]' (rows of one length)"
                ) from None
            continue
        body = value.strip()
        vector = "," in body or (body.startswith("[") and body.endswith("]"))  # [3], 3,
        body = body.strip("[]")
        if body.endswith(",") and body.count(",") == 1:  # 3, is a vector of one, as (3,)
            body = body[:-1]
        try:
            numbers = [float(v) for v in body.split(",")]
            if all(v.strip().lstrip("-").isdigit() for v in body.split(",")):
                numbers = [int(v) for v in body.split(",")]
        except ValueError:
            raise InputError(
                f"--at {name}: {value!r} is not a number, a comma-separated list (1,2,3) or"
                " a matrix (1,2;3,4 or [[1,2],[3,4]])"
            ) from None
        point[name.strip()] = np.array(numbers) if vector else numbers[0]
    return point


def parse_shapes(items: Sequence[str] | None) -> dict[str, tuple[int, ...] | int]:
    """``["w=3", "W=3,4", "N=5"]`` -> ``{"w": (3,), "W": (3, 4), "N": 5}`` (a name that is
    not an input is a dim symbol: its number)."""
    shapes: dict[str, tuple[int, ...] | int] = {}
    for item in items or ():
        name, sep, value = item.partition("=")
        try:
            dims = tuple(int(v) for v in value.strip().strip("()").split(",") if v.strip())
        except ValueError:
            dims = ()
        if not sep or not name.strip() or not dims or min(dims) < 1:
            raise InputError(f"--shape expects NAME=DIMS such as w=3 or W=3,4; got {item!r}")
        if name.strip() in shapes:
            raise InputError(f"--shape gives {name.strip()} twice")
        shapes[name.strip()] = dims
    return shapes


def fmt(value: Any, digits: int = 10) -> str:
    """A value for the terminal: ``-12``, ``0.7310585786``, or an array."""
    a = np.asarray(value)
    if a.ndim == 0:
        return f"{float(a):.{digits}g}"
    text = np.array2string(a, precision=min(digits, 8), separator=", ", max_line_width=10**6)
    return " ".join(text.split())  # a matrix on one line: [[1, 2], [3, 4]]


def _print_warnings(caught: list[warnings.WarningMessage]) -> None:
    """graphc's warnings as one line each on standard error (no Python file and line);
    others as Python shows them."""
    seen: set[str] = set()
    for w in caught:
        if isinstance(w.message, GraphcWarning):
            text = f"graphc: warning: {w.message}"
            if text not in seen:
                seen.add(text)
                print(text, file=sys.stderr)
        else:
            warnings.showwarning(w.message, w.category, w.filename, w.lineno)


def build_parser() -> argparse.ArgumentParser:
    from .. import __version__

    parser = _Parser(prog="graphc", description="symbolic computation-graph compiler")
    parser.add_argument("--version", action="version", version=f"graphc {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    from . import check, codegen, grad, params, render

    for module in (grad, codegen, render, check, params):
        module.add(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always", GraphcWarning)
            status = int(args.func(args))
        _print_warnings(caught)
        return status
    except GraphcError as e:
        print(f"graphc: error: {e}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0
