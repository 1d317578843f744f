"""``target="c"``: the same schedule lowered to C, forward and backward in one fused loop.

:func:`c_source` writes one C function per program: a loop over the elements that
computes every gate, forward and backward, in registers (one named statement per gate,
as the Python targets), and stores f and the gradients: lines of 8 points under
``#pragma omp simd``, chunks of lines across threads (only for arrays longer than
:data:`PARALLEL_FROM`, as many as ``OMP_NUM_THREADS`` allows), and streaming stores
for arrays that outgrow the cache. The math functions are declared with GCC's ``simd``
attribute, so that ``exp``/``log``/``sin`` vectorise through glibc's libmvec while IEEE
semantics stay on (no ``-ffast-math``: NaN and inf behave as NumPy's). :func:`load`
compiles the source once with the system C compiler, caches the shared library under
the user's cache directory (``$XDG_CACHE_HOME/graphc`` or ``~/.cache/graphc``) keyed by
a hash of the source, the flags and the compiler, and loads it with :mod:`ctypes`.

Tensor programs (``@``, reductions) keep NumPy/BLAS for those gates and run each run of
elementwise gates of one shape as one C loop nest (:func:`fuse`, :class:`Kernel`);
every program is compiled by the NumPy target, with a warning that says why, when no C
compiler is found, the compiler fails, or a tensor program has nothing to fuse.

Inputs broadcast together as on the NumPy target; each is passed to C as a contiguous
float64 array of the broadcast shape (broadcast inputs are expanded first; a number
among arrays as 8 copies of itself, with step 0: the loop reads it without an array of
the output's size), and each
gradient is summed back to its input's shape and cast to its dtype (float32 inputs are
computed in double and rounded once at the end: within 1 ulp of float32 of the exact
value, where NumPy's float32 code rounds at every gate; float32 arrays of one shape
run a variant of the loop that reads and writes float, :func:`c_runtime.f32_source`,
with the same numbers and without the copies). Math functions come from
libmvec inside the loop: at most 4 ulp from the scalar libm results.
"""

from __future__ import annotations

import bisect
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from . import c_runtime
from .errors import GraphcError, GraphcWarning
from .lower import NOT_OWNED, VIEW_OPS, value_roots
from .ops import C_HELPERS, C_LOWERING, C_ROW_SHIFT, C_ROWS, OPS

__all__ = [
    "CCompileError",
    "Kernel",
    "c_source",
    "cache_dir",
    "fuse",
    "kernels_source",
    "load",
    "runtime_source",
]

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
#: sin and cos are not GCC builtins here (c_runtime.FLAGS): as builtins, GCC joins the
#: sin and cos of one argument (every gradient of either has both) into one call of
#: sincos, which has no vector version, and the loop stayed scalar. Declared ``const``,
#: as the builtins are, they leave the loop's branch-free selects (sigmoid's) alone.
_CONST = {"sin": ", const", "cos": ", const"}


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
    at = {n: i for i, n in enumerate(inputs)}
    seen: dict[tuple[str, str], str] = {}
    out: dict[str, Any] = {}
    for name, text in grads.items():
        r = root.get(text, ("literal", text))
        if r[0] == "input":
            out[name] = ("input", at[r[1]])
        elif r in seen:
            out[name] = ("same", seen[r])
        else:
            out[name] = ("loop", name)
            seen[r] = name
    return out


#: Doubles in a 64-byte cache line: the block a streaming store writes.
LINE = 8
#: Lines a thread takes at a time (one call of the loop's ``run``).
CHUNK = 1024
#: Points of this many statements and more (about 5,700 gates) are computed in stages
#: of :data:`STAGE` statements (:func:`_stages`). GCC's register allocation grows faster
#: than a block of statements: one block of 35,000 (10,000 gates) took GCC 70 s, in
#: stages 17 s, and it would reach the 600 s limit near the 25,000 gates a text may
#: build. Stages cost the loop about 8 % at 10,000 gates, so smaller programs stay one
#: block (docs/performance.md).
STAGE_FROM = 20_000
#: Statements in one stage.
STAGE = 150

#: How a loop in stages allocates the memory its stages hand values on through (a
#: compiler flag -DGRAPHC_ALLOC(bytes)=... may replace it).
_ALLOC = [
    "#ifndef GRAPHC_ALLOC  /* the memory stages hand values on through: whole lines */",
    "#define GRAPHC_ALLOC(bytes) aligned_alloc(64, (bytes))",
    "#endif\n",
]

