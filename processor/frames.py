"""Client frame parsing and server frame rendering for the ``/live`` protocol.

Parsing never raises: anything that is not a well-formed ``subscribe``/``unsubscribe`` becomes a
:class:`BadRequest`, so one bad frame costs the client an error frame, never its connection.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import orjson

from .routing import RoutedPosition

__all__ = [
    "MESSAGES",
    "POSITION_KEYS",
    "BadLiveMessage",
    "BadRequest",
    "LiveMessage",
    "Subscribe",
    "Unsubscribe",
    "busy",
    "correction",
    "error",
    "live_message",
    "parse",
    "parse_live",
    "position_frame",
    "position_json_sql",
    "position_object",
    "render",
    "subscribed",
    "subscribed_raw",
    "unsubscribed",
    "websocket_text",
]

UUID = re.compile(r"[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}", re.ASCII)

MESSAGES = {
    "bad_request": "malformed frame",
    "forbidden": "you may not watch this event",
    "not_found": "no such event",
    "unauthorized": "your session is no longer valid",
    "unavailable": "service temporarily unavailable, try again",
    "rate_limited": "too many frames, slow down",
    "too_many_subscriptions": "too many subscriptions on this connection",
}


@dataclass(frozen=True, slots=True)
class Subscribe:
    event_id: str


@dataclass(frozen=True, slots=True)
class Unsubscribe:
    event_id: str


@dataclass(frozen=True, slots=True)
class BadRequest:
    message: str
    event_id: str | None = None


Frame = Subscribe | Unsubscribe | BadRequest


def _event_id(value: Any) -> str | None:
    if isinstance(value, str) and UUID.fullmatch(value):
        return value.lower()
    return None


def parse(message: str | bytes) -> Frame:
    """Parse one client frame; binary frames and anything malformed give :class:`BadRequest`."""
    if not isinstance(message, str):
        return BadRequest("binary frames are not accepted; send JSON text")
    try:
        data = json.loads(message)
    except (ValueError, RecursionError):
        return BadRequest("frame is not valid JSON")
    if not isinstance(data, dict):
        return BadRequest("frame must be a JSON object")
    event_id = _event_id(data.get("eventId"))
    kind = data.get("type")
    if not isinstance(kind, str):
        return BadRequest("frame needs a string type", event_id)
    if kind not in ("subscribe", "unsubscribe"):
        return BadRequest(f"unknown frame type {kind[:40]!r}", event_id)
    if "eventId" not in data:
        return BadRequest("eventId is missing")
    if event_id is None:
        return BadRequest("eventId must be a UUID in canonical form")
    return Subscribe(event_id) if kind == "subscribe" else Unsubscribe(event_id)


_encode = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False).encode


def render(frame: Mapping[str, Any]) -> str:
    """Serialise a server frame compactly."""
    return _encode(frame)


def error(code: str, event_id: str | None = None, message: str | None = None) -> str:
    frame: dict[str, Any] = {"type": "error", "code": code}
    if event_id is not None:
        frame["eventId"] = event_id
    frame["message"] = message or MESSAGES[code]
    return render(frame)


def busy(event_id: str | None, retry_after: int) -> str:
    """``unavailable`` because Directus is limiting requests: not an outage, so the client is told when to
    try again (``retryAfter``, whole seconds)."""
    frame: dict[str, Any] = {"type": "error", "code": "unavailable"}
    if event_id is not None:
        frame["eventId"] = event_id
    frame["message"] = f"the CMS is busy, try again in {retry_after} s"
    frame["retryAfter"] = retry_after
    return render(frame)


def position_object(p: RoutedPosition) -> dict[str, Any]:
    """The ``<position>`` object of section 4."""
    return {
        "eventId": p.event_id, "entryId": p.entry_id, "deviceId": p.device_id, "ts": p.ts, "lat": p.lat,
        "lon": p.lon, "altitude": p.altitude, "speed": p.speed, "heading": p.heading, "satellites": p.satellites,
        "streamId": p.stream_id,
    }


#: The keys of a ``<position>`` object, in the order frames carry them.
POSITION_KEYS = ("eventId", "entryId", "deviceId", "ts", "lat", "lon", "altitude", "speed", "heading", "satellites",
                 "streamId")


_FLOAT_KEYS = frozenset({"lat", "lon", "altitude", "speed", "heading"})


def position_json_sql(expressions: Mapping[str, str]) -> str:
    """A PostgreSQL expression rendering one ``<position>`` object as compact JSON text, exactly as
    :func:`render` would (keys in :data:`POSITION_KEYS` order, no spaces, UTF-8 kept, ``null`` for NULL), from
    ``expressions``: key -> SQL expression (``ts`` already in the fixed-width text form). Used so that a snapshot
    of 1,000 trackers is rendered by PostgreSQL instead of by Python row by row (bench/ANALYSIS.md 6a)."""
    parts = []
    for index, key in enumerate(POSITION_KEYS):
        prefix = ("{" if index == 0 else ",") + json.dumps(key) + ":"
        value = expressions[key]
        if key in _FLOAT_KEYS:
            # float8's text is already JSON's (to_json adds nothing but a function call, ~15 % of the rendering);
            # Python writes an integral float as 90.0 and -0.0, PostgreSQL as 90 and -0.
            text = (f"CASE WHEN {value} IS NULL THEN 'null' WHEN {value} = trunc({value}) AND abs({value}) < 1e15"
                    f" THEN {value}::text || '.0' ELSE {value}::text END")
        elif key == "satellites":
            text = f"coalesce({value}::text, 'null')"
        else:  # strings: to_json escapes them as JSON must
            text = f"coalesce(to_json({value})::text, 'null')"
        parts.append(f"'{prefix}', {text}")
    return "concat(" + ", ".join(parts) + ", '}')"


def subscribed_raw(event_id: str, positions_json: str) -> str:
    """A ``subscribed`` frame around ``positions_json``: ``<position>`` objects already rendered as JSON and
    joined with commas (see :func:`position_json_sql`)."""
    return '{"type":"subscribed","eventId":' + _encode(event_id) + ',"snapshot":[' + positions_json + "]}"


def subscribed(event_id: str, snapshot: Sequence[RoutedPosition]) -> str:
    return render({"type": "subscribed", "eventId": event_id, "snapshot": [position_object(p) for p in snapshot]})


def unsubscribed(event_id: str) -> str:
    return render({"type": "unsubscribed", "eventId": event_id})


def position_frame(p: RoutedPosition) -> str:
    """A live ``position`` frame (``type`` first)."""
    return render({
        "type": "position", "eventId": p.event_id, "entryId": p.entry_id, "deviceId": p.device_id, "ts": p.ts,
        "lat": p.lat, "lon": p.lon, "altitude": p.altitude, "speed": p.speed, "heading": p.heading,
        "satellites": p.satellites, "streamId": p.stream_id,
    })


def correction(event_id: str, device_id: str, position: RoutedPosition | None) -> str:
    """A ``correction``: where the device belongs on the event's map now, or ``null``: gone from it."""
    return render({"type": "correction", "eventId": event_id, "deviceId": device_id,
                   "position": position_object(position) if position is not None else None})


