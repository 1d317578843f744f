"""graphc's main demo: the cs231n circuits parsed, differentiated, compiled and drawn.

Run it with ``./dev demo``. It prints each circuit's gradients (symbolic and at the
notes' point), the generated NumPy code of the staged example, and writes the (x+y)z
diagram to ``out/circuit.svg`` (or ``out/circuit.dot`` when Graphviz is missing).
"""

from __future__ import annotations

import shutil
from pathlib import Path

import graphc

CIRCUITS = {
    "(x+y)z": ("(x+y)z", dict(x=-2, y=5, z=-4)),
    "sigmoid neuron": (
        "1/(1+exp(-(w0*x0+w1*x1+w2)))",
        dict(w0=2, x0=-1, w1=-3, x1=-2, w2=-3),
    ),
    "2(xy + max(z, w))": ("2*(x*y + max(z, w))", dict(x=3, y=-4, z=2, w=-1)),
    "staged program": (
        "sigy = 1/(1+exp(-y))\nnum = x + sigy\nf = num / (sigmoid(x) + (x+y)^2)",
        dict(x=3, y=-4),
    ),
}


def main() -> None:
    for title, (text, point) in CIRCUITS.items():
        graph = graphc.parse(text)
        ev = graph.evaluate(**point)
        print(f"== {title}: f = {graph.to_text()}")
        for name, grad in graph.gradients().items():
            print(f"   ∂f/∂{name} = {grad}")
        at = ", ".join(f"{k}={v}" for k, v in point.items())
        grads = ", ".join(f"∂f/∂{k} = {float(v):.4f}" for k, v in ev.grads.items())
        print(f"   at {at}: f = {float(ev.value):.4f}; {grads}\n")

    staged = graphc.compile(CIRCUITS["staged program"][0])
    body = staged.source.split("def value_and_grad")[1].split("\n\n\ndef forward(")[0]
    print("== generated value_and_grad of the staged program:\ndef value_and_grad" + body)

    out = Path("out")
    out.mkdir(exist_ok=True)
    path = out / ("circuit.svg" if shutil.which("dot") else "circuit.dot")
    graphc.render(graphc.parse("(x+y)*z"), at=dict(x=-2, y=5, z=-4), path=path)
    print(f"== the (x+y)z circuit with values and gradients: {path}")


if __name__ == "__main__":
    main()
