"""graphc.render: DOT text of circuits, checked against the cs231n notes' numbers.

Oracles: the numbers the notes print (see /work/shared/reference-numbers.md) and
SymPy derivatives of independently written expressions. Nothing here runs ``dot``.
"""

from __future__ import annotations

import os
import re
from pathlib import Path

import numpy as np
import pytest
import sympy as sp

import graphc
from graphc.render_view import RenderError, auto_groups

GOLDEN = Path(__file__).parent / "golden" / "render"
GREEN, RED = "#1a7f37", "#d1242f"

CIRCUITS = {
    "mul_add": ("q = x + y; f = q * z", {"x": -2, "y": 5, "z": -4}, {}),
    "sigmoid_neuron": (
        "1/(1+exp(-(w0*x0 + w1*x1 + w2)))",
        {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3},
        {},
    ),
    "sigmoid_gate": (
        "1/(1+exp(-(w0*x0 + w1*x1 + w2)))",
        {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3},
        {"group": "auto", "local": True},
    ),
    "backward_flow": ("2*(x*y + max(z, w))", {"x": 3, "y": -4, "z": 2, "w": -1}, {}),
}


def wires(source: str) -> dict[str, tuple[list[str], list[str]]]:
    """``{wire node id: (green texts, red texts)}`` read from DOT text."""
    found = {}
    for m in re.finditer(r'^\t"(#[wt] [^"]*)" \[label=<(.*)> margin', source, re.M):
        cells = re.findall(r'COLOR="([^"]+)" POINT-SIZE="\d+">([^<]*)</FONT>', m.group(2))
        found[m.group(1)] = (
            [t for c, t in cells if c == GREEN],
            [t for c, t in cells if c == RED],
        )
    return found


def into(source: str, src: str) -> list[tuple[list[str], list[str]]]:
    """The wires leaving node ``src`` (by id prefix ``#w src `` or ``#t src``)."""
    return [v for k, v in wires(source).items() if k.split(" ")[1] == src]


def dot_of(name: str) -> str:
    text, at, options = CIRCUITS[name]
    return graphc.render(graphc.parse(text), at=at, **options).source


# --- the notes' numbers -----------------------------------------------------------------


def test_mul_add_circuit_numbers():
    src = dot_of("mul_add")
    # notes: x=-2 (grad -4), y=5 (-4), z=-4 (3), q=3 (-4), f=-12 (1)
    assert into(src, "x") == [(["-2.00"], ["-4.00"])]
    assert into(src, "y") == [(["5.00"], ["-4.00"])]
    assert into(src, "z") == [(["-4.00"], ["3.00"])]
    q = graphc.parse(CIRCUITS["mul_add"][0]).node("q")
    assert into(src, q) == [(["3.00"], ["-4.00"])]
    assert (["-12.00"], ["1.00"]) in wires(src).values()
    assert "after backward" in src


def test_sigmoid_neuron_numbers_and_labels():
    src = dot_of("sigmoid_neuron")
    expected = {  # the notes' figure: input -> (value, gradient)
        "w0": ("2.00", "-0.20"),
        "x0": ("-1.00", "0.39"),
        "w1": ("-3.00", "-0.39"),
        "x1": ("-2.00", "-0.59"),
        "w2": ("-3.00", "0.20"),
    }
    for name, (v, g) in expected.items():
        assert into(src, name) == [([v], [g])]
    all_wires = list(wires(src).values())
    for pair in [
        ("-2.00", "0.20"),
        ("6.00", "0.20"),
        ("4.00", "0.20"),
        ("1.00", "0.20"),
        ("-1.00", "-0.20"),
        ("0.37", "-0.53"),
        ("1.37", "-0.53"),
        ("0.73", "1.00"),
    ]:
        assert ([pair[0]], [pair[1]]) in all_wires, pair
    for label in ('"*-1"', '"+1"', '"1/x"', "exp"):
        assert f"label={label}" in src, label
    assert "const#" not in src  # constants folded into their gates, as the notes draw