def websocket_text(data: bytes) -> bytes:
    """One unmasked, uncompressed WebSocket text frame (RFC 6455 section 5.2) carrying ``data`` (UTF-8): what a
    server sends with compression off, built once and written to every subscriber's transport."""
    size = len(data)
    if size < 126:
        return b"\x81" + bytes((size,)) + data
    if size < 65536:
        return b"\x81\x7e" + size.to_bytes(2, "big") + data
    return b"\x81\x7f" + size.to_bytes(8, "big") + data


# -- the live channel between instances (docs/processor.md section 5) -------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """One message of ``<stream>:live``: who published it (``publisher``, numbered ``seq`` from 1 per publisher),
    when (``published``, Unix seconds on the publisher's clock), and the routed positions of one batch, still
    encoded (``body``) so that an instance nobody watches through need not decode them."""

    publisher: str
    seq: int
    published: float
    body: bytes | str

    def positions(self) -> list[RoutedPosition]:
        """Decode the positions; raise :class:`BadLiveMessage` if they are not of the documented shape."""
        try:
            items = orjson.loads(self.body)
            if not isinstance(items, list):
                raise TypeError("positions is not a list")
            positions = [RoutedPosition(*item) for item in items]
        except (ValueError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
            raise BadLiveMessage(f"{type(exc).__name__}: {exc}") from None
        for p in positions:
            if not (isinstance(p.event_id, str) and isinstance(p.device_id, str) and isinstance(p.ts, str)):
                raise BadLiveMessage("a position lacks its eventId, deviceId or ts")
        return positions


class BadLiveMessage(ValueError):
    """A live-channel message that is not of the documented shape; the message says why."""


def live_message(publisher: str, seq: int, published: float, positions: Sequence[RoutedPosition]) -> bytes:
    """Encode a live-channel message: a header line (publisher, seq, published), then the positions as arrays in
    :class:`RoutedPosition` field order (compact, and decoded without a key lookup per field). Encoded by orjson
    (8 times faster than the json module here): the values are those just stored, so finite numbers and valid
    text, and what it writes any JSON parser reads back to the same values."""
    header = orjson.dumps({"publisher": publisher, "seq": seq, "published": published})
    return header + b"\n" + orjson.dumps([[p.event_id, p.entry_id, p.device_id, p.ts, p.lat, p.lon, p.altitude,
                                            p.speed, p.heading, p.satellites, p.stream_id] for p in positions])


def parse_live(data: bytes | str) -> LiveMessage:
    """Decode a live-channel message's header; raise :class:`BadLiveMessage` for anything else."""
    try:
        head, _, body = data.partition(b"\n" if isinstance(data, bytes) else "\n")  # type: ignore[arg-type]  # bytes with bytes, str with str
        message = orjson.loads(head)
        publisher, seq, published = message["publisher"], message["seq"], message["published"]
        if not (isinstance(publisher, str) and isinstance(seq, int) and isinstance(published, (int, float))
                and not isinstance(published, bool)):
            raise TypeError("publisher, seq or published has the wrong type")
    except (ValueError, TypeError, KeyError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise BadLiveMessage(f"{type(exc).__name__}: {exc}") from None
    return LiveMessage(publisher, seq, float(published), body)
