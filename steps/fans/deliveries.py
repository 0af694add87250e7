"""What fans receive of many positions: all of them, each once, on the right event's map, in order, without a gap.

"Them" and "the positions" are the scenario's latest round (support/trackers/record.py); the judging is in
support/fans/deliveries.py.
"""

from __future__ import annotations

from behave import then
from hamcrest import assert_that, equal_to, has_entries

from support.clock import ANSWER, CATCH_UP, SETTLE
from support.fans.deliveries import (
    assert_no_repeats,
    departures_from_history,
    key_of,
    live_positions,
    sent_after,
    wait_for_positions,
)
from support.fans.viewer import QUIET_WINDOW
from support.fans.watching import event_of_device
from support.scenario.gherkin import StepContext
from support.trackers.record import Report


def _latest_reports_of(context: StepContext, tracker: str) -> list[Report]:
    device_id = context.world.device(tracker)
    return [report for report in context.world.published.latest_round if report.device_id == device_id]


@then("{person} never receives the same position twice")
def step_no_repeats(context: StepContext, person: str) -> None:
    """A negative check: after the scenario's positive barrier, listen for the quiet window, then count."""
    viewer = context.world.viewer(person)
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    assert_no_repeats(viewer)


@then("neither {first} nor {second} receives any position twice")
def step_neither_repeats(context: StepContext, first: str, second: str) -> None:
    context.suite.run(context.world.viewer(first).listen_quietly(QUIET_WINDOW))
    for person in (first, second):
        assert_no_repeats(context.world.viewer(person))


@then("{person} gets no new position of {tracker}")
def step_no_live_position(context: StepContext, person: str, tracker: str) -> None:
    """A negative check after a positive barrier: no live frame of ``tracker`` (its snapshot item is fine)."""
    viewer = context.world.viewer(person)
    device_id = context.world.device(tracker)
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    assert_that([frame for frame in live_positions(viewer) if frame.get("deviceId") == device_id], equal_to([]),
                f"live positions of {tracker} that {person} received")


@then("{person} receives all {count:d} of them, each on the map of its own event")
def step_all_on_own_map(context: StepContext, person: str, count: int) -> None:
    world = context.world
    viewer = world.viewer(person)
    reports = world.published.latest_round
    assert_that(len(reports), equal_to(count), "reports in this scenario's latest round")
    home = {device_id: context.suite.run(event_of_device(world, device_id))
            for device_id in {r.device_id for r in reports}}
    for event_id in set(home.values()):
        expected = [r.key for r in reports if home[r.device_id] == event_id]
        context.suite.run(wait_for_positions(viewer, expected, event_id=event_id, timeout=ANSWER,
                                             what=f"positions of event {event_id}"))
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    misrouted = [frame for frame in live_positions(viewer)
                 if frame.get("deviceId") in home and frame.get("eventId") != home[frame["deviceId"]]]
    assert_that(misrouted, equal_to([]), f"positions {person} received on the map of another event")


@then("{person} receives the {count:d} positions of {tracker}")
def step_receives_round(context: StepContext, person: str, count: int, tracker: str) -> None:
    reports = _latest_reports_of(context, tracker)
    assert_that(len(reports), equal_to(count), f"reports of {tracker} in this scenario's latest round")
    event_id = context.suite.run(event_of_device(context.world, reports[0].device_id))
    context.suite.run(wait_for_positions(context.world.viewer(person), [r.key for r in reports], event_id=event_id,
                                         timeout=ANSWER, what=f"positions of {tracker}"))


@then("{person} receives none of the positions of {tracker}")
def step_receives_none(context: StepContext, person: str, tracker: str) -> None:
    """A negative check after a positive barrier (a later position of the same round that did arrive)."""
    viewer = context.world.viewer(person)
    unwanted = {report.key for report in _latest_reports_of(context, tracker)}
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    assert_that([frame for frame in live_positions(viewer) if key_of(frame) in unwanted], equal_to([]),
                f"new positions of {tracker} that {person} received")


@then("{people:Names} each receive all {count:d} positions, each of them once")
def step_each_receive_all(context: StepContext, people: list[str], count: int) -> None:
    world = context.world
    reports = world.published.latest_round
    assert_that(len(reports), equal_to(count), "reports in this scenario's latest round")
    for person in people:
        context.suite.run(wait_for_positions(world.viewer(person), [r.key for r in reports],
                                             event_id=world.answers[person]["eventId"], timeout=CATCH_UP,
                                             what="positions of the burst"))
    context.suite.run(world.viewer(people[0]).listen_quietly(QUIET_WINDOW))
    for person in people:
        assert_no_repeats(world.viewer(person))


@then("{people:Names} receive every position reported after their map opened")
def step_receive_after_opening(context: StepContext, people: list[str]) -> None:
    """The part of the boundary rule that needs no history: whatever was sent after the ``subscribed`` answer
    arrived was stored after the snapshot was read, so it must come live."""
    world = context.world
    for person in people:
        answer = world.answers[person]
        assert_that(answer, has_entries(type="subscribed"), f"{person}'s answer to opening the map")
        later = sent_after(world.published.latest_round, answer["_received_at"])
        assert later, f"nothing was reported after {person}'s map opened"
        context.suite.run(wait_for_positions(world.viewer(person), [r.key for r in later],
                                             event_id=answer["eventId"], timeout=SETTLE,
                                             what=f"positions reported after {person}'s map opened"))


@then("{people:Names} see each tracker's positions in time order, without a gap")
def step_in_order_without_gap(context: StepContext, people: list[str]) -> None:
    """Per tracker, snapshot item then live frames must be exactly the stored history from the snapshot's item on
    (support/fans/deliveries.py, departures_from_history)."""
    world = context.world
    devices = sorted({report.device_id for report in world.published.latest_round})
    for person in people:
        problems = context.suite.run(departures_from_history(world.db, world.viewer(person),
                                                             world.answers[person]["eventId"], devices))
        assert_that(problems, equal_to([]), f"how {person}'s view of each tracker departs from what was stored "
                                            f"(devices: {[world.alias_of(d) for d in devices]})")
