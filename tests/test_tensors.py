"""Tensor programs: the lecture's classifiers, losses and networks against independent oracles.

Oracles: NumPy forward functions written here by hand (their central finite differences
check graphc's gradients), SymPy (the worked derivations are proved), PyTorch and JAX
where installed. graphc's evaluation and its generated code are each compared with
those oracles, never only with each other.
"""

from __future__ import annotations

import re
import warnings

import numpy as np
import pytest
import sympy as sp
from hypothesis import example, given, settings
from hypothesis import strategies as st

import graphc
from graphc.ctarget import CTargetWarning
from graphc.errors import ShapeError

RNG = np.random.default_rng(20261127)


def fd_grad(fn, point, name, eps=1e-6):
    """Central finite differences of the scalar fn(**point) with respect to point[name]."""
    base = np.array(point[name], dtype=np.float64)
    grad = np.zeros_like(base)
    for idx in np.ndindex(base.shape):
        up, down = base.copy(), base.copy()
        up[idx] += eps
        down[idx] -= eps
        grad[idx] = (fn(**{**point, name: up}) - fn(**{**point, name: down})) / (2 * eps)
    return grad


def lse(s, axis):
    m = s.max(axis=axis, keepdims=True)
    return (np.log(np.exp(s - m).sum(axis=axis, keepdims=True)) + m).squeeze(axis)


# --- the workloads: program text, a NumPy forward written independently, a point ---


def _two_layer(act):
    np_act = {"relu": lambda z: np.maximum(z, 0), "tanh": np.tanh,
              "sigmoid": lambda z: 1 / (1 + np.exp(-z))}[act]  # fmt: skip
    text = f"""
    X: (N, D); y: (N,) int
    W1: (D, H); b1: (H,); W2: (H, C); b2: (C,)
    h = {act}(X @ W1 + b1)
    s = h @ W2 + b2
    loss = mean(logsumexp(s, axis=1) - pick(s, y)) + 0.5 * reg * (sum(W1^2) + sum(W2^2))
    """

    def forward(X, y, W1, b1, W2, b2, reg):
        h = np_act(X @ W1 + b1)
        s = h @ W2 + b2
        data = np.mean(lse(s, 1) - s[np.arange(len(y)), y])
        return data + 0.5 * reg * ((W1**2).sum() + (W2**2).sum())

    N, D, H, C = 6, 4, 5, 3
    point = dict(X=RNG.normal(size=(N, D)), y=RNG.integers(0, C, N),
                 W1=RNG.normal(size=(D, H)), b1=RNG.normal(size=H) + 0.3,
                 W2=RNG.normal(size=(H, C)), b2=RNG.normal(size=C),
                 reg=np.float64(0.1))  # fmt: skip
    return text, forward, point


def _softmax_ce():
    text = "S: (N, C); y: (N,) int\nL = mean(logsumexp(S, axis=1) - pick(S, y))"

    def forward(S, y):
        return np.mean(lse(S, 1) - S[np.arange(len(y)), y])

    return text, forward, dict(S=RNG.normal(size=(5, 4)), y=RNG.integers(0, 4, 5))


def _hinge():
    # The lecture's multiclass SVM loss, Σ_{j≠y_i} max(0, s_j - s_{y_i} + 1), from the
    # ops: the j = y_i term of the sum is max(0, 1) = 1, subtracted.
    text = """
    X: (N, D); y: (N,) int; W: (D, C)
    s = X @ W
    margins = max(0, s - pick(s, y, keepdims=True) + 1)
    L = mean(sum(margins, axis=1) - 1)
    """

    def forward(X, y, W):
        s = X @ W
        correct = s[np.arange(len(y)), y][:, None]
        m = np.maximum(0, s - correct + 1)
        m[np.arange(len(y)), y] = 0
        return m.sum() / len(y)

    point = dict(X=RNG.normal(size=(6, 3)), y=RNG.integers(0, 4, 6), W=RNG.normal(size=(3, 4)))
    return text, forward, point


def _squared_error():
    text = "X: (N, D); Y: (N,); w: (D,)\nE = sum((Y - X @ w)^2)"

    def forward(X, Y, w):
        return np.sum((Y - X @ w) ** 2)

    return text, forward, dict(X=RNG.normal(size=(7, 3)), Y=RNG.normal(size=7),
                               w=RNG.normal(size=3))  # fmt: skip


def _logistic_neuron():
    text = "w: (D,); x: (D,)\np = sigmoid(w @ x + b)"

    def forward(w, x, b):
        return 1 / (1 + np.exp(-(w @ x + b)))

    return text, forward, dict(w=RNG.normal(size=4), x=RNG.normal(size=4), b=np.float64(0.2))


WORKLOADS = {
    "2-layer relu": _two_layer("relu"),
    "2-layer tanh": _two_layer("tanh"),
    "2-layer sigmoid": _two_layer("sigmoid"),
    "softmax cross-entropy": _softmax_ce(),
    "hinge loss": _hinge(),
    "squared error": _squared_error(),
    "logistic neuron": _logistic_neuron(),
}


@pytest.mark.parametrize("name", WORKLOADS)
def test_gradients_match_finite_differences_of_numpy(name):
    text, forward, point = WORKLOADS[name]
    graph = graphc.parse(text)
    ev = graph.evaluate(**point)
    assert float(ev.value) == pytest.approx(forward(**point), rel=1e-12)
    compiled = graphc.compile(graph)
    value, grads = compiled.value_and_grad(**point)
    assert float(value) == pytest.approx(forward(**point), rel=1e-12)
    for wrt in graph.differentiable:
        want = fd_grad(forward, point, wrt)
        np.testing.assert_allclose(ev.grads[wrt], want, rtol=1e-5, atol=1e-7, err_msg=wrt)
        np.testing.assert_allclose(grads[wrt], want, rtol=1e-5, atol=1e-7, err_msg=wrt)
        assert np.shape(grads[wrt]) == np.shape(point[wrt])


def test_linear_classifier_scores_of_the_notes_figure():
    W = np.array([[0.2, -0.5, 0.1, 2.0], [1.5, 1.3, 2.1, 0.0], [0, 0.25, 0.2, -0.3]])
    x = np.array([56.0, 231, 24, 2])
    b = np.array([1.1, 3.2, -1.2])
    text = "W: (K, D); x: (D,); b: (K,)\ns = W @ x + b"
    ev = graphc.parse(text).evaluate(W=W, x=x, b=b)
    np.testing.assert_allclose(ev.value, W @ x + b, rtol=1e-15)
    value, grads = graphc.compile(text).value_and_grad(W=W, x=x, b=b)
    np.testing.assert_allclose(value, W @ x + b, rtol=1e-15)
    # gradients of sum(s): each row of W gets x, b gets ones
    np.testing.assert_array_equal(grads["W"], np.tile(x, (3, 1)))
    np.testing.assert_array_equal(grads["b"], np.ones(3))
    assert graphc.parse(text).shape("s") == ("K",)


@pytest.mark.parametrize(
    ("program", "claim", "wrong"),
    [
        ("w1: (D,); x: (D,)\ne = (y - w1 @ x)^2", "-2*x*(y - w1 @ x)", "-2*(y - w1 @ x)"),
        ("w1: (D,); x: (D,)\ne = -log(sigmoid(w1 @ x))", "-sigmoid(-(w1 @ x))*x",
         "-sigmoid(w1 @ x)*x"),
    ],
)  # fmt: skip
def test_the_lectures_worked_derivations_are_proved_and_wrong_ones_refuted(program, claim, wrong):
    ok = graphc.check(program, "w1", claim)
    assert ok.verdict == "proved", str(ok)
    bad = graphc.check(program, "w1", wrong)
    assert bad.verdict == "wrong"
    point = bad.main.counterexample
    # the counterexample is real: recompute both sides at it with NumPy
    w1, x = point["w1"], point["x"]
    true = graphc.parse(program).evaluate(**point).grads["w1"]
    assert not np.allclose(bad.main.claim_value, true)
    if "sigmoid" in program:
        np.testing.assert_allclose(true, -x / (1 + np.exp(w1 @ x)), rtol=1e-12)
    else:
        np.testing.assert_allclose(true, -2 * x * (point["y"] - w1 @ x), rtol=1e-12)


_CHAIN_1 = "w1: (D,); x: (D,)\nh1 = w1 @ x\ne = (y - h1)^2"
_CHAIN_2 = "w1: (D,); x: (D,)\nh1 = w1 @ x\nh2 = sigmoid(h1)\ne = -log(h2)"


