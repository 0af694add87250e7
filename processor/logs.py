"""One line per event on stderr: ``2026-11-23T10:00:00.123Z INFO processor.ws message``.

Tracebacks are folded into the same line so that log shippers never split an event. Loggers that could
print HTTP headers (and thus cookies) are kept above DEBUG.
"""

from __future__ import annotations

import logging
import sys
import time

__all__ = ["setup"]


class LineFormatter(logging.Formatter):
    """UTC timestamps with milliseconds; a traceback (``logger.exception``, ``exc_info=True``, ``stack_info``)
    follows the message in the same record, its lines joined with `` | ``."""

    converter = time.gmtime  # type: ignore[assignment]  # typeshed types time.gmtime as its no-argument overload

    def __init__(self) -> None:
        super().__init__("%(asctime)s.%(msecs)03dZ %(levelname)s %(name)s %(message)s", "%Y-%m-%dT%H:%M:%S")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)  # message, then the full traceback on the lines below it
        return text.replace("\r", "\\r").replace("\n", " | ")


def setup(level: str) -> None:
    """Route every logger to stderr in the one-line format at ``level``."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(LineFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # websockets logs raw request headers (Cookie included) at DEBUG and one line per connection at INFO.
    numeric = logging.getLevelName(level)
    logging.getLogger("websockets").setLevel(max(logging.WARNING, numeric))
    for name in ("aiohttp", "asyncio"):
        logging.getLogger(name).setLevel(max(logging.INFO, numeric))
