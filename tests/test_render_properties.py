"""Diagrams of random programs, scalar (``test_oracles_common``'s trees) and tensor
(``test_tensors``'s programs), with random options: every one is drawn (a fuzz run found
``group="auto"`` and ``highlight`` raising on tensor programs, and ``symbolic=True``
refusing them), its steps are written, and a highlighted input's caption ends in the
gradient that evaluation gives."""

from __future__ import annotations

import html
import random
import warnings

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from test_oracles_common import to_text, trees
from test_tensors import tensor_point, tensor_programs

import graphc
from graphc.render_view import display_names, fmt_value

SETTINGS = settings(max_examples=15, deadline=None, suppress_health_check=list(HealthCheck))


def _draws(g: graphc.Graph, at: dict, seed: int, tmp_path) -> None:
    rnd = random.Random(seed)
    names = list(g.inputs) + [d["name"] for _, d in g.nx.nodes(data=True) if d["name"]]
    opts = {
        "local": rnd.random() < 0.5,
        "symbolic": rnd.random() < 0.5,
        "cluster": rnd.random() < 0.5,
        "group": rnd.choice([None, "auto"]),
        "precision": rnd.randint(0, 4),
    }
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        ev = g.evaluate(**at)
        assert graphc.render(g, **opts).source
        x = rnd.choice(list(g.inputs))
        source = graphc.render(g, at=at, highlight=rnd.choice(names), **opts).source
        source = graphc.render(g, at=ev, highlight=x, **opts).source
        head = f"∂{display_names(g)[g.output]}/∂{x} = "
        parts = [html.unescape(p) for p in source.split('<BR ALIGN="LEFT"/>')]
        caption = next(p for p in parts if p.startswith(head))
        total = fmt_value(ev.grads[x], opts["precision"])
        if caption == head + "0 (no path to the output)":
            assert not np.any(ev.grads[x]), caption
        else:
            assert caption.endswith((f"= {total}", f"= {total}:")), (caption, total)
        steps = graphc.render_steps(g, at, tmp_path / f"s{seed}", fmt="dot", **opts)
    assert steps[-1].name == "index.html" and len(steps) >= 2


@SETTINGS
@given(tensor_programs(), st.integers(0, 2**32 - 1))
def test_tensor_programs_are_drawn_with_any_options(tmp_path_factory, text, seed):
    _draws(graphc.parse(text), tensor_point(seed), seed, tmp_path_factory.mktemp("t"))


@SETTINGS
@given(trees(max_leaves=8), st.integers(0, 2**32 - 1))
def test_scalar_programs_are_drawn_with_any_options(tmp_path_factory, tree, seed):
    g = graphc.parse(to_text(tree))
    rng = np.random.default_rng(seed)
    _draws(g, {k: float(rng.normal()) for k in g.inputs}, seed, tmp_path_factory.mktemp("s"))
