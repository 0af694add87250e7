"""PostgreSQL: schema check, idempotent batch insert with routing, and event snapshots.

Timestamps come back rendered by PostgreSQL in the fixed-width UTC text of section 4 (``to_char``): cheaper
than converting a datetime per row in Python.

The insert also keeps ``latest_positions`` (docs/processor.md, section 7) in the same statement: one set-based
upsert of each device's newest row of the batch, in ``device_id`` order (so two instances storing batches of the
same trackers at once lock their rows in the same order and cannot deadlock). Its connections tell the table's
row trigger so (``latest_positions.kept_by_writer = on``, set when they open): that trigger costs ~25 µs per row,
half the INSERT's throughput; the upsert ~1-5 ms per batch of 500 (bench/ANALYSIS.md, "latest_positions").

The insert and the routing join are one statement so that routing sees exactly the rows this statement
inserted and the assignments committed when it started: no cache to invalidate, no race with duplicates.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from .protocol import SNAPSHOT_COLUMNS, subscribed_columns
from .routing import RoutedPosition, from_row, route
from .store_sql import (
    COLUMNS_SQL,
    CORRECTIONS_SQL,
    INSERT_SQL,
    LATEST_TRIGGERS,
    REQUIRED_SCHEMA,
    REQUIRED_TRIGGERS,
    SNAPSHOT_COLUMNS_SQL,
    SNAPSHOT_SQL,
    TRIGGERS_SQL,
    UNIQUE_KEY_SQL,
    batch_json,
)
from .telemetry import Position, format_ts

__all__ = ["Correction", "SchemaError", "Store", "StoreResult"]

logger = logging.getLogger("processor.store")


@dataclass(frozen=True)
class Correction:
    """Where a device belongs on an event's map now (``position`` ``None``: not on it) and what the query saw."""

    event_id: str
    device_id: str
    position: RoutedPosition | None
    horizon: str | None


class SchemaError(RuntimeError):
    """The database lacks a table, column or key the Processor needs; the message names it."""


@dataclass(frozen=True)
class StoreResult:
    inserted: int
    duplicates: int
    orphans: int
    routed: list[RoutedPosition]  # one per (position, event)


#: What the insert trigger's ``WHEN`` clause reads: ``on`` when the start-up parameter below reached PostgreSQL.
KEPT_BY_WRITER_SQL = "SELECT current_setting('latest_positions.kept_by_writer', true)"

#: Every session of the Processor: named, and its INSERT keeps latest_positions itself, so the row trigger steps
#: aside (INSERT_SQL).
SESSION_SETTINGS = {"application_name": "processor", "latest_positions.kept_by_writer": "on"}


async def _nothing_to_reset(connection: asyncpg.Connection) -> None:
    """A pooled connection goes back as it came: the Processor takes no advisory lock, opens no cursor, LISTENs
    and SETs nothing on it (corrections listen on a connection of their own), so asyncpg's reset query (``RESET
    ALL`` and friends, one more round trip per snapshot) has nothing to undo. asyncpg still rolls back a
    transaction left open."""


