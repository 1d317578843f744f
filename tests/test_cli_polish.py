"""The command line as a new user meets it: version, warnings, streams, exit codes."""

from __future__ import annotations

import subprocess
import sys

import pytest

import graphc
from graphc.cli import main


def test_version_from_both_entry_points(capsys):
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"graphc {graphc.__version__}"
    out = subprocess.run([sys.executable, "-m", "graphc", "--version"],
                         capture_output=True, text=True, check=True).stdout  # fmt: skip
    assert out.strip() == f"graphc {graphc.__version__}"


def test_domain_warning_is_one_clean_line_naming_the_gate(capsys):
    assert main(["grad", "y = log(x)", "--at", "x=-1"]) == 0
    err = capsys.readouterr().err.strip().splitlines()
    assert err == ["graphc: warning: log gate 'y' at line 1, column 5: invalid value "
                   "encountered in log"]  # fmt: skip


def test_program_without_inputs_gets_a_clear_message(capsys):
    assert main(["grad", "x = 3"]) == 2
    err = capsys.readouterr().err
    assert "has no inputs" in err and "Traceback" not in err
    assert repr(graphc.parse("x = 3")) == "<graphc.Graph 0 gates, no inputs: 3>"
    assert repr(graphc.parse("x*y")) == "<graphc.Graph 1 gate, inputs x, y: x * y>"


def test_results_on_stdout_and_wrote_on_stderr(capsys, tmp_path):
    out = tmp_path / "c.dot"
    assert main(["render", "(x+y)*z", "-o", str(out)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and f"wrote {out}" in captured.err
    module = tmp_path / "m.py"
    assert main(["codegen", "x*y", "-o", str(module)]) == 0
    captured = capsys.readouterr()
    assert captured.out == "" and f"wrote {module}" in captured.err


def test_overwrite_message_names_the_flag(capsys, tmp_path):
    mine = tmp_path / "mine.py"
    mine.write_text("print('mine')\n")
    assert main(["codegen", "x*y", "-o", str(mine)]) == 2
    err = capsys.readouterr().err
    assert "--force" in err and "overwrite=True" not in err
    assert mine.read_text() == "print('mine')\n"


def test_strict_check_needs_a_proof(capsys):
    numeric = ["check", "sigmoid(x)", "--wrt", "x", "--claim", "exp(-x)/(1+exp(-x))^2",
               "--budget", "0"]  # fmt: skip
    assert main(numeric) == 0 and "agrees numerically" in capsys.readouterr().out
    assert main([*numeric, "--strict"]) == 4
    capsys.readouterr()
    assert main(["check", "x^2", "--wrt", "x", "--claim", "2*x", "--strict"]) == 0
    assert main(["check", "x^2", "--wrt", "x", "--claim", "x", "--strict"]) == 1


def test_check_help_maps_verdicts_to_exit_codes(capsys):
    with pytest.raises(SystemExit):
        main(["check", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for phrase in ("0 proved", "1 wrong", "2 usage", "3 undecided", "exits 4"):
        assert phrase in text


STAGED = "sigy = 1/(1+exp(-y))\nnum = x + sigy\nf = num / (sigmoid(x) + (x+y)^2)"


def test_positional_order_is_first_appearance_or_the_header():
    plain = graphc.compile(STAGED)
    assert plain.inputs == ("y", "x")  # y appears first
    assert "def value_and_grad(y, x, *, out=None):" in plain.source
    ordered = graphc.compile("(x, y) ->\n" + STAGED)
    assert ordered.inputs == ("x", "y")
    assert "def value_and_grad(x, y, *, out=None):" in ordered.source
    value, _ = ordered.value_and_grad(3, -4)  # x = 3, y = -4: the notes point
    want, _ = plain.value_and_grad(x=3.0, y=-4.0)
    assert float(value) == pytest.approx(float(want), rel=1e-15)
    with pytest.raises(graphc.ParseError, match="not in the header"):
        graphc.parse("(x, y) -> x*z")
    with pytest.raises(graphc.ParseError, match="twice in the header"):
        graphc.parse("(x, x) -> x*x")
    assert graphc.parse("(x + y) * z").inputs == ("x", "y", "z")  # not a header


def test_small_gradients_never_print_as_zero():
    # the staged example's exp branch carries ∂f/∂exp(-y) ≈ -0.00017 (0.00 at 2 decimals)
    text = "sigy = 1/(1+exp(-y)); num = x + sigy; f = num / (sigmoid(x) + (x+y)^2)"
    source = graphc.render(graphc.parse(text), at={"x": 3, "y": -4}).source
    import re

    shown = re.findall(r'POINT-SIZE="14">([-0-9.e]+)<', source)
    assert "-0.00017" in shown
    assert not [s for s in shown if float(s) == 0 and s not in ("0.00", "-0.00")]
    ev = graphc.parse(text).evaluate(x=3, y=-4)
    tiny = [
        n.upstream
        for n in ev.nodes.values()
        if n.upstream is not None and 0 < abs(n.upstream) < 0.005
    ]
    assert tiny and all(f"{float(t):.2g}" in shown for t in tiny)


def test_local_and_highlight_use_names_the_diagram_shows():
    import re

    g = graphc.parse("(x+y)*z")
    source = graphc.render(g, at={"x": -2, "y": 5, "z": -4}, local=True, highlight="x").source
    internal = set(g.names.values()) - set(g.inputs) - {"f"}  # add_1 and the like
    words = set(re.findall(r"[A-Za-z_]\w*", re.sub(r"<[^>]*>", " ", source)))
    assert not internal & words, internal & words
    assert "∂(x + y)/∂x = 1" in source and "∂f/∂(x + y) = z" in source
    assert "∂f/∂x = ∂f/∂(x + y) · ∂(x + y)/∂x = -4.00 · 1.00 = -4.00" in source


def test_names_sit_on_their_wires_and_the_output_has_an_arrowhead():
    g = graphc.parse("q = x + y; f = q * z")
    source = graphc.render(g, at={"x": -2, "y": 5, "z": -4}).source
    assert 'POINT-SIZE="16">q</FONT>  <FONT COLOR="#1a7f37" POINT-SIZE="14">3.00' in source
    assert 'POINT-SIZE="16">f</FONT>  <FONT COLOR="#1a7f37" POINT-SIZE="14">-12.00' in source
    assert "xlabel" not in source  # not under the gates
    out_edge = [line for line in source.splitlines() if '-> "#out"' in line]
    assert out_edge and "arrowhead=none" not in out_edge[0]
