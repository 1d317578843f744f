"""The backward pass step by step: one diagram per step and a page to click through.

Step 0 shows the forward pass only; step 1 puts the seed 1.00 on the output wire; each
later step runs one gate backward, in reverse topological order, writing the gradient
on each of its input wires (upstream × local). Every step is drawn with the same
layout (hidden gradients are drawn invisible), so paging through them only makes red
numbers appear. ``index.html`` pages through the steps with the arrow keys.
"""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path
from typing import Any

from .args import got, path_arg
from .errors import OverwriteError
from .graph import Graph, as_graph
from .render import (
    Reveal,
    caption_lines,
    diagram,
    drawn_by_graphc,
    evaluation_for,
    make_options,
    run_dot,
)
from .render_view import RenderError, display_names, fmt_value, make_view

__all__ = ["render_steps", "step_reveals"]

_FORMATS = ("svg", "png", "dot")


def step_reveals(graph: Graph, ev: Any, group: Any = None, precision: int = 2) -> list[Reveal]:
    """What each step shows: the gates done so far, the current gate, a caption line.

    >>> import graphc
    >>> g = graphc.parse("q = x + y; f = q * z")
    >>> [r.current for r in step_reveals(g, g.evaluate(x=-2, y=5, z=-4))]
    [None, None, 'mul#4', 'add#2']
    """
    view = make_view(graph, group)
    bw = graph.backward
    names = display_names(graph)  # the names the diagram shows, never internal ones
    f = names[graph.output]
    gates = [
        v
        for v in reversed(graph.order)
        if view.drawn[v] == v
        and v in bw.upstream
        and graph.nodes[v]["op"] not in ("input", "const")
    ]
    steps = [
        Reveal(frozenset(), None, "forward pass: every wire's value (green)"),
        Reveal(frozenset({"#out"}), None, f"backward starts: ∂{f}/∂{f} = 1 on the output wire"),
    ]
    done = {"#out"}
    for k, v in enumerate(gates, start=1):
        done.add(v)
        up = fmt_value(ev.nodes[v].upstream, precision)
        note = (
            f"step {k} of {len(gates)}: gate {view.labels[v]} {names[v]} sends its upstream "
            f"gradient {up} back, times its local gradient, along each input wire"
        )
        steps.append(Reveal(frozenset(done), v, note))
    return steps


def render_steps(
    graph: Graph,
    at: Any,
    directory: str | Path,
    fmt: str = "svg",
    overwrite: bool = False,
    **options: Any,
) -> list[Path]:
    """Write one diagram per backward step into ``directory``, and an ``index.html``.

    Args:
        graph: the graph.
        at: input values (``{"x": -2, ...}``) or an Evaluation; needed.
        directory: created if missing; graphc writes ``step_NN.<fmt>`` and
            ``index.html`` there and leaves other files alone. A file of those names
            that graphc did not write is not replaced: :class:`OverwriteError`, unless
            ``overwrite=True``.
        fmt: ``"svg"`` (default), ``"png"``, or ``"dot"`` (needs no Graphviz program).
        **options: as for :func:`graphc.render`.

    Returns:
        the paths written, steps first and ``index.html`` last.

    >>> import graphc, tempfile
    >>> g = graphc.parse("(x+y)*z")
    >>> out = render_steps(g, {"x": -2, "y": 5, "z": -4}, tempfile.mkdtemp(), fmt="dot")
    >>> [p.name for p in out]
    ['step_00.dot', 'step_01.dot', 'step_02.dot', 'step_03.dot', 'index.html']
    """
    graph = as_graph(graph)
    if not isinstance(fmt, str) or fmt not in _FORMATS:
        raise RenderError(f"steps can be written as {', '.join(_FORMATS)}, not {got(fmt)}")
    opts = make_options(options)
    ev = evaluation_for(graph, at)
    if ev is None:
        raise RenderError("the backward steps need a point: pass at={'x': ...} or --at x=...")
    directory = path_arg(directory, "directory")
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise RenderError(f"cannot create {str(directory)!r}: {e.strerror or e}") from None
    reveals = step_reveals(graph, ev, opts.group, opts.precision)
    names = [f"step_{k:02d}.{fmt}" for k in range(len(reveals))] + ["index.html"]
    if not overwrite:
        theirs = [n for n in names if not _ours(directory, n)]
        if theirs:
            shown = ", ".join(theirs[:3]) + (
                f" and {len(theirs) - 3} more" if len(theirs) > 3 else ""
            )
            raise OverwriteError(
                f"{directory} holds {shown}, which graphc did not write; pass overwrite=True"
                " (or --force) to replace them, or choose another folder"
            )
    # The longest caption line of all steps, drawn invisibly in each: one canvas width,
    # so the circuit does not move sideways while paging through the steps.
    pad = max((t for r in reveals for t in caption_lines(graph, ev, opts, r)), key=len)
    reveals = [dataclasses.replace(r, pad=pad) for r in reveals]
    written: list[Path] = []
    notes: list[str] = []
    for k, reveal in enumerate(reveals):
        source = diagram(graph, ev, opts, reveal).source
        data = source.encode() if fmt == "dot" else run_dot(source, fmt)
        path = directory / f"step_{k:02d}.{fmt}"
        path.write_bytes(data)
        written.append(path)
        notes.append(reveal.note)
    index = directory / "index.html"
    index.write_text(_index_html([p.name for p in written], notes, graph.to_text()))
    written.append(index)
    return written


