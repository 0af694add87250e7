"""Validation of stream entries (processor.telemetry, docs/processor.md section 3): every documented reason to
dead-letter an entry is found, a valid one becomes the row to store, and nothing a producer sends makes
validation raise: one bad entry must never stop the ingest loop."""

import json
from datetime import UTC, datetime

import pytest

from processor.telemetry import Position, Rejection, format_ts, parse_ts, validate

PAYLOAD = {"latitude": 41.3275, "longitude": 19.8187, "altitude": 110, "angle": 270, "speed": 87.5, "satellites": 12}


def entry(**overrides):
    fields = {"ts": "2026-05-02T11:00:00.250Z", "device_id": "356307042441013", "codec": "8E",
              "payload": json.dumps(PAYLOAD)}
    fields.update(overrides)
    return {k.encode(): (v if isinstance(v, bytes) else v.encode()) for k, v in fields.items() if v is not None}


def reason(fields):
    result = validate("1-0", fields)
    assert isinstance(result, Rejection), result
    return result.reason


def test_valid_entry():
    position = validate("1732355200000-0", entry())
    assert isinstance(position, Position)
    assert position.ts == datetime(2026, 5, 2, 11, 0, 0, 250000, tzinfo=UTC)
    assert (position.latitude, position.longitude, position.altitude) == (41.3275, 19.8187, 110.0)
    assert (position.heading, position.speed, position.satellites) == (270.0, 87.5, 12)
    assert position.codec == "8E" and position.stream_id == "1732355200000-0" and position.io is None


def test_optional_fields_may_be_absent_or_null():
    payload = {"latitude": 0, "longitude": 0, "altitude": None}
    position = validate("1-0", entry(payload=json.dumps(payload), codec="08"))
    assert isinstance(position, Position)
    assert position.altitude is position.speed is position.heading is position.satellites is None


def test_io_is_stored_with_sentinels():
    payload = dict(PAYLOAD, io={"1": {"$bigint": "18446744073709551615"}, "78": {"$bytes": "AQID"}, "2": 5})
    position = validate("1-0", entry(payload=json.dumps(payload)))
    assert json.loads(position.io) == {"1": {"$bigint": "18446744073709551615"}, "78": {"$bytes": "AQID"}, "2": 5}  # type: ignore[arg-type, union-attr]  # this input is valid: a Position


@pytest.mark.parametrize("field", ["ts", "device_id", "codec", "payload"])
def test_missing_field(field):
    assert reason(entry(**{field: None})) == "missing_field"


@pytest.mark.parametrize("field", ["ts", "device_id", "codec", "payload", "extra"])
def test_bad_encoding(field):
    assert reason(entry(**{field: b"\xff\xfe"})) == "bad_encoding"


@pytest.mark.parametrize("ts", [
    "2026-05-02T11:00:00", "2026-05-02T11:00:00.2501Z", "yesterday", "", "2026-13-02T11:00:00Z",
    "2026-05-02T11:00:00.250+25:00", "2026-05-02T24:00:00Z", "0001-01-01T00:00:00+01:00",
])
def test_bad_ts(ts):
    assert reason(entry(ts=ts)) == "bad_ts"


@pytest.mark.parametrize("text, expected", [
    ("2026-05-02T11:00:00.250Z", "2026-05-02T11:00:00.250Z"),
    ("2026-05-02T11:00:00+00:00", "2026-05-02T11:00:00.000Z"),
    ("2026-05-02T13:00:00.5+02:00", "2026-05-02T11:00:00.500Z"),
    ("2026-05-02T11:00:00.250000Z", "2026-05-02T11:00:00.250Z"),
])
def test_ts_is_normalised_to_utc(text, expected):
    assert format_ts(parse_ts(text)) == expected


@pytest.mark.parametrize("device_id", ["", "x" * 65, "has space", "ümlaut", "a/b", "abc\n"])
def test_bad_device_id(device_id):
    assert reason(entry(device_id=device_id)) == "bad_device_id"


@pytest.mark.parametrize("codec", ["8", "0x08", "8F", "", "16"])
def test_unknown_codec(codec):
    assert reason(entry(codec=codec)) == "unknown_codec"


@pytest.mark.parametrize("codec", ["08", "8e", "8E", "10"])
def test_known_codecs(codec):
    assert isinstance(validate("1-0", entry(codec=codec)), Position)


@pytest.mark.parametrize("payload", ["", "{", "NaN", "{'a': 1}"])
def test_bad_json(payload):
    assert reason(entry(payload=payload)) == "bad_json"


@pytest.mark.parametrize("payload", [
    [], "x", 1, {"longitude": 1}, {"latitude": 1}, {"latitude": "1", "longitude": 1},
    {"latitude": True, "longitude": 1}, {"latitude": None, "longitude": 1},
    {"latitude": 1, "longitude": 1, "satellites": -1}, {"latitude": 1, "longitude": 1, "satellites": 1.5},
    {"latitude": 1, "longitude": 1, "speed": -3}, {"latitude": 1, "longitude": 1, "angle": 361},
    {"latitude": 1, "longitude": 1, "altitude": "high"}, {"latitude": 1, "longitude": 1, "io": []},
    {"latitude": 1, "longitude": 1, "io": {"x": 1}}, {"latitude": 1, "longitude": 1, "io": {"1": {"$bytes": "!"}}},
    {"latitude": 1, "longitude": 1, "io": {"1": {"$bigint": "99999999999999999999999"}}},
    {"latitude": 1, "longitude": 1, "io": {"1": "nul\u0000"}}, {"latitude": 1, "longitude": 1, "priority": "high"},
    '{"latitude": 1e400, "longitude": 1}',
])
def test_bad_payload(payload):
    text = payload if isinstance(payload, str) and payload.startswith("{") else json.dumps(payload)
    assert reason(entry(payload=text)) == "bad_payload"


@pytest.mark.parametrize("latitude", [90.0001, -91, {"$bigint": "100"}])
def test_latitude_out_of_range(latitude):
    assert reason(entry(payload=json.dumps({"latitude": latitude, "longitude": 0}))) == "latitude_out_of_range"


@pytest.mark.parametrize("longitude", [180.5, -181])
def test_longitude_out_of_range(longitude):
    assert reason(entry(payload=json.dumps({"latitude": 0, "longitude": longitude}))) == "longitude_out_of_range"


def test_boundaries_are_inclusive():
    payload = {"latitude": -90, "longitude": 180, "angle": 360, "speed": 0, "satellites": 0}
    assert isinstance(validate("1-0", entry(payload=json.dumps(payload))), Position)


def test_nul_anywhere_in_the_payload_is_bad_payload():
    payload = dict(PAYLOAD, note="a\u0000b")
    assert reason(entry(payload=json.dumps(payload))) == "bad_payload"


def test_validation_never_raises_on_arbitrary_fields():
    from hypothesis import given
    from hypothesis import strategies as st

    @given(st.dictionaries(st.sampled_from([b"ts", b"device_id", b"codec", b"payload", b"x"]), st.binary(max_size=40)))
    def check(fields):
        assert isinstance(validate("1-0", fields), (Position, Rejection))

    check()
