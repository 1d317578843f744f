"""Text -> syntax tree with positions. graphc reads the text itself: never ``eval``.

The language::

    program    := statement ((NEWLINE | ';') statement)*
    statement  := NAME ('=' | '+=' | '-=' | '*=' | '/=') expr  |  expr
    expr       := numbers, names, + - * / ** ^, unary -, ( ), f(args), implicit *

Precedence, lowest first: ``+ -``; ``* /`` and implicit multiplication (``2x``,
``(x+y)z``, ``2(x+1)``, ``(a)(b)``, ``x y``); unary minus; ``^``/``**`` (right
associative, so ``-x^2`` is ``-(x^2)`` and ``2^-x`` is ``2^(-x)``). ``xy`` is one name.
Newlines inside parentheses continue the statement; ``#`` starts a comment.

The parser is an operator-precedence (shunting-yard) loop with explicit stacks, so
nesting depth costs no Python recursion: 10,000 nested calls parse in milliseconds.
Past :data:`MAX_DEPTH` nesting or :data:`MAX_TOKENS` tokens it raises
:class:`~graphc.errors.ParseError`.
"""

from __future__ import annotations

import keyword
import re
from dataclasses import dataclass
from fractions import Fraction
from typing import NamedTuple

from .errors import ParseError, did_you_mean
from .ops import BINARY, FUNCTIONS

__all__ = ["MAX_DEPTH", "Call", "Expr", "Num", "Program", "Statement", "Var", "parse_program"]

#: Deepest nesting of parentheses and calls accepted.
MAX_DEPTH = 100_000
#: Most tokens accepted in one text.
MAX_TOKENS = 5_000_000
#: Longest number literal accepted, in characters.
MAX_NUMBER_CHARS = 400
#: Largest decimal exponent of a number literal (``1e400`` is inf in float64 already;
#: ``1e99999999`` would be an exact integer of 100 million digits).
MAX_EXPONENT = 4000

Pos = tuple[int, int]


# Syntax-tree nodes are slotted, mutable dataclasses: a frozen dataclass costs about
# three times as much to construct, and a 10,000-gate program makes tens of thousands.
# Nothing mutates them after parsing.


@dataclass(eq=False, slots=True)
class Num:
    """A number literal: its text as written and its exact value."""

    text: str
    value: Fraction
    pos: Pos


@dataclass(eq=False, slots=True)
class Var:
    """A name: an input, or a name bound earlier in the program."""

    name: str
    pos: Pos


@dataclass(eq=False, slots=True)
class Call:
    """An operator or function applied to arguments, in order."""

    op: str
    args: tuple[Expr, ...]
    pos: Pos


Expr = Num | Var | Call


@dataclass(frozen=True)
class Statement:
    """``name = expr`` (``name`` is ``None`` for a bare expression)."""

    name: str | None
    expr: Expr
    pos: Pos


@dataclass(frozen=True)
class Program:
    """The statements of a text, and the text itself (for error messages)."""

    statements: tuple[Statement, ...]
    text: str


