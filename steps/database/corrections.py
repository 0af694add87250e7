"""Race control correcting the map (flags, withdrawals), what fans then see, and what the database announces."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
from behave import given, then, when
from hamcrest import assert_that, equal_to, has_entries, has_item, less_than_or_equal_to
from hamcrest.core.matcher import Matcher

from support.clock import CATCH_UP, GLANCE, SETTLE, STEP
from support.database.announcements import Announcements
from support.database.race_control import RaceControl, delete_event, flag_then_roll_back
from support.fans.live_map import LiveMap, wait_for_map
from support.fans.matchers import COORDINATE_TOLERANCE
from support.fans.viewer import QUIET_WINDOW
from support.processes.scrape import scrape
from support.scenario.gherkin import StepContext
from support.waiting import eventually

RECONNECTS = "processor_correction_listener_reconnects_total"
UP = "processor_correction_listener_up"
SENT = "processor_corrections_sent_total"
FRAMES_SENT = "processor_frames_sent_total"
#: PostgreSQL refuses a NOTIFY payload of 8,000 bytes or more; ids only keep ours under a tenth of that.
SMALL_PAYLOAD = 800


@dataclass
class Corrections:
    """What these steps remember: the listener's reconnects before the scenario broke anything."""

    reconnects_before: float | None = None


def _corrections(context: StepContext) -> Corrections:
    return context.world.state(Corrections, Corrections)


def _race_control(context: StepContext) -> RaceControl:
    return context.world.state(RaceControl, RaceControl)


def _changed(context: StepContext) -> None:
    """Remember when race control's latest change was committed: "within N seconds" counts from here."""
    _race_control(context).changed()


def _since_change(context: StepContext) -> float:
    return _race_control(context).since_change()


def _entry(context: StepContext, number: str, event: str | None = None) -> str:
    world = context.world
    entries = [entry_id for (name, car), entry_id in world.entries.items()
               if car == number and (event is None or name == event)]
    assert len(entries) == 1, f"expected one car {number} in this scenario, found {len(entries)}"
    return entries[0]


# -- race control --------------------------------------------------------------------------------------------

def _set_flag(context: StepContext, tracker: str, time: datetime, faulty: bool) -> None:
    world = context.world
    changed = context.suite.run(world.db.set_faulty(world.device(tracker), time, faulty))
    _changed(context)
    assert_that(changed, equal_to(1), f"positions of {tracker} at {time} {'flagged' if faulty else 'cleared'}")


@when("race control flags the position of {tracker} at {time:Time} as faulty")
def step_flag(context: StepContext, tracker: str, time: datetime) -> None:
    _set_flag(context, tracker, time, True)


@when("race control clears the flag on the position of {tracker} at {time:Time}")
def step_clear(context: StepContext, tracker: str, time: datetime) -> None:
    _set_flag(context, tracker, time, False)


@when("race control flags every position of {tracker} as faulty")
def step_flag_every(context: StepContext, tracker: str) -> None:
    changed = context.suite.run(context.world.db.flag_faulty(context.world.device(tracker)))
    _changed(context)
    assert changed > 0, f"{tracker} has no position to flag"


@when("race control flags the position of {tracker} at {time:Time} as faulty, then thinks better of it before saving")
def step_flag_rolled_back(context: StepContext, tracker: str, time: datetime) -> None:
    """The flag is made in a transaction that is rolled back: nothing was ever committed."""
    world = context.world
    assert world.db.pool is not None
    changed = context.suite.run(flag_then_roll_back(world.db.pool, world.device(tracker), time))
    assert_that(changed, equal_to(1), f"positions of {tracker} at {time} flagged before the roll-back")


@when('the "{event}" is deleted')
def step_delete_event(context: StepContext, event: str) -> None:
    """As the CMS deletes an event: its cars, and their trackers' places on them, go by cascade."""
    world = context.world
    assert world.db.pool is not None
    changed = context.suite.run(delete_event(world.db.pool, world.event(event)))
    _changed(context)
    assert_that(changed, equal_to(1), f"the {event} deleted")


@when('race control withdraws car {number} from the "{event}"')
def step_withdraw(context: StepContext, number: str, event: str) -> None:
    changed = context.suite.run(context.world.db.withdraw_entry(_entry(context, number, event)))
    _changed(context)
    assert_that(changed, equal_to(1), f"car {number} withdrawn")


# -- what fans see -------------------------------------------------------------------------------------------

def _remaining(context: StepContext, seconds: float) -> float:
    """What is left of "within ``seconds``" since race control's change."""
    return max(GLANCE, seconds - _since_change(context))


