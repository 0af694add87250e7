"""Opening the live map of an event, and what a fan then sees."""

import re

from behave import given, then, when
from behave.runner import Context
from hamcrest import assert_that, close_to, contains_inanyorder, equal_to, has_entries, has_item, is_not

from support.clock import CATCH_UP, SETTLE
from support.fans.deliveries import (
    assert_no_repeats,
    departures_from_history,
    key_of,
    live_positions,
    sent_after,
    wait_for_positions,
)
from support.fans.loading_window import open_while_answer_travels, open_while_loading, times_seen
from support.fans.matchers import COORDINATE_TOLERANCE, a_position, an_error, mentions_device, shown_position
from support.fans.viewer import QUIET_WINDOW
from support.scenario.world import parse_time
from support.trackers.publisher import car_entry, render_ts
from support.trackers.stream import publish_burst
from support.trackers.traffic import Report, split_names

DEFAULT_WAIT = 5.0


def _open_successfully(context, person, event):
    answer = context.suite.run(context.world.open_map(person, event))
    assert_that(answer, has_entries(type="subscribed"), f"{person} could not open the map of {event}")


@when('{person} opens the live map of the "{event}"')
def step_open(context, person, event):
    context.suite.run(context.world.open_map(person, event))


@given('{person} has the live map of the "{event}" open')
def step_has_open(context, person, event):
    _open_successfully(context, person, event)


@given('{first} and {second} have the live map of the "{event}" open')
def step_both_open(context, first, second, event):
    for person in (first, second):
        _open_successfully(context, person, event)


@then("{person} sees these cars on the map:")
def step_snapshot(context, person):
    world = context.world
    answer = world.answers[person]
    assert_that(answer, has_entries(type="subscribed"))
    expected = [a_position(world.device(row["tracker"]), float(row["latitude"]), float(row["longitude"]),
                           parse_time(row["time (UTC)"])) for row in context.table]
    assert_that(answer["snapshot"], contains_inanyorder(*expected))


@then("{person} does not see {tracker} on the map")
def step_not_on_map(context, person, tracker):
    device_id = context.world.device(tracker)
    assert_that(context.world.answers[person]["snapshot"], is_not(has_item(has_entries(deviceId=device_id))))  # type: ignore[arg-type]  # PyHamcrest's nested generic matchers: mypy infers Matcher[Never]


def _await_position(context, person, tracker, latitude, longitude, timeout):
    world = context.world
    viewer = world.viewer(person)
    event_id = world.answers[person]["eventId"]
    device_id = world.device(tracker)
    frame = context.suite.run(viewer.wait_for(
        lambda f: shown_position(f, device_id, latitude, longitude, event_id) is not None, timeout=timeout,
        what=f"{tracker} at {latitude}, {longitude}"))
    return shown_position(frame, device_id, latitude, longitude, event_id)


@then("{person} sees {tracker} move to {latitude:g}, {longitude:g} within {seconds:g} second")
@then("{person} sees {tracker} move to {latitude:g}, {longitude:g} within {seconds:g} seconds")
def step_sees_move_within(context, person, tracker, latitude, longitude, seconds):
    _await_position(context, person, tracker, latitude, longitude, seconds)


@then("{person} sees {tracker} move to {latitude:g}, {longitude:g}")
def step_sees_move(context, person, tracker, latitude, longitude):
    _await_position(context, person, tracker, latitude, longitude, DEFAULT_WAIT)


@then("{first} and {second} both see {tracker} move to {latitude:g}, {longitude:g}")
def step_both_see(context, first, second, tracker, latitude, longitude):
    for person in (first, second):
        _await_position(context, person, tracker, latitude, longitude, DEFAULT_WAIT)


@then("{person} never sees {tracker}")
def step_never_sees(context, person, tracker):
    """A negative check: run it after a positive barrier (a later position that did arrive), then listen for
    a bounded quiet window in case something arrives late."""
    world = context.world
    viewer = world.viewer(person)
    device_id = world.device(tracker)
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    assert_that(viewer.frames(lambda frame: mentions_device(frame, device_id)), contains_inanyorder())


@then('{person} is told that watching the "{event}" is forbidden')
def step_forbidden(context, person, event):
    assert_that(context.world.answers[person], an_error("forbidden", context.world.event(event)))


# -- several events, several instances, much traffic -----------------------------------------------------

