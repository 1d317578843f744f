"""``python -m graphc.cli``: the graphc command."""

from . import main

raise SystemExit(main())
