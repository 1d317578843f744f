"""Peak memory and time per gate of graphc's stages, each measured in a fresh process.

``python -m benchmarks.memory [--shapes sum neg staged power] [--gates 1000 10000]
[--stages parse compile]`` prints, per program shape and size, the peak resident memory
a stage adds (``ru_maxrss`` after the stage minus ``ru_maxrss`` once ``graphc`` is
imported and the text is built), that memory per gate, the whole process's peak, and
the stage's wall time (about 20 s for the defaults). Each measurement runs in its own
process (``python -m benchmarks.memory --worker SHAPE GATES STAGE``, one JSON line),
since a process's peak never goes down.

Shapes (``gates``: gates of the parsed graph, inputs and constants not counted):

* ``sum``: ``x0*x1 + x1*x2 + ...`` over 50 inputs, a long flat sum;
* ``neg``: ``---...x``, a chain of unary gates (one token per gate);
* ``sin``: ``sin(sin(...(x)))``, a chain of nested calls (one level of nesting per gate);
* ``staged``: ``a1 = x*y; a2 = a1*y + a1; ...``, a program of many statements;
* ``power``: ``a2 = a1^a0; a3 = a2^a1; ...``, the costliest per gate found: each power
  has two gradients (``b·a^(b-1)`` and ``a^b·log(a)``) and each gate two uses;
* ``product``: ``x y x y ...``, implicit products (one token per gate);
* ``random``: the compile benchmark's random DAG with fan-out;
* ``tensor``: ``x: (N,); w: (N,); a1 = x*w; a2 = tanh(a1)*w + a1; ...; sum(a_k)``.

Stages: ``parse`` (text -> graph), ``backward`` (parse and the gradient graph),
``evaluate`` (parse and values and gradients at a point: ``graphc grad --at``),
``compile`` (``graphc.compile(text)``, text -> callable: ``graphc codegen``'s work).
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from . import threads  # noqa: F401  (single thread before numeric imports)

STAGES = ("parse", "backward", "evaluate", "compile")


def _sum(gates: int) -> str:
    terms = (gates + 1) // 2  # a mul per term and an add between terms
    return " + ".join(f"x{i % 50}*x{(i + 1) % 50}" for i in range(terms))


def _neg(gates: int) -> str:
    return "-" * gates + "x"


def _product(gates: int) -> str:
    return "x y " * ((gates + 1) // 2)


def _random(gates: int) -> str:
    from .workloads import random_dag

    return random_dag(gates, seed=0).text


def _sin(gates: int) -> str:
    return "sin(" * gates + "x" + ")" * gates


def _staged(gates: int) -> str:
    lines = ["a1 = x*y"]
    lines += [f"a{i} = a{i - 1}*y + a{i - 1}" for i in range(2, gates // 2 + 1)]
    return "\n".join(lines)


def _power(gates: int) -> str:
    lines = ["a0 = x", "a1 = y"]
    lines += [f"a{i} = a{i - 1}^a{i - 2}" for i in range(2, gates + 2)]
    return "\n".join(lines)


def _tensor(gates: int) -> str:
    k = max(2, (gates - 2) // 3 + 2)  # x*w, three gates per statement (tanh, mul, add), sum
    lines = ["x: (N,)", "w: (N,)", "a1 = x*w"]
    lines += [f"a{i} = tanh(a{i - 1})*w + a{i - 1}" for i in range(2, k)]
    lines.append(f"sum(a{k - 1})")
    return "\n".join(lines)


SHAPES: dict[str, Callable[[int], str]] = {
    "sum": _sum,
    "neg": _neg,
    "sin": _sin,
    "product": _product,
    "random": _random,
    "staged": _staged,
    "power": _power,
    "tensor": _tensor,
}


def _point(shape: str) -> dict[str, object]:
    import numpy as np

    if shape == "random":
        from .workloads import DAG_INPUTS

        return {k: 0.1 * (i + 1) for i, k in enumerate(DAG_INPUTS)}
    if shape == "sum":
        return {f"x{i}": 0.01 * (i + 1) for i in range(50)}
    if shape == "tensor":
        return {"x": np.full(3, 0.1), "w": np.full(3, 0.5)}
    return {"x": 0.1, "y": 0.2}


def _peak() -> int:
    """The process's peak resident memory so far, in bytes (Linux reports KiB)."""
    kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return kib if sys.platform == "darwin" else kib * 1024


