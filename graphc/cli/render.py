"""``graphc render``: draw the circuit with values and gradients (Graphviz) (not yet available)."""

from __future__ import annotations

from typing import Any


def add(sub: Any) -> None:
    """Register the ``render`` subcommand (nothing yet)."""
