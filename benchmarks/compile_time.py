"""Text -> callable time for one implementation on one random DAG, in a fresh process.

``python -m benchmarks.compile_time PEER GATES [--seed S]`` prints one JSON line
``{"peer": ..., "gates": ..., "seconds": ..., "start": ..., "end": ...}`` (start and
end are ``time.perf_counter`` readings). The runner starts it as a subprocess so that a
peer that takes too long can be stopped (``subprocess`` timeout) and its memory
freed. Imports and a warm-up on a 10-gate DAG happen before the clock starts; the clock
covers text (or the peer's traced program) -> gradient function -> first gradient
(every builder's callable returns ``(value, {input: gradient})``):

* graphc: ``graphc.compile(text)`` (parse, gradient graph, code generation, loading)
  and one call; without ``graphc.compile``, parse + gradient graph + ``evaluate``;
* graphc cache hit: ``graphc.compile(text, cache=True)`` of a text compiled with
  ``cache=True`` once before the clock (in a fresh cache folder), and one call: what a
  second process pays for a program kept on disk (graphc.pycache);
* sympy: build the expression, ``diff`` by each input, ``lambdify(cse=True)``, one call;
* jax: ``jax.jit(jax.value_and_grad(f))`` traced and compiled by its first call;
* pytensor: build the graph, ``pytensor.grad``, ``pytensor.function``, one call.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from typing import Any

from . import threads  # noqa: F401  (single thread before numeric imports)
from .workloads import Dag, Result, namespace, random_dag

PEERS = ("graphc", "graphc cache hit", "sympy", "jax.jit", "pytensor")


def graphc_parse_and_backward(text: str) -> float:
    """Seconds for ``graphc.parse(text)`` plus building its gradient graph."""
    import graphc

    t0 = time.perf_counter()
    g = graphc.parse(text)
    _ = g.backward
    return time.perf_counter() - t0


def _graphc(dag: Dag) -> Callable[[], Result]:
    import graphc

    compile_ = getattr(graphc, "compile", None)
    point = dag.point()
    if compile_ is None:

        def interpret() -> Result:
            ev = graphc.parse(dag.text).evaluate(**point)
            return ev.value, dict(ev.grads)

        return interpret
    return lambda: compile_(dag.text).value_and_grad(**point)


def _graphc_cache_hit(dag: Dag) -> Callable[[], Result]:
    import atexit
    import os
    import shutil
    import tempfile

    import graphc

    if "GRAPHC_BENCH_CACHE" not in os.environ:  # one fresh folder per process
        folder = os.environ["GRAPHC_BENCH_CACHE"] = tempfile.mkdtemp(prefix="graphc-cache-")
        os.environ["XDG_CACHE_HOME"] = folder
        atexit.register(shutil.rmtree, folder, True)
    point = dag.point()
    graphc.compile(dag.text, cache=True)  # kept, before the clock
    return lambda: graphc.compile(dag.text, cache=True).value_and_grad(**point)


def _sympy(dag: Dag) -> Callable[[], Result]:
    import sympy as sp

    m = namespace("sympy")
    point = dag.point()

    def build() -> Result:
        syms = sp.symbols(dag.inputs)
        f = dag.formula(m, **dict(zip(dag.inputs, syms, strict=True)))
        fn = sp.lambdify(syms, [f, *(sp.diff(f, s) for s in syms)], modules="numpy", cse=True)
        value, *grads = fn(*point.values())
        return value, dict(zip(dag.inputs, grads, strict=True))

    return build


def _jax(dag: Dag) -> Callable[[], Result]:
    import jax

    jax.config.update("jax_enable_x64", True)
    m = namespace("jax")
    point = dag.point()

    def build() -> Result:
        def f(*args: Any) -> Any:
            return dag.formula(m, **dict(zip(dag.inputs, args, strict=True)))

        vg = jax.jit(jax.value_and_grad(f, argnums=tuple(range(len(dag.inputs)))))
        value, grads = jax.block_until_ready(vg(*point.values()))
        return value, dict(zip(dag.inputs, grads, strict=True))

    return build


def _pytensor(dag: Dag) -> Callable[[], Result]:
    import pytensor
    import pytensor.tensor as pt

    m = namespace("pytensor")
    point = dag.point()

    def build() -> Result:
        xs = [pt.dscalar(k) for k in dag.inputs]
        f = dag.formula(m, **dict(zip(dag.inputs, xs, strict=True)))
        fn = pytensor.function(xs, [f, *pytensor.grad(f, xs)])
        value, *grads = fn(*point.values())
        return value, dict(zip(dag.inputs, grads, strict=True))

    return build


BUILDERS = {"graphc": _graphc, "graphc cache hit": _graphc_cache_hit, "sympy": _sympy,
            "jax.jit": _jax, "pytensor": _pytensor}  # fmt: skip


def measure(peer: str, gates: int, seed: int = 0) -> tuple[float, float]:
    """``(start, end)`` perf_counter times of the DAG's program -> first gradient with
    ``peer`` (after warm-up); the runner subtracts the machine's pauses in between."""
    BUILDERS[peer](random_dag(10, seed=seed + 10_000))()  # warm-up: imports, first jit
    build = BUILDERS[peer](random_dag(gates, seed=seed))
    t0 = time.perf_counter()
    build()
    return t0, time.perf_counter()


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("peer", choices=PEERS)
    ap.add_argument("gates", type=int)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args(argv)
    t0, t1 = measure(args.peer, args.gates, args.seed)
    out = {"peer": args.peer, "gates": args.gates, "seconds": t1 - t0, "start": t0, "end": t1}
    json.dump(out, sys.stdout)
    sys.stdout.write("\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
