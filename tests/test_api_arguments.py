"""Every argument of the Python API, given a value of the wrong kind, ends in an answer or
a ``GraphcError`` that names the argument: never a raw ``TypeError``, ``AttributeError``,
``ValueError`` or ``MemoryError`` from deep inside, and never hours of work (a sweep that
found 198 raw errors and a hang in ``check_backward(trials=10**400)``)."""

from __future__ import annotations

import re
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest
import sympy as sp

import graphc

G = graphc.parse("q = x + y; f = q * z")
AT = {"x": -2.0, "y": 5.0, "z": -4.0}
T = graphc.parse("x: (3,); W: (2, 3); f = sum(tanh(W @ x))")
TAT = {"x": np.ones(3), "W": np.ones((2, 3))}

JUNK: list[Any] = [
    None, 0, -5, 1.5, float("nan"), float("inf"), True, "", "x", "x,,y", "1+", [], ["x", 3],
    {}, {"x": "y"}, {"x": (3,)}, {"x": -1}, {"x": (2.5,)}, {"x": (-1,)}, {"x": (10**9,)},
    (1, 2), object(), np.array([1.0, 2.0]), np.array(["a"]), sp.Symbol("x"), b"x", 10**400,
    complex(1, 2), np.float32(2), lambda **k: 0,
]  # fmt: skip


def _mine(**k: Any) -> dict[str, Any]:
    return {n: np.zeros_like(v) for n, v in k.items()}


def _f(x: Any) -> Any:
    return x * x, {"x": 2 * x}


CALLS: dict[str, Callable[[Any, str], Any]] = {
    "compile(graph)": lambda j, tmp: graphc.compile(j),
    "compile(wrt)": lambda j, tmp: graphc.compile(G, wrt=j),
    "compile(target)": lambda j, tmp: graphc.compile(G, target=j),
    "compile(shapes)": lambda j, tmp: graphc.compile(G, shapes=j),
    "parse(text)": lambda j, tmp: graphc.parse(j),
    "parse(shapes)": lambda j, tmp: graphc.parse("x*w", j),
    "check(expr)": lambda j, tmp: graphc.check(j, "x", "y", points=10),
    "check(wrt)": lambda j, tmp: graphc.check("x*y", j, "y", points=10),
    "check(claim)": lambda j, tmp: graphc.check("x*y", "x", j, points=10),
    "check(domain)": lambda j, tmp: graphc.check("x*y", "x", "y", domain=j, points=10),
    "check(points)": lambda j, tmp: graphc.check("x*y", "x", "y", points=j),
    "check(seed)": lambda j, tmp: graphc.check("x*y", "x", "y", seed=j, points=10),
    "check(rtol)": lambda j, tmp: graphc.check("x*y", "x", "y", rtol=j, points=10),
    "check(budget)": lambda j, tmp: graphc.check("x*y", "x", "y", budget=j, points=10),
    "check(shapes)": lambda j, tmp: graphc.check("x*y", "x", "y", shapes=j, points=10),
    "evaluate": lambda j, tmp: G.evaluate(x=j, y=1.0, z=2.0),
    "value_and_grad": lambda j, tmp: graphc.compile(G).value_and_grad(x=j, y=1.0, z=2.0),
    "value_and_grad(out)": lambda j, tmp: graphc.compile(G).value_and_grad(**AT, out=j),
    "save(path)": lambda j, tmp: graphc.compile(G).save(j),
    "render(graph)": lambda j, tmp: graphc.render(j),
    "render(at)": lambda j, tmp: graphc.render(G, at=j),
    "render(path)": lambda j, tmp: graphc.render(G, path=j),
    "render(option)": lambda j, tmp: graphc.render(G, at=AT, rankdir=j),
    **{
        f"render({o})": (lambda j, tmp, o=o: graphc.render(G, at=AT, **{o: j}).source)
        for o in (
            "precision",
            "local",
            "symbolic",
            "highlight",
            "group",
            "cluster",
            "backward",
            "title",
        )
    },
    "render(tensor, highlight)": lambda j, tmp: graphc.render(T, at=TAT, highlight=j).source,
    "render(tensor, title)": lambda j, tmp: graphc.render(T, at=TAT, title=j).source,
    "render_steps(at)": lambda j, tmp: graphc.render_steps(G, j, tmp, fmt="dot"),
    "render_steps(directory)": lambda j, tmp: graphc.render_steps(G, AT, j, fmt="dot"),
    "render_steps(fmt)": lambda j, tmp: graphc.render_steps(G, AT, tmp, fmt=j),
    "gradcheck(fn)": lambda j, tmp: graphc.gradcheck(j, x=1.0),
    "gradcheck(value)": lambda j, tmp: graphc.gradcheck(_f, x=j),
    "gradcheck(eps)": lambda j, tmp: graphc.gradcheck(_f, x=1.0, eps=j),
    "gradcheck(tol)": lambda j, tmp: graphc.gradcheck(_f, x=1.0, tol=j),
    "check_backward(graph)": lambda j, tmp: graphc.check_backward(j, _mine),
    "check_backward(my_backward)": lambda j, tmp: graphc.check_backward(G, j),
    "check_backward(trials)": lambda j, tmp: graphc.check_backward(G, _mine, trials=j),
    "check_backward(shapes)": lambda j, tmp: graphc.check_backward(G, _mine, shapes=j),
    "check_backward(tol)": lambda j, tmp: graphc.check_backward(G, _mine, tol=j),
    "Graph.derivative": lambda j, tmp: G.derivative(j),
    "Graph.gradients": lambda j, tmp: G.gradients(j),
    "Graph.with_shapes": lambda j, tmp: G.with_shapes(j),
    "Graph.resolved": lambda j, tmp: G.resolved(j),
    "Graph.vjp": lambda j, tmp: G.vjp(j, "v"),
    "Graph.vjp(cotangent)": lambda j, tmp: G.vjp("x", j),
    "Graph.parameters(data)": lambda j, tmp: T.parameters(data=j),
    "Graph.parameters(params)": lambda j, tmp: T.parameters(params=j),
    "Graph.node": lambda j, tmp: G.node(j),
    "Graph.shape": lambda j, tmp: T.shape(j),
    "Graph.evaluate(tensor)": lambda j, tmp: T.evaluate(x=j, W=np.ones((2, 3))),
    "Compiled.forward": lambda j, tmp: graphc.compile(G).forward(x=j, y=1.0, z=2.0),
    "compile(c).value_and_grad": lambda j, tmp: graphc.compile(G, target="c").value_and_grad(
        x=j, y=1.0, z=2.0
    ),
}


