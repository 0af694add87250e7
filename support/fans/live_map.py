"""A fan's live map as the browser would draw it, rebuilt from the frames the fan received, in order.

``subscribed`` replaces the whole map with its snapshot, ``position`` moves a car, ``correction`` puts a car
where the Processor now says it belongs or takes it off (``position: null``). Judging the map rather than single
frames is what catches frames arriving in the wrong order: a stale correction after a newer position, say.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterable
from typing import Any

from ..clock import within
from .viewer import Frame, FrameTimeout, Viewer

LiveMap = dict[str, dict[str, Any]]


def draw(frames: Iterable[Frame], event_id: str) -> LiveMap:
    """The map of ``event_id`` (device id -> the position shown) after these frames."""
    shown: LiveMap = {}
    for frame in frames:
        if frame.get("eventId") != event_id:
            continue
        kind = frame.get("type")
        if kind == "subscribed":
            shown = {item["deviceId"]: item for item in frame.get("snapshot") or []}
        elif kind == "position":
            shown[frame["deviceId"]] = frame
        elif kind == "correction":
            if frame.get("position") is None:
                shown.pop(frame["deviceId"], None)
            else:
                shown[frame["deviceId"]] = frame["position"]
    return shown


def describe(shown: LiveMap, names: Callable[[str], str] = str) -> str:
    if not shown:
        return "an empty map"
    return ", ".join(f"{names(d)} at {p.get('lat')}, {p.get('lon')} ({p.get('ts')})" for d, p in sorted(shown.items()))


async def wait_for_map(viewer: Viewer, event_id: str, wanted: Callable[[LiveMap], bool], *, timeout: float,
                       what: str, names: Callable[[str], str] = str) -> LiveMap:
    """Wait until the map drawn from everything ``viewer`` received satisfies ``wanted``; fail showing the map."""
    deadline = time.monotonic() + within(timeout)
    while True:
        shown = draw(viewer.inbox, event_id)
        if wanted(shown):
            return shown
        remaining = deadline - time.monotonic()
        if remaining <= 0 or viewer.closed_with is not None:
            raise FrameTimeout(f"{viewer.name}'s map did not show {what} within {timeout:.2f} s; it shows "
                               f"{describe(shown, names)}; received {viewer.describe_inbox()}")
        viewer._arrived.clear()
        try:
            await asyncio.wait_for(viewer._arrived.wait(), remaining)
        except TimeoutError:
            pass  # deadline reached: the loop draws the map once more and then reports
