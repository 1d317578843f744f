"""graphc: a symbolic computation-graph compiler.

Text -> networkx DAG of gates -> reverse-mode gradient graph -> values, NumPy code,
Graphviz diagrams and checks of hand-derived derivatives.

>>> import graphc
>>> g = graphc.parse("(x+y)z")
>>> ev = g.evaluate(x=-2, y=5, z=-4)
>>> float(ev.value), [float(ev.grads[n]) for n in g.inputs]
(-12.0, [-4.0, -4.0, 3.0])
"""

from .check import CheckResult, check
from .codegen import Compiled, compile
from .errors import (
    DomainWarning,
    GraphcError,
    GraphcWarning,
    InputError,
    OverwriteError,
    ParseError,
)
from .evaluate import Evaluation, NodeEval
from .gradcheck import check_backward, gradcheck
from .graph import Graph, parse
from .render import render
from .render_steps import render_steps
from .render_view import RenderError

__all__ = [
    "CheckResult",
    "Compiled",
    "DomainWarning",
    "Evaluation",
    "Graph",
    "GraphcError",
    "GraphcWarning",
    "InputError",
    "NodeEval",
    "OverwriteError",
    "ParseError",
    "RenderError",
    "check",
    "check_backward",
    "compile",
    "gradcheck",
    "parse",
    "render",
    "render_steps",
]
__version__ = "0.1.0"