@pytest.mark.parametrize("call", list(CALLS))
def test_any_value_in_any_argument_gives_an_answer_or_a_graphc_error(
    call, tmp_path, monkeypatch
) -> None:
    monkeypatch.chdir(tmp_path)  # a path such as "x" is written here
    for value in JUNK:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            try:
                CALLS[call](value, str(tmp_path / "out"))
            except graphc.GraphcError:
                pass
            except Exception as e:  # (the point: name what escaped)
                pytest.fail(f"{call} with {value!r}: {type(e).__name__}: {e}")


@pytest.mark.parametrize(
    ("call", "value", "message"),
    [
        ("compile(graph)", None, "graph must be a graphc Graph or program text, got NoneType"),
        ("compile(wrt)", 3, "wrt must be an input's name, names separated by commas or a list"),
        ("compile(wrt)", ["x", 3], "wrt must hold names (text), got int 3 in it"),
        ("compile(target)", 3, "unknown target int 3; choose one of numpy, math, c"),
        ("compile(shapes)", {"x": (2.5,)}, "shapes['x'] must be a shape such as (3,)"),
        ("parse(shapes)", {"x": (-1,)}, "shapes['x'] must be a shape such as (3,)"),
        ("parse(shapes)", "x", "shapes must map inputs to shapes ({'x': (3,)}), got str 'x'"),
        ("check(points)", 10**400, "points must be a whole number from 1 to 100,000"),
        ("check(points)", True, "points must be a whole number from 1 to 100,000, got True"),
        ("check(budget)", None, "budget (seconds) must be a finite number from 0, got NoneType"),
        ("check(rtol)", float("nan"), "rtol must be a finite number from 0 and below 1"),
        ("check(shapes)", {"x": (10**9,)}, "x has shape (1000000000,): 1,000,000,000 elements"),
        ("save(path)", None, "path must be a path (text or pathlib.Path), got NoneType"),
        ("render(graph)", 1.5, "graph must be a graphc Graph or program text, got float 1.5"),
        ("render(path)", 3, "path must be a path (text or pathlib.Path), got int 3"),
        ("render(local)", "yes", "local must be True or False, got str 'yes'"),
        ("render(title)", 13, "title must be text, got int 13"),
        ("render(highlight)", 0, "highlight must be text, got int 0"),
        ("render(group)", {"g": "q"}, "group must be 'auto' or a dict name -> gates"),
        ("render(precision)", 1.5, "precision must be an integer from 0 to 12, got float 1.5"),
        ("render_steps(fmt)", 3, "steps can be written as svg, png, dot, not int 3"),
        ("render_steps(directory)", None, "directory must be a path"),
        ("render_steps(directory)", "", "the directory given is empty text: name a folder"),
        ("save(path)", "", "the path given is empty text: name a file or folder ('.' for"),
        ("gradcheck(fn)", 3, "fn must be a function fn(**inputs) -> (value, grads), got int 3"),
        ("gradcheck(value)", "x", "input x: str 'x' is not a number or an array of numbers"),
        ("gradcheck(eps)", None, "eps (the step) must be a finite number, got NoneType"),
        ("check_backward(my_backward)", 3, "my_backward must be a function of the inputs"),
        ("check_backward(trials)", 10**400, "trials must be a whole number from 1 to 10,000"),
        ("check_backward(shapes)", {"x": (10**9,)}, "graphc draws at most 1,000,000"),
        ("check_backward(shapes)", {"x": ("N",)}, "arrays are drawn in sizes, give numbers"),
        ("Graph.derivative", None, "expected an input's name (text), got NoneType"),
        ("Graph.gradients", 1.5, "wrt must be an input's name, names separated by commas"),
        ("Graph.with_shapes", [], "shapes must map inputs to shapes ({'x': (3,)}), got list"),
    ],
)  # fmt: skip
def test_the_error_names_the_argument_and_what_it_got(call, value, message, tmp_path) -> None:
    with pytest.raises(graphc.GraphcError, match=re.escape(message)):
        CALLS[call](value, str(tmp_path / "out"))


