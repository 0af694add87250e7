"""The suite's one clock: every deadline a scenario waits for is scaled here, by one factor.

A slower machine (or a loaded CI runner) is one flag, ``-D timeout_factor=2``, not edits in many files. The
waiting primitives (:func:`support.waiting.eventually`, :meth:`Viewer.wait_for`, :meth:`Viewer.wait_closed`,
the map and browser waits, :meth:`Suite.run`, a Processor's stop, the HTTP and database connect timeouts)
call :func:`within` on the seconds they are given, so call sites keep writing the deadline in the units a
reader checks against the contract. The factor never touches the Processor's own settings.

Named timeouts, for call sites that have no contract figure of their own:
"""

from __future__ import annotations

#: A look at what is already there (a map that should show something now, not after a wait).
GLANCE = 0.05
#: One HTTP probe inside a polling wait (the wait's own deadline bounds the whole).
PROBE = 2.0
#: A frame, row or metric the system produces at once (an answer to a request, a stored position).
ANSWER = 5.0
#: An outcome after some work: a metric settling, a health state changing, a lock request queued.
SETTLE = 10.0
#: The Processor giving up on a frozen dependency, or a backlog published and stored.
RECOVER = 15.0
#: Catching up after an outage, or many positions arriving.
CATCH_UP = 20.0
#: Many answers or rows, or the backstop around a step that waits for one of the deadlines above.
STEP = 30.0
#: The backstop around starting a Processor or a whole step run on the suite's loop.
BACKSTOP = 60.0

_factor = 1.0


class ClockError(ValueError):
    """An unusable ``-D timeout_factor``."""


def set_factor(factor: float) -> None:
    """Scale every later deadline by ``factor`` (set once, from ``-D timeout_factor``, before the run)."""
    global _factor
    if not factor > 0:
        raise ClockError(f"-D timeout_factor must be a positive number, got {factor!r}")
    _factor = float(factor)


def factor() -> float:
    """The factor in force (1 unless ``-D timeout_factor`` says otherwise)."""
    return _factor


def within(seconds: float) -> float:
    """``seconds`` of deadline on this machine: the one place deadlines are scaled."""
    return seconds * _factor
