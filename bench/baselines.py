"""Ingest and storage ceilings, measured against the same valkey and PostgreSQL the Processor uses.

* Redis: pipelined ``XADD`` (what producers can push) and ``XREADGROUP`` + ``XACK`` in batches of 500 (what
  a consumer can pull), through ``redis.asyncio`` as the Processor uses it, on a stream of the bench's own.
* PostgreSQL: ``COPY`` of rows into the very ``positions`` table (its indexes included) through asyncpg
  (``copy_records_to_table``), and three ways of storing the same batches of 500 with the Processor's guarantees
  (one row per ``(device_id, ts)``, ``latest_positions`` upserted in ``device_id`` order, the new rows routed),
  without any Processor, batch by batch in turn so that all three see the same machine: the Processor's own
  statement (``processor.store_sql.INSERT_SQL``, the batch as one JSON parameter), ``COPY`` into a temporary staging
  table then one ``INSERT … SELECT … ON CONFLICT`` with the same upsert and routing (issue 21, item 2), and the
  previous shape, one array parameter per column (``unnest``).

The fan-out ceiling (bare ``websockets.broadcast()``) lives in :mod:`bench.load` with the other fan-out cells.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from processor.store import SESSION_SETTINGS
from processor.store_sql import BATCH_COLUMNS, INSERT_SQL, batch_json
from processor.telemetry import Position

from .generator import entry


async def redis_ceiling(redis_url: str, count: int, pipeline: int = 1000, batch: int = 500) -> dict[str, Any]:
    key = f"bench-baseline-{uuid.uuid4().hex[:6]}:telemetry"
    client = aioredis.Redis.from_url(redis_url)
    try:
        devices = [f"baseline-{i:04d}" for i in range(1000)]
        now = time.time()
        began = time.monotonic()
        for start in range(0, count, pipeline):
            pipe = client.pipeline(transaction=False)
            for k in range(start, min(count, start + pipeline)):
                pipe.xadd(key, entry(devices[k % len(devices)], k, now))  # type: ignore[arg-type]  # redis-py's field types are invariant; str fields are what it sends
            await pipe.execute()
        xadd_seconds = time.monotonic() - began

        await client.xgroup_create(key, "bench", id="0")
        read = 0
        began = time.monotonic()
        while read < count:
            answer = await client.xreadgroup("bench", "bench-1", {key: ">"}, count=batch, block=1000)
            if not answer:
                break
            ids = [entry_id for entry_id, _ in answer[0][1]]  # type: ignore[index, misc, str-unpack]  # redis-py types XREADGROUP's reply as a union of every stream command's
            await client.xack(key, "bench", *ids)  # type: ignore[arg-type]  # redis-py types XREADGROUP's reply as a union of every stream command's
            read += len(ids)
        read_seconds = time.monotonic() - began
        return {"entries": count, "xadd_per_s": count / xadd_seconds, "xadd_pipeline": pipeline,
                "xreadgroup_xack_per_s": read / read_seconds if read_seconds else None, "read": read,
                "read_batch": batch}
    finally:
        await client.delete(key)
        await client.aclose()


def _rows(prefix: str, count: int, start: int) -> list[tuple[Any, ...]]:
    base = datetime(2031, 1, 1, tzinfo=UTC)
    out = []
    for k in range(start, start + count):
        out.append((f"{prefix}-{k % 1000:04d}", base + timedelta(milliseconds=k), 41.0 + k * 1e-7, 19.0,
                    110.0, 80.0, 90.0, 11, "8E", f'{{"1": {k}}}', f"{k}-0"))
    return out


COLUMNS = ["device_id", "ts", "latitude", "longitude", "altitude", "speed", "heading", "satellites", "codec",
           "io", "stream_id"]

#: The staging table of the COPY variant: the batch's columns, emptied at every commit, private to its session.
STAGING = (f"CREATE TEMPORARY TABLE positions_batch ({', '.join(f'{c} {t}' for c, t in BATCH_COLUMNS)})"
           " ON COMMIT DELETE ROWS")

def _reading(source: str) -> str:
    """The Processor's statement (``processor.store_sql.INSERT_SQL``: the insert, the ``latest_positions`` upsert, the
    routing) reading its batch from ``source`` instead of its JSON parameter."""
    return (INSERT_SQL[:INSERT_SQL.index("    SELECT device_id")] + f"    {source}\n"
            + INSERT_SQL[INSERT_SQL.index("    ON CONFLICT (device_id, ts) DO NOTHING"):])


#: The Processor's statement reading the staging table.
STAGED_INSERT = _reading(f"SELECT {', '.join(COLUMNS)} FROM positions_batch")

#: The Processor's previous shape: the same statement with one array parameter per column.
UNNEST_INSERT = _reading("SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], "
                         "$5::float8[], $6::float8[], $7::float8[], $8::int4[], $9::text[], $10::jsonb[], $11::text[])")


async def _statement(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> tuple[int, float]:
    positions = [Position(*row) for row in rows]  # what validation hands the store: not timed
    began = time.monotonic()
    stored = len(await conn.fetch(INSERT_SQL, batch_json(positions)))
    return stored, time.monotonic() - began


async def _staged(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> tuple[int, float]:
    began = time.monotonic()
    async with conn.transaction():
        await conn.copy_records_to_table("positions_batch", records=rows, columns=COLUMNS)
        stored = len(await conn.fetch(STAGED_INSERT))
    return stored, time.monotonic() - began


async def _unnest(conn: asyncpg.Connection, rows: list[tuple[Any, ...]]) -> tuple[int, float]:
    began = time.monotonic()
    stored = len(await conn.fetch(UNNEST_INSERT, *[list(col) for col in zip(*rows, strict=False)]))
    return stored, time.monotonic() - began


#: The ways of storing a batch that ``postgres_ceiling`` compares, each on a connection of its own.
STORES = {"statement": _statement, "staged_copy": _staged, "unnest": _unnest}


async def postgres_ceiling(database_url: str, count: int, chunk: int = 10_000, batch: int = 500) -> dict[str, Any]:
    prefix = f"baseline-{uuid.uuid4().hex[:6]}"
    conns = {name: await asyncpg.connect(database_url, server_settings=SESSION_SETTINGS) for name in STORES}
    try:
        conn = conns["unnest"]
        rows = _rows(prefix, count, 0)
        began = time.monotonic()
        for start in range(0, count, chunk):
            await conn.copy_records_to_table("positions", records=rows[start:start + chunk], columns=COLUMNS)
        copy_seconds = time.monotonic() - began

        await conns["staged_copy"].execute(STAGING)
        seconds = dict.fromkeys(STORES, 0.0)
        names = list(STORES)
        offset = count
        for k, start in enumerate(range(0, count, batch)):
            for name in names[k % len(names):] + names[:k % len(names)]:  # each goes first in turn
                part = _rows(prefix, min(batch, count - start), offset)
                offset += len(part)
                stored, took = await STORES[name](conns[name], part)
                seconds[name] += took
                assert stored == len(part), (name, stored, len(part))
        return {"rows": count, "copy_per_s": count / copy_seconds, "copy_chunk": chunk,
                "statement_per_s": count / seconds["statement"], "staged_copy_per_s": count / seconds["staged_copy"],
                "unnest_insert_per_s": count / seconds["unnest"], "insert_batch": batch}
    finally:
        await conns["unnest"].execute("DELETE FROM positions WHERE device_id LIKE $1", prefix + "-%")
        await conns["unnest"].execute("DELETE FROM latest_positions WHERE device_id LIKE $1", prefix + "-%")
        for conn in conns.values():
            await conn.close()
