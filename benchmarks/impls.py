"""Implementations of ``value_and_grad`` for each workload: graphc, hand-written, peers.

``setup(name, workload, inputs)`` returns a zero-argument callable that computes
``(value, {input: gradient})`` at the bound ``inputs`` (array workloads: gradient of
``sum(f)``). A peer that is not installed raises :class:`UnavailableError` with the reason.
All one-time work (tracing, compiling, converting inputs to the library's arrays) is
done in ``setup``; the callable is what a user calls in a training loop.
"""

from __future__ import annotations

import builtins
from collections.abc import Callable
from typing import Any

import numpy as np

from .workloads import Result, Workload, namespace

Call = Callable[[], Result]

ARRAY_IMPLS = (
    "numpy (hand)",
    "numpy (hand, copies)",
    "graphc",
    "graphc out=",
    "graphc zero_copy",
    "graphc c",
    "graphc c out=",
    "graphc c zero_copy",
    "graphc c 2 threads",
    "numba (hand loop)",
    "jax.jit",
    "torch",
    "autograd",
    "sympy",
    "pytensor",
)
FLOAT_IMPLS = ("math (hand)", "graphc", "graphc (checked)", "micrograd", "torch")


class UnavailableError(Exception):
    """This implementation cannot run here (library missing, or graphc stage absent)."""


def graphc_compile() -> Callable[..., Any] | None:
    """``graphc.compile`` if this graphc has it."""
    import graphc

    return getattr(graphc, "compile", None)


def _graphc(w: Workload, inputs: dict[str, Any]) -> Call:
    import graphc

    compile_ = graphc_compile()
    if compile_ is None:
        g = graphc.parse(w.text)

        def interpret() -> Result:
            ev = g.evaluate(**inputs)
            return ev.value, dict(ev.grads)

        interpret.label = "graphc evaluate"  # type: ignore[attr-defined]
        return interpret
    compiled = compile_(w.text, target="math" if w.scalar else "numpy")
    if getattr(compiled, "module", None) is None:
        vg = compiled.value_and_grad
    else:  # the function as a saved module defines it, without graphc's call checks
        saved: dict[str, Any] = {}
        exec(builtins.compile(compiled.source, "<saved graphc module>", "exec"), saved)
        vg = saved["value_and_grad"]
    return lambda: vg(**inputs)


def _graphc_zero_copy(w: Workload, inputs: dict[str, Any]) -> Call:
    """The NumPy target with ``zero_copy=True``: gradients that are inputs (or repeats)
    returned shared, as the hand-written code returns them."""
    import graphc

    vg = graphc.compile(w.text, zero_copy=True).module.value_and_grad
    return lambda: vg(**inputs)


def _graphc_out(w: Workload, inputs: dict[str, Any]) -> Call:
    """The NumPy target, each call writing into the arrays the previous call returned
    (``out=``), as a training loop would."""
    import graphc

    return _reusing(graphc.compile(w.text).module.value_and_grad, inputs)


def _reusing(vg: Callable[..., Result], inputs: dict[str, Any]) -> Call:
    """Calls of vg, each writing into the arrays the previous call returned (``out=``)."""
    last = [vg(**inputs)]

    def call() -> Result:
        last[0] = vg(**inputs, out=last[0])
        return last[0]

    return call


def _graphc_checked(w: Workload, inputs: dict[str, Any]) -> Call:
    """``Compiled.value_and_grad``: the generated function behind graphc's argument checks."""
    compile_ = graphc_compile()
    if compile_ is None or not hasattr(compile_("x"), "module"):
        raise UnavailableError("no separate checked call in this graphc")
    vg = compile_(w.text, target="math" if w.scalar else "numpy").value_and_grad
    return lambda: vg(**inputs)


def _hand(w: Workload, inputs: dict[str, Any]) -> Call:
    hand = w.hand
    return lambda: hand(**inputs)


def _need(module: str) -> Any:
    import importlib

    try:
        return importlib.import_module(module)
    except Exception as exc:  # ImportError, or a broken install
        raise UnavailableError(f"{module} not installed ({type(exc).__name__})") from exc


