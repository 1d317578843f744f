"""target="c" on tensor programs: fused elementwise loops between NumPy/BLAS calls.

Each workload of the tensors suite, and broadcasting programs (a row vector over a
matrix, a keepdims column, a scalar), compiled for the C target agree with the NumPy
target (values and gradients, libmvec's tolerance as in test_ctarget.py) and with
finite differences of independently written NumPy; returned arrays are fresh, inputs
are never written, float32 keeps NumPy's code, and a saved module runs without graphc.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import warnings

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st
from test_ctarget import _BINARY, _UNARY, _same
from test_tensors import (
    WORKLOADS,
    _square_programs,
    agrees_with_evaluation,
    fd_grad,
    tensor_point,
    tensor_programs,
)

import graphc
from graphc.ctarget import CTargetWarning, Kernel, fuse

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                reason="no C compiler")  # fmt: skip

#: Programs with no run of two elementwise gates of one shape and no row loop: NumPy,
#: with a warning.
UNFUSED = ("X: (N, D); W: (D, H)\nf = sum(X @ W)",)


def _compile_c(text, **kw):
    with warnings.catch_warnings():
        warnings.simplefilter("error", CTargetWarning)
        return graphc.compile(text, target="c", **kw)


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_workloads_agree_with_the_numpy_target_and_finite_differences(name):
    text, forward, point = WORKLOADS[name]
    c = _compile_c(text)
    assert c.target == "c" and ("one C loop" in c.source or "= RowLoop(" in c.source)
    before = {k: np.copy(v) for k, v in point.items()}
    f, grads = c.value_and_grad(**point)
    f0, grads0 = graphc.compile(text).value_and_grad(**point)
    assert _same(f, f0) and float(f) == pytest.approx(forward(**point), rel=1e-12)
    for k, g in grads.items():
        assert g.shape == np.shape(point[k]) and _same(g, grads0[k]), k
        np.testing.assert_allclose(g, fd_grad(forward, point, k), rtol=1e-5, atol=1e-7)
        for v in (*point.values(), *(h for j, h in grads.items() if j != k)):
            assert not np.shares_memory(g, v), k
    for k, v in before.items():  # fused loops write only into arrays the call made
        np.testing.assert_array_equal(point[k], v)


@pytest.mark.parametrize("text", UNFUSED)
def test_programs_with_nothing_to_fuse_get_the_numpy_target_and_say_why(text):
    with pytest.warns(CTargetWarning, match="no run of two or more elementwise gates"):
        c = graphc.compile(text, target="c")
    assert c.target == "numpy"


_CE = "S: (N, C); y: (N,) int\nL = mean(logsumexp(S, axis=1) - pick(S, y))"


def _row_loops(helpers: dict[str, list[int]]):
    """The softmax CE module's two row loops, each over a helper that counts its calls."""
    ns = _compile_c(_CE).module.__dict__
    RowLoop = ns["RowLoop"]  # the module carries its own copy of the runtime
    assert isinstance(ns["_softmax_ce"], RowLoop) and isinstance(ns["_softmax_ce_grad"], RowLoop)
    loops = {}
    for name in ("_softmax_ce", "_softmax_ce_grad"):
        numpy_helper = ns[name].helper

        def counted(*args, _f=numpy_helper, _name=name):
            helpers[_name].append(1)
            return _f(*args)

        loops[name] = RowLoop(ns[name].fn, counted, ns[name].grad), numpy_helper
    return loops


_HARD_ROWS = [
    [1.0, 2.0, 3.0, 4.0],
    [1e300, -1e300, 0.0, 5.0],  # a large score: the shift keeps exp finite
    [-np.inf, -np.inf, -np.inf, -np.inf],  # every class impossible: NaN, as NumPy
    [np.inf, 0.0, 1.0, 2.0],
    [np.nan, 0.0, 1.0, 2.0],
    [-800.0, -801.0, -799.5, -2000.0],  # exp of every unshifted score underflows
    [0.0, 0.0, 0.0, 0.0],
]