@pytest.mark.parametrize(
    ("program", "wrt", "claim", "wrong", "oracle"),
    [
        (_CHAIN_1, "h1", "-2*(y - h1)", "2*(y - h1)", lambda p: -2 * (p["y"] - p["w1"] @ p["x"])),
        (_CHAIN_2, "h2", "-1/h2", "1/h2", lambda p: -(1 + np.exp(-(p["w1"] @ p["x"])))),
        (_CHAIN_2, "h1", "-sigmoid(-h1)", "sigmoid(h1)",
         lambda p: -1 / (1 + np.exp(p["w1"] @ p["x"]))),
        ("X: (N, D); W: (D, C)\nh = relu(X @ W)\nL = sum(h^2)", "h", "2*h", "h",
         lambda p: 2 * np.maximum(p["X"] @ p["W"], 0)),
    ],
)  # fmt: skip
def test_the_upstream_gradient_at_a_bound_name_of_a_tensor_program(program, wrt, claim, wrong,
                                                                  oracle):  # fmt: skip
    """The lecture's chains step by step: ∂e/∂h1 = -2(y - h1), ∂e/∂h2 = -1/h2 (they were
    'not an input' for tensor programs; scalar programs took them already)."""
    ok = graphc.check(program, wrt, claim)
    assert ok.verdict == "proved", str(ok)
    assert ok.main.derivative_text == graphc.parse(program).gradients([wrt])[wrt]
    bad = graphc.check(program, wrt, wrong)
    assert bad.verdict == "wrong", str(bad)
    np.testing.assert_allclose(bad.main.true_value, oracle(bad.main.counterexample), rtol=1e-12)
    assert not np.allclose(bad.main.claim_value, bad.main.true_value)


def test_a_tensor_claim_about_labels_or_an_unknown_name_is_an_input_error():
    text = "X: (N, D); y: (N,) int; s = X * 2; L = mean(logsumexp(s, axis=1) - pick(s, y))"
    with pytest.raises(graphc.InputError, match="integer labels"):
        graphc.check(text, "y", "1")
    with pytest.raises(graphc.InputError, match="did you mean 's'"):
        graphc.check(text, "ss", "1")


_TWO_LAYER = ("X: (N, D); W1: (D, H); b1: (H,); W2: (H, C); b2: (C,)\n"
              "h = relu(X @ W1 + b1)\ns = h @ W2 + b2\nL = sum(s^2)")  # fmt: skip


@pytest.mark.parametrize(
    ("wrt", "claim", "hint"),
    [
        ("W2", "h.T @ ds", None),
        ("b2", "sum(ds, axis=0)", None),
        ("h", "ds @ W2.T", None),
        ("W1", "X.T @ (dh * step(X @ W1 + b1))", None),
        ("X", "(dh * step(X @ W1 + b1)) @ W1.T", None),
        ("W2", "ds.T @ h", "the claim is the transpose of ∂L/∂W2"),
        ("b2", "ds", "the claim is not summed over the batch"),
        ("X", "dW1", "the claim is ∂L/∂W1, not ∂L/∂X"),
    ],
)
def test_claims_in_the_notes_backward_pass_style_name_gradients(wrt, claim, hint):
    """``dW2 = h.T @ ds``, as the cs231n notes and assignments write a backward pass:
    ``ds`` is ∂L/∂s (they were refused for tensor programs). The oracle: NumPy's own
    backward pass of the same network, at the counterexample."""
    got = graphc.check(_TWO_LAYER, wrt, claim, shapes={"N": 3, "D": 4, "H": 5, "C": 2})
    if hint is None:
        assert got.verdict == "proved", str(got)
        return
    assert got.verdict == "wrong" and hint in got.main.explanation, str(got)
    p = got.main.counterexample
    z = p["X"] @ p["W1"] + p["b1"]
    h = np.maximum(z, 0)
    ds = 2 * (h @ p["W2"] + p["b2"])
    dz = (ds @ p["W2"].T) * (z > 0)
    want = {"W2": h.T @ ds, "b2": ds.sum(axis=0), "X": dz @ p["W1"].T}[wrt]
    np.testing.assert_allclose(got.main.true_value, want, rtol=1e-12)


def test_shapes_given_as_numbers_reach_the_attributes_that_name_dims():
    """``with_shapes({"W": (4, 2)})`` binds C = 2 in ``one_hot(y, C)`` and in y's own
    declaration; the attribute stayed the text 'C' (a raw UFuncTypeError in evaluation
    and in ``check``, a KeyError in the compiled code)."""
    text = "X: (N, D); W: (D, C); y: (N,) int\nf = sum(one_hot(y, C) * (X @ W))"
    g = graphc.parse(text).with_shapes({"X": (3, 4), "W": (4, 2)})
    assert g.declared["y"] == ((3,), "int")
    point = {"X": RNG.normal(size=(3, 4)), "W": RNG.normal(size=(4, 2)), "y": np.array([0, 1, 1])}
    want = np.sum(np.eye(2)[point["y"]] * (point["X"] @ point["W"]))
    assert float(g.evaluate(**point).value) == pytest.approx(want, rel=1e-14)
    assert float(graphc.compile(g).value_and_grad(**point)[0]) == pytest.approx(want, rel=1e-14)
    assert graphc.check(text, "W", "X.T @ one_hot(y, C)").ok
    assert graphc.check(text, "W", "X.T @ one_hot(y, C)", shapes={"C": 3}).ok
    assert graphc.check(text, "W", "2 * X.T @ one_hot(y, C)").verdict == "wrong"


@pytest.mark.parametrize("target", ["numpy", "c"])
@pytest.mark.parametrize("dtype", [np.float64, np.float32])
def test_a_dim_read_as_a_value_is_the_size_it_takes(target, dtype):
    """The notes' L = (1/N) Σ L_i + λ R(W): N is X's number of rows (it was a new input
    N, free to differ from them), and passes no gradient to X."""
    with_n = ("X: (N, D); W: (D, C); y: (N,) int; s = X @ W\n"
              "L = sum(logsumexp(s, axis=1) - pick(s, y)) / N + sum(W^2) / (D * C)")  # fmt: skip
    with_mean = ("X: (N, D); W: (D, C); y: (N,) int; s = X @ W\n"
                 "L = mean(logsumexp(s, axis=1) - pick(s, y)) + mean(W^2)")  # fmt: skip
    assert graphc.parse(with_n).inputs == ("X", "W", "y")
    point = {"X": RNG.normal(size=(5, 4)).astype(dtype), "W": RNG.normal(size=(4, 3)).astype(dtype),
             "y": np.array([0, 2, 1, 1, 0])}  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CTargetWarning)
        got = graphc.compile(with_n, target=target).value_and_grad(**point)
    want = graphc.compile(with_mean).value_and_grad(**point)
    ev = graphc.parse(with_n).evaluate(**point)
    rtol = 1e-5 if dtype == np.float32 else 1e-12
    np.testing.assert_allclose(got[0], want[0], rtol=rtol)
    np.testing.assert_allclose(ev.value, want[0], rtol=rtol)
    for k in ("X", "W"):
        assert got[1][k].dtype == dtype
        np.testing.assert_allclose(got[1][k], want[1][k], rtol=rtol, atol=1e-6)
        np.testing.assert_allclose(ev.grads[k], want[1][k], rtol=rtol, atol=1e-6)


def test_a_dims_size_reads_back_and_is_checked_and_proved():
    text = "X: (N, D); W: (D, C)\nL = sum((X @ W)^2) / N"
    g = graphc.parse(text)
    assert g.to_text() == "sum((X @ W)^2) / N"
    back = graphc.parse("X: (N, D); W: (D, C)\nL = " + g.to_text())
    point = {"X": RNG.normal(size=(3, 2)), "W": RNG.normal(size=(2, 4))}
    assert float(back.evaluate(**point).value) == pytest.approx(
        np.sum((point["X"] @ point["W"]) ** 2) / 3, rel=1e-14)  # fmt: skip
    assert graphc.check(text, "W", "2 * X.T @ (X @ W) / N").verdict == "proved"
    wrong = graphc.check(text, "W", "2 * X.T @ (X @ W) / D", shapes={"N": 3, "D": 2, "C": 4})
    assert wrong.verdict == "wrong" and "constant factor" in wrong.main.explanation
    # a bound name is a value: the user's N, not the size
    assert float(graphc.parse("X: (N, D); N = 2\nL = sum(X) / N").evaluate(
        X=np.ones((3, 2))).value) == 3.0  # fmt: skip
    # a dim that only labels declare is their length (a size reads the shape alone)
    lab = graphc.parse("y: (N,) int; s: (N, C)\nL = sum(pick(s, y)) / N")
    s, y = RNG.normal(size=(4, 3)), np.array([0, 2, 1, 1])
    assert float(lab.evaluate(s=s, y=y).value) == pytest.approx(np.mean(s[np.arange(4), y]))
    # size(X, axis) is the gate's own spelling; an axis X lacks is a ShapeError there
    assert float(graphc.parse("X: (N, D); L = size(X, 1)").evaluate(X=np.ones((3, 2))).value) == 2
    with pytest.raises(ShapeError, match="size needs an axis of a 2-d array, got 2"):
        graphc.parse("X: (N, D); L = sum(X) / size(X, 2)")


def test_named_gradients_in_a_claim_with_labels_are_checked_by_the_numbers():
    text = ("X: (N, D); W: (D, C); y: (N,) int\ns = X @ W\n"
            "L = mean(logsumexp(s, axis=1) - pick(s, y))")  # fmt: skip
    shapes = {"N": 3, "D": 4, "C": 2}
    assert graphc.check(text, "W", "X.T @ ds", shapes=shapes).verdict == "agrees numerically"
    assert graphc.check(text, "s", "(softmax(s, axis=1) - one_hot(y, C)) / 3", shapes=shapes).ok
    assert graphc.check(text, "W", "X.T @ ds * 2", shapes=shapes).verdict == "wrong"


