"""The tensor workload: a 2-layer softmax classifier's loss and gradients on a mini-batch.

Batch 256×784 → 100 ReLU → 10 classes, softmax cross-entropy plus L2 (the tensors
issue's program). Implementations, each returning ``(loss, {parameter: gradient})``:

* ``numpy (hand)``: the cs231n assignment's vectorised forward and backward pass;
* ``graphc``: the generated ``value_and_grad`` (the module's function);
  ``graphc c``: the same program on the C target (fused elementwise loops between the
  BLAS calls); ``out=``: each call writes into the previous call's arrays;
* ``torch``: eager PyTorch with autograd; ``jax.jit``: ``jax.value_and_grad`` jitted;
  ``pytensor``: a compiled PyTensor function of the loss and ``pytensor.grad``.

``matmuls alone (floor)`` times only the five matrix products of the hand-written
pass (on its own intermediate arrays): no implementation that computes them with the
same BLAS can be faster. It returns no loss and is not checked.

All run single-threaded (``benchmarks.threads``), interleaved by ``benchmarks/run.py``.
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from .impls import UnavailableError, _need, _reusing


def _example_program() -> str:
    """The issue's program, as ``examples/train_digits.py`` trains it (one copy)."""
    path = Path(__file__).resolve().parent.parent / "examples" / "train_digits.py"
    spec = importlib.util.spec_from_file_location("graphc_example_train_digits", path)
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)  # defines PROGRAM; main() runs only as a script
    return example.PROGRAM


PROGRAM = _example_program()
PARAMS = ("W1", "b1", "W2", "b2")
IMPLS = (
    "numpy (hand)",
    "graphc",
    "graphc c",
    "graphc out=",
    "graphc c out=",
    "torch",
    "jax.jit",
    "pytensor",
    "matmuls alone (floor)",
)
#: Implementations that time a part of the work: not checked against the hand result.
FLOORS = ("matmuls alone (floor)",)

Result = tuple[Any, dict[str, Any]]


def point(n: int = 256, d: int = 784, h: int = 100, c: int = 10, seed: int = 0) -> dict:
    """A mini-batch and parameters (He-scaled), float64."""
    rng = np.random.default_rng(seed)
    return {
        "X": rng.normal(size=(n, d)),
        "y": rng.integers(0, c, n),
        "W1": rng.normal(size=(d, h)) * np.sqrt(2.0 / d),
        "b1": np.zeros(h),
        "W2": rng.normal(size=(h, c)) * np.sqrt(2.0 / h),
        "b2": np.zeros(c),
        "reg": 1e-3,
    }


def hand(X: Any, y: Any, W1: Any, b1: Any, W2: Any, b2: Any, reg: float) -> Result:
    """The cs231n two-layer net, forward and backward, as the assignment writes it."""
    N = X.shape[0]
    hidden = np.maximum(0, X @ W1 + b1)
    scores = hidden @ W2 + b2
    shifted = scores - scores.max(axis=1, keepdims=True)
    exp = np.exp(shifted)
    probs = exp / exp.sum(axis=1, keepdims=True)
    loss = -np.log(probs[np.arange(N), y]).mean() + 0.5 * reg * (np.sum(W1 * W1) + np.sum(W2 * W2))
    dscores = probs
    dscores[np.arange(N), y] -= 1
    dscores /= N
    dW2 = hidden.T @ dscores + reg * W2
    db2 = dscores.sum(axis=0)
    dhidden = dscores @ W2.T
    dhidden[hidden <= 0] = 0
    dW1 = X.T @ dhidden + reg * W1
    db1 = dhidden.sum(axis=0)
    return loss, {"W1": dW1, "b1": db1, "W2": dW2, "b2": db2}


def _graphc(inputs: dict, target: str = "numpy", reuse: bool = False) -> Callable[[], Result]:
    """The generated value_and_grad; with ``reuse``, each call passes ``out=`` the
    previous result, as the training example does."""
    import graphc

    compiled = graphc.compile(PROGRAM, wrt=list(PARAMS), target=target)
    if compiled.target != target:
        raise UnavailableError(f"target {target!r} not available")
    vg = compiled.module.value_and_grad
    return _reusing(vg, inputs) if reuse else lambda: vg(**inputs)