def test_sigmoid_gate_matches_gate_by_gate():
    g = graphc.parse(CIRCUITS["sigmoid_gate"][0])
    groups = auto_groups(g)
    assert list(groups) == ["sigmoid"] and len(groups["sigmoid"][0]) == 4
    src = dot_of("sigmoid_gate")
    assert 'label="σ"' in src and "label=exp" not in src
    # same input gradients as the gate-by-gate circuit
    for name in ("w0", "x0", "w1", "x1", "w2"):
        assert into(src, name)[0][1] == into(dot_of("sigmoid_neuron"), name)[0][1]
    # the σ gate's local gradient σ(1-σ) = 0.1966... (notes: ≈ 0.2)
    s = 1 / (1 + np.exp(-1.0))
    assert f"f·(1 - f) = {s * (1 - s):.2f}" in src


def test_max_routes_gradient():
    src = dot_of("backward_flow")
    assert into(src, "z") == [(["2.00"], ["2.00"])]
    assert into(src, "w") == [(["-1.00"], ["0.00"])]
    assert into(src, "x") == [(["3.00"], ["-8.00"])]
    assert into(src, "y") == [(["-4.00"], ["6.00"])]
    assert 'label="*2"' in src and "label=max" in src
    assert (["-20.00"], ["1.00"]) in wires(src).values()


