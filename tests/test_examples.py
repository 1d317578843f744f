"""The examples run: the digits training in its short form (one epoch, a few batches).

The full run's claim (at least 95 % test accuracy in under a minute) is recorded in
docs/tensors.md with the command that reproduces it.
"""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


def _load(name: str):
    spec = importlib.util.spec_from_file_location(name, EXAMPLES / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_digits_training_short_form_learns(tmp_path):
    digits = _load("train_digits")
    lines: list[str] = []
    history = digits.train(epochs=2, batches=4, log=lines.append)
    assert len(lines) == 2 and lines[0].startswith("epoch  1  loss")
    assert all(math.isfinite(v) for v in history["loss"])
    assert history["loss"][1] < history["loss"][0]
    # chance is 10 %: a few SGD steps on graphc's gradient must do far better
    assert history["test_acc"][-1] > 0.4
    png = digits.plot(history, tmp_path / "curves.png")
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
