"""float32 arrays, and numbers among arrays: graphc against hand-written NumPy and peers.

``python -m benchmarks.dtypes [--size 1000000] [--rounds 15]`` times, per case, every
implementation available, interleaved (``benchmarks.run.interleave``), and prints the
median per call and its ratio to the hand-written NumPy code of the same run:

* ``muladd float32``, ``neuron float32``: every input a float32 array (graphc's C
  target runs its float32 loop; NumPy and the hand-written code compute in float32);
* ``neuron, weights as numbers``: w0, w1, w2 Python floats beside float64 arrays x0, x1,
  the neuron as a model is called (the C target reads each number as one number; the
  hand-written code sums the weights' gradients).

Implementations: ``numpy (hand)`` (the reference), ``graphc`` (NumPy target),
``graphc c``, ``jax.jit`` and ``torch`` (where installed, on the same dtypes). All
single-threaded (``benchmarks.threads``).
"""

from __future__ import annotations

import argparse
import statistics
import sys
from collections.abc import Callable
from typing import Any

from . import threads  # noqa: F401  (first: single thread before numeric imports)
from .impls import UnavailableError, _jax, _need
from .workloads import WORKLOADS, Result, hand_mul_add, hand_neuron, namespace

IMPLS = ("numpy (hand)", "graphc", "graphc c", "jax.jit", "torch")
#: Each case's workload (benchmarks.workloads).
CASES = {"muladd float32": "muladd", "neuron float32": "neuron",
         "neuron, weights as numbers": "neuron"}  # fmt: skip
_NUMBERS = {"w0": 2.0, "w1": -3.0, "w2": -3.0}  # the notes' neuron's weights


def point(case: str, n: int, seed: int = 0) -> dict[str, Any]:
    """The case's inputs: arrays in [-2, 2] (float32 where the case says), or numbers."""
    import numpy as np

    values = WORKLOADS[CASES[case]].point(n, seed)
    if case.endswith("float32"):
        return {k: v.astype(np.float32) for k, v in values.items()}
    return {k: _NUMBERS.get(k, v) for k, v in values.items()}


def hand(case: str) -> Callable[..., Result]:
    """The hand-written code: the notes' (as benchmarks.workloads has it), with the
    numbers' gradients summed (∂sum(f)/∂w0 is a number when w0 is one)."""
    if case.startswith("muladd"):
        return hand_mul_add
    if case.endswith("float32"):
        return hand_neuron

    def neuron_numbers(**inputs: Any) -> Result:
        f, g = hand_neuron(**inputs)
        return f, {k: g[k].sum() if k in _NUMBERS else g[k] for k in g}

    return neuron_numbers


def _torch(case: str, inputs: dict[str, Any]) -> Callable[[], Result]:
    torch = _need("torch")
    from .threads import pin_torch

    pin_torch(torch)
    w = WORKLOADS[CASES[case]]
    names = list(inputs)
    ts = [torch.tensor(v, dtype=torch.float64) if isinstance(v, float)
          else torch.from_numpy(v) for v in inputs.values()]  # fmt: skip
    for t in ts:
        t.requires_grad_(True)
    m = namespace("torch")

    def call() -> Result:
        f = w.formula(m, **dict(zip(names, ts, strict=True)))
        grads = torch.autograd.grad(f.sum(), ts)
        return f.detach().numpy(), {k: g.numpy() for k, g in zip(names, grads, strict=True)}

    return call


def setup(impl: str, case: str, inputs: dict[str, Any]) -> Callable[[], Result]:
    """A zero-argument call of ``impl`` on ``case`` at ``inputs``."""
    import graphc

    w = WORKLOADS[CASES[case]]
    if impl == "numpy (hand)":
        fn = hand(case)
        return lambda: fn(**inputs)
    if impl in ("graphc", "graphc c"):
        compiled = graphc.compile(w.text, target="c" if impl == "graphc c" else "numpy")
        if compiled.target != ("c" if impl == "graphc c" else "numpy"):
            raise UnavailableError("target 'c' not available")
        vg = compiled.module.value_and_grad
        return lambda: vg(**inputs)
    if impl == "jax.jit":
        return _jax(w, inputs)
    if impl == "torch":
        return _torch(case, inputs)
    raise ValueError(f"unknown implementation {impl!r}")


def run_case(case: str, size: int, rounds: int) -> list[tuple[str, float | None, str]]:
    """``(implementation, median seconds or None, ratio or why not)`` per implementation."""
    from .run import SAMPLE_S, interleave

    inputs = point(case, size, seed=1)
    calls, notes = {}, {}
    for impl in IMPLS:
        try:
            calls[impl] = setup(impl, case, inputs)
            calls[impl]()
        except UnavailableError as exc:
            notes[impl] = f"skipped: {exc}"
    times = interleave(calls, rounds, target_s=SAMPLE_S)
    ref = statistics.median(times["numpy (hand)"])
    rows: list[tuple[str, float | None, str]] = []
    for impl in IMPLS:
        if impl in notes:
            rows.append((impl, None, notes[impl]))
        else:
            med = statistics.median(times[impl])
            rows.append((impl, med, f"{med / ref:.2f}"))
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=15)
    ap.add_argument("--only", choices=CASES, nargs="+", default=list(CASES))
    args = ap.parse_args(argv)
    print(f"single thread; {args.size:,} points; {args.rounds} interleaved rounds; medians")
    print("| case | implementation | median | ratio to hand-written |")
    print("|---|---|---|---|")
    for case in args.only:
        for impl, med, ratio in run_case(case, args.size, args.rounds):
            shown = "–" if med is None else f"{med * 1e3:.3g} ms"
            print(f"| {case} | {impl} | {shown} | {ratio} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