_NET = "X: (N, D); W: (D, C); b: (C,); V: (D, C)\nf = sum(relu(X @ W + b) * 2) + sum(V * W)"


@pytest.mark.parametrize(
    ("wrt", "claim", "hint"),
    [
        ("W", "-(X.T @ (2 * step(X @ W + b)) + V)", "the claim has the wrong sign"),
        ("W", "(2 * step(X @ W + b)).T @ X + V.T", "the claim is the transpose of ∂f/∂W"),
        ("W", "-((2 * step(X @ W + b)).T @ X + V.T)",
         "the claim is the transpose of ∂f/∂W, with the wrong sign"),
        ("b", "2 * step(X @ W + b)",
         "the claim is not summed over the batch: ∂f/∂b is its sum over axis 0"),
        ("W", "3 * (X.T @ (2 * step(X @ W + b)) + V)",
         "the claim is off by a constant factor: ∂f/∂W = 1/3 × the claim"),
        ("V", "X.T @ (2 * step(X @ W + b)) + V", "the claim is ∂f/∂W, not ∂f/∂V"),
        ("V", "0 * V", "the claim is 0 but ∂f/∂V is not"),
        ("V", "W + 1", None),
    ],
)  # fmt: skip
def test_a_wrong_tensor_claim_says_which_common_slip_it_is(wrt, claim, hint):
    """Each hint holds at every point drawn: a claim that is wrong another way has none.
    The oracle is the definition of each slip applied to graphc's gradient."""
    got = graphc.check(_NET, wrt, claim, shapes={"N": 3, "D": 4, "C": 2})
    assert got.verdict == "wrong", str(got)
    assert got.main.explanation == hint or (hint and hint in got.main.explanation), str(got)


def test_check_with_shapes_given_on_the_command_line(capsys):
    from graphc.cli import main

    code = main(["check", "e = (y - w@x)^2", "--wrt", "w", "--claim", "-2*x*(y - w@x)",
                 "--shape", "w=3", "x=3"])  # fmt: skip
    assert code == 0 and "proved" in capsys.readouterr().out
    code = main(["check", "e = (y - w@x)^2", "--wrt", "w", "--claim", "2*x*(y - w@x)",
                 "--shape", "w=3", "x=3"])  # fmt: skip
    out = capsys.readouterr().out
    assert code == 1 and "wrong" in out and "w=[" in out


def test_scores_of_1000_are_stable_under_errstate_raise():
    text, _, _ = _softmax_ce()
    S = np.array([[1000.0, -1000.0, 0.0, 999.0], [-1000.0, -1000.0, -999.0, -1000.0]])
    y = np.array([3, 2])
    with np.errstate(all="raise"):
        ev = graphc.parse(text).evaluate(S=S, y=y)
        value, grads = graphc.compile(text).value_and_grad(S=S, y=y)
        sm = graphc.compile("s: (C,); p = softmax(s)").forward(s=S[0])
        lsm = graphc.compile("s: (C,); p = log_softmax(s)").forward(s=S[0])
    # worked out by hand: row 1 is log(1 + e + ...) ≈ log(1 + e), row 2 log(1 + 3/e)
    want = (np.log(1 + np.e + np.exp(-999.0) + np.exp(-1999.0)) + np.log(1 + 3 / np.e)) / 2
    assert float(value) == pytest.approx(want, rel=1e-12)
    assert float(ev.value) == pytest.approx(want, rel=1e-12)
    p = np.exp(S - S.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    p[np.arange(2), y] -= 1
    np.testing.assert_allclose(grads["S"], p / 2, atol=1e-300)
    np.testing.assert_allclose(ev.grads["S"], p / 2, atol=1e-300)
    assert np.all(np.isfinite(sm)) and sm[0] == pytest.approx(1 / (1 + np.exp(-1)))
    assert lsm[1] == pytest.approx(-2000.0 - np.log1p(np.exp(-1)), rel=1e-15)


#: The softmax loss and its parts as the lecture writes them with exp, sum and log:
#: program, and its value from the hand-written stable form (S - max, then log-sum-exp)
_SOFTMAX_BY_HAND = [
    ("p = exp(S) / sum(exp(S), axis=1, keepdims=True)\nf = sum(p * S)",
     lambda S, y, p, lse: np.sum(p * S)),
    ("f = mean(-log(exp(pick(S, y)) / sum(exp(S), axis=1)))",
     lambda S, y, p, lse: np.mean(lse - S[np.arange(len(y)), y])),
    ("f = mean(-log(pick(exp(S) / sum(exp(S), axis=1, keepdims=True), y)))",
     lambda S, y, p, lse: np.mean(lse - S[np.arange(len(y)), y])),
    ("f = sum(log(sum(exp(S), axis=-1)))", lambda S, y, p, lse: np.sum(lse)),
    ("f = sum(log(softmax(S)))", lambda S, y, p, lse: np.sum(S - lse[:, None])),
    ("f = -sum(log(pick(softmax(S), y)))",
     lambda S, y, p, lse: np.sum(lse - S[np.arange(len(y)), y])),
]  # fmt: skip


@pytest.mark.parametrize("target", ["numpy", "c"])
@pytest.mark.parametrize("body, by_hand", _SOFTMAX_BY_HAND)
def test_softmax_written_with_exp_sum_and_log_is_stable(body, by_hand, target):
    """exp(S) overflowed from scores of 710 (inf/inf: NaN), and log of a probability
    that rounds to 0 was -inf: these forms compile as softmax, logsumexp and
    log_softmax, which subtract the largest score, as the lecture's code does."""
    text = "S: (N, C)\ny: (N,) int\n" + body
    S = np.array([[1000.0, -1000.0, 0.0, 999.0], [-1000.0, -1000.0, -999.0, -1000.0],
                  [0.5, -0.25, 2.0, 1.0]])  # fmt: skip
    y = np.array([1, 0, 2])  # row 0's label has probability e^-2000: 0 in float64
    m = S.max(axis=1, keepdims=True)
    p = np.exp(S - m) / np.exp(S - m).sum(axis=1, keepdims=True)
    lse = (m + np.log(np.exp(S - m).sum(axis=1, keepdims=True)))[:, 0]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CTargetWarning)
        c = graphc.compile(text, target=target)
    with np.errstate(all="raise"):
        value, grads = c.value_and_grad(S=S, y=y)
    assert float(value) == pytest.approx(by_hand(S, y, p, lse), rel=1e-12)
    assert np.all(np.isfinite(grads["S"]))
    # the gradient against central differences, at scores small enough for them
    small = S / 1000
    _, g = c.value_and_grad(S=small, y=y)
    for i, j in np.ndindex(small.shape):
        e = np.zeros_like(small)
        e[i, j] = 1e-6
        fd = (float(c.forward(S=small + e, y=y)) - float(c.forward(S=small - e, y=y))) / 2e-6
        assert g["S"][i, j] == pytest.approx(fd, rel=1e-6, abs=1e-8)


def test_matmul_shape_mismatch_names_the_gate_both_shapes_and_points_at_it():
    with pytest.raises(ShapeError) as info:
        graphc.parse("W: (3, 4); x: (5,)\ns = W @ x")
    text = str(info.value)
    assert "line 2, column 7" in text and "(3, 4)" in text and "(5,)" in text
    assert text.splitlines()[-1] == " " * 4 + " " * 6 + "^"
    # undeclared shapes are checked when values are given
    with pytest.raises(ShapeError) as info:
        graphc.parse("s = sum(W @ x)").evaluate(W=np.ones((3, 4)), x=np.ones(5))
    assert "(3, 4)" in str(info.value) and "(5,)" in str(info.value)


def test_tensors_written_side_by_side_are_refused_with_the_product_the_notes_mean():
    """The notes write the scores W x + b and the dot product wᵀx with no operator.
    graphc's implicit product is *, entry by entry: W x of a (K, D) matrix and a (D,)
    vector broadcast silently to (K, D), and w x of two vectors gave a vector."""
    with pytest.raises(ShapeError) as info:
        graphc.parse("W: (K, D); x: (D,); b: (K,)\ns = W x + b")
    text = str(info.value)
    assert "W x: two tensors side by side multiply entry by entry" in text
    assert "write W @ x for the matrix product, or W * x for the product entry by entry" in text
    assert "line 2, column 7" in text and text.splitlines()[-1] == " " * 4 + " " * 6 + "^"
    with pytest.raises(ShapeError, match="write w @ x for the dot product"):
        graphc.parse("w: (D,); x: (D,); e = (y - w x)^2")
    with pytest.raises(ShapeError, match="write @ for the matrix product"):
        graphc.parse("W: (K, D); X: (N, D); s = (X)(2W)")
    # a number or a scalar beside a tensor, and scalars, are products as before
    for text, explicit, point in [
        ("w: (D,); x: (D,); f = sum(2w * x)", "w: (D,); x: (D,); f = sum(2*w*x)",
         {"w": [1.0, 2.0], "x": [3.0, 4.0]}),
        ("a: (); W: (K, D); f = sum(a W)", "a: (); W: (K, D); f = sum(a*W)",
         {"a": 3.0, "W": [[1.0, 2.0], [3.0, 4.0]]}),
        ("W: (K, D); f = sum(reg W^2)", "W: (K, D); f = sum(reg*W^2)",
         {"reg": 3.0, "W": [[1.0, 2.0], [3.0, 4.0]]}),
        ("f = x y", "f = x*y", {"x": 3.0, "y": 4.0}),
    ]:  # fmt: skip
        value = graphc.parse(text).evaluate(**point).value
        assert float(value) == float(graphc.parse(explicit).evaluate(**point).value) != 0


