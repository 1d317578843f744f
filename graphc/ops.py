"""The op table: the only module that knows individual ops.

Each op is one :class:`Op` row: its arity, its SymPy forward rule, one local partial
derivative per argument, its NumPy and ``math`` lowerings, its display symbol and its
LaTeX. Every layer (parser, differentiation, evaluation, code generation, rendering)
reads this table; adding an op is adding one row.

Partial derivatives are written once, over an *algebra* ``F``: a rule receives ``F``,
the gate's output and its arguments, and combines them with ``+ - * / **`` and with
``F.<op>(...)``. The same rule then builds a SymPy expression (``F`` = :data:`SYMPY`)
or new gates of a gradient graph (``F`` = the graph builder of :mod:`graphc.autodiff`),
which is why the gradient is "just another graph". Rules may use the output, as JAX's
do: ``exp' = out``, ``sigmoid' = out * (1 - out)``, ``tanh' = 1 - out**2``.

Nothing here assumes scalars: lowerings are NumPy ufuncs that broadcast, and a later
op with shapes (matmul, reductions) adds a row with its own rules.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import sympy as sp

from . import shapes as S  # noqa: N812  (S.broadcast, S.fmt read as math)
from .errors import GraphcError
from .shapes import Shape

__all__ = ["BINARY", "FUNCTIONS", "HELPERS", "OPS", "SYMPY", "Op", "numpy_callable", "op"]


# --- SymPy functions that SymPy lacks -------------------------------------------------


class sigmoid(sp.Function):  # noqa: N801 - SymPy functions are lower case
    """The logistic function 1/(1+exp(-x)), kept whole so that it prints as σ(x)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        s = sigmoid(self.args[0])
        return s * (1 - s)

    @classmethod
    def eval(cls, x: sp.Expr) -> sp.Expr | None:
        if x.is_zero:
            return sp.Rational(1, 2)
        return None

    def _eval_rewrite_as_exp(self, x: sp.Expr, **kwargs: Any) -> sp.Expr:
        return 1 / (1 + sp.exp(-x))

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return (1 / (1 + sp.exp(-self.args[0])))._eval_evalf(prec)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real

    def _eval_is_positive(self) -> bool | None:
        return True if self.args[0].is_real else None

    def _latex(self, printer: Any) -> str:
        return rf"\sigma\left({printer._print(self.args[0])}\right)"

    def _pretty(self, printer: Any) -> Any:
        return printer._print_Function(self, func_name="σ")


class softplus(sp.Function):  # noqa: N801
    """log(1 + exp(x)), kept whole so that it prints as softplus(x)."""

    nargs = 1

    def fdiff(self, argindex: int = 1) -> sp.Expr:
        return sigmoid(self.args[0])

    def _eval_rewrite_as_exp(self, x: sp.Expr, **kwargs: Any) -> sp.Expr:
        return sp.log(1 + sp.exp(x))

    _eval_rewrite_as_log = _eval_rewrite_as_exp

    def _eval_evalf(self, prec: int) -> sp.Expr | None:
        z = self.args[0].evalf(15)
        if z.is_number and z.is_real is False and abs(sp.re(z)) > 10**6:
            # mpmath's exp of a complex number this far from 0 (-1e400 + (-8)^(1/3))
            # works through exact powers: printing a docstring with it took 22 s
            return None  # no number, as for a symbol
        try:
            return sp.log(1 + sp.exp(self.args[0]))._eval_evalf(prec)
        except OverflowError:  # mpmath's log of 1 + exp(-1e400 + 1.7j) overflows its
            return None  # integers: no number, as for a symbol (SymPy asks while printing)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real


# --- Helpers of the tensor ops --------------------------------------------------------
# Each is the cs231n assignments' vectorised code for one layer, stable by construction
# (scores shifted by their maximum before exp).

_TENSOR_SOURCE = '''
def _logsumexp(s, axis=None, keepdims=False):
    """log(sum(exp(s))) over axis, from s - max(s): no overflow for large scores."""
    m = np.max(s, axis=axis, keepdims=True)
    m = np.where(np.isfinite(m), m, 0.0)
    with np.errstate(under="ignore", divide="ignore"):
        out = np.log(np.sum(np.exp(s - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


def _softmax(s, axis=-1):
    """exp(s) / sum(exp(s)) over axis, from s - max(s): no overflow for large scores."""
    m = np.max(s, axis=axis, keepdims=True)
    with np.errstate(under="ignore", invalid="ignore"):  # all -inf: 0/0, NaN (as JAX's)
        e = np.exp(s - np.where(np.isfinite(m), m, 0.0))
        return e / np.sum(e, axis=axis, keepdims=True)


def _log_softmax(s, axis=-1):
    """s - logsumexp(s) over axis, from s - max(s): no overflow for large scores."""
    m = np.max(s, axis=axis, keepdims=True)
    t = s - np.where(np.isfinite(m), m, 0.0)
    with np.errstate(under="ignore", divide="ignore"):
        return t - np.log(np.sum(np.exp(t), axis=axis, keepdims=True))


def _labels(y, classes):
    """y, where every label is a class, 0 to classes - 1: a label -1 would pick the last
    class (NumPy's negative index) and one past the end fail far from here."""
    if np.size(y) and (np.min(y) < 0 or np.max(y) >= classes):
        bad = np.asarray(y)[(np.asarray(y) < 0) | (np.asarray(y) >= classes)].flat[0]
        raise ValueError(f"label {bad} is not a class: the labels are 0 to {classes - 1}")
    return y


def _pick(s, y, keepdims=False):
    """s[i, y[i]] for every row i: the score each integer label picks."""
    y = _labels(y, np.shape(s)[-1])
    out = np.take_along_axis(s, np.expand_dims(y, -1), axis=-1)
    return out if keepdims else out[..., 0]


def _unpick(g, s, y, keepdims=False):
    """Gradient of _pick: g at each row's labelled entry, zeros elsewhere."""
    out = np.zeros(np.shape(s), dtype=np.result_type(g, s))
    g = g if keepdims else np.expand_dims(g, -1)
    np.put_along_axis(out, np.expand_dims(_labels(y, out.shape[-1]), -1), g, axis=-1)
    return out


def _one_hot(y, depth):
    """Rows of zeros with a 1 at each integer label."""
    return (np.expand_dims(_labels(y, depth), -1) == np.arange(depth)).astype(np.float64)


def _expand(g, like, axis=None, keepdims=False, mean=False):
    """Gradient of a sum (or mean) of like over axis: g spread back over those axes."""
    shape = np.shape(like)
    axes = tuple(range(len(shape))) if axis is None else tuple(
        a % len(shape) for a in (axis if isinstance(axis, tuple) else (axis,)))
    if axis is not None and not keepdims:
        g = np.expand_dims(g, axes)
    if mean:
        n = np.prod([shape[a] for a in axes])
        if n:  # an empty axis: the result is empty, and 1/0 would only warn
            g = g / n
    return np.broadcast_to(g, shape)


def _max_mask(x, m, axis=None, keepdims=False):
    """1/k where x equals its slice's maximum m (k ties share the gradient), else 0."""
    if axis is not None and not keepdims:
        m = np.expand_dims(m, axis)
    hit = (x == m).astype(np.result_type(x, 0.5))
    with np.errstate(invalid="ignore"):  # m NaN: no hit, 0/0, NaN (as m)
        return hit / np.sum(hit, axis=axis, keepdims=True)


def _sumsq(x):
    """sum(x**2) without the temporary x**2 (a BLAS dot product)."""
    x = np.asarray(x)
    return np.vdot(x, x) if x.dtype.kind == "f" else np.sum(x * x)


def _softmax_ce(s, y):
    """Mean over rows of -log softmax(s)[y]: the softmax classifier's loss."""
    return np.mean(_logsumexp(s, axis=-1) - _pick(s, y))


def _softmax_ce_grad(s, y, g):
    """Gradient of _softmax_ce times g: (softmax(s) - one_hot(y)) * g / N."""
    p = _softmax(s, axis=-1)
    y = _labels(y, p.shape[-1])
    if p.ndim == 1:
        p[y] -= 1.0
        return p * g
    p[np.arange(p.shape[0]), y] -= 1.0
    if p.shape[0]:  # an empty batch: no rows to scale (and 1/0 would raise)
        p *= g / p.shape[0]
    return p
'''


