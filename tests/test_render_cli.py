"""``graphc render`` and the step-by-step backward pass (``--steps``)."""

from __future__ import annotations

import re

import pytest

import graphc
from graphc.cli import main
from graphc.render_steps import render_steps

AT = ["--at", "x=-2", "y=5", "z=-4"]


def test_cli_writes_dot(tmp_path):
    out = tmp_path / "c.dot"
    assert main(["render", "(x+y)*z", *AT, "-o", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    for number in ("-2.00", "5.00", "-4.00", "3.00", "-12.00", "1.00"):
        assert number in text


def test_cli_prints_dot_and_options(capsys):
    argv = ["render", "q = x + y; f = q * z", *AT, "--local", "--highlight", "x"]
    assert main([*argv, "--precision", "3"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("digraph")
    assert "∂f/∂x = ∂f/∂q · ∂q/∂x = -4.000 · 1.000 = -4.000" in out
    assert "∂f/∂q = z = -4.000" in out


@pytest.mark.dot
def test_cli_svg(tmp_path):
    out = tmp_path / "c.svg"
    assert main(["render", "(x+y)*z", *AT, "-o", str(out)]) == 0
    assert ">-12.00<" in out.read_text(encoding="utf-8")


def test_cli_errors(tmp_path, capsys):
    assert main(["render", "(x+y)*z", *AT, "-o", str(tmp_path / "c.bmp")]) == 2
    assert "cannot tell the format" in capsys.readouterr().err
    assert main(["render", "(x+y)*z", "--at", "x=1", "-o", str(tmp_path / "c.dot")]) == 2
    assert "missing value" in capsys.readouterr().err
    with pytest.raises(SystemExit) as e:
        main(["render", "x", "--precision", "many"])
    assert e.value.code == 2


def test_cli_refuses_empty_paths(capsys):
    """An empty -o or --steps is refused (it was taken as no --steps: the diagram went
    to standard output and the folder asked for was never written)."""
    assert main(["render", "(x+y)*z", *AT, "--steps", ""]) == 2
    err = capsys.readouterr().err
    assert "the directory given is empty text: name a folder" in err
    assert main(["render", "(x+y)*z", *AT, "-o", ""]) == 2
    assert "the path given is empty text" in capsys.readouterr().err


def test_steps_write_one_diagram_per_gate_and_an_index(tmp_path):
    g = graphc.parse("1/(1+exp(-(w0*x0 + w1*x1 + w2)))")
    at = {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}
    written = render_steps(g, at, tmp_path / "steps", fmt="dot")
    # the notes' 8 gates, plus the forward pass and the seed
    assert len(written) == 8 + 2 + 1 and written[-1].name == "index.html"
    steps = [p.read_text(encoding="utf-8") for p in written[:-1]]
    red = [len(re.findall(r'COLOR="#d1242f"', s)) for s in steps]
    assert red[0] == 0 and red == sorted(red) and red[-1] > red[1]  # gradients appear
    assert "forward only" in steps[0]
    html = written[-1].read_text(encoding="utf-8")
    assert "ArrowRight" in html and "ArrowLeft" in html
    assert all(p.name in html for p in written[:-1])


@pytest.mark.dot
def test_cli_steps_svg(tmp_path, capsys):
    d = tmp_path / "lecture"
    assert main(["render", "(x+y)*z", *AT, "--steps", str(d)]) == 0
    names = sorted(p.name for p in d.iterdir())
    assert names == ["index.html", "step_00.svg", "step_01.svg", "step_02.svg", "step_03.svg"]
    assert "wrote 4 steps" in capsys.readouterr().err  # "wrote" goes to stderr


POINT = {"x": -2, "y": 5, "z": -4}


@pytest.mark.parametrize("fmt", ["dot", "svg", "png"])
def test_steps_never_replace_a_file_graphc_did_not_write(tmp_path, fmt, capsys):
    """A steps folder may hold the user's own index.html or step_00.<fmt>: it is kept, and
    the error says how to replace it; files graphc wrote there are written again."""
    g = graphc.parse("(x+y)*z")
    mine = tmp_path / "index.html"
    mine.write_text("<html>my own page</html>")
    with pytest.raises(graphc.OverwriteError, match=r"holds index\.html, which graphc did not"):
        render_steps(g, POINT, tmp_path, fmt=fmt)
    assert mine.read_text() == "<html>my own page</html>"
    assert not (tmp_path / f"step_00.{fmt}").exists()  # nothing written before the check
    assert main(["render", "(x+y)*z", "--at", "x=-2", "y=5", "z=-4", "--steps", str(tmp_path),
                 "--steps-format", fmt]) == 2  # fmt: skip
    assert "--force" in capsys.readouterr().err and mine.read_text() == "<html>my own page</html>"
    mine.unlink()
    step = tmp_path / f"step_01.{fmt}"
    step.write_bytes(b"my own drawing")
    with pytest.raises(graphc.OverwriteError, match=rf"holds step_01\.{fmt}, which graphc"):
        render_steps(g, POINT, tmp_path, fmt=fmt)
    written = render_steps(g, POINT, tmp_path, fmt=fmt, overwrite=True)  # asked: replaced
    assert step in written and step.read_bytes() != b"my own drawing"
    again = render_steps(graphc.parse("x*y + x"), {"x": 2, "y": 3}, tmp_path, fmt=fmt)
    assert again[-1] == tmp_path / "index.html"  # graphc's own files: written again
