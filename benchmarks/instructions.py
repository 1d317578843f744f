"""graphc's text -> callable, counted in executed instructions (Valgrind's cachegrind).

``python -m benchmarks.instructions [--gates 1000 10000] [--seconds-per-gigainstruction S]``
prints, per random DAG size, the instructions that ``graphc.compile(text)`` executes
and their ratio to the smallest size's count per gate.

Why instructions: wall-clock time on a virtual machine that the hypervisor pauses for
0.1-2 s at a time says little about a one-second compile, and process CPU time counts
the pauses too. The number of instructions a run executes does not depend on load or
pauses, so it shows directly whether compile cost grows linearly with the graph.
``--seconds-per-gigainstruction`` (from a short unpaused wall-clock run, such as
``benchmarks.stages`` at 1,000 gates) turns the counts into estimated seconds.

Each count runs in its own process under ``valgrind --tool=cachegrind --cache-sim=no``
(about 50 times slower than normal), with ``PYTHONHASHSEED=0``; a process that does
everything but the compile (imports, a warm-up compile, building the DAG's text) is
counted too and subtracted.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

#: What the counted process runs: ``python -c CHILD gates compile|base``.
CHILD = """
import sys
from benchmarks import threads
from benchmarks.workloads import random_dag
import graphc
graphc.compile(random_dag(10, seed=1).text)
text = random_dag(int(sys.argv[1]), seed=0).text
if sys.argv[2] == "compile":
    graphc.compile(text)
"""


def parse_count(report: str) -> int:
    """The ``I refs`` total of a cachegrind report."""
    found = re.search(r"I\s+refs:\s+([\d,]+)", report)
    if found is None:
        raise ValueError(f"no 'I refs' line in cachegrind's output:\n{report[-2000:]}")
    return int(found.group(1).replace(",", ""))


def count(gates: int, mode: str) -> int:
    """Instructions the child process executes (whole process)."""
    valgrind = shutil.which("valgrind")
    if valgrind is None:
        raise SystemExit("valgrind is not installed (Debian: apt-get install valgrind)")
    cmd = [valgrind, "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=/dev/null"]
    cmd += [sys.executable, "-c", CHILD, str(gates), mode]
    env = {**os.environ, "PYTHONHASHSEED": "0", "PYTHONPATH": str(ROOT)}
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise SystemExit(f"the counted process failed:\n{done.stderr[-2000:]}")
    return parse_count(done.stderr)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--gates", type=int, nargs="+", default=[1000, 10000])
    ap.add_argument("--seconds-per-gigainstruction", type=float, default=None)
    ap.add_argument("--jobs", type=int, default=2, help="counted processes at a time")
    args = ap.parse_args(argv)
    sizes = sorted(set(args.gates))
    runs = [(n, mode) for n in sizes for mode in ("compile", "base")]
    with ThreadPoolExecutor(args.jobs) as pool:
        counts = dict(zip(runs, pool.map(lambda r: count(*r), runs), strict=True))
    rate = args.seconds_per_gigainstruction
    print(
        "| gates | instructions | per gate | per gate / smallest's |"
        + (" estimated time |" if rate else "")
    )
    print("|---|---|---|---|" + ("---|" if rate else ""))
    first = None
    for n in sizes:
        spent = counts[(n, "compile")] - counts[(n, "base")]
        per_gate = spent / n
        first = first or per_gate
        cells = f"| {n:,} | {spent / 1e9:.3f} G | {per_gate / 1e3:.0f} k | {per_gate / first:.2f} |"
        if rate:
            cells += f" {spent / 1e9 * rate:.2f} s |"
        print(cells, flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