def _split_helpers(source: str) -> dict[str, str]:
    """``{name: source}`` of each top-level ``def`` in ``source``."""
    out: dict[str, str] = {}
    for chunk in source.strip("\n").split("\n\n\n"):
        name = chunk.partition("def ")[2].partition("(")[0]
        out[name] = chunk + "\n"
    return out


_TENSOR_HELPERS = _split_helpers(_TENSOR_SOURCE)


# --- Helpers that generated code carries with it --------------------------------------

#: Source of the small functions that lowerings call, per target. Generated modules
#: copy the ones they use, so that they run without graphc installed.
HELPERS: Mapping[str, Mapping[str, str]] = MappingProxyType(
    {
        "numpy": MappingProxyType(
            {
                "_sigmoid": (
                    "def _sigmoid(x, out=None):\n"
                    '    """Logistic function; exp(-x) may overflow to inf, giving exactly 0."""\n'
                    '    with np.errstate(over="ignore", under="ignore"):\n'
                    "        t = np.negative(x, out=out)\n"
                    "        if type(t) is not np.ndarray:\n"
                    "            return 1.0 / (1.0 + np.exp(t))\n"
                    "        np.exp(t, out=t)  # one buffer for the four steps\n"
                    "        t += 1.0\n"
                    "        return np.divide(1.0, t, out=t)\n"
                ),
                "_logaddexp": (
                    "def _logaddexp(a, b, out=None):\n"
                    '    """log(exp(a) + exp(b)); exp of a large negative underflows to 0."""\n'
                    '    with np.errstate(under="ignore"):\n'
                    "        return np.logaddexp(a, b, out=out)\n"
                ),
                "_above": (
                    "def _above(a, b, out=None):\n"
                    '    """1 where a > b, 0.5 where a == b, 0 where a < b, NaN where either is\n'
                    '    NaN: heaviside(a - b, 0.5) from comparisons (max\'s derivative)."""\n'
                    "    half = np.equal(a, b) * 0.5  # (a, b read before out, which may be one)\n"
                    "    nan = np.isnan(a) | np.isnan(b)\n"
                    "    if out is None:\n"
                    "        out = np.empty(half.shape, dtype=np.result_type(a, b, 0.5))\n"
                    "    np.greater(a, b, out=out)\n"
                    "    out += half\n"
                    "    np.copyto(out, np.nan, where=nan)\n"
                    "    return out if out.ndim else out[()]\n"
                ),
                "_xlogy": (
                    "def _xlogy(x, y, out=None):\n"
                    '    """x * log(y), and 0 where x is 0 and y is not NaN (as scipy\'s)."""\n'
                    "    # log(1) = 0 there, and where x is NaN (NaN anyway): no log(0) warning\n"
                    "    y = np.where(((x == 0.0) & (y == y)) | (x != x), 1.0, y)\n"
                    "    return np.multiply(x, np.log(y), out=out)\n"
                ),
                "_step": (
                    "def _step(x, out=None):\n"
                    '    """1.0 where x > 0, else 0.0 (relu\'s derivative): a comparison."""\n'
                    "    if out is None:\n"
                    "        out = np.empty(np.shape(x), dtype=np.result_type(x, 0.5))\n"
                    "    return np.greater(x, 0.0, out=out)\n"
                ),
                **_TENSOR_HELPERS,
            }
        ),
        "math": MappingProxyType(
            {
                "_sigmoid": (
                    "def _sigmoid(x):\n"
                    '    """Logistic function, stable for large |x|."""\n'
                    "    if x >= 0.0:\n"
                    "        return 1.0 / (1.0 + math.exp(-x))\n"
                    "    e = math.exp(x)\n"
                    "    return e / (1.0 + e)\n"
                ),
                "_softplus": (
                    "def _softplus(x):\n"
                    '    """log(1 + exp(x)), stable for large |x|."""\n'
                    "    return max(x, 0.0) + math.log1p(math.exp(-abs(x)))\n"
                ),
                "_logaddexp": (
                    "def _logaddexp(a, b):\n"
                    '    """log(exp(a) + exp(b)), stable for large |a|, |b|."""\n'
                    "    m = max(a, b)\n"
                    "    if m in (math.inf, -math.inf) and a == a and b == b:  # no NaN\n"
                    "        return m\n"
                    "    return m + math.log1p(math.exp(-abs(a - b)))\n"
                ),
                "_max": (
                    "def _max(a, b):\n"
                    '    """The larger of a and b; NaN if either is NaN, as np.maximum."""\n'
                    "    return a if a > b else (b if b >= a else a + b)\n"
                ),
                "_min": (
                    "def _min(a, b):\n"
                    '    """The smaller of a and b; NaN if either is NaN, as np.minimum."""\n'
                    "    return a if a < b else (b if b <= a else a + b)\n"
                ),
                "_heaviside": (
                    "def _heaviside(x, h0):\n"
                    '    """Step function: 0 below 0, h0 at 0, 1 above; NaN at NaN."""\n'
                    "    return 1.0 if x > 0.0 else (h0 if x == 0.0 else (0.0 if x < 0.0 else x))\n"
                ),
                "_above": (
                    "def _above(a, b):\n"
                    '    """1 where a > b, 0.5 where a == b, 0 where a < b, NaN where either is\n'
                    '    NaN: heaviside(a - b, 0.5) from comparisons (max\'s derivative)."""\n'
                    "    return 1.0 if a > b else (0.5 if a == b else (0.0 if a < b else a + b))\n"
                ),
                "_xlogy": (
                    "def _xlogy(x, y):\n"
                    '    """x * log(y), and 0 where x is 0 and y is not NaN (as scipy\'s)."""\n'
                    "    if x != x or (x == 0.0 and y == y):\n"
                    "        return x * 1.0  # NaN, or 0.0 with x's sign\n"
                    "    return x * math.log(y)\n"
                ),
                "_sign": (
                    "def _sign(x):\n"
                    '    """Sign of x, 0.0 at 0, NaN at NaN, as np.sign."""\n'
                    "    return 1.0 if x > 0.0 else (-1.0 if x < 0.0 else x - x)  # 0.0 or NaN\n"
                ),
            }
        ),
    }
)

