"""Property tests draw the same examples on every run (derandomized), so that a red run
means a failure anyone can reproduce, not a new random draw. ``GRAPHC_FUZZ=1`` draws
fresh examples on each run, for exploratory fuzzing (a failure prints the example and a
blob that ``@reproduce_failure`` replays)."""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("repeatable", derandomize=True, database=None, print_blob=True)
settings.register_profile("fuzz", derandomize=False, database=None, print_blob=True)
settings.load_profile("fuzz" if os.environ.get("GRAPHC_FUZZ") else "repeatable")