def _event_of_device(context: Context, device_id: str) -> str:
    """The scenario's event whose cars carry ``device_id`` right now (from the database the suite seeded)."""
    world = context.world
    events = [event_id for event_id in world.events.values()
              if device_id in context.suite.run(world.db.devices_of_event(event_id))]
    assert len(events) == 1, f"{world.alias_of(device_id)} is on a car of {len(events)} events of this scenario"
    return events[0]


def _latest_reports_of(context: Context, tracker: str) -> list[Report]:
    device_id = context.world.device(tracker)
    return [report for report in context.world.notes.reports if report.device_id == device_id]


@given('{person} follows the "{event}" through Processor {name}')
def step_follow_through(context: Context, person: str, event: str, name: str) -> None:
    """A fan connected to one particular instance of several."""
    world = context.world
    context.suite.run(world.connect(person, processor=context.world.notes.instances.instance(name).process))
    _open_successfully(context, person, event)


@when('{person} stops following the "{event}"')
def step_unsubscribe(context: Context, person: str, event: str) -> None:
    context.world.notes.left = context.suite.run(context.world.close_map(person, event))


@then('{person} is told {pronoun} no longer follows the "{event}"')
def step_unsubscribed(context: Context, person: str, pronoun: str, event: str) -> None:
    assert_that(context.world.notes.left, has_entries(type="unsubscribed", eventId=context.world.event(event)))


@then("{person} never receives the same position twice")
def step_no_repeats(context: Context, person: str) -> None:
    """A negative check: after the scenario's positive barrier, listen for the quiet window, then count."""
    viewer = context.world.viewer(person)
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    assert_no_repeats(viewer)


@then("neither {first} nor {second} receives any position twice")
def step_neither_repeats(context: Context, first: str, second: str) -> None:
    context.suite.run(context.world.viewer(first).listen_quietly(QUIET_WINDOW))
    for person in (first, second):
        assert_no_repeats(context.world.viewer(person))


@then("{person} gets no new position of {tracker}")
def step_no_live_position(context: Context, person: str, tracker: str) -> None:
    """A negative check after a positive barrier: no live frame of ``tracker`` (its snapshot item is fine)."""
    viewer = context.world.viewer(person)
    device_id = context.world.device(tracker)
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    assert_that([frame for frame in live_positions(viewer) if frame.get("deviceId") == device_id], equal_to([]),
                f"live positions of {tracker} that {person} received")


@then("{person} receives all {count:d} of them, each on the map of its own event")
def step_all_on_own_map(context: Context, person: str, count: int) -> None:
    viewer = context.world.viewer(person)
    reports: list[Report] = context.world.notes.reports
    assert_that(len(reports), equal_to(count), "reports in this scenario's latest round")
    home = {device_id: _event_of_device(context, device_id) for device_id in {r.device_id for r in reports}}
    for event_id in set(home.values()):
        expected = [r.key for r in reports if home[r.device_id] == event_id]
        context.suite.run(wait_for_positions(viewer, expected, event_id=event_id, timeout=DEFAULT_WAIT,
                                             what=f"positions of event {event_id}"))
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    misrouted = [frame for frame in live_positions(viewer)
                 if frame.get("deviceId") in home and frame.get("eventId") != home[frame["deviceId"]]]
    assert_that(misrouted, equal_to([]), f"positions {person} received on the map of another event")


@then("{person} receives the {count:d} positions of {tracker}")
def step_receives_round(context: Context, person: str, count: int, tracker: str) -> None:
    reports = _latest_reports_of(context, tracker)
    assert_that(len(reports), equal_to(count), f"reports of {tracker} in this scenario's latest round")
    event_id = _event_of_device(context, reports[0].device_id)
    context.suite.run(wait_for_positions(context.world.viewer(person), [r.key for r in reports], event_id=event_id,
                                         timeout=DEFAULT_WAIT, what=f"positions of {tracker}"))


@then("{person} receives none of the positions of {tracker}")
def step_receives_none(context: Context, person: str, tracker: str) -> None:
    """A negative check after a positive barrier (a later position of the same round that did arrive)."""
    viewer = context.world.viewer(person)
    unwanted = {report.key for report in _latest_reports_of(context, tracker)}
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    assert_that([frame for frame in live_positions(viewer) if key_of(frame) in unwanted], equal_to([]),
                f"new positions of {tracker} that {person} received")


