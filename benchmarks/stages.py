"""graphc's text -> callable, stage by stage: the fastest of N runs of each stage.

``python -m benchmarks.stages [--gates 100 1000] [--runs 15] [--program dag|inputs]``
prints, per program size, the fastest run of each stage of ``graphc.compile(text)`` and
their sum. Programs: the random DAG (three inputs), or ``inputs``, a chain that reads two
new inputs on every line (``workloads.input_chain``: per-input work shows there).

Why the fastest run: on a virtual machine that the hypervisor pauses for 0.1-1.5 s at
a time, a measurement of a whole 10,000-gate compile (about a second) almost never
runs without a pause, but each stage of a 1,000-gate compile lasts 3-50 ms and some of
N runs fit between pauses. The pauses only ever add time, so the fastest run is the
estimate of the stage's own cost, and the sum over stages estimates one unpaused
compile. Stages (together, all of ``graphc.compile``):

* ``parse``: text -> graph; ``prepare``: hash-consing, folding, stability rewrites;
* ``backward``: the gradient graph; ``lower``: the module's text up to and with
  ``value_and_grad`` (``module_source`` minus the two stages before it; ``forward`` is
  lowered on first use, so it is not counted); ``pycompile``: loading the generated
  module (Python's own ``compile`` of it and its ``exec``).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from typing import Any

from . import threads  # noqa: F401  (single thread before numeric imports)
from .workloads import input_chain, random_dag


def fastest(fn: Callable[[], Any], runs: int) -> float:
    best = float("inf")
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def stages(gates: int, runs: int, program: str = "dag") -> dict[str, float]:
    """Fastest seconds of each stage of ``graphc.compile`` on a program of ``gates``."""
    import graphc
    from graphc.autodiff import backward
    from graphc.codegen import _load
    from graphc.codegen import _module as module_text
    from graphc.graph import gc_paused

    _module = gc_paused(module_text)  # as graphc.compile runs it
    from graphc.rewrite import prepare

    text = random_dag(gates, seed=0).text if program == "dag" else input_chain(gates)
    g = graphc.parse(text)
    p = prepare(g)
    source, rest = _module(g, None, "numpy", False)
    out = {
        "parse": fastest(lambda: graphc.parse(text), runs),
        "prepare": fastest(lambda: prepare(g), runs),
        "backward": fastest(lambda: backward(p), runs),
        "module_source": fastest(lambda: _module(g, None, "numpy", False), runs),
        "pycompile": fastest(lambda: _load(source, "numpy", tuple(g.inputs), rest), runs),
    }
    out["lower"] = max(0.0, out["module_source"] - out["prepare"] - out["backward"])
    out["total"] = out["parse"] + out["module_source"] + out["pycompile"]
    return out


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gates", type=int, nargs="+", default=[100, 1000])
    ap.add_argument("--runs", type=int, default=15)
    ap.add_argument("--program", choices=("dag", "inputs"), default="dag")
    args = ap.parse_args(argv)
    import graphc

    graphc.compile(random_dag(10, seed=1).text)  # warm-up: imports, first calls
    keys = ("parse", "prepare", "backward", "lower", "pycompile", "total")
    print("| gates | " + " | ".join(keys) + " | total per gate |")
    print("|---" * (len(keys) + 2) + "|")
    for n in args.gates:
        got = stages(n, args.runs, args.program)
        cells = " | ".join(f"{got[k] * 1e3:.1f} ms" for k in keys)
        print(f"| {n:,} | {cells} | {got['total'] / n * 1e6:.0f} µs |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
