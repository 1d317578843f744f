"""The benchmark is honest: every implementation it times computes the same thing.

Runs each workload of ``benchmarks/`` at a tiny size, in-process, and checks that every
implementation present (graphc, JAX, PyTorch, autograd, SymPy, PyTensor, micrograd)
gives the value and gradients of the hand-written reference, and that the hand-written
reference itself agrees with central finite differences of the formula. Nothing is timed.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from benchmarks import compile_time, dtypes, instructions, loop, memory, run, stages
from benchmarks.impls import UnavailableError, names_for, setup
from benchmarks.workloads import WORKLOADS, namespace, random_dag

H = 1e-6


def central_differences(formula, point):
    """∂ sum(f) / ∂input elementwise, for an elementwise f, by central differences."""
    m = namespace("numpy")
    grads = {}
    for k, v in point.items():
        up = dict(point, **{k: v + H})
        down = dict(point, **{k: v - H})
        grads[k] = (formula(m, **up) - formula(m, **down)) / (2 * H)
    return grads


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_hand_written_reference_matches_finite_differences(name):
    w = WORKLOADS[name]
    point = w.point(7, seed=3)
    value, grads = w.hand(**point)
    m = namespace("numpy")
    np.testing.assert_allclose(value, w.formula(m, **point), rtol=1e-13)
    fd = central_differences(w.formula, point)
    assert set(grads) == set(w.inputs)
    for k in w.inputs:
        np.testing.assert_allclose(grads[k], fd[k], rtol=1e-6, atol=1e-8, err_msg=k)


def _check_same(w, impl, point, ref_value, ref_grads):
    try:
        call = setup(impl, w, point)
    except UnavailableError as exc:
        return str(exc)
    before = {k: np.copy(v) for k, v in point.items()}
    call()  # a second call must give the same: no implementation may mutate its inputs
    value, grads = call()
    for k, v in point.items():
        np.testing.assert_array_equal(v, before[k], err_msg=f"{impl} changed input {k}")
    # autograd returns sum(f) (it needs a scalar); the others return f itself
    np.testing.assert_allclose(np.sum(value), np.sum(ref_value), rtol=1e-12, err_msg=impl)
    if np.ndim(value):
        np.testing.assert_allclose(value, ref_value, rtol=1e-12, err_msg=impl)
    assert set(grads) == set(w.inputs), impl
    for k in w.inputs:
        g = np.broadcast_to(np.asarray(grads[k], dtype=float), np.shape(ref_grads[k]))
        np.testing.assert_allclose(g, ref_grads[k], rtol=1e-10, atol=1e-14, err_msg=f"{impl} {k}")
    return None


@pytest.mark.parametrize("name", sorted(WORKLOADS))
def test_every_implementation_agrees_with_hand_written(name):
    w = WORKLOADS[name]
    point = w.point(5, seed=2)
    ref_value, ref_grads = w.hand(**point)
    checked = []
    for impl in names_for(w)[1:]:
        if _check_same(w, impl, point, ref_value, ref_grads) is None:
            checked.append(impl)
    assert "graphc" in checked  # graphc.compile, or Graph.evaluate until it lands


@pytest.mark.parametrize("peer", compile_time.PEERS)
def test_text_to_callable_builders_agree_with_finite_differences(peer, monkeypatch, tmp_path):
    # (the cache-hit builder keeps its module in a folder of its own, not the user's)
    monkeypatch.setenv("GRAPHC_BENCH_CACHE", str(tmp_path))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    dag = random_dag(40, seed=5)
    point = dag.point()
    try:
        value, grads = compile_time.BUILDERS[peer](dag)()
    except ModuleNotFoundError as exc:
        pytest.skip(str(exc))
    m = namespace("numpy")
    np.testing.assert_allclose(float(value), dag.formula(m, **point), rtol=1e-12)
    fd = central_differences(dag.formula, point)
    for k in dag.inputs:
        np.testing.assert_allclose(float(grads[k]), fd[k], rtol=1e-6, atol=1e-8, err_msg=k)


def test_random_dag_has_fan_out_and_every_gate_is_live():
    dag = random_dag(200, seed=0)
    uses: dict[str, int] = {}
    for _, _, args in dag.statements:
        for a in args:
            uses[a] = uses.get(a, 0) + 1
    assert dag.gates == 200
    assert max(uses.values()) >= 3  # fan-out
    names = [s[0] for s in dag.statements]
    assert all(uses.get(n, 0) >= 1 for n in names[:-1])  # no dead gate
    assert dag.text.count("\n") == 200


def test_runner_prints_a_table_with_the_reference_at_ratio_one(capsys, tmp_path):
    out = tmp_path / "bench.json"
    assert run.main(["--only", "muladd", "--size", "50", "--rounds", "2", "--json", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| muladd | numpy (hand) |" in text and "| 1.00 |" in text
    import json

    results = json.loads(out.read_text())["results"]
    ref = [r for r in results if r["impl"] == "numpy (hand)"]
    assert ref and ref[0]["ratio"] == 1.0 and ref[0]["median_s"] > 0
    assert ref[0]["min_ratio"] == 1.0 and 0 < ref[0]["min_s"] <= ref[0]["median_s"]


def test_stage_table_sums_the_stages_of_one_compile(capsys):
    got = stages.stages(20, runs=2)
    assert all(got[k] > 0 for k in ("parse", "prepare", "backward", "module_source", "pycompile"))
    assert got["total"] == pytest.approx(got["parse"] + got["module_source"] + got["pycompile"])
    assert stages.main(["--gates", "10", "--runs", "1"]) == 0
    assert "| 10 |" in capsys.readouterr().out


@pytest.mark.skipif(shutil.which("cc") is None and shutil.which("gcc") is None,
                    reason="times the C target")  # fmt: skip
def test_loop_table_times_each_pattern_in_fresh_processes(capsys, monkeypatch):
    seen = []

    def measure(impl, pattern, name, size, calls):  # the real one, recorded
        seen.append((impl, pattern))
        return real(impl, pattern, name, size, calls)

    real = loop.measure
    monkeypatch.setattr(loop, "measure", measure)
    assert loop.main(["--size", "1000", "--rounds", "1", "--calls", "4", "--only", "muladd"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| muladd")]
    assert sorted(seen) == sorted(loop.CASES) and len(rows) == 3
    assert rows[0].startswith("| muladd | numpy (hand) |") and "(1.00)" in rows[0]
    assert rows[2].startswith("| muladd | graphc c |") and rows[2].count(" ms (") == 3


def test_instruction_counts_run_the_compile_and_subtract_the_rest(monkeypatch, capsys):
    # The counted program itself (without Valgrind, which takes minutes per count).
    env = {**os.environ, "PYTHONPATH": str(instructions.ROOT)}
    for mode in ("compile", "base"):
        cmd = [sys.executable, "-c", instructions.CHILD, "20", mode]
        assert subprocess.run(cmd, env=env, capture_output=True, check=False).returncode == 0
    assert instructions.parse_count("==7== \n==7== I   refs:      2,507,287,054\n") == 2507287054
    with pytest.raises(ValueError, match="I refs"):
        instructions.parse_count("valgrind: no such tool")
    # compile costs 2,000 instructions per gate above its baseline at both sizes
    fake = {"compile": 3000, "base": 1000}
    monkeypatch.setattr(instructions, "count", lambda n, mode: fake[mode] * n + 10**9)
    assert instructions.main(["--gates", "10", "40", "--seconds-per-gigainstruction", "0.5"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| 40 |")]
    assert rows == ["| 40 | 0.000 G | 2 k | 1.00 | 0.00 s |"]


@pytest.mark.parametrize("shape", sorted(memory.SHAPES))
def test_memory_shapes_have_the_gates_asked_for(shape):
    import graphc

    g = graphc.parse(memory.SHAPES[shape](60))
    gates = sum(1 for _, d in g.nx.nodes(data=True) if d["op"] not in ("input", "const"))
    assert 57 <= gates <= 61
    point = {k: v for k, v in memory._point(shape).items() if k in g.inputs}
    _, grads = graphc.compile(g).value_and_grad(**point)
    assert set(grads) == set(g.differentiable)


def test_memory_table_measures_each_stage_in_a_fresh_process(capsys):
    assert memory.main(["--shapes", "staged", "--gates", "40", "--stages", "parse", "compile"]) == 0
    rows = [r for r in capsys.readouterr().out.splitlines() if r.startswith("| staged |")]
    assert [r.split(" | ")[2] for r in rows] == ["parse", "compile"]
    assert all("KiB" in r and "MiB" in r for r in rows)


@pytest.mark.parametrize("case", sorted(dtypes.CASES))
def test_every_dtype_case_implementation_agrees_with_hand_written(case):
    """float32 arrays and numbers among arrays: each implementation present gives the
    hand-written value and gradients (in float32's precision where the case is float32),
    each gradient in its input's shape, and leaves its inputs unchanged."""
    point = dtypes.point(case, 9, seed=4)
    want_f, want_g = dtypes.hand(case)(**point)
    f32 = case.endswith("float32")
    rtol = 2e-6 if f32 else 1e-12
    ran = []
    for impl in dtypes.IMPLS[1:]:
        try:
            call = dtypes.setup(impl, case, point)
        except UnavailableError:
            continue
        before = {k: np.copy(v) for k, v in point.items()}
        f, g = call()
        for k, v in point.items():
            np.testing.assert_array_equal(v, before[k], err_msg=f"{impl} changed input {k}")
        np.testing.assert_allclose(np.asarray(f), want_f, rtol=rtol, err_msg=impl)
        for k, v in point.items():
            assert np.shape(g[k]) == np.shape(v), (impl, k)
            atol = 1e-6 if f32 else 1e-14
            np.testing.assert_allclose(np.asarray(g[k], dtype=float), want_g[k], rtol=rtol,
                                       atol=atol, err_msg=f"{impl} {k}")  # fmt: skip
            if f32 and impl.startswith("graphc"):  # float32 in, float32 out
                assert np.asarray(g[k]).dtype == np.float32, (impl, k)
        if f32 and impl.startswith("graphc"):
            assert np.asarray(f).dtype == np.float32, impl
        ran.append(impl)
    assert "graphc" in ran


def test_dtype_table_has_the_reference_at_ratio_one(capsys):
    assert dtypes.main(["--size", "40", "--rounds", "2", "--only", "neuron float32"]) == 0
    text = capsys.readouterr().out
    assert "| neuron float32 | numpy (hand) |" in text and "| 1.00 |" in text
