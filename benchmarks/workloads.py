"""The benchmark workloads: graphc text, the same function for each peer, hand-written code.

Each workload is written three independent ways:

* ``text``: the graphc program a user types;
* ``formula(m, **inputs)``: the function as a peer's user writes it, on a namespace ``m``
  of that library's functions (``m.exp``, ``m.sigmoid``, ...): JAX, PyTorch, HIPS
  autograd, SymPy, PyTensor and micrograd all trace or build it with their own types;
* ``hand_numpy`` / ``hand_math``: the forward and backward code an expert writes by hand,
  in the staged style of the cs231n backprop notes.

Every implementation returns ``(value, {input: gradient})``, the gradient being that
of ``sum(f)`` for array inputs. ``random_dag`` makes the text -> callable workloads.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

import numpy as np

Grads = dict[str, Any]
Result = tuple[Any, Grads]


# --------------------------------------------------------------------------- formulas


def mul_add(m: Any, x: Any, y: Any, z: Any) -> Any:
    """(x + y) z, the first circuit of the cs231n notes."""
    return (x + y) * z


def neuron(m: Any, w0: Any, x0: Any, w1: Any, x1: Any, w2: Any) -> Any:
    """The 2-input sigmoid neuron, gate by gate."""
    return 1 / (1 + m.exp(-(w0 * x0 + w1 * x1 + w2)))


def staged(m: Any, x: Any, y: Any) -> Any:
    """The notes' staged example (x + σ(y)) / (σ(x) + (x + y)²)."""
    sigy = 1 / (1 + m.exp(-y))
    num = x + sigy
    return num / (m.sigmoid(x) + (x + y) ** 2)


MUL_ADD_TEXT = "(x+y)z"
NEURON_TEXT = "1/(1+exp(-(w0*x0+w1*x1+w2)))"
STAGED_TEXT = """\
sigy = 1/(1+exp(-y))
num = x + sigy
f = num / (sigmoid(x) + (x+y)^2)
"""


# ------------------------------------------------------------- hand-written reference


def hand_mul_add(x: np.ndarray, y: np.ndarray, z: np.ndarray) -> Result:
    """Forward and backward of (x + y) z as the notes write it (upstream 1 per element)."""
    q = x + y
    f = q * z
    # backward
    dz = q
    dq = z
    dx = dq
    dy = dq
    return f, {"x": dx, "y": dy, "z": dz}


def hand_neuron(w0: Any, x0: Any, w1: Any, x1: Any, w2: Any) -> Result:
    """The notes' sigmoid-neuron code: forward, then ``ddot = (1 - f) * f``."""
    dot = w0 * x0 + w1 * x1 + w2
    f = 1.0 / (1 + np.exp(-dot))
    # backward
    ddot = (1 - f) * f
    return f, {"w0": x0 * ddot, "x0": w0 * ddot, "w1": x1 * ddot, "x1": w1 * ddot, "w2": ddot}


def hand_staged(x: np.ndarray, y: np.ndarray) -> Result:
    """The notes' staged forward pass (1)-(8) and its backward pass, with df = 1."""
    sigy = 1.0 / (1 + np.exp(-y))  # (1)
    num = x + sigy  # (2)
    sigx = 1.0 / (1 + np.exp(-x))  # (3)
    xpy = x + y  # (4)
    xpysqr = xpy**2  # (5)
    den = sigx + xpysqr  # (6)
    invden = 1.0 / den  # (7)
    f = num * invden  # (8)
    # backward, in reverse; gradients add at forks
    dnum = invden  # (8)
    dinvden = num  # (8)
    dden = (-1.0 / (den**2)) * dinvden  # (7)
    dsigx = dden  # (6)
    dxpysqr = dden  # (6)
    dxpy = (2 * xpy) * dxpysqr  # (5)
    dx = dxpy.copy()  # (4)
    dy = dxpy.copy()  # (4)
    dx += ((1 - sigx) * sigx) * dsigx  # (3)
    dx += dnum  # (2)
    dsigy = dnum  # (2)
    dy += ((1 - sigy) * sigy) * dsigy  # (1)
    return f, {"x": dx, "y": dy}


