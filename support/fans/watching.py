"""A fan watching the map: waiting for a tracker to be shown somewhere, and which event or car a tracker is on.

What several step modules ask about a fan's map, in one place; the answers come from the fan's own frames and the
suite's own database, never from the Processor's word about itself.
"""

from __future__ import annotations

from typing import Any

from ..scenario.world import World
from .matchers import shown_position


async def shown_at(world: World, person: str, tracker: str, latitude: float, longitude: float, *,
                   timeout: float) -> dict[str, Any]:
    """Wait until ``person``'s map of the event they opened shows ``tracker`` at the given place (a live position,
    or a correction carrying it); return that ``<position>``."""
    viewer = world.viewer(person)
    event_id = world.answers[person]["eventId"]
    device_id = world.device(tracker)
    frame = await viewer.wait_for(
        lambda f: shown_position(f, device_id, latitude, longitude, event_id) is not None, timeout=timeout,
        what=f"{tracker} at {latitude}, {longitude}")
    shown = shown_position(frame, device_id, latitude, longitude, event_id)
    assert shown is not None  # the frame was chosen for showing it
    return shown


async def event_of_device(world: World, device_id: str) -> str:
    """The scenario's event whose cars carry ``device_id`` right now (from the database the suite seeded)."""
    events = [event_id for event_id in world.events.values()
              if device_id in await world.db.devices_of_event(event_id)]
    assert len(events) == 1, f"{world.alias_of(device_id)} is on a car of {len(events)} events of this scenario"
    return events[0]


async def lowest_car(world: World, device_id: str) -> str:
    """The contract's car for a tracker on several cars of one event: the entry of lowest id (PostgreSQL orders
    uuids like their lower-case text)."""
    entries = await world.db.cars_of_device(device_id)
    assert len(entries) >= 2, f"{world.alias_of(device_id)} is on {len(entries)} cars, expected two"
    return min(entries)