#: The C support for streaming stores (x86: AVX-512, AVX or SSE2 as the compiler's
#: -march allows; elsewhere plain stores and no line is ever streamed).
_STREAMING = c_runtime.IO_TYPEDEF + r"""  /* the arrays' elements (see c_runtime.f32_source) */

/* Streaming stores write a whole 64-byte line past the cache, without reading it
   first: a call whose arrays outgrow the cache (the runtime passes stream = 1) writes
   its results this way, where every output lies at one offset from a line. */

/* a line of 8 results to p, with plain stores */
static inline void graphc_put(graphc_io *restrict p, const double *restrict line) {
    for (int k = 0; k < 8; k++) p[k] = line[k];
}

#if defined(GRAPHC_NO_STREAM)  /* asked for (float arrays: 8 results are half a line) */
static inline void graphc_stream(graphc_io *p, const double *line) { graphc_put(p, line); }
#elif defined(__AVX512F__)
#include <immintrin.h>
static inline void graphc_stream(graphc_io *p, const double *line) {
    _mm512_stream_pd(p, _mm512_load_pd(line));
}
#elif defined(__AVX__)
#include <immintrin.h>
static inline void graphc_stream(graphc_io *p, const double *line) {
    _mm256_stream_pd(p, _mm256_load_pd(line));
    _mm256_stream_pd(p + 4, _mm256_load_pd(line + 4));
}
#elif defined(__SSE2__)
#include <emmintrin.h>
static inline void graphc_stream(graphc_io *p, const double *line) {
    for (int k = 0; k < 8; k += 2) _mm_stream_pd(p + k, _mm_load_pd(line + k));
}
#else
#define GRAPHC_NO_STREAM
static inline void graphc_stream(graphc_io *p, const double *line) { graphc_put(p, line); }
#endif
#ifdef GRAPHC_NO_STREAM
static inline void graphc_fence(void) {}
#else
static inline void graphc_fence(void) { _mm_sfence(); }
#endif

/* [*lo, *hi): the points whose results fill whole lines of every output (none where
   the outputs lie at different offsets from a line, or without streaming stores). */
static void graphc_lines(ptrdiff_t n, graphc_io *const *outs, int k, ptrdiff_t *lo,
                         ptrdiff_t *hi) {
    *lo = *hi = 0;
#ifndef GRAPHC_NO_STREAM
    uintptr_t off = (uintptr_t)outs[0] % 64;
    for (int j = 1; j < k; j++)
        if ((uintptr_t)outs[j] % 64 != off) return;
    ptrdiff_t peel = (ptrdiff_t)((64 - off) % 64) / 8;
    if (off % 8 || peel >= n) return;
    *lo = peel;
    *hi = peel + (n - peel) / 8 * 8;
#endif
}
"""


