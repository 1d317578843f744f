"""``python -m graphc``: the graphc command."""

from .cli import main

raise SystemExit(main())