def _at(device_id: str, latitude: float, longitude: float) -> Callable[[LiveMap], bool]:
    def shown_there(shown: LiveMap) -> bool:
        item = shown.get(device_id)
        return (item is not None and abs(item.get("lat", 1e9) - latitude) <= COORDINATE_TOLERANCE
                and abs(item.get("lon", 1e9) - longitude) <= COORDINATE_TOLERANCE)
    return shown_there


def _map_shows(context: StepContext, person: str, tracker: str, latitude: float, longitude: float,
               timeout: float) -> None:
    world = context.world
    viewer = world.viewer(person)
    context.suite.run(wait_for_map(viewer, world.answers[person]["eventId"],
                                   _at(world.device(tracker), latitude, longitude), timeout=timeout,
                                   what=f"{tracker} at {latitude}, {longitude}", names=world.alias_of))


@then("{person} sees {tracker} go back to {latitude:g}, {longitude:g} within {seconds:g} second")
def step_goes_back(context: StepContext, person: str, tracker: str, latitude: float, longitude: float,
                   seconds: float) -> None:
    _map_shows(context, person, tracker, latitude, longitude, _remaining(context, seconds))
    print(f"{person}'s map was corrected {_since_change(context):.3f} s after the change")


@then("{person} sees {tracker} disappear from the map within {seconds:g} second")
def step_disappears(context: StepContext, person: str, tracker: str, seconds: float) -> None:
    world = context.world
    viewer = world.viewer(person)
    device_id = world.device(tracker)
    event_id = world.answers[person]["eventId"]
    assert_that(world.answers[person]["snapshot"], has_item_for(device_id),
                f"{tracker} was not on {person}'s map to begin with")
    context.suite.run(wait_for_map(viewer, event_id, lambda shown: device_id not in shown,
                                   timeout=_remaining(context, seconds), what=f"{tracker} gone",
                                   names=world.alias_of))
    print(f"{tracker} left {person}'s map {_since_change(context):.3f} s after the change")


def has_item_for(device_id: str) -> Matcher[Any]:
    return has_item(has_entries(deviceId=device_id))


@then("{person} sees {tracker} on car {number} at {latitude:g}, {longitude:g} within {seconds:g} second")
def step_on_car(context: StepContext, person: str, tracker: str, number: str, latitude: float, longitude: float,
                seconds: float) -> None:
    """The map (drawn from every frame, in order) shows the tracker at that place and on that car (``entryId``)."""
    world = context.world
    at = _at(world.device(tracker), latitude, longitude)
    car = world.car(number)

    def on_car(shown: LiveMap) -> bool:
        return at(shown) and shown[world.device(tracker)].get("entryId") == car

    context.suite.run(wait_for_map(world.viewer(person), world.answers[person]["eventId"], on_car,
                                   timeout=_remaining(context, seconds),
                                   what=f"{tracker} on car {number} at {latitude}, {longitude}", names=world.alias_of))
    print(f"{person}'s map showed {tracker} on car {number} {_since_change(context):.3f} s after the change")


@then("{person} is sent the cars on the map afresh, without asking")
def step_resynced(context: StepContext, person: str) -> None:
    """A ``subscribed`` for the event she follows, after her own answer, though she asked for nothing since: the
    Processor's resynchronisation (docs/processor.md, section 4, "Missed notifications")."""
    world = context.world
    viewer = world.viewer(person)
    answer = world.answers[person]
    since = next(index for index, frame in enumerate(viewer.inbox) if frame is answer) + 1
    fresh = context.suite.run(viewer.wait_for(
        lambda f: f.get("type") == "subscribed" and f.get("eventId") == answer["eventId"], since=since,
        timeout=SETTLE, what=f"a fresh snapshot of the event {person} follows"))
    print(f"{person} was sent {len(fresh.get('snapshot') or [])} cars afresh")


@then("the operator sees the {count:d} corrections the service sent to {people:Names}")
def step_corrections_counted(context: StepContext, count: int, people: list[str]) -> None:
    """Both counters of docs/processor.md section 6, as deltas since the listener was found listening (no
    correction was sent before: the fans opened their maps after that)."""
    baseline = _race_control(context).baseline
    assert baseline is not None, "no step noted the Processor's metrics before race control's change"
    wanted = {SENT: count, FRAMES_SENT: count}

    async def counted() -> tuple[bool, dict[str, float]]:
        now = await scrape(context.suite.processor.base_url, _http(context))
        seen = {SENT: now.delta(baseline, SENT), FRAMES_SENT: now.delta(baseline, FRAMES_SENT, type="correction")}
        return all(v >= count for v in seen.values()), seen

    seen = context.suite.run(eventually(counted, timeout=SETTLE, what=f"{count} corrections counted"))
    assert_that(seen, equal_to(wanted), f"corrections counted for {', '.join(people)}")


