"""The tensor rows of the op table, row by row (as JAX's lax tests: a table mirroring it).

For every tensor op: its NumPy lowering equals its SymPy forward rule on object arrays
(and an independent NumPy expression written here), its shape rule gives the lowering's
shape, and each VJP equals central finite differences of ``sum(out * G)`` for a random
cotangent ``G``. A tensor row without an entry here fails ``test_every_tensor_row_is_tested``.
"""

from __future__ import annotations

import numpy as np
import pytest
import sympy as sp

import graphc
from graphc.ops import OPS, numpy_callable

RNG = np.random.default_rng(7)


def _softmax(s, axis=-1):
    e = np.exp(s - s.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _lse(s, axis=None, keepdims=False):
    m = np.max(s, axis=axis, keepdims=True)
    out = np.log(np.sum(np.exp(s - m), axis=axis, keepdims=True)) + m
    return out if keepdims else np.squeeze(out, axis=axis)


#: op -> (argument shapes, attributes, labels (argument index -> classes), NumPy oracle)
CASES = {
    "matmul": ([(3, 4), (4, 2)], {}, {}, lambda a, b: a @ b),
    "dot": ([(4,), (4, 2)], {}, {}, lambda a, b: np.dot(a, b)),
    "outer": ([(3,), (2,)], {}, {}, lambda a, b: np.multiply.outer(a, b)),
    "transpose": ([(3, 2)], {}, {}, lambda a: a.T),
    "sum": ([(3, 4)], {"axis": 1, "keepdims": True}, {}, lambda a: a.sum(1, keepdims=True)),
    "mean": ([(3, 4)], {"axis": 0}, {}, lambda a: a.mean(0)),
    "amax": ([(3, 4)], {"axis": 1}, {}, lambda a: a.max(1)),
    "amin": ([(3, 4)], {}, {}, lambda a: a.min()),
    "logsumexp": ([(3, 4)], {"axis": 1}, {}, lambda a: _lse(a, 1)),
    "softmax": ([(3, 4)], {}, {}, lambda a: _softmax(a)),
    "log_softmax": ([(3, 4)], {"axis": 0}, {}, lambda a: np.log(_softmax(a, 0))),
    "pick": ([(3, 4), (3,)], {}, {1: 4}, lambda s, y: s[np.arange(3), y]),
    "one_hot": ([(3,)], {"depth": 4}, {0: 4}, lambda y: np.eye(4)[y]),
    "reshape": ([(3, 4)], {"shape": (2, 6)}, {}, lambda a: a.reshape(2, 6)),
    "size": ([(3, 4)], {"axis": 1}, {}, lambda a: 4.0),
    "expand": ([(3,), (3, 4)], {"axis": 1, "mean": True}, {},
               lambda g, like: np.broadcast_to(g[:, None] / 4, (3, 4))),
    "max_mask": ([(3, 4), (3,)], {"axis": 1}, {},
                 lambda x, m: (x == m[:, None]) / (x == m[:, None]).sum(1, keepdims=True)),
    "unpick": ([(3,), (3, 4), (3,)], {}, {2: 4},
               lambda g, s, y: np.eye(4)[y] * g[:, None]),
    "sumsq": ([(3, 4)], {}, {}, lambda a: np.sum(a * a)),
    "softmax_ce": ([(3, 4), (3,)], {}, {1: 4},
                   lambda s, y: np.mean(_lse(s, 1) - s[np.arange(3), y])),
    "softmax_ce_grad": ([(3, 4), (3,), ()], {}, {1: 4},
                        lambda s, y, g: (_softmax(s) - np.eye(4)[y]) * g / 3),
}  # fmt: skip

TENSOR_ROWS = sorted(n for n in OPS if OPS[n].tensor)


def _args(name):
    shapes, attrs, labels, _ = CASES[name]
    args = []
    for i, shape in enumerate(shapes):
        if i in labels:
            args.append(RNG.integers(0, labels[i], size=shape))
        else:
            args.append(RNG.normal(size=shape))
    if name == "max_mask":  # m must be the slices' maxima
        args[1] = args[0].max(axis=1)
    return args, attrs


def test_every_tensor_row_is_tested():
    assert sorted(CASES) == TENSOR_ROWS


@pytest.mark.parametrize("name", TENSOR_ROWS)
def test_lowering_equals_numpy_oracle_and_shape_rule(name):
    args, attrs = _args(name)
    got = numpy_callable(name)(*args, **attrs)
    np.testing.assert_allclose(got, CASES[name][3](*args), rtol=1e-12, atol=1e-14)
    row = OPS[name]
    assert row.shape([np.shape(a) for a in args], **attrs) == np.shape(got)


@pytest.mark.parametrize(
    "name", [n for n in TENSOR_ROWS if OPS[n].sympy.__name__ != "_no_closed_form"]
)
def test_sympy_forward_equals_lowering(name):
    args, attrs = _args(name)
    labels = CASES[name][2]
    row = OPS[name]
    sym_args = [a if i in labels else np.asarray(a, dtype=object) for i, a in enumerate(args)]
    if name in ("expand", "unpick"):
        sym_args = [np.asarray(a, dtype=object) if i not in labels else a
                    for i, a in enumerate(args)]  # fmt: skip
    want = numpy_callable(name)(*args, **attrs)
    got = np.asarray(row.sympy(*sym_args, **attrs), dtype=object)
    got = np.vectorize(lambda e: float(sp.N(e)), otypes=[float])(got)
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-12)


