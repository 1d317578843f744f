"""Hand-written fused loops in numba: the array workloads' forward and backward passes
in one loop over the elements, as someone who writes their own kernel would.

Each loop reads each input once and writes f and the gradients once (no temporaries),
in IEEE arithmetic (``fastmath=False``), single-threaded (no ``parallel``), into fresh
output arrays allocated per call as the other implementations do. Like the hand-written
NumPy reference, the (x+y)z loop returns z itself as ∂/∂x and ∂/∂y. Compiled by a call
in ``setup``, outside the timing.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from .workloads import Result, Workload


def _kernels(numba: Any) -> dict[str, Callable[..., Any]]:
    njit = numba.njit(fastmath=False, cache=False, error_model="numpy")

    @njit
    def mul_add(x, y, z, f, dz):
        for i in range(x.size):
            q = x[i] + y[i]
            f[i] = q * z[i]
            dz[i] = q

    @njit
    def neuron(w0, x0, w1, x1, w2, f, dw0, dx0, dw1, dx1, dw2):
        for i in range(w0.size):
            dot = w0[i] * x0[i] + w1[i] * x1[i] + w2[i]
            s = 1.0 / (1.0 + np.exp(-dot))
            ddot = (1.0 - s) * s
            f[i] = s
            dw0[i], dx0[i] = x0[i] * ddot, w0[i] * ddot
            dw1[i], dx1[i] = x1[i] * ddot, w1[i] * ddot
            dw2[i] = ddot

    @njit
    def staged(x, y, f, dx, dy):
        for i in range(x.size):
            sigy = 1.0 / (1.0 + np.exp(-y[i]))
            num = x[i] + sigy
            sigx = 1.0 / (1.0 + np.exp(-x[i]))
            xpy = x[i] + y[i]
            den = sigx + xpy * xpy
            invden = 1.0 / den
            f[i] = num * invden
            dden = (-1.0 / (den * den)) * num
            dxpy = 2.0 * xpy * dden
            dx[i] = dxpy + (1.0 - sigx) * sigx * dden + invden
            dy[i] = dxpy + (1.0 - sigy) * sigy * invden

    return {"muladd": mul_add, "neuron": neuron, "staged": staged}


def setup(w: Workload, inputs: dict[str, Any], numba: Any) -> Callable[[], Result]:
    """A zero-argument call of the numba loop for workload ``w`` at ``inputs``."""
    kernel = _kernels(numba)[w.name]
    args = [np.ascontiguousarray(inputs[n], dtype=np.float64) for n in w.inputs]
    shape = args[0].shape
    stored = {"muladd": ("z",), "neuron": w.inputs, "staged": w.inputs}[w.name]

    def call() -> Result:
        f = np.empty(shape)
        grads = {n: np.empty(shape) for n in stored}
        kernel(*args, f, *grads.values())
        if w.name == "muladd":
            grads = {"x": args[2], "y": args[2], "z": grads["z"]}
        return f, grads

    call()  # compile outside the timing
    return call
