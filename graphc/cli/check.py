"""``graphc check``: check a hand-derived derivative (not yet available)."""

from __future__ import annotations

from typing import Any


def add(sub: Any) -> None:
    """Register the ``check`` subcommand (nothing yet)."""