_NO_VJP_CHECK = {"max_mask", "softmax_ce_grad"}  # piecewise constant / written only in code


@pytest.mark.parametrize("name", [n for n in TENSOR_ROWS if n not in _NO_VJP_CHECK])
def test_vjp_equals_finite_differences(name):
    """Build ``sum(op(args) * G)`` as a graph, differentiate it, compare with FD."""
    args, attrs = _args(name)
    shapes, _, labels, _ = CASES[name]
    names = [f"a{i}" for i in range(len(args))]
    decl = "; ".join(
        f"{n}: ({', '.join(map(str, s))}{',' if len(s) == 1 else ''})"
        + (" int" if i in labels else "")
        for i, (n, s) in enumerate(zip(names, shapes, strict=True))
    )
    fn = OPS[name].called()
    out = numpy_callable(name)(*args, **attrs)
    G = RNG.normal(size=np.shape(out))
    if fn is None:  # an op graphc writes in gradients: build it directly
        from graphc.graph import Builder

        b = Builder(shapes={n: (tuple(s), "int" if i in labels else "float")
                            for i, (n, s) in enumerate(zip(names, shapes, strict=True))},
                    text=None)  # fmt: skip
        nodes = [b.input(n) for n in names]
        gate = b.gate(name, nodes, None, tuple(attrs.items()))
        g_in = b.input("G")
        b.shapes = {**b.shapes, "G": (tuple(np.shape(out)), "float")}
        b.g.nodes[g_in]["shape"] = tuple(np.shape(out))
        total = b.gate("sum", (b.gate("mul", (gate, g_in)),))
        graph = b.finish(total, (*names, "G"))
    else:
        kw = "".join(
            f", {k}={v!r}".replace("'", "") if k != "depth" else f", {v}" for k, v in attrs.items()
        )
        gdecl = f"G: ({', '.join(map(str, np.shape(out)))}{',' if np.ndim(out) == 1 else ''})"
        graph = graphc.parse(f"{decl}; {gdecl}\nf = sum({fn}({', '.join(names)}{kw}) * G)")
    point = {**dict(zip(names, args, strict=True)), "G": G}
    ev = graph.evaluate(**point)

    def f(**p):
        return float(np.sum(numpy_callable(name)(*(p[n] for n in names), **attrs) * p["G"]))

    for i, n in enumerate(names):
        if i in labels:
            continue
        base = np.array(args[i], dtype=float)
        want = np.zeros_like(base)
        for idx in np.ndindex(base.shape):
            up, down = base.copy(), base.copy()
            up[idx] += 1e-6
            down[idx] -= 1e-6
            want[idx] = (f(**{**point, n: up}) - f(**{**point, n: down})) / 2e-6
        np.testing.assert_allclose(ev.grads[n], want, rtol=1e-5, atol=1e-7, err_msg=(name, n))
