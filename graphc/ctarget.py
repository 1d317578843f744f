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

from pathlib import Path
from typing import Any

import numpy as np

from . import c_runtime
from .errors import GraphcError, GraphcWarning
from .lower import value_roots
from .ops import C_HELPERS, C_LOWERING, OPS

__all__ = ["CCompileError", "c_source", "cache_dir", "load"]

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


def plan(lines: list[Any], inputs: tuple[str, ...], grads: dict[str, str]) -> dict[str, Any]:
    """Where each gradient comes from: ``("loop", safe name)`` when the loop stores it,
    ``("input", k)`` when it is input k's value (∂/∂x of (x+y)z is z), ``("same", name)``
    when it equals an earlier gradient (∂/∂x and ∂/∂y of (x+y)z). The loop stores only
    the first kind; the runtime copies the others (or shares them, with ``zero_copy``).
    """
    root = value_roots(lines, inputs)
    seen: dict[tuple[str, str], str] = {}
    out: dict[str, Any] = {}
    for name, text in grads.items():
        r = root.get(text, ("literal", text))
        if r[0] == "input":
            out[name] = ("input", inputs.index(r[1]))
        elif r in seen:
            out[name] = ("same", seen[r])
        else:
            out[name] = ("loop", name)
            seen[r] = name
    return out


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


def load(source: str) -> Any:
    """Compile ``source`` (once: cached by hash) and load it (a :mod:`ctypes` library).

    Raises:
        CCompileError: no compiler, or it failed (with its first error line).
    """
    try:
        return c_runtime.load(source)
    except c_runtime.CCompileError as e:
        raise CCompileError(str(e)) from None


def saved_module(header: str, source: str, inputs: tuple[str, ...], wrt: tuple[str, ...],
                 title: str) -> str:  # fmt: skip
    """A standalone Python module: :mod:`graphc.c_runtime`'s text, the C source, and
    ``value_and_grad``/``forward`` over it (compiled on first import, cached)."""
    runtime = Path(c_runtime.__file__).read_text(encoding="utf-8")
    runtime = runtime.split('"""', 2)[2].lstrip("\n")  # without its own docstring
    quote = chr(39) * 3
    return "\n".join([
        header,
        f'"""{title}: graphc\'s C target. The C source below is compiled on first import',
        "with the system C compiler and cached under $XDG_CACHE_HOME/graphc/c",
        "(~/.cache/graphc/c); needs NumPy and a C compiler (apt-get install gcc).",
        "",
        f"value_and_grad({', '.join(inputs)}, out=None) returns (f, {{input: gradient}});",
        'forward(...) returns f."""',
        "",
        runtime.rstrip("\n"),
        "",
        "",
        f"SOURCE = r{quote}{source}{quote}",
        "",
        f"value_and_grad = CFunction(load(SOURCE), {inputs!r}, {wrt!r})",
        "",
        "",
        "def forward(*args, **kwargs):",
        '    """f at the point."""',
        "    return value_and_grad(*args, **kwargs)[0]",
        "",
    ])  # fmt: skip


CFunction = c_runtime.CFunction
cache_dir = c_runtime.cache_dir
