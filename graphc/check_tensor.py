"""Claims about tensor programs: ``∂e/∂w = -2 x (y - wᵀx)``, proved or refuted.

:func:`check_tensor` is :func:`graphc.check`'s path for tensor programs. The claim is
text in graphc's language over the program's inputs and bound names (``-2*x*(y - w@x)``);
it is built as one more statement of the program, so it sees the same declarations.

1. **Shapes.** Dim symbols take the numbers given (``shapes={"w": (3,)}`` or
   ``{"D": 3}``), else small distinct sizes (3, 4, 2, 5, ...). Integer labels are
   drawn below the number of classes of the scores they pick from.
2. **Symbolic.** Every input becomes an array of SymPy symbols (``w[0]``, ``W[1,2]``);
   graphc's gradient graph and the claim are expanded entry by entry
   (:meth:`~graphc.graph.Graph.to_sympy`) and each difference is simplified: all zero
   is *proved*. Programs with labels or ops without a closed form, or inputs of more
   than :data:`MAX_ENTRIES` entries in all, skip this step.
3. **Numeric.** Both sides at random points (standard normal entries, seeded); a
   claim of the wrong shape, or a difference beyond ``rtol``/``atol``, is *wrong*, with
   the point as the counterexample.
"""

from __future__ import annotations

import contextlib
import math
import warnings
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np
import sympy as sp

from . import shapes as S  # noqa: N812
from .args import MAX_DRAWN
from .deadline import DeadlineExceeded, deadline
from .domain import Domain
from .errors import InputError, ParseError, ShapeError, did_you_mean
from .graph import Graph, build
from .parse import Program, parse_program

__all__ = ["check_tensor", "concrete_shapes"]

_SIZES = (3, 4, 2, 5, 6, 7, 8, 9)
#: Inputs with more entries in all get no symbolic step (one SymPy symbol per entry, and
#: expressions per entry of the gradient): the numbers decide.
MAX_ENTRIES = 2_000


def concrete_shapes(graph: Graph, given: Mapping[str, Any] | None = None) -> Graph:
    """``graph`` with every dim a number: ``given`` maps inputs to shapes or dim symbols
    to numbers; other symbols take small distinct sizes."""
    given = dict(given or {})
    graph.check_shape_names(given)
    dims = {
        k: int(v[0] if isinstance(v, tuple) else v)
        for k, v in given.items()
        if k not in graph.inputs
    }
    shapes = {k: v for k, v in given.items() if k in graph.inputs}
    nodes = graph.nodes
    for name, shape in shapes.items():
        shape = (shape,) if isinstance(shape, int) else tuple(shape)
        declared = nodes[name].get("shape", ())
        if len(declared) == len(shape):
            for d, n in zip(declared, shape, strict=True):
                if isinstance(d, str):
                    dims.setdefault(d, n)
    graph = graph.resolved(shapes)
    nodes = graph.nodes
    free = iter(n for n in _SIZES if n not in dims.values())
    out = {}
    for name in graph.inputs:
        if name in shapes:
            shape = shapes[name]
            out[name] = (shape,) if isinstance(shape, int) else tuple(shape)
            continue
        declared = nodes[name].get("shape", ())
        for d in declared:
            if isinstance(d, str) and d not in dims:
                dims[d] = next(free)
        out[name] = S.substitute(declared, dims)
    return graph.with_shapes(out)


def _label_bounds(graph: Graph) -> dict[str, int]:
    """Per label input, the number of classes its consumers allow."""
    g = graph.nx
    bounds: dict[str, int] = {}
    for _, data in g.nodes(data=True):
        if data["op"] == "pick":
            s, y = data["args"]
            bounds[y] = min(bounds.get(y, 1 << 30), int(g.nodes[s]["shape"][-1]))
        elif data["op"] == "one_hot":
            (y,) = data["args"]
            depth = dict(data.get("attrs", ())).get("depth")
            if isinstance(depth, int):
                bounds[y] = min(bounds.get(y, 1 << 30), depth)
    return bounds