Rule = Callable[..., Any]
#: An attribute that has no default: the user must give it (``one_hot(y, C)``).
REQUIRED = "<required>"
_NO_ATTRS: Mapping[str, Any] = MappingProxyType({})


def _attr_text(value: Any) -> str:
    """An attribute as generated code writes it: numbers, booleans, None, dim names."""
    if isinstance(value, tuple):
        inner = ", ".join(_attr_text(v) for v in value)
        return f"({inner},)" if len(value) == 1 else f"({inner})"
    return value if isinstance(value, str) else repr(value)


@dataclass(frozen=True)
class Op:
    """One row of the op table.

    Attributes:
        name: identifier used in node data (``"mul"``).
        arity: number of arguments.
        sympy: forward rule on SymPy arguments.
        partials: one rule per argument, ``rule(F, out, *args)``, giving ∂out/∂arg.
        numpy: NumPy lowering, a ``str.format`` template over the argument
            expressions (``"np.exp({0})"``); helpers it calls are in :data:`HELPERS`.
        math: lowering for Python floats on the ``math`` module.
        symbol: how a diagram draws the gate (``"×"``, ``"σ"``).
        latex: LaTeX template over the arguments' LaTeX.
        infix: precedence when printed infix (0 = printed as a call ``name(...)``).
        function: the name users call it by (``"exp"``), or ``None`` for operators
            and ops only graphc writes.
        simplify: ``simplify(consts) -> rewrite or None``; ``consts`` has the
            arguments' constant values (``None`` where not constant). A rewrite is
            ``("arg", i)`` (the gate equals argument i), ``("const", value)`` or
            ``("op", name, (i, ...))`` (the gate equals op ``name`` of those arguments).
            Used when graphc builds gates itself (gradient graphs), never on user text,
            and consulted only when some argument is constant (rules keyed on
            constants: the builder's hot path skips the call otherwise).
        commutative: whether the arguments may be swapped (labels ``+1``, ``*2``).
        folded: per argument, how a diagram labels the gate when that argument is a
            constant ``{c}`` and is drawn inside the gate (``"+{c}"``, ``"1/x"``), as
            the cs231n notes draw ``+1`` and ``*2``; empty: the constant is drawn.
        helpers: helper functions (by name) the lowerings call, per target.
        domain: per argument, an interval ``(low, high)`` of test points where the
            op is smooth, for the table-driven tests.
    """

    name: str
    arity: int
    sympy: Rule
    partials: tuple[Rule, ...]
    numpy: str
    math: str
    symbol: str
    latex: str
    infix: int = 0
    function: str | None = None
    simplify: Callable[[tuple[Any, ...]], tuple[Any, ...] | None] = field(
        default=lambda consts: None
    )
    commutative: bool = False
    domain: tuple[tuple[float, float], ...] = ()
    folded: tuple[str, ...] = ()
    attrs: tuple[tuple[str, Any], ...] = ()
    shape: Callable[..., Shape] | None = None
    vjps: tuple[Rule | None, ...] | None = None
    tensor: bool = False
    labels: tuple[int, ...] = ()
    positional: int = 0

    def helpers(self, target: str) -> tuple[str, ...]:
        """Names of the helper functions this op's lowering calls on ``target``,
        with the helpers those call."""
        text = self.numpy if target == "numpy" else self.math
        found: list[str] = []
        while True:
            new = [h for h in HELPERS[target] if h + "(" in text and h not in found]
            if not new:
                return tuple(h for h in HELPERS[target] if h in found)
            found += new
            text = "".join(HELPERS[target][h] for h in new)

    def lower(self, target: str, args: Sequence[str], attrs: Mapping[str, Any] = _NO_ATTRS) -> str:
        """The lowering on ``target`` of this op applied to argument texts ``args``.

        Attributes that differ from their defaults are written as keyword arguments
        (``np.sum(x, axis=0)``); an op's first ``positional`` attributes go in by name
        (``_one_hot(y, 10)``).
        """
        template = self.numpy if target == "numpy" else self.math
        if not self.attrs:
            return template.format(*args)
        given = dict(self.attrs)
        given.update(attrs)
        named = {k: _attr_text(v) for k, v in given.items()}
        kw = "".join(
            f", {k}={named[k]}"
            for k, default in self.attrs[self.positional :]
            if given[k] != default
        )
        return template.format(*args, kw=kw, **named)

    def called(self) -> str | None:
        """The function name a user writes for this op (``max`` for ``amax``), or None."""
        if self.function is not None:
            return self.function
        return next((f for f, op in REDUCTIONS.items() if op == self.name), None)

    def attr_dict(self, attrs: Iterable[tuple[str, Any]] = ()) -> dict[str, Any]:
        """Every attribute of the op: the given ones, the defaults for the rest."""
        out = dict(self.attrs)
        out.update(attrs)
        return out


class _SympyAlgebra:
    """The algebra ``F`` that makes partial rules build SymPy expressions."""

    def __getattr__(self, name: str) -> Callable[..., sp.Expr]:
        if name not in OPS:
            raise AttributeError(name)
        return OPS[name].sympy

    @staticmethod
    def is_const(value: Any, const: Any) -> bool:
        return bool(sp.sympify(value) == const)


#: Partial rules applied to SymPy arguments give SymPy expressions.
SYMPY = _SympyAlgebra()


#: SymPy's 0, 1 and -1 are singletons: a constant equal to one of them is that object.
_SINGLETONS = {0: sp.S.Zero, 1: sp.S.One, -1: sp.S.NegativeOne}


def _is(v: Any, c: Any) -> bool:
    if v is None:
        return False
    if isinstance(v, sp.Basic) and c in _SINGLETONS:
        return v is _SINGLETONS[c]  # no sympify of c per comparison: graph building's hot path
    return bool(v == c)


def _simplify_add(k: tuple[Any, ...]) -> tuple[Any, ...] | None:
    if _is(k[0], 0):
        return ("arg", 1)
    if _is(k[1], 0):
        return ("arg", 0)
    return None


def _simplify_sub(k: tuple[Any, ...]) -> tuple[Any, ...] | None:
    if _is(k[1], 0):
        return ("arg", 0)
    if _is(k[0], 0):
        return ("op", "neg", (1,))
    return None


#: Rewrites above that hold in IEEE arithmetic except for the sign of a zero result
#: (-0 + 0 is +0, not -0; 0 - (+0) is +0, not -0): skipped where IEEE results count,
#: since 1/x and log(x) then differ (``1/(0 - x)`` at x = 0 is +inf, ``1/(-x)`` -inf).
SIGNED_ZERO: Mapping[str, tuple[tuple[Any, ...], ...]] = MappingProxyType(
    {"add": (("arg", 0), ("arg", 1)), "sub": (("op", "neg", (1,)),)}
)


def _simplify_mul(k: tuple[Any, ...]) -> tuple[Any, ...] | None:
    for i in (0, 1):
        if _is(k[i], 0):
            return ("const", sp.Integer(0))
        if _is(k[i], 1):
            return ("arg", 1 - i)
        if _is(k[i], -1):
            return ("op", "neg", (1 - i,))
    return None


