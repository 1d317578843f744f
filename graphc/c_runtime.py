"""The runtime of graphc's C target: compile once (cached by hash), load, call.

This file imports only the standard library and NumPy, and nothing of graphc: graphc
uses it in process (:mod:`graphc.ctarget`), and a saved C module carries its text
verbatim, so that the module runs where graphc is not installed (it needs NumPy and a
C compiler). Errors are :class:`CCompileError`; graphc turns them into a warning and
the NumPy target.
"""

import bisect
import ctypes
import functools
import hashlib
import math
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

# No -ffast-math: NaN and inf behave as NumPy's; no fused multiply-add: each gate rounds
# as NumPy's does. -fopenmp: the loop's simd and (for long arrays) its threads.
# -fno-builtin-sin/-cos: see graphc.ctarget._CONST (the loop vectorises with sin and cos).
# -fno-trapping-math: the helpers' selects (``x >= 0.0 ? s : e * s``) may compute both
# sides. Without it GCC keeps an operation that could raise a floating-point flag behind
# its branch; a CPU without masked vector operations (AVX2, no AVX-512) then cannot
# vectorise the loop, and every program with sigmoid, max or logaddexp ran scalar there.
# The values are the same: flags are all it gives up, and nothing reads them.
FLAGS = ("-O3", "-march=native", "-fopenmp", "-fno-math-errno", "-fno-trapping-math",
         "-ffp-contract=off", "-fno-builtin-sin", "-fno-builtin-cos", "-fPIC",
         "-shared")  # fmt: skip


#: Bytes a call reads and writes from which the loop writes its results with streaming
#: stores (past the cache, without reading each line first): arrays this large do not
#: stay in the cache for their next reader anyway. 32 MiB, a server's last-level cache.
STREAM_FROM = 1 << 25


#: The elementwise loop's array type, as its source declares it; float32 arrays get a
#: variant of the source that reads and writes float (f32_source).
IO_TYPEDEF = "typedef double graphc_io;"


def f32_source(source):
    """An elementwise loop's source for float32 arrays: the same loop, its arrays of
    float (each value still computed in double from the exact float input, and rounded
    to float once, when stored: as the float64 loop on float64 copies, without the
    copies), and plain stores (8 floats are half a line: no streaming)."""
    return source.replace(IO_TYPEDEF, "#define GRAPHC_NO_STREAM\ntypedef float graphc_io;", 1)


class CCompileError(Exception):
    """No C compiler, or the compiler failed (``output``: what it printed)."""

    def __init__(self, message, output=""):
        super().__init__(message)
        self.output = output


def cache_dir():
    """Where compiled libraries are kept: $XDG_CACHE_HOME/graphc/c or ~/.cache/graphc/c."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "graphc" / "c"


def _compiler():
    for cc in (os.environ.get("CC"), "cc", "gcc", "clang"):
        if cc and shutil.which(cc):
            return cc
    raise CCompileError("no C compiler found (install one: apt-get install gcc)")


#: Sources of this many lines and more (about 900 gates) compile with -O1 -ftree-vectorize
#: instead of -O3: GCC's time grows faster than the loop body, and loops this large ran
#: as fast either way (1,000, 3,000 and 10,000 gates; docs/performance.md).
LARGE_FROM = 3000


#: The head of a stage's definition in a loop in stages (graphc.ctarget writes it from
#: here, and it marks a source as staged), and what it becomes where the stages are
#: compiled apart: a function of the library's own, called from another file without
#: the dynamic linker (not exported).
STAGE_HEAD = "static __attribute__((noinline, noclone)) void stage_"
#: The comment a stage starts with (``/* Stage 3 of 67: ...``): where the source is split.
STAGE_COMMENT = "/* Stage "
_SHARED_HEAD = '__attribute__((visibility("hidden"), noinline, noclone)) void stage_'


def _flags(source):
    """The compiler flags for source: FLAGS, with -O1 -ftree-vectorize for a large one,
    and -O2 for one whose loop runs in stages of small functions (graphc.ctarget's
    STAGE_FROM): as fast as -O3 there, and a little quicker to compile."""
    if STAGE_HEAD + "1(" in source:
        return ("-O2", *(f for f in FLAGS if f != "-O3"))
    if source.count("\n") < LARGE_FROM:
        return FLAGS
    return ("-O1", "-ftree-vectorize", *(f for f in FLAGS if f != "-O3"))


def _jobs():
    """How many compilers may run at once: the cores this process may use."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # (not on every platform)
        return os.cpu_count() or 1


