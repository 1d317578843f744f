"""Placeholder: this stage is being built (see the issue tracker)."""
