"""Ingest and storage ceilings, measured against the same valkey and PostgreSQL the Processor uses.

* Redis: pipelined ``XADD`` (what producers can push) and ``XREADGROUP`` + ``XACK`` in batches of 500 (what
  a consumer can pull), through ``redis.asyncio`` as the Processor uses it, on a stream of the bench's own.
* PostgreSQL: ``COPY`` of rows into the very ``positions`` table (its indexes included) through asyncpg
  (``copy_records_to_table``), and, for reference, the Processor's own statement shape (one
  ``INSERT … SELECT FROM unnest(…) ON CONFLICT DO NOTHING RETURNING`` per 500 rows) without any Processor.

The fan-out ceiling (bare ``websockets.broadcast()``) lives in :mod:`bench.load` with the other fan-out cells.
"""

from __future__ import annotations

import time
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import redis.asyncio as aioredis

from .generator import entry
from .snapshot import LATEST_UPSERT


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

#: The Processor's statement shape: the insert and its upsert of ``latest_positions`` (processor/store.py), on a
#: connection that, like the Processor's, keeps that table itself (``latest_positions.kept_by_writer``).
UNNEST_INSERT = """
WITH ins AS (
    INSERT INTO positions (device_id, ts, latitude, longitude, altitude, speed, heading, satellites, codec, io,
                           stream_id)
    SELECT * FROM unnest($1::text[], $2::timestamptz[], $3::float8[], $4::float8[], $5::float8[], $6::float8[],
                         $7::float8[], $8::int4[], $9::text[], $10::jsonb[], $11::text[])
    ON CONFLICT (device_id, ts) DO NOTHING
    RETURNING device_id, ts, latitude, longitude, altitude, speed, heading, satellites, stream_id
), latest AS (
    INSERT INTO latest_positions AS l
        (device_id, ts, latitude, longitude, altitude, speed, heading, satellites, stream_id)
    SELECT DISTINCT ON (device_id) device_id, ts, latitude, longitude, altitude, speed, heading, satellites, stream_id
    FROM ins
    ORDER BY device_id, ts DESC""" + LATEST_UPSERT + """)
SELECT device_id, ts FROM ins
"""


async def postgres_ceiling(database_url: str, count: int, chunk: int = 10_000, batch: int = 500) -> dict[str, Any]:
    prefix = f"baseline-{uuid.uuid4().hex[:6]}"
    conn = await asyncpg.connect(database_url, server_settings={"latest_positions.kept_by_writer": "on"})
    try:
        rows = _rows(prefix, count, 0)
        began = time.monotonic()
        for start in range(0, count, chunk):
            await conn.copy_records_to_table("positions", records=rows[start:start + chunk], columns=COLUMNS)
        copy_seconds = time.monotonic() - began

        rows = _rows(prefix, count, count)
        began = time.monotonic()
        for start in range(0, count, batch):
            part = rows[start:start + batch]
            await conn.fetch(UNNEST_INSERT, *[list(col) for col in zip(*part, strict=False)])
        insert_seconds = time.monotonic() - began
        return {"rows": count, "copy_per_s": count / copy_seconds, "copy_chunk": chunk,
                "unnest_insert_per_s": count / insert_seconds, "insert_batch": batch}
    finally:
        await conn.execute("DELETE FROM positions WHERE device_id LIKE $1", prefix + "-%")
        await conn.close()
