"""Benchmark graphc's generated gradient code against hand-written code and peers.

Usage: ``./dev bench [--quick] [--only WORKLOAD] [--json FILE]`` (or
``python benchmarks/run.py ...``). Workloads: muladd, neuron, staged (float64 arrays),
neuron-floats (Python floats), mlp (a 2-layer softmax classifier on a 256×784 batch,
see ``benchmarks/mlp.py``), compile (text -> callable on random DAGs).

Method: all implementations of a workload run in this one process, interleaved
round-robin (the starting implementation rotates each round), single-threaded; each
sample is the mean of enough calls to last ~2 ms (arrays: one call); the table shows
medians over rounds and the ratio to the hand-written reference measured in the same
rounds. Text -> callable times run in a fresh subprocess per measurement, with a timeout.
"""

from __future__ import annotations

import argparse
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if __package__ in (None, ""):  # run as a script: make ``benchmarks`` importable
    sys.path.insert(0, str(ROOT))

from benchmarks import threads  # noqa: E402, F401  (first: single-thread environment)
from benchmarks.compile_time import PEERS, graphc_parse_and_backward  # noqa: E402
from benchmarks.impls import UnavailableError, label, names_for, setup  # noqa: E402
from benchmarks.stalls import StallWatch  # noqa: E402
from benchmarks.stalls import measure as measure_pauses  # noqa: E402
from benchmarks.workloads import WORKLOADS, random_dag  # noqa: E402

SAMPLE_S = 0.002  # short samples: a pause of the machine spoils few of them
ARRAY_WORKLOADS = ("muladd", "neuron", "staged")
ALL = (*ARRAY_WORKLOADS, "neuron-floats", "mlp", "compile")
VERSION_OF = {
    "jax.jit": "jax",
    "torch": "torch",
    "autograd": "autograd",
    "sympy": "sympy",
    "pytensor": "pytensor",
    "micrograd": "micrograd",
    "numpy (hand)": "numpy",
}


@dataclass
class Row:
    """One line of the results table."""

    workload: str
    impl: str
    median_s: float | None
    ratio: float | None
    samples: int
    unit: str
    note: str = ""
    min_s: float | None = None  # fastest sample
    min_ratio: float | None = None  # fastest sample / the reference's fastest sample


def say(*parts: Any) -> None:
    print(*parts, flush=True)


def version(module: str) -> str:
    from importlib import metadata

    try:
        return metadata.version(module)
    except metadata.PackageNotFoundError:
        return "-"


def calibrate(fn: Callable[[], Any], target_s: float) -> int:
    """How many calls make one sample of about ``target_s`` seconds.

    The per-call time is the fastest of several short batches, so that a pause of the
    machine during calibration does not shrink every later sample to one call.
    """
    batch, best = 1, float("inf")
    deadline = time.perf_counter() + 20 * target_s
    for _ in range(9):
        t0 = time.perf_counter()
        for _ in range(batch):
            fn()
        took = time.perf_counter() - t0
        best = min(best, took / batch)
        if took < target_s / 10:
            batch *= 4
        if time.perf_counter() > deadline:
            break
    return max(1, min(1 << 20, round(target_s / best)))


def interleave(calls: dict[str, Callable[[], Any]], rounds: int, target_s: float) -> dict:
    """Per-call seconds of each callable, ``rounds`` samples each, round-robin."""
    numbers = {k: calibrate(fn, target_s) for k, fn in calls.items()}
    times: dict[str, list[float]] = {k: [] for k in calls}
    keys = list(calls)
    enabled = gc.isenabled()
    try:
        for r in range(rounds):
            gc.collect()
            gc.disable()
            order = keys[r % len(keys) :] + keys[: r % len(keys)]
            for k in order:
                fn, number = calls[k], numbers[k]
                t0 = time.perf_counter()
                for _ in range(number):
                    fn()
                times[k].append((time.perf_counter() - t0) / number)
            if enabled:
                gc.enable()
    finally:
        if enabled:
            gc.enable()
    return times


def run_workload(name: str, size: int, rounds: int) -> list[Row]:
    """Time every available implementation of workload ``name``, interleaved."""
    w = WORKLOADS[name]
    inputs = w.point(size, seed=1)
    unit = "us" if w.scalar else "ms"
    calls: dict[str, Callable[[], Any]] = {}
    notes: dict[str, str] = {}
    labels: dict[str, str] = {}
    for impl in names_for(w):
        try:
            call = setup(impl, w, inputs)
            call()
        except UnavailableError as exc:
            notes[impl] = f"skipped: {exc}"
            continue
        except Exception as exc:  # a peer (or a graphc stage) that fails: report, go on
            notes[impl] = f"failed: {exc!r}"[:120]
            continue
        labels[impl] = label(impl, call)
        if labels[impl] != impl:
            notes[impl] = "graphc.compile not available"
        calls[labels[impl]] = call
    times = interleave(calls, rounds, target_s=SAMPLE_S)
    ref_median = statistics.median(times[names_for(w)[0]])
    ref_min = min(times[names_for(w)[0]])
    rows = []
    for impl in names_for(w):
        if impl in notes:
            rows.append(Row(name, impl, None, None, 0, unit, notes[impl]))
        if impl in labels:
            ts = times[labels[impl]]
            med = statistics.median(ts)
            rows.append(
                Row(name, labels[impl], med, med / ref_median, len(ts), unit,
                    min_s=min(ts), min_ratio=min(ts) / ref_min)
            )  # fmt: skip
    return rows


