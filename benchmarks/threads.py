"""Pin every numeric library to one thread. Import this before NumPy, JAX or PyTorch.

The environment variables must be set before the libraries load their thread pools,
so ``benchmarks/run.py`` and the compile-time worker import this module first.
"""

from __future__ import annotations

import contextlib
import os

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


def pin() -> None:
    """Set the single-thread environment (values already set by the user win)."""
    for key, value in SINGLE_THREAD.items():
        os.environ.setdefault(key, value)


def pin_torch(torch: object) -> None:
    """Single-thread PyTorch (intra- and inter-op pools)."""
    torch.set_num_threads(1)  # type: ignore[attr-defined]
    with contextlib.suppress(RuntimeError):  # already set, or parallel work started
        torch.set_num_interop_threads(1)  # type: ignore[attr-defined]


pin()
