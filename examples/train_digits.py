"""Train the lecture's 2-layer softmax classifier on scikit-learn's digits with graphc's code.

The network, its loss and its gradient come from one graphc program; training is
mini-batch SGD written here in a few lines of NumPy that call only the generated
``value_and_grad`` (for the gradient) and ``forward`` (for the scores). The data is
scikit-learn's bundled digits: 1,797 8×8 images, no download.

    .venv/bin/python examples/train_digits.py            # full run, plots docs/images/
    .venv/bin/python examples/train_digits.py --epochs 1 --batches 3 --no-plot

Needs the ``examples`` extra (scikit-learn, matplotlib), which ``./dev`` installs.
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path
from typing import Any

import numpy as np

import graphc

#: The classifier and its loss: declared shapes, a ReLU hidden layer, the softmax
#: cross-entropy over the batch and L2 regularisation (the issue's program verbatim).
PROGRAM = """
X: (N, D); y: (N,) int
W1: (D, H); b1: (H,); W2: (H, C); b2: (C,)
h = relu(X @ W1 + b1)
s = h @ W2 + b2
loss = mean(logsumexp(s, axis=1) - pick(s, y)) + 0.5 * reg * (sum(W1^2) + sum(W2^2))
"""

#: The scores alone, for accuracy.
SCORES = """
X: (N, D); W1: (D, H); b1: (H,); W2: (H, C); b2: (C,)
s = relu(X @ W1 + b1) @ W2 + b2
"""

IMAGES = Path(__file__).resolve().parent.parent / "docs" / "images"


def load(seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Digits scaled to [0, 1], split 80/20 into train and test with a fixed seed."""
    from sklearn.datasets import load_digits

    digits = load_digits()
    X = digits.data.astype(np.float64) / 16.0
    y = digits.target.astype(np.intp)
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = len(y) // 5
    test, train = order[:n_test], order[n_test:]
    return X[train], y[train], X[test], y[test]


def train(
    epochs: int = 30,
    batches: int | None = None,
    hidden: int = 64,
    batch_size: int = 64,
    lr: float = 0.5,
    reg: float = 1e-4,
    seed: int = 0,
    log: Any = print,
) -> dict[str, list[float]]:
    """Train with mini-batch SGD; returns the per-epoch history (loss, accuracies)."""
    Xtr, ytr, Xte, yte = load(seed)
    rng = np.random.default_rng(seed)
    D, C = Xtr.shape[1], 10
    params = {
        "W1": rng.normal(size=(D, hidden)) * np.sqrt(2.0 / D),
        "b1": np.zeros(hidden),
        "W2": rng.normal(size=(hidden, C)) * np.sqrt(2.0 / hidden),
        "b2": np.zeros(C),
    }
    step = graphc.compile(PROGRAM, wrt=list(params)).value_and_grad
    scores = graphc.compile(SCORES).forward

    def accuracy(X: np.ndarray, y: np.ndarray) -> float:
        return float(np.mean(np.argmax(scores(X=X, **params), axis=1) == y))

    history: dict[str, list[float]] = {"loss": [], "train_acc": [], "test_acc": []}
    result = None  # the last step's (loss, gradients): each step writes into its arrays
    start = time.perf_counter()
    for epoch in range(1, epochs + 1):
        order = rng.permutation(len(ytr))
        losses = []
        for k, i in enumerate(range(0, len(order), batch_size)):
            if batches is not None and k >= batches:
                break
            idx = order[i : i + batch_size]
            result = step(X=Xtr[idx], y=ytr[idx], reg=reg, **params, out=result)
            loss, grads = result
            for name, g in grads.items():
                params[name] -= lr * g  # w ← w - η ∂E/∂w
            losses.append(float(loss))
        history["loss"].append(float(np.mean(losses)))
        history["train_acc"].append(accuracy(Xtr, ytr))
        history["test_acc"].append(accuracy(Xte, yte))
        log(
            f"epoch {epoch:2d}  loss {history['loss'][-1]:.4f}  "
            f"train {history['train_acc'][-1]:.1%}  test {history['test_acc'][-1]:.1%}  "
            f"({time.perf_counter() - start:.1f} s)"
        )
    return history


def plot(history: dict[str, list[float]], path: Path) -> Path:
    """The loss and accuracy curves, side by side, as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    epochs = range(1, len(history["loss"]) + 1)
    fig, (a, b) = plt.subplots(1, 2, figsize=(9, 3.4))
    a.plot(epochs, history["loss"], color="tab:red")
    a.set(xlabel="epoch", ylabel="training loss (mean per batch)", title="loss")
    b.plot(epochs, history["train_acc"], label="train")
    b.plot(epochs, history["test_acc"], label="test")
    b.set(xlabel="epoch", ylabel="accuracy", title="accuracy", ylim=(0.8, 1.0))
    b.legend()
    fig.suptitle("2-layer network on the digits, trained with graphc's generated gradient")
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--batches", type=int, default=None, help="batches per epoch (all)")
    parser.add_argument("--no-plot", action="store_true", help="do not write the curves")
    args = parser.parse_args(argv)
    history = train(epochs=args.epochs, batches=args.batches)
    print(f"final test accuracy: {history['test_acc'][-1]:.1%}")
    if not args.no_plot:
        print(f"wrote {plot(history, IMAGES / 'digits_training.png')}")


if __name__ == "__main__":
    main()
