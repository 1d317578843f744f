"""Text -> syntax tree with positions. graphc reads the text itself: never ``eval``.

The language::

    program    := [header] statement ((NEWLINE | ';') statement)*
    header     := '(' NAME (',' NAME)* ')' '->'      the inputs, in parameter order
    statement  := NAME ('=' | '+=' | '-=' | '*=' | '/=') expr  |  expr  |  declaration
    declaration:= NAME ':' ( '(' [dim (',' dim)* [',']] ')' [int | float]  |  int | float )
    expr       := numbers, names, + - * / ** ^ @, unary -, ( ), f(args, attr=value), x.T,
                  implicit *

A declaration gives an input's shape, dims numbers or symbols (``X: (N, D)``, ``b: (3,)``,
``reg: ()``), and ``int`` for integer labels (``y: (N,) int``). Functions with
attributes take them by keyword (``sum(x, axis=1, keepdims=True)``), and the ones whose
attribute has no default also by position (``one_hot(y, 10)``, ``reshape(x, (N, 1))``);
an attribute is an integer, a dim symbol, ``True``/``False``/``None`` or a tuple of them.

Precedence, lowest first: ``+ -``; ``* / @`` and implicit multiplication (``2x``,
``(x+y)z``, ``2(x+1)``, ``(a)(b)``, ``x y``); unary minus; ``^``/``**`` (right
associative, so ``-x^2`` is ``-(x^2)`` and ``2^-x`` is ``2^(-x)``); ``.T`` binds
tightest. ``xy`` is one name.
Newlines inside parentheses continue the statement; ``#`` starts a comment.

The parser is an operator-precedence (shunting-yard) loop with explicit stacks, so
nesting depth costs no Python recursion: 10,000 nested calls parse in milliseconds.
Past :data:`MAX_DEPTH` nesting or :data:`MAX_TOKENS` tokens it raises
:class:`~graphc.errors.ParseError`, which names the limit. ``graphc.parse`` is the
function :func:`graphc.graph.parse`, so the limits are set on the module object:
``sys.modules["graphc.parse"].MAX_TOKENS = ...``, or, for the command line too, with the
environment variables ``GRAPHC_MAX_TOKENS`` and ``GRAPHC_MAX_DEPTH``.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from dataclasses import dataclass
from fractions import Fraction
from typing import Any, NamedTuple

from .errors import ParseError, did_you_mean, limit
from .ops import BINARY, FUNCTIONS, OPS, REDUCTIONS, REQUIRED, Op

__all__ = [
    "MAX_DEPTH",
    "MAX_TOKENS",
    "Call",
    "Declaration",
    "Expr",
    "Num",
    "Program",
    "Statement",
    "Var",
    "parse_program",
]

#: Deepest nesting of parentheses and calls accepted.
MAX_DEPTH = limit("MAX_DEPTH", 100_000)
#: Most tokens accepted in one text: reading them takes up to about 360 bytes per token
#: (``python -m benchmarks.memory``), so 360 MB at most; a program of
#: :data:`graphc.graph.MAX_GATES` gates needs far fewer.
MAX_TOKENS = limit("MAX_TOKENS", 1_000_000)
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
    attrs: tuple[tuple[str, Any], ...] = ()
    #: a product written without an operator (``2x``, ``W x``): the builder refuses it
    #: between two tensors, where the notes' ``W x`` means the matrix product
    implicit: bool = False


Expr = Num | Var | Call


@dataclass(frozen=True)
class Statement:
    """``name = expr`` (``name`` is ``None`` for a bare expression)."""

    name: str | None
    expr: Expr
    pos: Pos


@dataclass(frozen=True)
class Declaration:
    """``name: shape [int]``: an input's shape (dims: ints or symbols) and kind."""

    name: str
    shape: tuple[int | str, ...]
    dtype: str  # "float" | "int"
    pos: Pos


@dataclass(frozen=True)
class Program:
    """The statements of a text, its declarations, and the text itself."""

    statements: tuple[Statement, ...]
    text: str
    declarations: tuple[Declaration, ...] = ()
    header: tuple[tuple[str, Pos], ...] = ()

    def dims(self) -> dict[str, tuple[str, int]]:
        """The dim symbols of the declarations that name no declared input, each with
        the first input and axis that has it (``X: (N, D)``: ``{"N": ("X", 0), ...}``)."""
        declared = {d.name for d in self.declarations}
        out: dict[str, tuple[str, int]] = {}
        for decl in self.declarations:
            for axis, d in enumerate(decl.shape):
                if isinstance(d, str) and d not in declared:
                    out.setdefault(d, (decl.name, axis))
        return out