@pytest.mark.parametrize("row", range(len(_HARD_ROWS)))
def test_softmax_ce_row_loops_give_the_numpy_helpers_results(row):
    """The C row loops (the loss, its gradient) against the NumPy helpers they stand for,
    on one hard row among ordinary ones, every label; the C loop runs (no helper call)."""
    calls: dict[str, list[int]] = {"_softmax_ce": [], "_softmax_ce_grad": []}
    loops = _row_loops(calls)
    rng = np.random.default_rng(row)
    S = rng.normal(size=(6, 4)) * 3
    S[2] = _HARD_ROWS[row]
    for label in range(4):
        y = rng.integers(0, 4, 6)
        y[2] = label
        with np.errstate(all="ignore"):
            for name, (loop, helper) in loops.items():
                args = (S, y, 0.7) if name.endswith("grad") else (S, y)
                got, want = loop(*args), helper(*args)
                assert type(got) is type(want) and np.shape(got) == np.shape(want)
                assert _same(got, want), (name, got, want)
    assert calls == {"_softmax_ce": [], "_softmax_ce_grad": []}


def test_softmax_ce_row_loops_leave_what_does_not_fit_to_the_numpy_helper():
    """A label that is not a class raises the helper's error; float32 scores, one row as
    a vector, an empty batch, a transposed array and float labels run the helper."""
    calls: dict[str, list[int]] = {"_softmax_ce": [], "_softmax_ce_grad": []}
    loops = _row_loops(calls)
    loss, _ = loops["_softmax_ce"]
    grad, _ = loops["_softmax_ce_grad"]
    S = np.arange(12.0).reshape(3, 4)
    for bad in (-1, 4):
        with pytest.raises(ValueError, match=f"label {bad} is not a class: the labels are 0 to 3"):
            loss(S, np.array([0, bad, 1]))
        with pytest.raises(ValueError, match=f"label {bad} is not a class"):
            grad(S, np.array([0, 1, bad]), 1.0)
    n = len(calls["_softmax_ce"])
    y = np.array([0, 2, 1])
    unfit = (S.astype(np.float32), np.asfortranarray(S), S[:, :3].T.copy().T, S[:0])
    for s in unfit:
        with np.errstate(all="ignore"), warnings.catch_warnings():
            warnings.simplefilter("ignore", RuntimeWarning)  # the mean of an empty batch
            got, want = loss(s, y[: len(s)]), loss.helper(s, y[: len(s)])
        assert _same(got, want) or (np.isnan(got) and np.isnan(want))
    assert len(calls["_softmax_ce"]) == n + 2 * len(unfit)  # each loop call, and the check
    assert _same(loss(S, y.astype(np.int32)), loss(S, y))  # int32 labels: the C loop
    assert len(calls["_softmax_ce"]) == n + 2 * len(unfit)
    f, grads = _compile_c(_CE).value_and_grad(S=S.astype(np.float32), y=y)
    assert grads["S"].dtype == np.float32 and np.isfinite(f)
    # forward (the NumPy code, with the row loop bound over _softmax_ce) as the NumPy target
    assert _same(_compile_c(_CE).forward(S=S, y=y), graphc.compile(_CE).forward(S=S, y=y))


BROADCASTING = [
    # a keepdims column and a row vector over a matrix, a scalar, an alias
    ("x: (N, C); b: (C,); f = sum(tanh(x - max(x, axis=1, keepdims=True)) * b + x * b * t)",
     lambda x, b, t: np.sum(np.tanh(x - x.max(axis=1, keepdims=True)) * b + x * b * t),
     {"x": (5, 4), "b": (4,), "t": ()}),
    # 3-d: a row of the last two dims, exp and log in the loop
    ("x: (A, B, C); w: (B, C); f = sum(log(1 + exp(x * w)) * sigmoid(x - w))",
     lambda x, w: np.sum(np.log(1 + np.exp(x * w)) / (1 + np.exp(-(x - w)))),
     {"x": (2, 3, 4), "w": (3, 4)}),
    # a column of the first dims (A, B, 1) and a (1, C) row: two loops or one
    ("x: (A, B, C); m: (A, B, 1); r: (1, C); f = sum(softplus(x * m) * r - x * r)",
     lambda x, m, r: np.sum(np.logaddexp(0, x * m) * r - x * r),
     {"x": (2, 3, 4), "m": (2, 3, 1), "r": (1, 4)}),
]  # fmt: skip


