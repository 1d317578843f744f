"""graphc's benchmarks: generated gradient code against hand-written NumPy and peers.

Run ``./dev bench`` (or ``python benchmarks/run.py --help``); see ``docs/performance.md``.
"""
