"""The ``/live`` protocol (docs/processor.md section 4): client frames parsed, server frames rendered.

Parsing never raises: anything that is not a well-formed ``subscribe``/``unsubscribe`` becomes a
:class:`BadRequest`, so one bad frame costs the client an error frame, never its connection.

A ``<position>`` is spelt out once, in :data:`POSITION_FIELDS`; the ``<position>`` object, the ``position`` frame,
the live channel's rows (:mod:`processor.live_channel`), the snapshot query's columns
(:data:`processor.store_sql.SNAPSHOT_SQL`) and the ``subscribed`` frame built from them (:func:`subscribed_columns`)
are all made from that table.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal, NamedTuple

import orjson

from .routing import RoutedPosition

__all__ = [
    "MESSAGES",
    "POSITION_FIELDS",
    "POSITION_KEYS",
    "SNAPSHOT_COLUMNS",
    "UUID",
    "BadRequest",
    "Frame",
    "PositionField",
    "Subscribe",
    "Unsubscribe",
    "busy",
    "compile_over_positions",
    "correction",
    "error",
    "exotic_floats",
    "parse",
    "position_frame",
    "position_object",
    "position_values",
    "render",
    "subscribed",
    "subscribed_columns",
    "unsubscribed",
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


# -- a <position> --------------------------------------------------------------------------------------------


class PositionField(NamedTuple):
    """One field of a ``<position>``: its key in the JSON object, its :class:`RoutedPosition` attribute, and the
    JSON type of its value (``number`` and ``integer`` may be ``null`` too)."""

    key: str
    attribute: str
    json: Literal["string", "number", "integer"]


#: The fields of a ``<position>`` object, in the order frames carry them, which is also the order of
#: :class:`RoutedPosition`'s fields (checked below: the live channel sends positions as arrays in that order).
POSITION_FIELDS: tuple[PositionField, ...] = (
    PositionField("eventId", "event_id", "string"),
    PositionField("entryId", "entry_id", "string"),
    PositionField("deviceId", "device_id", "string"),
    PositionField("ts", "ts", "string"),
    PositionField("lat", "lat", "number"),
    PositionField("lon", "lon", "number"),
    PositionField("altitude", "altitude", "number"),
    PositionField("speed", "speed", "number"),
    PositionField("heading", "heading", "number"),
    PositionField("satellites", "satellites", "integer"),
    PositionField("streamId", "stream_id", "string"),
)

#: The keys of a ``<position>`` object, in the order frames carry them.
POSITION_KEYS = tuple(field.key for field in POSITION_FIELDS)

if tuple(field.attribute for field in POSITION_FIELDS) != tuple(f.name for f in dataclasses.fields(RoutedPosition)):
    raise ImportError("POSITION_FIELDS and RoutedPosition's fields differ: keep them in the same order")


def position_values(name: str) -> str:
    """Python source: the values of the position ``name``, comma-separated, in :data:`POSITION_FIELDS` order."""
    return ", ".join(f"{name}.{field.attribute}" for field in POSITION_FIELDS)


def _position_items(name: str) -> str:
    """Python source: the ``<position>`` object's items (``'key': name.attribute``), comma-separated."""
    return ", ".join(f"{field.key!r}: {name}.{field.attribute}" for field in POSITION_FIELDS)


def compile_over_positions(name: str, parameter: str, expression: str, doc: str, **names: Any) -> Any:
    """The function ``name(parameter)`` returning ``expression``, Python source made from :data:`POSITION_FIELDS`
    (``names``: what else it refers to), compiled once, at import. Frames and live-channel messages are built per
    position on the hot path, where a dict or list built from the table at run time (``zip``, ``attrgetter``)
    costs 13 % more per position frame and 40 % more per live-channel message than the literal compiled here."""
    namespace: dict[str, Any] = dict(names)
    exec(compile(f"def {name}({parameter}):\n    return {expression}\n", f"<{__name__}.{name}>", "exec"), namespace)
    function = namespace[name]
    function.__doc__ = doc
    function.__module__ = __name__
    return function