@then("{people} each receive all {count:d} positions, each of them once")
def step_each_receive_all(context: Context, people: str, count: int) -> None:
    reports: list[Report] = context.world.notes.reports
    assert_that(len(reports), equal_to(count), "reports in this scenario's latest round")
    names = split_names(people)
    for person in names:
        viewer = context.world.viewer(person)
        context.suite.run(wait_for_positions(viewer, [r.key for r in reports],
                                             event_id=context.world.answers[person]["eventId"], timeout=CATCH_UP,
                                             what="positions of the burst"))
    context.suite.run(context.world.viewer(names[0]).listen_quietly(QUIET_WINDOW))
    for person in names:
        assert_no_repeats(context.world.viewer(person))


@then("{people} receive every position reported after their map opened")
def step_receive_after_opening(context: Context, people: str) -> None:
    """The part of the boundary rule that needs no history: whatever was sent after the ``subscribed`` answer
    arrived was stored after the snapshot was read, so it must come live."""
    for person in split_names(people):
        answer = context.world.answers[person]
        assert_that(answer, has_entries(type="subscribed"), f"{person}'s answer to opening the map")
        later = sent_after(context.world.notes.traffic.reports, answer["_received_at"])
        assert later, f"nothing was reported after {person}'s map opened"
        context.suite.run(wait_for_positions(context.world.viewer(person), [r.key for r in later],
                                             event_id=answer["eventId"], timeout=SETTLE,
                                             what=f"positions reported after {person}'s map opened"))


@then("{people} see each tracker's positions in time order, without a gap")
def step_in_order_without_gap(context: Context, people: str) -> None:
    """Per tracker, snapshot item then live frames must be exactly the stored history from the snapshot's item on
    (support/fans/deliveries.py, departures_from_history)."""
    world = context.world
    devices = sorted({report.device_id for report in world.notes.traffic.reports})
    for person in split_names(people):
        problems = context.suite.run(departures_from_history(world.db, world.viewer(person),
                                                             world.answers[person]["eventId"], devices))
        assert_that(problems, equal_to([]), f"how {person}'s view of each tracker departs from what was stored "
                                            f"(devices: {[world.alias_of(d) for d in devices]})")


# -- how the event is named, and which car a position is shown on ------------------------------------------

@when('{person} opens the live map of the "{event}", its id written in capitals')
def step_open_upper(context: Context, person: str, event: str) -> None:
    context.suite.run(context.world.open_map(person, event, written=str.upper))


@then('{person} follows the "{event}", named in lower case as the CMS names it')
def step_follows_lower(context: Context, person: str, event: str) -> None:
    assert_that(context.world.answers[person], has_entries(type="subscribed", eventId=context.world.event(event)),
                f"{person}'s answer (the event id in lower case)")


@then("{person} sees {tracker} move to {latitude:g}, {longitude:g} on car {number}")
def step_sees_move_on_car(context: Context, person: str, tracker: str, latitude: float, longitude: float,
                          number: str) -> None:
    frame = _await_position(context, person, tracker, latitude, longitude, DEFAULT_WAIT)
    assert_that(frame, has_entries(entryId=context.world.car(number)), f"the car {tracker}'s position is shown on")


@then("{person} sees {tracker} move to {latitude:g}, {longitude:g} at {time} UTC")
def step_sees_move_at(context: Context, person: str, tracker: str, latitude: float, longitude: float,
                      time: str) -> None:
    frame = _await_position(context, person, tracker, latitude, longitude, DEFAULT_WAIT)
    assert_that(frame, has_entries(ts=render_ts(parse_time(time))), f"the time of {tracker}'s position")


@then("{person} is not shown {tracker}'s position of {time}")
def step_not_shown_at(context: Context, person: str, tracker: str, time: str) -> None:
    """A negative check after a positive barrier: no frame of ``tracker`` at that time, snapshot or live."""
    viewer = context.world.viewer(person)
    key = (context.world.device(tracker), render_ts(parse_time(time)))
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    shown = [frame for frame in viewer.inbox
             if key_of(frame) == key or any(key_of(item) == key for item in frame.get("snapshot") or [])]
    assert_that(shown, equal_to([]), f"frames showing {tracker} at {time}")


# -- a tracker on two cars ------------------------------------------------------------------------------------