def test_arguments_of_the_right_kind_still_work(tmp_path) -> None:
    """The readers accept every spelling the API documents."""
    assert graphc.compile(G, wrt="x, z").wrt == ("x", "z")
    assert graphc.compile(G, wrt=("y",)).wrt == ("y",)
    assert graphc.compile("x*w", shapes={"w": 3, "x": np.int64(3)}).value_and_grad(
        x=np.ones(3), w=np.ones(3)
    )[0].shape == (3,)
    assert graphc.parse("f = W @ x", {"W": ("N", 3), "x": (3,)}).shape("W") == ("N", 3)
    assert graphc.check("x*y", "x", "y", points=np.int64(5), budget=1).ok
    two = {"x": [2], "y": [2], "z": (2,)}
    assert graphc.check_backward(G, _mine, trials=np.int32(2), shapes=two).ok is False
    assert graphc.gradcheck(_f, {"x": np.float32(1.5)}, eps=np.float64(1e-6)).ok
    written = graphc.render_steps(G, AT, tmp_path / "steps", fmt="dot")
    assert written[-1].name == "index.html"
    assert graphc.compile(G).save(tmp_path / "m.py").exists()


RETURNED = [None, 1.0, (1.0,), (1.0, None), (1.0, {"x": "a"}), (1.0, {"x": np.ones(3)}),
            ("a", {"x": 1.0}), (1.0, {"x": 10**400}), (1.0, {"x": [[1, 2], [3]]}),
            (sum, {"x": 1.0}), (1.0, {"y": 1.0}), {"x": 1.0}]  # fmt: skip


@pytest.mark.parametrize("returned", RETURNED, ids=[repr(r)[:30] for r in RETURNED])
def test_a_function_that_returns_what_is_not_numbers_is_reported(returned) -> None:
    """gradcheck and check_backward read what the user's function returns: text, ragged
    lists, functions and ints past float's range are InputErrors that say what came back
    (they were raw TypeError, ValueError, OverflowError); a wrong shape or a missing
    gradient is a failed check, not an error."""
    for call in (
        lambda: graphc.gradcheck(lambda x: returned, x=np.ones(2)),
        lambda: graphc.check_backward(G, lambda x, y, z: returned),
    ):
        try:
            result = call()
        except graphc.InputError:
            continue
        assert not result.ok, result


def test_what_the_function_returned_is_named() -> None:
    message = "the gradient of x that the function returned is not a number"
    with pytest.raises(graphc.InputError, match=re.escape(message)):
        graphc.gradcheck(lambda x: (x * x, {"x": "a"}), x=1.0)


@pytest.mark.parametrize("target", ["math", "c"])
def test_python_floats_at_their_limits_are_graphc_errors_of_pythons_kind(target) -> None:
    """The math target (and the C target's path for Python floats) follows Python's float
    semantics: at a division by zero or past float's range it raises graphc's error,
    which is also the ZeroDivisionError or OverflowError Python raised (found by the
    sweep: 10**400 as an input raised a raw OverflowError)."""
    div = graphc.compile("x / y", target=target)
    with pytest.raises(graphc.errors.ZeroDivisionInputError, match="float division by zero"):
        div.value_and_grad(x=1.0, y=0.0)
    with pytest.raises(ZeroDivisionError):
        div.forward(x=1.0, y=0.0)
    big = graphc.compile("exp(x) + y", target=target)
    for x in (1000.0, 10**400):
        with pytest.raises(graphc.errors.OverflowInputError, match="cannot compute with these"):
            big.value_and_grad(x=x, y=1.0)
    with pytest.raises(OverflowError):
        big.forward(x=1000.0, y=1.0)
    with np.errstate(all="raise"), pytest.raises(FloatingPointError):  # asked for: kept
        graphc.compile("exp(x)").value_and_grad(x=np.array([1000.0]))


@pytest.mark.parametrize("target", ["numpy", "math", "c"])
def test_a_name_repeated_in_wrt_counts_once(target) -> None:
    """A sweep finding: compile(wrt="x,x") generated NumPy code that failed at every call
    (its out= arrays were unpacked for three results and got two)."""
    c = graphc.compile("x*y", wrt="x, x", target=target)
    assert c.wrt == ("x",)
    f, grads = c.value_and_grad(x=2.0, y=3.0)
    assert float(f) == 6.0 and {k: float(v) for k, v in grads.items()} == {"x": 3.0}
    assert graphc.compile("x*y", wrt=["y", "x", "y"]).wrt == ("y", "x")