@pytest.mark.parametrize(("text", "forward", "shapes"), BROADCASTING)
def test_broadcast_rows_columns_and_scalars(text, forward, shapes):
    rng = np.random.default_rng(7)
    point = {k: rng.normal(size=s) if s else np.float64(rng.normal()) for k, s in shapes.items()}
    c = _compile_c(text)
    f, grads = c.value_and_grad(**point)
    f0, grads0 = graphc.compile(text).value_and_grad(**point)
    assert float(f) == pytest.approx(forward(**point), rel=1e-12) and _same(f, f0)
    for k in point:
        assert np.shape(grads[k]) == np.shape(point[k]) and _same(grads[k], grads0[k]), k
        np.testing.assert_allclose(grads[k], fd_grad(forward, point, k), rtol=1e-5, atol=1e-7)


def test_edge_values_and_non_contiguous_inputs_agree_with_numpy():
    text, _, point = WORKLOADS["2-layer tanh"]
    c = _compile_c(text)
    point = dict(point)
    X = np.asfortranarray(point["X"])  # not C-contiguous: the loops read a copy
    X[0, 0], X[1, 1], X[2, 2] = np.inf, -np.inf, np.nan
    point["X"] = X
    point["W1"] = np.ascontiguousarray(point["W1"].T).T  # a transposed view
    with np.errstate(all="ignore"):
        f, grads = c.value_and_grad(**point)
        f0, grads0 = graphc.compile(text).value_and_grad(**point)
    assert _same(f, f0)
    for k in grads:
        assert _same(grads[k], grads0[k]), k


def test_float32_inputs_run_the_numpy_code_and_stay_float32():
    text, _, point = WORKLOADS["2-layer relu"]
    c = _compile_c(text)
    p32 = {k: v.astype(np.float32) if k != "y" else v for k, v in point.items()}
    f, grads = c.value_and_grad(**p32)
    f0, grads0 = graphc.compile(text).value_and_grad(**p32)
    assert f.dtype == np.float32 and f == f0
    for k in grads:
        assert grads[k].dtype == np.float32 and np.array_equal(grads[k], grads0[k])


def test_the_network_fuses_bias_relu_mask_and_weight_decay_into_four_loops():
    text, _, _ = WORKLOADS["2-layer relu"]
    source = _compile_c(text).source
    body = source[source.rindex("def value_and_grad") :]
    calls = [line.strip() for line in body.splitlines() if "one C loop" in line]
    assert len(calls) == 4, calls
    assert "h (relu)" in calls[0]
    # weight decay moved next to the matmul's gradient it is added to: one loop
    assert any("dW1_2 (×), dW1 (+)" in line for line in calls)
    # the C functions are in the module, one named statement per gate
    assert "void fused_4(" in source and "/* ∂loss/∂W1 */" in source


