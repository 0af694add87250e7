"""The insert's one parameter (processor.store.batch_json), pure, no database: every column the statement reads is a
key of every object, and every value reads back as exactly the value validated (the same double, the same instant,
the same io), because a position stored differently from what was published would put two truths on the map."""

import json
import math
import struct
from datetime import UTC, datetime, timedelta, timezone

from hypothesis import given
from hypothesis import strategies as st

from processor.store import BATCH_COLUMNS, INSERT_SQL, batch_json
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