class Store:
    """An asyncpg pool plus the three queries the Processor runs."""

    def __init__(self, dsn: str, *, command_timeout: float = 10.0) -> None:
        self.dsn = dsn
        self.command_timeout = command_timeout
        self.pool: asyncpg.Pool | None = None
        self._probe: asyncpg.Connection | None = None
        self._writer: asyncpg.Connection | None = None
        self._told_kept = False  # the warning that kept_by_writer was lost is given once

    async def connect(self) -> None:
        """Create the pool (one attempt; the caller owns the backoff)."""
        self.pool = await asyncpg.create_pool(
            self.dsn,
            min_size=1,
            max_size=8,
            timeout=5.0,
            command_timeout=self.command_timeout,
            server_settings=SESSION_SETTINGS,
            reset=_nothing_to_reset,
        )

    async def close(self) -> None:
        if self._writer is not None:
            self._writer.terminate()
            self._writer = None
        if self._probe is not None:
            self._probe.terminate()
            self._probe = None
        if self.pool is not None:
            self.pool.terminate()
            self.pool = None

    def _pool(self) -> asyncpg.Pool:
        if self.pool is None:
            raise ConnectionError("PostgreSQL is not connected")
        return self.pool

    async def check_schema(self) -> None:
        """Raise :class:`SchemaError` naming the first missing table or column."""
        pool = self._pool()
        rows = await pool.fetch(COLUMNS_SQL)
        present: dict[str, set[str]] = {}
        for table, column in rows:
            present.setdefault(table, set()).add(column)
        for table, columns in REQUIRED_SCHEMA:
            if table not in present:
                raise SchemaError(f"missing table {table}")
            for column in columns:
                if column not in present[table]:
                    raise SchemaError(f"table {table} lacks column {column}")
        if not await pool.fetchval(UNIQUE_KEY_SQL):
            raise SchemaError("table positions lacks a unique key on (device_id, ts)")
        triggers = {(table, name) for table, name in await pool.fetch(TRIGGERS_SQL)}
        missing = [name for name in LATEST_TRIGGERS if ("positions", name) not in triggers]
        if missing:
            raise SchemaError(f"table latest_positions is not kept true: positions lacks the trigger(s) "
                              f"{', '.join(missing)} (docs/processor.md, section 7)")

    async def missing_triggers(self) -> list[str]:
        """The correction triggers of section 7 that are absent, as ``table.trigger``."""
        present = {(table, name) for table, name in await self._pool().fetch(TRIGGERS_SQL)}
        return [f"{table}.{name}" for table, name in REQUIRED_TRIGGERS if (table, name) not in present]

    async def ping(self, timeout: float) -> None:
        """Probe on a connection of its own: a pool busy serving snapshots must not read as "PostgreSQL down"
        (seen under the 1,000-viewer benchmark)."""
        self._pool()  # not connected yet: down
        if self._probe is None or self._probe.is_closed():
            self._probe = await asyncpg.connect(self.dsn, timeout=timeout,
                                                server_settings={"application_name": "processor-health"})
        try:
            await self._probe.fetchval("SELECT 1", timeout=timeout)
        except BaseException:
            self._probe.terminate()
            self._probe = None
            raise

    async def _writer_connection(self) -> asyncpg.Connection:
        """The ingest loop's own connection. INSERT_SQL is one statement, atomic without ``BEGIN``/``COMMIT``, and
        a pooled connection costs a reset query at every release: through the pool a batch took four round trips
        to PostgreSQL, on this connection it takes one (batches are stored one after another).

        A new one first asks PostgreSQL whether ``latest_positions.kept_by_writer`` arrived (docs/processor.md
        section 7: a pooler may drop it, and then the insert trigger runs too) and says so once if not. That answer
        is also what a new connection waits for before its first ``INSERT``, as it waited for asyncpg's type
        introspection of the former array parameters: the ``@answer-in-flight`` scenario relies on an instance
        whose results are held storing nothing meanwhile (bench/ANALYSIS.md, "Issue 21, item 2")."""
        self._pool()  # not connected yet: down
        if self._writer is None or self._writer.is_closed():
            connection = await asyncpg.connect(self.dsn, timeout=5.0, command_timeout=self.command_timeout,
                                               server_settings=SESSION_SETTINGS)
            try:
                kept = await connection.fetchval(KEPT_BY_WRITER_SQL)
            except BaseException:
                connection.terminate()
                raise
            if kept != "on" and not self._told_kept:
                self._told_kept = True
                logger.warning("latest_positions.kept_by_writer did not reach PostgreSQL (a connection pooler that "
                               "drops start-up parameters?): its insert trigger runs as well, correct but ~25 us per "
                               "row slower (docs/processor.md, section 7)")
            self._writer = connection
        return self._writer

    async def insert(self, positions: Sequence[Position]) -> StoreResult:
        """Insert a batch in one statement and route the newly inserted rows to events."""
        if not positions:
            return StoreResult(0, 0, 0, [])
        parameter = batch_json(positions)
        connection = await self._writer_connection()
        try:
            rows = await connection.fetch(INSERT_SQL, parameter)
        except BaseException:  # broken, or cancelled mid-statement: the next batch starts on a fresh connection
            connection.terminate()
            self._writer = None
            raise
        routing = route(rows)
        return StoreResult(routing.inserted, len(positions) - routing.inserted, routing.orphans, routing.routed)

    async def snapshot(self, event_id: str) -> list[RoutedPosition]:
        """The latest non-faulty position of every device routed to ``event_id``."""
        rows = await self._pool().fetch(SNAPSHOT_SQL, event_id)
        return [from_row(row, event_id, row["entry_id"]) for row in rows]

    async def snapshot_frame(self, event_id: str) -> tuple[bytes, list[tuple[str, str]]]:
        """The same snapshot as :meth:`snapshot`, as the encoded ``subscribed`` frame, and ``(device_id, ts)`` per
        position for the boundary."""
        row = await self._pool().fetchrow(SNAPSHOT_COLUMNS_SQL, event_id)
        assert row is not None  # an aggregate always returns one row
        if row["device_id"] is None:  # no position: array_agg of nothing is NULL
            return subscribed_columns(event_id, [[] for _ in SNAPSHOT_COLUMNS], False), []
        columns = [row[name] for name in SNAPSHOT_COLUMNS]
        return subscribed_columns(event_id, columns, row["exotic"]), list(zip(row["device_id"], row["ts"], strict=True))

    async def corrections(self, pairs: Sequence[tuple[str, str]]) -> list[Correction]:
        """What the map of each (event, device) pair should show now (see :data:`CORRECTIONS_SQL`)."""
        if not pairs:
            return []
        rows = await self._pool().fetch(CORRECTIONS_SQL, [e for e, _ in pairs], [d for _, d in pairs])
        result = []
        for row in rows:
            event_id = str(row["event_id"])
            position = from_row(row, event_id, row["entry_id"]) if row["ts"] is not None else None
            horizon = format_ts(row["horizon"]) if row["horizon"] is not None else None
            result.append(Correction(event_id, row["device_id"], position, horizon))
        return result