def _simplify_div(k: tuple[Any, ...]) -> tuple[Any, ...] | None:
    if _is(k[1], 1):
        return ("arg", 0)
    if _is(k[0], 0):
        return ("const", sp.Integer(0))
    return None


def _simplify_pow(k: tuple[Any, ...]) -> tuple[Any, ...] | None:
    if _is(k[1], 1):
        return ("arg", 0)
    if _is(k[1], 0):
        return ("const", sp.Integer(1))
    return None


def _zero(F: Any, out: Any, *args: Any) -> Any:
    return 0


_R = (-3.0, 3.0)
_POS = (0.2, 3.0)

_ROWS = (
    # operators -------------------------------------------------------------------
    Op("add", 2, lambda a, b: a + b, (lambda F, o, a, b: 1, lambda F, o, a, b: 1),
       "{0} + {1}", "{0} + {1}", "+", "{0} + {1}", infix=1,
       simplify=_simplify_add, commutative=True, domain=(_R, _R), folded=("+{c}", "+{c}")),
    Op("sub", 2, lambda a, b: a - b, (lambda F, o, a, b: 1, lambda F, o, a, b: -1),
       "{0} - {1}", "{0} - {1}", "−", "{0} - {1}", infix=1,
       simplify=_simplify_sub, domain=(_R, _R), folded=("{c}−x", "−{c}")),
    Op("mul", 2, lambda a, b: a * b, (lambda F, o, a, b: b, lambda F, o, a, b: a),
       "{0} * {1}", "{0} * {1}", "×", r"{0} \cdot {1}", infix=2,
       simplify=_simplify_mul, commutative=True, domain=(_R, _R), folded=("*{c}", "*{c}")),
    # (1/b)' = -out**2, the notes' rule, when the numerator is the constant 1.
    Op("div", 2, lambda a, b: a / b,
       (lambda F, o, a, b: 1 / b,
        lambda F, o, a, b: -(o * o) if F.is_const(a, 1) else -o / b),
       "{0} / {1}", "{0} / {1}", "÷", r"\frac{{{0}}}{{{1}}}", infix=2,
       simplify=_simplify_div, domain=(_R, _POS), folded=("{c}/x", "/{c}")),
    Op("pow", 2, lambda a, b: a**b,
       (lambda F, o, a, b: b * a ** (b - 1), lambda F, o, a, b: F.xlogy(o, a)),
       "{0} ** {1}", "math.pow({0}, {1})", "^", "{{{0}}}^{{{1}}}", infix=4,
       simplify=_simplify_pow, domain=(_POS, _R), folded=("{c}^x", "^{c}")),
    Op("neg", 1, lambda a: -a, (lambda F, o, a: -1,),
       "-{0}", "-{0}", "*-1", "-{0}", infix=3, domain=(_R,)),
    # functions -------------------------------------------------------------------
    Op("exp", 1, sp.exp, (lambda F, o, a: o,),
       "np.exp({0})", "math.exp({0})", "exp", r"e^{{{0}}}", function="exp", domain=(_R,)),
    Op("log", 1, sp.log, (lambda F, o, a: 1 / a,),
       "np.log({0})", "math.log({0})", "log", r"\log\left({0}\right)", function="log",
       domain=(_POS,)),
    Op("sqrt", 1, sp.sqrt, (lambda F, o, a: 1 / (2 * o),),
       "np.sqrt({0})", "math.sqrt({0})", "√", r"\sqrt{{{0}}}", function="sqrt",
       domain=(_POS,)),
    Op("sin", 1, sp.sin, (lambda F, o, a: F.cos(a),),
       "np.sin({0})", "math.sin({0})", "sin", r"\sin\left({0}\right)", function="sin",
       domain=(_R,)),
    Op("cos", 1, sp.cos, (lambda F, o, a: -F.sin(a),),
       "np.cos({0})", "math.cos({0})", "cos", r"\cos\left({0}\right)", function="cos",
       domain=(_R,)),
    Op("tan", 1, sp.tan, (lambda F, o, a: 1 + o * o,),
       "np.tan({0})", "math.tan({0})", "tan", r"\tan\left({0}\right)", function="tan",
       domain=((-1.2, 1.2),)),
    Op("tanh", 1, sp.tanh, (lambda F, o, a: 1 - o * o,),
       "np.tanh({0})", "math.tanh({0})", "tanh", r"\tanh\left({0}\right)", function="tanh",
       domain=(_R,)),
    Op("sigmoid", 1, sigmoid, (lambda F, o, a: o * (1 - o),),
       "_sigmoid({0})", "_sigmoid({0})", "σ", r"\sigma\left({0}\right)", function="sigmoid",
       domain=(_R,)),
    Op("relu", 1, lambda a: sp.Max(a, 0), (lambda F, o, a: F.step(a),),
       "np.maximum({0}, 0.0)", "_max({0}, 0.0)", "relu", r"\mathrm{{relu}}\left({0}\right)",
       function="relu", domain=((0.2, 3.0),)),
    Op("softplus", 1, softplus, (lambda F, o, a: F.sigmoid(a),),
       "_logaddexp(0.0, {0})", "_softplus({0})", "softplus",
       r"\mathrm{{softplus}}\left({0}\right)", function="softplus", domain=(_R,)),
    Op("abs", 1, sp.Abs, (lambda F, o, a: F.sign(a),),
       "np.abs({0})", "abs({0})", "abs", r"\left|{0}\right|", function="abs",
       domain=((0.2, 3.0),)),
    # max and min split the gradient evenly at a tie, as JAX and PyTorch do.
    Op("max", 2, sp.Max,
       (lambda F, o, a, b: F.above(a, b), lambda F, o, a, b: F.above(b, a)),
       "np.maximum({0}, {1})", "_max({0}, {1})", "max", r"\max\left({0}, {1}\right)",
       function="max", commutative=True, domain=((0.5, 3.0), (-3.0, 0.0)),
       folded=("max {c}", "max {c}")),
    Op("min", 2, sp.Min,
       (lambda F, o, a, b: F.above(b, a), lambda F, o, a, b: F.above(a, b)),
       "np.minimum({0}, {1})", "_min({0}, {1})", "min", r"\min\left({0}, {1}\right)",
       function="min", commutative=True, domain=((0.5, 3.0), (-3.0, 0.0)),
       folded=("min {c}", "min {c}")),
    Op("logaddexp", 2, lambda a, b: sp.log(sp.exp(a) + sp.exp(b)),
       (lambda F, o, a, b: F.sigmoid(a - b), lambda F, o, a, b: F.sigmoid(b - a)),
       "_logaddexp({0}, {1})", "_logaddexp({0}, {1})", "logaddexp",
       r"\log\left(e^{{{0}}} + e^{{{1}}}\right)", function="logaddexp",
       domain=(_R, _R)),
    # ops graphc writes in gradients (users may call them too) ----------------------
    Op("heaviside", 2, sp.Heaviside, (_zero, _zero),
       "np.heaviside({0}, {1})", "_heaviside({0}, {1})", "H", r"H\left({0}\right)",
       function="heaviside", domain=((0.2, 3.0), (0.0, 1.0))),
    # max's and min's derivatives: H(a - b) with H(0) = 1/2, from comparisons (a - b
    # overflows for values past 1e308, and is NaN at a = b = inf, a tie)
    Op("above", 2, lambda a, b: sp.Heaviside(a - b, sp.Rational(1, 2)), (_zero, _zero),
       "_above({0}, {1})", "_above({0}, {1})", "H", r"H\left({0} - {1}\right)",
       function="above", domain=((0.5, 3.0), (-3.0, 0.0))),
    # relu's derivative: H(x) with H(0) = 0, a comparison written into a float array
    # (np.heaviside is ~15x slower)
    Op("step", 1, lambda a: sp.Heaviside(a, 0), (_zero,),
       "_step({0})", "float({0} > 0.0)", "H", r"H\left({0}\right)",
       function="step", domain=((0.2, 3.0),)),
    # x^y's gradient for y: x^y log(x), 0 where x^y is 0 (x = 0), as JAX and PyTorch
    # give (x^y log x -> 0 as x -> 0), not 0 * log(0) = NaN with a RuntimeWarning.
    Op("xlogy", 2, lambda a, b: a * sp.log(b),
       (lambda F, o, a, b: F.log(b), lambda F, o, a, b: a / b),
       "_xlogy({0}, {1})", "_xlogy({0}, {1})", "xlogy", r"{0} \log\left({1}\right)",
       function="xlogy", domain=(_R, _POS)),
    Op("sign", 1, sp.sign, (_zero,),
       "np.sign({0})", "_sign({0})", "sign", r"\operatorname{{sign}}\left({0}\right)",
       function="sign", domain=((0.2, 3.0),)),
)  # fmt: skip


