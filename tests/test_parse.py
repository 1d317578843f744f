"""The language: numbers, names, operators, implicit multiplication, programs, errors."""

from __future__ import annotations

import warnings

import pytest

import graphc
from graphc.parse import MAX_DEPTH


def value(text, **point):
    return float(graphc.parse(text).evaluate(**point).value)


@pytest.mark.parametrize(
    "text, expected",
    [
        ("1 + 2 * 3", 7),
        ("2 ^ 3 ^ 2", 512),  # right associative
        ("2 ** 3", 8),
        ("-2^2", -4),  # unary minus binds looser than ^
        ("2^-1", 0.5),
        ("(-2)^2", 4),
        ("1e-3 * 1000", 1),
        ("1.5 + .5 + 2.", 4),
        ("10 - 4 - 3", 3),  # left associative
        ("12 / 3 / 2", 2),
        ("- - 3", 3),
        ("+3", 3),
        ("1/2x", 1.0),  # (1/2)*x, implicit * binds like *
        ("1_000 * 2", 2000),  # digits grouped as in Python (it was 1 * _000 * 2)
        ("1_0.2_5e0_1 + .5_0", 103),
    ],
)
def test_arithmetic(text, expected):
    assert value(text, **({"x": 2.0} if "x" in text else {})) == expected


@pytest.mark.parametrize(
    "text, explicit",
    [
        ("(x+y)z", "(x+y)*z"),
        ("2x", "2*x"),
        ("2(x+1)", "2*(x+1)"),
        ("(x)(y)", "x*y"),
        ("x y", "x*y"),
        ("2x^2", "2*(x^2)"),
        ("-2x", "(-2)*x"),
        ("3 sin(x)", "3*sin(x)"),
    ],
)
def test_implicit_multiplication(text, explicit):
    point = dict(x=1.7, y=-0.4, z=2.5)
    a, b = graphc.parse(text), graphc.parse(explicit)
    pa = {k: point[k] for k in a.inputs}
    assert a.inputs == b.inputs
    assert float(a.evaluate(**pa).value) == pytest.approx(float(b.evaluate(**pa).value))


def test_xy_is_one_name():
    assert graphc.parse("xy + x_1 + w0").inputs == ("xy", "x_1", "w0")


@pytest.mark.parametrize(
    "fn, oracle",
    [
        ("exp", lambda x: 2.718281828459045**x),
        ("sigmoid", lambda x: 1 / (1 + 2.718281828459045 ** (-x))),
        ("relu", lambda x: max(x, 0.0)),
        ("abs", abs),
    ],
)
def test_functions(fn, oracle):
    assert value(f"{fn}(x)", x=-0.7) == pytest.approx(oracle(-0.7))


def test_two_argument_functions():
    assert value("max(a, b) - min(a, b)", a=2.0, b=5.0) == 3.0


def test_program_rebinding_comments_and_semicolons():
    text = """
    # micrograd style: a name may be rebound; later uses see the new binding
    c = a + b ; c = c * 2
    c += 1   # augmented assignment
    d = c^2
    """
    g = graphc.parse(text)
    assert g.inputs == ("a", "b")
    assert value(text, a=1.0, b=2.0) == 49.0


def test_newlines_inside_parentheses_continue_the_statement():
    assert value("f = (1 +\n 2)") == 3.0


def test_program_output_is_last_statement():
    g = graphc.parse("q = x + y\nf = q * z")
    assert g.nx.nodes[g.output]["name"] == "f"
    assert g.names[g.output] == "f"


