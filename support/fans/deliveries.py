"""What a fan received, judged as a whole: complete, without repeats, in order, on the right event's map.

Single frames are checked with :meth:`Viewer.wait_for` and the matchers; these helpers look at a viewer's whole
inbox against the reports that were sent (:class:`support.trackers.record.Report`) and explain a failure with what was
missing, repeated or out of order, not with hundreds of frames.
"""

from __future__ import annotations

import itertools
from collections import Counter
from collections.abc import Collection, Iterable, Mapping, Sequence
from typing import Any

from ..database.postgres import Database
from ..trackers.publisher import render_ts
from ..trackers.record import Key, Report
from .viewer import Frame, FrameTimeout, Viewer

#: How many examples a failure message quotes.
SHOWN = 10


def key_of(item: Mapping[str, Any]) -> Key:
    """A frame's or snapshot item's position identity: ``(deviceId, ts)``."""
    return (str(item.get("deviceId")), str(item.get("ts")))


def live_positions(viewer: Viewer, event_id: str | None = None, since: int = 0) -> list[Frame]:
    """The ``position`` frames ``viewer`` received (for ``event_id``, from inbox index ``since`` on)."""
    return [frame for frame in viewer.inbox[since:]
            if frame.get("type") == "position" and (event_id is None or frame.get("eventId") == event_id)]


def subscribed_frame(viewer: Viewer, event_id: str) -> tuple[int, Frame]:
    """The inbox index and frame of the (latest) ``subscribed`` answer for ``event_id``."""
    for index in range(len(viewer.inbox) - 1, -1, -1):
        frame = viewer.inbox[index]
        if frame.get("type") == "subscribed" and frame.get("eventId") == event_id:
            return index, frame
    raise AssertionError(f"{viewer.name} never got a subscribed answer for {event_id}; "
                         f"received {viewer.describe_inbox()}")


def repeated(keys: Iterable[Key]) -> dict[Key, int]:
    """The keys seen more than once, with how often."""
    return {key: count for key, count in Counter(keys).items() if count > 1}


def _sample(items: Iterable[Any]) -> str:
    items = sorted(items)
    more = f" … and {len(items) - SHOWN} more" if len(items) > SHOWN else ""
    return ", ".join(map(str, items[:SHOWN])) + more


async def wait_for_positions(viewer: Viewer, expected: Collection[Key], *, event_id: str, timeout: float,
                             what: str) -> None:
    """Return once ``viewer`` has received a ``position`` frame of ``event_id`` for every expected key."""
    missing = set(expected)
    if not missing:
        return

    def complete(frame: Frame) -> bool:
        if frame.get("type") == "position" and frame.get("eventId") == event_id:
            missing.discard(key_of(frame))
        return not missing

    try:
        await viewer.wait_for(complete, timeout=timeout, what=what)
    except FrameTimeout:
        ended = f"; its connection ended: {viewer.closed_with}" if viewer.closed_with else ""
        got = len(live_positions(viewer, event_id))
        raise AssertionError(
            f"{viewer.name} received {len(expected) - len(missing)} of the {len(expected)} {what} within {timeout} s"
            f" ({got} position frames for the event in all){ended}; missing: {_sample(missing)}"
        ) from None


def since_latest_snapshot(frames: Sequence[Frame], event_id: str) -> list[Frame]:
    """The frames of ``event_id`` from its latest ``subscribed`` on (that one included; all of them if there is
    none): what the fan's map of the event is made of now.

    A ``subscribed`` replaces the map: the answer to a subscribe, or a fresh snapshot the Processor sends in place
    of its own accord (a resync: docs/processor.md section 4, "Missed notifications", and section 5, "Gaps"), which
    may rightly show again positions already shown. So repeats and sightings are counted from each event's latest
    snapshot on: a resync a scenario did not ask for (a listener check failing on a slow machine) is a reset, not
    a repeat."""
    own = [frame for frame in frames if frame.get("eventId") == event_id]
    latest = max((index for index, frame in enumerate(own) if frame.get("type") == "subscribed"), default=0)
    return own[latest:]


