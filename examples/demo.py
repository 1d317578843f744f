"""graphc's main demo: the cs231n circuits, parsed, differentiated and evaluated."""

from __future__ import annotations

import graphc

CIRCUITS = {
    "(x+y)z": ("(x+y)z", dict(x=-2, y=5, z=-4)),
    "sigmoid neuron": (
        "1/(1+exp(-(w0*x0+w1*x1+w2)))",
        dict(w0=2, x0=-1, w1=-3, x1=-2, w2=-3),
    ),
    "staged program": (
        "sigy = 1/(1+exp(-y))\nnum = x + sigy\nf = num / (sigmoid(x) + (x+y)^2)",
        dict(x=3, y=-4),
    ),
}


def main() -> None:
    for title, (text, point) in CIRCUITS.items():
        graph = graphc.parse(text)
        ev = graph.evaluate(**point)
        print(f"== {title}: {graph.to_text()}")
        for name, grad in graph.gradients().items():
            print(f"   ∂f/∂{name} = {grad}")
        print(f"   at {point}: f = {float(ev.value):.4f}")
        print("   " + ", ".join(f"∂f/∂{k} = {float(v):.4f}" for k, v in ev.grads.items()))
        print()


if __name__ == "__main__":
    main()