def _claim_graph(graph: Graph, claim: str) -> tuple[Graph, dict[str, str]]:
    """The claim as the last statement of the program (same declarations and names),
    and the gradients it names: ``{"ds": node}`` for ``ds``, ∂f/∂s at s's node, an
    input of the claim's graph with s's shape (the cs231n notes' ``dW = X.T @ ds``)."""
    from .check import _names_used

    if graph.text is None:
        raise InputError("tensor claims need the program as text")
    program = parse_program(graph.text)
    try:
        claim_program = parse_program(claim)
    except ParseError as e:
        raise ParseError(f"in the claim: {e.message}", e.line, e.column, e.source_line) from None
    kept = tuple(st for st in program.statements if st.name is not None)
    combined = Program(kept + claim_program.statements, claim, program.declarations)
    shapes = {n: graph.nodes[n]["shape"] for n in graph.inputs}
    bound = {d["name"] for _, d in graph.nodes.items() if d["name"]}
    grads: dict[str, str] = {}
    extra = {}
    for name in sorted(_names_used(claim_program) - set(graph.inputs) - bound):
        if name.startswith("d") and (name[1:] in bound or name[1:] in graph.differentiable):
            grads[name] = graph.wrt_node(name[1:])
            extra[name] = graph.nodes[grads[name]]["shape"]
    # built on the program's own declarations, then given the numbers: the dims they
    # bind reach the claim's attributes too (one_hot(y, C))
    declared = {d.name for d in program.declarations}
    try:
        first = build(combined, {**{k: v for k, v in shapes.items() if k not in declared}, **extra})
        claim_graph = first.with_shapes({k: v for k, v in shapes.items() if k in first.inputs})
    except (ParseError, ShapeError) as e:  # the claim's gates (the program's were built)
        raise type(e)(f"in the claim: {e.message}", e.line, e.column, e.source_line) from None
    return claim_graph, grads


def _prove(graph: Graph, claim_graph: Graph, wrt: str, budget: float,
           named_grads: Mapping[str, str]) -> tuple[bool, str]:  # fmt: skip
    """Whether every entry of graphc's ∂f/∂wrt and the claim simplify to the same, and
    what the step did. SymPy is stopped when ``budget`` seconds have passed."""
    if graph.labels:
        return False, "not attempted (integer labels)"
    if budget <= 0:
        return False, "undecided within the time budget (none given)"
    entries = sum(int(np.prod(graph.nodes[n]["shape"], dtype=np.int64)) for n in graph.inputs)
    if entries > MAX_ENTRIES:  # a SymPy symbol per entry: memory, not only time
        return False, f"skipped ({entries:,} input entries, over {MAX_ENTRIES:,})"
    done = [0]
    try:
        with deadline(budget):
            return _entries_equal(graph, claim_graph, wrt, done, named_grads)
    except DeadlineExceeded:
        return False, f"undecided within the time budget ({done[0]} entries simplified to 0)"


def _entries_equal(graph: Graph, claim_graph: Graph, wrt: str, done: list[int],
                   named_grads: Mapping[str, str]) -> tuple[bool, str]:  # fmt: skip
    from .autodiff import backward, tensor_symbols, tensor_sympy

    node = graph.wrt_node(wrt)
    try:
        syms = tensor_symbols(graph)
        bw = backward(graph, tuple(graph.differentiable))

        def upstream(at: str) -> Any:  # ∂f/∂at, entry by entry
            up = bw.grads[at] if at in graph.inputs else bw.upstream.get(at)
            entries = tensor_sympy(bw.graph, [up], syms)[0] if up is not None else sp.Integer(0)
            return np.broadcast_to(np.asarray(entries, dtype=object), graph.nodes[at]["shape"])

        true = upstream(node)
        given = {**syms, **{g: upstream(n) for g, n in named_grads.items()}}
        claim = tensor_sympy(claim_graph, [claim_graph.output], given)[0]
    except NotImplementedError:
        return False, "not attempted (an op without a closed form)"
    true = np.broadcast_to(np.asarray(true, dtype=object), graph.nodes[node]["shape"])
    try:
        claim = np.broadcast_to(np.asarray(claim, dtype=object), np.shape(true))
    except ValueError:
        return False, "not proved (the claim's entries do not fit the gradient's)"
    for a, b in zip(true.flat, claim.flat, strict=True):
        diff = sp.sympify(a - b)
        if diff != 0 and sp.simplify(diff.rewrite(sp.exp)) != 0:
            return False, f"not proved (entry {done[0] + 1} did not simplify to 0)"
        done[0] += 1
    return True, "every entry simplified to 0"


