"""The suite's own hands on PostgreSQL: load the schema, seed what a scenario needs, check what was stored.

The Processor is judged by what ends up in the database, not by what it says about it.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from ..clock import SETTLE, within
from ..run.settings import REPO_ROOT
from ..waiting import eventually

SCHEMA = REPO_ROOT / "fixtures" / "test-schema.sql"
#: How often :meth:`Database.watch_waiting` looks at the waiting sessions.
WATCH_INTERVAL = 0.1


@dataclass(frozen=True)
class StoredPosition:
    device_id: str
    ts: datetime
    latitude: float
    longitude: float
    faulty: bool
    stream_id: str | None


class Database:
    """A small asyncpg pool owned by the suite (never shared with the Processor)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self.pool = await asyncpg.create_pool(self.url, min_size=1, max_size=4, timeout=within(SETTLE))

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    @property
    def _pool(self) -> asyncpg.Pool:
        assert self.pool is not None, "database not open"
        return self.pool

    async def load_schema(self, path: Path = SCHEMA) -> None:
        await self._pool.execute(path.read_text())

    # -- seeding ---------------------------------------------------------------------------------------

    async def add_organization(self, org_id: str, name: str, slug: str) -> None:
        await self._pool.execute("INSERT INTO organizations (id, name, slug) VALUES ($1, $2, $3)", org_id, name, slug)

    async def add_event(self, event_id: str, org_id: str, name: str, slug: str) -> None:
        await self._pool.execute(
            "INSERT INTO events (id, organization_id, name, slug, discipline) VALUES ($1, $2, $3, $4, 'rally')",
            event_id, org_id, name, slug,
        )

    async def add_entry(self, entry_id: str, event_id: str, number: str, crew: str | None) -> None:
        await self._pool.execute("INSERT INTO entries (id, event_id, number, crew) VALUES ($1, $2, $3, $4)",
                                 entry_id, event_id, number, crew)

    async def add_device(self, device_id: str, label: str) -> None:
        await self._pool.execute("INSERT INTO devices (id, label) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                                 device_id, label)

    async def assign_device(self, entry_id: str, device_id: str) -> None:
        await self._pool.execute("INSERT INTO entry_devices (entry_id, device_id) VALUES ($1, $2)", entry_id, device_id)

    async def move_device(self, device_id: str, entry_id: str) -> int:
        """Move a tracker from whatever car it is on to ``entry_id``; return how many assignments moved."""
        status = await self._pool.execute("UPDATE entry_devices SET entry_id = $2 WHERE device_id = $1",
                                          device_id, entry_id)
        return int(status.split()[-1])

    async def unassign_device(self, device_id: str) -> None:
        await self._pool.execute("DELETE FROM entry_devices WHERE device_id = $1", device_id)

    async def add_positions(self, rows: Iterable[tuple[str, datetime, float, float]]) -> None:
        await self._pool.executemany(
            "INSERT INTO positions (device_id, ts, latitude, longitude) VALUES ($1, $2, $3, $4)", list(rows)
        )

    async def flag_faulty(self, device_id: str, ts: datetime | None = None) -> int:
        """Mark one position (or, with ``ts=None``, every position) of a device faulty; return rows changed."""
        if ts is None:
            status = await self._pool.execute("UPDATE positions SET faulty = true WHERE device_id = $1", device_id)
        else:
            status = await self._pool.execute(
                "UPDATE positions SET faulty = true WHERE device_id = $1 AND ts = $2", device_id, ts
            )
        return int(status.split()[-1])

    async def set_faulty(self, device_id: str, ts: datetime, faulty: bool) -> int:
        """Flag one position faulty, or clear the flag; return rows changed."""
        status = await self._pool.execute("UPDATE positions SET faulty = $3 WHERE device_id = $1 AND ts = $2",
                                          device_id, ts, faulty)
        return int(status.split()[-1])

    async def withdraw_entry(self, entry_id: str) -> int:
        """Delete a car from its event, as the CMS does when it is withdrawn (its trackers' rows cascade)."""
        status = await self._pool.execute("DELETE FROM entries WHERE id = $1", entry_id)
        return int(status.split()[-1])

    # -- reading ---------------------------------------------------------------------------------------

    async def positions_of(self, device_id: str) -> list[StoredPosition]:
        rows = await self._pool.fetch(
            "SELECT device_id, ts, latitude, longitude, faulty, stream_id FROM positions"
            " WHERE device_id = $1 ORDER BY ts",
            device_id,
        )
        return [StoredPosition(**dict(row)) for row in rows]

    async def io_of(self, device_id: str, ts: datetime) -> str | None:
        """The ``io`` column of one stored position, as PostgreSQL renders the ``jsonb`` (``None``: no row, or
        SQL NULL; the caller tells them apart with :meth:`positions_of`)."""
        text: str | None = await self._pool.fetchval(
            "SELECT io::text FROM positions WHERE device_id = $1 AND ts = $2", device_id, ts)
        return text

    # -- clean-up --------------------------------------------------------------------------------------

    async def forget(self, *, organizations: Iterable[str], devices: Iterable[str]) -> None:
        """Delete a scenario's rows: its organisations (events, entries and assignments cascade), devices and
        every position of its devices."""
        devices = list(devices)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM positions WHERE device_id = ANY($1::text[])", devices)
            await conn.execute("DELETE FROM organizations WHERE id = ANY($1::uuid[])", list(organizations))
            await conn.execute("DELETE FROM devices WHERE id = ANY($1::text[])", devices)

    # -- pipeline and scale-out checks -----------------------------------------------------------------

    async def devices_of_event(self, event_id: str) -> list[str]:
        """The trackers currently on a car of ``event_id``."""
        rows = await self._pool.fetch(
            "SELECT ed.device_id FROM entry_devices ed JOIN entries e ON e.id = ed.entry_id"
            " WHERE e.event_id = $1 ORDER BY ed.device_id",
            event_id,
        )
        return [row["device_id"] for row in rows]

    async def cars_of_device(self, device_id: str) -> list[str]:
        """The entries (cars) ``device_id`` is fitted to right now."""
        rows = await self._pool.fetch("SELECT entry_id::text FROM entry_devices WHERE device_id = $1", device_id)
        return [row["entry_id"] for row in rows]

    async def positions_of_devices(self, device_ids: Iterable[str]) -> list[StoredPosition]:
        """Every stored position of these devices (a burst's whole outcome in one query)."""
        rows = await self._pool.fetch(
            "SELECT device_id, ts, latitude, longitude, faulty, stream_id FROM positions"
            " WHERE device_id = ANY($1::text[]) ORDER BY device_id, ts",
            list(device_ids),
        )
        return [StoredPosition(**dict(row)) for row in rows]

    async def inserts_waiting(self) -> int:
        """How many sessions wait for a lock on ``positions`` right now (the held-up inserts of :class:`InsertHold`)."""
        return int(await self._pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'relation'"
            " AND relation = 'positions'::regclass AND NOT granted"
        ))

    async def sessions_waiting(self) -> set[tuple[int, datetime]]:
        """The sessions waiting for a lock on ``positions`` right now, each as ``(pid, query_start)``: the same pair
        later means the same statement still waiting; a new one, a statement that gave up and came back."""
        rows = await self._pool.fetch(
            "SELECT a.pid, a.query_start FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid"
            " WHERE l.locktype = 'relation' AND l.relation = 'positions'::regclass AND NOT l.granted"
        )
        return {(row["pid"], row["query_start"]) for row in rows}

    async def watch_waiting(self, seconds: float, *, steady: float) -> list[str]:
        """Keep looking at the sessions waiting for ``positions`` for ``seconds`` (the caller's stall lasts that
        long: a set-up of that length, not a wait for an outcome); return how they differed, during the first
        ``steady`` seconds, from the one session waiting at the start (empty: the same statement waited all along)."""
        first = await self.sessions_waiting()
        changes = [] if len(first) == 1 else [f"at the start: {len(first)} sessions waiting, not one: {first}"]
        began = time.monotonic()
        while (elapsed := time.monotonic() - began) < seconds:
            if elapsed < steady and not changes:
                now = await self.sessions_waiting()
                if now != first:
                    changes.append(f"after {elapsed:.2f} s: {now}, at the start: {first}")
            await asyncio.sleep(WATCH_INTERVAL)  # pacing: looks at the waiting session while the stall lasts
        return changes

    async def server_clock(self) -> datetime:
        """PostgreSQL's own clock, to compare with ``pg_stat_activity`` times."""
        now: datetime = await self._pool.fetchval("SELECT clock_timestamp()")
        return now

    async def finished_queries(self, client_ports: Iterable[int], *, since: datetime, mentioning: str) -> int:
        """How many sessions from ``client_ports`` have finished a query that started after ``since`` and
        whose text mentions ``mentioning`` (their latest query, as ``pg_stat_activity`` shows it).

        Finished: the session waits for its client's next command, ``idle``, or ``idle in transaction`` when the
        query ran inside an explicit transaction (the contract does not say which an implementation uses)."""
        return int(await self._pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity WHERE client_port = ANY($1::int[])"
            " AND state IN ('idle', 'idle in transaction')"
            " AND query_start >= $2 AND position($3 in lower(query)) > 0",
            list(client_ports), since, mentioning.lower(),
        ))

    async def finished_query_ports(self, client_ports: Iterable[int], *, since: datetime, mentioning: str) -> list[int]:
        """The ports among ``client_ports`` whose sessions have finished a query that started after ``since`` and
        mentions ``mentioning`` (as :meth:`finished_queries` counts them), in the order the queries started."""
        rows = await self._pool.fetch(
            "SELECT client_port FROM pg_stat_activity WHERE client_port = ANY($1::int[]) AND state = 'idle'"
            " AND query_start >= $2 AND position($3 in lower(query)) > 0 ORDER BY query_start",
            list(client_ports), since, mentioning.lower(),
        )
        return [int(row["client_port"]) for row in rows]

    async def lock_waiters(self, mode: str) -> int:
        """How many sessions wait for a lock of ``mode`` (e.g. ``AccessShareLock``) on ``positions`` right now."""
        return int(await self._pool.fetchval(
            "SELECT count(*) FROM pg_locks WHERE locktype = 'relation'"
            " AND relation = 'positions'::regclass AND NOT granted AND mode = $1",
            mode,
        ))

    async def queue_reads(self) -> ReadQueue:
        """Make every new read of ``positions`` wait from now on (see :class:`ReadQueue`)."""
        queue = ReadQueue(self._pool, self)
        await queue.start()
        return queue

    async def hold_inserts(self) -> InsertHold:
        """Hold every new position back until the returned hold is released (see :class:`InsertHold`)."""
        hold = InsertHold(self._pool)
        await hold.acquire()
        return hold


