"""JAX (float64) as an independent oracle for graphc's gradients.

Random expressions of graphc's grammar are built as graphc text and, separately, as JAX
code (see ``test_oracles_common.py``); graphc's ``Graph.evaluate`` and both targets of
``graphc.compile`` must give ``jax.value_and_grad``'s value and gradients.
"""

from __future__ import annotations

import math

import pytest
from hypothesis import assume, example, given, settings

jax = pytest.importorskip("jax")
jax.config.update("jax_enable_x64", True)
jnp = jax.numpy

from test_oracles_common import (  # noqa: E402
    DEGENERATE,
    SETTINGS,
    VARS,
    Kink,
    assert_close,
    graphc_results,
    points,
    to_library,
    to_text,
    trees,
)

JAX = {
    "exp": jnp.exp,
    "log": jnp.log,
    "sqrt": jnp.sqrt,
    "sin": jnp.sin,
    "cos": jnp.cos,
    "tan": jnp.tan,
    "tanh": jnp.tanh,
    "sigmoid": jax.nn.sigmoid,
    "relu": jax.nn.relu,
    "softplus": jax.nn.softplus,
    "abs": jnp.abs,
    "max": jnp.maximum,
    "min": jnp.minimum,
}
POINT = {"x": 0.75, "y": -1.25, "z": 1.5}


def jax_value_and_grad(tree, point):
    args = [jnp.float64(point[v]) for v in VARS]
    # a concrete pass first: kinks are detected on values, which tracers do not expose
    to_library(tree, dict(zip(VARS, args, strict=True)), JAX, value=float)

    def f(*xs):
        return jnp.asarray(to_library(tree, dict(zip(VARS, xs, strict=True)), JAX, lambda a: 0.5))

    value, grads = jax.value_and_grad(f, argnums=(0, 1, 2))(*args)
    return float(value), {v: float(g) for v, g in zip(VARS, grads, strict=True)}


@settings(SETTINGS, max_examples=20)
@given(trees(), points())
@example(DEGENERATE[0], POINT)
@example(DEGENERATE[1], POINT)
def test_random_expressions_match_jax(tree, point):
    try:
        value, grads = jax_value_and_grad(tree, point)
    except Kink:
        assume(False)
    assume(all(math.isfinite(v) and abs(v) < 1e8 for v in (value, *grads.values())))
    text = to_text(tree)
    for where, gvalue, ggrads in graphc_results(text, point):
        assert_close(gvalue, value, f"{where}: {text}")
        for name, g in ggrads.items():
            assert_close(g, grads[name], f"{where} d/d{name}: {text}")


@pytest.mark.parametrize(
    ("text", "jax_fn", "values"),
    [
        ("s: (n,)\nf = logsumexp(s)", lambda s: jax.nn.logsumexp(s), [-math.inf, -math.inf]),
        ("s: (n,)\nf = sum(softmax(s))", lambda s: jnp.sum(jax.nn.softmax(s)), [-math.inf] * 2),
        ("s: (n,)\nf = max(s)", lambda s: jnp.max(s), [1.0, math.nan, 0.0]),
        ("s: (n,)\nf = max(s)", lambda s: jnp.max(s), [math.inf, math.inf, 0.0]),
        ("s: (n,)\nf = sum(log_softmax(s))", lambda s: jnp.sum(jax.nn.log_softmax(s)),
         [-math.inf, 0.0]),
    ],
)  # fmt: skip
def test_tensor_reductions_at_degenerate_points_match_jax(text, jax_fn, values):
    """Scores all -inf (softmax's 0/0) and a maximum that is NaN: graphc's NaN where JAX
    gives NaN, its numbers where JAX gives numbers, and no RuntimeWarning (the 0/0 warned
    in NumPy's division)."""
    import warnings

    import numpy as np

    import graphc

    s = np.array(values)
    want_f, want_g = jax.value_and_grad(jax_fn)(jnp.array(values))
    for target in ("numpy", "c"):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", graphc.GraphcWarning)  # (c: nothing to fuse)
            c = graphc.compile(text, target=target)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            f, g = c.value_and_grad(s=s)
        np.testing.assert_array_equal(f, np.asarray(want_f))  # (NaN equals NaN here)
        np.testing.assert_array_equal(g["s"], np.asarray(want_g))
