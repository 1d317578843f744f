"""Pin every numeric library to one thread. Import this before NumPy, JAX or PyTorch.

The environment variables must be set before the libraries load their thread pools,
so ``benchmarks/run.py`` and the compile-time worker import this module first.

The environment is not enough for JAX: its XLA runtime (0.10) sizes its thread pool by
the CPUs the process may run on and ignores ``XLA_FLAGS``' thread options (on a 2-core
machine its network pass used 1.75 cores: 2.23 ms of CPU time in 1.28 ms). So the
process is also pinned to one CPU (``sched_setaffinity``, as ``taskset -c`` does), which
every thread started later inherits. The one row that measures two threads widens the
pin around its calls (:func:`all_cpus`).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator

SINGLE_THREAD = {
    "OMP_NUM_THREADS": "1",
    "OPENBLAS_NUM_THREADS": "1",
    "MKL_NUM_THREADS": "1",
    "VECLIB_MAXIMUM_THREADS": "1",
    "NUMEXPR_NUM_THREADS": "1",
    "XLA_FLAGS": "--xla_cpu_multi_thread_eigen=false intra_op_parallelism_threads=1",
    "JAX_PLATFORMS": "cpu",
    "JAX_ENABLE_X64": "1",
    "TF_CPP_MIN_LOG_LEVEL": "3",
}


#: The CPUs the process could run on before :func:`pin` (empty where unknown).
CPUS: frozenset[int] = frozenset()


def pin() -> None:
    """Set the single-thread environment (values already set by the user win) and pin
    the process to one of its CPUs (unless ``GRAPHC_BENCH_ALL_CPUS`` is set)."""
    global CPUS
    for key, value in SINGLE_THREAD.items():
        os.environ.setdefault(key, value)
    if not hasattr(os, "sched_getaffinity"):  # (not Linux: the environment only)
        return
    CPUS = CPUS or frozenset(os.sched_getaffinity(0))
    if CPUS and not os.environ.get("GRAPHC_BENCH_ALL_CPUS"):
        os.sched_setaffinity(0, {min(CPUS)})


@contextlib.contextmanager
def all_cpus() -> Iterator[None]:
    """Run the block on every CPU the process had before :func:`pin` (threads started
    inside keep that mask), then on the one CPU again."""
    if not CPUS or not hasattr(os, "sched_setaffinity"):
        yield
        return
    before = os.sched_getaffinity(0)
    os.sched_setaffinity(0, CPUS)
    try:
        yield
    finally:
        os.sched_setaffinity(0, before)


def pin_torch(torch: object) -> None:
    """Single-thread PyTorch (intra- and inter-op pools)."""
    torch.set_num_threads(1)  # type: ignore[attr-defined]
    with contextlib.suppress(RuntimeError):  # already set, or parallel work started
        torch.set_num_interop_threads(1)  # type: ignore[attr-defined]


pin()