#: The mark of the page graphc writes.
_PAGE_MARK = b'<meta name="generator" content="graphc render_steps">'


def _ours(directory: Path, name: str) -> bool:
    """Whether writing ``name`` in ``directory`` replaces nothing graphc did not write:
    it is missing, or it is a step or page graphc wrote (a PNG step drawn before PNGs
    carried graphc's mark counts as graphc's where the folder holds graphc's page)."""
    path = directory / name
    if not path.exists() and not path.is_symlink():
        return True
    if not path.is_file():
        return False
    page = directory / "index.html"
    if name == "index.html":
        return _PAGE_MARK in path.read_bytes()[:2000]
    if drawn_by_graphc(path):
        return True
    return path.suffix == ".png" and page.is_file() and _PAGE_MARK in page.read_bytes()[:2000]


def _index_html(files: list[str], notes: list[str], title: str) -> str:
    """A page showing one step at a time; ← → (or space, Home, End) page through them."""
    items = ",\n".join(
        f"  [{_js(name)}, {_js(note)}]" for name, note in zip(files, notes, strict=True)
    )
    return _PAGE.replace("@TITLE@", html.escape(title)).replace("@STEPS@", items)


def _js(text: str) -> str:
    escaped = text.replace("\\", "\\\\").replace('"', '\\"').replace("<", "\\u003c")
    return f'"{escaped}"'


_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="generator" content="graphc render_steps">
<title>Backward pass: @TITLE@</title>
<style>
 body { font-family: Helvetica, Arial, sans-serif; margin: 1.5em; }
 #pic { max-width: 100%; border: 1px solid #ddd; }
 #bar { margin: 0.6em 0; font-size: 1.1em; }
 button { font-size: 1em; }
</style>
</head>
<body>
<h2>Backward pass: @TITLE@</h2>
<div id="bar">
 <button id="prev" title="previous step (←)">←</button>
 <span id="count"></span>
 <button id="next" title="next step (→ or space)">→</button>
 <span id="note"></span>
</div>
<img id="pic" alt="">
<p>Keys: → or space: next step; ←: previous step; Home / End: first / last step.</p>
<script>
const steps = [
@STEPS@
];
let k = 0;
function show(i) {
  k = Math.max(0, Math.min(steps.length - 1, i));
  document.getElementById("pic").src = steps[k][0];
  document.getElementById("pic").alt = steps[k][1];
  document.getElementById("note").textContent = steps[k][1];
  document.getElementById("count").textContent = (k + 1) + " / " + steps.length;
}
document.addEventListener("keydown", (e) => {
  const next = ["ArrowRight", " ", "PageDown"], prev = ["ArrowLeft", "PageUp"];
  if (next.includes(e.key)) { show(k + 1); e.preventDefault(); }
  else if (prev.includes(e.key)) { show(k - 1); e.preventDefault(); }
  else if (e.key === "Home") { show(0); }
  else if (e.key === "End") { show(steps.length - 1); }
});
document.getElementById("prev").onclick = () => show(k - 1);
document.getElementById("next").onclick = () => show(k + 1);
show(0);
</script>
</body>
</html>
"""
