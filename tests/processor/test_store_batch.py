"""The insert's one parameter (processor.store_sql.batch_json), pure, no database: every column the statement reads is a
key of every object, and every value reads back as exactly the value validated (the same double, the same instant,
the same io), because a position stored differently from what was published would put two truths on the map. And
the writer's connection, which checks that its start-up setting reached PostgreSQL before its first INSERT."""

import json
import math
import struct
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from processor.store_sql import BATCH_COLUMNS, INSERT_SQL, batch_json
from processor.telemetry import Position


def position(**values):
    base = {"device_id": "d1", "ts": datetime(2026, 5, 2, 11, 0, 0, 250000, tzinfo=UTC), "latitude": 41.3275,
            "longitude": 19.8187, "altitude": None, "speed": None, "heading": None, "satellites": None,
            "codec": "8E", "io": None, "stream_id": "1-0"}
    return Position(**{**base, **values})


def bits(x):
    return struct.pack("<d", x)


def test_every_object_carries_exactly_the_columns_the_statement_reads():
    (item,) = json.loads(batch_json([position()]))
    assert list(item) == [name for name, _ in BATCH_COLUMNS]
    for name, kind in BATCH_COLUMNS:
        assert f"{name} {kind}" in INSERT_SQL


def test_nulls_ts_and_io_as_postgresql_reads_them():
    io = '{"1":18446744073709551615,"2":{"$bytes":"AAE="},"3":"é"}'
    (item,) = json.loads(batch_json([position(io=io, satellites=2**31 - 1)]))
    assert item["altitude"] is None and item["speed"] is None and item["satellites"] == 2**31 - 1
    assert datetime.fromisoformat(item["ts"]) == datetime(2026, 5, 2, 11, 0, 0, 250000, tzinfo=UTC)
    assert item["io"] == json.loads(io)  # the object itself (jsonb), not a string holding it
    (empty,) = json.loads(batch_json([position(io=None)]))
    assert empty["io"] is None


def test_an_instant_with_another_offset_is_the_same_instant():
    ts = datetime(2026, 5, 2, 13, 0, 0, 1000, tzinfo=timezone(timedelta(hours=2)))
    (item,) = json.loads(batch_json([position(ts=ts)]))
    assert datetime.fromisoformat(item["ts"]) == ts


def test_the_order_of_the_batch_is_kept():
    """ON CONFLICT keeps the first of two equal keys in one batch: the stream's first entry."""
    items = json.loads(batch_json([position(stream_id=f"{k}-0") for k in range(5)]))
    assert [i["stream_id"] for i in items] == ["0-0", "1-0", "2-0", "3-0", "4-0"]


FINITE = st.floats(allow_nan=False, allow_infinity=False)


@given(FINITE, FINITE, st.one_of(st.none(), FINITE))
def test_every_finite_double_reads_back_bit_for_bit(lat, lon, altitude):
    """Python's float() and PostgreSQL's float8in both round correctly, so text that reads back exactly here
    reads back exactly there (checked against PostgreSQL 18 too: bench/ANALYSIS.md, "Issue 21, item 2")."""
    (item,) = json.loads(batch_json([position(latitude=lat, longitude=lon, altitude=altitude)]))
    assert bits(item["latitude"]) == bits(lat) and bits(item["longitude"]) == bits(lon)
    if altitude is None:
        assert item["altitude"] is None
    else:
        assert bits(item["altitude"]) == bits(altitude) and math.isfinite(item["altitude"])


class _Connection:
    """An asyncpg connection as the writer sees it: the answer to the kept_by_writer question, and its ending."""

    def __init__(self, kept):
        self.kept = kept
        self.asked: list[str] = []
        self.terminated = False

    async def fetchval(self, sql):
        self.asked.append(sql)
        return self.kept

    def is_closed(self):
        return self.terminated

    def terminate(self):
        self.terminated = True


async def _writer(monkeypatch, kept):
    import asyncpg

    import processor.store as store_module

    made = []

    async def connect(dsn, **kwargs):
        assert kwargs["server_settings"]["latest_positions.kept_by_writer"] == "on"
        made.append(_Connection(kept))
        return made[-1]

    monkeypatch.setattr(asyncpg, "connect", connect)
    store = store_module.Store("postgresql://unused")
    store.pool = object()  # connected, as far as _writer_connection asks
    return store, made


async def test_a_new_writer_connection_asks_whether_the_setting_arrived_and_warns_once_if_not(monkeypatch, caplog):
    """docs/processor.md section 7: a pooler may drop the start-up parameter; the insert trigger then runs as well
    (correct, slower), and the operator is told once."""
    from processor.store import KEPT_BY_WRITER_SQL

    store, made = await _writer(monkeypatch, None)
    first = await store._writer_connection()
    assert first.asked == [KEPT_BY_WRITER_SQL]
    first.terminate()  # broken: the next batch opens another
    await store._writer_connection()
    assert len(made) == 2 and made[1].asked == [KEPT_BY_WRITER_SQL]
    warnings = [r for r in caplog.records if "kept_by_writer did not reach PostgreSQL" in r.getMessage()]
    assert len(warnings) == 1


async def test_a_writer_connection_with_the_setting_in_place_says_nothing(monkeypatch, caplog):
    store, made = await _writer(monkeypatch, "on")
    assert await store._writer_connection() is made[0]
    assert await store._writer_connection() is made[0]  # kept while it works
    assert not [r for r in caplog.records if "kept_by_writer" in r.getMessage()]