def _matmuls(inputs: dict) -> Callable[[], Any]:
    """The hand-written pass's five matrix products on its own intermediate arrays."""
    X, W1, W2 = inputs["X"], inputs["W1"], inputs["W2"]
    hidden = np.maximum(0, X @ W1 + inputs["b1"])
    dscores = np.random.default_rng(1).normal(size=(X.shape[0], W2.shape[1]))
    dhidden = dscores @ W2.T

    def call() -> Any:
        return (X @ W1, hidden @ W2, hidden.T @ dscores, dscores @ W2.T, X.T @ dhidden)

    return call


def _torch(inputs: dict) -> Callable[[], Result]:
    torch = _need("torch")
    from .threads import pin_torch

    pin_torch(torch)
    F = torch.nn.functional
    X, y = torch.from_numpy(inputs["X"]), torch.from_numpy(inputs["y"])
    ps = {k: torch.from_numpy(inputs[k].copy()).requires_grad_(True) for k in PARAMS}
    reg = inputs["reg"]

    def call() -> Result:
        h = torch.relu(X @ ps["W1"] + ps["b1"])
        s = h @ ps["W2"] + ps["b2"]
        loss = F.cross_entropy(s, y) + 0.5 * reg * ((ps["W1"] ** 2).sum() + (ps["W2"] ** 2).sum())
        grads = torch.autograd.grad(loss, [ps[k] for k in PARAMS])
        return loss.item(), {k: g.numpy() for k, g in zip(PARAMS, grads, strict=True)}

    return call


def _jax(inputs: dict) -> Callable[[], Result]:
    jax = _need("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy

    def loss(params: dict, X: Any, y: Any, reg: float) -> Any:
        h = jax.nn.relu(X @ params["W1"] + params["b1"])
        s = h @ params["W2"] + params["b2"]
        ls = jax.nn.log_softmax(s, axis=1)
        data = -jnp.mean(jnp.take_along_axis(ls, y[:, None], axis=1))
        return data + 0.5 * reg * (jnp.sum(params["W1"] ** 2) + jnp.sum(params["W2"] ** 2))

    vg = jax.jit(jax.value_and_grad(loss))
    params = {k: jnp.asarray(inputs[k]) for k in PARAMS}
    X, y = jnp.asarray(inputs["X"]), jnp.asarray(inputs["y"])

    def call() -> Result:
        value, grads = jax.block_until_ready(vg(params, X, y, inputs["reg"]))
        return value, dict(grads)

    call()  # trace and compile outside the timing
    return call


def _pytensor(inputs: dict) -> Callable[[], Result]:
    pytensor = _need("pytensor")
    pt = pytensor.tensor
    X, y = pt.dmatrix("X"), pt.lvector("y")
    W1, W2 = pt.dmatrix("W1"), pt.dmatrix("W2")
    b1, b2 = pt.dvector("b1"), pt.dvector("b2")
    reg = pt.dscalar("reg")
    h = pt.maximum(X @ W1 + b1, 0)
    s = h @ W2 + b2
    ls = s - pt.logsumexp(s, axis=1, keepdims=True)
    loss = -pt.mean(ls[pt.arange(y.shape[0]), y]) + 0.5 * reg * (pt.sum(W1**2) + pt.sum(W2**2))
    params = [W1, b1, W2, b2]
    fn = pytensor.function([X, y, W1, b1, W2, b2, reg], [loss, *pytensor.grad(loss, params)])
    args = [inputs[k] for k in ("X", "y", "W1", "b1", "W2", "b2", "reg")]

    def call() -> Result:
        value, *grads = fn(*args)
        return value, dict(zip(PARAMS, grads, strict=True))

    return call


def setup(impl: str, inputs: dict) -> Callable[[], Result]:
    """A zero-argument call of implementation ``impl`` at ``inputs``."""
    if impl == "numpy (hand)":
        return lambda: hand(**inputs)
    makers = {
        "graphc": _graphc,
        "graphc c": lambda inputs: _graphc(inputs, "c"),
        "graphc out=": lambda inputs: _graphc(inputs, reuse=True),
        "graphc c out=": lambda inputs: _graphc(inputs, "c", reuse=True),
        "torch": _torch,
        "jax.jit": _jax,
        "pytensor": _pytensor,
        "matmuls alone (floor)": _matmuls,
    }
    if impl not in makers:
        raise UnavailableError(f"unknown implementation {impl!r}")
    return makers[impl](inputs)
