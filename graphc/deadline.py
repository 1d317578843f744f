"""A deadline that stops SymPy: closed forms are built under a time limit.

SymPy cannot be told to stop, and some of its exact algorithms (roots of large integers,
``factorint``) run for minutes on a short input. :func:`deadline` arms a ``SIGALRM``
timer whose handler raises :class:`DeadlineExceeded` in the middle of whatever Python
code runs, SymPy's included; the caller turns it into a :class:`~graphc.errors.GraphcError`
that says which limit was hit. Signals reach only the main thread: elsewhere (and where
a timer is already armed, by an outer deadline) the block runs without one.
"""

from __future__ import annotations

import contextlib
import signal
import threading
from collections.abc import Iterator

__all__ = ["DeadlineExceeded", "deadline"]


class DeadlineExceeded(Exception):  # noqa: N818  (internal; callers raise GraphcError)
    """The block ran past its deadline."""


def _raise(signum: int, frame: object) -> None:
    raise DeadlineExceeded


@contextlib.contextmanager
def deadline(seconds: float) -> Iterator[None]:
    """Run the block; raise :class:`DeadlineExceeded` in it after ``seconds``."""
    usable = (
        hasattr(signal, "setitimer")
        and threading.current_thread() is threading.main_thread()
        and signal.getitimer(signal.ITIMER_REAL)[0] == 0.0
        and seconds > 0
    )
    if not usable:
        yield
        return
    previous = signal.signal(signal.SIGALRM, _raise)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)