def c_source(lines: list[Any], inputs: tuple[str, ...], out: str, grads: dict[str, str],
             title: str) -> str:  # fmt: skip
    """The C source of ``lines`` (from :func:`graphc.lower.lower`) as one fused loop.

    ``point`` computes one point, every gate forward and backward, and stores its
    results. It is inlined once, in ``run``: a loop over lines of 8 points (a 64-byte
    cache line of each output) that computes a line into local lines and stores them,
    with streaming stores where ``stream``. The function is ``ptrdiff_t
    value_and_grad(ptrdiff_t n, int stream, const graphc_io *in_x, ..., graphc_io
    *out_f, graphc_io *out_dx, ..., ptrdiff_t step_x, ...)``: inputs in order (their safe
    names), then f, then one gradient per ``grads`` entry (keyed by the input's safe
    name), then a step per input (1: an array of n points; 0: one number, given as 8
    copies). ``graphc_io`` is double (float in :func:`c_runtime.f32_source`'s variant;
    values are double either way). It runs the whole
    lines (split across threads), with streaming stores where the runtime asks (the
    call's arrays outgrow the cache) and the outputs allow; a part-line at either end
    runs on padded copies. It returns how many points it wrote with streaming stores
    (-1 where a point in stages could not allocate its slots).

    A point of :data:`STAGE_FROM` statements and more is computed in stages instead
    (:func:`_stages`): ``run`` calls them in turn for each line.
    """
    variables = set(inputs) | {line.var for line in lines}
    used_ops = _check_ops(lines)
    # Names by prefix, so that none can meet another: values v_x, pointers in_x, out_f
    # and out_dx, an input's padded part-line pad_x, an output's local line line_f.
    ins = [f"in_{n}" for n in inputs]
    outs = ["out_f", *(f"out_d{n}" for n in grads)]
    # the arrays are graphc_io (double; float in the float32 variant), a point's results
    # go to local lines of double
    params = [f"const graphc_io *restrict {p}" for p in ins]
    point_params = [*params, *(f"double *restrict {p}" for p in outs)]
    params += [f"graphc_io *restrict {p}" for p in outs]
    stores = [f"out_f[i] = {_arg(out, variables)};"]
    stores += [f"out_d{n}[i] = {_arg(text, variables)};" for n, text in grads.items()]
    pads = [f"pad_{n}" for n in inputs]
    lines_of = [f"line_{p[4:]}" for p in outs]
    # an input's step: 1 for an array, 0 for one number (in_x then holds its 8 copies,
    # a line's worth, so that no number is expanded to an array of the output's size)
    steps = [f"step_{n}" for n in inputs]
    step_params = ", ".join(f"ptrdiff_t {t}" for t in steps)
    args = ", ".join([*(f"{p} + b * {t}" for p, t in zip(ins, steps, strict=True)),
                      *lines_of])  # a line's, from point b  # fmt: skip
    chunk = f"(lo + {LINE} * c)"  # where the chunk of lines that starts at line c starts
    all_params = ", ".join([*params, step_params])
    pad_from = list(zip(pads, ins, steps, strict=True))
    chunk_args = [*(f"{p} + {chunk} * {t}" for p, t in zip(ins, steps, strict=True)),
                  *(f"{p} + {chunk}" for p in outs), *steps]  # fmt: skip
    if len(lines) < STAGE_FROM:
        body = [f"    const double {_c_name(n)} = in_{n}[i];" for n in inputs]
        body += _statements(lines, variables, set(inputs), "    ")
        body += [f"    {t}" for t in stores]
        point = [
            "/* One point: every gate, forward and backward, then its results stored at i. */",
            "static inline __attribute__((always_inline)) void point(",
            f"        ptrdiff_t i, {', '.join(point_params)}) {{",
            *body,
            "}",
            "",
        ]
        compute = [
            "        #pragma omp simd",
            f"        for (ptrdiff_t j = 0; j < {LINE}; j++)",
            f"            point(j, {args});",
        ]
        slots = 0
    else:
        results = [out, *grads.values()]
        point, calls, slots = _stages(lines, inputs, variables, stores, results,
                                      point_params)  # fmt: skip
        slots = max(slots, 1)  # (one stage hands nothing on)
        compute = [f"        {call}(slots, {args});" for call in calls]
    parts = [
        *_preamble(title, used_ops),
        "#include <stdint.h>\n#include <stdlib.h>\n",
        *(_ALLOC if slots else []),
        _STREAMING,
        *point,
        "/* count lines of 8 points: each computed into local lines, then stored; returns",
        "   -1 where the memory for the values stages hand on cannot be had */",
        "static __attribute__((noinline, noclone)) int run(",
        f"        ptrdiff_t count, int stream, {all_params}) {{",
        *(
            [
                f"    double *slots = GRAPHC_ALLOC({slots} * {LINE} * sizeof(double));",
                "    if (!slots)",
                "        return -1;",
            ]
            if slots
            else []
        ),
        f"    for (ptrdiff_t b = 0; b < {LINE} * count; b += {LINE}) {{",
        *(f"        double {v}[{LINE}] __attribute__((aligned(64)));" for v in lines_of),
        *compute,
        "        if (stream) {",
        *(f"            graphc_stream({p} + b, {v});" for p, v in zip(outs, lines_of, strict=True)),
        "        } else {",
        *(f"            graphc_put({p} + b, {v});" for p, v in zip(outs, lines_of, strict=True)),
        "        }",
        "    }",
        *(["    free(slots);"] if slots else []),
        "    return 0;",
        "}",
        "",
        "/* Returns how many points it wrote with streaming stores, or -1 (no memory).",
        "   step_x: 1 where in_x is an array of n points, 0 where it holds 8 copies of one",
        "   number. */",
        f"ptrdiff_t value_and_grad(ptrdiff_t n, int stream, {all_params}) {{",
        "    ptrdiff_t lo = 0, hi = 0;  /* [lo, hi): the whole lines */",
        "    int failed = 0;",
        "    if (stream)",
        f"        graphc_lines(n, (graphc_io *const[]){{{', '.join(outs)}}}, {len(outs)},"
        " &lo, &hi);",
        "    if (hi == lo) {  /* no streaming: the lines from 0, plain stores */",
        "        stream = 0;",
        "        lo = 0;",
        f"        hi = n / {LINE} * {LINE};",
        "    }",
        "    for (int end = 0; end < 2; end++) {  /* the part-lines before lo and after hi */",
        "        const ptrdiff_t a = end ? hi : 0, e = end ? n : lo;",
        "        if (a == e)",
        "            continue;",
        *(f"        graphc_io {p}[{LINE}] = {{0}};" for p in pads),
        *(f"        graphc_io {v}[{LINE}];" for v in lines_of),
        "        for (ptrdiff_t k = a; k < e; k++) {",
        *(f"            {p}[k - a] = {q}[k * {t}];" for p, q, t in pad_from),
        "        }",
        f"        failed |= run(1, 0, {', '.join([*pads, *lines_of, *('1' for _ in steps)])});",
        "        for (ptrdiff_t k = a; k < e; k++) {",
        *(f"            {p}[k] = {v}[k - a];" for p, v in zip(outs, lines_of, strict=True)),
        "        }",
        "    }",
        f"    const ptrdiff_t count = (hi - lo) / {LINE};",
        f"    #pragma omp parallel if(n > {PARALLEL_FROM}) reduction(|:failed)",
        "    {",
        f"        #pragma omp for schedule(static)  /* {CHUNK:,} lines at a time */",
        f"        for (ptrdiff_t c = 0; c < count; c += {CHUNK})",
        f"            failed |= run(count - c < {CHUNK} ? count - c : {CHUNK}, stream,",
        f"                {', '.join(chunk_args)});",
        "        if (stream)",
        "            graphc_fence();",
        "    }",
        "    return failed ? -1 : stream ? hi - lo : 0;",
        "}",
        "",
    ]
    return "\n".join(parts)