@pytest.mark.parametrize("name", sorted(CIRCUITS))
def test_golden_dot(name):
    src = dot_of(name)
    assert src == dot_of(name)  # same input, byte-identical DOT
    path = GOLDEN / f"{name}.dot"
    if os.environ.get("GRAPHC_UPDATE_GOLDEN") == "1":
        path.write_text(src, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == src, (
        f"rerun with GRAPHC_UPDATE_GOLDEN=1 if {name} changed on purpose"
    )


# --- forks ---------------------------------------------------------------------------


def test_x_times_x_has_two_wires_each_with_its_contribution():
    src = graphc.render(graphc.parse("x*x"), at={"x": 3.0}).source
    branches = [k for k in wires(src) if k.startswith("#w x ")]
    assert len(branches) == 2
    assert [wires(src)[k][1] for k in branches] == [["3.00"], ["3.00"]]  # each: x · 1... = 3
    assert wires(src)["#t x"] == (["3.00"], ["6.00"])  # d(x²)/dx = 2x
    assert len(re.findall(r'-> "mul#\d+"', src)) == 2


@pytest.mark.parametrize(
    "text, build, point",
    [
        ("x*y + x", lambda x, y: x * y + x, {"x": 2.0, "y": 3.0}),
        ("exp(x) * sin(x) - x/y", lambda x, y: sp.exp(x) * sp.sin(x) - x / y, {"x": 0.7, "y": 1.5}),
        ("a = x*y; b = a + y; a * b", lambda x, y: (x * y) * (x * y + y), {"x": 1.3, "y": -0.4}),
    ],
)
def test_fan_out_contributions_add_up(text, build, point):
    X, Y = sp.symbols("x y")
    src = graphc.render(graphc.parse(text), at=point, precision=6).source
    subs = {X: point["x"], Y: point["y"]}
    for name, sym in (("x", X), ("y", Y)):
        trunk = wires(src).get(f"#t {name}")
        branches = [v[1][0] for k, v in wires(src).items() if k.startswith(f"#w {name} ")]
        oracle = float(sp.diff(build(X, Y), sym).subs(subs))
        if trunk is None:  # used once: its only wire carries the whole gradient
            assert len(branches) == 1
            assert float(branches[0]) == pytest.approx(oracle, abs=1e-6)
            continue
        assert len(branches) >= 2
        assert float(trunk[1][0]) == pytest.approx(oracle, abs=1e-6)
        assert sum(float(b) for b in branches) == pytest.approx(oracle, abs=1e-5)


# --- options ----------------------------------------------------------------------------


def test_structure_only_shows_argument_order():
    src = graphc.render(graphc.parse("(a - b) / c^2")).source
    assert "structure only" in src and "#w" not in src
    assert re.search(r'a -> "sub#\d+" \[label=a', src)
    assert re.search(r'b -> "sub#\d+" \[label=b', src)
    assert 'label="^2"' in src  # constant exponent folded into the gate


def test_highlight_writes_the_chain_rule():
    g = graphc.parse("q = x + y; f = q * z")
    src = graphc.render(g, at={"x": -2, "y": 5, "z": -4}, highlight="x", precision=0).source
    assert "∂f/∂x = ∂f/∂q · ∂q/∂x = -4 · 1 = -4" in src
    assert "#e36209" in src


def test_highlight_sums_over_paths():
    # f = x*y + x: two paths, ∂f/∂x = y + 1 = 4 at y = 3
    src = graphc.render(graphc.parse("x*y + x"), at={"x": 2, "y": 3}, highlight="x").source
    assert "sum over the 2 paths from x to f = 4.00" in src


def test_highlight_in_a_tensor_program_writes_the_total_its_evaluation_gives():
    """A fuzz finding: highlighting an input of a tensor program raised ValueError (the
    caption multiplied the paths' local gradients, but @ and sum pass on vector-Jacobian
    products, not factors). The path is written by its factors' names, then the total:
    Wᵀ·(1 - tanh²) for x, and for a scalar broadcast into a vector, the sum."""
    g = graphc.parse("x: (3,); W: (2, 3); f = sum(tanh(W @ x))")
    at = {"x": np.array([0.5, -1.0, 2.0]), "W": np.arange(6.0).reshape(2, 3) / 10}
    src = graphc.render(g, at=at, highlight="x", precision=3).source
    want = at["W"].T @ (1 - np.tanh(at["W"] @ at["x"]) ** 2)  # the notes' Wᵀ·(1 - tanh²)
    shown = ", ".join(f"{v:.3f}" for v in want)
    assert f"∂f/∂x = ∂f/∂tanh(W @ x) · ∂tanh(W @ x)/∂(W @ x) · ∂(W @ x)/∂x = [{shown}]" in src
    s = graphc.parse("x: (3,); s: (); f = sum(tanh(x * s))")
    x = np.array([1.0, 2.0, 3.0])
    src = graphc.render(s, at={"x": x, "s": 0.5}, highlight="s", precision=4).source
    assert f"= {np.sum(x * (1 - np.tanh(x * 0.5) ** 2)):.4f}" in src


def test_local_and_symbolic():
    g = graphc.parse("q = x + y; f = q * z")
    src = graphc.render(g, at={"x": -2, "y": 5, "z": -4}, local=True, symbolic=True).source
    assert "∂f/∂q = z = -4.00" in src  # notes: local gradient of q·z wrt q is z
    assert "∂f/∂z = q = 3.00" in src
    assert "= x + y" in src  # ∂f/∂z as a formula


def test_symbolic_labels_write_functions_as_the_other_labels_do():
    """The formulas were SymPy's text (Max(x, y), Heaviside(x - y)) beside labels that
    write max(x, y): one diagram, two spellings."""
    src = graphc.render("f = max(x, y) * abs(x)", at={"x": 2, "y": 1}, local=True,
                        symbolic=True).source  # fmt: skip
    assert "= abs(x)·heaviside(x - y)" in src and "∂max(x, y)/∂x = heaviside(x - y)" in src
    assert not re.search(r"\b(Max|Min|Abs|Heaviside)\(", src)


def test_symbolic_diagrams_show_long_closed_forms_as_an_ellipsis() -> None:
    """A wire shows its formula's first 40 characters. A 40-gate program's closed forms
    in the inputs run past 200,000 operations: the diagram raised "too large to print",
    and at 30 gates took 17 s to print formulas it then cut. Now only closed forms of at
    most 1,000 operations are built; the others show "…"."""
    from benchmarks.workloads import random_dag

    for gates, shown in ((40, {"1"}), (3, None)):
        src = graphc.render(graphc.parse(random_dag(gates, seed=0).text), symbolic=True).source
        formulas = set(re.findall(r">= ([^<]*)<", src))
        if shown is not None:  # far from the output: every formula but ∂f/∂f's is long
            assert formulas == {"…", *shown}
        else:  # a small program: every formula written out
            assert "…" not in formulas and len(formulas) > 2


def test_precision_arrays_and_caption():
    g = graphc.parse("x*y")
    src = graphc.render(g, at={"x": np.array([1.0, 2.0, 3.0]), "y": 2.0}, precision=1).source
    assert "[1.0, 2.0, 3.0]" in src and "[2.0, 4.0, 6.0]" in src
    assert "0.7311" in graphc.render(graphc.parse("sigmoid(x)"), at={"x": 1}, precision=4).source
    assert "forward only" in graphc.render(g, at={"x": 1, "y": 2}, backward=False).source


def test_derivative_graph_renders():
    g = graphc.parse("x^3 * y")
    X, Y = sp.symbols("x y")
    d = g.derivative("x")
    src = graphc.render(d, at={"x": 2.0, "y": 5.0}).source
    oracle = float(sp.diff(X**3 * Y, X).subs({X: 2, Y: 5}))  # 60
    assert f"{oracle:.2f}" in src


def test_cluster_and_explicit_group():
    g = graphc.parse("sigy = 1/(1+exp(-y)); num = x + sigy; f = num * x")
    src = graphc.render(g, at={"x": 3, "y": -4}, cluster=True).source
    assert "subgraph cluster_sigy" in src and "subgraph cluster_num" in src
    gates = [n for n, d in g.nx.nodes(data=True) if d["op"] in ("neg", "exp", "add", "div")]
    grouped = [n for n in gates if n != g.node("num")]
    src = graphc.render(g, at={"x": 3, "y": -4}, group={"sigmoid": grouped}).source
    assert 'label="σ"' in src


def test_bad_options_are_render_errors():
    g = graphc.parse("x*y")
    with pytest.raises(RenderError, match="did you mean 'precision'"):
        graphc.render(g, precison=3)
    with pytest.raises(RenderError, match="not a gate"):
        graphc.render(g, group={"sigmoid": ["x"]})
    two = graphc.parse("a*b + a/b")
    muls = [n for n, d in two.nx.nodes(data=True) if d["op"] in ("mul", "div")]
    with pytest.raises(RenderError, match="one output gate"):
        graphc.render(two, group={"pair": muls})
    with pytest.raises(graphc.GraphcError, match="no node called"):
        graphc.render(g, at={"x": 1, "y": 2}, highlight="zz")
    with pytest.raises(RenderError, match="format"):
        graphc.render(g, path="out.jpeg")


def test_mimebundle_never_raises(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))
    g = graphc.parse("x*y")
    bundle = g._repr_mimebundle_()
    assert "text/plain" in bundle and "apt-get install graphviz" in bundle["text/plain"]
    ev = g.evaluate(x=1, y=2)
    assert "text/plain" in ev._repr_mimebundle_()


