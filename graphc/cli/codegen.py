"""``graphc codegen``: generated NumPy or math code for forward and backward passes."""

from __future__ import annotations

from typing import Any


def add(sub: Any) -> None:
    """Register the ``codegen`` subcommand (nothing yet)."""
