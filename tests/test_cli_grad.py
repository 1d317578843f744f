"""``graphc grad``: symbolic gradients, values at a point, standard input, exit codes."""

from __future__ import annotations

import io
import re
import subprocess
import sys

import pytest

from graphc.cli import main


def run(capsys, *argv, stdin=None, monkeypatch=None):
    if stdin is not None:
        monkeypatch.setattr(sys, "stdin", io.StringIO(stdin))
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_grad_symbolic_and_at_a_point(capsys):
    code, out, _ = run(capsys, "grad", "(x+y)z", "--at", "x=-2", "y=5", "z=-4")
    assert code == 0
    lines = out.splitlines()
    assert "∂f/∂x = z" in lines and "∂f/∂z = x + y" in lines
    assert "f = -12" in lines and "∂f/∂x = -4" in lines and "∂f/∂z = 3" in lines


def test_grad_prints_closed_forms_that_sympy_evaluates_badly(capsys):
    """SymPy evaluates while it prints: for softplus(-1e400 + (-8)^(1/3)) mpmath's log
    overflowed its integers (a fuzz finding), a raw OverflowError from the command."""
    text = "(sin(softplus(((-1e400) + (-8)^(1/3)))) * log((x + sin(x))))"
    code, out, err = run(capsys, "grad", text, "--at", "x=1")
    assert code == 0 and "Traceback" not in err
    assert "f = log(x + sin(x))*sin(softplus(-1000" in out and "∂f/∂x = " in out


def test_grad_says_when_sympy_fails_and_still_prints_the_numbers(capsys, monkeypatch):
    from graphc.graph import Graph

    def fails(self, node=None):
        raise OverflowError("too many digits in integer")

    monkeypatch.setattr(Graph, "to_sympy", fails)
    code, out, _ = run(capsys, "grad", "(x+y)z", "--at", "x=-2", "y=5", "z=-4")
    assert code == 0
    assert "(closed forms not printed: SymPy failed: OverflowError: too many digits" in out
    assert "∂f/∂x = -4" in out.splitlines() and "∂f/∂z = 3" in out.splitlines()


def test_grad_reads_standard_input(capsys, monkeypatch):
    code, out, _ = run(
        capsys, "grad", "-", "--wrt", "z", stdin="q = x + y\nf = q*z\n", monkeypatch=monkeypatch
    )
    assert code == 0 and "∂f/∂z = x + y" in out and "∂f/∂x" not in out


def test_grad_vector_point(capsys):
    code, out, _ = run(capsys, "grad", "total = w*x", "--at", "w=1,2", "x=3")
    plain = out.replace(".", "")
    # an array-valued f: the printed gradients say they are those of sum(f)
    assert code == 0 and "∂sum(total)/∂w = [3, 3]" in plain and "∂sum(total)/∂x = 3" in plain


@pytest.mark.parametrize(
    "argv, message",
    [
        (["grad", "(x+y"], "'(' is never closed"),
        (["grad", "x", "--at", "y=1"], "not an input"),
        (["grad", "x", "--at", "x"], "NAME=VALUE"),
    ],
)
def test_errors_exit_2_with_a_message(capsys, argv, message):
    code, _, err = run(capsys, *argv)
    assert code == 2 and message in err and "Traceback" not in err


def test_usage_error_is_one_line_exit_2():
    proc = subprocess.run([sys.executable, "-m", "graphc", "grad"], capture_output=True, text=True)
    assert proc.returncode == 2
    assert len(proc.stderr.strip().splitlines()) == 1


def test_a_name_repeated_in_wrt_is_printed_once(capsys) -> None:
    assert main(["grad", "x*y", "--at", "x=2", "y=3", "--wrt", "x, x"]) == 0
    out = capsys.readouterr().out
    assert out.count("∂f/∂x = 3") == 1 and "∂f/∂y" not in out


def test_grad_wrt_a_bound_name_prints_its_upstream_gradient(capsys):
    """--wrt q: ∂f/∂q = z, -4 at the notes' point (it printed a Python tuple holding an
    error, and exit status 0); an unknown name is an error with a did-you-mean."""
    code, out, err = run(capsys, "grad", "q = x + y; f = q z", "--wrt", "q,x", "--at", "x=-2",
                         "y=5", "z=-4")  # fmt: skip
    assert code == 0 and "∂f/∂q = z" in out and "∂f/∂q = -4" in out and "∂f/∂x = -4" in out
    code, out, err = run(capsys, "grad", "q = x + y; f = q z", "--wrt", "qq")
    assert code == 2 and "did you mean 'q'" in err and out == ""
    code, out, err = run(capsys, "grad", "X: (N, D); W: (D, C); s = X @ W; L = sum(s^2) / N",
                         "--wrt", "s", "--at", "X=[[1,2],[3,4]]", "W=[[1],[2]]")  # fmt: skip
    s = [1 * 1 + 2 * 2, 3 * 1 + 4 * 2]  # X @ W, one column
    assert code == 0 and "∂L/∂s = 1 / N * 2 * s" in out
    (line,) = [ln for ln in out.splitlines() if ln.startswith("∂L/∂s = [[")]
    assert [float(v) for v in re.findall(r"-?\d+\.?\d*", line)] == [2 * v / 2 for v in s]