def run_mlp(rounds: int, quick: bool) -> list[Row]:
    """The 2-layer network: every implementation of ``benchmarks.mlp``, interleaved."""
    from benchmarks import mlp

    inputs = mlp.point(n=32, d=64, h=16) if quick else mlp.point()
    calls: dict[str, Callable[[], Any]] = {}
    notes: dict[str, str] = {}
    want = mlp.hand(**{k: (v.copy() if hasattr(v, "copy") else v) for k, v in inputs.items()})
    for impl in mlp.IMPLS:
        try:
            call = mlp.setup(impl, inputs)
            if impl in mlp.FLOORS:
                call()
                calls[impl] = call
                continue
            value, grads = call()
        except UnavailableError as exc:
            notes[impl] = f"skipped: {exc}"
            continue
        except Exception as exc:  # a peer that fails: report, go on
            notes[impl] = f"failed: {exc!r}"[:120]
            continue
        if not all(
            abs(float(value) - float(want[0])) < 1e-9 * max(1.0, abs(float(want[0])))
            and _close(grads[k], want[1][k])
            for k in mlp.PARAMS
        ):
            notes[impl] = "wrong result: not timed"
            continue
        calls[impl] = call
    times = interleave(calls, rounds, target_s=SAMPLE_S)
    ref = times["numpy (hand)"]
    rows = []
    for impl in mlp.IMPLS:
        if impl in notes:
            rows.append(Row("mlp", impl, None, None, 0, "ms", notes[impl]))
        elif impl in times:
            ts = times[impl]
            med = statistics.median(ts)
            rows.append(
                Row("mlp", impl, med, med / statistics.median(ref), len(ts), "ms",
                    min_s=min(ts), min_ratio=min(ts) / min(ref))
            )  # fmt: skip
    return rows


def _close(a: Any, b: Any) -> bool:
    import numpy as np

    return bool(np.allclose(np.asarray(a), np.asarray(b), rtol=1e-7, atol=1e-10))


