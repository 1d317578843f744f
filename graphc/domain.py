"""Domains for checks: where a claimed derivative should hold, and where to draw points.

A domain is written as text (``"x>0"``, ``"0<x<1"``, ``"x>=1, y<2"``, ``"x > y"``;
constraints separated by commas, ``;`` or ``and``) or as per-variable intervals in
Python (``{"x": (0, None)}``: open intervals, ``None`` for no bound). Text is read by
a small tokenizer here; each side of a comparison is an expression of graphc's own
language, read by :func:`graphc.parse` (never ``eval``), so bad text gives a
:class:`~graphc.errors.ParseError` with line, column and caret.

A comparison of one name with a number is an *interval* of that variable: random
points are drawn inside it and the symbolic proof assumes it (``x>0`` makes ``x`` a
positive symbol, ``x>2`` substitutes ``x = 2 + t`` with ``t`` positive). Any other
comparison (``x > y``) is a *relation*: points are drawn from the intervals and those
outside the relation are rejected; the proof does not use it.

>>> d = parse_domain("0 < x < 1, y >= 2")
>>> d.describe()
'0 < x < 1, 2 <= y'
>>> import numpy as np
>>> pts = d.sample(("x", "y"), 50, np.random.default_rng(0))
>>> bool(((pts["x"] > 0) & (pts["x"] < 1) & (pts["y"] >= 2)).all())
True
"""

from __future__ import annotations

import warnings
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import TYPE_CHECKING, Any

import numpy as np

from .errors import InputError, ParseError

if TYPE_CHECKING:
    from .graph import Graph

__all__ = ["Domain", "Interval", "Relation", "as_domain", "parse_domain"]

#: Half-width of the range drawn for a variable with no bound on a side.
SPREAD = 3.0
#: Points are rounded to this many decimals, so that a counterexample reads as drawn.
DECIMALS = 2
_LARGEST = float(np.finfo(np.float64).max)

_COMPARE = {"<": np.less, "<=": np.less_equal, ">": np.greater, ">=": np.greater_equal}
_FLIP = {"<": ">", "<=": ">=", ">": "<", ">=": "<="}


@dataclass(frozen=True)
class Interval:
    """Bounds of one variable (``None``: unbounded on that side)."""

    low: float | None = None
    high: float | None = None
    closed_low: bool = False
    closed_high: bool = False

    def sample(self, n: int, rng: np.random.Generator, name: str = "x") -> np.ndarray:
        """``n`` points inside the interval, rounded to :data:`DECIMALS` when that keeps
        them in; InputError where it holds no float64 number (``name`` for the message)."""
        lo, hi = self.low, self.high
        # a one-sided interval spans 2·SPREAD, or a millionth of its bound where that is
        # more (1e308 + 6 is 1e308), within float64's range
        if lo is None and hi is None:
            lo, hi = -SPREAD, SPREAD
        elif lo is None:
            lo = max(hi - max(2 * SPREAD, abs(hi) * 2**-20), -_LARGEST)  # type: ignore[operator]
        elif hi is None:
            hi = min(lo + max(2 * SPREAD, abs(lo) * 2**-20), _LARGEST)
        raw = rng.uniform(lo, hi, size=n)
        with np.errstate(over="ignore"):  # rounding 1.5e308 to 2 decimals overflows
            rounded = np.round(raw, DECIMALS)
        points = np.where(np.isfinite(rounded) & self.contains(rounded), rounded, raw)
        inside = self.contains(points) & np.isfinite(points)
        if not inside.all():  # an open interval at float64's edge: lo itself was drawn
            if not inside.any():
                raise InputError(f"the domain {self.text(name)} holds no float64 number to test")
            points = np.where(inside, points, points[inside][0])
        return points

    def contains(self, v: np.ndarray) -> np.ndarray:
        ok = np.ones(np.shape(v), dtype=bool)
        if self.low is not None:
            ok &= (v >= self.low) if self.closed_low else (v > self.low)
        if self.high is not None:
            ok &= (v <= self.high) if self.closed_high else (v < self.high)
        return ok

    def positive_shift(self) -> tuple[float, int] | None:
        """``(c, s)`` such that the interval lies in ``c + s·t`` for ``t > 0`` (or ≥ 0)."""
        if self.low is not None:
            return (self.low, 1)
        if self.high is not None:
            return (self.high, -1)
        return None

    def text(self, name: str) -> str:
        parts = []
        if self.low is not None:
            parts.append(f"{self.low:g} {'<=' if self.closed_low else '<'} ")
        parts.append(name)
        if self.high is not None:
            parts.append(f" {'<=' if self.closed_high else '<'} {self.high:g}")
        return "".join(parts)


