"""target="c": the fused C loop against the NumPy target, evaluation and finite differences.

Differential tests over random programs (every elementwise op, edge points 0, ±inf and
NaN), broadcasting and float32, ``out=`` buffers, the compile cache and the fallback to
NumPy with a warning. Tolerance: libmvec's vector exp/log/sin/... are within 4 ulp of
libm, so values agree to a relative 1e-9 (cancellation such as 1 - tanh² near
saturation amplifies those ulps), and are NaN where the NumPy target gives NaN; at an
ill-conditioned point, within the NumPy target's values at inputs moved by 4 ulps
(:func:`_agrees`).
"""

from __future__ import annotations

import math
import os
import platform
import re
import shutil
import subprocess
import sys
import tempfile
import warnings
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc
from graphc.ctarget import CTargetWarning, cache_dir

pytestmark = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                                reason="no C compiler")  # fmt: skip

_UNARY = ["exp({})", "tanh({})", "sigmoid({})", "sin({})", "softplus({})", "-({})", "log({})",
          "sqrt({})", "abs({})", "relu({})", "cos({})", "sign({})", "tan({})"]  # fmt: skip
_BINARY = ["({} + {})", "({} - {})", "({} * {})", "({} / {})", "max({}, {})", "min({}, {})",
           "logaddexp({}, {})", "({})^2", "heaviside({}, 0.5)", "({})^({})", "xlogy({}, {})",
           "above({}, {})"]  # fmt: skip


@st.composite
def programs(draw: st.DrawFn) -> str:
    terms = ["x", "y", "z", "0.5"]
    for _ in range(draw(st.integers(1, 7))):
        if draw(st.booleans()):
            terms.append(draw(st.sampled_from(_UNARY)).format(draw(st.sampled_from(terms))))
        else:
            a, b = draw(st.sampled_from(terms)), draw(st.sampled_from(terms))
            terms.append(draw(st.sampled_from(_BINARY)).format(a, b))
    return "a = " + terms[-1] + "\nf = a * x + a"


def _same(a, b) -> bool:
    a, b = np.asarray(a, dtype=np.float64), np.asarray(b, dtype=np.float64)
    both_nan = np.isnan(a) & np.isnan(b)
    # libmvec's 4 ulp, amplified by cancellation (1 - tanh(y)^2 near saturation)
    close = np.isclose(a, b, rtol=1e-9, atol=1e-12) | (a == b)
    return bool(np.all(both_nan | close))


def _agrees(text: str, point: dict[str, np.ndarray], got_f, got_g) -> None:
    """The C target's results at ``point`` (elementwise arrays) are the NumPy target's
    (:func:`_same`), or, at a point where they are not, lie within the values the NumPy
    target gives with the inputs moved by up to 4 ulps: an ill-conditioned point, where
    libmvec's 4 ulp may grow past any relative tolerance (cos of x^(2x) = 1.1e9 at
    x = 5.88 turns 4 ulp in pow into 5e-7) but the result is as right as the inputs.
    The range is widened by its own spread: the few points drawn stand for all between.
    Where the NumPy target gives NaN at every moved point, the loop may give ±inf."""
    numpy = graphc.compile(text)
    with np.errstate(all="ignore"):
        want_f, want_g = numpy.value_and_grad(**point)
    got = {"f": np.asarray(got_f), **{k: np.asarray(got_g[k]) for k in want_g}}
    want = {"f": np.asarray(want_f), **{k: np.asarray(want_g[k]) for k in want_g}}
    rng = np.random.default_rng(0)
    for key, a in got.items():
        b = np.broadcast_to(want[key], a.shape)
        close = np.isclose(a, b, rtol=1e-9, atol=1e-12) | (a == b) | (np.isnan(a) & np.isnan(b))
        for i in np.flatnonzero(~close):
            at = {k: np.broadcast_to(v, a.shape).flat[i] for k, v in point.items()}
            steps = rng.integers(-4, 5, size=(64, len(at)))
            moved = {k: v + steps[:, j] * np.spacing(v) for j, (k, v) in enumerate(at.items())}
            with np.errstate(all="ignore"):
                f, g = numpy.value_and_grad(**moved)
            near = np.asarray(f if key == "f" else g[key], dtype=np.float64)
            if np.isnan(near).all():  # past an overflow: inf times a product that the
                # NumPy target underflows to 0 (nan) and the loop keeps subnormal (inf):
                # exp(logaddexp(x, exp(z))) at z = 6.6, sigmoid(-735.8) = 4.5e-320
                assert np.isnan(a.flat[i]) or np.isinf(a.flat[i]), (text, key, at, a.flat[i])
                continue
            lo, hi = np.nanmin(near), np.nanmax(near)
            # the values between the few drawn are the spread's: cos(exp(exp(x))) at
            # x = 3.912 (cos of 5e21) moves through [-1, 1] within an ulp of x
            tol = 1e-9 * max(abs(lo), abs(hi)) + 1e-12 + (hi - lo)
            value = a.flat[i]
            if lo - tol <= value <= hi + tol or (np.isnan(value) and np.isnan(near).any()):
                continue
            # or an ill-conditioned gate inside (log of cos(x) near 1 at x = -4.9e-4
            # turns cos's own 4 ulp into 1e-9): no further from the exact value than
            # 8 times the NumPy target's own error (both ~1e-9 there)
            exact = _exact(text, key, at)
            mine, theirs = abs(value - exact), abs(b.flat[i] - exact)
            assert mine <= 8 * theirs + 1e-15 * abs(exact), (
                text,
                key,
                at,
                value,
                b.flat[i],
                (lo, hi),
            )


def _exact(text: str, key: str, at: dict[str, float]) -> float:
    """f (key "f") or ∂f/∂key at the point, from SymPy's formula at 40 digits."""
    import sympy as sp

    g = graphc.parse(text)
    expr = g.to_sympy() if key == "f" else g.gradients([key])[key]
    subs = {s: sp.Float(float(at[s.name]), 40) for s in expr.free_symbols}
    return float(expr.evalf(40, subs=subs))


EDGES = np.array([0.0, -0.0, 1.0, -1.0, 0.5, -2.5, 700.0, -800.0, np.inf, -np.inf, np.nan])


@settings(max_examples=40, deadline=None)
@given(programs(), st.integers(0, 2**32 - 1))
def test_c_target_agrees_with_numpy_target_on_random_programs_and_edge_points(text, seed):
    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CTargetWarning)
        c = graphc.compile(text, target="c")
    point = {k: np.concatenate([rng.normal(size=21) * 3, rng.permutation(EDGES)])
             for k in c.inputs}  # fmt: skip
    assert c.target == "c"
    with np.errstate(all="ignore"):
        got_f, got_g = c.value_and_grad(**point)
        again = c.value_and_grad(**point, out=(got_f, got_g))  # into the same arrays
    assert again[0] is got_f and all(again[1][k] is got_g[k] for k in got_g)
    _agrees(text, point, got_f, got_g)