# --- Tokens ---------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""
    (?P<space>[ \t\r\f\v]+|\\\n)
  | (?P<comment>\#[^\n]*)
  | (?P<newline>\n)
  | (?P<number>(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?)
  | (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<op>\*\*|[-+*/]=|[-+*/^(),;=])
  | (?P<bad>.)
    """,
    re.VERBOSE,
)


class Token(NamedTuple):
    kind: str  # "number" | "name" | "op" | "end"  (newline and ';' are op "\n" / ";")
    text: str
    pos: Pos


class _Source:
    """The text, split into lines, to point at positions in errors."""

    def __init__(self, text: str) -> None:
        self.lines = text.split("\n")

    def error(self, message: str, pos: Pos) -> ParseError:
        line, col = pos
        src = self.lines[line - 1] if 0 < line <= len(self.lines) else ""
        return ParseError(message, line, col, src)


def tokenize(text: str, src: _Source) -> list[Token]:
    """Split ``text`` into tokens; newlines inside parentheses are dropped."""
    tokens: list[Token] = []
    line, line_start, depth = 1, 0, 0
    n = len(text)
    for m in _TOKEN.finditer(text):
        start = m.start()
        pos = (line, start - line_start + 1)
        kind = m.lastgroup
        value = m.group()
        if kind == "bad":
            hint = " (powers are written ^ or **)" if value == "·" else ""
            raise src.error(f"unexpected character {value!r}{hint}", pos)
        i = m.end()
        if (kind == "space" and value == "\\\n") or kind == "newline":
            line, line_start = line + 1, i
            if kind == "newline" and depth == 0:
                tokens.append(Token("op", "\n", pos))
            continue
        if kind in ("space", "comment"):
            continue
        if kind == "number" and len(value) > MAX_NUMBER_CHARS:
            raise src.error(f"number literal longer than {MAX_NUMBER_CHARS} characters", pos)
        if kind == "number" and "e" in value.lower():
            exponent = value.lower().partition("e")[2]
            if abs(int(exponent)) > MAX_EXPONENT:
                raise src.error(
                    f"number literal with exponent {exponent}: at most {MAX_EXPONENT} "
                    "(float64 is inf past 1e308 and 0 below 1e-324)",
                    pos,
                )
        if kind == "op":
            if value == "(":
                depth += 1
                if depth > MAX_DEPTH:
                    raise src.error(f"nesting deeper than {MAX_DEPTH:,} levels", pos)
            elif value == ")":
                depth = max(0, depth - 1)
        tokens.append(Token(kind, value, pos))
        if len(tokens) > MAX_TOKENS:
            raise src.error(f"program longer than {MAX_TOKENS:,} tokens", pos)
    tokens.append(Token("end", "", (line, n - line_start + 1)))
    return tokens


# --- Expressions ------------------------------------------------------------------------

# Operators on the stack: (precedence, right-associative)
_PREC = {"add": 1, "sub": 1, "mul": 2, "div": 2, "neg": 3, "pow": 4}
_RIGHT = {"pow"}
_ENDS = {"\n", ";", "end"}


@dataclass
class _Frame:
    """An open parenthesis on the operator stack; ``func`` is set for a call."""

    pos: Pos
    func: str | None
    func_pos: Pos = (0, 0)
    nargs: int = 1


def _number(tok: Token) -> Num:
    return Num(tok.text, Fraction(tok.text), tok.pos)


class _ExprParser:
    """Shunting-yard over tokens[start:], stopping at a statement end."""

    def __init__(self, tokens: list[Token], src: _Source) -> None:
        self.tokens = tokens
        self.src = src
        self.operands: list[Expr] = []
        self.ops: list[tuple[str, Pos] | _Frame] = []

    def _reduce(self) -> None:
        name, pos = self.ops.pop()  # type: ignore[misc]
        arity = 1 if name == "neg" else 2
        args = tuple(self.operands[-arity:])
        del self.operands[-arity:]
        if name == "neg" and isinstance(args[0], Num):  # -3 is the number -3
            num = args[0]
            node: Expr = Num("-" + num.text, -num.value, pos)
        else:
            node = Call(name, args, pos)
        self.operands.append(node)

    def _push_binary(self, name: str, pos: Pos) -> None:
        prec = _PREC[name]
        while self.ops and not isinstance(self.ops[-1], _Frame):
            top = _PREC[self.ops[-1][0]]
            if top > prec or (top == prec and name not in _RIGHT):
                self._reduce()
            else:
                break
        self.ops.append((name, pos))

    def _close(self, tok: Token) -> _Frame:
        while self.ops and not isinstance(self.ops[-1], _Frame):
            self._reduce()
        if not self.ops:
            raise self.src.error(
                "unmatched ')'" if tok.text == ")" else "',' outside a call", tok.pos
            )
        return self.ops[-1]  # type: ignore[return-value]

    def _operand(self, i: int) -> tuple[int, bool]:
        """Read an operand-position token at i; returns (next index, operand complete)."""
        tok = self.tokens[i]
        if tok.kind == "number":
            self.operands.append(_number(tok))
            return i + 1, True
        if tok.kind == "name":
            nxt = self.tokens[i + 1]
            if tok.text in FUNCTIONS:
                if nxt.text != "(":
                    raise self.src.error(
                        f"function '{tok.text}' needs its arguments in parentheses: "
                        f"{tok.text}(...)",
                        nxt.pos,
                    )
                self.ops.append(_Frame(nxt.pos, tok.text, tok.pos))
                if self.tokens[i + 2].text == ")":
                    self._check_arity(tok.text, 0, tok.pos)
                return i + 2, False
            if nxt.text == "(":
                raise self.src.error(
                    f"unknown function '{tok.text}'{did_you_mean(tok.text, FUNCTIONS)} "
                    f"(to multiply, write {tok.text}*(...))",
                    tok.pos,
                )
            if keyword.iskeyword(tok.text):
                raise self.src.error(f"'{tok.text}' is a reserved word, not a name", tok.pos)
            self.operands.append(Var(tok.text, tok.pos))
            return i + 1, True
        if tok.text == "(":
            self.ops.append(_Frame(tok.pos, None))
            return i + 1, False
        if tok.text == "-":
            self.ops.append(("neg", tok.pos))
            return i + 1, False
        if tok.text == "+":
            return i + 1, False
        raise self.src.error(
            f"expected a number, a name or '(' but found {_describe(tok)}", tok.pos
        )

    def _check_arity(self, func: str, nargs: int, pos: Pos) -> None:
        arity = FUNCTIONS[func].arity
        if nargs != arity:
            plural = "argument" if arity == 1 else "arguments"
            raise self.src.error(f"{func}() takes {arity} {plural}, got {nargs}", pos)

    def parse(self, i: int) -> tuple[Expr, int]:
        """Parse the expression at token i; return it and the index of its end token."""
        expect_operand = True
        while True:
            tok = self.tokens[i]
            if expect_operand:
                i, done = self._operand(i)
                expect_operand = not done
                continue
            if tok.text in _ENDS or tok.kind == "end" or tok.text == "=" or tok.text.endswith("="):
                break
            if tok.kind == "op" and tok.text in BINARY:
                self._push_binary(BINARY[tok.text], tok.pos)
                expect_operand = True
                i += 1
            elif tok.text == ")":
                frame = self._close(tok)
                self.ops.pop()
                if frame.func is not None:
                    self._check_arity(frame.func, frame.nargs, frame.func_pos)
                    n = frame.nargs
                    args = tuple(self.operands[-n:])
                    del self.operands[-n:]
                    self.operands.append(Call(FUNCTIONS[frame.func].name, args, frame.func_pos))
                i += 1
            elif tok.text == ",":
                frame = self._close(tok)
                if frame.func is None:
                    raise self.src.error("',' outside a function call", tok.pos)
                frame.nargs += 1
                expect_operand = True
                i += 1
            elif tok.kind == "name" or tok.text == "(":
                self._push_binary("mul", tok.pos)  # implicit multiplication
                expect_operand = True
            else:
                raise self.src.error(f"missing operator before {_describe(tok)}", tok.pos)
        while self.ops:
            top = self.ops[-1]
            if isinstance(top, _Frame):
                what = f"'{top.func}('" if top.func else "'('"
                raise self.src.error(f"{what} is never closed", top.pos)
            self._reduce()
        return self.operands.pop(), i


def _describe(tok: Token) -> str:
    if tok.kind == "end":
        return "the end of the text"
    if tok.text == "\n":
        return "the end of the line"
    return f"'{tok.text}'"


# --- Programs ---------------------------------------------------------------------------

_AUGMENTED = {"+=": "add", "-=": "sub", "*=": "mul", "/=": "div"}


def parse_program(text: str) -> Program:
    """Parse ``text`` into a :class:`Program`.

    Raises:
        ParseError: with line, column and a caret, for anything graphc cannot read.

    >>> prog = parse_program("q = x + y; f = q z")
    >>> [s.name for s in prog.statements]
    ['q', 'f']
    """
    if not isinstance(text, str):
        raise ParseError(f"expected text, got {type(text).__name__}", 1, 1, "")
    src = _Source(text)
    tokens = tokenize(text, src)
    statements: list[Statement] = []
    i = 0
    while tokens[i].kind != "end":
        tok = tokens[i]
        if tok.text in ("\n", ";"):
            i += 1
            continue
        nxt = tokens[i + 1]
        name = None
        if tok.kind == "name" and nxt.kind == "op" and (nxt.text == "=" or nxt.text in _AUGMENTED):
            _check_target(tok, src)
            name = tok.text
            i += 2
        expr, i = _ExprParser(tokens, src).parse(i)
        end = tokens[i]
        if end.text == "=" or end.text in _AUGMENTED:
            raise src.error("only a single name can be assigned to", end.pos)
        if name is not None and nxt.text in _AUGMENTED:
            expr = Call(_AUGMENTED[nxt.text], (Var(name, tok.pos), expr), nxt.pos)
        statements.append(Statement(name, expr, tok.pos))
    if not statements:
        raise src.error("empty program: write an expression such as (x+y)*z", tokens[-1].pos)
    for st in statements[:-1]:
        if st.name is None:
            raise src.error(
                "this expression is not assigned to a name and is not the last statement,"
                " so it has no effect",
                st.pos,
            )
    return Program(tuple(statements), text)


def _check_target(tok: Token, src: _Source) -> None:
    if tok.text in FUNCTIONS:
        raise src.error(f"'{tok.text}' is a function and cannot be assigned to", tok.pos)
    if keyword.iskeyword(tok.text):
        raise src.error(f"'{tok.text}' is reserved and cannot be assigned to", tok.pos)
