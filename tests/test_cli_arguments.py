"""Every option of the command line, given an odd value, ends in a message and an exit
status (0-3), never a traceback (a sweep of 27 values over every option found
``check --budget 99999999999999999999``: an OverflowError from the timer)."""

from __future__ import annotations

import pytest

from graphc.cli import main

VALUES = ["", "x", "x=", "=3", "x=abc", "x=1e999", "x=[1,2", "x=[[1],[2,3]]", "-1", "0",
          "1e400", "99999999999999999999", "nan", "inf", "x,,y", "(", "x=(2,-1)", ".",
          "é"]  # fmt: skip

TEMPLATES = [
    ["grad", "x*y", "--at", "{v}"],
    ["grad", "x*y", "--wrt", "{v}"],
    ["grad", "{v}"],
    ["codegen", "x*y", "--target", "{v}"],
    ["codegen", "x*y", "--shape", "{v}"],
    ["codegen", "x*y", "--wrt", "{v}"],
    ["render", "x*y", "--at", "{v}", "-o", "o.dot"],
    ["render", "x*y", "--precision", "{v}", "-o", "o.dot"],
    ["render", "x*y", "--highlight", "{v}", "-o", "o.dot"],
    ["render", "x*y", "--group", "{v}", "-o", "o.dot"],
    ["render", "x*y", "-o", "{v}"],
    ["check", "x*y", "--wrt", "x", "--claim", "{v}", "--points", "20"],
    ["check", "x*y", "--wrt", "x", "--claim", "y", "--domain", "{v}", "--points", "20"],
    ["check", "x*y", "--wrt", "x", "--claim", "y", "--points", "{v}"],
    ["check", "x*y", "--wrt", "x", "--claim", "y", "--seed", "{v}", "--points", "20"],
    ["check", "x*y", "--wrt", "x", "--claim", "y", "--budget", "{v}", "--points", "20"],
    ["check", "x*y", "--wrt", "x", "--claim", "y", "--shape", "{v}", "--points", "20"],
    ["check", "x*y", "--wrt", "{v}", "--claim", "y", "--points", "20"],
    ["params", "W: (3, 4); f = sum(W)", "--data", "{v}"],
    ["params", "{v}"],
]


@pytest.mark.parametrize("template", TEMPLATES, ids=[" ".join(t) for t in TEMPLATES])
def test_odd_option_values_end_in_a_message_and_a_status(template, tmp_path, monkeypatch,
                                                         capsys) -> None:  # fmt: skip
    monkeypatch.chdir(tmp_path)  # -o writes here
    for value in VALUES:
        argv = [a.replace("{v}", value) for a in template]
        try:
            status = main(argv)
        except SystemExit as e:  # argparse refusing a value
            status = e.code
        out = capsys.readouterr()
        assert status in (0, 1, 2, 3), (argv, status, out.err[-500:])
        assert "Traceback" not in out.err, (argv, out.err[-500:])


@pytest.mark.parametrize(
    "argv",
    [
        ["grad", "x*y", "--at", "x=3", "--at", "y=5"],
        ["render", "x*y", "--at", "x=3", "--at", "y=5", "-o", "o.dot"],
        ["params", "W: (D, 4); f = sum(W)", "--shape", "D=3", "--shape", "W=3,4"],
        ["codegen", "f = sum(x * w)", "--shape", "x=3", "--shape", "w=3"],
        ["check", "x*y", "--wrt", "x", "--claim", "y", "--shape", "x=2", "--shape", "y=2"],
    ],
)
def test_a_repeated_list_option_adds_to_the_list(argv, tmp_path, monkeypatch, capsys) -> None:
    """``--at x=3 --at y=5`` is ``--at x=3 y=5``: the second ``--at`` replaced the first
    (argparse's default), and the command then said x had no value. A name given twice
    across them is still refused."""
    monkeypatch.chdir(tmp_path)
    assert main(argv) == 0, capsys.readouterr().err
    out = capsys.readouterr().out
    if argv[0] == "grad":
        assert "∂f/∂x = 5" in out and "∂f/∂y = 3" in out
    if argv[0] == "params":
        assert "W  (3, 4)" in out
    at = argv.index("--at" if "--at" in argv else "--shape")
    twice = [*argv[: at + 2], argv[at], argv[at + 1], *argv[at + 4 :]]  # one name twice
    assert main(twice) == 2, twice
    assert "twice" in capsys.readouterr().err
