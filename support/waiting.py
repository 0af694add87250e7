"""Waiting for outcomes, never for time.

:func:`eventually` polls a probe until it reports success or the deadline passes, then fails with the last
thing it saw. It is for outcomes that announce themselves to nobody (an HTTP endpoint turning healthy, a row
appearing); anything that pushes events (frames, log lines) is awaited directly instead.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from .clock import within

T = TypeVar("T")

#: Pause between two probes. Short: probes are cheap and a scenario should not wait longer than it must.
POLL_INTERVAL = 0.02


class OutcomeTimeout(AssertionError):
    """The awaited outcome did not happen in time; the message says what was seen instead."""


async def eventually(
    probe: Callable[[], Awaitable[tuple[bool, T]]],
    *,
    timeout: float,
    what: str,
) -> T:
    """Call ``probe`` until it returns ``(True, value)``; return ``value``.

    ``probe`` returns ``(done, observation)``; the last observation is quoted if the deadline passes.
    """
    deadline = time.monotonic() + within(timeout)
    last: object = "<never probed>"
    while True:
        try:
            done, value = await probe()
        except Exception as exc:  # the probe's failure is an observation too: show it on timeout
            done, value = False, f"{type(exc).__name__}: {exc}"  # type: ignore[assignment]  # kept only to show on timeout, never returned
        if done:
            return value
        last = value
        if time.monotonic() >= deadline:
            raise OutcomeTimeout(f"waited {timeout} s for {what}; last seen: {last!r}")
        await asyncio.sleep(POLL_INTERVAL)  # poll interval of a deadline-bounded wait, not a wait for an outcome
