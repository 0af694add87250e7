"""Race control and other hands changing the database behind the Processor's back, and when each change was
committed: a scenario's "within N seconds" counts from there.

Corrections (docs/processor.md, section 4) start at a commit in the database, not at anything the suite sends
the Processor; the suite makes these changes in its own sessions, as race control's tools, a migration or a
person with psql would. The announcements of section 7 are sent by the triggers of ``fixtures/test-schema.sql``,
except a mistaken one (:func:`announce`), which the suite sends itself to see that it changes nothing.
"""

from __future__ import annotations

import json
import secrets
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import asyncpg

from ..processes.scrape import MetricsSnapshot

CHANNEL = "live_corrections"


@dataclass
class RaceControl:
    """What a scenario remembers of race control: when its latest change was committed, and the Processor's
    metrics and log length from before the scenario touched anything."""

    changed_at: float | None = None
    #: How many changes race control has committed in this scenario.
    changes: int = 0
    baseline: MetricsSnapshot | None = None
    log_lines: int | None = None

    def changed(self) -> None:
        """Race control's latest change was committed just now."""
        self.changed_at = time.monotonic()
        self.changes += 1

    def since_change(self) -> float:
        assert self.changed_at is not None, "race control changed nothing in this scenario"
        return time.monotonic() - self.changed_at


# -- announcements the triggers did not send ----------------------------------------------------------------

def mistaken(change: str, *, event_id: str, entry_id: str, device_id: str) -> str:
    """A payload of the documented shape that announces ``change`` (``faulty``, ``removed``, ``withdrawn``) though
    nothing changed."""
    if change == "faulty":
        return json.dumps({"op": "faulty", "deviceId": device_id})
    return json.dumps({"op": change, "eventId": event_id, "entryId": entry_id, "deviceId": device_id})


def unreadable() -> str:
    """A payload of none of the documented shapes, marked so that a log line can be traced back to it."""
    return json.dumps({"op": "teleported", "deviceId": f"suite-{secrets.token_hex(4)}", "where": "the moon"})


async def announce(pool: asyncpg.Pool, payload: str) -> None:
    """Send ``payload`` on the corrections channel, as a trigger would (committed at once)."""
    await pool.execute("SELECT pg_notify($1, $2)", CHANNEL, payload)


# -- changes to positions and cars ----------------------------------------------------------------------------

async def flag_then_roll_back(pool: asyncpg.Pool, device_id: str, ts: datetime) -> int:
    """Flag a position faulty in a transaction that is rolled back; return how many rows it had changed."""
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        try:
            status = await connection.execute("UPDATE positions SET faulty = true WHERE device_id = $1 AND ts = $2",
                                              device_id, ts)
        finally:
            await transaction.rollback()
    return int(status.split()[-1])


async def delete_event(pool: asyncpg.Pool, event_id: str) -> int:
    """Delete an event, as the CMS does; its cars and their trackers' assignments go by cascade."""
    status = await pool.execute("DELETE FROM events WHERE id = $1", event_id)
    return int(status.split()[-1])


async def move_position(pool: asyncpg.Pool, device_id: str, ts: datetime, latitude: float, longitude: float) -> int:
    """Correct the place of one stored position; return how many rows changed."""
    status = await pool.execute("UPDATE positions SET latitude = $3, longitude = $4 WHERE device_id = $1 AND ts = $2",
                                device_id, ts, latitude, longitude)
    return int(status.split()[-1])


async def delete_position(pool: asyncpg.Pool, device_id: str, ts: datetime) -> int:
    status = await pool.execute("DELETE FROM positions WHERE device_id = $1 AND ts = $2", device_id, ts)
    return int(status.split()[-1])


async def latest_while_wiped(pool: asyncpg.Pool) -> tuple[int, int]:
    """Empty ``positions`` with one TRUNCATE inside a transaction that is then rolled back, so the run's shared
    history survives: return (latest positions before, latest positions while ``positions`` was empty). The
    transaction holds ``positions`` for a moment only: nothing else of the run writes meanwhile."""
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        try:
            await connection.execute("SET LOCAL lock_timeout = '10s'")
            before = int(await connection.fetchval("SELECT count(*) FROM latest_positions"))
            await connection.execute("TRUNCATE positions")
            during = int(await connection.fetchval("SELECT count(*) FROM latest_positions"))
        finally:
            await transaction.rollback()
    return before, during


async def latest_of(pool: asyncpg.Pool, device_id: str) -> dict[str, Any] | None:
    """The device's row of ``latest_positions`` (``None``: it has none)."""
    row = await pool.fetchrow("SELECT ts, latitude, longitude FROM latest_positions WHERE device_id = $1", device_id)
    return dict(row) if row is not None else None


# -- another program holding a latest position (the order in which the Processor takes them) ------------------

class LatestRowHold:
    """An open transaction holding one device's ``latest_positions`` row (``SELECT … FOR UPDATE``): a writer that
    must update that row waits for it, holding the rows it already took. :func:`row_taken` then shows which."""

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._connection: asyncpg.Connection | None = None
        self._transaction: asyncpg.transaction.Transaction | None = None

    async def acquire(self, device_id: str) -> None:
        self._connection = await self._pool.acquire()
        try:
            self._transaction = self._connection.transaction()
            await self._transaction.start()
            await self._connection.execute("SET LOCAL idle_in_transaction_session_timeout = '60s'")
            found = await self._connection.fetch(
                "SELECT device_id FROM latest_positions WHERE device_id = $1 FOR UPDATE", device_id)
            assert len(found) == 1, f"device {device_id} has no latest position to hold"
        except BaseException:
            await self.release()
            raise

    async def release(self) -> None:
        """Let the waiting writer go on; idempotent (also the scenario's clean-up)."""
        connection, self._connection = self._connection, None
        if connection is None:
            return
        try:
            if self._transaction is not None:
                await self._transaction.rollback()
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            connection.terminate()
        finally:
            self._transaction = None
            await self._pool.release(connection)


async def row_taken(pool: asyncpg.Pool, device_id: str) -> bool:
    """Whether another transaction holds ``device_id``'s ``latest_positions`` row right now (asked without
    waiting, in a transaction of its own that is rolled back at once)."""
    async with pool.acquire() as connection:
        transaction = connection.transaction()
        await transaction.start()
        try:
            await connection.execute("SELECT 1 FROM latest_positions WHERE device_id = $1 FOR UPDATE NOWAIT", device_id)
        except asyncpg.LockNotAvailableError:
            return True
        finally:
            await transaction.rollback()
    return False


async def row_waiters(pool: asyncpg.Pool) -> int:
    """Sessions waiting right now for a row another transaction holds (a transaction id or a tuple lock)."""
    return int(await pool.fetchval("SELECT count(*) FROM pg_locks WHERE NOT granted"
                                   " AND locktype IN ('transactionid', 'tuple')"))