def _units(source, parts):
    """A loop in stages as ``parts`` files of stages and a main file with the rest (the
    head, the stages' declarations and ``run``), to compile at once and link; None for
    any other source, or where ``parts`` < 2 or the stages are fewer than ``parts``.
    Each file has the head (includes, helpers) and its own stages."""
    first = source.find(f"\n{STAGE_COMMENT}1 of ")
    if parts < 2 or first < 0:
        return None
    starts = []  # where each stage's comment starts
    at = first
    while at >= 0:
        starts.append(at + 1)
        at = source.find("\n" + STAGE_COMMENT, at + 1)
    end = source.find("\n}\n", source.index(STAGE_HEAD, starts[-1])) + 3  # the last's "}"
    if len(starts) < parts or end < 3:
        return None
    head, tail = source[: starts[0]], source[end:]
    stages = [source[a:b] for a, b in zip(starts, [*starts[1:], end], strict=True)]
    stages = [s.replace(STAGE_HEAD, _SHARED_HEAD) for s in stages]
    declarations = []
    for s in stages:
        at = s.index(_SHARED_HEAD)
        declarations.append(s[at : s.index(") {", at)] + ");\n")
    size = -(-len(stages) // parts)  # stages per file, the last may have fewer
    files = [head + "".join(stages[k : k + size]) for k in range(0, len(stages), size)]
    return [head + "".join(declarations) + tail, *files]


#: How graphc.ctarget declares a math function's vector versions (glibc's libmvec), as
#: ``SIMD_DECLARE.format(", const" or "", "double sin(double)")``.
SIMD_DECLARE = '__attribute__((simd("notinbranch"){})) {};'
_SIMD_LINE = re.compile(r'^__attribute__\(\(simd\("notinbranch"\)(, const)?\)\) (.*);\n', re.M)


def _scalar_math(source):
    """source with no vector versions of the math functions declared, for a C library
    without libmvec (glibc before 2.38 off x86-64, musl): the loops then call
    the scalar functions, and vectorise where they call none. ``const`` stays."""
    return _SIMD_LINE.sub(lambda m: f"__attribute__((const)) {m[2]};\n" if m[1] else "", source)


@functools.cache
def _libmvec(cc):
    """Whether cc links with glibc's libmvec (``-lmvec``)."""
    try:
        with tempfile.TemporaryDirectory() as tmp:
            done = subprocess.run([cc, "-x", "c", "-", "-o", str(Path(tmp) / "probe"),
                                   "-lmvec", "-lm"], input="int main(void) { return 0; }\n",
                                  capture_output=True, text=True, timeout=60)  # fmt: skip
    except (OSError, subprocess.TimeoutExpired):
        return False
    return done.returncode == 0


def _compile(cc, flags, source, directory, libs):
    """Compile source to a shared library in directory, linked with libs; returns its
    path. A loop in stages is compiled as one file per core at once (GCC's time is the
    stages'), then linked. Without libmvec, the math functions are the scalar ones
    (_scalar_math)."""
    if "-lmvec" not in libs:
        source = _scalar_math(source)
    units = _units(source, _jobs())
    lib = Path(directory) / "graphc.so"
    if units is None:
        src = Path(directory) / "graphc.c"
        src.write_text(source, encoding="utf-8")
        _run([[cc, *flags, str(src), "-o", str(lib), *libs]], cc, directory)
        return lib
    objects, commands = [], []
    for k, unit in enumerate(units):
        src = Path(directory) / f"graphc_{k}.c"
        src.write_text(unit, encoding="utf-8")
        objects.append(str(src.with_suffix(".o")))
        commands.append([cc, *flags, "-c", str(src), "-o", objects[-1]])
    _run(commands, cc, directory)
    _run([[cc, *flags, *objects, "-o", str(lib), *libs]], cc, directory)
    return lib


def _run(commands, cc, directory):
    """Run the compiler commands at once (their messages to files in directory);
    CCompileError as soon as one fails, or where they last past 600 s (all are then
    stopped)."""
    running = []
    deadline = time.monotonic() + 600
    try:
        for k, cmd in enumerate(commands):
            with open(Path(directory) / f"cc_{k}.err", "w+", encoding="utf-8") as err:
                running.append((subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err),
                                err.name))  # fmt: skip
        pending = list(running)
        while pending:
            if len(pending) == 1:  # (the common case: no polling)
                pending[0][0].wait(timeout=max(0.0, deadline - time.monotonic()))
            elif time.monotonic() > deadline:
                raise subprocess.TimeoutExpired(commands[0], 600)
            else:
                time.sleep(0.01)
            for proc, err in [p for p in pending if p[0].poll() is not None]:
                pending.remove((proc, err))
                if proc.returncode != 0:
                    text = Path(err).read_text(encoding="utf-8", errors="replace")
                    lines = text.splitlines()
                    first = next((t for t in lines if "error" in t), text.strip()[:200])
                    raise CCompileError(f"{cc} failed: {first}", text)
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CCompileError(f"{cc} did not finish: {e}") from None
    finally:
        for proc, _ in running:
            if proc.poll() is None:
                proc.kill()
                proc.wait()


