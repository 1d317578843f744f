"""graphc.gradcheck and graphc.check_backward: checking gradient code, not formulas.

Oracles: gradients written by hand from calculus (tanh' = 1 - tanh², the cs231n notes'
staged sigmoid-neuron backward), and the finite differences gradcheck reports compared
with those closed forms.
"""

from __future__ import annotations

import numpy as np
import pytest

from graphc import check_backward, gradcheck
from graphc.errors import InputError
from graphc.gradcheck import relative_error

RNG = np.random.default_rng(42)
W = RNG.normal(size=(3, 4))
X = RNG.normal(size=4)


def layer(W: np.ndarray, x: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
    """f = sum(tanh(W @ x)), with its gradients by hand."""
    h = np.tanh(W @ x)
    dh = 1 - h**2
    return float(h.sum()), {"W": np.outer(dh, x), "x": W.T @ dh}


def test_relative_error_is_the_cs231n_formula() -> None:
    assert relative_error(1.0, 1.1) == pytest.approx(0.1 / 1.1)
    assert relative_error(-2.0, 2.0) == pytest.approx(2.0)
    assert relative_error(1e-12, -1e-12) == 0.0  # both below the floor
    assert relative_error(0.0, 1.0) == 1.0


def test_gradcheck_passes_a_correct_gradient() -> None:
    r = gradcheck(layer, W=W, x=X)
    assert r.ok, str(r)
    assert max(r.errors.values()) < 1e-8
    assert str(r).startswith("✓ gradients agree")


def test_gradcheck_catches_a_broken_entry_and_locates_it() -> None:
    def broken(W: np.ndarray, x: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        value, grads = layer(W, x)
        grads["W"] = grads["W"].copy()
        grads["W"][1, 2] += 0.5
        return value, grads

    r = gradcheck(broken, W=W, x=X)
    assert not r.ok
    assert r.worst.name == "W" and r.worst.index == (1, 2)
    assert r.errors["x"] < 1e-8
    # the finite difference it reports is the true gradient (tanh' by hand)
    true = (1 - np.tanh(W @ X) ** 2)[1] * X[2]
    assert r.worst.expected == pytest.approx(true, rel=1e-7)
    assert r.worst.got == pytest.approx(true + 0.5)
    assert "W[1, 2]" in str(r) and "WRONG" in str(r)


def test_gradcheck_draws_entries_of_a_large_input_as_grad_check_sparse_does() -> None:
    """Every entry of a 1,000,000-entry input took two calls of fn each: hours for one
    check. An input with more than ``checks`` entries (1,000) has that many drawn at
    random, and the report says how many of how many it checked."""
    w = np.linspace(-1.0, 1.0, 20_000).reshape(100, 200)
    calls = [0]

    def f(w: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        calls[0] += 1
        return float(np.sum(np.sin(w))), {"w": np.cos(w)}

    r = gradcheck(f, w=w)
    assert r.ok, str(r)
    assert calls[0] == 1 + 2 * 1000 and r.inputs[0].sampled == (1000, 20_000)
    assert "(1,000 of its 20,000 entries, drawn at random)" in str(r)
    # a wrong gradient everywhere is caught by any sample; the report's entry is one drawn
    r = gradcheck(lambda w: (float(np.sum(np.sin(w))), {"w": 1.01 * np.cos(w)}), w=w, seed=3)
    assert not r.ok and r.errors["w"] == pytest.approx(0.01 / 1.01, rel=1e-4)
    assert r.worst.got == pytest.approx(1.01 * np.cos(w[r.worst.index]))
    # small inputs, and checks=None, check every entry: nothing drawn
    assert gradcheck(f, w=w[:2, :3]).inputs[0].sampled is None
    calls[0] = 0
    assert gradcheck(f, w=w[:40, :40], checks=None).ok and calls[0] == 1 + 2 * 1600
    with pytest.raises(InputError, match="checks must be a whole number from 1"):
        gradcheck(f, w=w, checks=0)


def test_gradcheck_forgotten_chain_rule_factor() -> None:
    def no_chain(W: np.ndarray, x: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        value, grads = layer(W, x)
        return value, {"W": grads["W"], "x": W.T @ np.ones(3)}  # forgot tanh'

    r = gradcheck(no_chain, W=W, x=X)
    assert not r.ok and r.worst.name == "x" and r.errors["x"] > 1e-2


def test_gradcheck_scalars_tuples_and_array_values() -> None:
    assert gradcheck(lambda a: (a**3, 3 * a**2), a=1.7).ok
    assert not gradcheck(lambda a: (a**3, 2 * a**2), a=1.7).ok
    # an array value stands for its sum; grads as a tuple in input order
    assert gradcheck(lambda w, x: (w * x, (x, w)), {"w": [1.0, 2.0], "x": [3.0, 4.0]}).ok
    with pytest.raises(InputError, match="must return"):
        gradcheck(lambda a: a**2, a=1.0)
    with pytest.raises(InputError, match="needs the point"):
        gradcheck(lambda a: (a, 1.0))


@pytest.mark.parametrize("x", [[-1.0, -2.0], [-1.0, 2.0]])
def test_gradcheck_refuses_a_point_where_the_value_is_not_finite(x) -> None:
    """The square root of a negative entry makes f NaN, and every finite difference
    NaN: a gradient off by 7 was "✓ gradients agree, relative error 0" (NaN matching
    NaN), or WRONG against numeric NaN."""

    def off_by_seven(x: np.ndarray) -> tuple[np.ndarray, dict[str, np.ndarray]]:
        with np.errstate(invalid="ignore"):
            return np.sqrt(x), {"x": 0.5 / np.sqrt(x) + 7}

    with pytest.raises(InputError, match="the sum of the value is nan at this point, so"
                       " finite differences cannot check the gradients there"):  # fmt: skip
        gradcheck(off_by_seven, x=np.array(x))

    def inverse(a: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(divide="ignore"):
            return 1 / a, -1 / a**2

    with pytest.raises(InputError, match="the value is inf at this point"):
        gradcheck(inverse, a=0.0)
    assert not gradcheck(off_by_seven, x=np.array([1.0, 2.0])).ok  # a finite point


def neuron_backward(w0, x0, w1, x1, w2):
    """The cs231n notes' staged backward for the sigmoid neuron."""
    dot = w0 * x0 + w1 * x1 + w2
    f = 1.0 / (1 + np.exp(-dot))
    ddot = (1 - f) * f
    return f, {"w0": x0 * ddot, "x0": w0 * ddot, "w1": x1 * ddot, "x1": w1 * ddot, "w2": ddot}


NEURON = "1/(1+exp(-(w0*x0 + w1*x1 + w2)))"


def test_check_backward_accepts_the_notes_backward() -> None:
    shapes = {k: (2, 3) for k in ("w0", "x0", "w1", "x1", "w2")}
    r = check_backward(NEURON, neuron_backward, shapes=shapes, trials=2)
    assert r.ok, str(r)
    assert [i.name for i in r.inputs] == ["value", "w0", "x0", "w1", "x1", "w2"]


def test_check_backward_catches_a_missing_factor() -> None:
    def broken(w0, x0, w1, x1, w2):
        f, grads = neuron_backward(w0, x0, w1, x1, w2)
        grads["x1"] = f * (1 - f)  # forgot the factor w1
        return grads

    r = check_backward(NEURON, broken)
    assert not r.ok and r.worst.name == "x1"
    assert "x1" in str(r) and "WRONG" in str(r)


def test_check_backward_value_missing_grads_and_signatures() -> None:
    def wrong_value(x, y, z):
        return (x + y) * z + 1, {"x": z, "y": z, "z": x + y}

    r = check_backward("(x+y)*z", wrong_value)
    assert not r.ok and r.worst.name == "value"
    r = check_backward("(x+y)*z", lambda x, y, z: {"x": z, "y": z})
    assert not r.ok and r.worst.note == "no gradient returned"
    with pytest.raises(InputError, match="accept the inputs"):
        check_backward("(x+y)*z", lambda a, b: {})
    with pytest.raises(InputError, match="unknown inputs"):
        check_backward("x*y", lambda x, y: {"x": y, "y": x, "q": 0})


def test_check_backward_on_a_domain() -> None:
    def mine(x):
        return {"x": 1 / x}

    assert check_backward("log(x)", mine, domain="x>0", shapes={"x": (4, 4)}).ok


def test_check_backward_draws_every_point_inside_a_domain_that_relates_inputs() -> None:
    """A domain relating two inputs raised a raw KeyError (each input was drawn alone),
    and one naming no input was ignored."""

    def mine(x, y):  # f = sqrt(x - y): real only where x > y
        d = 0.5 / np.sqrt(x - y)
        return {"x": d, "y": -d}

    r = check_backward("sqrt(x - y)", mine, domain="x > y", trials=5)
    assert r.ok, str(r)
    with pytest.raises(InputError, match="the domain names w, not an input"):
        check_backward("sqrt(x - y)", mine, domain="w > 0")
    with pytest.raises(InputError, match="needs the inputs in one shape"):
        check_backward("sqrt(x - y)", mine, domain="x > y", shapes={"x": (2,)})


def test_check_backward_refuses_a_function_not_finite_at_any_point_drawn() -> None:
    """sqrt(-exp(x)) is NaN everywhere: a backward returning NaN "agreed" with graphc's
    NaN gradients, relative error 0. Points partly outside the domain still compare."""
    with pytest.raises(InputError, match="f is not finite at any of the 3 points drawn"):
        check_backward("sqrt(-exp(x))", lambda x: {"x": x * 0 + np.nan})
    with np.errstate(divide="ignore"):
        assert check_backward("log(x)", lambda x: {"x": 1 / x}).ok  # NaN where x < 0
        assert not check_backward("log(x)", lambda x: {"x": 2 / x}).ok
