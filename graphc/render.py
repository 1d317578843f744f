"""DAG (+ evaluation) -> Graphviz diagram, drawn as the cs231n notes draw circuits.

Inputs on the left, gates as small circles with their op's symbol, and on every wire
the forward value (green, above the wire) and the gradient flowing back along it (red,
below). A wire is a small table node whose middle line *is* the wire, so labels never
sit on a line. At a fork (a node used twice, ``x*x`` included) the trunk carries the
node's value and its whole gradient, and each branch carries its own contribution;
the contributions add up to the trunk's gradient.

The DOT text is built without side effects and is byte-identical for the same input;
:func:`run_dot` is the only function that runs Graphviz's ``dot`` program.

>>> import graphc
>>> d = graphc.render(graphc.parse("(x+y)*z"), at={"x": -2, "y": 5, "z": -4})
>>> "-12.00" in d.source and "after backward" in d.source
True
"""

from __future__ import annotations

import html
import re
import shutil
import subprocess
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import graphviz
import numpy as np
import sympy as sp

from . import shapes as S  # noqa: N812
from .args import got, is_whole, path_arg
from .autodiff import local_sympy, to_sympy, tree_sizes
from .errors import OverwriteError
from .evaluate import Evaluation
from .graph import Graph, as_graph
from .ops import OPS
from .pretty import RENAMED
from .render_view import (
    RenderError,
    View,
    chain_rule,
    check_group,
    check_options,
    fmt_value,
    group_local,
    make_view,
)

__all__ = [
    "FORMATS", "MARKS", "Options", "RenderError", "diagram", "drawn_by_graphc", "mimebundle",
    "render", "run_dot",
]  # fmt: skip

#: Output formats by file extension (``.dot`` needs no Graphviz program).
FORMATS = {".svg": "svg", ".png": "png", ".pdf": "pdf", ".dot": "dot", ".gv": "dot"}
GREEN, RED, BLUE, GRAY, HIGH = "#1a7f37", "#d1242f", "#1f5fbf", "#57606a", "#e36209"
FONT = "Helvetica"
INSTALL = (
    "Graphviz's 'dot' program is needed to write {what}; install Graphviz "
    "(Debian/Ubuntu: sudo apt-get install graphviz; macOS: brew install graphviz; "
    "conda: conda install graphviz), or write a .dot file, which needs no program"
)


@dataclass(frozen=True)
class Options:
    """What :func:`render` draws besides the circuit; see ``docs/diagrams.md``."""

    precision: int = 2
    local: bool = False
    symbolic: bool = False
    highlight: str | None = None
    group: Any = None
    cluster: bool = False
    backward: bool = True
    title: str | None = None


_KNOWN = tuple(Options.__dataclass_fields__)


@dataclass(frozen=True)
class Reveal:
    """For step-by-step diagrams: the drawn gates whose backward step has run.

    ``"#out"`` in ``done`` means the seed 1.00 is on the output wire; ``current`` is the
    gate of this step; ``note`` is a caption line; ``pad``, the longest caption line of
    all the steps, is written invisibly so that every step has one canvas width.
    """

    done: frozenset[str] = field(default_factory=frozenset)
    current: str | None = None
    note: str = ""
    pad: str = ""


def make_options(options: Mapping[str, Any]) -> Options:
    """Check ``render``'s keyword options and return them as :class:`Options`."""
    check_options(options, _KNOWN)
    opts = Options(**options)
    if not is_whole(opts.precision) or not 0 <= opts.precision <= 12:
        raise RenderError(f"precision must be an integer from 0 to 12, got {got(opts.precision)}")
    for name in ("local", "symbolic", "cluster", "backward"):
        if not isinstance(getattr(opts, name), bool | np.bool_):
            raise RenderError(f"{name} must be True or False, got {got(getattr(opts, name))}")
    for name in ("highlight", "title"):
        if not isinstance(getattr(opts, name), str | None):
            raise RenderError(f"{name} must be text, got {got(getattr(opts, name))}")
    check_group(opts.group)
    return opts