def _stages(lines: list[Any], inputs: tuple[str, ...], variables: set[str], stores: list[str],
            results: list[str], params: list[str]) -> tuple[list[str], list[str], int]:  # fmt: skip
    """A large point as stages: the functions (C lines), their names in order, and how
    many slots of a line (8 doubles each) they hand values on through.

    Each stage computes :data:`STAGE` statements for a line of 8 points (a ``#pragma
    omp simd`` loop over it), reading inputs and the values earlier stages computed at
    their first use, and storing the values a later stage reads into their slots at its
    end. A slot serves one value at a time: from the first stage that stores it to the
    last that reads it. The last stage stores the results.
    """
    chunks = [lines[k : k + STAGE] for k in range(0, len(lines), STAGE)] or [[]]
    last = len(chunks) - 1
    inputs_set = set(inputs)
    store_reads = [t for t in results if t in variables]  # what the last stage stores
    reads_of = [[a for a in line.args if a in variables] for line in lines]  # per line
    # The stages that read each value handed on (before binding it), and that bind it.
    read_at: dict[str, list[int]] = {}
    bound_at: dict[str, list[int]] = {}
    for k, chunk in enumerate(chunks):
        bound: set[str] = set()
        reads = reads_of[k * STAGE : k * STAGE + len(chunk)]
        for line_reads, line in zip([*reads, store_reads if k == last else []],
                                    [*chunk, None], strict=True):  # fmt: skip
            for a in line_reads:
                if a not in bound and a not in inputs_set:
                    at = read_at.setdefault(a, [])
                    if not at or at[-1] != k:
                        at.append(k)
            if line is not None and line.var not in bound:
                bound.add(line.var)
                bound_at.setdefault(line.var, []).append(k)
    # A stage stores a value it binds where a later stage reads it before one binds it again.
    stored: list[list[str]] = [[] for _ in chunks]
    for v, at in bound_at.items():
        readers = read_at.get(v, [])
        for j, k in enumerate(at):
            i = bisect.bisect_right(readers, k)  # the first later stage that reads v
            again = at[j + 1] if j + 1 < len(at) else len(chunks)
            if i < len(readers) and readers[i] <= again:
                stored[k].append(v)
    slot: dict[str, int] = {}
    free: list[int] = []
    count = 0
    ends: dict[int, list[str]] = {}  # stage -> values whose slot is free after it
    for k in range(len(chunks)):
        for v in stored[k]:
            if v not in slot:
                if free:
                    slot[v] = free.pop()
                else:
                    slot[v], count = count, count + 1
                ends.setdefault(read_at[v][-1], []).append(v)
        free.extend(slot[v] for v in ends.pop(k, ()))
    functions: list[str] = []
    names: list[str] = []
    pad = "        "

    def need(values: list[str], local: set[str]) -> list[str]:
        """Loads of the values not yet in the stage (``local``, updated): an input's
        from its array, a value an earlier stage computed from its slot."""
        loads = []
        for a in values:
            if a not in local:
                local.add(a)
                loads.append(
                    f"{pad}const double {_c_name(a)} = in_{a}[i];"
                    if a in inputs_set
                    else f"{pad}double {_c_name(a)} = slots[{slot[a]} * {LINE} + i];"
                )
        return loads

    for k, chunk in enumerate(chunks):
        name = f"stage_{k + 1}"
        names.append(name)
        body: list[str] = []
        local: set[str] = set()
        for line, line_reads in zip(chunk, reads_of[k * STAGE :], strict=False):
            body += need(line_reads, local)
            body += _statements([line], variables, local, pad)
        body += [f"{pad}slots[{slot[v]} * {LINE} + i] = {_c_name(v)};" for v in stored[k]]
        if k == last:
            body += need(store_reads, local)
            body += [f"{pad}{t}" for t in stores]
        first = chunk[0].var if chunk else ""
        functions += [
            f"{c_runtime.STAGE_COMMENT}{k + 1} of {len(chunks)}"
            + (f": {len(chunk)} statements from {first}" if chunk else "")
            + " (a line of 8 points) */",
            f"{c_runtime.STAGE_HEAD}{k + 1}(",
            f"        double *restrict slots, {', '.join(params)}) {{",
            "    #pragma omp simd",
            f"    for (ptrdiff_t i = 0; i < {LINE}; i++) {{",
            *body,
            "    }",
            "}",
            "",
        ]
    return functions, names, count