@dataclass(frozen=True)
class Relation:
    """A comparison of two expressions that is not an interval (``x > y``)."""

    left: Graph
    op: str
    right: Graph
    text: str

    def holds(self, point: Mapping[str, np.ndarray], n: int) -> np.ndarray:
        with warnings.catch_warnings(), np.errstate(all="ignore"):
            warnings.simplefilter("ignore")
            a = _value(self.left, point, n)
            b = _value(self.right, point, n)
        return _COMPARE[self.op](a, b) & np.isfinite(a) & np.isfinite(b)


def _value(g: Graph, point: Mapping[str, np.ndarray], n: int) -> np.ndarray:
    from .autodiff import backward
    from .evaluate import evaluate

    forward_only = backward(g, wrt=())
    value = evaluate(g, {k: point[k] for k in g.inputs}, forward_only).value
    return np.broadcast_to(np.asarray(value, dtype=float), (n,))


@dataclass(frozen=True)
class Domain:
    """Where a check draws its points: intervals per variable and relations."""

    intervals: Mapping[str, Interval] = field(default_factory=dict)
    relations: tuple[Relation, ...] = ()
    text: str = ""

    @property
    def names(self) -> set[str]:
        """Every variable the domain mentions."""
        out = set(self.intervals)
        for r in self.relations:
            out |= set(r.left.inputs) | set(r.right.inputs)
        return out

    def check_names(self, inputs: Iterable[str], what: str = "an input of the expression"
                    ) -> None:  # fmt: skip
        """Raise InputError where the domain names a variable that is not one of
        ``inputs`` (``what`` says what they are)."""
        inputs = tuple(inputs)
        unknown = sorted(self.names - set(inputs))
        if unknown:
            raise InputError(
                f"the domain names {', '.join(unknown)}, not {what} (inputs: {', '.join(inputs)})"
            )

    def sample(self, names: Iterable[str], n: int, rng: np.random.Generator) -> dict[str, Any]:
        """``n`` points, one array per name, inside the domain (rejection for relations).

        Raises:
            InputError: when too few drawn points satisfy the relations.
        """
        names = tuple(names)
        unbounded = Interval()
        if not self.relations:
            return {k: self.intervals.get(k, unbounded).sample(n, rng, k) for k in names}
        kept: dict[str, list[np.ndarray]] = {k: [] for k in names}
        have = 0
        for _ in range(20):
            draw = {k: self.intervals.get(k, unbounded).sample(4 * n, rng, k) for k in names}
            mask = np.ones(4 * n, dtype=bool)
            for r in self.relations:
                mask &= r.holds(draw, 4 * n)
            for k in names:
                kept[k].append(draw[k][mask])
            have += int(mask.sum())
            if have >= n:
                break
        if have == 0:
            raise InputError(f"no random point satisfies the domain '{self.text}'")
        return {k: np.concatenate(v)[:n] for k, v in kept.items()}

    def describe(self) -> str:
        """The domain as text, normalized (``0 < x < 1, x > y``)."""
        parts = [iv.text(k) for k, iv in sorted(self.intervals.items())]
        parts += [r.text for r in self.relations]
        return ", ".join(parts)


def as_domain(domain: Domain | str | Mapping[str, Any] | None) -> Domain:
    """A :class:`Domain` from text, a ``{name: (low, high)}`` mapping, or ``None`` (everywhere)."""
    if domain is None:
        return Domain()
    if isinstance(domain, Domain):
        return domain
    if isinstance(domain, str):
        return parse_domain(domain)
    if isinstance(domain, Mapping):
        intervals = {}
        for name, bounds in domain.items():
            try:
                low, high = bounds
                low = None if low is None else float(low)
                high = None if high is None else float(high)
            except (TypeError, ValueError):
                raise InputError(
                    f"domain for '{name}': expected (low, high) with None for no bound, "
                    f"got {bounds!r}"
                ) from None
            if low is not None and high is not None and not low < high:
                raise InputError(f"domain for '{name}': empty interval ({low:g}, {high:g})")
            intervals[str(name)] = Interval(low, high)
        return Domain(MappingProxyType(intervals), (), repr(dict(domain)))
    raise InputError(f"domain: expected text or a mapping, got {type(domain).__name__}")


_CMP_TOKENS = ("<=", ">=", "==", "!=", "≤", "≥", "<", ">", "=")


def _at_word(text: str, i: int, word: str) -> bool:
    j = i + len(word)
    return (
        text.startswith(word, i)
        and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_"))
        and (j == len(text) or not (text[j].isalnum() or text[j] == "_"))
    )