def evaluation_for(graph: Graph, at: Any) -> Evaluation | None:
    """``at`` as an :class:`Evaluation` of ``graph`` (a dict of input values or one)."""
    if at is None:
        return None
    if isinstance(at, Evaluation):
        if at.graph is not graph:
            raise RenderError("the evaluation passed as 'at' belongs to another graph")
        return at
    if isinstance(at, Mapping):
        return graph.evaluate(**at)
    raise RenderError(f"'at' must be a dict of input values or an Evaluation, not {type(at)}")


def render(graph: Graph, at: Any = None, path: str | Path | None = None, *,
           overwrite: bool = False, **options: Any) -> Any:  # fmt: skip
    """Draw ``graph`` as a circuit; with ``at``, every wire's value and gradient.

    Args:
        graph: the graph (``graphc.parse(...)``, ``graph.derivative("x")``, ...).
        at: ``{"x": -2, ...}`` or an :class:`~graphc.evaluate.Evaluation`; without it
            the diagram shows the structure only.
        path: where to write it; the extension picks the format (``.svg``, ``.png``,
            ``.pdf``, ``.dot``). A file there is replaced when graphc drew it (each
            format carries graphc's mark: :data:`MARKS`); any other file is kept.
        overwrite: replace the file at ``path`` even if graphc did not draw it.
        **options: ``precision`` (decimals, 2), ``local`` (local gradients),
            ``symbolic`` (gradients as formulas), ``highlight`` (a node name: its paths
            to the output and the chain rule), ``group`` (``"auto"`` or
            ``{"sigmoid": [gates]}``), ``cluster`` (box named statements),
            ``backward`` (False: values only), ``title``.

    Returns:
        the ``graphviz.Digraph`` (``.source`` is the DOT text).

    Raises:
        RenderError: unknown option, bad group, unknown extension, no ``dot`` program.

    >>> import graphc
    >>> d = render(graphc.parse("x*x"), at={"x": 3})
    >>> import re
    >>> sorted(set(re.findall(r'"#w x mul#1 \\d"', d.source)))   # two wires, one per argument
    ['"#w x mul#1 0"', '"#w x mul#1 1"']
    >>> "6.00" in d.source   # the trunk of x carries d(x²)/dx = 2x
    True
    """
    graph = as_graph(graph)
    opts = make_options(options)
    path = None if path is None else path_arg(path)
    d = diagram(graph, evaluation_for(graph, at), opts)
    if path is not None:
        write(d, path, overwrite)
    return d


def write(d: Any, path: str | Path, overwrite: bool = False) -> Path:
    """Write a diagram to ``path`` in the format of its extension; a file there that
    graphc did not draw is kept (:class:`OverwriteError`) unless ``overwrite``."""
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise RenderError(
            f"cannot tell the format of {str(path)!r}: use one of {', '.join(sorted(FORMATS))}"
        )
    if not overwrite and path.is_file() and not drawn_by_graphc(path):
        raise OverwriteError(
            f"{path} exists and was not drawn by graphc; pass overwrite=True (or --force)"
            " to replace it"
        )
    data = d.source.encode() if fmt == "dot" else run_dot(d.source, fmt)
    try:
        path.write_bytes(data)
    except OSError as e:
        raise RenderError(f"cannot write {str(path)!r}: {e.strerror or e}") from None
    return path


#: Seconds ``dot`` may run before it is killed (a sum of 100 terms took it past 100 s).
DOT_TIMEOUT = 30.0
#: Drawings with more edges than this are laid out without ``ordering=in`` (argument
#: order top to bottom), which makes dot's layout superlinear: 80 terms x+x+...+x took
#: over 30 s with it and 0.3 s without.
ORDERED_EDGES = 200
#: Drawings with more edges than this are not handed to dot (a 200-gate random DAG runs
#: past 30 s; 300 terms x+...+x needed over 4 GB): RenderError, and .dot text instead.
MAX_DOT_EDGES = 450


