"""graphc.render with the real Graphviz ``dot`` program: SVG text, formats, missing dot.

The numbers are the cs231n notes' (see /work/shared/reference-numbers.md).
"""

from __future__ import annotations

import html
import os
import re
import shutil

import pytest

import graphc
from graphc.render_view import RenderError

needs_dot = pytest.mark.skipif(
    shutil.which("dot") is None and os.environ.get("GRAPHC_SKIP_DOT") == "1",
    reason="GRAPHC_SKIP_DOT=1 and no dot program",
)

NEURON = "1/(1+exp(-(w0*x0 + w1*x1 + w2)))"
NEURON_AT = {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}


def svg_texts(path) -> list[str]:
    raw = path.read_text(encoding="utf-8")
    return [html.unescape(t) for t in re.findall(r"<text[^>]*>([^<]*)</text>", raw)]


@pytest.mark.dot
@needs_dot
def test_mul_add_svg_has_the_notes_numbers(tmp_path):
    path = tmp_path / "circuit.svg"
    graphc.render(graphc.parse("(x+y)*z"), at={"x": -2, "y": 5, "z": -4}, path=path)
    texts = svg_texts(path)
    for number in ("-2.00", "5.00", "-4.00", "3.00", "-12.00", "1.00"):
        assert number in texts, number
    assert texts.count("-4.00") >= 3  # value of z, gradients of x and y
    assert texts.count("3.00") >= 2  # value of x+y, gradient of z
    assert ">-12.00<" in path.read_text(encoding="utf-8")  # plain text, no &#45;


@pytest.mark.dot
@needs_dot
def test_sigmoid_neuron_svg(tmp_path):
    path = tmp_path / "neuron.svg"
    graphc.render(graphc.parse(NEURON), at=NEURON_AT, path=path)
    texts = svg_texts(path)
    for number in ("0.73", "-0.20", "0.39", "-0.39", "-0.59", "0.20", "-0.53"):
        assert number in texts, number


@pytest.mark.dot
@needs_dot
def test_max_circuit_svg_routes_to_z(tmp_path):
    path = tmp_path / "flow.svg"
    graphc.render(graphc.parse("2*(x*y + max(z, w))"), at=dict(x=3, y=-4, z=2, w=-1), path=path)
    texts = svg_texts(path)
    # the wire of z: value 2.00 then gradient 2.00; the wire of w: -1.00 then 0.00
    assert "-1.00" in texts and texts[texts.index("-1.00") + 1] == "0.00"
    assert texts.count("2.00") >= 4


@pytest.mark.dot
@needs_dot
@pytest.mark.parametrize("ext, magic", [(".png", b"\x89PNG"), (".pdf", b"%PDF"), (".svg", b"<")])
def test_formats_by_extension(tmp_path, ext, magic):
    path = tmp_path / f"c{ext}"
    graphc.render(graphc.parse("x*y"), at={"x": 1, "y": 2}, path=path)
    assert path.read_bytes().lstrip()[: len(magic)] == magic


def test_missing_dot_is_a_clear_error(monkeypatch, tmp_path):
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty directory: no dot
    g = graphc.parse("(x+y)*z")
    with pytest.raises(RenderError) as info:
        graphc.render(g, at={"x": -2, "y": 5, "z": -4}, path=tmp_path / "c.svg")
    message = str(info.value)
    assert "apt-get install graphviz" in message and "brew install graphviz" in message
    assert isinstance(info.value, graphc.GraphcError)
    # DOT text needs no program
    out = tmp_path / "c.dot"
    graphc.render(g, at={"x": -2, "y": 5, "z": -4}, path=out)
    assert out.read_text(encoding="utf-8").startswith("digraph")


STAGED = "sigy = 1/(1+exp(-y)); num = x + sigy; f = num / (sigmoid(x) + (x+y)^2)"


@pytest.mark.dot
@pytest.mark.parametrize("cluster", [False, True])
def test_every_wire_runs_left_to_right_clustered_or_not(cluster):
    import shlex

    from graphc.render import run_dot

    g = graphc.parse(STAGED)
    source = graphc.render(g, at={"x": 3, "y": -4}, cluster=cluster).source
    assert ("subgraph cluster_sigy" in source) == cluster
    x = {}
    for line in run_dot(source, "plain").decode().splitlines():
        parts = shlex.split(line)
        if parts and parts[0] == "node":
            x[parts[1]] = float(parts[2])
    gates = [v for v, d in g.nx.nodes(data=True) if d["op"] not in ("input", "const")]
    assert all(v in x for v in gates)
    for v in gates:  # each gate stands right of every gate that feeds it
        for a in g.nx.nodes[v]["args"]:
            if a in x:
                assert x[a] < x[v], (a, v, x[a], x[v])


def test_dot_that_runs_too_long_is_stopped(monkeypatch, tmp_path):
    import importlib
    import time

    render_module = importlib.import_module("graphc.render")  # graphc.render is the function

    fake = tmp_path / "dot"  # a dot that never finishes
    fake.write_text(f"#!/bin/sh\nexec {shutil.which('sleep')} 30\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", str(tmp_path))
    monkeypatch.setattr(render_module, "DOT_TIMEOUT", 0.5)
    start = time.monotonic()
    with pytest.raises(graphc.RenderError, match=r"ran past 0\.5 s"):
        graphc.render(graphc.parse("x*y"), path=tmp_path / "c.svg")
    assert time.monotonic() - start < 10


@pytest.mark.dot
def test_large_drawings_are_fast_or_refused_with_a_clear_error(tmp_path):
    import time

    start = time.monotonic()
    graphc.render(graphc.parse("+".join(["x"] * 80)), at={"x": 1.0}, path=tmp_path / "a.svg")
    assert time.monotonic() - start < 10  # took over 30 s with ordering=in
    big = graphc.parse("+".join(["x"] * 200))
    start = time.monotonic()
    with pytest.raises(graphc.RenderError, match="too large to draw"):
        graphc.render(big, at={"x": 1.0}, path=tmp_path / "b.svg")
    assert time.monotonic() - start < 5
    graphc.render(big, path=tmp_path / "b.dot")  # DOT text needs no program
    assert (tmp_path / "b.dot").read_text().startswith("digraph")


def test_dot_dies_with_a_killed_graphc(tmp_path):
    import os
    import signal
    import subprocess
    import sys
    import time

    pidfile = tmp_path / "dot.pid"
    fake = tmp_path / "dot"  # a dot that never finishes and says who it is
    fake.write_text(f"#!/bin/sh\necho $$ > {pidfile}\nexec {shutil.which('sleep')} 60\n")
    fake.chmod(0o755)
    code = f"import graphc; graphc.render(graphc.parse('x*y'), path={str(tmp_path / 'c.svg')!r})"
    env = {**os.environ, "PATH": f"{tmp_path}:{os.environ['PATH']}"}
    child = subprocess.Popen([sys.executable, "-c", code], env=env)
    deadline = time.monotonic() + 30
    while not pidfile.exists() or not pidfile.read_text().strip():
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    dot_pid = int(pidfile.read_text())
    child.send_signal(signal.SIGKILL)
    child.wait()
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            os.kill(dot_pid, 0)
        except ProcessLookupError:
            return  # gone with its parent
        time.sleep(0.05)
    os.kill(dot_pid, signal.SIGKILL)
    pytest.fail("dot outlived the graphc that started it")