def test_labels_are_drawn_as_integers_and_floats_keep_their_precision():
    """y = [0, 2] was drawn [0.00, 2.00]: labels are classes, not values."""
    g = graphc.parse("s: (N, C); y: (N,) int; L = mean(logsumexp(s, axis=1) - pick(s, y))")
    at = {"s": np.array([[1, 2, 3], [3, 4, 7]]), "y": np.array([0, 2])}
    src = graphc.render(g, at=at).source
    assert "(N,)  [0, 2]<" in src and "y = [0, 2]" in src
    assert "(N, C)  [[1.00, 2.00, 3.00], [3.00, 4.00, 7.00]]<" in src  # ints given, floats drawn


def test_highlight_leaves_out_paths_that_pass_no_gradient():
    """X → N (the size sum(...)/N reads) carries no gradient: it was listed as a path,
    ∂L/∂N · ∂N/∂X, beside the one that does."""
    g = graphc.parse("X: (N, D); W: (D, C); L = sum((X @ W)^2) / N")
    at = {"X": np.array([[1.0, 2.0], [3.0, 4.0]]), "W": np.eye(2)}
    src = graphc.render(g, at=at, highlight="X").source
    assert "∂N/∂X" not in src and "sum over" not in src
    assert "∂(X @ W)/∂X = [[1.00, 2.00], [3.00, 4.00]]" in src  # 2 (X @ W) @ Wᵀ / N = X
