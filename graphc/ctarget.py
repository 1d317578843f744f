"""``target="c"``: the same schedule lowered to C, forward and backward in one fused loop.

:func:`c_source` writes one C function per program: a loop over the elements that
computes every gate, forward and backward, in registers (one named statement per gate,
as the Python targets), and stores f and the gradients. The loop carries ``#pragma omp
parallel for simd`` (threads only for arrays longer than :data:`PARALLEL_FROM`, as many
as ``OMP_NUM_THREADS`` allows) and the math functions are declared with GCC's ``simd``
attribute, so that ``exp``/``log`` vectorise through glibc's libmvec while IEEE
semantics stay on (no ``-ffast-math``: NaN and inf behave as NumPy's). :func:`load`
compiles the source once with the system C compiler, caches the shared library under
the user's cache directory (``$XDG_CACHE_HOME/graphc`` or ``~/.cache/graphc``) keyed by
a hash of the source, the flags and the compiler, and loads it with :mod:`ctypes`.

Scope of this version: elementwise programs (scalar programs on arrays). Tensor programs
(``@``, reductions) are compiled by the NumPy target, with a warning that says so, as is
every program when no C compiler is found or the compiler fails.

Inputs broadcast together as on the NumPy target; each is passed to C as a contiguous
float64 array of the broadcast shape (broadcast inputs are expanded first), and each
gradient is summed back to its input's shape and cast to its dtype (float32 inputs are
computed in double and rounded once at the end: within 1 ulp of float32 of the exact
value, where NumPy's float32 code rounds at every gate). Math functions come from
libmvec inside the loop: at most 4 ulp from the scalar libm results.
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from .errors import GraphcError, GraphcWarning
from .ops import C_HELPERS, C_LOWERING, OPS

__all__ = ["CCompileError", "c_source", "cache_dir", "load"]

#: Flags of every compilation (part of the cache key).
FLAGS = (
    "-O3",
    "-march=native",
    "-fopenmp",
    "-fno-math-errno",
    "-ffp-contract=off",  # no fused multiply-add: each gate rounds as NumPy's does
    "-fPIC",
    "-shared",
)
#: Arrays longer than this are split across threads (OpenMP; OMP_NUM_THREADS sets how many).
PARALLEL_FROM = 1 << 16
#: NumPy computes ``x ** c`` for these constants with another ufunc (``sqrt`` for 0.5:
#: ``(-inf) ** 0.5`` is NaN and ``(-0.0) ** 0.5`` is -0.0 there, unlike C's ``pow``).
_SCALAR_POWER = {
    2.0: "({0} * {0})",
    0.5: "sqrt({0})",
    -1.0: "(1.0 / {0})",
    1.0: "(+{0})",
    0.0: "1.0",
}
_SIMD_MATH = ("exp", "log", "log1p", "sin", "cos", "tan", "tanh")  # one double argument


class CCompileError(GraphcError):
    """No C compiler, or the compiler failed: the NumPy target is used instead."""


class CTargetWarning(GraphcWarning):
    """The C target fell back to the NumPy target (the message says why)."""


def cache_dir() -> Path:
    """Where compiled libraries are kept: ``$XDG_CACHE_HOME/graphc/c`` or ``~/.cache``."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graphc" / "c"


def _c_name(name: str) -> str:
    return "v_" + name


def _c_literal(text: str) -> str:
    value = float(text)
    if np.isnan(value):
        return "NAN"
    if np.isinf(value):
        return "INFINITY" if value > 0 else "(-INFINITY)"
    return repr(value)


def _arg(text: str, names: set[str]) -> str:
    return _c_name(text) if text in names else _c_literal(text)


