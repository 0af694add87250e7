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

import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg
import orjson

from .protocol import FLOAT_ATTRIBUTES, SNAPSHOT_COLUMNS, subscribed_columns
from .routing import RoutedPosition, from_row, route
from .telemetry import Position, format_ts

__all__ = [
    "REQUIRED_SCHEMA", "REQUIRED_TRIGGERS", "SchemaError", "Store", "StoreResult", "batch_json",
]

logger = logging.getLogger("processor.store")

REQUIRED_SCHEMA: tuple[tuple[str, tuple[str, ...]], ...] = (
    ("events", ("id",)),
    ("entries", ("id", "event_id")),
    ("entry_devices", ("entry_id", "device_id")),
    (
        "positions",
        (
            "device_id", "ts", "latitude", "longitude", "altitude", "speed", "heading", "satellites",
            "codec", "io", "stream_id", "faulty", "received_at",
        ),
    ),
    (
        "latest_positions",
        ("device_id", "ts", "latitude", "longitude", "altitude", "speed", "heading", "satellites", "stream_id"),
    ),
)

#: The row triggers on ``positions`` that keep ``latest_positions`` true (section 7). Without them every snapshot
#: would show stale positions, so a missing one stops the Processor at start, like a missing table.
LATEST_TRIGGERS: tuple[str, ...] = (
    "latest_positions_insert", "latest_positions_update", "latest_positions_delete", "latest_positions_truncate",
)

COLUMNS_SQL = """
SELECT table_name::text, column_name::text
FROM information_schema.columns
WHERE table_schema = ANY (current_schemas(false))
"""

UNIQUE_KEY_SQL = """
SELECT EXISTS (
    SELECT 1
    FROM pg_index i
    WHERE i.indrelid = to_regclass('positions')
      AND i.indisunique
      AND i.indpred IS NULL
      AND (SELECT array_agg(a.attname::text ORDER BY a.attname)
           FROM pg_attribute a
           WHERE a.attrelid = i.indrelid AND a.attnum = ANY (i.indkey)) = ARRAY['device_id', 'ts']
      AND i.indnatts = 2
)
"""

#: The batch's columns as ``json_to_recordset`` reads them from :func:`batch_json`'s objects (key = column).
BATCH_COLUMNS: tuple[tuple[str, str], ...] = (
    ("device_id", "text"), ("ts", "timestamptz"), ("latitude", "float8"), ("longitude", "float8"),
    ("altitude", "float8"), ("speed", "float8"), ("heading", "float8"), ("satellites", "int4"), ("codec", "text"),
    ("io", "jsonb"), ("stream_id", "text"),
)

#: What the statement returns per (inserted position, car), as SQL, in :class:`RoutedPosition`'s field order, so
#: that :func:`processor.routing.route` builds each position with ``RoutedPosition(*row)`` (no lookup by name,
#: uuids already text): ~1 ms less Processor CPU per batch of 500 than named columns and uuid objects (4.4 -> 3.4 ms
#: with the same parameters, bench/ANALYSIS.md "Issue 21, item 2").
_ROUTED_COLUMNS = {
    "event_id": "e.event_id::text", "entry_id": "e.id::text", "device_id": "ins.device_id",
    "ts": "to_char(ins.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')", "lat": "ins.latitude",
    "lon": "ins.longitude", "altitude": "ins.altitude", "speed": "ins.speed", "heading": "ins.heading",
    "satellites": "ins.satellites", "stream_id": "ins.stream_id",
}