def test_agreement_allows_an_ill_conditioned_point_and_nothing_else():
    """A fuzz finding: at x = 5.88..., x^(2x) = 1.1e9 and cos of it magnifies libmvec's
    4 ulp in pow to 5e-7; the inputs moved by an ulp move the NumPy target as far. An
    error of 1e-6 at well-conditioned points is still caught."""
    text = "a = cos((x)^((x + x)))\nf = a * x + a"
    x = np.array([5.880774947471206, 0.5, -1.25, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("error", CTargetWarning)
        c = graphc.compile(text, target="c")
    with np.errstate(all="ignore"):
        f, g = c.value_and_grad(x=x)
        want_f, _ = graphc.compile(text).value_and_grad(x=x)
    _agrees(text, {"x": x}, f, g)
    for bad in ([1, 1e-6, 0, 0], [0, 0, 1e-6, 1e-6]):
        with pytest.raises(AssertionError):
            _agrees(text, {"x": x}, f + np.abs(want_f) * np.array(bad), g)


def _at_offset(n: int, offset: int) -> np.ndarray:
    """n float64 starting ``offset`` bytes past a 64-byte cache line (a view)."""
    raw = np.empty(n * 8 + 128, dtype=np.uint8)
    start = (-raw.ctypes.data) % 64 + offset
    return raw[start : start + n * 8].view(np.float64)


@settings(max_examples=25, deadline=None)
@given(programs(), st.sampled_from([0, 1, 7, 8, 9, 63, 1000, 100_003]),
       st.sampled_from([0, 8, 16, 56]), st.integers(0, 2**32 - 1))  # fmt: skip
def test_streaming_stores_write_every_point_as_the_plain_loop(text, n, offset, seed):
    """Forced for any size (STREAM_FROM = 0): whole lines from the first line boundary,
    the points before it and after the last whole line as usual, with threads past
    65,536 points; the same numbers as the plain loop and as the NumPy target."""
    from graphc import c_runtime

    rng = np.random.default_rng(seed)
    with warnings.catch_warnings():
        warnings.simplefilter("error", CTargetWarning)
        c = graphc.compile(text, target="c")
    point = {k: rng.normal(size=n) * 3 for k in c.inputs}
    point["x"][: min(n, len(EDGES))] = EDGES[: min(n, len(EDGES))]
    f0, g0 = _at_offset(n, offset), {k: _at_offset(n, offset) for k in c.wrt}
    with np.errstate(all="ignore"):
        plain_f, plain_g = c.value_and_grad(**point)
        assert c.module.loop.streamed == 0  # arrays far below STREAM_FROM: the plain loop
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(c_runtime, "STREAM_FROM", 0)
            got_f, got_g = c.value_and_grad(**point, out=(f0, g0))
    peel = (64 - offset) % 64 // 8
    assert c.module.loop.streamed == (max(0, n - peel) // 8 * 8 if peel < n else 0)
    assert got_f is f0 and all(got_g[k] is g0[k] for k in g0)
    assert _same(got_f, plain_f), text
    assert all(_same(got_g[k], plain_g[k]) for k in plain_g), text
    _agrees(text, point, got_f, got_g)


@pytest.mark.parametrize(
    "extra, streams",
    [((), True), (("-mno-avx512f",), True), (("-mno-avx512f", "-mno-avx"), True),
     (("-DGRAPHC_NO_STREAM",), False)],
    ids=["native", "avx", "sse2", "no-streaming"],
)  # fmt: skip
def test_each_kind_of_streaming_store_gives_the_same_numbers(monkeypatch, extra, streams):
    """AVX-512, AVX and SSE2 streaming stores (as -march allows), and a machine
    without any (GRAPHC_NO_STREAM, as on ARM): plain stores, nothing streamed."""
    import platform

    from graphc import c_runtime

    if platform.machine() not in ("x86_64", "AMD64") and extra:
        pytest.skip("x86 flags")
    monkeypatch.setattr(c_runtime, "FLAGS", (*c_runtime.FLAGS, *extra))
    monkeypatch.setattr(c_runtime, "STREAM_FROM", 0)
    text = "q = x + y; f = sigmoid(q) * z + sin(x)"
    c = graphc.compile(text, target="c")
    n = 1003
    rng = np.random.default_rng(1)
    point = {k: rng.normal(size=n) * 4 for k in c.inputs}
    f0, g0 = _at_offset(n, 16), {k: _at_offset(n, 16) for k in c.wrt}
    f, g = c.value_and_grad(**point, out=(f0, g0))
    assert c.module.loop.streamed == ((n - 6) // 8 * 8 if streams else 0)
    want_f, want_g = graphc.compile(text).value_and_grad(**point)
    assert _same(f, want_f)
    for k in want_g:
        assert _same(g[k], want_g[k]), k


def test_outputs_at_different_offsets_from_a_line_are_not_streamed(monkeypatch):
    from graphc import c_runtime

    monkeypatch.setattr(c_runtime, "STREAM_FROM", 0)
    c = graphc.compile("q = x + y; f = tanh(q) * z", target="c")
    n = 10_001  # 80 KB arrays: fresh outputs are placed (PLACE_FROM)
    x, y, z = (np.linspace(-1, 1, n) + k for k in range(3))
    arrays = [_at_offset(n, 8 * k) for k in range(4)]  # f, dx, dy, dz
    f, g = c.value_and_grad(x, y, z, out=(arrays[0], dict(zip("xyz", arrays[1:], strict=True))))
    assert c.module.loop.streamed == 0 and f is arrays[0]
    np.testing.assert_allclose(f, np.tanh(x + y) * z, rtol=1e-15)
    np.testing.assert_allclose(g["z"], np.tanh(x + y), rtol=1e-15)
    np.testing.assert_allclose(g["x"], (1 - np.tanh(x + y) ** 2) * z, rtol=1e-13)
    f, g = c.value_and_grad(x, y, z)  # fresh arrays, placed at one offset from a line
    assert c.module.loop.streamed >= n - 15
    outputs = [f, *g.values()]
    assert len({a.ctypes.data % 64 for a in outputs}) == 1
    # and spread over the page, none within 512 bytes past where an input starts
    pages = sorted(a.ctypes.data % 4096 for a in outputs)
    assert len(set(pages)) == 4
    for a in outputs:
        for b in (x, y, z):
            assert not 0 < (a.ctypes.data - b.ctypes.data) % 4096 <= 512
    np.testing.assert_allclose(f, np.tanh(x + y) * z, rtol=1e-15)


def test_the_notes_circuits_match_the_reference_numbers():
    c = graphc.compile("1/(1+exp(-(w0*x0+w1*x1+w2)))", target="c")
    f, g = c.value_and_grad(w0=2.0, x0=-1.0, w1=-3.0, x1=-2.0, w2=-3.0)
    assert float(f) == pytest.approx(0.7310585786300049, rel=1e-15)
    assert float(g["w0"]) == pytest.approx(-0.19661193324148188, rel=1e-14)
    assert float(g["x1"]) == pytest.approx(-0.5898357997244456, rel=1e-14)
    staged = "sigy = 1/(1+exp(-y))\nnum = x + sigy\nf = num / (sigmoid(x) + (x+y)^2)"
    f, g = graphc.compile(staged, target="c").value_and_grad(x=3.0, y=-4.0)
    assert float(f) == pytest.approx(1.5456448841066441, rel=1e-14)
    assert float(g["x"]) == pytest.approx(2.0595697955721652, rel=1e-14)
    assert float(g["y"]) == pytest.approx(1.5922327514838093, rel=1e-14)


def test_source_is_one_readable_fused_loop():
    src = graphc.compile("q = x + y; f = q * z", target="c").source
    # every gate once, in the one function that computes a point; the loops call it
    assert src.count("double v_q = v_x + v_y;  /* + gate */") == 1
    assert src.count("static inline __attribute__((always_inline)) void point(") == 1
    call = ("point(j, in_x + b * step_x, in_y + b * step_y, in_z + b * step_z, line_f, line_dx,"
            " line_dy, line_dz);")
    assert src.count(call) == 1  # inlined once: a loop of 8 points, a line of each output
    assert "#pragma omp simd" in src and "fast-math" not in src
    assert "graphc_stream(out_f + b, line_f);" in src  # a whole line, past the cache


_X86 = platform.machine() in ("x86_64", "AMD64")


@pytest.mark.skipif(shutil.which("gcc") is None, reason="reads GCC's vectoriser report")
@pytest.mark.parametrize("text", ["f = sigmoid(sin(x)) * y + cos(x)", "staged-300",
                                  "f = max(x, y) * logaddexp(x, y) + relu(y)"])  # fmt: skip
@pytest.mark.parametrize("march", ["native", *(["haswell"] if _X86 else [])])
def test_the_loop_vectorises(text, march, tmp_path):
    """With sin and cos (as builtins GCC joined them into sincos, which has no vector
    version), with a program of 300 gates (the point is inlined however large), and for
    a CPU without AVX-512 (haswell: AVX2, no masked vector operations), where GCC kept
    the helpers' selects (sigmoid's ``x >= 0.0 ? s : e * s``) as branches until
    -fno-trapping-math let it compute both sides: the loop ran scalar, 3 times slower."""
    import subprocess

    from benchmarks.workloads import random_dag
    from graphc.c_runtime import FLAGS

    if text == "staged-300":
        text = random_dag(300, seed=0).text
    (tmp_path / "k.c").write_text(graphc.compile(text, target="c").source)
    flags = [f if f != "-march=native" else f"-march={march}" for f in FLAGS]
    cmd = ["gcc", *flags, "-fopt-info-vec-optimized", "k.c", "-o", "k.so", "-lmvec", "-lm"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    source = (tmp_path / "k.c").read_text().splitlines()
    start = next(k for k, t in enumerate(source, 1) if "void point(" in t)
    end = next(k for k, t in enumerate(source, 1) if " run(" in t)
    vectorised = [
        int(m) for m in re.findall(r"k\.c:(\d+):\d+: optimized: loop vectorized", done.stderr)
    ]
    assert any(start < k < end for k in vectorised), done.stderr[-2000:]  # the point's loop


def test_inputs_named_like_the_loops_own_names():
    """x_in's value was named as x's pointer (a compile error and the NumPy target)."""
    text = "f = x_in * x + out_f * in_x + pad_x * line_f + dx * n + stream"
    with warnings.catch_warnings():
        warnings.simplefilter("error", CTargetWarning)
        c = graphc.compile(text, target="c")
    rng = np.random.default_rng(2)
    point = {k: rng.normal(size=50) for k in c.inputs}
    got_f, got_g = c.value_and_grad(**point)
    want_f, want_g = graphc.compile(text).value_and_grad(**point)
    assert c.target == "c" and _same(got_f, want_f)
    assert all(_same(got_g[k], want_g[k]) for k in want_g)


def test_an_input_named_out_or_like_a_number_with_floats_and_arrays():
    """An input ``out`` is the input on the float path too (it was taken for out=), and
    ``_000`` was named ``000_``: a SyntaxError in the math function."""
    text = "out * x + _000 * out"
    with warnings.catch_warnings():
        warnings.simplefilter("error", CTargetWarning)
        c = graphc.compile(text, target="c")
    floats = {"out": 2.0, "x": 3.0, "_000": 5.0}
    ev = graphc.parse(text).evaluate(**floats)
    for point in (floats, {k: np.full(4, v) for k, v in floats.items()}):
        f, g = c.value_and_grad(**point)
        assert _same(f, float(ev.value))
        assert all(_same(g[k], np.broadcast_to(float(ev.grads[k]), np.shape(point[k])))
                   for k in ("out", "x", "_000"))  # fmt: skip


def test_large_sources_compile_with_o1_and_the_vectoriser():
    from graphc import c_runtime

    small = c_runtime._flags("x\n" * (c_runtime.LARGE_FROM - 1))
    large = c_runtime._flags("x\n" * c_runtime.LARGE_FROM)
    assert small == c_runtime.FLAGS and "-O3" in small
    assert large[:2] == ("-O1", "-ftree-vectorize") and "-O3" not in large
    assert set(large) - {"-O1", "-ftree-vectorize"} == set(small) - {"-O3"}


@settings(max_examples=25, deadline=None)
@given(programs(), st.sampled_from([1, 2, 3, 5]), st.integers(0, 2**32 - 1))
def test_a_point_in_stages_gives_the_numbers_of_one_block(text, stage, seed):
    """Forced for any size (STAGE_FROM = 1), in stages of a few statements, so that values
    cross stages everywhere: read in later stages, rebound in one (dx = dx + dx_2) and
    read after, their slots taken again once read for the last time; the results are
    those of the point as one block and of the NumPy target."""
    from graphc import ctarget

    rng = np.random.default_rng(seed)
    point = {k: np.concatenate([rng.normal(size=21) * 3, rng.permutation(EDGES)]) for k in "xyz"}
    with warnings.catch_warnings():
        warnings.simplefilter("error", CTargetWarning)
        block = graphc.compile(text, target="c")
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(ctarget, "STAGE_FROM", 1)
            mp.setattr(ctarget, "STAGE", stage)
            staged = graphc.compile(text, target="c")
    assert "void point(" in block.source and "void point(" not in staged.source
    gates = len(re.findall(r"^    (?:double )?v_\w+ = .*;  /\* .* \*/$", block.source, re.M))
    assert staged.source.count("void stage_") == max(1, math.ceil(gates / stage))
    point = {k: point[k] for k in block.inputs}
    with np.errstate(all="ignore"):
        one_f, one_g = block.value_and_grad(**point)
        got_f, got_g = staged.value_and_grad(**point)
    assert _same(got_f, one_f), text
    assert all(_same(got_g[k], one_g[k]) for k in one_g), text
    _agrees(text, point, got_f, got_g)


def test_points_of_stage_from_statements_and_more_run_in_stages(monkeypatch):
    from graphc import c_runtime, ctarget

    text = "q = x + y; f = q * z"  # six statements: q, f | dz, dq | dy, dx
    monkeypatch.setattr(ctarget, "STAGE", 2)
    monkeypatch.setattr(ctarget, "STAGE_FROM", 7)
    one = graphc.compile(text, target="c").source
    monkeypatch.setattr(ctarget, "STAGE_FROM", 6)
    staged = graphc.compile(text, target="c").source
    assert "void point(" in one and "void stage_" not in one and c_runtime._flags(one)[0] == "-O3"
    assert staged.count("void stage_") == 3 and "void point(" not in staged
    call = ("stage_1(slots, in_x + b * step_x, in_y + b * step_y, in_z + b * step_z, line_f,"
            " line_dx, line_dy, line_dz);")
    assert call in staged
    # stage 2 reads q (dz = q) from stage 1's slot and z (dq = z) from its input
    assert "double v_q = slots[" in staged and staged.count("const double v_z = in_z[i];") == 2
    assert c_runtime._flags(staged) == ("-O2", *(f for f in c_runtime.FLAGS if f != "-O3"))
    assert staged.count("GRAPHC_ALLOC(") == 2 and "free(slots);" in staged


@pytest.mark.skipif(shutil.which("gcc") is None, reason="reads GCC's vectoriser report")
def test_every_stage_vectorises(tmp_path, monkeypatch):
    import subprocess

    from benchmarks.workloads import random_dag
    from graphc import c_runtime, ctarget

    monkeypatch.setattr(ctarget, "STAGE_FROM", 1)
    source = graphc.compile(random_dag(60, seed=0).text, target="c").source
    (tmp_path / "k.c").write_text(source)
    flags = c_runtime._flags(source)
    cmd = ["gcc", *flags, "-fopt-info-vec-optimized", "k.c", "-o", "k.so", "-lmvec", "-lm"]
    done = subprocess.run(cmd, cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = source.splitlines()
    starts = [k for k, t in enumerate(lines, 1) if " void stage_" in t]
    ends = [*starts[1:], next(k for k, t in enumerate(lines, 1) if " int run(" in t)]
    vectorised = [
        int(m) for m in re.findall(r"k\.c:(\d+):\d+: optimized: loop vectorized", done.stderr)
    ]
    assert len(starts) >= 2
    for a, b in zip(starts, ends, strict=True):
        assert any(a < k < b for k in vectorised), (a, done.stderr[-2000:])


def test_a_loop_in_stages_without_memory_raises_memory_error(monkeypatch):
    from graphc import c_runtime, ctarget

    monkeypatch.setattr(ctarget, "STAGE_FROM", 1)
    monkeypatch.setattr(ctarget, "STAGE", 2)
    monkeypatch.setattr(c_runtime, "FLAGS", (*c_runtime.FLAGS, "-DGRAPHC_ALLOC(bytes)=NULL"))
    with warnings.catch_warnings():
        warnings.simplefilter("error", CTargetWarning)
        c = graphc.compile("q = x + y; f = q * z", target="c")
    with pytest.raises(MemoryError, match="working memory"):
        c.value_and_grad(x=np.ones(20), y=np.ones(20), z=np.ones(20))


def test_a_loop_in_stages_compiles_as_one_file_per_core(monkeypatch, tmp_path):
    """With three cores the stages go into three files, compiled at once beside a main
    file (the head, the stages' declarations, run), then linked; the library gives the
    numbers of the one-file library bit for bit."""
    from benchmarks.workloads import random_dag
    from graphc import c_runtime, ctarget

    monkeypatch.setattr(ctarget, "STAGE_FROM", 1)
    monkeypatch.setattr(ctarget, "STAGE", 7)
    text = random_dag(40, seed=3).text
    calls: dict[int, list[list[list[str]]]] = {}
    run = c_runtime._run
    compiled = {}
    for jobs in (1, 3):
        monkeypatch.setattr(c_runtime, "_jobs", lambda j=jobs: j)
        monkeypatch.setattr(c_runtime, "_run",
                            lambda cmds, *a, j=jobs: (calls.setdefault(j, []).append(cmds),
                                                      run(cmds, *a))[1])  # fmt: skip
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / str(jobs)))  # nothing cached
        with warnings.catch_warnings():
            warnings.simplefilter("error", CTargetWarning)
            compiled[jobs] = graphc.compile(text, target="c")
    source = compiled[1].source
    assert compiled[3].source == source
    stages = source.count("void stage_")
    assert stages >= 6
    [one] = calls[1]
    assert len(one) == 1 and "-c" not in one[0]
    units, link = calls[3]
    assert len(units) == 4 and all("-c" in cmd for cmd in units)
    assert [a for a in link[0] if a.endswith(".o")] == [cmd[cmd.index("-o") + 1] for cmd in units]
    main, *parts = c_runtime._units(source, 3)
    head = source[: source.index("/* Stage 1 of ")]
    assert all(u.startswith(head) for u in (main, *parts))
    defined = [re.findall(r"void (stage_\d+)\([^;]*?\) \{", u) for u in parts]
    assert sorted([s for d in defined for s in d], key=lambda s: int(s[6:])) == [
        f"stage_{k}" for k in range(1, stages + 1)
    ]
    assert all(defined) and " int run(" in main and ") {\n    #pragma omp simd" not in main
    assert main.count('__attribute__((visibility("hidden"), noinline, noclone)) void') == stages
    rng = np.random.default_rng(4)
    point = {k: np.concatenate([rng.normal(size=45) * 3, EDGES]) for k in compiled[1].inputs}
    with np.errstate(all="ignore"):
        want_f, want_g = compiled[1].value_and_grad(**point)
        got_f, got_g = compiled[3].value_and_grad(**point)
    assert np.array_equal(got_f, want_f, equal_nan=True)
    assert all(np.array_equal(got_g[k], want_g[k], equal_nan=True) for k in want_g)


def test_only_a_loop_in_stages_is_compiled_as_several_files(monkeypatch):
    from graphc import c_runtime, ctarget

    text = "q = x + y; f = q * z"  # six statements
    one = graphc.compile(text, target="c").source
    monkeypatch.setattr(ctarget, "STAGE_FROM", 1)
    monkeypatch.setattr(ctarget, "STAGE", 2)
    staged = graphc.compile(text, target="c").source  # three stages
    assert c_runtime._units(one, 2) is None
    assert c_runtime._units(staged, 1) is None and c_runtime._units(staged, 4) is None
    assert len(c_runtime._units(staged, 3)) == 4 and len(c_runtime._units(staged, 2)) == 3


@pytest.mark.skipif(shutil.which("gcc") is None, reason="wraps gcc")
def test_a_file_of_stages_that_fails_to_compile_gives_the_numpy_target(monkeypatch, tmp_path):
    from graphc import c_runtime, ctarget

    cc = tmp_path / "cc"
    cc.write_text('#!/bin/sh\ncase "$*" in *graphc_2.c*) echo "graphc_2.c:1:1: error: made to'
                  ' fail" >&2; exit 1;; esac\nexec gcc "$@"\n')  # fmt: skip
    cc.chmod(0o755)
    monkeypatch.setenv("CC", str(cc))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    monkeypatch.setattr(c_runtime, "_jobs", lambda: 2)
    monkeypatch.setattr(ctarget, "STAGE_FROM", 1)
    monkeypatch.setattr(ctarget, "STAGE", 2)
    with pytest.warns(
        CTargetWarning, match=re.escape("failed: graphc_2.c:1:1: error: made to fail")
    ):
        c = graphc.compile("q = x + y; f = q * z", target="c")
    assert c.target == "numpy" and float(c.value_and_grad(x=-2.0, y=5.0, z=-4.0)[0]) == -12.0
    assert not list((tmp_path / "cache").rglob("*.so"))


def test_compilers_are_stopped_once_one_fails(tmp_path):
    import sys
    import time

    from graphc import c_runtime

    sleep = [sys.executable, "-c", "import time; time.sleep(60)"]
    fail = [sys.executable, "-c", "import sys; sys.exit('k.c:2:3: error: bad')"]
    t0 = time.monotonic()
    with pytest.raises(c_runtime.CCompileError, match=re.escape("cc failed: k.c:2:3: error: bad")):
        c_runtime._run([sleep, fail, sleep], "cc", tmp_path)
    assert time.monotonic() - t0 < 30


def test_broadcasting_float32_and_gradients_in_each_shape():
    c = graphc.compile("f = x * tanh(y) + z", target="c")
    x = np.linspace(-1, 1, 6, dtype=np.float32).reshape(2, 3)
    y = np.float32(0.3)
    z = np.array([1.0, 2.0, 3.0], dtype=np.float32)
    f, g = c.value_and_grad(x=x, y=y, z=z)
    want_f, want_g = graphc.compile("f = x * tanh(y) + z").value_and_grad(x=x, y=y, z=z)
    assert f.dtype == np.float32 and f.shape == (2, 3)
    np.testing.assert_allclose(f, want_f, rtol=1e-6)
    for k, v in want_g.items():
        assert np.shape(g[k]) == np.shape(v) and np.asarray(g[k]).dtype == np.float32
        np.testing.assert_allclose(g[k], v, rtol=1e-5)
    assert float(g["y"]) == pytest.approx(float(np.sum(x) * (1 - np.tanh(0.3) ** 2)), rel=1e-5)


def test_read_only_empty_strided_and_mixed_inputs_give_the_numpy_targets_numbers():
    """The loop takes each array's address through the buffer protocol, which refuses
    read-only and empty arrays: those take NumPy's ctypes path (and the shape and dtype
    checks a call skips when every input is float64 of one shape still run otherwise)."""
    text = "f = sigmoid(x) * y + x^2"
    c, ref = graphc.compile(text, target="c"), graphc.compile(text)
    rng = np.random.default_rng(4)
    read_only = rng.normal(size=300)
    read_only.flags.writeable = False
    cases = [
        {"x": read_only, "y": rng.normal(size=300)},
        {"x": np.empty(0), "y": np.empty(0)},
        {"x": rng.normal(size=600)[::2], "y": np.asfortranarray(rng.normal(size=(1, 300)))},
        {"x": rng.normal(size=(4, 1)).astype(np.float32), "y": rng.normal(size=5)},
        {"x": 0.5, "y": rng.normal(size=(2, 3))},
    ]
    for point in cases:
        got_f, got_g = c.value_and_grad(**point)
        want_f, want_g = ref.value_and_grad(**point)
        assert np.shape(got_f) == np.shape(want_f) and np.asarray(got_f).dtype == want_f.dtype
        np.testing.assert_allclose(got_f, want_f, rtol=1e-6)
        for k, v in want_g.items():
            assert np.shape(got_g[k]) == np.shape(v), (k, point)
            assert np.asarray(got_g[k]).dtype == np.asarray(v).dtype, (k, point)
            np.testing.assert_allclose(got_g[k], v, rtol=1e-6)


def test_a_call_that_does_not_fit_is_refused_as_on_the_numpy_target():
    """Surplus positional arrays were dropped without a word (zip), and an input given
    by position and by name was called missing."""
    c, ref = graphc.compile("f = x * y", target="c"), graphc.compile("f = x * y")
    a = np.ones(3)
    for args, kwargs, message in [
        ((a, a, a), {}, "3 values for 2 inputs"),
        ((1.0, 2.0, 3.0), {}, "3 values for 2 inputs"),
        ((a,), {}, "missing value for input y"),
        ((), {"x": a, "z": a}, "unknown input 'z'"),
        ((), {"x": a, "y": a, "z": 1}, "unknown input 'z'"),
    ]:
        for compiled in (c, ref):
            with pytest.raises(graphc.InputError, match=message):
                compiled.value_and_grad(*args, **kwargs)
    with pytest.raises(graphc.InputError, match="input 'x' given twice"):
        c.value_and_grad(a, x=a)


def test_out_buffers_are_reused_and_results_stay_fresh():
    c = graphc.compile("f = x * y", target="c")
    x, y = np.arange(4.0), np.full(4, 2.0)
    first = c.value_and_grad(x=x, y=y)
    again = c.value_and_grad(x=x + 1, y=y, out=first)
    assert again[0] is first[0] and again[1]["x"] is first[1]["x"]
    np.testing.assert_array_equal(again[0], (x + 1) * y)
    plain = c.value_and_grad(x=x, y=y)
    for v in plain[1].values():
        assert not np.shares_memory(v, x) and not np.shares_memory(v, y)
    assert not np.shares_memory(plain[1]["x"], plain[1]["y"])


def test_falls_back_to_numpy_with_a_warning(monkeypatch):
    with pytest.warns(CTargetWarning, match="no run of two or more elementwise gates"):
        c = graphc.compile("w: (3,); f = sum(w^2)", target="c")
    assert c.target == "numpy"
    monkeypatch.setenv("CC", "/nonexistent/cc")
    monkeypatch.setenv("PATH", "/nonexistent")
    with pytest.warns(CTargetWarning, match="no C compiler"):
        c = graphc.compile("x*y + 3.25", target="c")
    assert c.target == "numpy" and float(c.value_and_grad(x=2.0, y=3.0)[0]) == 9.25


def test_compiled_library_is_cached(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    graphc.compile("x*y + 1.5", target="c")
    libs = list(cache_dir().glob("graphc_*.so"))
    assert len(libs) == 1
    mtime = libs[0].stat().st_mtime_ns
    graphc.compile("x*y + 1.5", target="c")
    assert [p.stat().st_mtime_ns for p in cache_dir().glob("graphc_*.so")] == [mtime]


@pytest.mark.skipif(shutil.which("gcc") is None, reason="wraps GCC")
def test_a_c_library_without_libmvec_gets_the_scalar_math_functions(monkeypatch, tmp_path):
    """glibc before 2.38 has no libmvec off x86-64 (ARM Linux), nor has musl: linking
    with -lmvec failed there, and every C compile fell back to the NumPy target. The
    runtime now asks the compiler once, and without libmvec declares no vector versions
    (the loop calls the scalar functions) and links without it."""
    gcc = shutil.which("gcc")
    wrapper = tmp_path / "cc-without-libmvec"  # a compiler whose C library has no libmvec
    wrapper.write_text(
        "#!/bin/sh\n"
        'for a in "$@"; do\n'
        '  [ "$a" = -lmvec ] && { echo "ld: cannot find -lmvec" >&2; exit 1; }\n'
        "done\n"
        f'exec {gcc} "$@"\n'
    )
    wrapper.chmod(0o755)
    text = "f = sigmoid(sin(x)) * y + cos(x) + exp(y)"
    rng = np.random.default_rng(5)
    point = {"x": rng.uniform(-3, 3, 100), "y": rng.uniform(-3, 3, 100)}
    want_f, want_g = graphc.compile(text).value_and_grad(**point)
    libraries = {}
    for name, cc in (("scalar", str(wrapper)), ("vector", gcc)):
        monkeypatch.setenv("CC", cc)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / name))
        with warnings.catch_warnings():
            warnings.simplefilter("error", CTargetWarning)
            c = graphc.compile(text, target="c")
        assert c.target == "c"
        got_f, got_g = c.value_and_grad(**point)
        np.testing.assert_allclose(got_f, want_f, rtol=1e-12)
        for k in want_g:
            np.testing.assert_allclose(got_g[k], want_g[k], rtol=1e-12, atol=1e-15)
        (lib,) = cache_dir().glob("graphc_*.so")
        libraries[name] = lib.read_bytes()
    assert b"_ZGV" not in libraries["scalar"]  # no call of a vector version
    assert b"_ZGV" in libraries["vector"]  # (what the check looks for is there otherwise)


@pytest.mark.skipif(shutil.which("gcc") is None, reason="wraps GCC")
def test_a_libmvec_without_one_vector_version_gets_the_scalar_math_functions(
    monkeypatch, tmp_path
):
    """An older libmvec off x86-64 lacks some vector versions (tanh's, say): the link
    fails on an undefined _ZGV... symbol; the runtime then builds with the scalar
    functions, where it fell back to the NumPy target."""
    gcc = shutil.which("gcc")
    wrapper = tmp_path / "cc-with-a-short-libmvec"  # links -lmvec, but knows no tanh in it
    wrapper.write_text(
        "#!/bin/sh\n"
        'case " $* " in *" -lmvec "*)\n'
        '  for a in "$@"; do case "$a" in *.c|*.o)\n'
        "    if grep -q 'simd(\"notinbranch\"))) double tanh' \"$a\" 2>/dev/null ||\n"
        "       grep -q _ZGV \"$a\" 2>/dev/null; then\n"
        "      echo \"ld: undefined reference to \\`_ZGVdN4v_tanh'\" >&2; exit 1; fi;;\n"
        "  esac; done;;\n"
        "esac\n"
        f'exec {gcc} "$@"\n'
    )
    wrapper.chmod(0o755)
    monkeypatch.setenv("CC", str(wrapper))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    text = "f = tanh(x) * y + exp(y)"
    with warnings.catch_warnings():
        warnings.simplefilter("error", CTargetWarning)
        c = graphc.compile(text, target="c")
    assert c.target == "c"
    point = {"x": np.linspace(-3, 3, 50), "y": np.linspace(2, -2, 50)}
    got_f, got_g = c.value_and_grad(**point)
    want_f, want_g = graphc.compile(text).value_and_grad(**point)
    np.testing.assert_allclose(got_f, want_f, rtol=1e-12)
    for k in want_g:
        np.testing.assert_allclose(got_g[k], want_g[k], rtol=1e-12, atol=1e-15)
    (lib,) = cache_dir().glob("graphc_*.so")
    assert b"_ZGV" not in lib.read_bytes()


def test_a_temporary_folder_on_another_file_system_is_no_failure(monkeypatch, tmp_path):
    """The library was built under TMPDIR (/tmp) and moved into the cache with
    os.replace, which cannot cross file systems: with /tmp a tmpfs (Debian 13's default,
    Fedora's, Arch's) every C compile raised a raw OSError, "Invalid cross-device link".
    It is built in the cache's own folder now (and leaves nothing behind there)."""
    other = Path("/dev/shm")
    if not other.is_dir() or other.stat().st_dev == tmp_path.stat().st_dev:
        pytest.skip("needs a second file system (/dev/shm) for TMPDIR")
    temporary = Path(tempfile.mkdtemp(dir=other))
    try:
        monkeypatch.setenv("TMPDIR", str(temporary))
        monkeypatch.setattr(tempfile, "tempdir", None)  # (tempfile reads TMPDIR again)
        monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
        with warnings.catch_warnings():
            warnings.simplefilter("error")  # (a fallback to NumPy warns)
            c = graphc.compile("x*y + 3.25", target="c")
        assert c.target == "c"
        assert c.value_and_grad(x=np.ones(3), y=np.ones(3))[0].tolist() == [4.25] * 3
        assert [p.name for p in cache_dir().iterdir()] == [
            next(cache_dir().glob("graphc_*.so")).name
        ]
    finally:
        shutil.rmtree(temporary)


def test_a_damaged_cached_library_is_compiled_again(monkeypatch, tmp_path):
    """A cached file that does not load (it was the NumPy target from then on). In a
    fresh process: this one has the library mapped under its name."""
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    graphc.compile("x*y + 2.5", target="c")
    (lib,) = cache_dir().glob("graphc_*.so")
    (tmp_path / "damaged").write_bytes(b"not a library")
    os.replace(tmp_path / "damaged", lib)  # a new file: the mapped one stays as it was
    code = (
        "import warnings, numpy as np, graphc\n"
        "warnings.simplefilter('error')\n"
        "c = graphc.compile('x*y + 2.5', target='c')\n"
        "print(c.target, c.value_and_grad(x=np.ones(3), y=np.ones(3))[0].tolist())\n"
    )
    env = {**os.environ, "XDG_CACHE_HOME": str(tmp_path)}
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=120, env=env)  # fmt: skip
    assert done.stdout.split() == ["c", "[3.5,", "3.5,", "3.5]"], done.stderr[-2000:]
    assert list(cache_dir().glob("graphc_*.so")) == [lib]
    assert lib.read_bytes()[:4] == b"\x7fELF"


def test_codegen_command_prints_the_c_source(capsys):
    from graphc.cli import main

    assert main(["codegen", "q = x + y; f = q * z", "--target", "c"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("/* Generated by graphc") and "double v_f = v_q * v_z;" in out


def test_saved_c_module_runs_without_graphc(tmp_path):
    import subprocess
    import sys

    staged = "sigy = 1/(1+exp(-y))\nnum = x + sigy\nf = num / (sigmoid(x) + (x+y)^2)"
    graphc.compile(staged, target="c").save(tmp_path / "staged_c.py")
    code = (
        "import sys\n"
        "sys.modules['graphc'] = None  # any import of graphc now fails\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import numpy as np, staged_c\n"
        "f, g = staged_c.value_and_grad(x=np.array([3.0, 1.0]), y=np.array([-4.0, 2.0]))\n"
        "print(repr(float(f[0])), repr(float(g['x'][0])), repr(float(g['y'][0])))\n"
        "x, y = np.array([3.0, 1.0], np.float32), np.array([-4.0, 2.0], np.float32)\n"
        "f32, g32 = staged_c.value_and_grad(x=x, y=y)  # the float32 loop\n"
        "print(f32.dtype, g32['x'].dtype, repr(float(f32[0])), repr(float(g32['y'][0])))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code, str(tmp_path)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    value, dx, dy = (float(v) for v in out.stdout.split()[:3])
    assert value == pytest.approx(1.5456448841066441, rel=1e-14)
    assert dx == pytest.approx(2.0595697955721652, rel=1e-14)
    assert dy == pytest.approx(1.5922327514838093, rel=1e-14)
    dtype_f, dtype_g, value32, dy32 = out.stdout.split()[3:7]
    assert (dtype_f, dtype_g) == ("float32", "float32")
    assert float(value32) == float(np.float32(value)) and float(dy32) == float(np.float32(dy))


def test_python_floats_take_the_math_path():
    c = graphc.compile("1/(1+exp(-(w0*x0+w1*x1+w2)))", target="c")
    f, g = c.value_and_grad(w0=2.0, x0=-1.0, w1=-3.0, x1=-2.0, w2=-3)
    assert type(f) is float and type(g["w0"]) is float
    assert f == pytest.approx(0.7310585786300049, rel=1e-15)
    f2, _ = c.value_and_grad(w0=np.float64(2.0), x0=-1.0, w1=-3.0, x1=-2.0, w2=-3.0)
    assert isinstance(f2, np.floating) and float(f2) == pytest.approx(f, rel=1e-15)


def test_the_math_function_for_floats_is_made_on_the_first_call_with_floats(monkeypatch):
    made: list[str] = []
    real = graphc.codegen._module

    def recording(graph, wrt, target, zero_copy):
        made.append(target)
        return real(graph, wrt, target, zero_copy)

    monkeypatch.setattr(graphc.codegen, "_module", recording)
    c = graphc.compile("q = x + y; f = tanh(q) * z", target="c")
    f, g = c.value_and_grad(x=np.ones(3), y=np.ones(3), z=np.ones(3))
    assert made == []  # arrays: the C loop, and no math module made
    for _ in range(2):
        f, g = c.value_and_grad(x=0.5, y=0.25, z=2.0)
        assert f == pytest.approx(math.tanh(0.75) * 2.0, rel=1e-15)
        assert g["z"] == pytest.approx(math.tanh(0.75), rel=1e-15)
    assert made == ["math"]  # once, on the first call with floats


def test_gradients_that_are_inputs_or_repeats_are_copied_unless_zero_copy():
    x, y, z = (np.linspace(-1, 1, 5) + k for k in range(3))
    text = "q = x + y; f = q * z"
    f, g = graphc.compile(text, target="c").value_and_grad(x=x, y=y, z=z)
    np.testing.assert_array_equal(g["x"], z)
    np.testing.assert_array_equal(g["y"], z)
    np.testing.assert_array_equal(g["z"], x + y)
    arrays = [f, *g.values()]
    for i, a in enumerate(arrays):
        assert not any(np.shares_memory(a, b) for b in (x, y, z, *arrays[i + 1 :]))
    src = graphc.compile(text, target="c").source
    assert "out_dx[i] = v_dx" in src  # the loop writes each gradient, in its one pass
    shared_c = graphc.compile(text, target="c", zero_copy=True)
    assert "out_dx" not in shared_c.source  # zero_copy: the loop stores dz only
    _, shared = shared_c.value_and_grad(x=x, y=y, z=z)
    assert shared["x"] is z and shared["y"] is z


def test_output_arrays_are_reused_only_once_the_caller_has_let_go():
    vg = graphc.compile("sigmoid(x) * y + x", target="c").module.value_and_grad
    # (arrays of PLACE_FROM bytes and more: smaller ones are fresh each call, for free)
    x, y = np.linspace(-3, 3, 10_000), np.linspace(1, 2, 10_000)
    f1, g1 = vg(x=x, y=y)
    kept = (f1.copy(), {k: v.copy() for k, v in g1.items()})
    f2, g2 = vg(x=x + 1, y=y)  # f1, g1 still held: fresh arrays
    for a, b in ((f1, f2), *((g1[k], g2[k]) for k in g1)):
        assert not np.shares_memory(a, b)
    np.testing.assert_array_equal(f1, kept[0])
    view = g2["x"][:10]  # a view keeps its base from being reused
    address = f2.ctypes.data
    del f2, g2
    f3, g3 = vg(x=x, y=y)
    assert not any(np.shares_memory(view, a) for a in g3.values())
    assert f3.ctypes.data == address  # the dropped f2's array, written again
    np.testing.assert_array_equal(f3, kept[0])


def test_a_loop_that_holds_each_result_until_the_next_reuses_the_one_before():
    """``f, g = value_and_grad(...)`` in a loop holds the last result while the next
    call runs: that call takes the arrays of the call before (two calls' worth are
    kept), so a training loop without out= pays for fresh memory only twice. Fresh
    arrays cost page faults: at 1,000,000 points this loop took 2.4-6.7 ms a call for
    (x+y)z, 1.3 ms with the arrays reused."""
    c = graphc.compile("sigmoid(x) * y + x", target="c")
    vg, want = c.module.value_and_grad, graphc.compile("sigmoid(x) * y + x").value_and_grad
    x, y = np.linspace(-3, 3, 100_000), np.linspace(1, 2, 100_000)
    addresses = []
    f = g = None
    for step in range(6):
        held = (f, g, None if f is None else f.copy())
        f, g = vg(x=x + step, y=y)
        addresses.append({f.ctypes.data, g["x"].ctypes.data, g["y"].ctypes.data})
        want_f, want_g = want(x=x + step, y=y)
        assert _same(f, want_f) and all(_same(g[k], want_g[k]) for k in g)
        if held[0] is not None:  # the result the loop still held was not written
            np.testing.assert_array_equal(held[0], held[2])
            assert not any(np.shares_memory(held[0], a) for a in (f, *g.values()))
        del held
    assert len(addresses[0]) == 3 and not addresses[0] & addresses[1]
    assert addresses[2:] == [addresses[0], addresses[1]] * 2  # (in any order)


def test_calls_from_two_threads_never_share_output_arrays():
    import threading

    vg = graphc.compile("x*y + exp(x)", target="c").module.value_and_grad
    errors = []

    def work(seed):
        rng = np.random.default_rng(seed)
        for _ in range(200):
            x, y = rng.normal(size=50_000), rng.normal(size=50_000)
            f, g = vg(x=x, y=y)
            if not (np.allclose(f, x * y + np.exp(x)) and np.allclose(g["y"], x)):
                errors.append(seed)

    threads = [threading.Thread(target=work, args=(s,)) for s in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors


@pytest.mark.parametrize("zero_copy", [False, True])
def test_small_float64_calls_take_the_direct_path_with_the_general_calls_results(
        monkeypatch, zero_copy):  # fmt: skip
    """Every input a float64 array of one shape, by name: no broadcasting, no casting, no
    earlier results to reuse (c_runtime.CFunction._direct); the results are the general
    call's, and out= arrays that alias an input or each other are still refused."""
    from graphc import c_runtime

    text = "q = x + y; f = q * z"  # (x+y)z: ∂/∂x = ∂/∂y = z, an input's value
    c = graphc.compile(text, target="c", zero_copy=zero_copy)
    rng = np.random.default_rng(3)
    x, y, z = (rng.normal(size=100) for _ in range(3))
    want_f, want_g = c.value_and_grad(x, y, z)  # by position: the general call
    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(c_runtime.CFunction, "_general", None)  # the general call would fail here
        f, g = c.value_and_grad(x=x, y=y, z=z)
        assert _same(f, want_f) and all(_same(g[k], want_g[k]) for k in "xyz")
        np.testing.assert_allclose(f, (x + y) * z, rtol=1e-15)
        assert (g["x"] is z) == zero_copy and not np.shares_memory(g["z"], x)
        if not zero_copy:  # (zero_copy: g["x"] is z, which out= may not write into)
            assert not np.shares_memory(g["x"], g["y"]) and not np.shares_memory(g["x"], z)
            f2, g2 = c.value_and_grad(x=x, y=y, z=z, out=(f, g))  # into the same arrays
            assert f2 is f and all(g2[k] is g[k] for k in "xyz") and _same(f2, want_f)
    # an out= array that is an input, or one given twice: the general call, which
    # writes those results into fresh arrays and leaves the input alone
    before = x.copy()
    f3, g3 = c.value_and_grad(x=x, y=y, z=z, out=(x, {"x": g["z"], "y": g["z"], "z": g["z"]}))
    np.testing.assert_array_equal(x, before)
    assert f3 is not x and _same(f3, want_f)
    assert not np.shares_memory(g3["y"], g3["z"]) and _same(g3["z"], want_g["z"])


@pytest.mark.parametrize("text", ["sigmoid(x) * y + x", "a = x*x; f = a + y*z - tanh(x)"])
@pytest.mark.parametrize("zero_copy", [False, True])
def test_random_direct_calls_give_the_general_calls_results(text, zero_copy):
    """Calls by name (the direct path where they fit) against the same calls by
    position (always the general path): sizes on both sides of PLACE_FROM, with and
    without out=, out= arrays that alias an input or each other."""
    c = graphc.compile(text, target="c", zero_copy=zero_copy)
    rng = np.random.default_rng(len(text) + zero_copy)
    for _ in range(12):
        n = int(rng.choice([1, 3, 100, 9000]))
        point = {k: rng.normal(size=n) for k in c.inputs}
        want_f, want_g = c.value_and_grad(*point.values())
        out = None
        if rng.random() < 0.6:
            out = c.value_and_grad(**point)
            aliased = rng.random()
            if aliased < 0.3:  # an input as a result's array
                out[1][c.wrt[0]] = point[c.inputs[0]]
            elif aliased < 0.6:  # one array for two results
                out[1][c.wrt[1]] = out[1][c.wrt[0]]
        before = {k: v.copy() for k, v in point.items()}
        f, g = c.value_and_grad(**point, out=out)
        # (one loop computes both: the same numbers, bit for bit)
        assert np.array_equal(f, want_f) and all(np.array_equal(g[k], want_g[k]) for k in c.wrt)
        assert all(np.array_equal(point[k], before[k]) for k in point)  # inputs untouched
        if not zero_copy:
            results = [f, *g.values()]
            for i, a in enumerate(results):
                assert not any(np.shares_memory(a, v) for v in point.values())
                assert not any(np.shares_memory(a, b) for b in results[i + 1 :])


@pytest.mark.parametrize("n", [100, 20_001])  # (below and above PLACE_FROM's 64 KB)
def test_float32_arrays_take_the_float32_loop_with_the_float64_loops_numbers(monkeypatch, n):
    """float32 arrays of one shape, by name, run a variant of the loop that reads and
    writes float (c_runtime.f32_source): each value still computed in double and rounded
    to float once, so the numbers are bit for bit the general call's (float64 copies of
    the inputs, then the results cast), without the copies."""
    from graphc import c_runtime

    monkeypatch.setattr(c_runtime, "STREAM_FROM", 0)  # (float results are never streamed)
    text = "q = x + y; f = sigmoid(q) * z + sin(x)"
    c = graphc.compile(text, target="c")
    rng = np.random.default_rng(n)
    point = {k: (rng.normal(size=n) * 4).astype(np.float32) for k in c.inputs}
    point["x"][:len(EDGES)] = np.asarray(EDGES, dtype=np.float32)
    with np.errstate(all="ignore"):
        want_f, want_g = c.value_and_grad(*point.values())  # the general call
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(c_runtime.CFunction, "_general", None)  # it would fail here
            f, g = c.value_and_grad(**point)
            assert c.module.loop.streamed == 0
            again = c.value_and_grad(**point, out=(f, g))  # into the same arrays
    assert f.dtype == np.float32 and all(v.dtype == np.float32 for v in g.values())
    assert np.array_equal(f, want_f, equal_nan=True)
    assert all(np.array_equal(g[k], want_g[k], equal_nan=True) for k in c.wrt)
    assert again[0] is f and all(again[1][k] is g[k] for k in c.wrt)
    results = [f, *g.values()]
    for i, a in enumerate(results):
        assert not any(np.shares_memory(a, v) for v in point.values())
        assert not any(np.shares_memory(a, b) for b in results[i + 1 :])
    # against NumPy's float32 code (which rounds at every gate): close, not equal
    with np.errstate(all="ignore"):
        np_f = graphc.compile(text).value_and_grad(**point)[0]
    finite = np.isfinite(np_f)
    np.testing.assert_allclose(f[finite], np_f[finite], rtol=2e-6, atol=1e-6)


def test_a_float32_loop_that_does_not_compile_leaves_float32_to_float64_copies(monkeypatch):
    from graphc import c_runtime

    c = graphc.compile("q = x * y; f = tanh(q) + x", target="c")
    x, y = np.linspace(-2, 2, 50, dtype=np.float32), np.linspace(1, 3, 50, dtype=np.float32)
    real = c_runtime.load

    def no_float_loop(source):
        if "typedef float graphc_io;" in source:
            raise c_runtime.CCompileError("cc: error: no float here")
        return real(source)

    monkeypatch.setattr(c_runtime, "load", no_float_loop)
    with pytest.warns(RuntimeWarning, match="float32 loop did not compile.*no float here"):
        f, g = c.value_and_grad(x=x, y=y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # said once
        f2, _ = c.value_and_grad(x=x, y=y)
    want = np.tanh(x.astype(np.float64) * y) + x
    assert f.dtype == np.float32 and np.array_equal(f, want.astype(np.float32))
    assert np.array_equal(f2, f) and g["y"].dtype == np.float32


@pytest.mark.parametrize("in_stages", [False, True])
def test_every_op_on_float32_arrays_in_one_block_and_in_stages(monkeypatch, in_stages):
    """The float32 loop (float arrays, double values) for a program of every op the
    random programs draw, as one block and in stages (values handed on through double
    slots): bit for bit the general call's numbers (float64 copies), at edge points."""
    from graphc import c_runtime, ctarget

    terms = [op.format("x") for op in _UNARY] + [op.format("y", "z") for op in _BINARY]
    text = "a = " + " + ".join(terms) + "\nf = a * x + a"
    if in_stages:
        monkeypatch.setattr(ctarget, "STAGE_FROM", 1)
        monkeypatch.setattr(ctarget, "STAGE", 4)
    c = graphc.compile(text, target="c")
    assert ("void stage_" in c.source) == in_stages
    rng = np.random.default_rng(7)
    point = {k: np.concatenate([rng.normal(size=37) * 3, rng.permutation(EDGES)])
             .astype(np.float32) for k in "xyz"}  # fmt: skip
    with np.errstate(all="ignore"):
        want_f, want_g = c.value_and_grad(*(point[k] for k in c.inputs))
        with pytest.MonkeyPatch.context() as mp:
            mp.setattr(c_runtime.CFunction, "_general", None)  # the float32 loop, or fail
            f, g = c.value_and_grad(**point)
    assert f.dtype == np.float32
    assert np.array_equal(f, want_f, equal_nan=True)
    assert all(np.array_equal(g[k], want_g[k], equal_nan=True) for k in c.wrt)


def test_a_number_among_arrays_is_read_as_one_number_not_expanded(monkeypatch):
    """A Python float or one-element array beside arrays (the neuron's weights beside its
    data) reaches the loop as 8 copies of itself (step 0), not as an array of the
    output's size: the same numbers as the arrays it would have been expanded to, its
    gradient the sum of the loop's per-point values."""
    expanded = []
    broadcast_to = np.broadcast_to

    def spy(a, shape, *args, **kwargs):
        if np.size(a) == 1 and math.prod(shape) > 1:
            expanded.append(shape)
        return broadcast_to(a, shape, *args, **kwargs)

    c = graphc.compile("f = 1/(1 + exp(-(w0*x0 + w1*x1 + w2)))", target="c")
    rng = np.random.default_rng(5)
    n = 1003
    x0, x1 = rng.normal(size=n), rng.normal(size=n)
    weights = {"w0": 2.0, "w1": np.array([-3.0]), "w2": np.float64(-3.0)}
    with monkeypatch.context() as mp:
        mp.setattr(np, "broadcast_to", spy)
        f, g = c.value_and_grad(x0=x0, x1=x1, **weights)
    assert expanded == []
    full = {k: np.full(n, float(np.asarray(v).reshape(()))) for k, v in weights.items()}
    want_f, want_g = c.value_and_grad(x0=x0, x1=x1, **full)  # every input an array
    assert np.array_equal(f, want_f)
    assert np.array_equal(g["x0"], want_g["x0"]) and np.array_equal(g["x1"], want_g["x1"])
    for k, v in weights.items():  # each in its own shape, the sum of its per-point values
        assert np.shape(g[k]) == np.shape(v) and np.ravel(g[k])[0] == want_g[k].sum()
    # the notes' neuron at one point: the cs231n numbers (f = 0.73, ∂f/∂x0 = -0.59)
    s = 1 / (1 + math.exp(-1.0))
    np.testing.assert_allclose(c.value_and_grad(w0=2.0, x0=np.full(9, -1.0), w1=-3.0,
                                                x1=np.full(9, -2.0), w2=-3.0)[1]["x0"],
                               np.full(9, s * (1 - s) * 2.0), rtol=1e-15)  # fmt: skip


@pytest.mark.parametrize("zero_copy", [False, True])
def test_a_gradient_that_is_a_numbers_value_fills_its_inputs_shape(zero_copy):
    """(x+y)z with z a number: ∂f/∂x = ∂f/∂y = z at every point, ∂f/∂z = sum(x + y)."""
    c = graphc.compile("q = x + y; f = q * z", target="c", zero_copy=zero_copy)
    x, y = np.linspace(-1, 1, 21), np.linspace(2, 3, 21)
    f, g = c.value_and_grad(x=x, y=y, z=-4.0)
    np.testing.assert_allclose(f, (x + y) * -4.0, rtol=1e-15)
    assert np.array_equal(g["x"], np.full(21, -4.0)) and np.array_equal(g["y"], g["x"])
    assert not np.shares_memory(g["x"], g["y"]) or zero_copy
    assert float(g["z"]) == pytest.approx((x + y).sum(), rel=1e-15)