def _tokens(text: str) -> list[tuple[str, str, int]]:
    """``(kind, text, column)`` tokens: ``cmp``, ``sep`` and ``expr`` chunks (1-based column)."""
    out: list[tuple[str, str, int]] = []
    i, start = 0, -1

    def flush(end: int) -> None:
        if start >= 0 and text[start:end].strip():
            chunk = text[start:end]
            lead = len(chunk) - len(chunk.lstrip())
            out.append(("expr", chunk.strip(), start + lead + 1))

    while i < len(text):
        cmp = next((c for c in _CMP_TOKENS if text.startswith(c, i)), None)
        if cmp is not None or text[i] in ",;" or _at_word(text, i, "and"):
            flush(i)
            start = -1
            tok = cmp or ("and" if _at_word(text, i, "and") else text[i])
            out.append(("cmp" if cmp else "sep", tok, i + 1))
            i += len(tok)
            continue
        if start < 0 and not text[i].isspace():
            start = i
        i += 1
    flush(len(text))
    return out


def _side(chunk: str, col: int, text: str) -> Graph:
    from .graph import parse

    try:
        return parse(chunk)
    except ParseError as e:
        raise ParseError(e.message, 1, col + e.column - 1, text) from None


def _constant(g: Graph) -> float | None:
    if g.inputs:
        return None
    return float(g.to_sympy())


def parse_domain(text: str) -> Domain:
    """Read domain text such as ``"x>0"``, ``"0<x<1"`` or ``"x>=1 and y<0, x>y"``.

    Raises:
        ParseError: for text that is not a list of comparisons (with the position).
    """
    if "\n" in text.strip():
        raise ParseError("a domain is one line of comparisons", 1, text.index("\n") + 1, text)
    tokens = _tokens(text)
    groups: list[list[tuple[str, str, int]]] = [[]]
    ends: list[int] = []  # column where each group ends (its separator, or the end)
    for tok in tokens:
        if tok[0] == "sep":
            ends.append(tok[2])
            groups.append([])
        else:
            groups[-1].append(tok)
    ends.append(len(text.rstrip()) + 1)
    intervals: dict[str, Interval] = {}
    relations: list[Relation] = []
    for group, end in zip(groups, ends, strict=True):
        if not group:
            raise ParseError("expected a comparison such as x > 0", 1, end, text)
        _chain(group, text, intervals, relations)
    return Domain(MappingProxyType(intervals), tuple(relations), text.strip())


def _chain(
    group: list[tuple[str, str, int]],
    text: str,
    intervals: dict[str, Interval],
    relations: list[Relation],
) -> None:
    """One chained comparison ``a < b <= c``: alternating expressions and comparisons."""
    for k, (kind, tok, col) in enumerate(group):
        want = "expr" if k % 2 == 0 else "cmp"
        if kind != want:
            what = "an expression" if want == "expr" else "a comparison (<, <=, >, >=)"
            raise ParseError(f"expected {what}, found '{tok}'", 1, col, text)
        if kind == "cmp" and tok not in _COMPARE and tok not in ("≤", "≥"):
            raise ParseError(
                f"'{tok}' is not allowed in a domain: use <, <=, > or >=", 1, col, text
            )
    if len(group) < 3 or len(group) % 2 == 0:
        col = group[-1][2] + len(group[-1][1])
        raise ParseError("incomplete comparison: expected NAME > NUMBER", 1, col, text)
    sides = [_side(tok, col, text) for kind, tok, col in group[::2]]
    ops = [{"≤": "<=", "≥": ">="}.get(tok, tok) for _, tok, _ in group[1::2]]
    for i, op in enumerate(ops):
        _add_comparison(sides[i], op, sides[i + 1], group, i, text, intervals, relations)


def _add_comparison(
    left: Graph,
    op: str,
    right: Graph,
    group: list[tuple[str, str, int]],
    i: int,
    text: str,
    intervals: dict[str, Interval],
    relations: list[Relation],
) -> None:
    lc, rc = _constant(left), _constant(right)
    if lc is not None and rc is not None:
        raise ParseError("a comparison needs a variable", 1, group[2 * i][2], text)
    if rc is not None and _single_name(left):
        name, bound, op_ = left.inputs[0], rc, op
    elif lc is not None and _single_name(right):
        name, bound, op_ = right.inputs[0], lc, _FLIP[op]
    else:
        relations.append(Relation(left, op, right, f"{group[2 * i][1]} {op} {group[2 * i + 2][1]}"))
        return
    if not np.isfinite(bound):
        raise ParseError("a bound must be a finite number", 1, group[2 * i][2], text)
    old = intervals.get(name, Interval())
    closed = op_ in ("<=", ">=")
    if op_ in (">", ">="):
        if old.low is None or bound >= old.low:
            old = Interval(bound, old.high, closed, old.closed_high)
    elif old.high is None or bound <= old.high:
        old = Interval(old.low, bound, old.closed_low, closed)
    if old.low is not None and old.high is not None and old.low >= old.high:
        raise ParseError(f"the domain of '{name}' is empty", 1, group[2 * i][2], text)
    intervals[name] = old


def _single_name(g: Graph) -> bool:
    return len(g.inputs) == 1 and g.output == g.inputs[0]