def _jax(w: Workload, inputs: dict[str, Any]) -> Call:
    jax = _need("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    m = namespace("jax")
    names = list(inputs)

    def loss(*args: Any) -> Any:
        f = w.formula(m, **dict(zip(names, args, strict=True)))
        return jnp.sum(f), f

    vg = jax.jit(jax.value_and_grad(loss, argnums=tuple(range(len(names))), has_aux=True))
    args = [jnp.asarray(inputs[k]) for k in names]

    def call() -> Result:
        (_, f), grads = jax.block_until_ready(vg(*args))
        return f, dict(zip(names, grads, strict=True))

    call()  # trace and compile once, outside the timing
    return call


def _torch_arrays(w: Workload, inputs: dict[str, Any]) -> Call:
    torch = _need("torch")
    from .threads import pin_torch

    pin_torch(torch)
    m = namespace("torch")
    names = list(inputs)
    ts = [torch.from_numpy(np.asarray(inputs[k], dtype=np.float64)) for k in names]
    for t in ts:
        t.requires_grad_(True)

    def call() -> Result:
        f = w.formula(m, **dict(zip(names, ts, strict=True)))
        grads = torch.autograd.grad(f.sum(), ts)
        return f.detach().numpy(), {k: g.numpy() for k, g in zip(names, grads, strict=True)}

    return call


def _torch_floats(w: Workload, inputs: dict[str, Any]) -> Call:
    torch = _need("torch")
    from .threads import pin_torch

    pin_torch(torch)
    m = namespace("torch")
    names = list(inputs)
    values = [inputs[k] for k in names]
    f64 = torch.float64

    def call() -> Result:
        ts = [torch.tensor(v, dtype=f64, requires_grad=True) for v in values]
        f = w.formula(m, **dict(zip(names, ts, strict=True)))
        grads = torch.autograd.grad(f, ts)
        return f.item(), {k: g.item() for k, g in zip(names, grads, strict=True)}

    return call


def _autograd(w: Workload, inputs: dict[str, Any]) -> Call:
    ag = _need("autograd")
    anp = _need("autograd.numpy")
    m = namespace("autograd")
    names = list(inputs)
    args = tuple(inputs[k] for k in names)

    def loss(xs: tuple[Any, ...]) -> Any:
        return anp.sum(w.formula(m, **dict(zip(names, xs, strict=True))))

    vg = ag.value_and_grad(loss)

    def call() -> Result:
        value, grads = vg(args)  # value is sum(f): autograd needs a scalar
        return value, dict(zip(names, grads, strict=True))

    return call


def _sympy(w: Workload, inputs: dict[str, Any]) -> Call:
    sp = _need("sympy")
    names = list(inputs)
    syms = sp.symbols(names)
    f = w.formula(namespace("sympy"), **dict(zip(names, syms, strict=True)))
    fn = sp.lambdify(syms, [f, *(sp.diff(f, s) for s in syms)], modules="numpy", cse=True)
    args = [inputs[k] for k in names]

    def call() -> Result:
        value, *grads = fn(*args)
        return value, dict(zip(names, grads, strict=True))

    return call


def _pytensor(w: Workload, inputs: dict[str, Any]) -> Call:
    pytensor = _need("pytensor")
    pt = _need("pytensor.tensor")
    names = list(inputs)
    xs = [pt.dvector(k) for k in names]
    f = w.formula(namespace("pytensor"), **dict(zip(names, xs, strict=True)))
    fn = pytensor.function(xs, [f, *pytensor.grad(f.sum(), xs)])
    args = [inputs[k] for k in names]

    def call() -> Result:
        value, *grads = fn(*args)
        return value, dict(zip(names, grads, strict=True))

    return call


def _micrograd(w: Workload, inputs: dict[str, Any]) -> Call:
    engine = _need("micrograd.engine")
    Value = engine.Value
    m = namespace("micrograd")
    items = list(inputs.items())

    def call() -> Result:
        vs = {k: Value(v) for k, v in items}
        f = w.formula(m, **vs)
        f.backward()
        return f.data, {k: v.grad for k, v in vs.items()}

    return call


def _graphc_c(
    w: Workload, inputs: dict[str, Any], reuse: bool = False, zero_copy: bool = False
) -> Call:
    """``target="c"``: the fused C loop; with ``reuse`` each call writes into the arrays
    the previous call returned (``out=``), as a training loop would."""
    import warnings

    import graphc

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        try:
            vg = graphc.compile(w.text, target="c", zero_copy=zero_copy).module.value_and_grad
        except Warning as e:  # fell back to NumPy: nothing to measure
            raise UnavailableError(str(e)) from None
    return _reusing(vg, inputs) if reuse else lambda: vg(**inputs)


def _graphc_c_threads(w: Workload, inputs: dict[str, Any]) -> Call:
    """The C target's loop on two OpenMP threads (the rest of the run is single-threaded:
    libgomp's thread count is set to 2 around each call and back to 1, and the process
    may use every CPU during the call: ``threads.all_cpus``)."""
    import ctypes
    import ctypes.util

    from .threads import all_cpus

    call = _graphc_c(w, inputs)
    try:
        gomp = ctypes.CDLL(ctypes.util.find_library("gomp") or "libgomp.so.1")
    except OSError as e:
        raise UnavailableError(f"libgomp not found: {e}") from None
    threads = gomp.omp_set_num_threads

    def two() -> Result:
        with all_cpus():
            threads(2)
            try:
                return call()
            finally:
                threads(1)

    return two


def _hand_copies(w: Workload, inputs: dict[str, Any]) -> Call:
    """The hand-written (x+y)z with each gradient its own array: ``dx = z.copy()``,
    ``dy = z.copy()``, as graphc returns them (no returned array aliases an input or
    another). The other workloads' hand-written code aliases nothing already."""
    if w.name != "muladd":
        raise UnavailableError("the hand-written code returns no aliases here")
    x, y, z = (inputs[k] for k in ("x", "y", "z"))

    def call() -> Result:
        q = x + y
        return q * z, {"x": z.copy(), "y": z.copy(), "z": q}

    return call


def _numba(w: Workload, inputs: dict[str, Any]) -> Call:
    from . import numba_loops

    return numba_loops.setup(w, inputs, _need("numba"))


_ARRAY = {
    "numpy (hand)": _hand,
    "numpy (hand, copies)": _hand_copies,
    "graphc": _graphc,
    "graphc out=": _graphc_out,
    "graphc zero_copy": _graphc_zero_copy,
    "graphc c": _graphc_c,
    "graphc c out=": lambda w, inputs: _graphc_c(w, inputs, reuse=True),
    # gradients that are inputs returned as they are, as the hand-written code does
    "graphc c zero_copy": lambda w, inputs: _graphc_c(w, inputs, reuse=True, zero_copy=True),
    "graphc c 2 threads": _graphc_c_threads,
    "numba (hand loop)": _numba,
    "jax.jit": _jax,
    "torch": _torch_arrays,
    "autograd": _autograd,
    "sympy": _sympy,
    "pytensor": _pytensor,
}
_FLOAT = {
    "math (hand)": _hand,
    "graphc": _graphc,
    "graphc (checked)": _graphc_checked,
    "micrograd": _micrograd,
    "torch": _torch_floats,
}


def names_for(w: Workload) -> tuple[str, ...]:
    """The implementations compared on workload ``w``; the first is the reference."""
    return FLOAT_IMPLS if w.scalar else ARRAY_IMPLS


def setup(name: str, w: Workload, inputs: dict[str, Any]) -> Call:
    """A callable computing ``(value, grads)`` of ``w`` at ``inputs`` with ``name``.

    Raises :class:`UnavailableError` when the library is missing; other exceptions mean the
    implementation is broken and propagate.
    """
    table = _FLOAT if w.scalar else _ARRAY
    return table[name](w, inputs)


def label(name: str, call: Call) -> str:
    """The row label: ``graphc evaluate`` when graphc.compile is not there yet."""
    return getattr(call, "label", name)