def _check_ops(lines: list[Any]) -> set[str]:
    used_ops = {line.op for line in lines if line.op is not None}
    missing = sorted(op for op in used_ops if op not in C_LOWERING)
    if missing:
        raise CCompileError(f"no C lowering for {', '.join(missing)} (a tensor op)")
    return used_ops


def _preamble(title: str, used_ops: set[str], code: Sequence[str] = ()) -> list[str]:
    """The file's head: title, includes, libmvec declarations, the helpers that the ops'
    lowerings and the further ``code`` (the row loops) call."""
    calls = [C_LOWERING[op] for op in used_ops] + list(code)
    helpers = [h for h in C_HELPERS if any(h + "(" in text for text in calls)]
    simd = "".join(
        c_runtime.SIMD_DECLARE.format(_CONST.get(fn, ""), f"double {fn}(double)") + "\n"
        for fn in _SIMD_MATH
    ) + c_runtime.SIMD_DECLARE.format("", "double pow(double, double)") + "\n"
    return [
        f"/* Generated by graphc: {title} */",
        "#include <math.h>\n#include <stddef.h>\n",
        "/* vector versions of the math functions (glibc's libmvec) inside the loop */",
        simd,
        *(C_HELPERS[h] for h in helpers),
    ]


def _statements(lines: list[Any], variables: set[str], declared: set[str], pad: str) -> list[str]:
    """One C statement per line (``double v_q = v_x + v_y;  /* + gate */``); ``declared``
    (updated) holds the variables already declared."""
    body = []
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
        body.append(f"{pad}{decl}{var} = {expr};  /* {comment} */")
    return body


# -- tensor programs: elementwise segments fused between NumPy/BLAS calls -------------

_IDENT = re.compile(r"[A-Za-z_]\w*")
#: Most arguments a fused loop takes (arrays, scalars and outputs): ctypes passes at
#: most 1,024, and a longer run is cut into several loops.
MAX_LOOP_ARGS = 200


