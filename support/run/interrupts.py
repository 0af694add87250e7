"""A SIGTERM ends a run the way Ctrl-C does: behave aborts, and the fixtures' clean-ups stop the Processor and
the services.

CI runners, ``timeout`` and process supervisors stop a run with SIGTERM, and Python's default for it is to die at
once, which leaves the embedded Redis and PostgreSQL (and any Processor) running on the machine.
"""

from __future__ import annotations

import signal
import threading
from types import FrameType

__all__ = ["sigterm_aborts_the_run"]


def _interrupt(signum: int, frame: FrameType | None) -> None:
    raise KeyboardInterrupt(f"stopped by signal {signal.Signals(signum).name}")


def sigterm_aborts_the_run() -> None:
    """Turn SIGTERM into :exc:`KeyboardInterrupt` in the main thread (signals can only be handled there)."""
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, _interrupt)