def test_fuse_moves_a_line_to_its_only_reader_and_overwrites_only_dead_temporaries():
    from graphc.lower import Line

    def line(var, op, *args):
        return Line(var, var, op, tuple(args), tuple(a if a.isidentifier() else None
                                                   for a in args))  # fmt: skip

    shape = {"x": ("N",), "w": ("N",), "m": ("N",), "t": ("N",), "u": ("N",), "k": (),
             "v": ("N",), "s": ()}  # fmt: skip
    lines = [
        line("m", "matmul", "x", "w"),  # stands for a fresh array (an op NumPy computes)
        line("t", "mul", "k", "x"),  # read only by v: moves down to it
        line("s", "sum", "m"),
        line("u", "exp", "m"),
        line("v", "add", "u", "t"),
    ]
    fused = fuse(lines, lambda n: shape.get(n), ["v", "m"])
    kernels = [x for x in fused if isinstance(x, Kernel)]
    assert len(kernels) == 1 and [x.var for x in kernels[0].lines] == ["u", "t", "v"]
    # m is returned: never overwritten; x is an input: never overwritten
    assert kernels[0].into == {}
    # v returned: it takes the dying product m's array (and the product is computed into
    # the caller's out= array, where given); never a dying array that no product made
    fused = fuse(lines, lambda n: shape.get(n), ["v"])
    kernel = next(x for x in fused if isinstance(x, Kernel))
    assert kernel.into == {"v": "m"}
    unproduct = [line("m", "exp", "x"), *lines[1:]]
    fused = fuse(unproduct, lambda n: shape.get(n), ["v"])
    assert next(x for x in fused if isinstance(x, Kernel)).into == {}
    # v read by a later line only: it overwrites m, which dies in the loop
    shape["r"] = ()
    fused = fuse([*lines, line("r", "sum", "v")], lambda n: shape.get(n), ["r"])
    kernel = next(x for x in fused if isinstance(x, Kernel))
    assert kernel.into == {"v": "m"}


def test_saved_module_runs_without_graphc(tmp_path):
    text, _, point = WORKLOADS["2-layer relu"]
    c = _compile_c(text)
    path = c.save(tmp_path / "net.py")
    np.savez(tmp_path / "point.npz", **point)
    script = (
        "import sys; sys.modules['graphc'] = None  # an import of graphc fails\n"
        "import numpy as np; sys.path.insert(0, '.'); import net\n"
        "p = dict(np.load('point.npz'))\n"
        "f, g = net.value_and_grad(**p)\n"
        "print(repr(float(f)), *(repr(float(g[k].sum())) for k in sorted(g)))\n"
    )
    # the caller's environment, BLAS settings included (OPENBLAS_CORETYPE picks the
    # kernel, and another kernel's matrix product may differ in the last bit)
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "cache")}
    done = subprocess.run([sys.executable, "-I", "-c", script], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr
    f, grads = c.value_and_grad(**point)
    expected = [repr(float(f)), *(repr(float(grads[k].sum())) for k in sorted(grads))]
    assert done.stdout.split() == expected
    assert path.read_text().startswith("# Generated by graphc")


@st.composite
def broadcast_programs(draw: st.DrawFn) -> str:
    """Random elementwise gates over a matrix, a row vector, a column and a scalar."""
    terms = ["x", "b", "c", "t", "0.5"]
    for _ in range(draw(st.integers(2, 7))):
        if draw(st.booleans()):
            terms.append(draw(st.sampled_from(_UNARY)).format(draw(st.sampled_from(terms))))
        else:
            a, b = draw(st.sampled_from(terms)), draw(st.sampled_from(terms))
            terms.append(draw(st.sampled_from(_BINARY)).format(a, b))
    return f"x: (N, C); b: (C,); c: (N, 1); t: ()\na = {terms[-1]}\nf = sum(a * x + a)"


@settings(max_examples=25, deadline=None)
@given(broadcast_programs(), st.integers(0, 2**32 - 1))
def test_random_broadcast_programs_agree_with_the_numpy_target(text, seed):
    rng = np.random.default_rng(seed)
    point = {"x": rng.normal(size=(4, 3)) * 3, "b": rng.normal(size=3) * 3,
             "c": rng.normal(size=(4, 1)) * 3, "t": np.float64(rng.normal())}  # fmt: skip
    point["x"][0, 0] = 0.0
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CTargetWarning)  # a program may have no run
        c = graphc.compile(text, target="c")
    with np.errstate(all="ignore"):
        f, grads = c.value_and_grad(**point)
        f0, grads0 = graphc.compile(text).value_and_grad(**point)
    assert _same(f, f0), text
    for k in grads:
        assert _same(grads[k], grads0[k]), (text, k)