@dataclass
class Kernel:
    """A run of elementwise lines of one shape, fused into one C loop nest.

    ``arrays`` are the run's array arguments with how each is indexed (``full``: the
    run's shape; ``row``: its trailing dims, broadcast over the leading ones; ``col``:
    its leading dims, broadcast over the trailing ones), ``scalars`` its 0-d arguments,
    ``outputs`` the variables later lines read. The loop nest runs over ``rows`` =
    the product of the shape's first ``split`` dims and ``cols`` = the rest.
    """

    name: str
    lines: list[Any]
    arrays: list[tuple[str, str]]
    scalars: list[str]
    outputs: list[str]
    split: int
    into: dict[str, str] = field(default_factory=dict)  # output -> argument it overwrites
    out_arrays: dict[str, str] = field(default_factory=dict)  # output -> its out= array's variable
    var: str = ""
    attrs: tuple[()] = ()

    def text(self, target: str) -> str:
        """The Python line that calls the loop (``(mul_6,) = _fused_2(dh, add_1)``)."""
        outs = ", ".join(self.outputs) + ("," if len(self.outputs) == 1 else "")
        args = ", ".join([a for a, _ in self.arrays] + self.scalars)
        gates = ", ".join(
            f"{line.var} ({OPS[line.op].symbol if line.op else '='})" for line in self.lines
        )
        if self.out_arrays:  # returned values go into the caller's out= arrays where given
            into = ", ".join(self.out_arrays.get(v, "None") for v in self.outputs)
            args += f", out=({into}{',' if len(self.outputs) == 1 else ''})"
        return f"    ({outs}) = _{self.name}({args})  # one C loop: {gates}"

    def c_function(self) -> str:
        variables = {a for a, _ in self.arrays} | set(self.scalars) | {x.var for x in self.lines}
        overwritten = set(self.into.values())
        ptr = {a: ("io_" if a in overwritten else "a_") + a for a, _ in self.arrays}
        params = ["ptrdiff_t rows", "ptrdiff_t cols"]
        params += [
            f"{'' if a in overwritten else 'const '}double *restrict {ptr[a]}"
            for a, _ in self.arrays
        ]
        params += [f"double *restrict o_{v}" for v in self.outputs if v not in self.into]
        params += [f"double s_{v}" for v in self.scalars]
        index = {"full": "i", "row": "j", "col": "r"}
        pad = " " * 12
        body = [f"{pad}const ptrdiff_t i = r * cols + j;"]
        body += [f"{pad}double {_c_name(a)} = {ptr[a]}[{index[k]}];" for a, k in self.arrays]
        body += [f"{pad}double {_c_name(v)} = s_{v};" for v in self.scalars]
        declared = {a for a, _ in self.arrays} | set(self.scalars)
        body += _statements(self.lines, variables, declared, pad)
        body += [
            f"{pad}{ptr[self.into[v]] if v in self.into else 'o_' + v}[i] = {_c_name(v)};"
            for v in self.outputs
        ]
        return "\n".join([
            f"void {self.name}({', '.join(params)}) {{",
            f"    #pragma omp parallel for if(rows * cols > {PARALLEL_FROM}) schedule(static)",
            "    for (ptrdiff_t r = 0; r < rows; r++) {",
            "        #pragma omp simd",
            "        for (ptrdiff_t j = 0; j < cols; j++) {",
            *body,
            "        }",
            "    }",
            "}",
            "",
        ])  # fmt: skip

    def spec(self) -> str:
        """The Python object that calls the C function (a ``c_runtime.FusedLoop``)."""
        kinds = tuple(k for _, k in self.arrays)
        at: dict[str, int] = {}
        for i, (a, _) in enumerate(self.arrays):
            at.setdefault(a, i)  # (the first, as list.index)
        into = tuple(at[self.into[v]] if v in self.into else -1 for v in self.outputs)
        return (
            f"_{self.name} = FusedLoop(_LIB.{self.name}, {kinds!r}, {into!r}, "
            f"{len(self.scalars)}, {self.split})"
        )