def c_source(lines: list[Any], inputs: tuple[str, ...], out: str, grads: dict[str, str],
             title: str) -> str:  # fmt: skip
    """The C source of ``lines`` (from :func:`graphc.lower.lower`) as one fused loop.

    The function is ``void value_and_grad(ptrdiff_t n, const double *v_x_in, ...,
    double *f_out, double *dv_x_out, ...)``: inputs in order (their safe names), then f,
    then one gradient per ``grads`` entry (keyed by the input's safe name).
    """
    variables = set(inputs) | {line.var for line in lines}
    used_ops = {line.op for line in lines if line.op is not None}
    missing = sorted(op for op in used_ops if op not in C_LOWERING)
    if missing:
        raise CCompileError(f"no C lowering for {', '.join(missing)} (a tensor op)")
    helpers = [h for h in C_HELPERS if any(h + "(" in C_LOWERING[op] for op in used_ops)]
    if "g_logaddexp" not in helpers and any("g_logaddexp" in C_HELPERS[h] for h in helpers):
        helpers.insert(0, "g_logaddexp")
    params = [f"const double *restrict {_c_name(n)}_in" for n in inputs]
    params += ["double *restrict f_out"]
    params += [f"double *restrict d{_c_name(n)}_out" for n in grads]
    body: list[str] = []
    for n in inputs:
        body.append(f"        const double {_c_name(n)} = {_c_name(n)}_in[i];")
    declared = set(inputs)
    for line in lines:
        var = _c_name(line.var)
        if line.op is None:
            expr = _arg(line.args[0], variables)
            comment = line.comment
        else:
            args = [_arg(a, variables) for a in line.args]
            template = C_LOWERING[line.op]
            if line.op == "pow" and line.args[1] not in variables:
                template = _SCALAR_POWER.get(float(line.args[1]), template)
            expr = template.format(*args)
            comment = line.comment or f"{OPS[line.op].symbol} gate"
        decl = "" if line.var in declared else "double "
        declared.add(line.var)
        body.append(f"        {decl}{var} = {expr};  /* {comment} */")
    body.append(f"        f_out[i] = {_arg(out, variables)};")
    for n, text in grads.items():
        body.append(f"        d{_c_name(n)}_out[i] = {_arg(text, variables)};")
    simd = (
        "".join(f'__attribute__((simd("notinbranch"))) double {fn}(double);\n' for fn in _SIMD_MATH)
        + '__attribute__((simd("notinbranch"))) double pow(double, double);\n'
    )
    parts = [
        f"/* Generated by graphc: {title} */",
        "#include <math.h>\n#include <stddef.h>\n",
        "/* vector versions of the math functions (glibc's libmvec) inside the loop */",
        simd,
        *(C_HELPERS[h] for h in helpers),
        f"void value_and_grad(ptrdiff_t n, {', '.join(params)}) {{",
        f"    #pragma omp parallel for simd if(n > {PARALLEL_FROM}) schedule(static)",
        "    for (ptrdiff_t i = 0; i < n; i++) {",
        *body,
        "    }",
        "}",
        "",
    ]
    return "\n".join(parts)


def _compiler() -> str:
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise CCompileError("no C compiler found (install one: apt-get install gcc)")


def load(source: str) -> ctypes.CDLL:
    """Compile ``source`` (once: cached by hash) and load it.

    Raises:
        CCompileError: no compiler, or it failed (with its first error line).
    """
    cc = _compiler()
    try:
        version = subprocess.run([cc, "--version"], capture_output=True, text=True,
                                 timeout=30).stdout.split("\n", 1)[0]  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CCompileError(f"the C compiler {cc!r} does not run: {e}") from None
    key = hashlib.sha256("\0".join([source, *FLAGS, version]).encode()).hexdigest()[:24]
    directory = cache_dir()
    lib = directory / f"graphc_{key}.so"
    if not lib.exists():
        try:
            directory.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise CCompileError(f"cannot create the cache {directory}: {e}") from None
        with tempfile.TemporaryDirectory() as tmp:
            src = Path(tmp) / "graphc.c"
            src.write_text(source, encoding="utf-8")
            part = Path(tmp) / "graphc.so"
            cmd = [cc, *FLAGS, str(src), "-o", str(part), "-lmvec", "-lm"]
            try:
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=600)
            except (OSError, subprocess.TimeoutExpired) as e:
                raise CCompileError(f"{cc} did not finish: {e}") from None
            if done.returncode != 0:
                first = next((t for t in done.stderr.splitlines() if "error" in t),
                             done.stderr.strip()[:200])  # fmt: skip
                raise CCompileError(f"{cc} failed: {first}")
            os.replace(part, lib)  # atomic: a concurrent loader sees all or nothing
    try:
        return ctypes.CDLL(str(lib))
    except OSError as e:
        raise CCompileError(f"cannot load {lib}: {e}") from None


