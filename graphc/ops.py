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
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

import numpy as np
import sympy as sp

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

    def _eval_evalf(self, prec: int) -> sp.Expr:
        return sp.log(1 + sp.exp(self.args[0]))._eval_evalf(prec)

    def _eval_is_real(self) -> bool | None:
        return self.args[0].is_real


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
                    "    if m == -math.inf:\n"
                    "        return m\n"
                    "    return m + math.log1p(math.exp(-abs(a - b)))\n"
                ),
                "_heaviside": (
                    "def _heaviside(x, h0):\n"
                    '    """Step function: 0 below 0, h0 at 0, 1 above."""\n'
                    "    return 1.0 if x > 0.0 else (h0 if x == 0.0 else 0.0)\n"
                ),
                "_sign": (
                    "def _sign(x):\n"
                    '    """Sign of x, 0 at 0."""\n'
                    "    return (x > 0.0) - (x < 0.0)\n"
                ),
            }
        ),
    }
)

Rule = Callable[..., Any]


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

    def helpers(self, target: str) -> tuple[str, ...]:
        """Names of the helper functions this op's lowering calls on ``target``."""
        template = self.numpy if target == "numpy" else self.math
        return tuple(h for h in HELPERS[target] if h + "(" in template)


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


def _is(v: Any, c: Any) -> bool:
    return v is not None and v == c


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
       (lambda F, o, a, b: b * a ** (b - 1), lambda F, o, a, b: o * F.log(a)),
       "{0} ** {1}", "{0} ** {1}", "^", "{{{0}}}^{{{1}}}", infix=4,
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
    Op("relu", 1, lambda a: sp.Max(a, 0), (lambda F, o, a: F.heaviside(a, 0),),
       "np.maximum({0}, 0.0)", "max({0}, 0.0)", "relu", r"\mathrm{{relu}}\left({0}\right)",
       function="relu", domain=((0.2, 3.0),)),
    Op("softplus", 1, softplus, (lambda F, o, a: F.sigmoid(a),),
       "_logaddexp(0.0, {0})", "_softplus({0})", "softplus",
       r"\mathrm{{softplus}}\left({0}\right)", function="softplus", domain=(_R,)),
    Op("abs", 1, sp.Abs, (lambda F, o, a: F.sign(a),),
       "np.abs({0})", "abs({0})", "abs", r"\left|{0}\right|", function="abs",
       domain=((0.2, 3.0),)),
    # max and min split the gradient evenly at a tie, as JAX and PyTorch do.
    Op("max", 2, sp.Max,
       (lambda F, o, a, b: F.heaviside(a - b, sp.Rational(1, 2)),
        lambda F, o, a, b: F.heaviside(b - a, sp.Rational(1, 2))),
       "np.maximum({0}, {1})", "max({0}, {1})", "max", r"\max\left({0}, {1}\right)",
       function="max", commutative=True, domain=((0.5, 3.0), (-3.0, 0.0)),
       folded=("max {c}", "max {c}")),
    Op("min", 2, sp.Min,
       (lambda F, o, a, b: F.heaviside(b - a, sp.Rational(1, 2)),
        lambda F, o, a, b: F.heaviside(a - b, sp.Rational(1, 2))),
       "np.minimum({0}, {1})", "min({0}, {1})", "min", r"\min\left({0}, {1}\right)",
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
    Op("sign", 1, sp.sign, (_zero,),
       "np.sign({0})", "_sign({0})", "sign", r"\operatorname{{sign}}\left({0}\right)",
       function="sign", domain=((0.2, 3.0),)),
)  # fmt: skip


def _validate(rows: tuple[Op, ...]) -> Mapping[str, Op]:
    table: dict[str, Op] = {}
    for row in rows:
        if row.name in table:
            raise ValueError(f"op {row.name!r} defined twice")
        if len(row.partials) != row.arity:
            raise ValueError(f"op {row.name!r}: {len(row.partials)} partials for arity {row.arity}")
        if row.folded and len(row.folded) != row.arity:
            raise ValueError(f"op {row.name!r}: folded labels do not match arity")
        if row.domain and len(row.domain) != row.arity:
            raise ValueError(f"op {row.name!r}: domain does not match arity")
        if row.simplify((None,) * row.arity) is not None:
            raise ValueError(f"op {row.name!r}: simplify must need a constant argument")
        for target in ("numpy", "math"):
            template = row.numpy if target == "numpy" else row.math
            template.format(*(f"a{i}" for i in range(row.arity)))  # raises if malformed
        table[row.name] = row
    return MappingProxyType(table)


#: Every op, by name.
OPS: Mapping[str, Op] = _validate(_ROWS)
#: Ops users call by name in expressions, by that name.
FUNCTIONS: Mapping[str, Op] = MappingProxyType(
    {o.function: o for o in _ROWS if o.function is not None}
)
#: Binary operator tokens of the language, and the op each one means.
BINARY: Mapping[str, str] = MappingProxyType(
    {"+": "add", "-": "sub", "*": "mul", "/": "div", "^": "pow", "**": "pow"}
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
    body = row.numpy.format(*params)
    exec(f"def _op_{row.name}({', '.join(params)}):\n    return {body}\n", namespace)
    return namespace[f"_op_{row.name}"]


_NUMPY_CALLABLES: Mapping[str, Callable[..., Any]] = MappingProxyType(
    {name: _compile_numpy(row) for name, row in OPS.items()}
)


def numpy_callable(name: str) -> Callable[..., Any]:
    """The NumPy lowering of op ``name`` as a function of its arguments."""
    return _NUMPY_CALLABLES[name]