INSERT_SQL = f"""
WITH ins AS (
    INSERT INTO positions
        (device_id, ts, latitude, longitude, altitude, speed, heading, satellites, codec, io, stream_id)
    SELECT {", ".join(name for name, _ in BATCH_COLUMNS)}
    FROM json_to_recordset($1::json) AS batch({", ".join(f"{name} {kind}" for name, kind in BATCH_COLUMNS)})
    ON CONFLICT (device_id, ts) DO NOTHING
    RETURNING device_id, ts, latitude, longitude, altitude, speed, heading, satellites, stream_id
), latest AS (
    INSERT INTO latest_positions AS l
        (device_id, ts, latitude, longitude, altitude, speed, heading, satellites, stream_id)
    SELECT DISTINCT ON (device_id) device_id, ts, latitude, longitude, altitude, speed, heading, satellites, stream_id
    FROM ins
    ORDER BY device_id, ts DESC
    ON CONFLICT (device_id) DO UPDATE
        SET ts = EXCLUDED.ts, latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,
            altitude = EXCLUDED.altitude, speed = EXCLUDED.speed, heading = EXCLUDED.heading,
            satellites = EXCLUDED.satellites, stream_id = EXCLUDED.stream_id
        WHERE l.ts < EXCLUDED.ts
)
SELECT {", ".join(_ROUTED_COLUMNS[f.name] for f in dataclasses.fields(RoutedPosition))}
FROM ins
LEFT JOIN entry_devices ed ON ed.device_id = ins.device_id
LEFT JOIN entries e ON e.id = ed.entry_id
ORDER BY ins.ts, ins.device_id, e.event_id, e.id
"""


def batch_json(positions: Sequence[Position]) -> str:
    """A batch as the one JSON parameter of :data:`INSERT_SQL`: an array of objects keyed by
    :data:`BATCH_COLUMNS`. Exact: orjson writes each float as the shortest text that reads back to the same double
    (PostgreSQL's ``float8in`` reads it so), ``ts`` in RFC 3339 with its microseconds and offset, ``None`` as
    ``null``; ``io`` (JSON text the Processor wrote itself) is embedded as it is and becomes the same ``jsonb``
    as the text would. Why JSON and not one array per column: asyncpg's array encoder checks every element
    against abstract base classes (5 % of the Processor's CPU in a burst), while orjson builds this in 0.5 ms per
    500 positions. Per batch of 500, with routing: the Processor's CPU 3.95 -> 1.54 ms, PostgreSQL's 10.75 ->
    11.50 ms (it reads JSON a little slower than binary arrays); the Processor's single thread is the scarcer
    (bench/ANALYSIS.md, "Issue 21, item 2")."""
    return orjson.dumps([
        {"device_id": p.device_id, "ts": p.ts, "latitude": p.latitude, "longitude": p.longitude,
         "altitude": p.altitude, "speed": p.speed, "heading": p.heading, "satellites": p.satellites,
         "codec": p.codec, "io": None if p.io is None else orjson.Fragment(p.io), "stream_id": p.stream_id}
        for p in positions
    ]).decode()


#: The latest non-faulty position of every device routed to event ``$1`` (``r``: the device and its entry of
#: lowest id; ``p``: its row of ``latest_positions``, which the database's triggers keep true, docs/processor.md
#: section 7): a hash join of 1,000 rows, whatever the history (the LATERAL lookup per device it replaces cost
#: ~15 ms at 1,000 trackers). Both snapshot queries read these rows. The statement also names ``positions``
#: (a subquery that reads nothing) so that it takes that table's ACCESS SHARE lock like the query it replaces:
#: a snapshot waits for whoever holds ``positions`` exclusively (a bulk load being rebuilt, the suite's lock
#: queue of section 10) and then sees what that writer committed.
SNAPSHOT_ROWS = """
FROM (
    SELECT DISTINCT ON (ed.device_id) ed.device_id, e.id AS entry_id
    FROM entries e
    JOIN entry_devices ed ON ed.entry_id = e.id
    WHERE e.event_id = $1::uuid
    ORDER BY ed.device_id, e.id
) r
JOIN latest_positions p ON p.device_id = r.device_id
WHERE NOT EXISTS (SELECT FROM positions WHERE false)
"""

SNAPSHOT_SQL = """
SELECT r.entry_id, p.device_id, to_char(p.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.MS"Z"') AS ts,
       p.latitude, p.longitude, p.altitude, p.speed, p.heading, p.satellites, p.stream_id
""" + SNAPSHOT_ROWS + """ORDER BY p.device_id
"""

_TS_TEXT = "to_char(p.ts AT TIME ZONE 'UTC', 'YYYY-MM-DD\"T\"HH24:MI:SS.MS\"Z\"')"

#: The columns of ``latest_positions`` whose names are not :class:`RoutedPosition`'s attribute names.
_COLUMNS = {"lat": "latitude", "lon": "longitude"}

