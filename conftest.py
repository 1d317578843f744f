"""pytest set-up for the whole repository."""

# `python -m graphc` entry points run the command line when imported: not doctest material.
collect_ignore = ["graphc/__main__.py", "graphc/cli/__main__.py"]
