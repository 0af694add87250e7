"""Opening the live map of an event, and what a fan then sees."""

from behave import given, then, when
from hamcrest import assert_that, contains_inanyorder, has_entries, is_not, has_item

from support.matchers import a_position, a_position_frame, an_error, mentions_device
from support.viewer import QUIET_WINDOW
from support.world import parse_time

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
    assert_that(context.world.answers[person]["snapshot"], is_not(has_item(has_entries(deviceId=device_id))))


def _await_position(context, person, tracker, latitude, longitude, timeout):
    world = context.world
    viewer = world.viewer(person)
    event_id = world.answers[person]["eventId"]
    matcher = a_position_frame(world.device(tracker), latitude, longitude, event_id)
    return context.suite.run(viewer.wait_for(matcher.matches, timeout=timeout,
                                             what=f"{tracker} at {latitude}, {longitude}"))


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