def hand_neuron_math(w0: float, x0: float, w1: float, x1: float, w2: float) -> Result:
    """The sigmoid neuron on Python floats, with the ``math`` module."""
    dot = w0 * x0 + w1 * x1 + w2
    f = 1.0 / (1.0 + math.exp(-dot))
    ddot = (1.0 - f) * f
    return f, {"w0": x0 * ddot, "x0": w0 * ddot, "w1": x1 * ddot, "x1": w1 * ddot, "w2": ddot}


# ------------------------------------------------------------------------ workloads


@dataclass(frozen=True)
class Workload:
    """One function to differentiate, written as graphc text, peer formula and by hand."""

    name: str
    title: str
    text: str
    inputs: tuple[str, ...]
    formula: Callable[..., Any]
    hand: Callable[..., Result]
    scalar: bool = False  # Python floats instead of arrays

    def point(self, n: int, seed: int = 0) -> dict[str, Any]:
        """Random inputs in [-2, 2]: arrays of ``n`` float64, or floats when ``scalar``."""
        rng = np.random.default_rng(seed)
        if self.scalar:
            return {k: float(rng.uniform(-2, 2)) for k in self.inputs}
        return {k: rng.uniform(-2, 2, n) for k in self.inputs}


WORKLOADS: dict[str, Workload] = {
    w.name: w
    for w in (
        Workload("muladd", "(x+y)z", MUL_ADD_TEXT, ("x", "y", "z"), mul_add, hand_mul_add),
        Workload(
            "neuron",
            "sigmoid neuron",
            NEURON_TEXT,
            ("w0", "x0", "w1", "x1", "w2"),
            neuron,
            hand_neuron,
        ),
        Workload("staged", "staged example", STAGED_TEXT, ("x", "y"), staged, hand_staged),
        Workload(
            "neuron-floats",
            "sigmoid neuron, Python floats",
            NEURON_TEXT,
            ("w0", "x0", "w1", "x1", "w2"),
            neuron,
            hand_neuron_math,
            scalar=True,
        ),
    )
}


# ------------------------------------------------------------------------ namespaces


def _sigmoid_by_exp(exp: Callable[[Any], Any]) -> Callable[[Any], Any]:
    return lambda a: 1 / (1 + exp(-a))


def namespace(library: str) -> SimpleNamespace:
    """The functions a peer's user calls: exp, sigmoid, sin, cos, tanh (imports lazily)."""
    if library == "numpy":
        return SimpleNamespace(
            exp=np.exp, sigmoid=_sigmoid_by_exp(np.exp), sin=np.sin, cos=np.cos, tanh=np.tanh
        )
    if library == "jax":
        import jax
        import jax.numpy as jnp

        return SimpleNamespace(
            exp=jnp.exp, sigmoid=jax.nn.sigmoid, sin=jnp.sin, cos=jnp.cos, tanh=jnp.tanh
        )
    if library == "torch":
        import torch

        return SimpleNamespace(
            exp=torch.exp, sigmoid=torch.sigmoid, sin=torch.sin, cos=torch.cos, tanh=torch.tanh
        )
    if library == "autograd":
        import autograd.numpy as anp
        from autograd.scipy.special import expit

        return SimpleNamespace(exp=anp.exp, sigmoid=expit, sin=anp.sin, cos=anp.cos, tanh=anp.tanh)
    if library == "sympy":
        import sympy as sp

        return SimpleNamespace(
            exp=sp.exp, sigmoid=_sigmoid_by_exp(sp.exp), sin=sp.sin, cos=sp.cos, tanh=sp.tanh
        )
    if library == "pytensor":
        import pytensor.tensor as pt

        return SimpleNamespace(exp=pt.exp, sigmoid=pt.sigmoid, sin=pt.sin, cos=pt.cos, tanh=pt.tanh)
    if library == "micrograd":
        return SimpleNamespace(exp=micrograd_exp, sigmoid=_sigmoid_by_exp(micrograd_exp))
    raise KeyError(library)


