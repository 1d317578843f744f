"""A deadline that stops SymPy: closed forms are built under a time limit.

SymPy cannot be told to stop, and some of its exact algorithms (roots of large integers,
``factorint``) run for minutes on a short input. :func:`deadline` arms a ``SIGALRM``
timer whose handler raises :class:`DeadlineExceeded` in the middle of whatever Python
code runs, SymPy's included; the caller turns it into a :class:`~graphc.errors.GraphcError`
that says which limit was hit. Signals reach only the main thread: elsewhere (and where
a timer is already armed, by an outer deadline) the block runs without one.

An interruption can be lost: a signal handled while Python runs a finaliser (``__del__``,
a garbage-collector callback) has its exception printed and dropped ("Exception
ignored in ..."). So the handler does not raise while the garbage collector runs (two
``gc.callbacks`` of graphc's, the first and the last, mark its start and end; a signal
handled in the first callback itself, before it has set the mark, waits too), and
after the deadline the timer keeps firing every 0.1 s until the block has ended: a
suite run once hung for minutes in ``simplify`` with a one-shot timer.
"""

from __future__ import annotations

import contextlib
import gc
import signal
import threading
from collections.abc import Iterator

__all__ = ["DeadlineExceeded", "deadline"]


class DeadlineExceeded(BaseException):
    """The block ran past its deadline.

    A ``BaseException``, as ``KeyboardInterrupt`` is: SymPy catches ``Exception`` in
    places (a step that fails is skipped), and a deadline it swallowed would stop nothing.
    """


#: After the deadline, the timer fires again at this interval until the block has ended,
#: in case something swallowed the first interruption anyway.
_REPEAT = 0.1

_collecting = [False]  # the garbage collector is running (its callbacks, finalisers)


def _gc_started(phase: str, info: dict[str, int]) -> None:
    if phase == "start":
        _collecting[0] = True


def _gc_stopped(phase: str, info: dict[str, int]) -> None:
    if phase == "stop":
        _collecting[0] = False


#: The code of graphc's two callbacks: a signal handled there is inside the collector,
#: whether or not the mark is set yet.
_OWN = (_gc_started.__code__, _gc_stopped.__code__)


def _watch_gc(on: bool) -> None:
    """Put graphc's two callbacks first and last in ``gc.callbacks`` (or take them out)."""
    for callback in (_gc_started, _gc_stopped):
        while callback in gc.callbacks:
            gc.callbacks.remove(callback)
    if on:
        gc.callbacks.insert(0, _gc_started)
        gc.callbacks.append(_gc_stopped)
    _collecting[0] = False


#: Seconds in a year: the longest timer armed.
_YEAR = 365 * 24 * 3600.0


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
    armed = [True]

    def interrupt(signum: int, frame: object) -> None:
        # not once the block has ended (a signal already on its way), nor inside the
        # garbage collector, where the exception would be dropped: the timer repeats
        if armed[0] and not _collecting[0] and getattr(frame, "f_code", None) not in _OWN:
            raise DeadlineExceeded

    previous = signal.signal(signal.SIGALRM, interrupt)
    _watch_gc(True)
    # a timer longer than the platform's time_t holds (1e10 s here) raises OverflowError;
    # a year is as good as never for a block of graphc's
    signal.setitimer(signal.ITIMER_REAL, min(seconds, _YEAR), _REPEAT)
    try:
        yield
    finally:
        armed[0] = False
        signal.setitimer(signal.ITIMER_REAL, 0.0)
        signal.signal(signal.SIGALRM, previous)
        _watch_gc(False)