def run_dot(source: str, fmt: str) -> bytes:
    """Run Graphviz's ``dot`` on DOT text; the only place graphc runs a program.

    ``dot`` is killed after :data:`DOT_TIMEOUT` seconds.

    Raises:
        RenderError: when ``dot`` is not installed (saying how to install it), fails,
            or runs past the time limit.
    """
    exe = shutil.which("dot")
    if exe is None:
        raise RenderError(INSTALL.format(what=f"{fmt.upper()} files"))
    edges = source.count(" -> ")
    if edges > MAX_DOT_EDGES:
        raise RenderError(
            f"this graph is too large to draw: {edges} wires (graphc draws at most "
            f"{MAX_DOT_EDGES}); write a .dot file (no program runs), group gates "
            "(--group auto), or draw a part of the program"
        )
    try:
        proc = subprocess.run(
            [*_WITH_PARENT, exe, f"-T{fmt}"], input=source.encode(), capture_output=True,
            timeout=DOT_TIMEOUT, check=False,
        )  # fmt: skip
    except subprocess.TimeoutExpired:  # subprocess.run has killed it
        raise RenderError(
            f"Graphviz's dot ran past {DOT_TIMEOUT:g} s and was stopped: draw a smaller "
            "graph, group gates (--group auto), or write a .dot file, which needs no program"
        ) from None
    except OSError as e:
        raise RenderError(f"cannot run Graphviz's dot: {e.strerror or e}") from None
    if proc.returncode != 0:
        err = proc.stderr.decode(errors="replace").strip()
        raise RenderError(f"Graphviz's dot failed: {err}")
    out = proc.stdout
    return _plain_minus(out) if fmt == "svg" else _MARK.get(fmt, bytes)(out)


#: What graphc's own drawings carry, by format, so that a file graphc drew may be
#: drawn again while any other file is kept (:func:`drawn_by_graphc`): DOT and SVG hold
#: the graph's name; a PNG gets a ``Software`` text chunk and a PDF an update of its
#: document information saying ``/Creator (graphc)``, which PDF viewers show.
MARKS = {
    "dot": b"digraph graphc {",
    "svg": b"<!-- Title: graphc Pages:",
    "png": b"tEXtSoftware\x00graphc",
    "pdf": b"/Creator (graphc)",
}


def drawn_by_graphc(path: Path) -> bool:
    """Whether the file at ``path`` is a drawing graphc wrote (its format's mark)."""
    mark = MARKS.get(FORMATS.get(path.suffix.lower(), ""))
    try:
        data = path.read_bytes()
    except OSError:
        return False
    return mark is not None and mark in (data[-4096:] if mark == MARKS["pdf"] else data[:4096])


def _mark_png(data: bytes) -> bytes:
    """``data`` with a text chunk ``Software: graphc`` after its header chunk."""
    if data[:8] != b"\x89PNG\r\n\x1a\n" or data[12:16] != b"IHDR":
        return data
    end = 8 + 12 + int.from_bytes(data[8:12], "big")  # length, type, data, CRC
    body = MARKS["png"]  # the chunk's type and data: b"tEXt" + keyword, NUL, text
    chunk = (len(body) - 4).to_bytes(4, "big") + body + zlib.crc32(body).to_bytes(4, "big")
    return data[:end] + chunk + data[end:]