def assert_no_repeats(viewer: Viewer) -> None:
    """No ``(device, ts)`` reached ``viewer`` twice for the same event, snapshots and live frames together, counted
    from each event's latest snapshot on (:func:`since_latest_snapshot`)."""
    keys = []
    for event_id in {str(frame["eventId"]) for frame in viewer.inbox if isinstance(frame.get("eventId"), str)}:
        for frame in since_latest_snapshot(viewer.inbox, event_id):
            if frame.get("type") == "position":
                keys.append((event_id, *key_of(frame)))
            elif frame.get("type") == "subscribed":
                keys += [(event_id, *key_of(item)) for item in frame.get("snapshot") or []]
    twice = repeated(keys)  # type: ignore[arg-type]  # a sequence of hashable keys; the helper's annotation is narrower
    assert not twice, (f"{viewer.name} received these (event, device, ts) more than once: {_sample(twice.items())}"
                       f"; {len(keys)} positions received in all")


def seen_per_device(viewer: Viewer, event_id: str) -> dict[str, list[str]]:
    """Per device, the ``ts`` values ``viewer`` was shown for ``event_id``: its snapshot item, then each live
    frame after the snapshot, in the order they arrived."""
    index, answer = subscribed_frame(viewer, event_id)
    seen: dict[str, list[str]] = {}
    for item in [*(answer.get("snapshot") or []), *live_positions(viewer, event_id, since=index + 1)]:
        device, ts = key_of(item)
        seen.setdefault(device, []).append(ts)
    return seen


def sequence_problems(seen: Mapping[str, Sequence[str]], history: Mapping[str, Sequence[str]],
                      in_snapshot: Collection[str]) -> list[str]:
    """Where a viewer's view of each device departs from the stored history (``ts`` ascending).

    The contract's boundary rule (docs/processor.md, section 4): the snapshot holds each device's latest position
    at the moment it was read, and every position stored after that is delivered live. So per device the view
    must be exactly the history from the snapshot's item on (from the start if the device was not in the
    snapshot): strictly increasing, nothing twice, no gap, up to the latest position.
    """
    problems = []
    for device, stored in history.items():
        shown = list(seen.get(device, []))
        increasing = all(a < b for a, b in itertools.pairwise(shown))
        if not increasing:
            problems.append(f"{device}: not strictly increasing: {shown}")
            continue
        start = stored.index(shown[0]) if shown and device in in_snapshot and shown[0] in stored else 0
        expected = list(stored[start:])
        if shown != expected:
            lost = sorted(set(expected) - set(shown))
            extra = sorted(set(shown) - set(expected))
            problems.append(f"{device}: shown {len(shown)} positions, expected the {len(expected)} stored from "
                            f"{expected[0] if expected else '-'} on; missing {_sample(lost) or 'none'}; "
                            f"unexpected {_sample(extra) or 'none'}")
    return problems


async def departures_from_history(db: Database, viewer: Viewer, event_id: str, devices: Sequence[str]) -> list[str]:
    """How ``viewer``'s view of each of ``devices`` on ``event_id`` departs from the sound positions stored for
    it (:func:`sequence_problems`); empty when the view is exactly the history from the snapshot's item on.

    The history is read from the database at the time of the check, so call it once the traffic has stopped and
    been stored."""
    history: dict[str, list[str]] = {device_id: [] for device_id in devices}
    for row in await db.positions_of_devices(devices):
        if not row.faulty:
            history[row.device_id].append(render_ts(row.ts))
    _, answer = subscribed_frame(viewer, event_id)
    in_snapshot = {str(item.get("deviceId")) for item in answer.get("snapshot") or []}
    seen = seen_per_device(viewer, event_id)
    return sequence_problems({device: seen.get(device, []) for device in devices}, history, in_snapshot)


def sent_after(reports: Iterable[Report], moment: float) -> list[Report]:
    """The reports whose sending began after ``moment`` (``time.monotonic()``, like a frame's ``_received_at``)."""
    return [report for report in reports if report.sent_at > moment]
