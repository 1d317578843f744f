"""``value_and_grad(..., out=earlier_result)``: results written into the caller's arrays.

Oracles: the same function called without ``out=`` (on copies of the inputs), the
hand-written two-layer network of the benchmarks, and evaluation. Each test would fail
if ``out=`` were ignored (identity checks), wrote into an array it must not (inputs,
arrays that do not fit, one array given twice), or changed a number.
"""

from __future__ import annotations

import importlib.util
import shutil
import warnings

import numpy as np
import pytest

import graphc
from graphc.errors import InputError

NEURON = "f = 1/(1 + exp(-(w0*x0 + w1*x1 + w2)))"
NET = """
X: (N, D); y: (N,) int
W1: (D, H); b1: (H,); W2: (H, C); b2: (C,)
h = relu(X @ W1 + b1)
s = h @ W2 + b2
loss = mean(logsumexp(s, axis=1) - pick(s, y)) + 0.5 * reg * (sum(W1^2) + sum(W2^2))
"""
PARAMS = ("W1", "b1", "W2", "b2")
HAS_CC = shutil.which("cc") is not None or shutil.which("gcc") is not None
TARGETS = ["numpy", pytest.param("c", marks=pytest.mark.skipif(not HAS_CC, reason="no cc"))]


def _compile(text, target, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # a C target that fell back would not test C
        return graphc.compile(text, target=target, **kw)


def _neuron_point(n=1000, seed=0):
    rng = np.random.default_rng(seed)
    return {k: rng.normal(size=n) for k in ("w0", "x0", "w1", "x1", "w2")}


def _copy(result):
    f, grads = result
    return np.array(f), {k: np.array(g) for k, g in grads.items()}


def _same(a, b):
    f, g = a
    f2, g2 = b
    np.testing.assert_array_equal(f, f2)
    assert set(g) == set(g2)
    for k in g:
        np.testing.assert_array_equal(g[k], g2[k], err_msg=k)


@pytest.mark.parametrize("target", TARGETS)
def test_an_elementwise_call_writes_into_the_arrays_of_an_earlier_result(target):
    vg = _compile(NEURON, target).value_and_grad
    p = _neuron_point()
    first = vg(**p)
    expected = _copy(vg(**_neuron_point(seed=1)))
    again = vg(**_neuron_point(seed=1), out=first)
    _same(again, expected)
    assert again[0] is first[0]
    assert all(again[1][k] is first[1][k] for k in first[1])


@pytest.mark.parametrize("target", TARGETS)
def test_a_training_loop_with_out_takes_the_same_steps(target):
    """Five SGD steps of the two-layer network: with out= every step returns the same
    arrays, and the parameters end where a loop without out= ends."""
    from benchmarks.mlp import hand, point

    vg = _compile(NET, target, wrt=list(PARAMS)).value_and_grad
    inputs = point(n=32, d=20, h=8, c=5)
    plain = {k: inputs[k].copy() for k in PARAMS}
    reused = {k: inputs[k].copy() for k in PARAMS}
    data = {k: inputs[k] for k in ("X", "y", "reg")}
    result = None
    for _ in range(5):
        loss, grads = vg(**data, **plain)
        ref_loss, ref = hand(**data, **plain)
        np.testing.assert_allclose(loss, ref_loss, rtol=1e-12)
        for k in PARAMS:
            np.testing.assert_allclose(grads[k], ref[k], rtol=1e-10, atol=1e-13)
            plain[k] -= 0.5 * grads[k]
        before = result
        result = vg(**data, **reused, out=result)
        if before is not None:
            assert all(result[1][k] is before[1][k] for k in PARAMS)
        for k in PARAMS:
            reused[k] -= 0.5 * result[1][k]
    for k in PARAMS:
        np.testing.assert_array_equal(reused[k], plain[k], err_msg=k)


def test_the_gates_write_into_out_directly_where_they_are_calls():
    numpy_src = graphc.compile(NET, wrt=list(PARAMS)).source
    # a gradient that adds into a dying matrix product: the product goes into out=
    assert ", out=_out_dW1)  # branch of ∂loss/∂W1 through" in numpy_src
    assert "dW1 = np.add(dW1_1, dW1_2, out=dW1_1)" in numpy_src
    neuron = graphc.compile(NEURON).source
    assert "_sigmoid(add_2, out=_out_value if _out_value is not None else add_2)" in neuron
    # a returned value's operator line takes out= too (a copy at the end would cost a
    # pass more than no out=); forward keeps the notes' operators
    xyz = graphc.compile("q = x + y; f = q * z").source
    vg, fwd = xyz.split("def forward(")
    assert "q = np.add(x, y, out=_out_dz)  # + gate" in vg
    assert "f = np.multiply(q, z, out=_out_value)  # × gate" in vg
    assert "        q = x + y  # + gate" in fwd and "f = np.multiply(q, z, out=q)  # × gate" in fwd
    if HAS_CC:
        c_src = _compile(NET, "c", wrt=list(PARAMS)).source
        # the matrix product under each weight's gradient goes into out=, the loop adds
        # the L2 term into it in place
        assert ", out=_out_dW1)" in c_src and ", out=_out_dW2)" in c_src


@pytest.mark.parametrize("target", TARGETS)
def test_arrays_that_do_not_fit_are_left_alone(target):
    vg = _compile(NEURON, target).value_and_grad
    p = _neuron_point()
    inputs = {k: v.copy() for k, v in p.items()}
    expected = _copy(vg(**p))
    wrong_shape = np.zeros(999)
    wrong_dtype = np.zeros(1000, dtype=np.float32)
    read_only = np.zeros(1000)
    read_only.flags.writeable = False
    strided = np.zeros(2000)[::2]
    shared = np.zeros(1000)
    untouched = [a.copy() for a in (wrong_shape, wrong_dtype, read_only, strided)]
    out = (wrong_shape, {"w0": wrong_dtype, "x0": read_only, "w1": strided,
                         "x1": p["x1"], "w2": shared})  # fmt: skip
    got = vg(**p, out=out)
    _same(got, expected)
    for a, before in zip((wrong_shape, wrong_dtype, read_only, strided), untouched, strict=True):
        np.testing.assert_array_equal(a, before)
    for k in p:  # an input given as an out= array is not written
        np.testing.assert_array_equal(p[k], inputs[k])
    assert got[1]["x1"] is not p["x1"]
    assert got[1]["w2"] is shared  # the one array that fits
    # one array given for two results serves the first only
    twice = np.zeros(1000)
    got = vg(**p, out=(twice, {"w0": twice}))
    _same(got, expected)
    assert got[0] is twice and got[1]["w0"] is not twice


def test_a_broadcast_input_gets_a_fresh_gradient_of_its_own_shape():
    vg = graphc.compile("f = x * y").value_and_grad
    x, y = np.arange(6.0).reshape(2, 3), np.array([1.0, 2.0, 3.0])
    first = vg(x=x, y=y)
    again = vg(x=x, y=y, out=first)
    assert again[1]["x"] is first[1]["x"] and again[0] is first[0]
    assert again[1]["y"].shape == (3,)
    np.testing.assert_array_equal(again[1]["y"], x.sum(axis=0))


def test_float32_results_go_into_float32_arrays():
    vg = graphc.compile(NEURON).value_and_grad
    p = {k: v.astype(np.float32) for k, v in _neuron_point().items()}
    first = vg(**p)
    assert first[0].dtype == np.float32
    again = vg(**p, out=first)
    assert again[0] is first[0] and again[1]["w0"] is first[1]["w0"]


@pytest.mark.parametrize("bad", [5, (1, 2), [np.zeros(3), {}], (np.zeros(3), [])])
def test_an_out_that_is_not_a_result_is_refused_clearly(bad):
    c = graphc.compile(NEURON)
    with pytest.raises(InputError, match=r"out= takes an earlier result"):
        c.value_and_grad(**_neuron_point(), out=bad)


def test_an_input_called_out_is_an_input():
    c = graphc.compile("f = out * 2")
    f, grads = c.value_and_grad(out=np.array([3.0]))
    assert float(f[0]) == 6.0 and float(grads["out"][0]) == 2.0


def test_a_saved_module_takes_out_without_graphc(tmp_path):
    c = graphc.compile(NET, wrt=list(PARAMS))
    path = c.save(tmp_path / "net.py")
    spec = importlib.util.spec_from_file_location("saved_net", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    from benchmarks.mlp import point

    inputs = point(n=16, d=10, h=6, c=4)
    first = module.value_and_grad(**inputs)
    again = module.value_and_grad(**inputs, out=first)
    assert all(again[1][k] is first[1][k] for k in PARAMS)
    _same(again, c.value_and_grad(**inputs))


@pytest.mark.parametrize("padding", [0, 40])  # few arrays: NumPy's checks; many: byte spans
def test_the_overlap_check_keeps_only_arrays_that_share_no_memory(padding):
    from graphc.c_runtime import _disjoint

    z = np.zeros(20)
    x = np.zeros(10)
    extra = [np.zeros(3) for _ in range(padding)]
    given = [x, np.zeros(4), None, z[:10], z[5:15], z[::-1][:3], *extra, extra[0] if extra else z]
    got = _disjoint(given, [x, z[15:], *(np.zeros(2) for _ in range(padding))])
    kept = [a is not None for a in got]
    # x is an input; z[5:15] overlaps the kept z[:10]; z[::-1][:3] is z[17:20], inside
    # the input z[15:]; the last one repeats an array kept before it
    assert kept[:6] == [False, True, False, True, False, False]
    assert all(kept[6:-1]) and not kept[-1]
    assert all(g is a for g, a in zip(got, given, strict=True) if g is not None)


@pytest.mark.parametrize("target", TARGETS)
def test_call_errors_with_out_name_the_real_fault(target):
    c = _compile("f = x * y", target)
    x = np.ones(3)
    with pytest.raises(InputError, match="missing value for input y"):
        c.value_and_grad(x=x, out=None)
    with pytest.raises(InputError, match="unknown input 'w'"):
        c.value_and_grad(x=x, y=x, w=x, out=None)
    with pytest.raises(InputError, match="unknown input 'out'"):  # forward takes no out=
        c.forward(x=x, y=x, out=None)