def _hint(gots: list[Any], trues: list[Any], grads: list[Mapping[str, Any]], wrt: str,
          d: str) -> str | None:  # fmt: skip
    """Why a claim about ∂f/∂wrt is wrong, where a common slip explains it at every
    point drawn: the sign, a constant factor, a transpose, a batch axis left unsummed,
    another input's gradient, or zero."""
    trues = [np.asarray(t, dtype=float) for t in trues]
    claims = [np.asarray(c, dtype=float) for c in gots]

    def every(test: Any) -> bool:
        with np.errstate(all="ignore"):
            return all(bool(test(c, t)) for c, t in zip(claims, trues, strict=True))

    def same(a: Any, b: Any) -> bool:
        return np.shape(a) == np.shape(b) and bool(np.allclose(a, b, rtol=1e-6, atol=1e-9))

    if not any(np.any(np.abs(t) > 1e-9) for t in trues):
        return None
    if every(lambda c, t: np.all(c == 0)):
        return f"the claim is 0 but {d} is not"
    if every(lambda c, t: same(c, -t)):
        return "the claim has the wrong sign"
    if every(lambda c, t: same(c.T, t)) and trues[0].ndim == 2:
        return f"the claim is the transpose of {d}"
    if every(lambda c, t: same(c.T, -t)) and trues[0].ndim == 2:
        return f"the claim is the transpose of {d}, with the wrong sign"
    lead = claims[0].ndim - trues[0].ndim
    if lead > 0 and every(lambda c, t: same(c.sum(axis=tuple(range(lead))), t)):
        axes = ", ".join(map(str, range(lead)))
        return f"the claim is not summed over the batch: {d} is its sum over axis {axes}"
    if every(lambda c, t: np.shape(c) == np.shape(t)):
        c, t = next((c, t) for c, t in zip(claims, trues, strict=True) if np.any(t))
        k = c.ravel()[np.argmax(np.abs(t))] / t.ravel()[np.argmax(np.abs(t))]
        if np.isfinite(k) and k != 0 and every(lambda c, t: same(c, k * t)):
            from .check import _number  # the scalar hints' numbers: 2, 1/3, 0.7071

            return f"the claim is off by a constant factor: {d} = {_number(1 / k)} × the claim"
    for other in grads[0]:
        if other != wrt and all(same(c, np.asarray(g[other], dtype=float))
                                for c, g in zip(claims, grads, strict=True)):  # fmt: skip
            return f"the claim is {d.split('/')[0]}/∂{other}, not {d}"
    return None


@contextlib.contextmanager
def _quiet() -> Iterator[None]:
    """No warnings from points outside f's or the claim's domain: they are counted."""
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        yield