# --- Tensor ops ---------------------------------------------------------------------
# Each row states its shape rule and, per argument, its vector-Jacobian product
# ``vjp(F, g, out, *args, **attrs)``: the contribution of the upstream gradient ``g``
# to ∂f/∂argument (``None``: labels, not differentiated). Elementwise rows above need
# no VJP: theirs is upstream × local, summed back over broadcast axes.

_AXIS = (("axis", None), ("keepdims", False))


def _obj(a: Any) -> Any:
    return np.asarray(a, dtype=object) if isinstance(a, np.ndarray) else a


def _obj_reduce(a: Any, axis: Any, keepdims: bool, fn: Callable[..., Any]) -> Any:
    """Reduce an object array of SymPy expressions with ``fn(*entries)``."""
    a = np.asarray(a, dtype=object)
    axes = S.norm_axes(axis, a.ndim)
    rest = [i for i in range(a.ndim) if i not in axes]
    moved = np.transpose(a, rest + list(axes))
    flat = moved.reshape([a.shape[i] for i in rest] + [-1])
    out = np.empty(flat.shape[:-1], dtype=object)
    for idx in np.ndindex(out.shape):
        out[idx] = fn(*flat[idx])
    if keepdims:
        out = out.reshape([1 if i in axes else n for i, n in enumerate(a.shape)])
    return out[()] if out.ndim == 0 else out