def _lowest_car(context: Context, device_id: str) -> str:
    """The contract's car for a tracker on several cars of one event: the entry of lowest id (PostgreSQL orders
    uuids like their lower-case text)."""
    entries = context.suite.run(context.world.db.cars_of_device(device_id))
    assert len(entries) >= 2, f"{context.world.alias_of(device_id)} is on {len(entries)} cars, expected two"
    return min(entries)


@then("{person} sees {trackers} on the map once each, on their car with the lowest entry id")
def step_snapshot_once_on_lowest(context: Context, person: str, trackers: str) -> None:
    world = context.world
    answer = world.answers[person]
    assert_that(answer, has_entries(type="subscribed"))
    for alias in split_names(trackers):
        device_id = world.device(alias)
        items = [item for item in answer["snapshot"] if item.get("deviceId") == device_id]
        assert_that([item.get("entryId") for item in items], equal_to([_lowest_car(context, device_id)]),
                    f"the cars {alias} is shown on in {person}'s snapshot (entry ids)")


@then("{person} sees {trackers} move once each, on their car with the lowest entry id")
def step_live_once_on_lowest(context: Context, person: str, trackers: str) -> None:
    """Waits for each tracker's latest report, listens for the quiet window, then counts."""
    world = context.world
    viewer = world.viewer(person)
    event_id = world.answers[person]["eventId"]
    aliases = split_names(trackers)
    latest = {}
    for alias, _entry_id, fields in world.published:
        if alias in aliases:
            latest[alias] = (world.device(alias), fields["ts"])
    assert sorted(latest) == sorted(aliases), f"not every one of {aliases} has reported in this scenario"
    context.suite.run(wait_for_positions(viewer, list(latest.values()), event_id=event_id, timeout=DEFAULT_WAIT,
                                         what=f"the positions of {trackers}"))
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    for alias, key in latest.items():
        frames = [frame for frame in live_positions(viewer, event_id) if key_of(frame) == key]
        assert_that([frame.get("entryId") for frame in frames], equal_to([_lowest_car(context, key[0])]),
                    f"the cars {alias}'s position at {key[1]} was shown on (entry ids)")


# -- what a car's position carries ------------------------------------------------------------------------------

def _as_reported(context: Context) -> dict:
    tracker, ts, latitude, longitude, payload = context.world.notes.reported_car
    return {"deviceId": context.world.device(tracker), "ts": render_ts(ts),
            "lat": close_to(latitude, COORDINATE_TOLERANCE), "lon": close_to(longitude, COORDINATE_TOLERANCE),
            "speed": close_to(payload["speed"], COORDINATE_TOLERANCE),
            "heading": close_to(payload["angle"], COORDINATE_TOLERANCE),
            "altitude": close_to(payload["altitude"], COORDINATE_TOLERANCE),
            "satellites": payload["satellites"]}


@then("{person} sees {tracker} move there with the speed, heading, altitude and satellites it reported")
def step_live_telemetry(context: Context, person: str, tracker: str) -> None:
    _, _, latitude, longitude, _ = context.world.notes.reported_car
    frame = _await_position(context, person, tracker, latitude, longitude, DEFAULT_WAIT)
    assert_that(frame, has_entries(_as_reported(context)), f"{tracker}'s live position as {person} sees it")


@then("{person} sees {tracker} on the map with the speed, heading, altitude and satellites it reported")
def step_snapshot_telemetry(context: Context, person: str, tracker: str) -> None:
    answer = context.world.answers[person]
    assert_that(answer, has_entries(type="subscribed"))
    assert_that(answer["snapshot"], has_item(has_entries(_as_reported(context))),  # type: ignore[arg-type]  # PyHamcrest's nested generic matchers: mypy infers Matcher[Never]
                f"{tracker} in {person}'s snapshot")


# -- order within one batch -----------------------------------------------------------------------------------

@then("{person} sees {tracker}'s positions one after the other in time order:")
def step_in_time_order(context: Context, person: str, tracker: str) -> None:
    world = context.world
    viewer = world.viewer(person)
    event_id = world.answers[person]["eventId"]
    device_id = world.device(tracker)
    expected = [render_ts(parse_time(row["time (UTC)"])) for row in context.table]
    context.suite.run(wait_for_positions(viewer, [(device_id, ts) for ts in expected], event_id=event_id,
                                         timeout=DEFAULT_WAIT, what=f"the positions of {tracker}"))
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    shown = [frame["ts"] for frame in live_positions(viewer, event_id) if frame.get("deviceId") == device_id]
    assert_that(shown, equal_to(expected), f"the times of {tracker}'s positions, in the order {person} got them")