_PTR = ctypes.POINTER(ctypes.c_double)


class CFunction:
    """``value_and_grad(**inputs)`` over a compiled fused loop (see the module doc)."""

    def __init__(self, lib: ctypes.CDLL, inputs: tuple[str, ...], wrt: tuple[str, ...]):
        self._fn = lib.value_and_grad
        self._fn.restype = None
        self.inputs = inputs
        self.wrt = wrt

    def __call__(self, *args: Any, **kwargs: Any) -> tuple[Any, dict[str, Any]]:
        """``(f, {input: gradient})``; ``out=`` a previous result ``(f, grads)`` of the
        same shapes writes into those arrays instead of new ones (a training loop then
        allocates nothing per step)."""
        out_bufs = kwargs.pop("out", None) if "out" not in self.inputs else None
        values = dict(zip(self.inputs, args, strict=False))
        for k, v in kwargs.items():
            if k in values:
                raise TypeError(f"value_and_grad() got multiple values for argument {k!r}")
            values[k] = v
        missing = [n for n in self.inputs if n not in values]
        unknown = [n for n in values if n not in self.inputs]
        if missing or unknown:
            raise TypeError(
                f"value_and_grad() missing {missing}"
                if missing
                else f"unknown input {unknown[0]!r}"
            )
        raw = [np.asarray(values[n]) for n in self.inputs]
        for n, a in zip(self.inputs, raw, strict=True):
            if a.dtype.kind not in "biuf":
                raise TypeError(f"{n}: expected real numbers, got an array of dtype {a.dtype}")
        floats = [a.dtype for v, a in zip((values[n] for n in self.inputs), raw, strict=True)
                  if a.dtype.kind == "f" and not isinstance(v, (int, float))]  # fmt: skip
        dtype = np.result_type(*floats) if floats else np.dtype(np.float64)
        shape = np.broadcast_shapes(*(a.shape for a in raw))
        full = [
            a
            if a.shape == shape and a.dtype == np.float64 and a.flags.c_contiguous
            else np.ascontiguousarray(np.broadcast_to(a.astype(np.float64), shape))
            for a in raw
        ]
        n = int(np.prod(shape, dtype=np.int64))
        f, grads = _buffers(out_bufs, shape, self.wrt)
        ptrs = [a.ctypes.data_as(_PTR) for a in (*full, f, *grads.values())]
        self._fn(ctypes.c_ssize_t(n), *ptrs)
        out: dict[str, Any] = {}
        for k, g in grads.items():
            like = raw[self.inputs.index(k)]
            kind = like.dtype if like.dtype.kind == "f" else np.dtype(np.float64)
            if like.shape != shape:
                from .evaluate import sum_to_shape

                g = np.asarray(sum_to_shape(g, shape, like.shape))
            out[k] = _plain(g.astype(kind, copy=False))
        return _plain(f.astype(dtype, copy=False)), out


def _buffers(out: Any, shape: tuple[int, ...], wrt: tuple[str, ...]) -> tuple[Any, dict]:
    """Output arrays: those of ``out`` where they fit (float64, C-contiguous, the broadcast
    shape), fresh ones otherwise."""

    def fits(a: Any) -> bool:
        return (type(a) is np.ndarray and a.shape == shape and a.dtype == np.float64
                and a.flags.c_contiguous and a.flags.writeable)  # fmt: skip

    f_out, g_out = out if out is not None else (None, {})
    f = f_out if fits(f_out) else np.empty(shape, dtype=np.float64)
    grads = {}
    seen = {id(f)}
    for k in wrt:
        a = g_out.get(k) if isinstance(g_out, dict) else None
        grads[k] = a if fits(a) and id(a) not in seen else np.empty(shape, dtype=np.float64)
        seen.add(id(grads[k]))
    return f, grads


def _plain(a: np.ndarray) -> Any:
    return a[()] if a.ndim == 0 else a