# --- Tokens ---------------------------------------------------------------------------

# Blanks before a token are read with it (``[ \t]*+``, possessive: no backtracking),
# which makes a third fewer matches than a token of its own; the commonest kinds come
# first. ``end`` matches blanks that close the text, in one step (without it, each
# trailing blank would be a failed search from there to the end: quadratic).
_TOKEN = re.compile(
    r"""[ \t]*+(?:
    (?P<name>[A-Za-z_][A-Za-z_0-9]*)
  | (?P<number>(?:\d(?:_?\d)*+(?:\.(?:\d(?:_?\d)*+)?)?|\.\d(?:_?\d)*+)(?:[eE][+-]?\d(?:_?\d)*+)?)
  | (?P<op>\*\*|->|[-+*/]=|[-+*/^(),;=@:.])
  | (?P<newline>\n)
  | (?P<space>[\r\f\v]+|\\\n)
  | (?P<comment>\#[^\n]*)
  | (?P<end>\Z)
  | (?P<bad>.)
    )""",
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


def error_at(text: str | None, message: str, pos: Pos) -> ParseError:
    """A ParseError at ``pos`` in ``text``, showing its line with a caret (for errors
    found after parsing: when the graph is built)."""
    return _Source(text or "").error(message, pos)


def _how(limit: str) -> str:
    """How to raise a limit of this module (``graphc.parse`` itself is the function)."""
    return (
        f": the limit is {limit} in the module graphc.parse; to raise it, set "
        f"sys.modules['graphc.parse'].{limit} (or the environment variable GRAPHC_{limit})"
    )


def _check_number(value: str, pos: Pos, src: _Source) -> None:
    """Refuse a number literal too long, or with an exponent too large, to read."""
    if len(value) > MAX_NUMBER_CHARS:
        raise src.error(f"number literal longer than {MAX_NUMBER_CHARS} characters", pos)
    if "e" in value.lower():
        exponent = value.lower().partition("e")[2]
        if abs(int(exponent)) > MAX_EXPONENT:
            raise src.error(
                f"number literal with exponent {exponent}: at most {MAX_EXPONENT} "
                "(float64 is inf past 1e308 and 0 below 1e-324)",
                pos,
            )


#: What a character from printed math is written as in graphc's text.
_HINTS = {
    **dict.fromkeys("·⋅∙", " (multiplication is written *: x*y, or x y; a dot product is w @ x)"),
    "×": " (multiplication is written *: x*y, or x y)",
    **dict.fromkeys("²³", " (powers are written ^ or **: x^2)"),
    "ᵀ": " (a transpose is written x.T; the dot product wᵀx is w @ x)",
    "−": " (minus is written -)",
    "÷": " (division is written /)",
    "σ": " (the sigmoid is written sigmoid(x))",
    **dict.fromkeys("Σ∑", " (a sum is written sum(x), or sum(x, axis=0) along an axis)"),
    "√": " (a square root is written sqrt(x))",
    "⊙": " (the product entry by entry is written *: x * y)",
}


def _hint(char: str) -> str:
    """Why ``char`` cannot start a token, and what to write instead."""
    if char in _HINTS:
        return _HINTS[char]
    if char.isalpha():  # a Greek or accented letter: names are ASCII
        words = unicodedata.name(char, "").split()
        spelled = words[-1].lower() if words[:1] == ["GREEK"] else None
        instead = f": write {spelled}" if spelled and spelled.isascii() else ""
        return f" (names are ASCII letters, digits and _{instead})"
    return ""


def tokenize(text: str, src: _Source) -> list[Token]:
    """Split ``text`` into tokens; newlines inside parentheses are dropped."""
    tokens: list[Token] = []
    line, line_start, depth = 1, 0, 0
    n = len(text)
    new = tuple.__new__  # Token(kind, value, pos) without NamedTuple's Python-level __new__
    for m in _TOKEN.finditer(text):
        kind = m.lastgroup
        start = m.start(kind)
        pos = (line, start - line_start + 1)
        value = m.group(kind)
        if kind != "name":  # names, the commonest tokens, need no checks
            if kind == "bad":
                hint = _hint(value)
                raise src.error(f"unexpected character {value!r}{hint}", pos)
            if (kind == "space" and value == "\\\n") or kind == "newline":
                line, line_start = line + 1, m.end()
                if kind == "newline" and depth == 0:
                    tokens.append(Token("op", "\n", pos))
                continue
            if kind in ("space", "comment", "end"):
                continue
            if kind == "number":
                if m.end() < n and text[m.end()] == "_":
                    raise src.error(
                        f"'_' after the number {value}: digits are grouped with one '_' "
                        f"between two digits (1_000); to multiply by a name, write {value}*_x",
                        (line, m.end() - line_start + 1),
                    )
                value = value.replace("_", "")  # Python's digit grouping: 1_000 is 1000
                _check_number(value, pos, src)
            elif value == "(":
                depth += 1
                if depth > MAX_DEPTH:
                    raise src.error(
                        f"nesting deeper than {MAX_DEPTH:,} levels{_how('MAX_DEPTH')}", pos
                    )
            elif value == ")":
                depth = max(0, depth - 1)
        tokens.append(new(Token, (kind, value, pos)))
        if len(tokens) > MAX_TOKENS:
            raise src.error(f"program longer than {MAX_TOKENS:,} tokens{_how('MAX_TOKENS')}", pos)
    tokens.append(Token("end", "", (line, n - line_start + 1)))
    return tokens


# --- Expressions ------------------------------------------------------------------------

# Operators on the stack: (precedence, right-associative)
_PREC = {"add": 1, "sub": 1, "mul": 2, "implicit": 2, "div": 2, "matmul": 2, "neg": 3, "pow": 4}
_RIGHT = {"pow"}
_ENDS = {"\n", ";", "end"}


@dataclass
class _Frame:
    """An open parenthesis on the operator stack; ``func`` is set for a call."""

    pos: Pos
    func: str | None
    func_pos: Pos = (0, 0)
    nargs: int = 1
    attrs: dict[str, Any] | None = None


def _number(tok: Token) -> Num:
    return Num(tok.text, Fraction(tok.text), tok.pos)


class _ExprParser:
    """Shunting-yard over tokens[start:], stopping at a statement end."""

    def __init__(self, tokens: list[Token], src: _Source, bound: set[str] | None = None) -> None:
        self.tokens = tokens
        self.src = src
        self.bound = bound or set()
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
        elif name == "implicit":
            node = Call("mul", args, pos, implicit=True)
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
            if tok.text in FUNCTIONS and not (tok.text in self.bound and nxt.text != "("):
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

    @staticmethod
    def _row(func: str, nargs: int) -> Op:
        """The op a call of ``func`` with ``nargs`` arguments means (``max(x)`` reduces)."""
        if func in REDUCTIONS and nargs == 1:
            return OPS[REDUCTIONS[func]]
        return FUNCTIONS[func]

    def _check_arity(self, func: str, nargs: int, pos: Pos) -> None:
        arity = self._row(func, nargs).arity
        if nargs != arity:
            plural = "argument" if arity == 1 else "arguments"
            raise self.src.error(f"{func}() takes {arity} {plural}, got {nargs}", pos)

    def _attrs(self, i: int, frame: _Frame) -> int:
        """Read a call's attributes from token i up to its ')' (not consumed)."""
        assert frame.func is not None
        row = self._row(frame.func, frame.nargs)
        names = [k for k, _ in row.attrs]
        if not names:
            raise self.src.error(f"{frame.func}() takes no keyword arguments", self.tokens[i].pos)
        attrs = frame.attrs = {}
        k_pos = 0
        tokens = self.tokens
        while True:
            tok = tokens[i]
            if tok.kind == "name" and tokens[i + 1].text == "=":
                key = tok.text
                if key not in names:
                    raise self.src.error(
                        f"{frame.func}() has no argument '{key}'{did_you_mean(key, names)}"
                        f" (it takes {', '.join(names)})",
                        tok.pos,
                    )
                i += 2
            elif k_pos < row.positional:
                key = names[k_pos]
                k_pos += 1
            else:
                raise self.src.error(
                    f"write {frame.func}()'s options by name: {names[0]}=...", tok.pos
                )
            if key in attrs:
                raise self.src.error(f"{frame.func}() got '{key}' twice", tok.pos)
            value, i = self._attr_value(i)
            if key == "keepdims" and not isinstance(value, bool):
                raise self.src.error("keepdims is True or False", tokens[i - 1].pos)
            attrs[key] = value
            if tokens[i].text == ",":
                i += 1
                if tokens[i].text == ")":
                    return i
            elif tokens[i].text == ")":
                return i
            else:
                raise self.src.error(
                    f"expected ',' or ')' but found {_describe(tokens[i])}", tokens[i].pos
                )

    def _attr_value(self, i: int) -> tuple[Any, int]:
        """An attribute: an integer, a dim symbol, True/False/None, or a tuple of them."""
        tok = self.tokens[i]
        if tok.text == "(":
            items: list[Any] = []
            i += 1
            while self.tokens[i].text != ")":
                value, i = self._attr_value(i)
                items.append(value)
                if self.tokens[i].text == ",":
                    i += 1
                elif self.tokens[i].text != ")":
                    raise self.src.error(
                        f"expected ',' or ')' but found {_describe(self.tokens[i])}",
                        self.tokens[i].pos,
                    )
            return tuple(items), i + 1
        sign = 1
        if tok.text == "-":
            sign, i = -1, i + 1
            tok = self.tokens[i]
        if tok.kind == "number" and tok.text.isdigit():
            return sign * int(tok.text), i + 1
        if tok.kind == "name" and sign == 1:
            constants = {"True": True, "False": False, "None": None}
            return (constants.get(tok.text, tok.text)), i + 1
        raise self.src.error(
            f"expected an integer, a dim name, True, False or None but found {_describe(tok)}",
            tok.pos,
        )

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
                    row = self._row(frame.func, n)
                    attrs = frame.attrs or {}
                    for key, default in row.attrs:
                        if default == REQUIRED and key not in attrs:
                            raise self.src.error(
                                f"{frame.func}() needs its {key}: "
                                f"{frame.func}({', '.join('...' for _ in args)}, {key})",
                                frame.func_pos,
                            )
                    self.operands.append(
                        Call(row.name, args, frame.func_pos, tuple(sorted(attrs.items())))
                    )
                i += 1
            elif tok.text == ",":
                frame = self._close(tok)
                if frame.func is None:
                    raise self.src.error("',' outside a function call", tok.pos)
                if frame.attrs is not None:
                    raise self.src.error("arguments after options are not allowed", tok.pos)
                nxt = self.tokens[i + 1]
                row = self._row(frame.func, frame.nargs)
                keyword = nxt.kind == "name" and self.tokens[i + 2].text == "="
                if keyword or (row.positional and frame.nargs == row.arity):
                    i = self._attrs(i + 1, frame)
                    continue
                frame.nargs += 1
                expect_operand = True
                i += 1
            elif tok.text == ".":
                nxt = self.tokens[i + 1]
                if nxt.text != "T":
                    raise self.src.error("after '.' graphc reads only T (transpose): x.T", nxt.pos)
                self.operands.append(Call("transpose", (self.operands.pop(),), tok.pos))
                i += 2
            elif tok.kind == "name" or tok.text == "(":
                self._push_binary("implicit", tok.pos)  # implicit multiplication
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
    if text.startswith("\ufeff"):  # a byte-order mark (files saved by some Windows
        text = text[1:]  # editors): invisible, so lines and columns count after it
    src = _Source(text)
    tokens = tokenize(text, src)
    statements: list[Statement] = []
    declarations: dict[str, Declaration] = {}
    bound: set[str] = set()
    header, i = _header(tokens, src)
    while tokens[i].kind != "end":
        tok = tokens[i]
        if tok.text in ("\n", ";"):
            i += 1
            continue
        nxt = tokens[i + 1]
        if tok.kind == "name" and nxt.text == ":":
            _check_target(tok, src)
            if tok.text in declarations:
                raise src.error(f"'{tok.text}' is declared twice", tok.pos)
            decl, i = _declaration(tokens, i, src)
            declarations[decl.name] = decl
            continue
        name = None
        if tok.kind == "name" and nxt.kind == "op" and (nxt.text == "=" or nxt.text in _AUGMENTED):
            _check_target(tok, src)
            name = tok.text
            i += 2
        expr, i = _ExprParser(tokens, src, bound).parse(i)
        end = tokens[i]
        if end.text == "=" or end.text in _AUGMENTED:
            raise src.error("only a single name can be assigned to", end.pos)
        if name is not None and nxt.text in _AUGMENTED:
            expr = Call(_AUGMENTED[nxt.text], (Var(name, tok.pos), expr), nxt.pos)
        statements.append(Statement(name, expr, tok.pos))
        if name is not None:
            bound.add(name)
    if not statements:
        raise src.error("empty program: write an expression such as (x+y)*z", tokens[-1].pos)
    for st in statements:
        if st.name in declarations:
            d = declarations[st.name]
            raise src.error(
                f"'{st.name}' is declared as an input (line {d.pos[0]}) and cannot be assigned to",
                st.pos,
            )
    for st in statements[:-1]:
        if st.name is None:
            raise src.error(
                "this expression is not assigned to a name and is not the last statement,"
                " so it has no effect",
                st.pos,
            )
    return Program(tuple(statements), text, tuple(declarations.values()), header)


def _header(tokens: list[Token], src: _Source) -> tuple[tuple[tuple[str, Pos], ...], int]:
    """``(x, y) ->`` at the start: the inputs in parameter order; else nothing."""
    i = 0
    while tokens[i].text in ("\n", ";"):
        i += 1
    if tokens[i].text != "(":
        return (), 0
    j, names = i + 1, []
    while tokens[j].kind == "name" and tokens[j + 1].text in (",", ")"):
        names.append((tokens[j].text, tokens[j].pos))
        j += 2
        if tokens[j - 1].text == ")":
            break
    if not names or tokens[j - 1].text != ")" or tokens[j].text != "->":
        return (), 0  # an ordinary parenthesised expression
    seen: set[str] = set()
    for name, pos in names:
        if name in seen:
            raise src.error(f"'{name}' appears twice in the header", pos)
        if (name in FUNCTIONS and not FUNCTIONS[name].tensor) or keyword.iskeyword(name):
            raise src.error(f"'{name}' cannot be an input name", pos)
        seen.add(name)
    return tuple(names), j + 1


def _declaration(tokens: list[Token], i: int, src: _Source) -> tuple[Declaration, int]:
    """``name: (d1, d2) [int]`` at token i; returns it and the index after it."""
    name_tok = tokens[i]
    i += 2
    dims: list[int | str] = []
    tok = tokens[i]
    if tok.text == "(":
        i += 1
        while tokens[i].text != ")":
            t = tokens[i]
            if t.kind == "number" and t.text.isdigit() and int(t.text) > 0:
                dims.append(int(t.text))
            elif t.kind == "name" and not keyword.iskeyword(t.text):
                dims.append(t.text)
            else:
                raise src.error(
                    f"expected a dim (a positive integer or a name) but found {_describe(t)}",
                    t.pos,
                )
            i += 1
            if tokens[i].text == ",":
                i += 1
            elif tokens[i].text != ")":
                raise src.error(
                    f"expected ',' or ')' in the shape but found {_describe(tokens[i])}",
                    tokens[i].pos,
                )
        i += 1
        tok = tokens[i]
    elif tok.text not in ("int", "float"):
        raise src.error(
            f"expected a shape such as (N, D) or () after '{name_tok.text}:'"
            f" but found {_describe(tok)}",
            tok.pos,
        )
    dtype = "float"
    if tok.kind == "name" and tok.text in ("int", "float"):
        dtype = tok.text
        i += 1
    end = tokens[i]
    if end.text not in ("\n", ";") and end.kind != "end":
        raise src.error(f"expected the end of the declaration but found {_describe(end)}", end.pos)
    return Declaration(name_tok.text, tuple(dims), dtype, name_tok.pos), i


def _check_target(tok: Token, src: _Source) -> None:
    # The tensor functions (dot, sum, mean...) came after programs that bind these
    # words as names (the cs231n notes' `dot = w0*x0 + ...`): they may be bound, and
    # the name then means its value wherever no '(' follows it.
    if tok.text in FUNCTIONS and not FUNCTIONS[tok.text].tensor:
        raise src.error(f"'{tok.text}' is a function and cannot be assigned to", tok.pos)
    if keyword.iskeyword(tok.text):
        raise src.error(f"'{tok.text}' is reserved and cannot be assigned to", tok.pos)