def _mark_pdf(data: bytes) -> bytes:
    """``data`` with an incremental update (PDF's own way to amend a file) whose
    document information adds ``/Creator (graphc)`` to what it said."""
    end = re.search(rb"startxref\s+(\d+)\s+%%EOF\s*$", data)
    at = data.rfind(b"trailer")
    if end is None or at < 0:  # no classic trailer (a cross-reference stream): as drawn
        return data
    trailer = data[at : end.start()]
    size = re.search(rb"/Size\s+(\d+)", trailer)
    root = re.search(rb"/Root\s+(\d+\s+\d+\s+R)", trailer)
    if size is None or root is None:
        return data
    info = re.search(rb"/Info\s+(\d+)\s+(\d+)\s+R", trailer)
    fields = b""
    if info is not None:
        head = rb"(?:^|[\r\n])" + info[1] + rb"\s+" + info[2] + rb"\s+obj\s*<<(.*?)>>\s*endobj"
        found = re.search(head, data, re.S)
        fields = found[1].strip() + b" " if found else b""
    n = int(size[1])
    out = data if data.endswith(b"\n") else data + b"\n"
    obj = b"%d 0 obj\n<< %s/Creator (graphc) >>\nendobj\n" % (n, fields)
    xref = len(out) + len(obj)
    update = (
        b"xref\n0 1\n0000000000 65535 f \n%d 1\n%010d 00000 n \n"  # (object 0, as writers do)
        b"trailer\n<< /Size %d /Root %s /Info %d 0 R /Prev %s >>\n"
        b"startxref\n%d\n%%%%EOF\n" % (n, len(out), n + 1, root[1], n, end[1], xref)
    )
    return out + obj + update


_MARK = {"png": _mark_png, "pdf": _mark_pdf}


def _with_parent() -> tuple[str, ...]:
    """The prefix that makes ``dot`` die with graphc's process (util-linux's ``setpriv
    --pdeathsig``: the kernel sends SIGKILL when the parent dies), where there is one;
    a ``preexec_fn`` would do the same but forks unsafely beside threads."""
    setpriv = shutil.which("setpriv")
    return (setpriv, "--pdeathsig", "SIGKILL", "--") if setpriv else ()


_WITH_PARENT = _with_parent()


def _plain_minus(svg: bytes) -> bytes:
    """dot writes '-' as ``&#45;``; in text elements write it plainly, so that the
    SVG's text reads ``-4.00`` to a search as it does to the eye (comments keep it)."""
    return re.sub(
        rb"(<text[^>]*>)([^<]*)(</text>)",
        lambda m: m.group(1) + m.group(2).replace(b"&#45;", b"-") + m.group(3),
        svg,
    )


def mimebundle(
    graph: Graph, evaluation: Any = None, include: Any = None, exclude: Any = None
) -> dict[str, str]:
    """Jupyter's display of a graph or an evaluation: SVG, or text when ``dot`` is missing.

    Never raises: a notebook shows the text and a note instead.
    """
    text = repr(evaluation if evaluation is not None else graph)
    try:
        d = diagram(graph, evaluation, Options())
        svg = run_dot(d.source, "svg").decode()
    except RenderError as e:
        return {"text/plain": f"{text}\n(no diagram: {e})"}
    except Exception as e:  # a notebook repr must never raise
        return {"text/plain": f"{text}\n(no diagram: {type(e).__name__}: {e})"}
    return {"image/svg+xml": svg, "text/plain": text}


# --- building the DOT ------------------------------------------------------------------


def _cell(text: str, color: str, size: int = 14, port: str = "", name: str = "") -> str:
    p = f' PORT="{port}"' if port else ""
    # a bound name sits on its wire before the value, in black, as in the notes' figures
    before = f'<FONT POINT-SIZE="{size + 2}">{html.escape(name)}</FONT>  ' if name else ""
    return (
        f'<TR><TD{p} ALIGN="LEFT">{before}<FONT COLOR="{color}" POINT-SIZE="{size}">'
        f"{html.escape(text)}</FONT></TD></TR>"
    )


#: SymPy's function names that graphc's printer renames (Max -> max), as the other
#: labels of a diagram write them.
_SYMPY_NAME = re.compile(rf"\b({'|'.join(RENAMED)})\(")


