"""The ``/live`` protocol (processor.protocol): parsing never raises whatever a client sends (a bad frame costs an
error frame, never the connection), server frames are rendered compactly, and a snapshot built from the snapshot
query's columns (with orjson) is byte for byte the ``subscribed`` frame Python would render, whatever the values:
fans compare snapshots with live frames rendered by the json module."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor import protocol
from processor.protocol import BadRequest, Subscribe, Unsubscribe
from processor.routing import RoutedPosition
from processor.store_sql import SNAPSHOT_COLUMNS_SQL

EVENT = "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a"


@given(st.text() | st.binary())
def test_parser_never_raises(message):
    assert isinstance(protocol.parse(message), (Subscribe, Unsubscribe, BadRequest))


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=40),
    lambda children: st.lists(children, max_size=3)
    | st.dictionaries(st.sampled_from(["type", "eventId", "x"]), children, max_size=3),
    max_leaves=10,
)


@given(json_values)
def test_parser_never_raises_on_json(value):
    result = protocol.parse(json.dumps(value))
    assert isinstance(result, (Subscribe, Unsubscribe, BadRequest))
    if not isinstance(result, BadRequest):
        assert result.event_id == result.event_id.lower()


def test_subscribe_lowercases():
    assert protocol.parse(json.dumps({"type": "subscribe", "eventId": EVENT.upper()})) == Subscribe(EVENT)
    assert protocol.parse(json.dumps({"type": "unsubscribe", "eventId": EVENT})) == Unsubscribe(EVENT)


@pytest.mark.parametrize("message", [
    "", "null", "[]", '"subscribe"', "{}", '{"type": 1}', '{"type": "subscribe"}',
    '{"type": "subscribe", "eventId": "7f0c1b9e3c1a4d8e9a435b1f2e3d4c5a"}',
    '{"type": "subscribe", "eventId": "{7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a}"}',
    '{"type": "subscribe", "eventId": "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a\\n"}',
    '{"type": "subscribe", "eventId": 7}', b'{"type": "subscribe"}',
])
def test_bad_requests(message):
    assert isinstance(protocol.parse(message), BadRequest)


def test_bad_request_keeps_a_valid_event_id():
    result = protocol.parse(json.dumps({"type": "watch", "eventId": EVENT.upper()}))
    assert result == BadRequest(result.message, EVENT)  # type: ignore[union-attr]  # this input parses to a BadRequest
    assert json.loads(protocol.error("bad_request", result.event_id))["eventId"] == EVENT


def test_rendering_is_compact():
    assert protocol.unsubscribed(EVENT) == f'{{"type":"unsubscribed","eventId":"{EVENT}"}}'
    error = json.loads(protocol.error("forbidden", EVENT))
    assert error == {"type": "error", "code": "forbidden", "eventId": EVENT, "message": "you may not watch this event"}
    assert "eventId" not in json.loads(protocol.error("bad_request"))


def _columns(positions):
    return [[getattr(p, name) for p in positions] for name in protocol.SNAPSHOT_COLUMNS]


def _frame(event_id, positions):
    columns = _columns(positions)
    exotic = protocol.exotic_floats(dict(zip(protocol.SNAPSHOT_COLUMNS, columns, strict=True)))
    return protocol.subscribed_columns(event_id, columns, exotic)


def test_a_snapshot_built_from_columns_is_the_subscribed_frame():
    p = RoutedPosition("e1", "n1", "d1", "2026-05-02T11:00:00.000Z", 1.5, 2.5, None, 80.0, 90.0, 11, "1-0")
    q = RoutedPosition("e1", "n2", "d2", "2026-05-02T11:00:01.000Z", 41.0, -0.0, 1e16, 0.0001, None, None, "2-0")
    assert _frame("e1", [p, q]) == protocol.subscribed("e1", [p, q]).encode()
    assert _frame("e1", []) == protocol.subscribed("e1", []).encode()
    assert tuple(protocol.position_object(p)) == protocol.POSITION_KEYS


def test_a_float_orjson_would_spell_otherwise_is_rendered_by_the_json_module():
    """orjson writes 1e-05 as 0.00001: same number, other bytes; the snapshot then takes the json module's way."""
    p = RoutedPosition("e1", "n1", "d1", "2026-05-02T11:00:00.000Z", 1e-05, 2.5, None, None, None, None, "1-0")
    columns = _columns([p])
    assert protocol.exotic_floats(dict(zip(protocol.SNAPSHOT_COLUMNS, columns, strict=True)))
    assert protocol.subscribed_columns("e1", columns, True) == protocol.subscribed("e1", [p]).encode()
    assert protocol.subscribed_columns("e1", columns, False) != protocol.subscribed("e1", [p]).encode()


FLOATS = st.floats(allow_nan=False, allow_infinity=False)
POSITIONS = st.builds(
    RoutedPosition, st.just(EVENT), st.uuids().map(str), st.text(min_size=1), st.text(min_size=1), FLOATS, FLOATS,
    st.none() | FLOATS, st.none() | FLOATS, st.none() | FLOATS, st.none() | st.integers(0, 2**31 - 1),
    st.none() | st.text())


@given(st.lists(POSITIONS, max_size=8))
def test_whatever_the_values_the_snapshot_is_byte_for_byte_what_python_renders(positions):
    assert _frame(EVENT, positions) == protocol.subscribed(EVENT, positions).encode()


def test_the_snapshot_query_says_whether_a_float_column_holds_an_exotic_value():
    """The query's test in SQL mirrors exotic_floats: every float column, zero excluded, below 1e-4 in magnitude;
    and its arrays come in the order subscribed_columns reads them."""
    columns = {"lat": "latitude", "lon": "longitude"}
    for name in protocol.FLOAT_ATTRIBUTES:
        column = columns.get(name, name)
        assert f"(s.{column} <> 0 AND abs(s.{column}) < 1e-4)" in SNAPSHOT_COLUMNS_SQL
    order = [SNAPSHOT_COLUMNS_SQL.index(f" AS {name},") for name in protocol.SNAPSHOT_COLUMNS]
    assert order == sorted(order)