def _sym_sum(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return _obj_reduce(a, axis, keepdims, lambda *v: sp.Add(*v))


def _sym_mean(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    n = math.prod(np.shape(a)[i] for i in S.norm_axes(axis, np.ndim(a)))
    return _obj_reduce(a, axis, keepdims, lambda *v: sp.Add(*v) / n)


def _sym_logsumexp(a: Any, axis: Any = None, keepdims: bool = False) -> Any:
    return _obj_reduce(a, axis, keepdims, lambda *v: sp.log(sp.Add(*(sp.exp(t) for t in v))))


def _sym_softmax(a: Any, axis: Any = -1) -> Any:
    e = np.vectorize(sp.exp, otypes=[object])(_obj(a))
    return e / _sym_sum(e, axis, True)


def _sym_log_softmax(a: Any, axis: Any = -1) -> Any:
    return _obj(a) - _sym_logsumexp(a, axis, True)


def _sym_pick(s: Any, y: Any, keepdims: bool = False) -> Any:
    out = np.take_along_axis(_obj(s), np.expand_dims(np.asarray(y), -1), axis=-1)
    out = out if keepdims else out[..., 0]
    return out[()] if out.ndim == 0 else out


def _sym_one_hot(y: Any, depth: int) -> Any:
    return (np.expand_dims(np.asarray(y), -1) == np.arange(depth)).astype(int).astype(object)


def _sym_outer(a: Any, b: Any) -> Any:
    return np.multiply.outer(_obj(a), _obj(b))


def _sym_matmul(a: Any, b: Any) -> Any:
    out = _obj(a) @ _obj(b)
    return out[()] if isinstance(out, np.ndarray) and out.ndim == 0 else out


def _expand_vjp(F: Any, G: Any, o: Any, g: Any, like: Any, axis: Any, keepdims: bool,
                mean: bool) -> Any:  # fmt: skip
    """The VJP of expand(g, like) for g: the sum (or mean) over the axes it spread g
    along; without axes, a broadcast of g to like's shape, summed back to g's shape (a
    sum with keepdims spreads a (1, D) gradient so: summing it all was wrong)."""
    if axis is not None or mean:
        return (F.mean if mean else F.sum)(G, axis=axis, keepdims=keepdims)
    for attrs in S.sums_to(F.shape(G), F.shape(g)):  # as autodiff sums a contribution
        G = F.sum(G, **attrs)
    return G


def _sym_expand(
    g: Any, like: Any, axis: Any = None, keepdims: bool = False, mean: bool = False
) -> Any:
    shape = np.shape(like)
    axes = S.norm_axes(axis, len(shape))
    g = _obj(g) if isinstance(g, np.ndarray) else np.asarray(g, dtype=object)
    if axis is not None and not keepdims:
        g = np.expand_dims(g, axes)
    if mean:
        n = math.prod(shape[a] for a in axes)
        if n:  # an empty axis: the result is empty (as _expand)
            g = g / n
    return np.broadcast_to(g, shape).copy()


def _sym_unpick(g: Any, s: Any, y: Any, keepdims: bool = False) -> Any:
    out = np.zeros(np.shape(s), dtype=object)
    g = np.asarray(g, dtype=object)
    np.put_along_axis(out, np.expand_dims(np.asarray(y), -1), g if keepdims else
                      np.expand_dims(g, -1), axis=-1)  # fmt: skip
    return out


def _no_closed_form(*args: Any, **attrs: Any) -> Any:
    raise NotImplementedError("graphc writes this op only inside gradient code")


def _sum_vjp(F: Any, g: Any, o: Any, a: Any, axis: Any, keepdims: bool) -> Any:
    # g broadcasts against a as it is when the sum kept its dims or summed them all:
    # elementwise consumers take it as it is (upstream gradients may stay broadcast).
    if axis is None or keepdims:
        return g
    return F.expand(g, a, axis=axis, keepdims=keepdims)


def _matmul_da(F: Any, g: Any, o: Any, a: Any, b: Any) -> Any:
    if F.ndim(b) == 1:  # (M,K)@(K,) -> (M,): da = outer(g, b); (K,)@(K,) -> (): g*b
        return F.outer(g, b) if F.ndim(a) == 2 else g * b
    return F.matmul(g, F.transpose(b))  # dA = dC @ Bᵀ


def _matmul_db(F: Any, g: Any, o: Any, a: Any, b: Any) -> Any:
    if F.ndim(a) == 1:  # (K,)@(K,N) -> (N,): db = outer(a, g)
        return F.outer(a, g) if F.ndim(b) == 2 else g * a
    return F.matmul(F.transpose(a), g)  # dB = Aᵀ @ dC


def _shape_pick(sh: Sequence[Shape], keepdims: bool = False) -> Shape:
    s, y = sh
    if not s:
        raise S.ShapeMismatch("pick needs scores with at least one dim, got a scalar")
    if tuple(y) != tuple(s[:-1]):
        raise S.ShapeMismatch(
            f"labels of shape {S.fmt(y)} do not match scores of shape {S.fmt(s)}"
            f" (labels need shape {S.fmt(s[:-1])}: one per row)"
        )
    return s[:-1] + ((1,) if keepdims else ())


def _shape_outer(sh: Sequence[Shape]) -> Shape:
    a, b = sh
    if len(a) != 1 or len(b) != 1:
        raise S.ShapeMismatch(f"outer takes two vectors, got {S.fmt(a)} and {S.fmt(b)}")
    return (a[0], b[0])


def _shape_transpose(sh: Sequence[Shape]) -> Shape:
    if len(sh[0]) > 2:
        raise S.ShapeMismatch(f"transpose takes vectors and matrices, got {S.fmt(sh[0])}")
    return tuple(reversed(sh[0]))


def _shape_reshape(sh: Sequence[Shape], shape: Any) -> Shape:
    new = shape if isinstance(shape, tuple) else (shape,)
    old = sh[0]
    if all(isinstance(d, int) for d in old + new):
        size = math.prod(old)
        if new.count(-1) == 1:
            rest = math.prod(d for d in new if d != -1)
            if rest and size % rest == 0:
                return tuple(size // rest if d == -1 else d for d in new)
        elif math.prod(new) == size and all(d >= 0 for d in new):
            return tuple(new)
    elif -1 not in new and sorted(map(str, (d for d in old if d != 1))) == sorted(
        map(str, (d for d in new if d != 1))
    ):
        return tuple(new)
    raise S.ShapeMismatch(f"cannot reshape {S.fmt(old)} to {S.fmt(tuple(new))}")


def _shape_size(sh: Sequence[Shape], axis: Any) -> Shape:
    n = len(sh[0])
    if not (isinstance(axis, int) and not isinstance(axis, bool) and -n <= axis < n):
        raise S.ShapeMismatch(f"size needs an axis of a {n}-d array, got {axis!r}")
    return ()


def _shape_one_hot(sh: Sequence[Shape], depth: Any) -> Shape:
    if not (isinstance(depth, str) or (isinstance(depth, int) and depth > 0)):
        raise S.ShapeMismatch(f"one_hot needs a positive number of classes, got {depth!r}")
    return (*tuple(sh[0]), depth)


def _reduce_rule(sh: Sequence[Shape], axis: Any = None, keepdims: bool = False) -> Shape:
    return S.reduce(sh[0], axis, keepdims)


def _same(k: int) -> Callable[..., Shape]:
    return lambda sh, **attrs: tuple(sh[k])


def _along(name: str) -> Callable[..., Shape]:
    """The shape rule of softmax and log_softmax: their argument's shape, which needs
    the axis they normalise along (a scalar has none)."""

    def rule(sh: Sequence[Shape], axis: Any = -1) -> Shape:
        if not sh[0]:
            raise S.ShapeMismatch(f"{name} needs scores with at least one dim, got a scalar")
        S.norm_axes(axis, len(sh[0]))  # raises for an axis out of range
        return tuple(sh[0])

    return rule


def _not_twice(F: Any, *args: Any, **attrs: Any) -> Any:
    raise GraphcError(
        "the fused softmax cross-entropy gradient has no derivative of its own; "
        "differentiate the program (Graph.derivative) instead of compiled code"
    )


_TENSOR_ROWS = (
    Op("matmul", 2, _sym_matmul, (), "{0} @ {1}", "", "@", r"{0} {1}", infix=2,
       shape=lambda sh: S.matmul(*sh), vjps=(_matmul_da, _matmul_db), tensor=True),
    Op("dot", 2, _sym_matmul, (), "np.dot({0}, {1})", "", "dot", r"{0} \cdot {1}",
       function="dot", shape=lambda sh: S.matmul(*sh), vjps=(_matmul_da, _matmul_db),
       tensor=True),
    Op("outer", 2, _sym_outer, (), "np.outer({0}, {1})", "", "outer", r"{0} {1}^T",
       function="outer", shape=_shape_outer,
       vjps=(lambda F, g, o, a, b: F.matmul(g, b), lambda F, g, o, a, b: F.matmul(a, g)),
       tensor=True),
    Op("transpose", 1, lambda a: _obj(a).T, (), "{0}.T", "", "ᵀ", r"{0}^T",
       function="transpose", shape=_shape_transpose,
       vjps=(lambda F, g, o, a: F.transpose(g),), tensor=True),
    Op("sum", 1, _sym_sum, (), "np.sum({0}{kw})", "", "Σ", r"\sum {0}", function="sum",
       attrs=_AXIS, shape=_reduce_rule, tensor=True, vjps=(_sum_vjp,)),
    Op("mean", 1, _sym_mean, (), "np.mean({0}{kw})", "", "mean", r"\operatorname{{mean}} {0}",
       function="mean", attrs=_AXIS, shape=_reduce_rule, tensor=True,
       vjps=(lambda F, g, o, a, axis, keepdims:
             F.expand(g, a, axis=axis, keepdims=keepdims, mean=True),)),
    Op("amax", 1, lambda a, axis=None, keepdims=False: _obj_reduce(a, axis, keepdims, sp.Max),
       (), "np.max({0}{kw})", "", "max", r"\max {0}", attrs=_AXIS, shape=_reduce_rule,
       tensor=True,
       vjps=(lambda F, g, o, a, axis, keepdims: F.expand(g, a, axis=axis, keepdims=keepdims)
             * F.max_mask(a, o, axis=axis, keepdims=keepdims),)),
    Op("amin", 1, lambda a, axis=None, keepdims=False: _obj_reduce(a, axis, keepdims, sp.Min),
       (), "np.min({0}{kw})", "", "min", r"\min {0}", attrs=_AXIS, shape=_reduce_rule,
       tensor=True,
       vjps=(lambda F, g, o, a, axis, keepdims: F.expand(g, a, axis=axis, keepdims=keepdims)
             * F.max_mask(a, o, axis=axis, keepdims=keepdims),)),
    Op("logsumexp", 1, _sym_logsumexp, (), "_logsumexp({0}{kw})", "", "logsumexp",
       r"\log \sum e^{{{0}}}", function="logsumexp", attrs=_AXIS, shape=_reduce_rule,
       tensor=True,
       vjps=(lambda F, g, o, a, axis, keepdims: F.softmax(a, axis=axis)
             * F.expand(g, a, axis=axis, keepdims=keepdims),)),
    Op("softmax", 1, _sym_softmax, (), "_softmax({0}{kw})", "", "softmax",
       r"\operatorname{{softmax}}\left({0}\right)", function="softmax",
       attrs=(("axis", -1),), shape=_along("softmax"), tensor=True,
       vjps=(lambda F, g, o, a, axis: o * (g - F.sum(g * o, axis=axis, keepdims=True)),)),
    Op("log_softmax", 1, _sym_log_softmax, (), "_log_softmax({0}{kw})", "", "log softmax",
       r"\log \operatorname{{softmax}}\left({0}\right)", function="log_softmax",
       attrs=(("axis", -1),), shape=_along("log_softmax"), tensor=True,
       vjps=(lambda F, g, o, a, axis: g - F.exp(o) * F.sum(g, axis=axis, keepdims=True),)),
    Op("pick", 2, _sym_pick, (), "_pick({0}, {1}{kw})", "", "pick", r"{0}_{{{1}}}",
       function="pick", attrs=(("keepdims", False),), shape=_shape_pick, tensor=True,
       labels=(1,),
       vjps=(lambda F, g, o, s, y, keepdims: F.unpick(g, s, y, keepdims=keepdims), None)),
    Op("one_hot", 1, _sym_one_hot, (), "_one_hot({0}, {depth})", "", "one-hot",
       r"\operatorname{{onehot}}\left({0}\right)", function="one_hot",
       attrs=(("depth", REQUIRED),), positional=1, shape=_shape_one_hot, tensor=True,
       labels=(0,), vjps=(None,)),
    # a dim read as a value (sum(X) / N): the length of an input along an axis; it
    # passes no gradient to the array it measures
    Op("size", 1, lambda a, axis: sp.Integer(np.shape(a)[axis]), (),
       "float(np.shape({0})[{axis}])", "", "size", r"\operatorname{{size}}\left({0}\right)",
       function="size", attrs=(("axis", REQUIRED),), positional=1, shape=_shape_size, tensor=True,
       vjps=(None,)),
    Op("reshape", 1, lambda a, shape: np.reshape(_obj(a), shape), (),
       "np.reshape({0}, {shape})", "", "reshape", r"{0}", function="reshape",
       attrs=(("shape", REQUIRED),), positional=1, shape=_shape_reshape, tensor=True,
       vjps=(lambda F, g, o, a, shape: F.reshape(g, shape=F.shape(a)),)),
    # ops graphc writes in tensor gradients ---------------------------------------
    Op("expand", 2, _sym_expand, (), "_expand({0}, {1}{kw})", "", "expand",
       r"{0}", attrs=(*_AXIS, ("mean", False)), shape=_same(1), tensor=True,
       vjps=(_expand_vjp, None)),
    Op("max_mask", 2, _no_closed_form, (), "_max_mask({0}, {1}{kw})", "", "argmax",
       r"{0}", attrs=_AXIS, shape=_same(0), tensor=True, vjps=(None, None)),
    Op("unpick", 3, _sym_unpick, (), "_unpick({0}, {1}, {2}{kw})", "", "unpick",
       r"{0}", attrs=(("keepdims", False),), shape=_same(1), tensor=True, labels=(2,),
       vjps=(lambda F, G, o, g, s, y, keepdims: F.pick(G, y, keepdims=keepdims), None, None)),
    Op("sumsq", 1, lambda a: _sym_sum(np.vectorize(lambda t: t**2, otypes=[object])(_obj(a))),
       (), "_sumsq({0})", "", "Σ x²", r"\sum {0}^2", shape=lambda sh: (), tensor=True,
       vjps=(lambda F, g, o, a: (g * 2) * a,)),
    Op("softmax_ce", 2, lambda s, y: _sym_mean(_sym_logsumexp(s, -1) - _sym_pick(s, y)), (),
       "_softmax_ce({0}, {1})", "", "softmax CE", r"\operatorname{{CE}}\left({0}\right)",
       shape=lambda sh: S.reduce(_shape_pick(sh), None, False), tensor=True, labels=(1,),
       vjps=(lambda F, g, o, s, y: F.softmax_ce_grad(s, y, g), None)),
    Op("softmax_ce_grad", 3, _no_closed_form, (), "_softmax_ce_grad({0}, {1}, {2})", "",
       "(softmax − onehot)/N", r"{0}", shape=_same(0), tensor=True, labels=(1,),
       vjps=(_not_twice, None, _not_twice)),
)  # fmt: skip

#: Function names that mean a reduction when called with one argument
#: (``max(x, axis=1)``) and the elementwise op with two (``max(x, 0)``).
REDUCTIONS: Mapping[str, str] = MappingProxyType({"max": "amax", "min": "amin"})


# --- The C lowering of the elementwise ops (graphc.ctarget) --------------------------
# One C expression per op over ``double`` arguments, branch-free (a ``?:`` compiles to a
# blend), with NumPy's semantics at NaN and inf; the helpers are stable for large |x|.

C_LOWERING: Mapping[str, str] = MappingProxyType({
    "add": "{0} + {1}", "sub": "{0} - {1}", "mul": "{0} * {1}", "div": "{0} / {1}",
    "pow": "pow({0}, {1})", "neg": "-{0}", "exp": "exp({0})", "log": "log({0})",
    "sqrt": "sqrt({0})", "sin": "sin({0})", "cos": "cos({0})", "tan": "tan({0})",
    "tanh": "tanh({0})", "sigmoid": "g_sigmoid({0})", "relu": "g_max({0}, 0.0)",
    "softplus": "g_logaddexp(0.0, {0})", "abs": "fabs({0})", "max": "g_max({0}, {1})",
    "min": "g_min({0}, {1})", "logaddexp": "g_logaddexp({0}, {1})",
    "heaviside": "g_heaviside({0}, {1})", "step": "({0} > 0.0 ? 1.0 : 0.0)",
    "sign": "g_sign({0})", "xlogy": "g_xlogy({0}, {1})",
    "above": "g_above({0}, {1})",
})  # fmt: skip

#: C helper functions (static inline), by name.
C_HELPERS: Mapping[str, str] = MappingProxyType({
    "g_sigmoid": (
        "static inline double g_sigmoid(double x) {  /* exp of -|x|: never overflows */\n"
        "    double e = exp(-fabs(x)), s = 1.0 / (1.0 + e);\n"
        "    return x >= 0.0 ? s : e * s;\n}\n"
    ),
    "g_logaddexp": (
        "static inline double g_logaddexp(double a, double b) {  /* log(e^a + e^b) */\n"
        "    double m = a > b ? a : b;\n"
        "    double r = m + log1p(exp(-fabs(a - b)));\n"
        "    return (a == b && isinf(a)) || a != a || b != b ? a + b : r;\n}\n"
    ),
    "g_max": (
        "static inline double g_max(double a, double b) {  /* NaN wins, as np.maximum */\n"
        "    return a > b ? a : (b >= a ? b : a + b);\n}\n"
    ),
    "g_min": (
        "static inline double g_min(double a, double b) {  /* NaN wins, as np.minimum */\n"
        "    return a < b ? a : (b <= a ? b : a + b);\n}\n"
    ),
    "g_heaviside": (
        "static inline double g_heaviside(double x, double h0) {  /* as np.heaviside */\n"
        "    return x > 0.0 ? 1.0 : (x < 0.0 ? 0.0 : (x == 0.0 ? h0 : x));\n}\n"
    ),
    "g_above": (
        "static inline double g_above(double a, double b) {  /* H(a - b), H(0) = 1/2 */\n"
        "    return a > b ? 1.0 : (a == b ? 0.5 : (a < b ? 0.0 : a + b));\n}\n"
    ),
    "g_xlogy": (
        "static inline double g_xlogy(double x, double y) {  /* 0 at x = 0, as scipy */\n"
        "    double r = x * log(y);\n"
        "    return x == 0.0 && y == y ? x : r;  /* x: 0 with its sign */\n}\n"
    ),
    "g_sign": (
        "static inline double g_sign(double x) {  /* as np.sign: NaN stays NaN */\n"
        "    return x > 0.0 ? 1.0 : (x < 0.0 ? -1.0 : x);\n}\n"
    ),
})  # fmt: skip


# --- The C loops of the row-wise tensor ops (graphc.ctarget, tensor programs) ---------
# One C function per op over the rows of 2-d float64 scores and their labels (intp),
# the NumPy helper's steps in its order (the row's maximum, NaN winning, as the shift
# where finite; exp; sum; log), called through c_runtime.RowLoop, which runs the NumPy
# helper where the arguments do not fit and for its error. Each returns -1, or the
# first row whose label is not a class. Sums run in another order than NumPy's pairwise
# ones: results agree to rounding. They call C_ROW_SHIFT, which calls g_max (C_HELPERS).

C_ROW_SHIFT = (
    "static inline double g_row_shift(const double *row, ptrdiff_t cols) {\n"
    "    double m = row[0];  /* np.max of the row (NaN wins); the shift where finite */\n"
    "    for (ptrdiff_t j = 1; j < cols; j++) m = g_max(m, row[j]);\n"
    "    return isfinite(m) ? m : 0.0;\n}\n"
)
_C_LABELS = (
    "    for (ptrdiff_t r = 0; r < rows; r++)  /* every label a class, or the helper's error */\n"
    "        if (y[r] < 0 || y[r] >= cols) return r;\n"
)

C_ROWS: Mapping[str, str] = MappingProxyType({
    "softmax_ce": (
        "/* mean over rows of logsumexp(s[r]) - s[r][y[r]] (_softmax_ce) */\n"
        "ptrdiff_t softmax_ce(ptrdiff_t rows, ptrdiff_t cols, const double *restrict s,\n"
        "                     const ptrdiff_t *restrict y, double *restrict value) {\n"
        + _C_LABELS +
        "    double total = 0.0;\n"
        "    for (ptrdiff_t r = 0; r < rows; r++) {\n"
        "        const double *row = s + r * cols;\n"
        "        double m = g_row_shift(row, cols), sum = 0.0;\n"
        "        #pragma omp simd reduction(+:sum)\n"
        "        for (ptrdiff_t j = 0; j < cols; j++) sum += exp(row[j] - m);\n"
        "        total += (log(sum) + m) - row[y[r]];\n"
        "    }\n"
        "    *value = total / (double)rows;\n"
        "    return -1;\n}\n"
    ),
    "softmax_ce_grad": (
        "/* (softmax(s) - one_hot(y)) * g / rows (_softmax_ce_grad) */\n"
        "ptrdiff_t softmax_ce_grad(ptrdiff_t rows, ptrdiff_t cols, const double *restrict s,\n"
        "                          const ptrdiff_t *restrict y, double g, double *restrict out) {\n"
        + _C_LABELS +
        "    double scale = g / (double)rows;\n"
        "    for (ptrdiff_t r = 0; r < rows; r++) {\n"
        "        const double *row = s + r * cols;\n"
        "        double *o = out + r * cols;\n"
        "        double m = g_row_shift(row, cols), sum = 0.0;\n"
        "        #pragma omp simd reduction(+:sum)\n"
        "        for (ptrdiff_t j = 0; j < cols; j++) { o[j] = exp(row[j] - m); sum += o[j]; }\n"
        "        for (ptrdiff_t j = 0; j < cols; j++)\n"
        "            o[j] = (o[j] / sum - (j == y[r] ? 1.0 : 0.0)) * scale;\n"
        "    }\n"
        "    return -1;\n}\n"
    ),
})  # fmt: skip


def _validate(rows: tuple[Op, ...]) -> Mapping[str, Op]:
    table: dict[str, Op] = {}
    for row in rows:
        if row.name in table:
            raise ValueError(f"op {row.name!r} defined twice")
        if row.vjps is not None and len(row.vjps) != row.arity:
            raise ValueError(f"op {row.name!r}: {len(row.vjps)} VJPs for arity {row.arity}")
        if row.vjps is None and len(row.partials) != row.arity:
            raise ValueError(f"op {row.name!r}: {len(row.partials)} partials for arity {row.arity}")
        if row.folded and len(row.folded) != row.arity:
            raise ValueError(f"op {row.name!r}: folded labels do not match arity")
        if row.domain and len(row.domain) != row.arity:
            raise ValueError(f"op {row.name!r}: domain does not match arity")
        if row.simplify((None,) * row.arity) is not None:
            raise ValueError(f"op {row.name!r}: simplify must need a constant argument")
        for target in ("numpy", "math"):
            row.lower(target, [f"a{i}" for i in range(row.arity)])  # raises if malformed
        table[row.name] = row
    return MappingProxyType(table)


#: Every op, by name.
OPS: Mapping[str, Op] = _validate(_ROWS + _TENSOR_ROWS)
#: Ops users call by name in expressions, by that name.
FUNCTIONS: Mapping[str, Op] = MappingProxyType(
    {o.function: o for o in _ROWS + _TENSOR_ROWS if o.function is not None}
)
#: Binary operator tokens of the language, and the op each one means.
BINARY: Mapping[str, str] = MappingProxyType(
    {"+": "add", "-": "sub", "*": "mul", "/": "div", "^": "pow", "**": "pow", "@": "matmul"}
)


def op(name: str) -> Op:
    """Return the op called ``name`` (raises ``KeyError`` for an unknown name)."""
    return OPS[name]


def _compile_numpy(row: Op) -> Callable[..., Any]:
    # Compiles the table's own lowering template (never user text) into a function,
    # so that evaluation and generated code share one definition of each op.
    params = [f"a{i}" for i in range(row.arity)]
    namespace: dict[str, Any] = {"np": np, "math": math}
    for helper in row.helpers("numpy"):
        exec(HELPERS["numpy"][helper], namespace)
    body = row.lower("numpy", params, {k: k for k, _ in row.attrs})  # attributes by name
    kwonly = [k if v == REQUIRED else f"{k}={v!r}" for k, v in row.attrs]
    sig = ", ".join(params + (["*", *kwonly] if kwonly else []))
    exec(f"def _op_{row.name}({sig}):\n    return {body}\n", namespace)
    return namespace[f"_op_{row.name}"]


_NUMPY_CALLABLES: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {name: _compile_numpy(row) for name, row in OPS.items()}
)


def numpy_callable(name: str) -> Callable[..., Any]:
    """The NumPy lowering of op ``name`` as a function of its arguments."""
    return _NUMPY_CALLABLES[name]
