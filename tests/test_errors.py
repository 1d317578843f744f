"""Issue 13, section 3: every mistake a user can make is a GraphcError with a one-line
message (exit status 2 in the CLI), never a raw Python exception or a traceback."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import graphc
from graphc.cli import main


def _cli(argv: list[str], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    try:
        code = main(argv)
    except SystemExit as e:  # argparse's usage errors
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(code: int, err: str) -> None:
    assert code == 2, err
    assert err.startswith("graphc") and len(err.strip().splitlines()) == 1, err


def test_text_python_source_cannot_hold_is_escaped_in_the_docstring() -> None:
    for text in ["x*y # \x00", "x*y # \udcff", "x*y # \x1b[31m"]:
        c = graphc.compile(text)
        c.source.encode("utf-8")  # no lone surrogates
        # nor in the docstring's value: Python 3.13's compile cleans docstrings as UTF-8
        # and failed on one (UnicodeEncodeError); a surrogate is shown as its escape
        c.module.__doc__.encode("utf-8")
        assert "\x00" not in c.source and "\x1b" not in c.source
        f, g = c.value_and_grad(x=2.0, y=3.0)
        assert float(f) == 6.0 and float(g["x"]) == 3.0


def test_cli_codegen_with_an_undecodable_byte(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = _cli(["codegen", "x*y # \udcff"], capsys)  # what $'\xff' gives argv
    assert code == 0 and "def value_and_grad" in out


def test_save_errors(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    c = graphc.compile("x")
    with pytest.raises(graphc.GraphcError, match="cannot write"):
        c.save(tmp_path / "nodir" / "m.py")
    with pytest.raises(graphc.GraphcError, match="cannot write"):
        c.save(tmp_path, overwrite=True)
    link = tmp_path / "link.py"
    os.symlink(tmp_path / "elsewhere" / "target.py", link)
    with pytest.raises(graphc.GraphcError, match="link to nowhere"):
        c.save(link, overwrite=True)
    assert not (tmp_path / "elsewhere").exists()
    _one_line_error(*_cli(["codegen", "x", "-o", str(tmp_path / "nodir" / "m.py")], capsys)[::2])
    _one_line_error(*_cli(["codegen", "x", "-o", str(tmp_path), "--force"], capsys)[::2])
    _one_line_error(*_cli(["codegen", "x", "-o", str(link), "--force"], capsys)[::2])


def test_compiled_functions_report_shapes_as_input_errors() -> None:
    with pytest.raises(graphc.InputError):
        graphc.compile("x*y").value_and_grad(x=np.ones(2), y=np.ones(3))
    with pytest.raises(graphc.InputError):
        graphc.compile("x*y").forward(x=np.ones(2), y=np.ones(3))
    with pytest.raises(graphc.InputError):
        graphc.compile("exp(x)", target="math").value_and_grad(x=np.ones(3))


def test_gradcheck_and_check_backward_arguments() -> None:
    def fn(x: Any) -> Any:
        return np.sum(x * x), {"x": 2 * x}

    with pytest.raises(graphc.InputError, match="eps"):
        graphc.gradcheck(fn, x=np.ones(2), eps=0)
    with pytest.raises(graphc.InputError, match="empty"):
        graphc.gradcheck(fn, x=np.array([]))
    with pytest.raises(graphc.InputError, match="trials"):
        graphc.check_backward("x*x", lambda x: {"x": 2 * x}, trials=0)
    with pytest.raises(graphc.InputError, match="no inputs"):
        graphc.check_backward("3", lambda: {})
    with pytest.raises(graphc.InputError, match="seed"):
        graphc.check_backward("x*x", lambda x: {"x": 2 * x}, seed=-1)


def test_cli_bad_values(capsys: pytest.CaptureFixture[str]) -> None:
    _one_line_error(*_cli(["check", "x^2", "--wrt", "x", "--claim", "2*x", "--seed", "-1"],
                          capsys)[::2])  # fmt: skip
    _one_line_error(*_cli(["grad", "x*y", "--at", "x=1", "x=2", "y=1"], capsys)[::2])


def test_arguments_that_start_with_a_minus_sign(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, err = _cli(["check", "-log(sigmoid(w*x))", "--wrt", "w", "--claim",
                           "-sigmoid(-w*x)*x"], capsys)  # fmt: skip
    assert code == 0 and "proved" in out, err
    code, out, err = _cli(["grad", "-x*y", "--at", "x=2", "y=3"], capsys)
    assert code == 0 and "∂f/∂x = -3" in out, err
    code, out, _ = _cli(["grad", "-x", "--at", "x=-2"], capsys)
    assert code == 0 and "f = 2" in out


def test_deeply_nested_closed_forms(capsys: pytest.CaptureFixture[str]) -> None:
    g = graphc.parse("sin(" * 200 + "x" + ")" * 200)
    # refused at the first part past the limit, before SymPy multiplies 200 deep factors
    # (sorting them took 15 s, so a slow machine said "took over 5 s" instead)
    with pytest.raises(graphc.GraphcError, match=r"too deep.*a part of it nested 151 levels"):
        str(g.gradients()["x"])
    code, out, _ = _cli(["grad", "sin(" * 200 + "x" + ")" * 200, "--at", "x=0.5"], capsys)
    v, d = 0.5, 1.0  # the oracle: the chain rule by hand
    for _ in range(200):
        v, d = np.sin(v), d * np.cos(v)
    assert code == 0 and f"∂f/∂x = {d:.10g}" in out


_WORDS = ["grad", "codegen", "check", "render", "x*y", "-x", "--at", "x=1", "x=nan", "y=2",
          "--wrt", "x", "z", "--claim", "y", "-log(x)", "--target", "math", "--rtol", "inf",
          "--seed", "-1", "--points", "0", "sin(", "x=", "1e99999", "--json", "--domain",
          "x>0", "--force", "--budget", "nan", ")", "--local"]  # fmt: skip


@settings(max_examples=80, deadline=None)
@given(argv=st.lists(st.sampled_from(_WORDS), min_size=1, max_size=8))
def test_cli_fuzz_never_a_traceback(argv: list[str]) -> None:
    import contextlib
    import io

    err, out = io.StringIO(), io.StringIO()
    with contextlib.redirect_stderr(err), contextlib.redirect_stdout(out):
        try:
            code = main(argv)
        except SystemExit as e:
            code = int(e.code or 0)
    assert code in (0, 1, 2, 3), (argv, code)
    if code == 2:
        assert "Traceback" not in err.getvalue() and err.getvalue().strip(), argv


def test_warnings_point_at_the_users_line() -> None:
    """A warning names the caller's file and line, not a line inside graphc (a fixed
    stacklevel pointed at graph.py's gc_paused wrapper)."""
    from graphc.ctarget import CTargetWarning
    from graphc.errors import DomainWarning

    with pytest.warns(CTargetWarning) as caught:
        graphc.compile("x: (3,); sum(x)", target="c")
    with pytest.warns(DomainWarning) as caught2:
        graphc.parse("log(x)").evaluate(x=-1.0)
    for w in [*caught, *caught2]:
        assert w.filename == __file__, (w.filename, w.lineno)
