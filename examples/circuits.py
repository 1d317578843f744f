"""Draw the cs231n notes' three circuits with graphc, into docs/images/ (SVG and PNG).

    .venv/bin/python examples/circuits.py [OUTDIR]

1. (x+y)·z at x=-2, y=5, z=-4;
2. the sigmoid neuron 1/(1+exp(-(w0·x0 + w1·x1 + w2))), gate by gate and with one σ gate;
3. 2·(x·y + max(z, w)) at x=3, y=-4, z=2, w=-1 (add distributes, max routes, mul swaps);
plus the first circuit with the path from x highlighted and its chain rule written out,
and the notes' linear classifier s = W x + b (cat, dog, ship scores of a 4-pixel image)
with shapes on the wires and each matrix gate's VJP rule.
Needs Graphviz's dot program (apt-get install graphviz / brew install graphviz).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

import graphc

NEURON = "1/(1+exp(-(w0*x0 + w1*x1 + w2)))"
NEURON_AT = {"w0": 2, "x0": -1, "w1": -3, "x1": -2, "w2": -3}

CIRCUITS = {
    "mul_add_circuit": ("(x+y)*z", {"x": -2, "y": 5, "z": -4}, {}),
    "sigmoid_neuron_circuit": (NEURON, NEURON_AT, {}),
    "sigmoid_gate_circuit": (NEURON, NEURON_AT, {"group": "auto", "local": True}),
    "backward_flow_patterns": ("2*(x*y + max(z, w))", {"x": 3, "y": -4, "z": 2, "w": -1}, {}),
    "linear_classifier": (
        "W: (K, D); x: (D,); b: (K,)\ns = W @ x + b",
        {
            "W": np.array([[0.2, -0.5, 0.1, 2.0], [1.5, 1.3, 2.1, 0.0], [0, 0.25, 0.2, -0.3]]),
            "x": np.array([56.0, 231, 24, 2]),
            "b": np.array([1.1, 3.2, -1.2]),
        },
        {"local": True},
    ),
    "mul_add_chain_rule": (
        "q = x + y; f = q * z",
        {"x": -2, "y": 5, "z": -4},
        {"highlight": "x", "local": True},
    ),
}


def main(outdir: str = "docs/images") -> None:
    out = Path(outdir)
    out.mkdir(parents=True, exist_ok=True)
    for name, (text, at, options) in CIRCUITS.items():
        graph = graphc.parse(text)
        for ext in ("svg", "png"):
            graphc.render(graph, at=at, path=out / f"{name}.{ext}", **options)
        print(f"wrote {out / name}.svg and .png")


if __name__ == "__main__":
    main(*sys.argv[1:])
