"""Listening to the database's corrections channel directly, as the Processor does (SQL only, asyncpg).

This is how the suite proves the triggers of ``fixtures/test-schema.sql`` (docs/processor.md section 7) fire
with the documented payloads, independently of any Processor. A marker on a second channel, sent after the last
change, is the positive barrier: PostgreSQL delivers notifications in commit order, so once it arrives every
announcement of the changes before it has arrived too.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from typing import Any

import asyncpg

from ..clock import ANSWER, SETTLE, within

CHANNEL = "live_corrections"
BARRIER_CHANNEL = "live_corrections_suite_barrier"


class Announcements:
    """A dedicated connection LISTENing on the corrections channel, keeping every payload in order."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.connection: asyncpg.Connection | None = None
        self.payloads: list[str] = []
        self._barriers: dict[str, asyncio.Event] = {}

    async def open(self) -> None:
        self.connection = await asyncpg.connect(self.url, timeout=within(SETTLE))
        await self.connection.add_listener(CHANNEL, self._on_payload)
        await self.connection.add_listener(BARRIER_CHANNEL, self._on_barrier)

    def _on_payload(self, connection: object, pid: int, channel: str, payload: str) -> None:
        self.payloads.append(payload)

    def _on_barrier(self, connection: object, pid: int, channel: str, payload: str) -> None:
        event = self._barriers.get(payload)
        if event is not None:
            event.set()

    async def everything_so_far(self, pool: asyncpg.Pool, timeout: float = ANSWER) -> list[dict[str, Any]]:
        """Every announcement of the changes committed before this call, parsed, in order."""
        marker = secrets.token_hex(8)
        arrived = self._barriers[marker] = asyncio.Event()
        await pool.execute("SELECT pg_notify($1, $2)", BARRIER_CHANNEL, marker)
        try:
            await asyncio.wait_for(arrived.wait(), timeout)
        except TimeoutError:
            raise AssertionError(f"the barrier notification did not arrive within {timeout} s; "
                                 f"announcements so far: {self.payloads}") from None
        finally:
            del self._barriers[marker]
        return [json.loads(payload) for payload in self.payloads]

    async def close(self) -> None:
        connection, self.connection = self.connection, None
        if connection is not None:
            await connection.close(timeout=within(ANSWER))
