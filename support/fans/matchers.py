"""PyHamcrest matchers for the Processor's frames and refusals, so a failure reads as "expected a position of …"."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from hamcrest import assert_that, close_to, equal_to, has_entries, not_none
from hamcrest.core.matcher import Matcher

from ..trackers.publisher import render_ts
from .viewer import Refusal, Viewer

#: Coordinates survive JSON and double precision exactly in practice; the tolerance only absorbs rounding.
COORDINATE_TOLERANCE = 1e-9


def _position_fields(device_id: str, latitude: float, longitude: float, ts: datetime | None) -> dict[str, Any]:
    expected: dict[str, Any] = {
        "deviceId": device_id,
        "lat": close_to(latitude, COORDINATE_TOLERANCE),
        "lon": close_to(longitude, COORDINATE_TOLERANCE),
    }
    if ts is not None:
        expected["ts"] = render_ts(ts)
    return expected


def a_position(device_id: str, latitude: float, longitude: float, ts: datetime | None = None) -> Matcher[Any]:
    """A snapshot item for ``device_id`` at the given place (and time)."""
    return has_entries(_position_fields(device_id, latitude, longitude, ts))


def shown_position(frame: dict[str, Any], device_id: str, latitude: float, longitude: float,
                   event_id: str) -> dict[str, Any] | None:
    """The ``<position>`` of ``device_id`` at the given place that ``frame`` puts on ``event_id``'s map, if any: a live
    ``position`` frame, or a ``correction`` carrying it. When a tracker is fitted or moved just before it reports,
    the correction's query may already see the new position and bring it; the live frame of the same position is
    then dropped as not newer (docs/processor.md, section 4, "Corrections"). Either way the fan sees it."""
    if frame.get("type") == "position":
        item: Any = frame
    elif frame.get("type") == "correction" and frame.get("eventId") == event_id:
        item = frame.get("position")
    else:
        return None
    if isinstance(item, dict) and has_entries({"eventId": event_id,
                                               **_position_fields(device_id, latitude, longitude, None)}).matches(item):
        return item
    return None


def an_error(code: str, event_id: str | None = None) -> Matcher[Any]:
    expected: dict[str, Any] = {"type": "error", "code": code}
    if event_id is not None:
        expected["eventId"] = event_id
    return has_entries(expected)


def mentions_device(frame: dict[str, Any], device_id: str) -> bool:
    """Whether a frame carries ``device_id`` anywhere: as a position or inside a snapshot."""
    if frame.get("deviceId") == device_id:
        return True
    return any(item.get("deviceId") == device_id for item in frame.get("snapshot") or [] if isinstance(item, dict))


#: What every 401 refusal of an upgrade carries (docs/processor.md, section 4, "Upgrade").
CHALLENGE = 'Cookie realm="live"'


def assert_refused(viewer: Viewer, status: int, *, accepted: str = "the upgrade was accepted") -> Refusal:
    """``viewer``'s upgrade was answered with HTTP ``status`` (``accepted``: the failure message if it got in), as
    every refusal is: a body of one line of plain text, and on a 401 the ``WWW-Authenticate`` challenge."""
    assert_that(viewer.refusal, not_none(), accepted)
    refusal = viewer.refusal
    assert refusal is not None  # for the type checker: the line above made sure
    assert_that(refusal.status, equal_to(status), f"refusal: {refusal}")
    assert_that(refusal.headers.get("content-type", "").split(";")[0].strip().lower(), equal_to("text/plain"),
                f"the refusal's body is not plain text: {refusal}")
    reason = refusal.body.removesuffix("\n").removesuffix("\r")
    assert_that(bool(reason.strip()) and "\n" not in reason and "\r" not in reason, equal_to(True),
                f"the refusal's body is not one line of text: {refusal.body!r}")
    if status == 401:
        assert_that(refusal.headers.get("www-authenticate"), equal_to(CHALLENGE), f"refusal: {refusal}")
    return refusal