def test_declared_symbols_must_agree_across_inputs():
    g = graphc.parse("X: (N, D); y: (N,) int; W: (D, C)\nL = mean(logsumexp(X @ W, axis=1))")
    with pytest.raises(ShapeError, match="N is 4 in X but 3 in y"):
        g.evaluate(X=np.ones((4, 2)), y=np.zeros(3, int), W=np.ones((2, 3)))
    with pytest.raises(graphc.InputError):
        graphc.compile(g).value_and_grad(X=np.ones((4, 2)), y=np.zeros(3, int), W=np.ones((2, 3)))


NETWORK_3_4_2 = """
x: (3,)
W1: (4, 3); b1: (4,)
W2: (2, 4); b2: (2,)
h = sigmoid(W1 @ x + b1)
s = W2 @ h + b2
"""

NETWORK_3_4_4_1 = """
x: (3,)
W1: (4, 3); b1: (4,)
W2: (4, 4); b2: (4,)
W3: (1, 4); b3: (1,)
h1 = sigmoid(W1 @ x + b1)
h2 = sigmoid(W2 @ h1 + b2)
out = W3 @ h2 + b3
"""


@pytest.mark.parametrize(("program", "total"), [(NETWORK_3_4_2, 26), (NETWORK_3_4_4_1, 41)])
def test_the_lectures_networks_have_26_and_41_parameters(program, total, capsys):
    params = graphc.parse(program).parameters()
    assert sum(size for _, _, size in params) == total
    assert "x" not in [n for n, _, _ in params]
    from graphc.cli import main

    assert main(["params", program]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"total: {total}"


def test_params_data_rule_and_overrides():
    g = graphc.parse("X_train: (N, D); y: (N,) int; x0: (D,); W: (D, C); s = X_train @ W + x0 @ W")
    assert [n for n, _, _ in g.parameters()] == ["W"]
    assert [n for n, _, _ in g.parameters(params=["x0"])] == ["x0", "W"]
    assert [n for n, _, _ in g.parameters(data=["W"])] == []


def test_second_derivatives_of_a_small_network_match_finite_differences_of_the_gradient():
    text = "x: (3,); W1: (4, 3); w2: (4,)\nf = w2 @ tanh(W1 @ x)"
    g = graphc.parse(text)
    point = dict(x=RNG.normal(size=3), W1=RNG.normal(size=(4, 3)), w2=RNG.normal(size=4))
    v = RNG.normal(size=(4, 3))
    hvp = g.derivative("W1").vjp("W1", "v")  # ∂/∂W1 of sum(∂f/∂W1 * v) = H v
    got = hvp.evaluate(**point, v=v).value

    def grad_W1(W1):  # ∂f/∂W1 by hand: outer(w2 * (1 - tanh²), x)
        return np.outer(point["w2"] * (1 - np.tanh(W1 @ point["x"]) ** 2), point["x"])

    eps = 1e-6
    want = (grad_W1(point["W1"] + eps * v) - grad_W1(point["W1"] - eps * v)) / (2 * eps)
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-9)
    compiled = graphc.compile(hvp).forward(**point, v=v)
    np.testing.assert_allclose(compiled, want, rtol=1e-6, atol=1e-9)


@pytest.mark.parametrize("seed", range(6))
def test_elementwise_ops_broadcast_and_gradients_sum_back_to_each_shape(seed):
    rng = np.random.default_rng(seed)
    full = tuple(int(n) for n in rng.integers(1, 4, size=3))
    shapes = []
    for _ in range(3):
        ndim = int(rng.integers(0, 4))
        shape = tuple(1 if rng.random() < 0.4 else full[3 - ndim + i] for i in range(ndim))
        shapes.append(shape)
    a, b, c = (rng.normal(size=s) + 2.0 for s in shapes)
    decl = "; ".join(f"{n}: ({', '.join(map(str, s))}{',' if len(s) == 1 else ''})"
                     for n, s in zip("abc", shapes, strict=True))  # fmt: skip
    text = f"{decl}\nf = sum(a * tanh(b) + c / a - b^2)"

    def forward(a, b, c):
        return np.sum(a * np.tanh(b) + c / a - b**2)

    point = {"a": a, "b": b, "c": c}
    ev = graphc.parse(text).evaluate(**point)
    _, grads = graphc.compile(text).value_and_grad(**point)
    for name in "abc":
        want = fd_grad(forward, point, name)
        np.testing.assert_allclose(ev.grads[name], want, rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(grads[name], want, rtol=1e-5, atol=1e-7)
        assert np.shape(grads[name]) == np.shape(point[name])


def test_generated_code_reads_like_the_cs231n_backward_pass():
    text, _, _ = WORKLOADS["2-layer relu"]
    source = graphc.compile(text).source
    body = source[source.index("def value_and_grad") :]
    assert "ds = _softmax_ce_grad(s, y, 1.0)" in body  # (softmax(s) - one_hot(y)) / N
    assert "db2 = np.sum(ds, axis=0)" in body
    assert " @ " in body and "for " not in body  # vectorised: no Python loop
    assert "(softmax(s) - onehot(y))/N" in source  # the docstring's gradient formulas


def test_float32_stays_float32_and_gradients_are_fresh_arrays():
    text, _, point = WORKLOADS["2-layer relu"]
    p32 = {k: (v.astype(np.float32) if k not in ("y", "reg") else v) for k, v in point.items()}
    _, grads = graphc.compile(text).value_and_grad(**p32)
    for k in ("X", "W1", "b1", "W2", "b2"):
        assert grads[k].dtype == np.float32
        for other in p32.values():
            assert not np.shares_memory(grads[k], other)


@pytest.mark.parametrize("target", ["numpy", "c"])
@pytest.mark.parametrize("low", [np.float32, np.float16])
def test_mixed_dtypes_compute_in_the_widest_and_return_each_gradient_in_its_own(target, low):
    """float32 X beside float64 weights: computed in float64 (NumPy's promotion), and
    ∂f/∂X is float32, as in JAX and PyTorch (it was float64: the docs promise each
    gradient in its input's dtype); an out= array serves only the float64 gradients."""
    text, _, point = WORKLOADS["2-layer relu"]
    mixed = {**point, "X": point["X"].astype(low)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CTargetWarning)
        c = graphc.compile(text, target=target)
    f, grads = c.value_and_grad(**mixed)
    f64, grads64 = c.value_and_grad(**{**point, "X": mixed["X"].astype(np.float64)})
    assert np.asarray(f).dtype == np.float64 and f == f64
    assert grads["X"].dtype == low and grads["X"].shape == point["X"].shape
    np.testing.assert_array_equal(grads["X"], grads64["X"].astype(low))
    for k in ("W1", "b1", "W2", "b2"):
        assert grads[k].dtype == np.float64 and np.array_equal(grads[k], grads64[k])
    again = c.value_and_grad(**mixed, out=(f, grads))
    assert again[1]["W1"] is grads["W1"] and again[1]["X"] is not grads["X"]
    np.testing.assert_array_equal(again[1]["X"], grads["X"])


@pytest.mark.parametrize("target", ["numpy", "c"])
@pytest.mark.parametrize("dim", ["np", "out", "_SPEC", "_like", "_dims", "math", "_C"])
def test_dims_named_like_the_generated_codes_own_names(target, dim):
    """A dim is written in the code as a name would be (np_, out_): it was the function's
    own np, out= or _SPEC, an AttributeError or an UnboundLocalError at the call."""
    text = (f"y: (N,) int; s: (N, {dim})\n"
            f"f = sum(one_hot(y, {dim}) * s) + sum(reshape(s, ({dim}, N)) ^ 2)")  # fmt: skip
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CTargetWarning)
        c = graphc.compile(text, target=target)
    point = {"y": np.array([0, 2]), "s": RNG.normal(size=(2, 3))}
    f, grads = c.value_and_grad(**point)
    ev = graphc.parse(text).evaluate(**point)
    assert np.isclose(f, float(ev.value), rtol=1e-14)
    np.testing.assert_allclose(grads["s"], ev.grads["s"], rtol=1e-14)


def test_the_math_target_refuses_tensor_programs():
    with pytest.raises(graphc.GraphcError, match="tensor program"):
        graphc.compile("w: (3,); f = sum(w)", target="math")


def test_undeclared_inputs_take_shapes_from_values_or_from_compile():
    g = graphc.parse("f = sum(w * x)")
    ev = g.evaluate(w=np.array([1.0, 2.0]), x=np.array([3.0, 4.0]))
    assert float(ev.value) == 11.0 and list(ev.grads["w"]) == [3.0, 4.0]
    c = graphc.compile("f = sum(w @ M)", shapes={"w": (2,), "M": (2, 3)})
    value, grads = c.value_and_grad(w=np.ones(2), M=np.arange(6.0).reshape(2, 3))
    assert float(value) == 15.0 and list(grads["w"]) == [3.0, 12.0]


