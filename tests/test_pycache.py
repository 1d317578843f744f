"""graphc.compile(text, cache=True): modules kept on disk (graphc.pycache)."""

from __future__ import annotations

import inspect
import math
import shutil
import subprocess
import sys
import types
from pathlib import Path

import numpy as np
import pytest

import graphc
from graphc import codegen, pycache

NEURON = "f = 1/(1 + exp(-(w0*x0 + w1*x1 + w2)))"
POINT = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}


@pytest.fixture
def cache(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    return tmp_path / "graphc" / "py"


def _no_stages(monkeypatch):
    """Make every stage of a compile fail: a compile that works took the cache."""

    def stage(*args, **kwargs):
        raise AssertionError("a stage ran")

    monkeypatch.setattr(codegen, "_module", stage)
    monkeypatch.setattr(codegen, "as_graph", stage)
    monkeypatch.setattr(codegen, "builtins", types.SimpleNamespace(compile=stage))


def test_a_second_compile_takes_the_module_from_the_cache(cache, monkeypatch):
    first = graphc.compile(NEURON, cache=True)
    assert len(list(cache.iterdir())) == 1
    want = first.value_and_grad(**POINT)
    source = first.source
    with pytest.MonkeyPatch.context() as mp:
        _no_stages(mp)  # (forward is compiled when first asked for, as without the cache)
        again = graphc.compile(NEURON, cache=True)
    assert again.source == source and again.inputs == first.inputs and again.wrt == first.wrt
    f, g = again.value_and_grad(**POINT)
    # the cs231n notes' numbers (../shared/reference-numbers.md): f = 0.73, ∂f/∂w0 = -0.2
    assert f == want[0] and g == want[1]
    assert round(f, 2) == 0.73 and round(g["w0"], 2) == -0.20 and round(g["x0"], 2) == 0.39
    assert again.forward(**POINT) == f  # forward's text came from the cache too
    assert again == first  # same text, target, inputs, wrt, filename


def test_the_cached_module_reads_as_its_own_text(cache, monkeypatch):
    graphc.compile("q = x + y; f = q * z", cache=True)
    with pytest.MonkeyPatch.context() as mp:
        _no_stages(mp)
        c = graphc.compile("q = x + y; f = q * z", cache=True)
    assert "q = np.add(x, y, out=_out_dz)  # + gate" in inspect.getsource(c.value_and_grad)
    with pytest.raises(graphc.InputError, match="missing"):  # the checked call still checks
        c.value_and_grad(x=1.0, y=2.0)


@pytest.mark.parametrize("change", [
    {"text": "f = 1/(1 + exp(-(w0*x0 + w1*x1 + w2))) + 0*x0"},
    {"wrt": "w0"},
    {"target": "math"},
    {"zero_copy": True},
])  # fmt: skip
def test_each_argument_is_part_of_the_key(cache, monkeypatch, change):
    graphc.compile(NEURON, cache=True)
    args = {"text": NEURON, "wrt": None, "target": "numpy", "zero_copy": False} | change
    text = args.pop("text")

    def stage(*a, **k):
        raise LookupError("a miss")

    monkeypatch.setattr(codegen, "as_graph", stage)
    with pytest.raises(LookupError):
        graphc.compile(text, cache=True, **args)


def test_shapes_are_part_of_the_key(cache):
    three = graphc.compile("f = sum(x * x)", cache=True, shapes={"x": (3,)})
    two = graphc.compile("f = sum(x * x)", cache=True, shapes={"x": (2,)})
    assert len(list(cache.iterdir())) == 2
    assert float(three.value_and_grad(x=np.arange(3.0))[0]) == 5.0
    assert float(two.value_and_grad(x=np.arange(2.0))[0]) == 1.0
    with pytest.raises(graphc.InputError, match="shape"):  # each entry keeps its shapes
        two.value_and_grad(x=np.arange(3.0))
    again = graphc.compile("f = sum(x * x)", cache=True, shapes={"x": (2,)})
    assert again.source == two.source and len(list(cache.iterdir())) == 2


def test_a_damaged_entry_is_compiled_again_and_rewritten(cache):
    graphc.compile(NEURON, cache=True)
    (entry,) = cache.iterdir()
    data = entry.read_bytes()
    for damaged in (data[: len(data) // 2], b"not marshal", b""):
        entry.write_bytes(damaged)
        c = graphc.compile(NEURON, cache=True)
        assert round(float(c.value_and_grad(**POINT)[0]), 2) == 0.73
        assert entry.read_bytes() == data  # written again, whole
    assert not [p for p in cache.iterdir() if p.name.startswith(".tmp-")]


def test_an_edited_graphc_never_serves_an_old_module(cache, monkeypatch):
    graphc.compile(NEURON, cache=True)
    monkeypatch.setattr(pycache, "_depends", lambda: "another graphc")
    calls = []
    real = codegen._module
    monkeypatch.setattr(codegen, "_module", lambda *a: calls.append(1) or real(*a))
    graphc.compile(NEURON, cache=True)
    assert calls and len(list(cache.iterdir())) == 2


def test_without_cache_nothing_is_written_or_read(cache):
    graphc.compile(NEURON)
    assert not cache.exists()
    graphc.compile(NEURON, cache=True)
    (entry,) = cache.iterdir()
    entry.write_bytes(b"damaged")
    assert round(float(graphc.compile(NEURON).value_and_grad(**POINT)[0]), 2) == 0.73
    assert entry.read_bytes() == b"damaged"


def test_a_cache_that_cannot_be_written_is_no_failure(monkeypatch, tmp_path):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache folder would be")
    monkeypatch.setenv("XDG_CACHE_HOME", str(blocked))
    c = graphc.compile(NEURON, cache=True)
    assert round(float(c.value_and_grad(**POINT)[0]), 2) == 0.73


def test_graphs_are_not_cached(cache):
    graphc.compile(graphc.parse(NEURON), cache=True)  # a Graph may have been edited
    assert not cache.exists()


_needs_cc = pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                               reason="no C compiler")  # fmt: skip


def _no_c_stages(mp):
    """Make every stage of a C target's compile fail (the library's load may run)."""
    _no_stages(mp)

    def stage(*args, **kwargs):
        raise AssertionError("a stage ran")

    for name in ("backward", "prepare", "lower", "_tensor_c_module"):
        mp.setattr(codegen, name, stage)


@_needs_cc
@pytest.mark.parametrize("zero_copy", [False, True])
def test_the_c_target_takes_its_loop_from_the_cache(cache, zero_copy):
    text = "q = x + y; f = q * z"
    first = graphc.compile(text, target="c", cache=True, zero_copy=zero_copy)
    assert first.target == "c" and len(list(cache.iterdir())) == 1
    rng = np.random.default_rng(0)
    point = {k: rng.normal(size=1000) for k in ("x", "y", "z")}
    want = first.value_and_grad(**point)
    with pytest.MonkeyPatch.context() as mp:
        _no_c_stages(mp)
        again = graphc.compile(text, target="c", cache=True, zero_copy=zero_copy)
        f, g = again.value_and_grad(**point)
    assert again.target == "c" and again.source == first.source and again.wrt == first.wrt
    # (x+y)z by hand: ∂/∂x = ∂/∂y = z, ∂/∂z = x + y
    x, y, z = point["x"], point["y"], point["z"]
    np.testing.assert_array_equal(f, want[0])
    np.testing.assert_allclose(f, (x + y) * z, rtol=1e-15)
    for name, expected in {"x": z, "y": z, "z": x + y}.items():
        np.testing.assert_allclose(g[name], expected, rtol=1e-15)
    if not zero_copy:  # no returned array shares memory with an input or another one
        assert not np.shares_memory(g["x"], g["y"]) and not np.shares_memory(g["x"], z)
    # Python floats take the math target's function, made from the text on first use
    f, g = again.value_and_grad(x=-2.0, y=5.0, z=-4.0)  # the notes' (x+y)z
    assert (f, g) == (-12.0, {"x": -4.0, "y": -4.0, "z": 3.0})


@_needs_cc
def test_the_c_target_takes_a_tensor_programs_module_from_the_cache(cache):
    text = "X: (N, D); W: (D, H)\nh = relu(X @ W)\nf = sum(h * h) + 0.5 * sum(W * W)"
    first = graphc.compile(text, target="c", cache=True)
    assert first.target == "c"
    rng = np.random.default_rng(1)
    X, W = rng.normal(size=(16, 5)), rng.normal(size=(5, 7))
    with pytest.MonkeyPatch.context() as mp:
        _no_c_stages(mp)
        again = graphc.compile(text, target="c", cache=True)
        f, g = again.value_and_grad(X=X, W=W)
    assert again.source == first.source
    h = np.maximum(X @ W, 0)  # by hand: ∂f/∂W = X.T (2h ⊙ [XW > 0]) + W
    np.testing.assert_allclose(f, (h * h).sum() + 0.5 * (W * W).sum(), rtol=1e-13)
    np.testing.assert_allclose(g["W"], X.T @ (2 * h * (X @ W > 0)) + W, rtol=1e-13)
    np.testing.assert_allclose(g["X"], (2 * h * (X @ W > 0)) @ W.T, rtol=1e-13)


@_needs_cc
def test_a_c_entry_whose_library_cannot_load_compiles_again_and_says_why(cache, monkeypatch):
    graphc.compile(NEURON, target="c", cache=True)
    from graphc import ctarget

    def no_compiler(source):
        raise ctarget.CCompileError("no C compiler found (tried cc, gcc)")

    monkeypatch.setattr(ctarget, "load", no_compiler)
    with pytest.warns(ctarget.CTargetWarning, match="no C compiler"):
        c = graphc.compile(NEURON, target="c", cache=True)
    assert c.target == "numpy"
    assert round(float(c.value_and_grad(**POINT)[0]), 2) == 0.73
    (entry,) = cache.iterdir()  # the C entry, kept; the fallback wrote nothing
    assert pycache.get_c(entry.name) is not None


@_needs_cc
def test_a_damaged_c_entry_is_compiled_again_and_rewritten(cache):
    graphc.compile(NEURON, target="c", cache=True)
    (entry,) = cache.iterdir()
    kept = entry.read_bytes()
    entry.write_bytes(kept[: len(kept) // 2])
    c = graphc.compile(NEURON, target="c", cache=True)
    assert c.target == "c" and entry.read_bytes() == kept
    f, g = c.value_and_grad(**{k: np.full(3, v) for k, v in POINT.items()})
    s = 1 / (1 + math.exp(-1.0))  # the notes' neuron: w·x = 1, ∂f/∂w0 = σ(1 - σ) x0
    np.testing.assert_allclose(f, s, rtol=1e-15)
    np.testing.assert_allclose(g["w0"], s * (1 - s) * POINT["x0"], rtol=1e-14)
    # a Python module's entry is never read as a C target's, nor the other way round
    assert pycache.get_c(entry.name) is not None and pycache.get(entry.name) is None


def test_cache_takes_a_bool():
    with pytest.raises(graphc.InputError, match="cache must be True or False"):
        graphc.compile(NEURON, cache="yes")


def test_another_process_takes_the_entry(cache, tmp_path):
    """The point of the cache: a new process skips every stage."""
    graphc.compile(NEURON, cache=True)
    script = (
        "import graphc, graphc.codegen as c\n"
        "def no(*a, **k): raise SystemExit('a stage ran')\n"
        "c._module = no\n"
        f"f, g = graphc.compile({NEURON!r}, cache=True).value_and_grad(**{POINT!r})\n"
        "print(round(float(f), 2), round(float(g['w0']), 2))\n"
    )
    root = Path(__file__).resolve().parents[1]
    env = {"XDG_CACHE_HOME": str(tmp_path), "PYTHONPATH": str(root), "PATH": "/usr/bin:/bin"}
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True,
                          env=env, timeout=120)  # fmt: skip
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["0.73", "-0.2"]