@functools.cache
def _version(cc):
    """The first line of ``cc --version`` (part of a library's key), asked once a process
    (1.7-2.5 ms a time; a load from the cache took as long as the rest of it)."""
    try:
        return subprocess.run([cc, "--version"], capture_output=True, text=True,
                              timeout=30).stdout.split("\n", 1)[0]  # fmt: skip
    except (OSError, subprocess.TimeoutExpired) as e:
        raise CCompileError(f"the C compiler {cc!r} does not run: {e}") from None


def load(source):
    """Compile source once (cached by a hash of it, the flags and the compiler), load it."""
    cc = _compiler()
    flags = _flags(source)
    version = _version(cc)
    libs = ["-lmvec", "-lm"] if _libmvec(cc) else ["-lm"]  # (a library per choice)
    key = hashlib.sha256("\0".join([source, *flags, version, *libs]).encode()).hexdigest()[:24]
    directory = cache_dir()
    lib = directory / f"graphc_{key}.so"
    if lib.exists():
        try:
            return ctypes.CDLL(str(lib))
        except OSError:  # damaged (a disk that filled up, a copied cache): compile anew
            pass
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CCompileError(f"cannot create the cache {directory}: {e}") from None
    try:  # built in the cache's own folder: os.replace is atomic on one file system
        # (a concurrent loader sees all or nothing), and /tmp is often another (tmpfs)
        build = tempfile.TemporaryDirectory(dir=directory, prefix=".build-")
    except OSError as e:
        raise CCompileError(f"cannot write to the cache {directory}: {e}") from None
    with build as tmp:
        try:
            part = _compile(cc, flags, source, tmp, libs)
        except CCompileError as e:  # a libmvec without the vector version of a function
            if "-lmvec" not in libs or "_ZGV" not in e.output:  # the loop calls (an
                raise  # older one off x86-64): the scalar functions, as without libmvec
            part = _compile(cc, flags, source, tmp, ["-lm"])
        try:
            os.replace(part, lib)
        except OSError as e:
            raise CCompileError(f"cannot write {lib}: {e}") from None
    try:
        return ctypes.CDLL(str(lib))
    except OSError as e:
        raise CCompileError(f"cannot load {lib}: {e}") from None


_F64, _F32 = np.dtype(np.float64), np.dtype(np.float32)
_from_buffer, _addressof = ctypes.c_char.from_buffer, ctypes.addressof


def _address(a):
    """The address of a C-contiguous array's first element: through the buffer protocol
    where the array is writable and not empty (0.2-0.8 µs), else NumPy's ctypes (1-5 µs)."""
    try:
        return _addressof(_from_buffer(a))
    except (TypeError, ValueError, BufferError):  # read-only, or no bytes
        return a.ctypes.data