def worker(shape: str, gates: int, stage: str) -> dict[str, object]:
    """Run one stage once in this process; its added peak memory and seconds."""
    import gc

    import graphc

    graphc.compile("x*y + sin(x)").value_and_grad(x=0.5, y=0.5)  # warm-up: first calls
    text = SHAPES[shape](gates)
    point = _point(shape)
    gc.collect()
    base = _peak()
    t0 = time.perf_counter()
    if stage == "parse":
        kept: object = graphc.parse(text)
    elif stage == "backward":
        g = graphc.parse(text)
        kept = (g, g.backward)
    elif stage == "evaluate":
        g = graphc.parse(text)
        kept = g.evaluate(**{k: v for k, v in point.items() if k in g.inputs})
    elif stage == "compile":
        kept = graphc.compile(text)
    else:
        raise SystemExit(f"unknown stage {stage!r}; choose from {', '.join(STAGES)}")
    seconds = time.perf_counter() - t0
    peak = _peak() - base
    g = graphc.parse(text) if stage != "parse" else kept
    n = sum(1 for _, d in g.nx.nodes(data=True) if d["op"] not in ("input", "const"))
    del kept
    return {"shape": shape, "gates": n, "stage": stage, "bytes": peak, "process": _peak(),
            "seconds": seconds, "chars": len(text)}  # fmt: skip


def measure(shape: str, gates: int, stage: str, timeout: float) -> dict[str, object] | None:
    """:func:`worker` in a fresh process; ``None`` when it failed or ran past ``timeout``."""
    root = Path(__file__).resolve().parents[1]
    env = dict(os.environ, PYTHONPATH=str(root))
    cmd = [sys.executable, "-m", "benchmarks.memory", "--worker", shape, str(gates), stage]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env,
                              cwd=root)  # fmt: skip
    except subprocess.TimeoutExpired:
        return None
    if proc.returncode != 0:
        print(proc.stderr.strip().splitlines()[-1:], file=sys.stderr)
        return None
    return json.loads(proc.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument(
        "--shapes", nargs="+", choices=sorted(SHAPES), default=["sum", "neg", "staged", "power"]
    )
    ap.add_argument("--gates", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--stages", nargs="+", choices=STAGES, default=["parse", "compile"])
    ap.add_argument("--timeout", type=float, default=120.0, help="seconds per measurement")
    ap.add_argument("--json", action="store_true", help="one JSON line per measurement")
    ap.add_argument("--worker", nargs=3, metavar=("SHAPE", "GATES", "STAGE"),
                    help=argparse.SUPPRESS)  # fmt: skip
    args = ap.parse_args(argv)
    if args.worker:
        shape, gates, stage = args.worker
        print(json.dumps(worker(shape, int(gates), stage)))
        return 0
    if not args.json:
        print("| shape | gates | stage | peak added | per gate | process peak | seconds |")
        print("|---|---|---|---|---|---|---|")
    for shape in args.shapes:
        for n in args.gates:
            for stage in args.stages:
                got = measure(shape, n, stage, args.timeout)
                if got is None:
                    print(
                        f"| {shape} | ~{n:,} | {stage} | (failed or > {args.timeout:g} s) | | | |"
                    )
                    continue
                if args.json:
                    print(json.dumps(got), flush=True)
                    continue
                per = got["bytes"] / max(1, got["gates"])  # type: ignore[operator]
                mib = {k: f"{got[k] / 2**20:.0f} MiB" for k in ("bytes", "process")}  # type: ignore[operator]
                print(f"| {shape} | {got['gates']:,} | {stage} | {mib['bytes']} | "
                      f"{per / 1024:.1f} KiB | {mib['process']} | {got['seconds']:.2f} |",
                      flush=True)  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