# -- client frames -------------------------------------------------------------------------------------------


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


# -- server frames -------------------------------------------------------------------------------------------


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


position_object: Callable[[RoutedPosition], dict[str, Any]] = compile_over_positions(
    "position_object", "p", "{" + _position_items("p") + "}", """The ``<position>`` object of section 4.""")

position_frame: Callable[[RoutedPosition], str] = compile_over_positions(
    "position_frame", "p", "_encode({'type': 'position', " + _position_items("p") + "})",
    """A live ``position`` frame (``type`` first).""", _encode=_encode)


#: The columns of a snapshot as the snapshot query returns them (one array each): every :data:`POSITION_FIELDS`
#: attribute but ``event_id``, which is the query's parameter.
SNAPSHOT_COLUMNS: tuple[str, ...] = tuple(field.attribute for field in POSITION_FIELDS if field.attribute != "event_id")

#: The attributes whose values are floats (JSON ``number``): see :func:`subscribed_columns`.
FLOAT_ATTRIBUTES: tuple[str, ...] = tuple(field.attribute for field in POSITION_FIELDS if field.json == "number")

_snapshot_objects: Callable[[str, Any], list[dict[str, Any]]] = compile_over_positions(
    "_snapshot_objects", "event_id, rows",
    "[{" + ", ".join(f"{field.key!r}: {'event_id' if field.attribute == 'event_id' else 'v_' + field.attribute}"
                     for field in POSITION_FIELDS) + "} for " + ", ".join(f"v_{name}" for name in SNAPSHOT_COLUMNS)
    + " in rows]",
    """The ``<position>`` objects of a snapshot's rows (tuples in :data:`SNAPSHOT_COLUMNS` order).""")


def subscribed_columns(event_id: str, columns: Sequence[Sequence[Any]], exotic: bool) -> bytes:
    """The ``subscribed`` frame, encoded, from a snapshot's columns (one sequence per :data:`SNAPSHOT_COLUMNS`
    name, position by position), byte for byte what :func:`subscribed` renders.

    orjson encodes it: 0.5 ms for 1,000 positions, the json module's way 4.3 ms (bench/ANALYSIS.md, "Issue 21,
    item 3"). The two write every string, integer and ``null`` alike, and every float alike but those of
    magnitude below 1e-4 (orjson ``0.00001``, Python ``1e-05``; checked over 2 million doubles): ``exotic`` says a
    float column holds one (the snapshot query tells), and then the json module renders the frame, as it renders
    live ``position`` frames."""
    if exotic:
        return subscribed(event_id, [RoutedPosition(event_id, *row) for row in zip(*columns, strict=True)]).encode()
    return orjson.dumps({"type": "subscribed", "eventId": event_id,
                         "snapshot": _snapshot_objects(event_id, zip(*columns, strict=True))})


def exotic_floats(columns: Mapping[str, Sequence[Any]]) -> bool:
    """Whether a float column holds a value of magnitude between 0 and 1e-4 (see :func:`subscribed_columns`): the
    reference for the test the snapshot query makes in SQL."""
    return any(value is not None and 0 < abs(value) < 1e-4 for name in FLOAT_ATTRIBUTES for value in columns[name])


def subscribed(event_id: str, snapshot: Sequence[RoutedPosition]) -> str:
    return render({"type": "subscribed", "eventId": event_id, "snapshot": [position_object(p) for p in snapshot]})


def unsubscribed(event_id: str) -> str:
    return render({"type": "unsubscribed", "eventId": event_id})


def correction(event_id: str, device_id: str, position: RoutedPosition | None) -> str:
    """A ``correction``: where the device belongs on the event's map now, or ``null``: gone from it."""
    return render({"type": "correction", "eventId": event_id, "deviceId": device_id,
                   "position": position_object(position) if position is not None else None})
