"""A training loop's calls: what each call costs when the caller keeps its results.

``python -m benchmarks.loop [--size 1000000] [--rounds 9] [--calls 20]`` times
``value_and_grad`` called the way a loop calls it, single thread, per workload:

* ``drop``: the caller lets go of each result before the next call (``run.py``'s way);
* ``hold``: ``f, g = value_and_grad(...)``: the last result is still held while the
  next call runs, and let go of after it;
* ``out=``: each call writes into the previous result's arrays.

Fresh arrays of millions of elements cost page faults and the kernel's zeroing, so
``hold`` can cost more than ``drop`` for code that allocates its results on every
call. Each round runs each implementation in a fresh process (the allocator's state
then is a script's, not the state that other implementations left), interleaved;
the table gives the median over rounds of each process's median over its second half
of calls: on this VM a fresh process's first 20-30 calls of 1,000,000-element NumPy
code run about four times slower than the later ones (the memory allocator returns
freed arrays to the system and takes them back, page faults, until its thresholds
settle), and a training loop makes thousands.
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
from pathlib import Path

_ROOT = Path(__file__).resolve().parent.parent

#: (implementation, pattern) pairs timed per workload.
CASES = [
    ("numpy (hand)", "drop"),
    ("numpy (hand)", "hold"),
    ("graphc", "drop"),
    ("graphc", "hold"),
    ("graphc", "out="),
    ("graphc c", "drop"),
    ("graphc c", "hold"),
    ("graphc c", "out="),
]

_CHILD = """
import statistics, sys, time, warnings
sys.path.insert(0, {root!r})
from benchmarks import threads  # noqa: F401  (single thread before numeric imports)
from benchmarks.workloads import WORKLOADS
impl, pattern, name, size, calls = {impl!r}, {pattern!r}, {name!r}, {size}, {calls}
w = WORKLOADS[name]
inputs = w.point(size)
if impl == "numpy (hand)":
    fn = lambda out=None: w.hand(**inputs)
else:
    import graphc
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        c = graphc.compile(w.text, target="c" if impl == "graphc c" else "numpy")
    vg = c.module.value_and_grad
    fn = lambda out=None: vg(**inputs, out=out)
times, result = [], None
for _ in range(calls):
    t0 = time.perf_counter()
    if pattern == "drop":
        fn()
    elif pattern == "hold":
        result = fn()
    else:
        result = fn(out=result)
    times.append(time.perf_counter() - t0)
print(statistics.median(times[len(times) // 2 :]))
"""


def measure(impl: str, pattern: str, name: str, size: int, calls: int) -> float:
    """Median seconds per call of ``calls`` calls in a fresh process."""
    code = _CHILD.format(root=str(_ROOT), impl=impl, pattern=pattern, name=name, size=size,
                         calls=calls)  # fmt: skip
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          timeout=600, check=False)  # fmt: skip
    if done.returncode != 0:
        raise RuntimeError(f"{impl} {pattern}: {done.stderr.strip()[-500:]}")
    return float(done.stdout.strip().splitlines()[-1])


def run(name: str, size: int, rounds: int, calls: int) -> dict[tuple[str, str], float]:
    """Median over ``rounds`` interleaved rounds of each case's per-call median."""
    got: dict[tuple[str, str], list[float]] = {case: [] for case in CASES}
    for r in range(rounds):
        for case in CASES[r % len(CASES) :] + CASES[: r % len(CASES)]:
            got[case].append(measure(*case, name, size, calls))
    return {case: statistics.median(v) for case, v in got.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1_000_000)
    ap.add_argument("--rounds", type=int, default=9)
    ap.add_argument("--calls", type=int, default=60)
    ap.add_argument("--only", nargs="+", default=["muladd", "neuron"])
    args = ap.parse_args(argv)
    print("| workload | implementation | drop | hold | out= |")
    print("|---|---|---|---|---|")
    for name in args.only:
        got = run(name, args.size, args.rounds, args.calls)
        hand = got[("numpy (hand)", "drop")]
        for impl in dict.fromkeys(i for i, _ in CASES):
            cells = []
            for pattern in ("drop", "hold", "out="):
                t = got.get((impl, pattern))
                cells.append("" if t is None else f"{t * 1e3:.2f} ms ({t / hand:.2f})")
            print(f"| {name} | {impl} | {' | '.join(cells)} |", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