def micrograd_exp(v: Any) -> Any:
    """exp for micrograd's ``Value`` (the PyPI package has none), as its lecture writes it."""
    from micrograd.engine import Value

    out = Value(math.exp(v.data), (v,), "exp")

    def _backward() -> None:
        v.grad += out.data * out.grad

    out._backward = _backward
    return out


# ----------------------------------------------------------------------- random DAGs

UNARY = ("sin", "cos", "tanh", "sigmoid")
BINARY = {"add": "+", "sub": "-", "mul": "*"}
DAG_INPUTS = ("x", "y", "z")


@dataclass(frozen=True)
class Dag:
    """A random straight-line program: ``(name, op, args)`` statements, the last is f."""

    statements: tuple[tuple[str, str, tuple[str, ...]], ...]

    @property
    def inputs(self) -> tuple[str, ...]:
        """The program's inputs: those of ``DAG_INPUTS`` that some statement reads."""
        used = {a for _, _, args in self.statements for a in args}
        return tuple(k for k in DAG_INPUTS if k in used)

    @property
    def gates(self) -> int:
        return len(self.statements)

    @property
    def text(self) -> str:
        """The graphc program."""
        lines = []
        for name, op, args in self.statements:
            if op in BINARY:
                lines.append(f"{name} = {args[0]} {BINARY[op]} {args[1]}")
            else:
                lines.append(f"{name} = {op}({args[0]})")
        return "\n".join(lines) + "\n"

    def formula(self, m: Any, **inputs: Any) -> Any:
        """The same program run on a peer's namespace ``m`` (its tracer, tensors, symbols)."""
        env: dict[str, Any] = dict(inputs)
        value: Any = None
        for name, op, args in self.statements:
            a = [env[k] for k in args]
            if op == "add":
                value = a[0] + a[1]
            elif op == "sub":
                value = a[0] - a[1]
            elif op == "mul":
                value = a[0] * a[1]
            else:
                value = getattr(m, op)(a[0])
            env[name] = value
        return value

    def point(self, seed: int = 0) -> dict[str, float]:
        rng = np.random.default_rng(seed)
        return {k: float(rng.uniform(-1, 1)) for k in self.inputs}


def random_dag(gates: int, seed: int = 0) -> Dag:
    """A random DAG of ``gates`` gates with fan-out, every gate live.

    Gates alternate between a bounded unary op of the previous gate and a binary op of
    the previous gate and a random earlier input or unary gate, so nodes are reused many
    times (fan-out) and values stay bounded.

    >>> d = random_dag(4, seed=1)
    >>> d.gates, d.text.count("\\n")
    (4, 4)
    """
    rng = random.Random(seed)
    pool: list[str] = list(DAG_INPUTS)
    statements = []
    prev = rng.choice(DAG_INPUTS)
    for k in range(gates):
        name = f"t{k}"
        if k % 2 == 0:
            statements.append((name, rng.choice(UNARY), (prev,)))
            pool.append(name)
        else:
            op = rng.choice(tuple(BINARY))
            other = rng.choice(pool)
            args = (prev, other) if rng.random() < 0.5 else (other, prev)
            statements.append((name, op, args))
        prev = name
    return Dag(tuple(statements))


def input_chain(gates: int) -> str:
    """A program of about ``gates`` gates (3 per line), two new inputs on every line:
    ``a1 = a0 * x1 + sin(y1)``, ... About two inputs per three gates, where the random
    DAG has three in all: a compile stage that does work per input for every input (a
    ``tuple.index``, an ``in`` test on the inputs' tuple) is quadratic here.

    >>> input_chain(6).splitlines()
    ['a0 = x0 * y0', 'a1 = a0 * x1 + sin(y1)', 'a2 = a1 * x2 + sin(y2)']
    """
    lines = ["a0 = x0 * y0"]
    lines += [f"a{i} = a{i - 1} * x{i} + sin(y{i})" for i in range(1, max(1, gates // 3) + 1)]
    return "\n".join(lines)


def as_float_dict(grads: Mapping[str, Any]) -> dict[str, float]:
    """Gradients as plain floats (for scalar results)."""
    return {k: float(v) for k, v in grads.items()}