#: The float columns: an ``exotic`` one (magnitude between 0 and 1e-4) makes Python's json module render the frame
#: instead of orjson (:func:`processor.protocol.subscribed_columns`); NULL and 0 are not exotic.
_EXOTIC = " OR ".join(f"(s.{_COLUMNS.get(name, name)} <> 0 AND abs(s.{_COLUMNS.get(name, name)}) < 1e-4)"
                      for name in FLOAT_ATTRIBUTES)

#: The snapshot as columns, one array each in :data:`processor.protocol.SNAPSHOT_COLUMNS` order (``device_id`` and
#: ``ts`` are also the boundary's watermarks), from the same rows as :data:`SNAPSHOT_SQL`, plus ``exotic``. The
#: Processor builds the ``subscribed`` frame from them with orjson (:func:`~processor.protocol.subscribed_columns`):
#: PostgreSQL rendering 1,000 ``<position>`` objects as JSON text took 4.0 ms of its CPU per snapshot, this query
#: 1.7 ms, and the Processor's decoding and encoding 1.2 ms instead of 0.7 (bench/ANALYSIS.md, "Issue 21, item
#: 3"). One row of arrays costs the Processor less than 1,000 rows (1.2 vs 1.8 ms). ``ts`` is rendered once per
#: row in the subquery (``OFFSET 0`` keeps the planner from pulling it up and rendering it once per use).
_SNAPSHOT_ARRAYS = ", ".join(
    f"array_agg(s.{_COLUMNS.get(name, name)}{'::text' if name == 'entry_id' else ''} ORDER BY s.device_id) AS {name}"
    for name in SNAPSHOT_COLUMNS)
SNAPSHOT_COLUMNS_SQL = f"""
SELECT {_SNAPSHOT_ARRAYS},
       coalesce(bool_or({_EXOTIC}), false) AS exotic
FROM (
    SELECT r.entry_id, p.device_id, {_TS_TEXT} AS ts, p.latitude, p.longitude, p.altitude, p.speed, p.heading,
           p.satellites, p.stream_id
    {SNAPSHOT_ROWS.strip()}
    OFFSET 0
) s
"""


#: The triggers that announce corrections (section 7); without them the live map is corrected only by the next
#: position or a new snapshot, so their absence is a warning at start, not an exit.
REQUIRED_TRIGGERS: tuple[tuple[str, str], ...] = (
    ("positions", "live_corrections_faulty"),
    ("entry_devices", "live_corrections_entry_devices"),
    ("entries", "live_corrections_entries"),
)

TRIGGERS_SQL = """
SELECT c.relname::text, t.tgname::text
FROM pg_trigger t
JOIN pg_class c ON c.oid = t.tgrelid
WHERE NOT t.tgisinternal AND c.oid IN (to_regclass('positions'), to_regclass('entry_devices'), to_regclass('entries'))
"""

#: For each (event, device) pair, in ONE statement (one snapshot of the committed state): the device's latest
#: sound position if it is still on a car of the event (the entry of lowest id), read from ``latest_positions``
#: (the triggers brought it up to date in the very transaction that announced the change), and ``horizon``, the
#: newest ``ts`` of any position of the device, faulty or not, routed or not: everything this query could see.
CORRECTIONS_SQL = """
SELECT k.event_id, k.device_id, r.entry_id, p.ts, p.latitude, p.longitude, p.altitude, p.speed, p.heading,
       p.satellites, p.stream_id, h.horizon
FROM unnest($1::uuid[], $2::text[]) AS k(event_id, device_id)
LEFT JOIN LATERAL (
    SELECT e.id AS entry_id
    FROM entry_devices ed
    JOIN entries e ON e.id = ed.entry_id
    WHERE ed.device_id = k.device_id AND e.event_id = k.event_id
    ORDER BY e.id
    LIMIT 1
) r ON true
LEFT JOIN latest_positions p ON r.entry_id IS NOT NULL AND p.device_id = k.device_id
LEFT JOIN LATERAL (
    SELECT max(ts) AS horizon FROM positions WHERE device_id = k.device_id
) h ON true
"""


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