def compile_once(
    peer: str, gates: int, seed: int, timeout: float, watch: StallWatch | None = None
) -> tuple[float, float] | str:
    """``(wall seconds, wall minus machine pauses)`` from a subprocess, or ``"timeout"``,
    ``"missing"`` or ``"failed: ..."``."""
    cmd = [sys.executable, "-m", "benchmarks.compile_time", peer, str(gates), "--seed", str(seed)]
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    try:
        out = subprocess.run(
            cmd, env=env, cwd=ROOT, capture_output=True, text=True, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return "timeout"
    if out.returncode != 0:
        err = (out.stderr.strip().splitlines() or [f"exit status {out.returncode}"])[-1]
        return "missing" if "ModuleNotFoundError" in err else f"failed: {err[:100]}"
    got = json.loads(out.stdout.strip().splitlines()[-1])
    seconds = float(got["seconds"])
    paused = watch.stalled(got["start"], got["end"]) if watch and "start" in got else 0.0
    return seconds, seconds - paused


def run_compile(sizes: list[int], timeout: float, repeats: int) -> list[Row]:
    """graphc's parse + gradient graph at 10,000 gates, then text -> callable per peer.

    Rows carry wall-clock medians; the note gives the median with the machine's pauses
    (seen by :class:`benchmarks.stalls.StallWatch`) taken out.
    """
    with StallWatch() as watch:
        return _run_compile(sizes, timeout, repeats, watch)


def _paused_note(walls: list[float], nets: list[float]) -> str:
    net = statistics.median(nets)
    share = 1 - sum(nets) / sum(walls) if sum(walls) else 0.0
    return f"{net:.3g} s without machine pauses ({share:.0%} of the wall time)"


def _run_compile(sizes: list[int], timeout: float, repeats: int, watch: StallWatch) -> list[Row]:
    graphc_parse_and_backward(random_dag(10, seed=1).text)  # warm-up
    text = random_dag(10_000, seed=0).text
    walls, nets = [], []
    for _ in range(repeats):
        wall, net = measure_pauses(lambda: graphc_parse_and_backward(text), watch)
        walls.append(wall)
        nets.append(net)
    rows = [
        Row(
            "parse+backward 10,000",
            "graphc",
            statistics.median(walls),
            None,
            repeats,
            "s",
            _paused_note(walls, nets),
        )
    ]
    say(f"  graphc parse + gradient graph, 10,000 gates: {fmt_value(rows[0])}")
    for peer in PEERS:
        stop = ""
        for gates in sizes:
            wl = f"compile {gates:,}"
            if stop:
                rows.append(Row(wl, peer, None, None, 0, "s", stop))
                continue
            walls, nets = [], []
            got: tuple[float, float] | str = "missing"
            for seed in range(repeats if peer.startswith("graphc") else 1):
                got = compile_once(peer, gates, seed, timeout, watch)
                if isinstance(got, str):
                    break
                walls.append(got[0])
                nets.append(got[1])
            if walls:
                rows.append(
                    Row(
                        wl,
                        peer,
                        statistics.median(walls),
                        None,
                        len(walls),
                        "s",
                        _paused_note(walls, nets),
                    )
                )
            elif got == "missing":
                rows.append(Row(wl, peer, None, None, 0, "s", "skipped: not installed"))
                say(f"  {wl:>14}  {peer:<10} {fmt_value(rows[-1])}")
                break
            elif got == "timeout":
                rows.append(Row(wl, peer, None, None, 0, "s", f"> {timeout:g} s"))
                stop = f"> {timeout:g} s (not run)"
            else:
                rows.append(Row(wl, peer, None, None, 0, "s", str(got)))
                stop = "not run (failed on a smaller DAG)"
            say(f"  {wl:>14}  {peer:<10} {fmt_value(rows[-1])}")
    return rows


def _seconds(value: float, unit: str) -> str:
    v = value * {"ms": 1e3, "us": 1e6, "s": 1.0}[unit]
    return f"{v:.3g} {unit}" if v < 100 else f"{v:.0f} {unit}"


def fmt_value(row: Row) -> str:
    if row.median_s is None:
        return row.note
    return _seconds(row.median_s, row.unit) + (f"  ({row.note})" if row.note else "")


def table(rows: list[Row]) -> str:
    """The results as a Markdown table (medians and ratios to the hand-written code)."""
    lines = [
        "| workload | implementation | median | ratio to hand-written"
        " | fastest | ratio of fastest |",
        "|---|---|---|---|---|---|",
    ]
    for r in rows:
        ratio = f"{r.ratio:.2f}" if r.ratio is not None else ""
        fastest = _seconds(r.min_s, r.unit) if r.min_s is not None else ""
        min_ratio = f"{r.min_ratio:.2f}" if r.min_ratio is not None else ""
        lines.append(
            f"| {r.workload} | {r.impl} | {fmt_value(r)} | {ratio} | {fastest} | {min_ratio} |"
        )
    return "\n".join(lines)


def machine() -> dict[str, Any]:
    return {
        "date": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime()),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "cpu_count": os.cpu_count(),
        "versions": {k: version(v) for k, v in VERSION_OF.items()},
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        description="Benchmark graphc's generated value_and_grad against hand-written "
        "code, JAX, PyTorch, autograd, SymPy, PyTensor and micrograd."
    )
    ap.add_argument("--quick", action="store_true", help="small sizes, few rounds (smoke test)")
    ap.add_argument("--only", choices=ALL, action="append", help="run only this workload")
    ap.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    ap.add_argument("--size", type=int, help="array length (default 1,000,000)")
    ap.add_argument("--rounds", type=int, help="samples per implementation (default 41)")
    ap.add_argument("--timeout", type=float, help="text -> callable limit per peer (s)")
    ap.add_argument(
        "--gates", type=int, nargs="+", help="DAG sizes for text -> callable (100 1000 10000)"
    )
    args = ap.parse_args(argv)
    size = args.size or (10_000 if args.quick else 1_000_000)
    rounds = args.rounds or (5 if args.quick else 41)
    timeout = args.timeout or (20.0 if args.quick else 60.0)
    gates = args.gates or ([30, 100] if args.quick else [100, 1_000, 10_000])
    only = args.only or list(ALL)

    info = machine()
    say(f"graphc benchmarks, {info['date']}, Python {info['python']}, {info['platform']}")
    say("peers: " + ", ".join(f"{k} {v}" for k, v in info["versions"].items()))
    from benchmarks.impls import graphc_compile

    if graphc_compile() is None:
        say("graphc.compile not available: measuring graphc's Graph.evaluate instead")
    say(f"single thread; arrays of {size:,} float64; {rounds} interleaved rounds; medians\n")
    rows: list[Row] = []
    for name in only:
        if name == "compile":
            say(f"text -> callable, random DAGs of {gates} gates (timeout {timeout:g} s)")
            rows += run_compile(gates, timeout, repeats=1 if args.quick else 3)
        else:
            say(f"{name} ...")
            done = (
                run_mlp(rounds, args.quick) if name == "mlp" else run_workload(name, size, rounds)
            )
            for r in done:  # as they come: a run stopped later keeps these
                ratio = f"  ratio {r.ratio:.2f}" if r.ratio is not None else ""
                if r.min_s is not None:
                    ratio += f"; fastest {_seconds(r.min_s, r.unit)}, ratio {r.min_ratio:.2f}"
                say(f"  {r.impl:<18} {fmt_value(r)}{ratio}")
            rows += done
    say("")
    say(table(rows))
    if args.json:
        Path(args.json).write_text(
            json.dumps(
                {
                    "machine": info,
                    "size": size,
                    "rounds": rounds,
                    "results": [asdict(r) for r in rows],
                },
                indent=2,
            )
            + "\n"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
