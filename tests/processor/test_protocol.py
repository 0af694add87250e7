"""The ``/live`` protocol (processor.protocol): parsing never raises whatever a client sends (a bad frame costs an
error frame, never the connection), server frames are rendered compactly, and a snapshot PostgreSQL renders is
byte for byte the ``subscribed`` frame Python would render, since both are made from one table of fields."""

import json

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor import protocol
from processor.protocol import BadRequest, Subscribe, Unsubscribe
from processor.store import position_json_sql

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


def test_a_snapshot_rendered_elsewhere_makes_the_same_subscribed_frame():
    """PostgreSQL renders snapshots (store.position_json_sql); the keys and framing must be the protocol's own."""
    from processor.routing import RoutedPosition

    p = RoutedPosition("e1", "n1", "d1", "2026-05-02T11:00:00.000Z", 1.5, 2.5, None, 80.0, 90.0, 11, "1-0")
    assert tuple(protocol.position_object(p)) == protocol.POSITION_KEYS
    joined = ",".join(protocol.render(protocol.position_object(x)) for x in (p, p))
    assert protocol.subscribed_raw("e1", joined) == protocol.subscribed("e1", [p, p])
    assert protocol.subscribed_raw("e1", "") == protocol.subscribed("e1", [])
    sql = position_json_sql({key: f"x{i}" for i, key in enumerate(protocol.POSITION_KEYS)})
    assert sql.startswith("""concat('{"eventId":', coalesce(to_json(x0)::text, 'null')""") and sql.endswith(", '}')")