def test_parse_errors_for_tensor_syntax():
    with pytest.raises(graphc.ParseError, match="has no argument 'axes'"):
        graphc.parse("sum(x, axes=1)")
    with pytest.raises(graphc.ParseError, match="one_hot\\(\\) needs its depth"):
        graphc.parse("y: (3,) int; f = one_hot(y)")
    with pytest.raises(ShapeError, match="integer labels"):
        graphc.parse("y: (3,) int; f = sum(y * 2)")
    with pytest.raises(graphc.ParseError, match="declared as an input"):
        graphc.parse("x: (3,); x = 2")


@pytest.mark.parametrize("name", ["2-layer relu", "softmax cross-entropy", "hinge loss"])
def test_gradients_match_pytorch(name):
    torch = pytest.importorskip("torch")
    text, _, point = WORKLOADS[name]
    graph = graphc.parse(text)
    tp = {k: torch.tensor(v, requires_grad=k in graph.differentiable) for k, v in point.items()}
    if "2-layer" in name:
        h = torch.relu(tp["X"] @ tp["W1"] + tp["b1"])
        s = h @ tp["W2"] + tp["b2"]
        loss = torch.nn.functional.cross_entropy(s, tp["y"]) + 0.5 * tp["reg"] * (
            (tp["W1"] ** 2).sum() + (tp["W2"] ** 2).sum()
        )
    elif name == "softmax cross-entropy":
        loss = torch.nn.functional.cross_entropy(tp["S"], tp["y"])
    else:
        loss = torch.nn.functional.multi_margin_loss(tp["X"] @ tp["W"], tp["y"]) * 4
    loss.backward()
    _, grads = graphc.compile(text).value_and_grad(**point)
    for k in graph.differentiable:
        np.testing.assert_allclose(grads[k], tp[k].grad.numpy(), rtol=1e-10, atol=1e-12)


def test_gradients_match_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    text, _, point = WORKLOADS["2-layer tanh"]

    def loss(W1, b1, W2, b2):
        h = jnp.tanh(point["X"] @ W1 + b1)
        s = h @ W2 + b2
        ls = jax.nn.log_softmax(s, axis=1)
        data = -jnp.mean(ls[jnp.arange(len(point["y"])), point["y"]])
        return data + 0.5 * point["reg"] * ((W1**2).sum() + (W2**2).sum())

    want = jax.grad(loss, argnums=(0, 1, 2, 3))(point["W1"], point["b1"], point["W2"], point["b2"])
    _, grads = graphc.compile(text).value_and_grad(**point)
    for k, w in zip(("W1", "b1", "W2", "b2"), want, strict=True):
        np.testing.assert_allclose(grads[k], np.asarray(w), rtol=1e-10, atol=1e-12)


def test_gradients_in_matrix_notation():
    g = graphc.parse("w: (D,); x: (D,)\ne = -log(sigmoid(w @ x))")
    assert g.gradients()["w"] == "-sigmoid(-(w @ x)) * x"
    text, _, _ = WORKLOADS["2-layer relu"]
    grads = graphc.parse(text).gradients()
    assert grads["b2"] == "sum((softmax(s) - onehot(y))/N, axis=0)"
    assert grads["W2"].startswith("hᵀ @ ((softmax(s) - onehot(y))/N)")


def test_tensor_program_expands_to_sympy_matrices_for_numeric_shapes():
    import sympy as sp

    g = graphc.parse("W: (2, 2); x: (2,)\ns = W @ x")
    value = g.to_sympy()
    W = sp.Matrix(2, 2, lambda i, j: sp.Symbol(f"W[{i},{j}]", real=True))
    x = sp.Matrix(2, 1, lambda i, _: sp.Symbol(f"x[{i}]", real=True))
    assert sp.Matrix(value) == W * x


def test_tensor_diagram_shows_shapes_full_small_values_and_vjp_rules():
    W = np.array([[0.2, -0.5, 0.1, 2.0], [1.5, 1.3, 2.1, 0.0], [0, 0.25, 0.2, -0.3]])
    x = np.array([56.0, 231, 24, 2])
    b = np.array([1.1, 3.2, -1.2])
    g = graphc.parse("W: (K, D); x: (D,); b: (K,)\ns = W @ x + b")
    source = graphc.render(g, at=dict(W=W, x=x, b=b), local=True).source
    scores = W @ x + b
    assert "(K, D)  [[0.20, -0.50, 0.10, 2.00], [1.50, 1.30, 2.10, 0.00]" in source
    assert "(K,)  [" + ", ".join(f"{v:.2f}" for v in scores) + "]" in source
    assert "dW ← dout xᵀ" in source and "dx ← Wᵀ @ dout" in source
    big = graphc.parse("W: (5, 4); x: (4,)\ns = W @ x")
    source = graphc.render(big, at=dict(W=np.ones((5, 4)), x=np.ones(4))).source
    assert "(5, 4)  5×4 in [1.00, 1.00]" in source  # more than 12 entries: a summary


def test_grad_command_prints_matrix_notation_and_values(capsys):
    from graphc.cli import main

    program = "W: (K, D); x: (D,); s = W @ x; L = sum(s^2)"
    assert main(["grad", program, "--at", "W=1,2;3,4", "x=1,1"]) == 0
    out = capsys.readouterr().out
    W, x = np.array([[1.0, 2], [3, 4]]), np.array([1.0, 1])
    assert "∂L/∂W = (2 * s) xᵀ" in out
    want = np.outer(2 * W @ x, x)  # by hand: ∂/∂W sum((Wx)²) = 2 (Wx) xᵀ
    line = next(t for t in out.splitlines() if t.startswith("∂L/∂W = [["))
    import re

    got = [float(v) for v in re.findall(r"-?\d+\.?\d*", line.split("=", 1)[1])]
    assert got == list(want.ravel())


def test_codegen_command_takes_shapes(capsys, tmp_path):
    from graphc.cli import main

    out = tmp_path / "m.py"
    assert main(["codegen", "f = sum(w @ M)", "--shape", "w=2", "M=2,3", "-o", str(out)]) == 0
    namespace: dict = {}
    exec(compile(out.read_text(), str(out), "exec"), namespace)
    M = np.arange(6.0).reshape(2, 3)
    value, grads = namespace["value_and_grad"](np.array([1.0, -1.0]), M)
    assert float(value) == float(np.sum(np.array([1.0, -1.0]) @ M))
    np.testing.assert_array_equal(grads["w"], M.sum(axis=1))
    np.testing.assert_array_equal(grads["M"], np.outer([1.0, -1.0], np.ones(3)))
    assert main(["codegen", "f = sum(w @ M)", "--shape", "v=2"]) == 2


def test_saved_tensor_module_runs_without_graphc(tmp_path):
    import subprocess
    import sys

    text, forward, point = WORKLOADS["2-layer relu"]
    graphc.compile(text).save(tmp_path / "net.py")
    np.savez(tmp_path / "point.npz", **point)
    code = (
        "import sys\n"
        "sys.modules['graphc'] = None  # any import of graphc now fails\n"
        "sys.path.insert(0, sys.argv[1])\n"
        "import numpy as np, net\n"
        "p = dict(np.load(sys.argv[1] + '/point.npz'))\n"
        "loss, g = net.value_and_grad(**p)\n"
        "np.save(sys.argv[1] + '/dW1.npy', g['W1'])\n"
        "print(repr(float(loss)))\n"
    )
    out = subprocess.run([sys.executable, "-I", "-c", code, str(tmp_path)],
                         capture_output=True, text=True, check=True)  # fmt: skip
    assert float(out.stdout.split()[0]) == pytest.approx(forward(**point), rel=1e-12)
    want = fd_grad(forward, point, "W1")
    np.testing.assert_allclose(np.load(tmp_path / "dW1.npy"), want, rtol=1e-5, atol=1e-7)