def _is_literal(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def _how(shape: tuple[Any, ...], full: tuple[Any, ...]) -> tuple[str, int | None] | None:
    """How an argument of ``shape`` is read in a loop over ``full``: ``("scalar", None)``,
    ``("full", None)``, ``("row", split)`` or ``("col", split)``; ``None`` if none fits."""
    if shape == ():
        return "scalar", None
    if shape == full:
        return "full", None
    stripped = tuple(shape)
    while stripped and stripped[0] == 1:
        stripped = stripped[1:]
    k = len(full) - len(stripped)
    if stripped and k > 0 and tuple(full[k:]) == stripped:
        return "row", k
    if len(shape) == len(full):
        p = next((i for i, d in enumerate(shape) if d != full[i]), len(full))
        if 0 < p < len(full) and all(d == 1 for d in shape[p:]):
            return "col", p
    return None


def fuse(lines: list[Any], shape_of: Any, returned: list[str]) -> list[Any]:
    """Tensor programs for the C target: each run of two or more elementwise lines of
    one shape (after moving each elementwise line down to its only reader) becomes a
    :class:`Kernel`; the other lines stay NumPy lines. ``shape_of(node)`` gives a
    node's shape (``None`` if unknown); ``returned`` the texts the function returns."""
    shapes: dict[str, Any] = {}

    def shape(text: str, node: str | None) -> Any:
        return shapes.get(text, shape_of(node) if node is not None else None)

    def elementwise(line: Any) -> bool:
        return (
            line.op in C_LOWERING
            and not line.attrs
            and bool(shape_of(line.node))
            and all(a.isidentifier() or _is_literal(a) for a in line.args)
        )

    # the names each line reads (``h.T`` reads h): found once, for both passes
    reads = {id(line): frozenset(_IDENT.findall(" ".join(line.args))) for line in lines}
    lines = _sink(lines, elementwise, shape_of, set(returned), reads)
    last_read: dict[str, int] = {}
    for k, line in enumerate(lines):
        for name in reads[id(line)]:
            last_read[name] = k
    for text in returned:
        last_read[text] = len(lines)
    out: list[Any] = []
    fresh: set[str] = set()  # variables holding an array this call made, under one name
    products: set[str] = set()  # variables a matrix product binds (np.matmul takes out=)

    def bound(line: Any) -> None:
        if line.op == "matmul":
            products.add(line.var)
        else:
            products.discard(line.var)
        if line.op is None:  # two names for one array: neither may be overwritten
            shapes[line.var] = shapes.get(line.args[0])
            fresh.discard(line.var)
            fresh.discard(line.args[0])
            return
        shapes[line.var] = shape_of(line.node)
        if line.op in VIEW_OPS:  # a view (``t = a.T``) shares a's memory while it lives
            fresh.difference_update(reads[id(line)])
        if line.op not in NOT_OWNED and shapes[line.var]:
            fresh.add(line.var)
        else:
            fresh.discard(line.var)

    k = kernels = 0
    while k < len(lines):
        line = lines[k]
        run: list[Any] = []
        if elementwise(line):
            full = tuple(shape_of(line.node))
            run, arrays, scalars, split = _run(lines, k, full, elementwise, shape_of, shape)
        j = k + len(run)
        end = j - 1
        fits = len(run) >= 2 and "full" in arrays.values()
        outputs = list(dict.fromkeys(x.var for x in run if last_read.get(x.var, -1) > end))
        if not (fits and outputs):  # no run of two that a later line reads: a NumPy line
            bound(line)
            out.append(line)
            k += 1
            continue
        # an output overwrites an argument's array that this call made and no later
        # line reads (the way the NumPy target writes np.add(a, b, out=a)); a returned
        # value gets an array of its own (the caller's out= array, where given)
        dead = [a for a, how in arrays.items() if how == "full" and a in fresh
                and last_read.get(a, -1) <= end and a not in outputs]  # fmt: skip
        kept = [v for v in outputs if v not in returned]
        into = dict(zip(kept, dead, strict=False))
        # a returned value takes a dying matrix product's array: one fresh array, not
        # two, and where the call passes out=, the product is computed into the caller's
        # array and the loop updates it in place (lower.write_into_out)
        spare = [a for a in dead if a in products and a not in into.values()]
        into.update(zip([v for v in outputs if v in returned], spare, strict=False))
        for x in run:
            shapes[x.var] = full
            fresh.discard(x.var)
            products.discard(x.var)
        fresh.difference_update(into.values())
        fresh.update(outputs)
        cut = len(full) - 1 if split is None else split
        kernels += 1
        out.append(Kernel(f"fused_{kernels}", run, list(arrays.items()), scalars, outputs,
                          max(cut, 0), into))  # fmt: skip
        k = j
    return out


def _run(lines: list[Any], k: int, full: tuple[Any, ...], elementwise: Any, shape_of: Any,
         shape: Any) -> tuple[list[Any], dict[str, str], list[str], int | None]:  # fmt: skip
    """The longest run of lines from ``k`` that one loop nest over ``full`` computes:
    the lines, their array arguments (name -> how indexed), scalar arguments, split."""
    inner: set[str] = set()
    arrays: dict[str, str] = {}
    scalars: list[str] = []
    split: int | None = None
    run: list[Any] = []
    for line in lines[k:]:
        if len(arrays) + len(scalars) + len(inner) >= MAX_LOOP_ARGS:  # each may be an output
            break
        if line.op is None:  # an alias of a value the run computed
            if line.args[0] not in inner:
                break
            inner.add(line.var)
            run.append(line)
            continue
        if not elementwise(line) or tuple(shape_of(line.node)) != full:
            break
        found: dict[str, tuple[str, int | None]] = {}
        for a, node in zip(line.args, line.arg_nodes, strict=True):
            if a in inner or not a.isidentifier():
                continue
            s = shape(a, node)
            how = None if s is None else _how(tuple(s), full)
            if how is None or (how[1] is not None and split not in (None, how[1])):
                break
            found[a] = how
        else:
            for a, (kind, at) in found.items():
                split = at if at is not None else split
                if kind == "scalar":
                    if a not in scalars:
                        scalars.append(a)
                else:
                    arrays.setdefault(a, kind)
            inner.add(line.var)
            run.append(line)
            continue
        break
    return run, arrays, scalars, split


def _sink(lines: list[Any], elementwise: Any, shape_of: Any, returned: set[str],
          reads_of: Mapping[int, frozenset[str]]) -> list[Any]:  # fmt: skip
    """Move each elementwise line read by exactly one later line, an elementwise line of
    its shape, down to just before that reader (``dW1_2 = mul_3 * W1`` next to
    ``dW1 = dW1_1 + dW1_2``), so that the two fuse; only past lines that rebind none of
    the names it reads or binds. Chains move together; one pass, no quadratic search."""
    reads = [reads_of[id(line)] for line in lines]
    readers: dict[str, list[int]] = {}
    for j, names in enumerate(reads):
        for name in names:
            readers.setdefault(name, []).append(j)
    binds: dict[str, list[int]] = {}
    for j, line in enumerate(lines):
        binds.setdefault(line.var, []).append(j)

    def rebound(name: str, lo: int, hi: int) -> bool:  # bound at a line strictly between
        at = binds.get(name, [])
        i = bisect.bisect_right(at, lo)
        return i < len(at) and at[i] < hi

    target: dict[int, int] = {}  # line -> the line it moves to just before
    final: dict[int, int] = {}  # line -> where its chain ends up
    for k in range(len(lines) - 1, -1, -1):
        line = lines[k]
        if not elementwise(line) or line.var in returned:
            continue
        later = [j for j in readers.get(line.var, ()) if j > k]
        if len(later) != 1 or (later[0] == k + 1 and later[0] not in target):
            continue
        r = later[0]
        end = final.get(r, r)
        if (
            elementwise(lines[r])
            and shape_of(lines[r].node) == shape_of(line.node)
            and not any(rebound(n, k, end) for n in (line.var, *reads[k]))
        ):
            target[k] = r
            final[k] = end
    pending: dict[int, list[int]] = {}
    out: list[Any] = []

    def emit(j: int) -> None:
        for moved in pending.pop(j, ()):
            emit(moved)
        out.append(lines[j])

    for j in range(len(lines)):
        if j in target:
            pending.setdefault(target[j], []).append(j)
        else:
            emit(j)
    return out


def kernels_source(kernels: list[Kernel], title: str, rows: Sequence[str]) -> str:
    """The C source of a tensor program's fused loops (one function per kernel) and of
    the row loops of the ops ``rows`` (:data:`graphc.ops.C_ROWS`)."""
    used_ops = {line.op for kernel in kernels for line in kernel.lines if line.op is not None}
    shift = [C_ROW_SHIFT] if rows else []
    loops = [C_ROWS[op] for op in rows]
    return "\n".join([
        *_preamble(title, used_ops, shift + loops),
        *shift,
        *(k.c_function() for k in kernels),
        *loops,
    ])


def load(source: str) -> Any:
    """Compile ``source`` (once: cached by hash) and load it (a :mod:`ctypes` library).

    Raises:
        CCompileError: no compiler, or it failed (with its first error line).
    """
    try:
        return c_runtime.load(source)
    except c_runtime.CCompileError as e:
        raise CCompileError(str(e)) from None


def runtime_source() -> str:
    """:mod:`graphc.c_runtime`'s text without its docstring: what a module that carries
    C source runs to compile, load and call it (saved modules, tensor programs)."""
    text = Path(c_runtime.__file__).read_text(encoding="utf-8")
    return text.split('"""', 2)[2].strip("\n") + "\n"


def saved_module(header: str, source: str, inputs: tuple[str, ...], wrt: tuple[str, ...],
                 title: str) -> str:  # fmt: skip
    """A standalone Python module: :mod:`graphc.c_runtime`'s text, the C source, and
    ``value_and_grad``/``forward`` over it (compiled on first import, cached)."""
    runtime = runtime_source()
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
        f"value_and_grad = CFunction(load(SOURCE), {inputs!r}, {wrt!r}, source=SOURCE)",
        "",
        "",
        "def forward(*args, **kwargs):",
        '    """f at the point."""',
        "    return value_and_grad(*args, **kwargs)[0]",
        "",
    ])  # fmt: skip


CFunction = c_runtime.CFunction
cache_dir = c_runtime.cache_dir
