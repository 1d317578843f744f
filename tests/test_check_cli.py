"""``graphc check``: exit codes 0/1/2, --json, several claims, domains, stdin, golden output.

Golden files under tests/golden/check/ are refreshed only with GRAPHC_UPDATE_GOLDEN=1.
"""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import sympy as sp

from graphc.cli import main

GOLDEN = Path(__file__).parent / "golden" / "check"
UPDATE = os.environ.get("GRAPHC_UPDATE_GOLDEN") == "1"
SIG = "sigmoid(w*x+b)"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    try:
        code = main(["check", *argv])
    except SystemExit as e:  # argparse usage errors
        code = int(e.code or 0)
    out, err = capsys.readouterr()
    return code, out, err


def golden(name: str, text: str) -> None:
    path = GOLDEN / name
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text, encoding="utf-8")
    assert path.read_text(encoding="utf-8") == text, "run with GRAPHC_UPDATE_GOLDEN=1"


def test_right_claim_exits_0(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sigmoid(w*x + b)", "--wrt", "w", "--claim", f"{SIG}*(1-{SIG})*x")
    assert code == 0
    assert out == "✓ proved: the claim equals ∂f/∂w\n"


def test_wrong_claim_exits_1_with_the_counterexample(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "sigmoid(w*x + b)", "--wrt", "w", "--claim", f"{SIG}*(1-{SIG})")
    assert code == 1
    assert out.startswith("✗ wrong: at w=")
    assert "the claim is missing a factor x" in out
    golden("sigmoid_missing_x.txt", out)


def test_json_output_and_a_real_counterexample(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(
        capsys, "x^3 + x*y", "--claim", "x=3x^2 + x", "--claim", "y=x", "--json", "--seed", "5"
    )
    assert code == 1
    data = json.loads(out)
    assert data["ok"] is False and data["verdict"] == "wrong" and data["seed"] == 5
    px, py = data["partials"]
    assert (px["wrt"], px["verdict"], py["verdict"]) == ("x", "wrong", "proved")
    x, y = sp.symbols("x y", real=True)
    pt = {
        x: sp.Rational(repr(px["counterexample"]["x"])),
        y: sp.Rational(repr(px["counterexample"]["y"])),
    }
    true = float(sp.diff(x**3 + x * y, x).subs(pt))
    assert px["true_value"] == pytest.approx(true, rel=1e-12)
    assert px["claim_value"] == pytest.approx(float((3 * x**2 + x).subs(pt)), rel=1e-12)
    assert px["method"][0].startswith("symbolic:") and px["method"][1].startswith("numeric:")
    # same seed, same output
    assert run(capsys, "x^3 + x*y", "--claim", "x=3x^2 + x", "--claim", "y=x", "--json",
               "--seed", "5")[1] == out  # fmt: skip


def test_wrt_list_with_unnamed_claims(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = run(capsys, "(x+y)z", "--wrt", "x,z", "--claim", "z", "--claim", "x+y")
    assert code == 0
    assert out.count("✓ proved") == 2


def test_repeated_wrt_options_pair_with_the_claims_in_order(capsys):
    """--wrt x --claim z --wrt z --claim x+y read as --wrt x,z (the last --wrt won: two
    claims for one name, an error)."""
    code, out, _ = run(capsys, "(x+y)z", "--wrt", "x", "--claim", "z", "--wrt", "z",
                       "--claim", "x+y")  # fmt: skip
    assert code == 0 and "∂f/∂x" in out and "∂f/∂z" in out, out
    code, out, _ = run(capsys, "(x+y)z", "--wrt", "x", "--claim", "x+y", "--wrt", "z",
                       "--claim", "z")  # fmt: skip
    assert code == 1 and out.count("wrong") == 2, out


def test_domain_decides(capsys: pytest.CaptureFixture[str]) -> None:
    assert run(capsys, "sqrt(x^2)", "--wrt", "x", "--claim", "1", "--domain", "x>0")[0] == 0
    code, out, _ = run(capsys, "sqrt(x^2)", "--wrt", "x", "--claim", "1")
    assert code == 1 and "at x=-" in out


def test_staged_program_from_stdin(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    program = "sigy = sigmoid(y)\nnum = x + sigy\nf = num / (sigmoid(x) + (x+y)^2)\n"
    monkeypatch.setattr("sys.stdin", io.StringIO(program))
    code, out, _ = run(capsys, "-", "--claim", "sigy=dnum", "--claim", "num=dsigy", "-v")
    assert code == 0, out
    assert "method for ∂f/∂sigy" in out


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (("x^2", "--wrt", "x", "--claim", "2*x +"), "column 6"),
        (("x^2", "--wrt", "x", "--claim", "2x", "--domain", "x >> 0"), "column 4"),
        (("x^2", "--wrt", "q", "--claim", "2q"), "not an input"),
        (("x^2", "--claim", "2x"), "--wrt"),
        (("x^2", "--wrt", "x"), "--claim"),
        (("x^2", "--wrt", "x", "--claim", "2x", "--points", "0"), "at least 1"),
        (("x^2", "--wrt", "x", "--claim", "2x", "--bogus"), "unrecognized"),
    ],
)
def test_usage_and_parse_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: tuple[str, ...], message: str
) -> None:
    code, out, err = run(capsys, *argv)
    assert code == 2
    assert out == ""
    assert message in err


def test_json_of_a_tensor_counterexample_holds_its_arrays_as_lists(
    capsys: pytest.CaptureFixture[str],
) -> None:
    """--json of a wrong claim about a tensor program raised TypeError (an ndarray is not
    JSON); its counterexample and values are nested lists, and they are the numbers."""
    code, out, _ = run(capsys, "x: (3,); f = sum(log(x))", "--wrt", "x", "--claim", "2/x",
                       "--domain", "x > 0", "--json")  # fmt: skip
    assert code == 1
    part = json.loads(out)["partials"][0]
    x = part["counterexample"]["x"]
    assert len(x) == 3 and all(v > 0 for v in x)
    assert part["true_value"] == pytest.approx([1 / v for v in x])
    assert part["claim_value"] == pytest.approx([2 / v for v in x])