class InsertHold:
    """An open transaction holding ``positions`` in EXCLUSIVE mode: reads go on, every INSERT waits.

    It turns "two instances store the same position at the same moment" and "an instance dies in the middle of
    storing" from luck into a state the suite can wait for (:meth:`Database.inserts_waiting`). If the suite
    hangs, PostgreSQL ends the transaction itself after ``idle_in_transaction_session_timeout``.
    """

    def __init__(self, pool: asyncpg.Pool) -> None:
        self._pool = pool
        self._conn: asyncpg.Connection | None = None
        self._transaction: asyncpg.transaction.Transaction | None = None

    async def acquire(self) -> None:
        self._conn = await self._pool.acquire()
        try:
            self._transaction = self._conn.transaction()
            await self._transaction.start()
            await self._conn.execute("SET LOCAL idle_in_transaction_session_timeout = '60s'")
            await self._conn.execute("LOCK TABLE positions IN EXCLUSIVE MODE")
        except BaseException:
            await self.release()
            raise

    async def release(self) -> None:
        """Let the held-up inserts through; idempotent (also the scenario's clean-up)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._transaction is not None:
                await self._transaction.rollback()
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            conn.terminate()  # the server already ended it (timeout) or it broke: do not reuse the connection
        finally:
            self._transaction = None
            await self._pool.release(conn)


class ReadQueue:
    """A request for ``positions`` in ACCESS EXCLUSIVE mode, queued behind an :class:`InsertHold`.

    PostgreSQL grants locks in queue order: a request that conflicts with one *waiting* ahead of it waits too.
    Queued behind the inserts the hold keeps back, this request lets those inserts go first when the hold is
    released (they were queued before it), then is granted itself, while every read of ``positions`` that
    arrived after it (a fan's snapshot query) keeps waiting until :meth:`release`. That is how the suite keeps
    a fan's map loading while stored positions are published: deterministically, not by timing.
    """

    def __init__(self, pool: asyncpg.Pool, database: Database) -> None:
        self._pool = pool
        self._database = database
        self._conn: asyncpg.Connection | None = None
        self._locking: asyncio.Task[None] | None = None
        self._transaction: asyncpg.transaction.Transaction | None = None

    async def start(self) -> None:
        """Queue the request; return once PostgreSQL lists it as waiting."""
        self._conn = await self._pool.acquire()
        try:
            self._transaction = self._conn.transaction()
            await self._transaction.start()
            await self._conn.execute("SET LOCAL idle_in_transaction_session_timeout = '60s'")
            await self._conn.execute("SET LOCAL lock_timeout = '60s'")
            self._locking = asyncio.create_task(self._conn.execute("LOCK TABLE positions IN ACCESS EXCLUSIVE MODE"))
            await eventually(self._queued, timeout=SETTLE, what="the exclusive lock request on positions to be queued")
        except BaseException:
            await self.release()
            raise

    async def _queued(self) -> tuple[bool, str]:
        if self._locking is not None and self._locking.done():
            return True, "granted at once"  # nothing held positions: the reads queue behind a granted lock
        waiting = await self._database.lock_waiters("AccessExclusiveLock")
        return waiting >= 1, f"{waiting} exclusive requests waiting"

    async def granted(self, timeout: float) -> None:
        """Return once the request is granted: every insert queued before it has finished."""
        assert self._locking is not None, "the read queue was not started"
        await asyncio.wait_for(asyncio.shield(self._locking), timeout)

    async def release(self) -> None:
        """Let the waiting reads through; idempotent (also the scenario's clean-up)."""
        conn, self._conn = self._conn, None
        if conn is None:
            return
        try:
            if self._locking is not None and not self._locking.done():
                conn.terminate()  # still queued: ending the session withdraws the request
            elif self._transaction is not None:
                await self._transaction.rollback()
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
            conn.terminate()  # the server already ended it (timeout) or it broke: do not reuse the connection
        finally:
            if self._locking is not None:
                await asyncio.gather(self._locking, return_exceptions=True)
            self._transaction = None
            await self._pool.release(conn)