def test_names_that_collide_with_the_modules_own_work_as_inputs():
    text = "np: (N, C); _fused_1: (C,); load: ()\nf = sum(tanh(np + _fused_1) * load + np)"
    rng = np.random.default_rng(3)
    point = {"np": rng.normal(size=(3, 4)), "_fused_1": rng.normal(size=4), "load": 0.7}
    c = _compile_c(text)
    f, grads = c.value_and_grad(**point)
    f0, grads0 = graphc.compile(text).value_and_grad(**point)
    assert _same(f, f0) and all(_same(grads[k], grads0[k]) for k in point)


def test_no_compiler_gives_the_numpy_target_for_a_tensor_program(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))  # nothing cached to fall back on
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("PATH", "/nonexistent")
    text, _, point = WORKLOADS["2-layer relu"]
    with pytest.warns(CTargetWarning, match="no C compiler"):
        c = graphc.compile(text, target="c")
    assert c.target == "numpy" and np.isfinite(c.value_and_grad(**point)[0])


_VIEWED = (
    "X: (D, D); W: (D, D); V: (D, D); b: (D,)\nt0 = X @ W\nt3 = (t0.T @ X).T @ W\n"
    "t4 = tanh(t0) * b + t3\nf = sum(t4 * X)"
)  # t0's array, dead by name after the loop, is still read through the view t0.T


@settings(max_examples=15, deadline=None)
@given(_square_programs(), st.integers(0, 2**32 - 1))
@example(_VIEWED, 0)
def test_random_programs_of_square_products_and_views_agree_with_evaluation(text, seed):
    # every array has one shape, so a loop may overwrite any dead temporary: never one
    # that a view (t0.T) still reads
    rng = np.random.default_rng(seed)
    point = {k: rng.normal(size=(3, 3)) * 0.5 for k in ("X", "W", "V")}
    point["b"] = rng.normal(size=3)
    ev = graphc.parse(text).evaluate(**point)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CTargetWarning)  # a program may have no run
        f, grads = graphc.compile(text, target="c").value_and_grad(**point)
    np.testing.assert_allclose(f, ev.value, rtol=1e-10, atol=1e-12)
    for k in point:
        np.testing.assert_allclose(grads[k], ev.grads[k], rtol=1e-9, atol=1e-11, err_msg=k)


@settings(max_examples=20, deadline=None)
@given(tensor_programs(), st.integers(0, 2**32 - 1))
@example(  # dW = -dt0 of a transposed view was F-ordered: no out= array for the next call
    "X: (N, D); W: (D, H); V: (H, D); b: (H,); c: (D,); s: ()\nt0 = b - W\nt1 = t0.T\n"
    "t2 = X @ W\nt3 = s + t1\nf = sum(t3 * t3)",
    0,
)
def test_random_tensor_programs_agree_with_evaluation(text, seed):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # CTargetWarning where a program has no run
        agrees_with_evaluation(text, tensor_point(seed), target="c")


def test_a_gradient_over_a_matrix_product_is_computed_into_the_callers_array():
    """dW1 = X.T @ dh + reg * W1: the product is computed into out='s array (one matmul
    with out=), the loop adds into it in place; without out=, into one fresh array that
    the result owns. Results agree with the NumPy target, earlier results stay intact."""
    text, _, point = WORKLOADS["2-layer relu"]
    c = _compile_c(text)
    assert "np.matmul(X.T, " in c.source and ", out=_out_dW1)" in c.source
    want_f, want = graphc.compile(text).value_and_grad(**point)
    first = c.value_and_grad(**point)
    kept = {k: np.copy(g) for k, g in first[1].items()}
    again = c.value_and_grad(**point, out=first)
    for f, grads in (first, again):
        assert _same(f, want_f)
        for k, g in grads.items():
            assert _same(g, want[k]) and g.flags.c_contiguous and g.shape == np.shape(point[k])
    assert all(again[1][k] is first[1][k] for k in first[1] if np.ndim(first[1][k]))
    third = c.value_and_grad(**point)  # no out=: fresh arrays, the earlier ones untouched
    for k, g in third[1].items():
        assert not np.shares_memory(g, again[1][k]) and _same(again[1][k], kept[k])
        for v in point.values():
            assert not np.shares_memory(g, v)