def test_params_command_reads_stdin_and_takes_overrides(capsys, monkeypatch):
    import io

    from graphc.cli import main

    monkeypatch.setattr("sys.stdin", io.StringIO(NETWORK_3_4_2))
    assert main(["params", "-", "--params", "x", "--data", "b2"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert [ln.split()[0] for ln in lines[:-2]] == ["x", "W1", "b1", "W2"]
    assert lines[-2:] == ["not counted (data or labels): b2", f"total: {3 + 12 + 4 + 8}"]


def test_params_with_dim_symbols_count_symbolically_or_with_the_numbers_given(capsys):
    """The sizes were '?' while a dim was a symbol; the digits network in numbers."""
    from graphc.cli import main

    net = ("X: (N, D); y: (N,) int; W1: (D, H); b1: (H,); W2: (H, C); b2: (C,)\n"
           "s = relu(X @ W1 + b1) @ W2 + b2\n"
           "L = mean(logsumexp(s, axis=1) - pick(s, y)) + reg * sum(W1^2)")  # fmt: skip
    assert main(["params", net]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].split() == ["W1", "(D,", "H)", "D·H"] and lines[3].split()[-1] == "C"
    assert lines[-2] == "not counted (data or labels): X, y"
    D, H, C = sp.symbols("D H C")
    total = sp.sympify(lines[-1].removeprefix("total: ").replace("·", "*"))
    assert sp.expand(total - (D * H + H + H * C + C + 1)) == 0  # reg, a scalar, counts 1
    assert main(["params", net, "--shape", "D=64", "H=100", "C=10", "--data", "reg"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == f"total: {64 * 100 + 100 + 100 * 10 + 10:,}"
    assert main(["params", net, "--shape", "W1=784,100", "C=10", "--data", "reg"]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "total: 79,510"
    assert main(["params", net, "--shape", "HH=3"]) == 2
    assert "'HH', not an input or a dim symbol" in capsys.readouterr().err
    with pytest.raises(graphc.InputError, match="did you mean 'H'"):
        graphc.check(net, "W1", "1", shapes={"HH": 3})


def _log_softmax(s, axis):
    m = s.max(axis=axis, keepdims=True)
    return s - m - np.log(np.exp(s - m).sum(axis=axis, keepdims=True))


EDGE_PROGRAMS = [
    ("x: (2, 3, 4); f = sum(max(x, axis=(0, 2)) * sum(mean(x, axis=(1,), keepdims=True),"
     " axis=(0, 2)))", None,
     lambda x: np.sum(x.max(axis=(0, 2)) * x.mean(axis=1, keepdims=True).sum(axis=(0, 2)))),
    ("x: (3, 4); f = sum(reshape(x, (2, -1)) @ w)", {"w": (6,)},
     lambda x, w: np.sum(x.reshape(2, -1) @ w)),
    ("y: (N,) int; s: (N, C); f = sum(one_hot(y, C) * log_softmax(s, axis=1))", None,
     lambda y, s: np.sum(np.eye(s.shape[1])[y] * _log_softmax(s, 1))),
    ("x: (3, 4); f = sum(softmax(x, axis=0) * x)", None,
     lambda x: np.sum(np.exp(_log_softmax(x, 0)) * x)),
    ("a: (3,); b: (3,); f = dot(a, b) * sum(outer(a, b))", None,
     lambda a, b: (a @ b) * np.sum(np.outer(a, b))),
    ("x: (2, 3); f = sum(min(x, axis=1, keepdims=True) * x.T.T)", None,
     lambda x: np.sum(x.min(axis=1, keepdims=True) * x)),
]  # fmt: skip


@pytest.mark.parametrize(("text", "shapes", "forward"), EDGE_PROGRAMS)
def test_axis_tuples_reshape_dim_symbols_and_double_transpose(text, shapes, forward):
    g = graphc.parse(text, shapes)
    dims = {"N": 4, "C": 5}
    point = {}
    for n in g.inputs:
        shape = tuple(dims.get(d, d) for d in g.shape(n))
        point[n] = RNG.integers(0, 5, size=shape) if n in g.labels else RNG.normal(size=shape)
    value, grads = graphc.compile(g).value_and_grad(**point)
    assert float(value) == pytest.approx(forward(**point), rel=1e-12)
    for k in g.differentiable:
        np.testing.assert_allclose(grads[k], fd_grad(forward, point, k), rtol=1e-5, atol=1e-7)


def test_an_array_read_through_an_inlined_transpose_keeps_its_memory():
    # dW_2 = a2.T @ da3 reads a2 after a tanh of a2's shape: a2's array must not be lent
    # to that tanh (it was: the gradient of W came out wrong by 4.5)
    text = """
    X: (N, D); W: (D, D); b: (D,)
    a0 = X @ W + b
    a1 = tanh(a0) * b + a0
    a2 = tanh(a1) * b + a1
    a3 = a2 @ W
    a4 = tanh(a3) * b + a3
    f = sum(a4)
    """

    def forward(X, W, b):
        a0 = X @ W + b
        a1 = np.tanh(a0) * b + a0
        a2 = np.tanh(a1) * b + a1
        a3 = a2 @ W
        return np.sum(np.tanh(a3) * b + a3)

    point = dict(X=RNG.normal(size=(4, 3)), W=RNG.normal(size=(3, 3)), b=RNG.normal(size=3))
    _, grads = graphc.compile(text).value_and_grad(**point)
    for k in point:
        np.testing.assert_allclose(grads[k], fd_grad(forward, point, k), rtol=1e-6, atol=1e-8)


@st.composite
def _square_programs(draw):
    """Chains of square matrix products and elementwise gates of one shape: every array
    has the shape of every other, so memory reuse has the most chances to go wrong."""
    names = ["X"]
    lines = ["X: (D, D); W: (D, D); V: (D, D); b: (D,)"]
    for i in range(draw(st.integers(2, 9))):
        a, c = draw(st.sampled_from(names)), draw(st.sampled_from(names))
        form = draw(st.sampled_from(
            ["{a} @ W", "{a} @ V.T", "tanh({a}) * b + {c}", "{a} * {c}", "sigmoid({a}) - {c}",
             "({a}.T @ {c}).T @ W", "relu({a}) + {c} @ V"]))  # fmt: skip
        lines.append(f"t{i} = " + form.format(a=a, c=c))
        names.append(f"t{i}")
    lines.append(f"f = sum({names[-1]} * {draw(st.sampled_from(names))})")
    return "\n".join(lines)


@settings(max_examples=40, deadline=None)
@given(_square_programs(), st.integers(0, 2**32 - 1))
@example(  # dV = matmul_2.T is returned: matmul_2's array was lent to a later gate
    "X: (D, D); W: (D, D); V: (D, D); b: (D,)\nt0 = X @ W\nt1 = tanh(X) * b + X\n"
    "t2 = X @ V.T\nf = sum(t2 * t1)",
    0,
)
def test_generated_code_agrees_with_evaluation_on_random_square_programs(text, seed):
    rng = np.random.default_rng(seed)
    point = {"X": rng.normal(size=(3, 3)) * 0.5, "W": rng.normal(size=(3, 3)) * 0.5,
             "V": rng.normal(size=(3, 3)) * 0.5, "b": rng.normal(size=3)}  # fmt: skip
    ev = graphc.parse(text).evaluate(**point)
    f, grads = graphc.compile(text).value_and_grad(**point)
    np.testing.assert_allclose(f, ev.value, rtol=1e-10, atol=1e-12)
    for k in point:
        np.testing.assert_allclose(grads[k], ev.grads[k], rtol=1e-9, atol=1e-11, err_msg=k)


_SHAPES = {"X": ("N", "D"), "W": ("D", "H"), "V": ("H", "D"), "b": ("H",), "c": ("D",), "s": ()}
_DIMS = {"N": 4, "D": 3, "H": 5}


def _broadcast_shape(a, b):
    """The shape of a ⊙ b (symbolic dims), or None where they do not broadcast."""
    out = []
    for k in range(1, max(len(a), len(b)) + 1):
        x = a[-k] if k <= len(a) else 1
        y = b[-k] if k <= len(b) else 1
        if x != y and 1 not in (x, y):
            return None
        out.append(y if x == 1 else x)
    return tuple(reversed(out))


@st.composite
def tensor_programs(draw):
    """Random well-shaped programs of products, transposes (chained too), reductions
    with and without keepdims, softmax, unary and broadcasting binary gates, and dims
    read as values: every memory-reuse decision of the generated code gets exercised."""
    terms = list(_SHAPES.items())
    lines = ["X: (N, D); W: (D, H); V: (H, D); b: (H,); c: (D,); s: ()"]
    for i in range(draw(st.integers(2, 10))):
        a, sa = draw(st.sampled_from(terms))
        kind = draw(st.sampled_from(["@", "T", "unary", "reduce", "softmax", "binary", "size"]))
        if kind == "@" and len(sa) == 2:
            fits = [(n, sh) for n, sh in terms if len(sh) >= 1 and sh[0] == sa[1]]
            if not fits:
                continue
            b, sb = draw(st.sampled_from(fits))
            expr, shape = f"{a} @ {b}", (sa[0], *sb[1:])
        elif kind == "T" and len(sa) == 2:
            expr, shape = f"{a}.T", (sa[1], sa[0])
        elif kind == "reduce" and len(sa) == 2:
            ax, keep = draw(st.integers(0, 1)), draw(st.booleans())
            red = draw(st.sampled_from(["sum", "mean", "max", "logsumexp"]))
            expr = f"{red}({a}, axis={ax}{', keepdims=True' if keep else ''})"
            shape = tuple(1 if j == ax else d for j, d in enumerate(sa) if keep or j != ax)
        elif kind == "softmax" and len(sa) == 2:
            expr, shape = f"softmax({a}, axis={draw(st.integers(0, 1))})", sa
        elif kind == "size":  # a dim read as a value: its size
            expr, shape = f"{a} / {draw(st.sampled_from(['N', 'D', 'H']))}", sa
        elif kind == "unary":
            fn = draw(st.sampled_from(["tanh", "relu", "sigmoid", "exp", "softplus", "abs"]))
            expr, shape = f"{fn}({a})", sa
        else:
            fits = [(n, _broadcast_shape(sa, sh)) for n, sh in terms]
            b, shape = draw(st.sampled_from([f for f in fits if f[1] is not None]))
            expr = f"{a} {draw(st.sampled_from(['+', '-', '*']))} {b}"
        lines.append(f"t{i} = {expr}")
        terms.append((f"t{i}", shape))
    last = terms[-1][0]
    return "\n".join([*lines, f"f = sum({last} * {last})"])


def tensor_point(seed):
    rng = np.random.default_rng(seed)
    return {
        k: rng.normal(size=tuple(_DIMS[d] for d in sh)) * 0.5 if sh else np.float64(rng.normal())
        for k, sh in _SHAPES.items()
    }


def agrees_with_evaluation(text, point, **compile_options):
    """The generated value_and_grad agrees with evaluation, called plainly and then
    with out= an earlier result (whose gradient arrays it must write into)."""
    ev = graphc.parse(text).evaluate(**point)
    vg = graphc.compile(text, **compile_options).value_and_grad
    first = vg(**point)
    again = vg(**point, out=first)
    for f, grads in (first, again):
        np.testing.assert_allclose(f, ev.value, rtol=1e-9, atol=1e-12)
        for k in point:
            np.testing.assert_allclose(grads[k], ev.grads[k], rtol=1e-8, atol=1e-10, err_msg=k)
    for k, g in first[1].items():  # fresh arrays of their inputs' shapes: all fit
        assert np.ndim(g) == 0 or again[1][k] is g, k


@settings(max_examples=60, deadline=None)
@given(tensor_programs(), st.integers(0, 2**32 - 1))
@example(  # t4 = t0.T.T is a view of t0: t0's array was lent to a later gate
    "X: (N, D); W: (D, H); V: (H, D); b: (H,); c: (D,); s: ()\nt0 = X @ W\nt3 = t0.T\n"
    "t4 = t3.T\nt8 = t4 * t0\nf = sum(t8 * t8)",
    0,
)
def test_generated_code_agrees_with_evaluation_on_random_tensor_programs(text, seed):
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")  # exp of a large product may overflow: inf is compared
        agrees_with_evaluation(text, tensor_point(seed))


@settings(max_examples=20, deadline=None)
@given(tensor_programs(), st.integers(0, 2**32 - 1), st.data())
def test_derivative_and_its_vjp_agree_with_evaluation_and_finite_differences(text, seed, data):
    """``derivative(w)`` evaluates to evaluation's gradient, in w's shape (zeros where f
    does not read w: it was a scalar 0, and its vjp raised ShapeError); ``.vjp(w, "v")``
    is the Hessian-vector product, checked against central differences of the gradient."""
    g = graphc.parse(text)
    point = tensor_point(seed)
    w = data.draw(st.sampled_from(list(g.inputs)))
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        ev = g.evaluate(**point)
        d = g.derivative(w)
        got = d.evaluate(**{k: point[k] for k in d.inputs}).value
        assert np.shape(got) == np.shape(point[w])
        np.testing.assert_allclose(got, ev.grads[w], rtol=1e-9, atol=1e-12)
        if not np.all(np.isfinite(ev.grads[w])):
            return
        v = np.random.default_rng(seed + 1).normal(size=np.shape(point[w]))
        hv = d.vjp(w, "v")
        got = hv.evaluate(**{k: point[k] for k in hv.inputs if k != "v"}, v=v).value
        eps = 1e-5
        up = g.evaluate(**{**point, w: point[w] + eps * v}).grads[w]
        down = g.evaluate(**{**point, w: point[w] - eps * v}).grads[w]
    assert np.shape(got) == np.shape(point[w])
    np.testing.assert_allclose(got, (up - down) / (2 * eps), rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize(
    ("claim", "message"),
    [
        ("dq", "the claim for ∂f/∂W uses 'dq', not an input, a name of the program or the"
               " gradient d<name> of one"),
        ("2 * q", "uses 'q', not an input, a name of the program"),
        ("2 * hh", "did you mean 'h'"),
    ],
)  # fmt: skip
def test_a_tensor_claim_naming_what_the_program_lacks_is_an_input_error(claim, message):
    """A fuzz finding: a claim with a name the program lacks (dq, q) raised KeyError."""
    text = "x: (3,); W: (2, 3); h = tanh(W @ x); f = sum(h * h)"
    with pytest.raises(graphc.InputError, match=re.escape(message)):
        graphc.check(text, "W", claim, points=3)


@pytest.mark.parametrize(
    ("claim", "error", "message", "column"),
    [
        ("x h", ShapeError, "in the claim: x h: two tensors side by side multiply", 3),
        ("W @ (2h)", ShapeError, "in the claim: @ gate: inner dims differ", 3),
        ("sum(one_hot(h, 3))", ShapeError, "in the claim: one_hot: argument 1 must be", 5),
        ("h @", graphc.ParseError, "in the claim: expected a number", 4),
    ],
)
def test_a_tensor_claim_that_cannot_be_built_says_so_at_its_own_text(claim, error, message,
                                                                     column):  # fmt: skip
    """The claim's shape errors pointed at its text without saying it was the claim's."""
    text = "x: (3,); W: (2, 3); h = tanh(W @ x); f = sum(h * h)"
    with pytest.raises(error) as info:
        graphc.check(text, "W", claim, points=3)
    assert info.value.message.startswith(message)
    assert (info.value.line, info.value.column, info.value.source_line) == (1, column, claim)


@pytest.mark.parametrize(
    ("program", "claim", "verdict"),
    [
        # f is NaN at every point (the square root of a negative number): a claim off
        # by 7 was "agrees numerically at all 20 points tested", NaN matching NaN
        ("x: (3,); f = sum(sqrt(-exp(x)))", "-(1/(2*sqrt(-exp(x))))*exp(x) + 7", "undecided"),
        ("x: (3,); f = sum(sqrt(-exp(x)))", "7*x", "undecided"),
        # a claim written for x > 100 is not refuted where it is not finite (as scalars)
        ("x: (3,); f = sum(log(x))", "1/x + log(x - 100)", "undecided"),
        # entries outside the domain are skipped; the finite ones still decide
        ("x: (3,); f = sum(log(x))", "2/x", "wrong"),
        ("x: (3,); f = sum(sqrt(x))", "1/(2*sqrt(x)) + 0*log(x)", "proved"),
    ],
)
def test_tensor_claims_are_compared_where_both_sides_are_finite(program, claim, verdict):
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # points outside the domain warn no more
        result = graphc.check(program, "x", claim)
    assert result["x"].verdict == verdict
    scalar = graphc.check(program.replace("x: (3,); ", "").replace("sum", ""), "x", claim)
    assert scalar["x"].verdict == verdict  # the scalar check's rule
    if verdict == "undecided":
        assert result["x"].tested == 0 and "only 0 of 20 points" in str(result)


@pytest.mark.parametrize("labels", [[0, 1, -1, 2], [0, 1, 5, 2], [0, 1, 2**40, 2]])
@pytest.mark.parametrize(
    "program",
    [
        "X: (N, D); W: (D, C); y: (N,) int; s = X @ W; f = mean(logsumexp(s, axis=1) - pick(s, y))",
        "X: (N, D); W: (D, C); y: (N,) int; f = sum(one_hot(y, C) * (X @ W))",
    ],
)
def test_a_label_that_is_no_class_is_an_input_error(program, labels):
    """A fuzz finding: a label of -1 picked the last class without a word (NumPy's
    negative index), and one past the end raised a raw IndexError. Evaluation, the
    NumPy target and the C target refuse it and name it."""
    point = {"X": np.ones((4, 3)), "W": np.ones((3, 5)), "y": np.array(labels)}
    bad = next(k for k in labels if not 0 <= k < 5)
    message = f"label {bad} is not a class: the labels are 0 to 4"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # (the C target may fall back to NumPy)
        calls = [graphc.parse(program).evaluate, graphc.compile(program).value_and_grad,
                 graphc.compile(program, target="c").value_and_grad]  # fmt: skip
    for call in calls:
        with pytest.raises(graphc.InputError, match=re.escape(message)):
            call(**point)
    good = {**point, "y": np.array([0, 4, 1, 2])}
    assert all(np.isfinite(call(**good)[0] if call is not calls[0] else call(**good).value)
               for call in calls)  # fmt: skip


@pytest.mark.parametrize(
    "text",
    [
        "X: (4, 3); t1 = sum(X, axis=0, keepdims=True); f = sum(t1 * t1)",
        "X: (4, 3); t1 = sum(X, axis=1, keepdims=True); f = sum(t1 * t1)",
        "X: (4, 3); b: (1, 3); f = sum((X * b)^3)",
    ],
)
def test_the_hessian_vector_product_through_a_broadcast_sums_back_to_its_shape(text):
    """A fuzz finding, a silent wrong result: the vjp of a gradient spread from (1, 3)
    to (4, 3) (a sum with keepdims) summed over every axis, so H·v was one number
    everywhere; 2 · (column sums of v) for the first program."""
    g = graphc.parse(text)
    rng = np.random.default_rng(0)
    point = {k: rng.normal(size=g.shape(k)) for k in g.inputs}
    for w in g.inputs:
        v = rng.normal(size=np.shape(point[w]))
        got = g.derivative(w).vjp(w, "v").evaluate(**point, v=v).value
        eps = 1e-6
        up = g.evaluate(**{**point, w: point[w] + eps * v}).grads[w]
        down = g.evaluate(**{**point, w: point[w] - eps * v}).grads[w]
        np.testing.assert_allclose(got, (up - down) / (2 * eps), rtol=1e-5, atol=1e-6)
    if text.startswith("X: (4, 3); t1 = sum(X, axis=0"):
        v = rng.normal(size=(4, 3))
        got = g.derivative("X").vjp("X", "v").evaluate(**point, v=v).value
        np.testing.assert_allclose(got, np.broadcast_to(2 * v.sum(axis=0), (4, 3)))


@pytest.mark.parametrize(
    ("given", "want"),
    [
        ("W=[[1,2],[3,4]]", [[1.0, 2.0], [3.0, 4.0]]),
        ("W=[[1, 2], [3, 4]]", [[1.0, 2.0], [3.0, 4.0]]),
        ("W=[[1.5,-2]]", [[1.5, -2.0]]),
        ("W=1,2;3,4", [[1.0, 2.0], [3.0, 4.0]]),
    ],
)
def test_a_matrix_on_the_command_line_may_be_written_as_nested_lists(given, want):
    from graphc.cli import parse_point

    got = parse_point([given])["W"]
    assert got.dtype == np.float64 and got.tolist() == want


@pytest.mark.parametrize("given", ["W=[[1,2],[3]]", "W=[[a,b]]", "W=;", "W=[[1,2],3]"])
def test_a_malformed_matrix_on_the_command_line_says_how_to_write_one(given):
    from graphc.cli import parse_point

    with pytest.raises(graphc.InputError, match=re.escape("[[1,2],[3,4]]")):
        parse_point([given])


@pytest.mark.parametrize("given", ["w=[3]", "w=3,", "w=[ 3 ]"])
def test_a_vector_of_one_number_on_the_command_line(given, capsys):
    """``[3]`` was read as the number 3: a (1,) input could not be given at all."""
    from graphc.cli import main, parse_point

    got = parse_point([given])["w"]
    assert isinstance(got, np.ndarray) and got.shape == (1,) and got.tolist() == [3]
    assert parse_point(["w=3"])["w"] == 3 and np.ndim(parse_point(["w=3"])["w"]) == 0
    assert main(["grad", "w: (1,); f = sum(w^2)", "--at", given]) == 0
    assert "∂f/∂w = [6.]" in capsys.readouterr().out


@pytest.mark.parametrize("target", ["numpy", "c"])
@pytest.mark.parametrize(
    "text",
    [
        "X: (N, D); W: (D, C); y: (N,) int; s = X @ W\nL = mean(logsumexp(s, axis=1) - pick(s, y))",
        "X: (N, D); W: (D, C); L = sum(mean(X @ W, axis=0)) + mean(X)",
    ],
)
def test_an_empty_batch_gives_numpys_nan_and_empty_gradients(text, target):
    """N = 0: the loss is NumPy's mean of nothing (nan, with NumPy's own warnings), as
    evaluation gives; the compiled code raised ZeroDivisionInputError (the softmax
    loss's 1/N) or warned once more in the backward pass (the mean's 1/N)."""
    point = {"X": np.zeros((0, 3)), "W": RNG.normal(size=(3, 2)), "y": np.zeros(0, dtype=int)}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", CTargetWarning)
        c = graphc.compile(text, target=target)
    point = {k: point[k] for k in c.inputs}
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        f, grads = c.value_and_grad(**point)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # evaluation's DomainWarning says the same
        ev = graphc.parse(text).evaluate(**point)
    assert np.isnan(f) and np.isnan(ev.value)
    assert grads["X"].shape == (0, 3)
    np.testing.assert_array_equal(grads["W"], ev.grads["W"])  # zeros: no row contributes
    np.testing.assert_array_equal(grads["W"], np.zeros((3, 2)))
    messages = {  # (NumPy 2.0 ends its "Mean of empty slice." with a period)
        str(w.message).rstrip(".") for w in caught if issubclass(w.category, RuntimeWarning)
    }
    assert messages <= {"Mean of empty slice", "invalid value encountered in divide",
                        "invalid value encountered in scalar divide"}, messages  # fmt: skip


@pytest.mark.parametrize(
    ("text", "wrt", "want"),
    [
        ("X: (N, D); L = mean(X)", "X", "1 / (N * D)"),
        ("X: (N, D); w: (D,); y: (N,); L = mean((X @ w - y)^2)", "w",
         "Xᵀ @ (1 / N * (2 * (X @ w - y)))"),
        ("X: (4, D); L = mean(X)", "X", "1 / (4 * D)"),
        ("X: (4, 3); L = mean(X)", "X", "1 / 12"),
    ],
)  # fmt: skip
def test_a_means_gradient_is_written_with_the_dims_it_averaged(text, wrt, want):
    """It read ``1/count``; the dims read back as sizes."""
    assert graphc.parse(text).gradients([wrt])[wrt] == want
    head = text.split(";")[0]
    back = graphc.parse(f"{head}; L = sum({want.replace('ᵀ', '.T')} * X)") if wrt == "X" else None
    if back is not None:  # the text is a program again, of the number the gradient is
        X = RNG.normal(size=(4, 3))
        assert float(back.evaluate(X=X).value) == pytest.approx(X.sum() / 12)


def test_a_zero_gradient_is_written_zero():
    """sign's slope times x read ``0 * x``."""
    g = graphc.parse("w: (D,); x: (D,); b: (); f = sign(w @ x + b)")
    assert g.gradients() == {"w": "0", "x": "0", "b": "0"}


@pytest.mark.parametrize(
    ("text", "column"),
    [("y: (N,) int; L = sum(one_hot(y, C))", 22), ("y: (N,) int\nL = sum(one_hot(y, C)) / C", 9)],
)
def test_an_option_naming_a_dim_no_declaration_has_is_a_parse_error(text, column):
    """one_hot(y, C) with C in no declaration: evaluation met the text 'C' where the
    number of classes belongs (a raw UFuncTypeError; a KeyError in compiled code)."""
    with pytest.raises(graphc.ParseError, match="the dim C is in no declaration") as info:
        graphc.parse(text)
    assert info.value.column == column
    g = graphc.parse("y: (N,) int; s: (N, C); L = sum(one_hot(y, C) * s)")  # declared: fine
    assert float(g.evaluate(y=np.array([0, 2]), s=np.ones((2, 3))).value) == 2.0


@pytest.mark.parametrize("fn", ["softmax", "log_softmax"])
def test_softmax_of_a_scalar_is_refused_at_its_gate(fn: str) -> None:
    """softmax normalises along an axis, which a scalar lacks: it failed while the
    gradient was built, naming a sum gate the user never wrote ("sum gate: axis -1 is
    out of range for 0-d shapes (arguments: f ())"); an undeclared input was taken for a
    scalar and then asked for at the call."""
    from graphc.errors import ShapeError

    with pytest.raises(ShapeError) as caught:
        graphc.compile(f"x: ()\nf = {fn}(x)")
    assert str(caught.value).startswith(
        f"line 2, column 5: {fn} gate: {fn} needs scores with at least one dim, got a scalar"
    )
    with pytest.raises(ShapeError, match=f"{fn} gate: axis 1 is out of range"):
        graphc.compile(f"x: (3,)\nf = sum({fn}(x, axis=1))")
    with pytest.raises(graphc.InputError, match="the shape of x is needed"):
        graphc.compile(f"f = {fn}(x)")  # undeclared: not taken for a scalar
    c = graphc.compile(f"f = sum({fn}(x))", shapes={"x": (3,)})  # and a vector computes
    x = np.array([0.5, -1.0, 2.0])
    e = np.exp(x - x.max())
    want = np.sum(e / e.sum()) if fn == "softmax" else np.sum(np.log(e / e.sum()))
    assert float(c.value_and_grad(x=x)[0]) == pytest.approx(want, rel=1e-14)


def test_inputs_fast_path_gives_what_the_general_path_gives():
    """_inputs takes float64 arrays, intp labels and Python floats as they are (a fast
    path): the same arrays, dims and (shape, dtype, cast) as the general path, which
    every other input takes (float32, int labels of another width, lists, ints)."""
    text, _, point = WORKLOADS["2-layer relu"]
    ns = graphc.compile(text).module.__dict__
    spec = ns["_SPEC"]
    values = [point[name] for name, _, _ in spec]
    fast, slow = ns["_inputs"](spec, *values), ns["_inputs_any"](spec, values)
    assert fast[1] == slow[1] and fast[2] == slow[2]
    for a, b in zip(fast[0], slow[0], strict=True):
        assert a.dtype == b.dtype and np.array_equal(a, b)
    assert all(a is v for a, v in zip(fast[0], values, strict=True) if isinstance(v, np.ndarray))
    other = [v.astype(np.float32) if isinstance(v, np.ndarray) and v.dtype.kind == "f"
             else v.astype(np.int32) if isinstance(v, np.ndarray) else v for v in values]
    got = ns["_inputs"](spec, *other)
    assert got[2] == ns["_inputs_any"](spec, other)[2]
    floats = {a.dtype for a, (_, _, kind) in zip(got[0], spec, strict=True) if kind != "int"}
    assert floats == {np.dtype(np.float32)}
    with pytest.raises(ValueError, match="has shape"):
        ns["_inputs"](spec, *[v[:1] if isinstance(v, np.ndarray) and v.ndim == 2 else v
                              for v in values])