@then("{person}'s map shows {tracker} at {latitude:g}, {longitude:g}")
def step_map_shows(context: StepContext, person: str, tracker: str, latitude: float, longitude: float) -> None:
    """Checked after the quiet window, so a late frame that undid it (out of order) would be seen."""
    context.suite.run(context.world.viewer(person).listen_quietly(QUIET_WINDOW))
    _map_shows(context, person, tracker, latitude, longitude, timeout=GLANCE)


@then('{person} was told nothing about the "{event}"')
def step_told_nothing(context: StepContext, person: str, event: str) -> None:
    """A negative check: run after a positive barrier (a later correction that did reach ``person``; corrections
    go out in commit order), then the quiet window."""
    world = context.world
    viewer = world.viewer(person)
    event_id = world.event(event)
    devices = set(context.suite.run(world.db.devices_of_event(event_id)))
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    told = [frame for frame in viewer.inbox
            if frame.get("eventId") == event_id or frame.get("deviceId") in devices
            or (frame.get("position") or {}).get("deviceId") in devices]
    assert_that(told, equal_to([]), f"frames about the {event} that {person} received")


# -- the Processor's listener ----------------------------------------------------------------------------------

def _http(context: StepContext) -> aiohttp.ClientSession:
    assert context.suite.http is not None
    return context.suite.http


async def _listener(context: StepContext) -> tuple[float, float]:
    """(listening now: 1 or 0, reconnects so far) from the main Processor's /metrics."""
    metrics = await scrape(context.suite.processor.base_url, _http(context))
    return metrics.value(UP), metrics.value(RECONNECTS)


def _wait_listening(context: StepContext, more_reconnects_than: float | None = None) -> float:
    async def listening() -> tuple[bool, tuple[float, float]]:
        up, reconnects = await _listener(context)
        enough = more_reconnects_than is None or reconnects > more_reconnects_than
        return up == 1 and enough, (up, reconnects)

    began = time.monotonic()
    rising = "" if more_reconnects_than is None else f" and {RECONNECTS} to rise"
    _, reconnects = context.suite.run(eventually(listening, timeout=CATCH_UP, what=f"{UP} = 1" + rising),
                                      timeout=STEP)
    if more_reconnects_than is not None:
        print(f"the listener was back {time.monotonic() - began:.2f} s after the Processor was healthy")
    return reconnects


@given("the service is listening for race control's corrections")
def step_listening(context: StepContext) -> None:
    """A positive precondition: after another scenario restarted the database the listener may still be in its
    backoff, and a change made then would reach the map only through the resync that follows."""
    _corrections(context).reconnects_before = _wait_listening(context)
    _race_control(context).baseline = context.suite.run(scrape(context.suite.processor.base_url, _http(context)))


@then("the service is listening for race control's corrections again")
def step_listening_again(context: StepContext) -> None:
    _wait_listening(context, more_reconnects_than=_corrections(context).reconnects_before)


@then("the service reports that it is not listening for race control's corrections")
def step_not_listening(context: StepContext) -> None:
    async def down() -> tuple[bool, float]:
        up, _ = await _listener(context)
        return up == 0, up

    context.suite.run(eventually(down, timeout=SETTLE, what=f"{UP} = 0 while the database is down"))


# -- the database's announcements (SQL only) -------------------------------------------------------------------

@given("someone listens to the database's announcements of corrections")
def step_listen(context: StepContext) -> None:
    world = context.world
    endpoints = context.suite.endpoints
    assert endpoints is not None
    announcements = world.state(Announcements, lambda: Announcements(endpoints.database_url))
    world.cleanups.append(announcements.close)
    context.suite.run(announcements.open())


@then("the database has announced exactly, in this order:")
def step_announced(context: StepContext) -> None:
    world = context.world
    event_id = world.event("Rally of Tirana")
    announcements = world.state(Announcements)
    assert world.db.pool is not None
    payloads = context.suite.run(announcements.everything_so_far(world.db.pool))
    ours = set(world.devices.values())
    seen = [payload for payload in payloads if payload.get("deviceId") in ours]
    expected = []
    for row in context.table:
        device_id = world.device(row["tracker"])
        if row["change"] == "faulty":
            expected.append({"op": "faulty", "deviceId": device_id})
        else:
            expected.append({"op": row["change"], "eventId": event_id, "entryId": _entry(context, row["car"]),
                             "deviceId": device_id})
    assert_that(seen, equal_to(expected), "announcements of this scenario's trackers")
    for payload in announcements.payloads:
        assert_that(len(payload.encode()), less_than_or_equal_to(SMALL_PAYLOAD), f"bytes in {payload}")
    print("announced:\n" + "\n".join(json.dumps(p) for p in seen))