def _sum_to(g, shape):
    """g summed over the axes along which shape was broadcast to g's shape."""
    lead = g.ndim - len(shape)
    if lead:
        g = g.sum(axis=tuple(range(lead)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and g.shape[i] != 1)
    return g.sum(axis=axes, keepdims=True) if axes else g


def _given(out, names):
    """out= (an earlier result: (f, {input: gradient})) as its arrays, f's then each
    gradient's in names' order; all None without out=."""
    if out is None:
        return [None] * (len(names) + 1)
    if type(out) is not tuple or len(out) != 2 or not isinstance(out[1], dict):
        raise TypeError("out= takes an earlier result of value_and_grad: (f, {input: gradient})")
    return [out[0], *map(out[1].get, names)]


def _span(a):
    """The bytes an array's elements lie in: [first, last + 1)."""
    if a.flags.c_contiguous:  # (the address through the buffer protocol: _address)
        lo = _address(a)
        return lo, lo + a.nbytes
    lo = hi = a.__array_interface__["data"][0]
    for n, step in zip(a.shape, a.strides, strict=True):
        lo, hi = (lo + step * (n - 1), hi) if step < 0 else (lo, hi + step * (n - 1))
    return lo, hi + a.itemsize


def _disjoint(arrays, inputs):
    """arrays (None where none), each kept only where it shares no memory with an
    input or with an array kept before it, by the bytes they span (as
    np.may_share_memory tells): pairwise for a few arrays, else sorted (n log n for n
    arrays). A fraction of a microsecond an array (may_share_memory's pairwise calls
    took 20 µs for five inputs and six results)."""
    if all(a is None for a in arrays):  # no out= (every call without one): nothing to check
        return list(arrays)
    by_id = {}  # (an input passed twice, or as given and as broadcast: one span)
    for a in inputs:
        if type(a) is np.ndarray and a.size and id(a) not in by_id:
            by_id[id(a)] = _span(a)
    spans = list(by_id.values())
    got = []
    if len(spans) + len(arrays) <= 32:  # few: each against every span taken
        for a in arrays:
            if a is not None:
                lo, hi = _span(a)
                for s, e in spans:
                    if s < hi and lo < e:
                        a = None
                        break
                else:
                    spans.append((lo, hi))
            got.append(a)
        return got
    spans.sort()
    starts, ends, reach = [s for s, _ in spans], [], 0
    for _, e in spans:
        reach = max(reach, e)
        ends.append(reach)  # the furthest end of the spans up to here
    kept = []  # spans of the arrays kept, disjoint, by start
    for a in arrays:
        if a is not None:
            lo, hi = _span(a)
            k = bisect.bisect_left(starts, hi)  # the input spans that start before hi
            j = bisect.bisect_left(kept, (lo, hi))
            if (
                (k and ends[k - 1] > lo)
                or (j and kept[j - 1][1] > lo)
                or (j < len(kept) and kept[j][0] < hi)
            ):
                a = None
            else:
                kept.insert(j, (lo, hi))
        got.append(a)
    return got


#: Bytes from which fresh output arrays are placed in their memory pages (_places).
PLACE_FROM = 1 << 16


def _places(inputs, count):
    """Where in a 4 KB page each of count new outputs should start, for a loop that
    reads inputs, so that it runs at memory speed:

    - all at one offset from a 64-byte line (the first input's): whole lines of every
      output can then be written with streaming stores;
    - none at an input's page offset or up to 512 bytes past one: a store would share
      its address's low 12 bits with the load of that input just after it, and the core
      waits for the store ("4K aliasing");
    - spread over the page: the loop's streams then fall in different sets of the L1
      cache (NumPy starts every large array 16 bytes into a page, where the sigmoid
      neuron's eleven streams contend for 8 ways; docs/performance.md).
    """
    starts = np.array([a.ctypes.data % 4096 for a in inputs], dtype=np.int64)
    line = int(starts[0]) % 64 // 8 * 8 if len(starts) else 0
    offsets = line + 64 * np.arange(64)
    past = (offsets[:, None] - starts[None, :]) % 4096
    good = offsets[~(past <= 512).any(axis=1)] if len(starts) else offsets
    if not len(good):
        good = offsets
    return good[np.linspace(0, len(good) - 1, count).astype(np.int64)].tolist()


def _empty(shape, place=None, dtype=_F64):
    """A new array (float64, or dtype); with place (bytes into a 4 KB page, _places), a
    view into a byte buffer that starts there."""
    if place is None:
        return np.empty(shape, dtype=dtype)
    n = math.prod(shape) * dtype.itemsize
    raw = np.empty(n + 4096, dtype=np.uint8)
    start = (place - raw.ctypes.data) % 4096
    return raw[start : start + n].view(dtype).reshape(shape)


def _buffers(out, shape, wrt, spare, inputs, dtype=_F64):
    """Output arrays (float64, or dtype): those of out (a previous result) where they
    fit and share no memory with an input or each other, else arrays of spare (this
    function's earlier outputs that nothing else holds any more), else fresh ones. spare
    keeps the arrays it did not give (its order aside)."""

    def fits(a):
        return (type(a) is np.ndarray and a.shape == shape and a.dtype == dtype
                and a.flags.c_contiguous and a.flags.writeable)  # fmt: skip

    def new():
        while spare:
            a = spare.pop()
            # held by nothing but this name and getrefcount's argument: the caller let go;
            # and so is its byte buffer (_empty), which the caller's views of it hold
            # (NumPy makes a view of a view a view of the buffer)
            free = a.base is None or sys.getrefcount(a.base) <= 2
            if sys.getrefcount(a) <= 2 and free and fits(a):
                return a
            held.append(a)  # (checked; the caller may let go of it later)
        nonlocal places
        if places is None:  # placed in their pages where large (computed once a call)
            big = math.prod(shape) * dtype.itemsize >= PLACE_FROM
            places = _places([a for a in inputs if a.shape == shape], 1 + len(wrt)) if big else []
        return _empty(shape, places.pop() if places else None, dtype)

    places = None
    held = []
    if out is None:  # (every call without out=: nothing to check)
        given = [None] * (len(wrt) + 1)
    else:
        given = _disjoint([a if fits(a) else None for a in _given(out, wrt)], inputs)
    f = given[0] if given[0] is not None else new()
    grads = {k: a if a is not None else new() for k, a in zip(wrt, given[1:], strict=True)}
    spare.extend(held)
    return f, grads


def _plain(a):
    return a[()] if a.ndim == 0 else a


class CFunction:
    """value_and_grad(*inputs, out=None) over the compiled loop: inputs broadcast
    together, each gradient summed back to its input's shape and dtype; out= a previous
    result (f, grads) of the same shapes is written into instead of new arrays."""

    def __init__(self, lib, inputs, wrt, how=None, zero_copy=False, source=None):
        self._fn = lib.value_and_grad
        self._fn.restype = ctypes.c_ssize_t
        # the loop for float32 arrays (f32_source), compiled on the first call that has
        # them; False where it cannot be (then such calls go through float64 copies)
        self._source, self._fn32 = source, None if source is not None else False
        self.streamed = 0  # points the last call wrote with streaming stores
        self.inputs = tuple(inputs)
        self.position = {n: i for i, n in enumerate(self.inputs)}  # (no index() per call)
        self.wrt = tuple(wrt)
        # per gradient: ("loop", name) stored by the loop, ("input", k) input k's value,
        # ("same", name) another gradient's value; zero_copy returns those two as they
        # are (shared), otherwise as copies
        self.how = how or {k: ("loop", k) for k in self.wrt}
        self.stored = tuple(k for k in self.wrt if self.how[k][0] == "loop")
        # n, stream, an address per input, for f and per stored gradient, then a step
        # per input (1: an array of n points; 0: one number, as 8 copies)
        self._steps = (1,) * len(self.inputs)
        self._argtypes = [ctypes.c_ssize_t, ctypes.c_int,
                          *[ctypes.c_void_p] * (len(self.inputs) + 1 + len(self.stored)),
                          *[ctypes.c_ssize_t] * len(self.inputs)]
        self._fn.argtypes = self._argtypes
        self.zero_copy = zero_copy
        # The output arrays of the call before last and of the last call: reused by a
        # call once the caller has let go of them (fresh arrays of millions of elements
        # cost page faults and the kernel's zeroing, more than the loop itself). Two
        # calls' worth: in a loop `f, g = value_and_grad(...)` the caller holds the last
        # call's results until this call returns, and has let go of the one before.
        # Taken by one call at a time.
        self._spare = ([], [])

    def __call__(self, *args, **kwargs):
        if not args:  # every input by name (and out=, unless an input is called out)
            fast = self._direct(kwargs)
            if fast is not None:
                return fast
        return self._general(args, kwargs)

    def _general(self, args, kwargs):
        """Any call: inputs broadcast together and cast to float64 (copies where they
        are not float64 C-ordered arrays of the output's shape)."""
        out_bufs = kwargs.pop("out", None) if "out" not in self.position else None
        if len(args) > len(self.inputs):  # (zip would drop the surplus without a word)
            raise TypeError(f"value_and_grad() takes {len(self.inputs)} positional "
                            f"arguments but {len(args)} were given")  # fmt: skip
        if args:
            values = dict(zip(self.inputs, args, strict=False))
            for k, v in kwargs.items():
                if k in values:
                    raise TypeError(f"value_and_grad() got multiple values for argument {k!r}")
                values[k] = v
        else:
            values = kwargs  # (a dict of this call's own)
        if len(values) != len(self.inputs) or not all(map(values.__contains__, self.inputs)):
            missing = [n for n in self.inputs if n not in values]
            unknown = [n for n in values if n not in self.position]  # (a dict: no n² for
            if missing:  # thousands of inputs)
                raise TypeError(f"value_and_grad() missing {', '.join(missing)}")
            raise TypeError(f"value_and_grad() got an unexpected keyword argument {unknown[0]!r}")
        # a Python int is a float here: NumPy keeps one past int64 (2**70) as an object
        raw = [np.asarray(float(v) if type(v) is int else v) for v in map(values.get, self.inputs)]
        floats = []  # the dtypes of the float arrays given (Python numbers do not count)
        for n, a in zip(self.inputs, raw, strict=False):
            kind = a.dtype.kind
            if kind not in "biuf":
                raise TypeError(f"{n}: expected real numbers, got an array of dtype {a.dtype}")
            v = values[n]
            if isinstance(v, np.ma.MaskedArray):
                raise TypeError(
                    f"{n}: masked arrays are not supported (the mask would be"
                    " ignored): pass a.filled(value)"
                )
            if kind == "f" and not isinstance(v, (int, float)):
                floats.append(a.dtype)
        # (NumPy's result_type and broadcast_shapes cost microseconds: skipped where
        # every array is float64 and of one shape, the common call)
        dtype = np.result_type(*floats) if any(d != _F64 for d in floats) else _F64
        shapes = {a.shape for a in raw}
        shape = raw[0].shape if len(shapes) == 1 else np.broadcast_shapes(*shapes)
        n = math.prod(shape)
        # each input as the loop reads it: an array of the output's shape (a copy where
        # it is not one: broadcast, another dtype, another order), or, for one number
        # among more points, 8 copies of it (step 0): no array of the output's size
        steps = [0 if a.size == 1 and n > 1 else 1 for a in raw]
        full = [np.full(8, a.reshape(()), dtype=np.float64) if not step
                else a if a.shape == shape and a.dtype == _F64 and a.flags.c_contiguous
                else np.ascontiguousarray(np.broadcast_to(a.astype(np.float64), shape))
                for a, step in zip(raw, steps, strict=True)]  # fmt: skip
        spare, last = self._take_spare()
        f, grads = _buffers(out_bufs, shape, self.wrt, spare, [*raw, *full])
        outs = (f, *(grads[k] for k in self.stored))
        stream = n * 8 * (sum(steps) + len(outs)) >= STREAM_FROM
        streamed = self._fn(n, stream, *map(_address, full), *map(_address, outs), *steps)
        if streamed < 0:  # a loop in stages could not allocate the values they hand on
            raise MemoryError("the C loop could not allocate its working memory")
        self.streamed = streamed
        result = self._gradients(grads, full, steps)
        for k, g in result.items():
            like = raw[self.position[k]]
            kind = like.dtype if like.dtype.kind == "f" else np.dtype(np.float64)
            if like.shape != shape:
                g = np.asarray(_sum_to(g, like.shape))
            result[k] = _plain(g.astype(kind, copy=False))
        if out_bufs is None:  # the caller's own out= arrays stay the caller's
            self._keep_spare(spare, last, f, grads)
        return _plain(f.astype(dtype, copy=False)), result

    def _take_spare(self):
        """The earlier results' arrays to reuse (_buffers), and the ids of the last
        call's: taken in one swap, so that no two threads share one."""
        (older, newer), self._spare = self._spare, ([], [])
        last = {id(a) for a in newer}
        spare = [*newer, *older]  # _buffers tries the end first: the older
        del older, newer  # (a name holding an array would make it look held)
        return spare, last

    def _keep_spare(self, spare, last, f, grads):
        """Keep this call's results, and the last call's arrays it did not take, for the
        next call (never the caller's own out= arrays)."""
        self._spare = ([a for a in spare if id(a) in last], [f, *grads.values()])

    def _gradients(self, grads, inputs, steps):
        """Each gradient's array: the loop's, else the value of an input (inputs as the
        loop read them; one number, step 0, fills its array) or of an earlier gradient,
        shared with zero_copy, else copied into its own array (grads[k])."""
        result = {}
        for k in self.wrt:
            kind, src = self.how[k]
            g = grads[k]
            if kind != "loop":
                g0 = inputs[src] if kind == "input" else grads[self.how[src][1]]
                if kind == "input" and not steps[src]:  # one number (8 copies): everywhere
                    g.fill(g0[0])
                elif self.zero_copy:
                    g = g0
                else:
                    np.copyto(g, g0)
            result[k] = g
        return result

    def _direct(self, values):
        """The common call, or None where it is not that call: every input by name, a
        C-ordered array of one shape (at least 1-d), all float64 or all float32 (the
        float32 loop: f32_source). Results: below PLACE_FROM bytes fresh arrays (free
        there), else as the general call makes them (_buffers: out= where it fits,
        earlier results let go of, placed ones). The general call's checks cost three
        times the loop's own call on small arrays (19 µs against 6 µs for the neuron's
        5 inputs and 6 results, docs/performance.md), and it computes float32 arrays
        through float64 copies of them."""
        takes_out = "out" not in self.position  # (else `out` is an input's name)
        out = values.get("out") if takes_out else None
        if len(values) != len(self.inputs) + (takes_out and "out" in values):
            return None
        arrays = []
        shape = dtype = None
        for n in self.inputs:
            a = values.get(n)
            if (type(a) is not np.ndarray or (a.dtype is not _F64 and a.dtype is not _F32)
                    or not a.flags.c_contiguous or (shape is not None and (
                        a.shape != shape or a.dtype is not dtype))):  # fmt: skip
                return None
            shape, dtype = a.shape, a.dtype
            arrays.append(a)
        size = arrays[0].size if arrays else 0
        if not size or not shape:
            return None
        fn = self._fn if dtype is _F64 else self._loop32()
        if fn is None:
            return None
        spare = None
        if out is None and size * dtype.itemsize < PLACE_FROM:  # small: fresh, for free
            f = np.empty(shape, dtype)
            grads = {k: np.empty(shape, dtype) if self.how[k][0] == "loop"
                     or not self.zero_copy else None for k in self.wrt}  # fmt: skip
        else:  # out=, where it fits, else earlier results let go of, else placed ones
            spare, last = self._take_spare()
            f, grads = _buffers(out, shape, self.wrt, spare, arrays, dtype)
        outs = (f, *(grads[k] for k in self.stored))
        stream = dtype is _F64 and size * 8 * (len(arrays) + len(outs)) >= STREAM_FROM
        streamed = fn(size, stream, *map(_address, arrays), *map(_address, outs),
                      *self._steps)  # (every input an array)  # fmt: skip
        if streamed < 0:
            raise MemoryError("the C loop could not allocate its working memory")
        self.streamed = streamed
        if out is None and spare is not None:
            self._keep_spare(spare, last, f, grads)
        return f, self._gradients(grads, arrays, self._steps)

    def _loop32(self):
        """The loop for float32 arrays (compiled once), or None where it cannot be had
        (no source, or it did not compile: said once, as a warning)."""
        if self._fn32 is None:
            try:
                fn = load(f32_source(self._source)).value_and_grad
            except CCompileError as e:
                import warnings

                warnings.warn(f"graphc: the float32 loop did not compile ({e}); float32"
                              " arrays go through float64 copies", RuntimeWarning, 2)  # fmt: skip
                self._fn32 = False
            else:
                fn.restype, fn.argtypes = ctypes.c_ssize_t, self._argtypes
                self._fn32 = fn
        return self._fn32 or None


class FusedLoop:
    """A tensor program's fused elementwise loop: called with its array arguments (in
    the C function's order), then its scalars; returns one float64 array per output, of
    the shape of its first full-shape argument. kinds says how the loop reads each
    array: "full" (that shape), "row" (its last dims, the same for every row), "col"
    (its first dims, the same for every column); rows and columns split the shape after
    its first `split` dims. into[k] is the argument whose array output k overwrites
    (an array this call made that no later line reads), or -1 for a fresh array, or
    out[k]'s array where the call passes out= (the caller's, checked to fit)."""

    def __init__(self, fn, kinds, into, scalars, split):
        fn.restype = None
        fn.argtypes = ([ctypes.c_ssize_t] * 2
                       + [ctypes.c_void_p] * (len(kinds) + sum(1 for j in into if j < 0))
                       + [ctypes.c_double] * scalars)  # fmt: skip
        self.fn, self.kinds, self.into, self.split = fn, kinds, into, split
        self.full = kinds.index("full")

    def __call__(self, *args, out=None):
        n = len(self.kinds)
        arrays = [np.ascontiguousarray(a, dtype=np.float64) for a in args[:n]]
        shape = arrays[self.full].shape
        rows, cols = math.prod(shape[: self.split]), math.prod(shape[self.split :])
        for a, kind in zip(arrays, self.kinds, strict=True):
            if a.size != (rows * cols if kind == "full" else cols if kind == "row" else rows):
                raise ValueError(f"an array of shape {a.shape} does not fit a loop over {shape}")
        outs = []
        for k, j in enumerate(self.into):
            if j < 0:
                given = None if out is None else out[k]
                outs.append(np.empty(shape) if given is None else given)
            else:  # written in place: the argument's own array, else a copy of it
                if arrays[j] is not args[j] or not arrays[j].flags.writeable:
                    arrays[j] = arrays[j].copy()
                outs.append(arrays[j])
        fresh = [_address(o) for o, j in zip(outs, self.into, strict=True) if j < 0]
        self.fn(rows, cols, *map(_address, arrays), *fresh, *map(float, args[n:]))
        return outs


class RowLoop:
    """A row-wise tensor op's C loop (softmax cross-entropy, its gradient) in place of
    the NumPy helper it stands for: called as the helper, (scores, labels) or (scores,
    labels, g). It runs on 2-d C-ordered float64 scores of at least one row and column,
    integer labels (one per row) and a number g; elsewhere, and for a label that is not
    a class (the helper's error), the helper runs. grad: the loop writes an array of
    the scores' shape (the gradient) instead of returning a number (the loss)."""

    def __init__(self, fn, helper, grad):
        fn.restype = ctypes.c_ssize_t
        fn.argtypes = ([ctypes.c_ssize_t] * 2 + [ctypes.c_void_p] * 2
                       + ([ctypes.c_double] if grad else []) + [ctypes.c_void_p])  # fmt: skip
        self.fn, self.helper, self.grad = fn, helper, grad

    def __call__(self, s, y, *g):
        if (type(s) is not np.ndarray or s.dtype != _F64 or s.ndim != 2 or 0 in s.shape
                or not s.flags.c_contiguous or type(y) is not np.ndarray
                or y.dtype.kind not in "iu" or y.shape != s.shape[:1]
                or len(g) != self.grad or (g and np.ndim(g[0]) != 0)):  # fmt: skip
            return self.helper(s, y, *g)
        labels = np.ascontiguousarray(y, dtype=np.intp)
        out = np.empty(s.shape if self.grad else 1)
        scale = [float(g[0])] if g else []
        if self.fn(*s.shape, _address(s), _address(labels), *scale, _address(out)) >= 0:
            return self.helper(s, y, *g)  # a label that is not a class: its error
        return out if self.grad else out[0]
