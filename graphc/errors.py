"""Errors and warnings raised by graphc.

Every error a user can cause is a :class:`GraphcError`. Errors about text carry the
line, the column and the offending line with a caret under the spot, so that the
message alone tells what went wrong and where.
"""

from __future__ import annotations

import difflib
import os
import sys
import warnings
from collections.abc import Iterable

__all__ = [
    "DomainWarning",
    "GraphcError",
    "GraphcWarning",
    "InputError",
    "MemoryInputError",
    "OverflowInputError",
    "OverwriteError",
    "ParseError",
    "ShapeError",
    "ZeroDivisionInputError",
    "did_you_mean",
    "warn",
]


class GraphcError(Exception):
    """Base class of every error graphc raises on purpose."""


class InputError(GraphcError, ValueError):
    """Wrong values or names passed to an API call (unknown input, missing value, bad shape)."""


class ParseError(GraphcError, SyntaxError):
    """Text that graphc cannot read.

    Attributes:
        message: what went wrong, without the position.
        line, column: 1-based position of the offending spot.
        source_line: the text of that line.
    """

    def __init__(self, message: str, line: int, column: int, source_line: str = "") -> None:
        self.message = message
        self.line = line
        self.column = column
        self.source_line = source_line
        super().__init__(self._format())

    def _format(self) -> str:
        head = f"line {self.line}, column {self.column}: {self.message}"
        if not self.source_line:
            return head
        shown = self.source_line.expandtabs(1)
        start = 0
        if len(shown) > 100:  # long lines: show a window around the spot
            start = max(0, self.column - 50)
            shown = shown[start : start + 100]
        caret = " " * (self.column - 1 - start) + "^"
        return f"{head}\n    {shown}\n    {caret}"

    def __str__(self) -> str:
        return self._format()


class OverflowInputError(InputError, OverflowError):
    """A function of the ``math`` target (Python floats) met a number past float's range
    at the inputs given (``exp(1000)``, an int of 400 digits): Python's OverflowError,
    in graphc's words."""


class ZeroDivisionInputError(InputError, ZeroDivisionError):
    """A function of the ``math`` target divided by zero at the inputs given (Python's
    floats raise where NumPy gives inf): Python's ZeroDivisionError, in graphc's words."""


class MemoryInputError(InputError, MemoryError):
    """The inputs given need more memory than there is (arrays that broadcast to a huge
    shape): NumPy's MemoryError, in graphc's words, with the shape it could not make."""


class OverwriteError(GraphcError, FileExistsError):
    """Writing would replace a file that graphc did not write (a module
    :meth:`~graphc.codegen.Compiled.save` would write, a step of
    :func:`~graphc.render_steps.render_steps`); pass ``overwrite=True`` to replace it."""


class ShapeError(InputError):
    """Shapes that do not fit a gate: its name, position (with a caret) and the shapes.

    Raised when the graph is built, where declarations decide the shapes, and when
    values are given otherwise.
    """

    def __init__(self, message: str, line: int = 0, column: int = 0, source_line: str = "") -> None:
        self.message = message
        self.line = line
        self.column = column
        self.source_line = source_line
        text = ParseError(message, line, column, source_line)._format() if line else message
        super().__init__(text)


class GraphcWarning(UserWarning):
    """Base class of graphc's warnings."""


class DomainWarning(GraphcWarning, RuntimeWarning):
    """A gate left its domain at the point evaluated (log of a negative, division by zero)."""


def did_you_mean(word: str, choices: Iterable[str]) -> str:
    """Return ``"; did you mean 'X'?"`` for the closest choice, or ``""`` when none is close."""
    close = difflib.get_close_matches(word, sorted(set(choices)), n=1, cutoff=0.6)
    return f"; did you mean '{close[0]}'?" if close else ""


def limit(name: str, default: int) -> int:
    """A size limit's value: ``$GRAPHC_<name>`` where set (how the command line raises
    it), else ``default``. A value that is not a positive integer is ignored."""
    text = os.environ.get(f"GRAPHC_{name}", "")
    return int(text) if text.isdigit() and int(text) > 0 else default


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(warning: Warning) -> None:
    """Issue ``warning`` at the line of the user's code that led to it.

    That is the first caller outside graphc's package: a fixed ``stacklevel`` pointed
    into graphc wherever a call went through a wrapper (``graph.gc_paused``).
    """
    level, frame = 2, sys._getframe(1)
    while frame is not None and frame.f_code.co_filename.startswith(_PACKAGE):
        frame, level = frame.f_back, level + 1
    warnings.warn(warning, stacklevel=level)