#: Largest formula built for a wire, in operations written out: a wire shows its first
#: 40 characters, and a longer closed form shows "…" (SymPy's printing of one grows
#: faster than its size: up to 1,000 operations a 20-gate diagram takes 0.26 s).
_FORMULA_OPS = 1_000


def _formula(expr: Any) -> str:
    s = str(expr).replace("**", "^").replace("*", "·")
    s = _SYMPY_NAME.sub(lambda m: RENAMED[m.group(1)] + "(", s)
    return s if len(s) <= 40 else s[:39] + "…"


class _Drawer:
    """Builds one Digraph; a class only to share the many read-only inputs of the steps."""

    def __init__(
        self, graph: Graph, ev: Evaluation | None, opts: Options, reveal: Reveal | None
    ) -> None:
        self.graph, self.ev, self.opts, self.reveal = graph, ev, opts, reveal
        self.view: View = make_view(graph, opts.group)
        self.names = graph.names
        from .render_view import display_names

        self.shown = display_names(graph)  # names as the diagram shows them
        self.show_grad = ev is not None and opts.backward
        self.wired = ev is not None or opts.symbolic or opts.local
        self.hot: set[tuple[str, str, int]] = set()
        self.hot_nodes: set[str] = set()
        if opts.highlight is not None:
            self._highlight(graph.node(opts.highlight))
        self.formulas: dict[str, str] = {}
        if opts.symbolic:
            bw = graph.backward
            keys = list(bw.upstream.values()) + list(bw.contributions.values())
            if graph.tensor:  # matrix notation: SymPy's symbols are scalars
                from .pretty import tensor_texts

                texts = tensor_texts(bw)
                self.formulas = {k: texts[k] for k in keys}
            else:  # a wire's formula is cut at 40 characters: only the shorter closed
                # forms are built (printing each of a 30-gate program's, up to 200,000
                # operations, took 17 s), the rest show "…"
                size = tree_sizes(bw.graph, keys, _FORMULA_OPS)
                short = [k for k in keys if size[k] <= _FORMULA_OPS]
                formulas = map(_formula, to_sympy(bw.graph, short))
                self.formulas = dict.fromkeys(keys, "…") | dict(zip(short, formulas, strict=True))

    def _highlight(self, start: str) -> None:
        from .render_view import paths_to_output

        paths, _ = paths_to_output(self.graph, start)
        for p in paths:
            self.hot.update(p)
            self.hot_nodes.update(self.view.drawn[v] or v for u, v, _ in p)
            self.hot_nodes.add(self.view.drawn[start] or start)

    # -- numbers -------------------------------------------------------------------
    def num(self, v: Any) -> str:
        return fmt_value(v, self.opts.precision)

    def value(self, node: str) -> str:
        text = self.num(self.ev.nodes[node].value) if self.ev is not None else ""
        shape = self.graph.nodes[node].get("shape")
        if shape:  # tensor programs: the wire's shape, then its value
            return f"{S.fmt(shape)}  {text}" if text else S.fmt(shape)
        return text

    def grad(self, node: str) -> str | None:
        up = self.ev.nodes[node].upstream if self.ev is not None else None
        return None if up is None else self.num(up)

    def contribution(self, u: str, v: str, i: int) -> str | None:
        if self.ev is None:
            return None
        parts = dict(self.ev.nodes[u].contributions)
        return self.num(parts[(v, i)]) if (v, i) in parts else None

    def visible(self, dv: str) -> bool:
        return self.reveal is None or dv in self.reveal.done

    # -- pieces --------------------------------------------------------------------
    def wire_label(self, top: str, below: list[tuple[str, str]], hot: bool, name: str = "") -> str:
        color = f' COLOR="{HIGH}"' if hot else ""
        rows = [_cell(top or " ", GREEN, port="w", name=name)]
        rows += [_cell(*row) for row in below] or [_cell(" ", RED)]
        return (
            f'<<TABLE BORDER="0" CELLBORDER="0" CELLSPACING="0" CELLPADDING="1"{color}>'
            + rows[0]
            + "<HR/>"
            + "".join(rows[1:])
            + "</TABLE>>"
        )

    def local_row(self, u: str, v: str, i: int, dv: str) -> tuple[str, str] | None:
        g, names = self.graph, self.shown
        head = f"∂{names[dv]}/∂{names[u]} = "
        if dv in self.view.groups:
            grp = self.view.groups[dv]
            out = self.ev.nodes[dv].value if self.ev else None
            arg = self.ev.nodes[u].value if self.ev else None
            got = group_local(grp, grp.inputs.index(u), out, arg, names[dv], names[u])
            if got is None:
                return None
            formula, val = got
        elif OPS[g.nodes[v]["op"]].vjps is not None:  # a tensor gate: its VJP rule
            from .pretty import vjp_text

            rule = vjp_text(g.backward, v, i, names)
            return (f"d{names[u]} ← {rule}" if rule else f"no gradient to {names[u]}", BLUE)
        else:
            expr = local_sympy(g, v, i)  # in internal names; written in the shown ones
            subs = {
                sp.Symbol(self.names[a], real=True): sp.Symbol(names[a], real=True)
                for a in g.nodes[v]["args"]
                if self.names[a] != names[a]
            }
            formula = _formula(expr.subs(subs, simultaneous=True) if subs else expr)
            val = self.ev.nodes[v].local[i] if self.ev is not None else None
        text = head + formula + (f" = {self.num(val)}" if val is not None else "")
        return (text, BLUE)

    def below(self, grad: str | None, formula_node: str | None, shown: bool) -> list:
        rows: list[tuple[str, str]] = []
        if self.show_grad and grad is not None:
            rows.append((grad, RED if shown else "white", 14))
        if self.opts.symbolic and formula_node in self.formulas:
            rows.append((f"= {self.formulas[formula_node]}", RED if shown else "white", 11))
        return rows

    def draw(self) -> Any:
        g, view = self.graph.nx, self.view
        d = graphviz.Digraph(name="graphc")
        d.attr(rankdir="LR", bgcolor="white", fontname=FONT, nodesep="0.3", ranksep="0.3")
        d.attr(ordering="in", splines="false", outputorder="edgesfirst")
        d.attr("node", fontname=FONT)
        d.attr("edge", arrowsize="0.6", fontname=FONT)
        with d.subgraph(name="inputs") as s:
            s.attr(rank="min")
            for name in self.graph.inputs:
                if view.drawn.get(name) == name:
                    s.node(name, name, shape="plaintext", fontsize="18")
        clusters = self.clusters()
        clustered = {m: cname for cname, ms in clusters for m in ms}
        # a wire leaving a clustered gate is drawn inside its cluster, so that the
        # cluster's gates keep their left-to-right ranks instead of stacking up
        self.cluster_of, self.cluster_nodes = clustered, {c: [] for c, _ in clusters}
        for v, data in g.nodes(data=True):
            if view.drawn[v] != v or v in clustered or data["op"] == "input":
                continue
            if data["op"] == "const":
                d.node(v, data["label"], shape="plaintext", fontsize="11", fontcolor=GRAY)
            else:
                self.gate(d, v)
        out = self.graph.output
        d.node("#out", "", shape="point", width="0.02", color="white")
        for v in g:
            if view.drawn[v] == v:
                self.wires(d, v, list(view.wires.get(v, ())) + ([None] if v == out else []))
        for cname, members in clusters:
            with d.subgraph(name=f"cluster_{cname}") as c:
                c.attr(label=cname, style="dashed,rounded", color=GRAY, fontcolor=GRAY)
                c.attr(fontsize="11")
                for m in members:
                    self.gate(c, m)
                for wid, label in self.cluster_nodes[cname]:
                    c.node(wid, label, shape="plaintext", margin="0")
        d.attr(label=self.caption(), labelloc="b", labeljust="l", fontsize="12")
        if sum(" -> " in line for line in d.body) > ORDERED_EDGES:
            # dot's ordering=in makes large layouts take minutes: keep argument order
            # only where the drawing is small enough for it
            d.body[:] = [line.replace("ordering=in ", "") for line in d.body]
        return d

    def gate(self, d: Any, v: str) -> None:
        label = self.view.labels[v]
        hot = v in self.hot_nodes or (self.reveal is not None and self.reveal.current == v)
        attrs = {"color": HIGH, "penwidth": "2"} if hot else {}
        name = self.graph.nodes[v]["name"]
        if name and not self.opts.cluster and not self.wired:  # else the name is on the wire
            attrs.update(xlabel=name, fontcolor="black")
        size = "16" if len(label) <= 2 else "13"
        d.node(v, label, shape="circle", fontsize=size, width="0.5", margin="0.02", **attrs)

    def wires(self, d: Any, u: str, outs: list) -> None:
        """Draw the wires out of drawn node ``u``; ``None`` is the output wire."""
        if not outs:
            return
        if not self.wired:
            for w in outs:
                self.edge(d, u, "#out" if w is None else w[3], w)
            return
        trunk_hot = bool(self.hot) and any(w is None or tuple(w[:3]) in self.hot for w in outs)
        if len(outs) == 1:
            w = outs[0]
            if w is None:
                shown = self.reveal is None or "#out" in self.reveal.done
                below = self.below(self.grad(u), self.graph.backward.upstream.get(u), shown)
                self.wire_node(d, u, f"#w {u}", self.value(u), below, trunk_hot, "#out", None,
                               name=self.wire_name(u))  # fmt: skip
                return
            self.branch(d, u, w, u, self.value(u), name=self.wire_name(u))
            return
        done = all(w is None or self.visible(w[3]) for w in outs) and (
            None not in outs or self.reveal is None or "#out" in self.reveal.done
        )
        below = self.below(self.grad(u), self.graph.backward.upstream.get(u), done)
        trunk = f"#t {u}"
        self.wire_node(d, u, trunk, self.value(u), below, trunk_hot, None, None,
                       name=self.wire_name(u))  # fmt: skip
        for w in outs:
            if w is None:
                shown = self.reveal is None or "#out" in self.reveal.done
                below = self.below(self.grad(u), None, shown) if self.show_grad else []
                self.wire_node(d, trunk, f"#w {u}", "", below, trunk_hot, "#out", None, True)
            else:
                self.branch(d, trunk, w, u, "", from_trunk=True)

    def wire_name(self, u: str) -> str:
        """The name a gate's output wire carries: its bound name, or f for the output."""
        data = self.graph.nodes[u]
        if data["op"] in ("input", "const"):
            return ""
        if data["name"] or u == self.graph.output:
            return self.names[u]
        return ""

    def branch(
        self, d: Any, src: str, w: tuple, u: str, top: str, from_trunk: bool = False,
        name: str = "",
    ) -> None:  # fmt: skip
        _, v, i, dv = w
        shown = self.visible(dv)
        bw = self.graph.backward
        below = self.below(self.contribution(u, v, i), bw.contributions.get((v, i)), shown)
        if self.opts.local:
            row = self.local_row(u, v, i, dv)
            if row is not None:
                below.append((row[0], BLUE if shown or self.ev is None else "white", 11))
        hot = (u, v, i) in self.hot or (self.reveal is not None and self.reveal.current == dv)
        self.wire_node(d, src, f"#w {u} {v} {i}", top, below, hot, dv, w, from_trunk, name)

    def wire_node(self, d, src, wid, top, below, hot, dst, w, from_trunk=False, name="") -> None:
        label = self.wire_label(top, below, hot, name)
        cluster = getattr(self, "cluster_of", {}).get(wid.split(" ")[1])
        if cluster is not None:
            self.cluster_nodes[cluster].append((wid, label))
        else:
            d.node(wid, label, shape="plaintext", margin="0")
        style = {"color": HIGH, "penwidth": "2.5"} if hot else {}
        tail = {"tailport": "w:se"} if src.startswith("#") else {}
        d.edge(src, wid, arrowhead="none", headport="w:sw", weight="5", **tail, **style)
        if dst is not None:
            self.edge(d, wid, dst, w, tailport="w:se", **style)

    def edge(self, d: Any, src: str, dst: str, w: tuple | None, **attrs: Any) -> None:
        if w is not None and dst not in self.view.groups:
            data = self.graph.nodes[w[1]]
            row = OPS[data["op"]]
            drawn_args = [a for a in data["args"] if self.view.drawn.get(a) is not None]
            if not row.commutative and row.arity == 2 and len(drawn_args) == 2:
                attrs.update(label="ab"[w[2]], fontsize="10", fontcolor=GRAY)
        d.edge(src, dst, **attrs)  # the output wire ends in an arrowhead, as in the notes

    def clusters(self) -> list[tuple[str, list[str]]]:
        if not self.opts.cluster:
            return []
        found, batch = [], []
        for v, data in self.graph.nodes.items():
            if data["op"] in ("input", "const") or self.view.drawn[v] != v:
                continue
            batch.append(v)
            if data["name"]:
                found.append((data["name"], batch))
                batch = []
        return found

    def caption(self) -> str:
        lines = self.caption_lines()
        body = "".join(f'{html.escape(t)}<BR ALIGN="LEFT"/>' for t in lines)
        if self.reveal is not None and self.reveal.pad:  # one canvas for every step
            body += f'<FONT COLOR="white">{html.escape(self.reveal.pad)}</FONT><BR ALIGN="LEFT"/>'
        return f"<{body}>"

    def caption_lines(self) -> list[str]:
        f = self.names[self.graph.output]
        lines = [self.opts.title or f"{f} = {self.graph.to_text()}"]
        if len(lines[0]) > 100:
            lines[0] = lines[0][:99] + "…"
        if self.ev is not None:
            point = ", ".join(f"{k} = {self.num(v)}" for k, v in self.ev.point.items())
            state = "after backward" if self.show_grad else "forward only"
            if self.reveal is not None and self.show_grad:
                state = "backward in progress" if self.reveal.done else "forward only"
            lines.append(f"{state} at {point}")
            key = "green: value" + (f"; red: ∂{f}/∂wire" if self.show_grad else "")
            lines.append(key + ("; at a fork the branches' parts add up" if self.forks() else ""))
        else:
            lines.append("structure only (no point given)")
        for grp in self.view.groups.values():
            line = f"{grp.label} gate ({self.names[grp.out]}): {len(grp.members)} gates as one"
            if grp.op is not None and len(grp.inputs) == 1:
                got = group_local(grp, 0, None, None, self.names[grp.out], "z")
                line += f"; its local gradient is {got[0]}" if got else ""
            lines.append(line)
        if self.opts.highlight is not None:
            start = self.graph.node(self.opts.highlight)
            lines += chain_rule(self.graph, start, self.ev, self.opts.precision)
        if self.reveal is not None and self.reveal.note:
            lines.append(self.reveal.note)
        return lines

    def forks(self) -> bool:
        outs = self.view.wires
        return any(len(ws) + (v == self.graph.output) > 1 for v, ws in outs.items())


def diagram(graph: Graph, ev: Evaluation | None, opts: Options, reveal: Reveal | None = None):
    """The ``graphviz.Digraph`` of ``graph`` (pure: builds DOT text, runs nothing)."""
    return _Drawer(graph, ev, opts, reveal).draw()


def caption_lines(
    graph: Graph, ev: Evaluation | None, opts: Options, reveal: Reveal | None = None
) -> list[str]:
    """The caption's lines of :func:`diagram` (for steps that share one canvas)."""
    return _Drawer(graph, ev, opts, reveal).caption_lines()
