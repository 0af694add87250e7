"""Client frame parsing and server frame rendering for the ``/live`` protocol.

Parsing never raises: anything that is not a well-formed ``subscribe``/``unsubscribe`` becomes a
:class:`BadRequest`, so one bad frame costs the client an error frame, never its connection.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any, Mapping


__all__ = [
    "Subscribe",
    "Unsubscribe",
    "BadRequest",
    "parse",
    "render",
    "error",
    "subscribed",
    "unsubscribed",
    "busy",
    "position_frame",
    "correction",
    "MESSAGES",
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


def render(frame: Mapping[str, Any]) -> str:
    """Serialise a server frame compactly."""
    return json.dumps(frame, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


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


def subscribed(event_id: str, snapshot: list[dict[str, Any]]) -> str:
    return render({"type": "subscribed", "eventId": event_id, "snapshot": snapshot})


def unsubscribed(event_id: str) -> str:
    return render({"type": "unsubscribed", "eventId": event_id})


def position_frame(position: Mapping[str, Any]) -> str:
    """Render a live ``position`` frame from a ``<position>`` object (``type`` first)."""
    return render({"type": "position", **position})


def correction(event_id: str, device_id: str, position: Mapping[str, Any] | None) -> str:
    """A ``correction``: where the device belongs on the event's map now, or ``null``: gone from it."""
    return render({"type": "correction", "eventId": event_id, "deviceId": device_id,
                   "position": dict(position) if position is not None else None})
