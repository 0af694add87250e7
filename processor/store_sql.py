"""The statements the store runs, and the schema they need (docs/processor.md, sections 5 to 7).

Kept apart from :mod:`processor.store`, which runs them, so that the SQL reads as one piece and the benchmarks
(bench/baselines.py) run exactly the Processor's statements. Why each statement has its shape is said next to it.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import orjson

from .protocol import FLOAT_ATTRIBUTES, SNAPSHOT_COLUMNS
from .routing import RoutedPosition
from .telemetry import Position

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