# -- a map still loading while positions are stored ------------------------------------------------------------

@when('{person} opens the live map of the "{event}", which is still loading while those positions are stored '
      'and sent out to {observer}')
def step_open_while_loading(context: Context, person: str, event: str, observer: str) -> None:
    """support/fans/loading_window.py explains how the window is held open."""
    context.world.notes.loading_window = list(context.world.notes.together)
    context.suite.run(open_while_loading(context.world, person, event, context.world.notes.hold, observer,
                                         context.world.notes.loading_window))
    assert_that(context.world.answers[person], has_entries(type="subscribed"), f"{person}'s map did not open")


@then("{person} has seen each position stored while {pronoun} map was loading exactly once")
def step_loading_window_once(context: Context, person: str, pronoun: str) -> None:
    """After the scenario's positive barrier: each position of the window, whose time is also that of the
    tracker's position in the snapshot, in the snapshot or live, once."""
    world = context.world
    viewer = world.viewer(person)
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    seen = times_seen(viewer.inbox, world.answers[person]["eventId"], context.world.notes.loading_window)
    assert_that({f"{world.alias_of(d)} at {ts}": n for (d, ts), n in seen.items()},
                equal_to({f"{world.alias_of(d)} at {ts}": 1 for (d, ts) in seen}),
                f"how often {person} was shown each position stored while the map loaded")


# -- how many events at once -----------------------------------------------------------------------------------

@when('{person} opens the live maps of {events} through Processor {name}')
def step_open_many(context: Context, person: str, events: str, name: str) -> None:
    world = context.world
    context.suite.run(world.connect(person, processor=context.world.notes.instances.instance(name).process))
    context.world.notes.opened = {}
    for event in _quoted(events):
        context.world.notes.opened[event] = context.suite.run(world.open_map(person, event))


def _quoted(text: str) -> list[str]:
    names = re.findall(r'"([^"]+)"', text)
    assert names, f"no quoted event names in {text!r}"
    return names


@then("{person} follows all {count:d} of them")
def step_follows_all(context: Context, person: str, count: int) -> None:
    answers = {event: answer.get("type") + (f"/{answer.get('code')}" if answer.get("code") else "")
               for event, answer in context.world.notes.opened.items()}
    assert_that(answers, equal_to({event: "subscribed" for event in context.world.notes.opened}), f"{person}'s answers")
    assert_that(len(answers), equal_to(count), "events opened")


@then("{person} is told {pronoun} follows too many events at once")
def step_too_many(context: Context, person: str, pronoun: str) -> None:
    assert_that(context.world.answers[person], an_error("too_many_subscriptions"))


@then('{person} can now open the live map of the "{event}"')
def step_can_now_open(context: Context, person: str, event: str) -> None:
    answer = context.suite.run(context.world.open_map(person, event))
    assert_that(answer, has_entries(type="subscribed"), f"{person}'s answer to opening the map of {event}")


@when('{person} opens the live map of the "{event}", whose snapshot is read but held up on its way to Processor '
      '{name} while these positions are stored and sent out to {observer}:')
def step_open_while_answer_travels(context: Context, person: str, event: str, name: str, observer: str) -> None:
    """support/fans/loading_window.py, open_while_answer_travels: the positions are committed after the snapshot was
    read, so only the live buffer can bring them to the fan."""
    world = context.world
    planned = [(row["tracker"], parse_time(row["time (UTC)"]), float(row["latitude"]), float(row["longitude"]))
               for row in context.table]

    async def publish() -> list:
        entries = [car_entry(world.device(alias), ts, lat, lon) for alias, ts, lat, lon in planned]
        ids = await publish_burst(world.publisher, entries, together=True)
        world.published += [(alias, entry_id, fields) for (alias, *_), entry_id, fields in zip(planned, ids, entries,
                                                                                               strict=False)]
        return [(world.device(alias), render_ts(ts)) for alias, ts, _, _ in planned]

    answer, context.world.notes.loading_window = context.suite.run(
        open_while_answer_travels(world, person, event, context.world.notes.slow_link, observer, publish))
    assert_that(answer, has_entries(type="subscribed"), f"{person}'s map did not open")
