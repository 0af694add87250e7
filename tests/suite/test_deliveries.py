"""What a fan received, judged as a whole (support/fans/deliveries.py, loading_window.py): a fresh ``subscribed``
in place (a resync) replaces the map, so repeats and sightings are counted from each event's latest snapshot on.
Fakes only: no services."""

from __future__ import annotations

from typing import Any

import pytest

from support.fans.deliveries import assert_no_repeats, since_latest_snapshot
from support.fans.loading_window import times_seen
from support.fans.viewer import Viewer

EVENT, OTHER = "e-1", "e-2"
A1 = {"deviceId": "A", "ts": "2026-05-02T11:00:01.000Z"}
A2 = {"deviceId": "A", "ts": "2026-05-02T11:00:02.000Z"}


def _subscribed(event_id: str, *items: dict[str, str]) -> dict[str, Any]:
    return {"type": "subscribed", "eventId": event_id, "snapshot": list(items)}


def _position(event_id: str, item: dict[str, str]) -> dict[str, Any]:
    return {"type": "position", "eventId": event_id, **item}


def _viewer(*frames: dict[str, Any]) -> Viewer:
    viewer = Viewer("Alice", None)
    viewer.inbox = list(frames)
    return viewer


def test_a_resync_that_shows_again_what_was_shown_live_is_no_repeat() -> None:
    assert_no_repeats(_viewer(_subscribed(EVENT), _position(EVENT, A1), _subscribed(EVENT, A1),
                              _position(EVENT, A2)))


def test_a_repeat_after_the_latest_snapshot_still_fails() -> None:
    with pytest.raises(AssertionError, match="more than once"):
        assert_no_repeats(_viewer(_subscribed(EVENT), _subscribed(EVENT, A1), _position(EVENT, A1)))


def test_each_event_is_counted_from_its_own_latest_snapshot() -> None:
    viewer = _viewer(_subscribed(EVENT), _position(EVENT, A1), _subscribed(OTHER, A1), _position(OTHER, A2),
                     _position(EVENT, A1))
    with pytest.raises(AssertionError, match="more than once"):
        assert_no_repeats(viewer)  # EVENT had no resync: A1 twice is a repeat
    assert since_latest_snapshot(viewer.inbox, OTHER) == [viewer.inbox[2], viewer.inbox[3]]


def test_sightings_of_a_window_count_from_the_latest_snapshot() -> None:
    frames = [_subscribed(EVENT, A1), _position(EVENT, A2), _subscribed(EVENT, A2)]
    key = (A2["deviceId"], A2["ts"])
    assert times_seen(frames, EVENT, [key]) == {key: 1}
