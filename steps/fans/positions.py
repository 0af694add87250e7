"""What a position shown to a fan carries: its car, its time, the car's telemetry, and its order within a batch."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from behave import then
from hamcrest import assert_that, close_to, equal_to, has_entries, has_item

from support.clock import ANSWER
from support.fans.deliveries import key_of, live_positions, wait_for_positions
from support.fans.matchers import COORDINATE_TOLERANCE
from support.fans.viewer import QUIET_WINDOW
from support.fans.watching import lowest_car, shown_at
from support.scenario.gherkin import StepContext, parse_time
from support.trackers.publisher import render_ts
from support.trackers.record import Report

# -- which car, which time -------------------------------------------------------------------------------------


@then("{person} sees {tracker} move to {latitude:g}, {longitude:g} on car {number}")
def step_sees_move_on_car(context: StepContext, person: str, tracker: str, latitude: float, longitude: float,
                          number: str) -> None:
    frame = context.suite.run(shown_at(context.world, person, tracker, latitude, longitude, timeout=ANSWER))
    assert_that(frame, has_entries(entryId=context.world.car(number)), f"the car {tracker}'s position is shown on")


@then("{person} sees {tracker} move to {latitude:g}, {longitude:g} at {time:Time} UTC")
def step_sees_move_at(context: StepContext, person: str, tracker: str, latitude: float, longitude: float,
                      time: datetime) -> None:
    frame = context.suite.run(shown_at(context.world, person, tracker, latitude, longitude, timeout=ANSWER))
    assert_that(frame, has_entries(ts=render_ts(time)), f"the time of {tracker}'s position")


@then("{person} is not shown {tracker}'s position of {time:Time}")
def step_not_shown_at(context: StepContext, person: str, tracker: str, time: datetime) -> None:
    """A negative check after a positive barrier: no frame of ``tracker`` at that time, snapshot or live."""
    viewer = context.world.viewer(person)
    key = (context.world.device(tracker), render_ts(time))
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    shown = [frame for frame in viewer.inbox
             if key_of(frame) == key or any(key_of(item) == key for item in frame.get("snapshot") or [])]
    assert_that(shown, equal_to([]), f"frames showing {tracker} at {time}")


# -- a tracker on two cars ------------------------------------------------------------------------------------

@then("{person} sees {trackers:Names} on the map once each, on the one of their cars entered first")
def step_snapshot_once_on_lowest(context: StepContext, person: str, trackers: list[str]) -> None:
    world = context.world
    answer = world.answers[person]
    assert_that(answer, has_entries(type="subscribed"))
    for alias in trackers:
        device_id = world.device(alias)
        items = [item for item in answer["snapshot"] if item.get("deviceId") == device_id]
        assert_that([item.get("entryId") for item in items],
                    equal_to([context.suite.run(lowest_car(world, device_id))]),
                    f"the cars {alias} is shown on in {person}'s snapshot (entry ids)")


@then("{person} sees {trackers:Names} move once each, on the one of their cars entered first")
def step_live_once_on_lowest(context: StepContext, person: str, trackers: list[str]) -> None:
    """Waits for each tracker's latest report, listens for the quiet window, then counts."""
    world = context.world
    viewer = world.viewer(person)
    event_id = world.answers[person]["eventId"]
    latest = {alias: (world.device(alias), report.fields["ts"])
              for alias in trackers if (report := world.published.last_of(alias)) is not None}
    assert sorted(latest) == sorted(trackers), f"not every one of {trackers} has reported in this scenario"
    context.suite.run(wait_for_positions(viewer, list(latest.values()), event_id=event_id, timeout=ANSWER,
                                         what=f"the positions of {' and '.join(trackers)}"))
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    for alias, key in latest.items():
        frames = [frame for frame in live_positions(viewer, event_id) if key_of(frame) == key]
        assert_that([frame.get("entryId") for frame in frames],
                    equal_to([context.suite.run(lowest_car(world, key[0]))]),
                    f"the cars {alias}'s position at {key[1]} was shown on (entry ids)")


# -- what a car's position carries ------------------------------------------------------------------------------

def _as_reported(report: Report) -> dict[str, Any]:
    """What a fan must be shown of ``report``: where and when, and the car's speed, heading, altitude and
    satellites as it reported them, ``null`` for each it left out (docs/processor.md section 4, "Frames")."""
    payload = report.payload

    def reported(key: str) -> Any:
        return None if payload.get(key) is None else close_to(payload[key], COORDINATE_TOLERANCE)

    return {"deviceId": report.device_id, "ts": render_ts(report.ts),
            "lat": close_to(report.latitude, COORDINATE_TOLERANCE),
            "lon": close_to(report.longitude, COORDINATE_TOLERANCE),
            "speed": reported("speed"), "heading": reported("angle"), "altitude": reported("altitude"),
            "satellites": payload.get("satellites")}


def _reported(context: StepContext, tracker: str) -> Report:
    report = context.world.published.last_of(tracker)
    assert report is not None, f"{tracker} has not reported in this scenario"
    return report


@then("{person} sees {tracker} move there with the speed, heading, altitude and satellites it reported")
def step_live_telemetry(context: StepContext, person: str, tracker: str) -> None:
    report = _reported(context, tracker)
    frame = context.suite.run(shown_at(context.world, person, tracker, report.latitude, report.longitude,
                                       timeout=ANSWER))
    assert_that(frame, has_entries(_as_reported(report)), f"{tracker}'s live position as {person} sees it")


@then("{person} sees {tracker} on the map with the speed, heading, altitude and satellites it reported")
def step_snapshot_telemetry(context: StepContext, person: str, tracker: str) -> None:
    answer = context.world.answers[person]
    assert_that(answer, has_entries(type="subscribed"))
    assert_that(answer["snapshot"], has_item(has_entries(_as_reported(_reported(context, tracker)))),
                f"{tracker} in {person}'s snapshot")


# -- order within one batch -----------------------------------------------------------------------------------

@then("{person} sees {tracker}'s positions one after the other in time order:")
def step_in_time_order(context: StepContext, person: str, tracker: str) -> None:
    world = context.world
    viewer = world.viewer(person)
    event_id = world.answers[person]["eventId"]
    device_id = world.device(tracker)
    expected = [render_ts(parse_time(row["time (UTC)"])) for row in context.table]
    context.suite.run(wait_for_positions(viewer, [(device_id, ts) for ts in expected], event_id=event_id,
                                         timeout=ANSWER, what=f"the positions of {tracker}"))
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    shown = [frame["ts"] for frame in live_positions(viewer, event_id) if frame.get("deviceId") == device_id]
    assert_that(shown, equal_to(expected), f"the times of {tracker}'s positions, in the order {person} got them")