def check_tensor(
    graph: Graph,
    pairs: Sequence[tuple[str, Any]],
    *,
    shapes: Mapping[str, Any] | None,
    points: int,
    seed: int,
    rtol: float,
    atol: float,
    budget: float,
    domain: Domain | None = None,
) -> Any:
    """Check claims about a tensor program; returns a :class:`graphc.check.CheckResult`."""
    from .check import CheckResult, PartialCheck

    graph = concrete_shapes(graph, shapes)
    dom = domain or Domain()
    dom.check_names(graph.differentiable, "a float input of the program")
    if dom.relations:
        raise InputError(
            "a domain relating inputs (x < y) is not supported for tensor programs: give"
            " each input's interval (x > 0, 0 < w < 1), which every entry keeps"
        )
    for name in graph.inputs:
        size = math.prod(graph.nodes[name]["shape"])
        if size > MAX_DRAWN:
            raise InputError(
                f"{name} has shape {S.fmt(graph.shape(name))}: {size:,} elements, and check"
                f" draws at most {MAX_DRAWN:,} for an input (give smaller sizes in shapes=)"
            )
    rng = np.random.default_rng(seed)
    bounds = _label_bounds(graph)
    trials = max(1, min(points, 20))
    samples = []
    for _ in range(trials):
        vals: dict[str, Any] = {}
        for name in graph.inputs:
            shape = graph.nodes[name]["shape"]
            if name in graph.labels:
                vals[name] = rng.integers(0, bounds.get(name, 2), size=shape)
            elif name in dom.intervals:  # every entry inside its interval
                size = math.prod(shape)
                vals[name] = dom.intervals[name].sample(size, rng, name).reshape(shape)
            else:
                vals[name] = np.round(rng.normal(size=shape), 2)
        samples.append(vals)
    with _quiet():  # points outside f's domain (log of a negative entry) are skipped
        evals = [graph.evaluate(**v) for v in samples]
    out_name = graph.nodes[graph.output]["name"] or "f"
    results = []
    for wrt, claim in pairs:
        graph.wrt_node(wrt)  # labels and names the program lacks are refused first
        if not isinstance(claim, str):
            raise InputError("claims about tensor programs are text, e.g. '-2*x*(y - w@x)'")
        cg, named_grads = _claim_graph(graph, claim)
        unknown = [n for n in cg.inputs if n not in graph.inputs and n not in named_grads]
        if unknown:
            known = [*graph.inputs, *(d["name"] for _, d in graph.nodes.items() if d["name"])]
            known += ["d" + n for n in known if n not in graph.labels]
            raise InputError(
                f"the claim for ∂{out_name}/∂{wrt} uses '{unknown[0]}', not an input, a name of the"
                f" program or the gradient d<name> of one{did_you_mean(unknown[0], known)}"
            )
        derivative_text = graph.gradients([wrt])[wrt]  # (an upstream gradient for a name)
        method = [f"shapes: {', '.join(f'{n}{S.fmt(graph.shape(n))}' for n in graph.inputs)}"]
        bad = None
        gots = []
        with _quiet():
            for vals, ev in zip(samples, evals, strict=True):
                given = {g: ev.gradient(g[1:]) for g in named_grads}
                claim_at = {n: given.get(n, vals.get(n)) for n in cg.inputs}
                gots.append(cg.evaluate(**claim_at).value)
        trues = [ev.gradient(wrt) for ev in evals]
        # As for scalars, entries compare where both sides are finite (a claim written
        # for x > 0 is not refuted by log of a negative entry), and a point counts as
        # tested when one entry does: NaN against NaN is no agreement.
        tested, not_finite = 0, 0
        for vals, true, claimed in zip(samples, trues, gots, strict=True):
            if np.shape(claimed) != np.shape(true) and np.shape(claimed) != ():
                why = (f"the claim has shape {np.shape(claimed)}, ∂{out_name}/∂{wrt} "
                       f"{np.shape(true)}")  # fmt: skip
                bad = (vals, claimed, true, why)
                break
            t = np.asarray(true, dtype=float)
            c = np.broadcast_to(np.asarray(claimed, dtype=float), t.shape)
            finite = np.isfinite(t) & np.isfinite(c)
            not_finite += finite.size - int(finite.sum())
            if finite.any():
                tested += 1
            with np.errstate(all="ignore"):
                close = np.isclose(c, t, rtol=rtol, atol=atol)
            if not np.all(close | ~finite):
                bad = (vals, claimed, true, None)
                break
        if bad is not None:
            vals, got_value, true, why = bad
            grads = [ev.grads for ev in evals]
            hint = _hint(gots, trues, grads, wrt, f"∂{out_name}/∂{wrt}")
            why = hint if why is None else f"{why}; {hint}" if hint else why
            results.append(
                PartialCheck(
                    wrt,
                    claim,
                    "wrong",
                    None,
                    derivative_text,
                    (*method, f"numeric: differs at a random point of {trials}"),
                    dict(vals),
                    got_value,
                    true,
                    why,
                    trials,
                    0,
                    out_name,
                )
            )
            continue
        proved, step = _prove(graph, cg, wrt, budget, named_grads)
        if proved:
            verdict = "proved"
        else:
            verdict = "agrees numerically" if tested >= min(trials, 10) else "undecided"
        method.append(f"symbolic: {step}")
        if not_finite:
            method.append(
                f"numeric: equal at the finite entries of {tested} of {trials} random points"
                f" ({not_finite} {'entry' if not_finite == 1 else 'entries'} not finite on one"
                " side or both)"
            )
        else:
            method.append(f"numeric: equal at {trials} random points")
        results.append(
            PartialCheck(
                wrt,
                claim,
                verdict,
                None,
                derivative_text,
                tuple(method),
                tested=tested,
                skipped=trials - tested,
                output=out_name,
            )
        )
    settings = {"rtol": rtol, "atol": atol, "budget": budget}
    return CheckResult(tuple(results), graph.text or "", dom.describe(), trials, seed, settings)