@pytest.mark.parametrize(
    "text, message, line, column",
    [
        ("(x+y", "'(' is never closed", 1, 1),
        ("x +", "expected a number, a name or '('", 1, 4),
        ("x + * y", "expected a number, a name or '('", 1, 5),
        ("sigmod(x)", "did you mean 'sigmoid'", 1, 1),
        ("exp x", "needs its arguments in parentheses", 1, 5),
        ("max(x, y, z)", "max() takes 2 arguments, got 3", 1, 1),
        ("exp(x, y)", "exp() takes 1 argument, got 2", 1, 1),
        ("x $ y", "unexpected character '$'", 1, 3),
        # characters of printed math, with how graphc writes them (the lecture's wᵀx)
        ("x·y", "'·' (multiplication is written *: x*y, or x y; a dot product is w @ x)", 1, 2),
        ("x × y", "'×' (multiplication is written *: x*y, or x y)", 1, 3),
        ("-log(σ(z))", "'σ' (the sigmoid is written sigmoid(x))", 1, 6),
        ("Σ(x)", "'Σ' (a sum is written sum(x), or sum(x, axis=0) along an axis)", 1, 1),
        ("√x", "'√' (a square root is written sqrt(x))", 1, 1),
        ("a ⊙ b", "'⊙' (the product entry by entry is written *: x * y)", 1, 3),
        ("w - η * dw", "'η' (names are ASCII letters, digits and _: write eta)", 1, 5),
        ("café", "'é' (names are ASCII letters, digits and _)", 1, 4),
        ("x²", "'²' (powers are written ^ or **: x^2)", 1, 2),
        (
            "e = (y - w1ᵀx)^2",
            "'ᵀ' (a transpose is written x.T; the dot product wᵀx is w @ x)",
            1,
            12,
        ),
        ("x − y", "'−' (minus is written -)", 1, 3),
        ("a = 1\nb = a +\nc = 2", "expected a number", 2, 8),
        ("x)", "unmatched ')'", 1, 2),
        ("exp = 3", "is a function and cannot be assigned", 1, 1),
        ("x + 1\ny", "has no effect", 1, 1),
        ("", "empty program", 1, 1),
        ("lambda + 1", "reserved word", 1, 1),
        ("a = b = 1", "only a single name", 1, 7),
        ("(x)2", "missing operator", 1, 4),
        ("1__000 * x", "'_' after the number 1: digits are grouped", 1, 2),
        ("x + 2_x", "to multiply by a name, write 2*_x", 1, 6),
        ("1" * 500, "number literal longer", 1, 1),
        # blanks are read with the token after them: columns count each blank and tab
        ("x \t+  \t $", "unexpected character '$'", 1, 9),
        ("a = x  # note\n\t  b = a +  ", "expected a number", 2, 13),
        ("f = x + \\\n    * y", "expected a number, a name or '('", 2, 5),
        ("x\r\n  y z $", "unexpected character '$'", 2, 7),
        ("x +   ", "expected a number, a name or '('", 1, 7),
    ],
)
def test_parse_errors_say_what_and_where(text, message, line, column):
    with pytest.raises(graphc.ParseError) as info:
        graphc.parse(text)
    err = info.value
    assert isinstance(err, graphc.GraphcError)
    assert message in err.message
    assert (err.line, err.column) == (line, column)
    lines = str(err).splitlines()
    assert lines[0].startswith(f"line {line}, column {column}: ")
    if text and len(text) < 100:
        shown = text.splitlines()[line - 1].replace("\t", " ")  # a tab shows as one blank
        assert lines[1].strip() == shown.strip()
        caret = lines[2]
        assert caret.index("^") - 4 == column - 1  # caret under the spot


@pytest.mark.parametrize(
    "text, line, column",
    [
        ("1/(1+e^(-x))", 1, 6),  # the lecture's sigmoid, with e meant as Euler's number
        ("z = w*x\nf = 1/(1 + e**(-z))", 2, 12),
    ],
)
def test_e_to_a_power_warns_that_e_is_an_input(text, line, column):
    with pytest.warns(graphc.GraphcWarning, match=r"no constant e.*exp\(") as record:
        g = graphc.parse(text)
    assert f"line {line}, column {column}: " in str(record[0].message)
    assert len(record) == 1
    assert "e" in g.inputs  # still read as the input it is, as before


@pytest.mark.parametrize(
    "text",
    [
        "e = x^2\nf = e^2",  # e bound by the program before it is raised
        "e: ()\nf = e^x",  # e declared: the user means an input
        "f = exp(-x) + e * x",  # e read, but not as the base of a power
        "f = x^e",
    ],
)
def test_e_meant_as_a_name_does_not_warn(text):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        graphc.parse(text)


def test_parser_never_evaluates_python():
    for text in ("__import__('os').system('true')", "x.__class__", "open('f')", "[x]"):
        with pytest.raises(graphc.ParseError):
            graphc.parse(text)


def test_nesting_limit_is_a_parse_error_not_recursion():
    deep = "(" * (MAX_DEPTH + 1) + "x" + ")" * (MAX_DEPTH + 1)
    with pytest.raises(graphc.ParseError, match="nesting deeper"):
        graphc.parse(deep)


def test_input_order_is_first_appearance():
    g = graphc.parse("sigy = 1/(1+exp(-y))\nnum = x + sigy\nf = num / (sigmoid(x) + (x+y)^2)")
    assert g.inputs == ("y", "x")


def test_a_byte_order_mark_at_the_start_is_skipped() -> None:
    """Files saved by some Windows editors start with U+FEFF (invisible); it was an
    'unexpected character' at line 1, column 1. Columns count after it."""
    g = graphc.parse("\ufeffq = x + y\nf = q * z")
    assert g.inputs == ("x", "y", "z") and "\ufeff" not in g.to_text()
    ev = g.evaluate(x=-2.0, y=5.0, z=-4.0)
    assert float(ev.value) == -12.0
    with pytest.raises(graphc.ParseError) as caught:
        graphc.parse("\ufefff = x +")
    assert (caught.value.line, caught.value.column) == (1, 8)
    with pytest.raises(graphc.ParseError, match="unexpected character"):
        graphc.parse("f = x\ufeff")  # elsewhere it is still a stray character
