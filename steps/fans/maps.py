"""Opening the live map of an event, what a fan then sees on it, leaving it, and how many events one may follow."""

from __future__ import annotations

from dataclasses import dataclass, field

from behave import given, then, when
from hamcrest import assert_that, contains_inanyorder, equal_to, has_entries, has_item, is_not

from support.clock import ANSWER
from support.fans.matchers import a_position, an_error, mentions_device
from support.fans.viewer import QUIET_WINDOW, Frame
from support.fans.watching import shown_at
from support.processes.instances import that_service
from support.scenario.gherkin import StepContext, positions


@dataclass
class Maps:
    """What these steps remember: the answer to leaving an event, and the answers to opening several at once."""

    left: Frame | None = None
    opened: dict[str, Frame] = field(default_factory=dict)


def _maps(context: StepContext) -> Maps:
    return context.world.state(Maps, Maps)


def _open_successfully(context: StepContext, person: str, event: str) -> None:
    answer = context.suite.run(context.world.open_map(person, event))
    assert_that(answer, has_entries(type="subscribed"), f"{person} could not open the map of {event}")


@when('{person} opens the live map of the "{event}"')
@when('{person} tries to open the live map of the "{event}"')
def step_open(context: StepContext, person: str, event: str) -> None:
    context.suite.run(context.world.open_map(person, event))


@given('{person} has the live map of the "{event}" open')
def step_has_open(context: StepContext, person: str, event: str) -> None:
    _open_successfully(context, person, event)


@given('{first} and {second} have the live map of the "{event}" open')
def step_both_open(context: StepContext, first: str, second: str, event: str) -> None:
    for person in (first, second):
        _open_successfully(context, person, event)


# -- what a fan sees -------------------------------------------------------------------------------------------

@then("{person} sees these cars on the map:")
def step_snapshot(context: StepContext, person: str) -> None:
    world = context.world
    answer = world.answers[person]
    assert_that(answer, has_entries(type="subscribed"))
    expected = [a_position(world.device(p.tracker), p.latitude, p.longitude, p.ts) for p in positions(context.table)]
    assert_that(answer["snapshot"], contains_inanyorder(*expected))


@then("{person} does not see {tracker} on the map")
def step_not_on_map(context: StepContext, person: str, tracker: str) -> None:
    device_id = context.world.device(tracker)
    assert_that(context.world.answers[person]["snapshot"], is_not(has_item(has_entries(deviceId=device_id))))  # type: ignore[arg-type]  # PyHamcrest's nested generic matchers: mypy infers Matcher[Never]


@then("{person} sees {tracker} move to {latitude:g}, {longitude:g} within {seconds:g} second")
@then("{person} sees {tracker} move to {latitude:g}, {longitude:g} within {seconds:g} seconds")
def step_sees_move_within(context: StepContext, person: str, tracker: str, latitude: float, longitude: float,
                          seconds: float) -> None:
    context.suite.run(shown_at(context.world, person, tracker, latitude, longitude, timeout=seconds))


@then("{person} sees {tracker} move to {latitude:g}, {longitude:g}")
def step_sees_move(context: StepContext, person: str, tracker: str, latitude: float, longitude: float) -> None:
    context.suite.run(shown_at(context.world, person, tracker, latitude, longitude, timeout=ANSWER))


@then("{first} and {second} both see {tracker} move to {latitude:g}, {longitude:g}")
def step_both_see(context: StepContext, first: str, second: str, tracker: str, latitude: float,
                  longitude: float) -> None:
    for person in (first, second):
        context.suite.run(shown_at(context.world, person, tracker, latitude, longitude, timeout=ANSWER))


@then("{person} never sees {tracker}")
def step_never_sees(context: StepContext, person: str, tracker: str) -> None:
    """A negative check: run it after a positive barrier (a later position that did arrive), then listen for
    a bounded quiet window in case something arrives late."""
    world = context.world
    viewer = world.viewer(person)
    device_id = world.device(tracker)
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    assert_that(viewer.frames(lambda frame: mentions_device(frame, device_id)), contains_inanyorder())  # type: ignore[misc]  # PyHamcrest: an empty contains_inanyorder() is a Matcher[Never] to mypy


@then('{person} is told that watching the "{event}" is forbidden')
def step_forbidden(context: StepContext, person: str, event: str) -> None:
    assert_that(context.world.answers[person], an_error("forbidden", context.world.event(event)))


# -- leaving an event -------------------------------------------------------------------------------------------

@when('{person} stops following the "{event}"')
def step_unsubscribe(context: StepContext, person: str, event: str) -> None:
    _maps(context).left = context.suite.run(context.world.close_map(person, event))


@then('{person} is told {pronoun} no longer follows the "{event}"')
def step_unsubscribed(context: StepContext, person: str, pronoun: str, event: str) -> None:
    left = _maps(context).left
    assert left is not None, f"{person} did not stop following an event in this scenario"
    assert_that(left, has_entries(type="unsubscribed", eventId=context.world.event(event)))


# -- how the event is named ---------------------------------------------------------------------------------------

@when('{person} opens the live map of the "{event}", its id written in capitals')
def step_open_upper(context: StepContext, person: str, event: str) -> None:
    context.suite.run(context.world.open_map(person, event, written=str.upper))


@then('{person} follows the "{event}", named in lower case as the CMS names it')
def step_follows_lower(context: StepContext, person: str, event: str) -> None:
    assert_that(context.world.answers[person], has_entries(type="subscribed", eventId=context.world.event(event)),
                f"{person}'s answer (the event id in lower case)")


# -- how many events at once -----------------------------------------------------------------------------------

@when('{person} opens the live maps of {events:Quoted} through that service')
def step_open_many(context: StepContext, person: str, events: list[str]) -> None:
    world = context.world
    context.suite.run(world.connect(person, processor=that_service(world)))
    maps = _maps(context)
    maps.opened = {}
    for event in events:
        maps.opened[event] = context.suite.run(world.open_map(person, event))


@then("{person} follows all {count:d} of them")
def step_follows_all(context: StepContext, person: str, count: int) -> None:
    opened = _maps(context).opened
    answers = {event: str(answer.get("type")) + (f"/{answer.get('code')}" if answer.get("code") else "")
               for event, answer in opened.items()}
    assert_that(answers, equal_to({event: "subscribed" for event in opened}), f"{person}'s answers")
    assert_that(len(answers), equal_to(count), "events opened")


@then("{person} is told {pronoun} follows too many events at once")
def step_too_many(context: StepContext, person: str, pronoun: str) -> None:
    assert_that(context.world.answers[person], an_error("too_many_subscriptions"))


@then('{person} can now open the live map of the "{event}"')
def step_can_now_open(context: StepContext, person: str, event: str) -> None:
    answer = context.suite.run(context.world.open_map(person, event))
    assert_that(answer, has_entries(type="subscribed"), f"{person}'s answer to opening the map of {event}")
