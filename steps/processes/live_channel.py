"""What services tell each other on the live channel (docs/processor.md section 5), as the suite hears it: two lines
per message, a header numbering each publisher's messages from 1, one item per (position, event) in the contract's
field order and in ``ts`` order; what a service does with what it cannot read; a restarted service as a new
publisher. The services are those of steps/processes/halls.py (support/processes/halls.py).
"""

from __future__ import annotations

import secrets
from collections import Counter
from typing import Any

from behave import given, then, when
from hamcrest import assert_that, equal_to, has_length

from support.clock import ANSWER, SETTLE, within
from support.processes.halls import MADE_UP, Halls, channel_of_scenario, halls_of, in_hall, readable
from support.processes.instances import Instance, instances_of
from support.processes.live_channel import POSITION_FIELDS, Heard, LiveChannel, message
from support.scenario.gherkin import StepContext
from support.scenario.world import World
from support.trackers.publisher import render_ts

#: How far a message's ``published`` may be from when the suite heard it (Unix seconds): the same host's clock,
#: so only the time the message took; generous, like every limit (a wrong unit is off by years).
PUBLISHED_SKEW = ANSWER


def _halls(context: StepContext) -> Halls:
    return halls_of(context.world)


def _instance(context: StepContext, hall: str) -> Instance:
    return in_hall(context.world, hall)


def _channel(context: StepContext) -> LiveChannel:
    return channel_of_scenario(context.world)


# -- listening to the channel --------------------------------------------------------------------------------

@given("someone listens to what the services tell each other")
def step_listen(context: StepContext) -> None:
    context.suite.run(_channel(context).listen())


async def _expected_items(world: World) -> Counter[tuple[Any, ...]]:
    """One item per (position, event) for every report so far of a tracker on a car, with the contract's fields of
    section 4 in the order of section 5 (a tracker on two cars of one event: the car of lowest entry id)."""
    event_of_entry = {entry_id: world.event(event) for (event, _), entry_id in world.entries.items()}
    cars: dict[str, dict[str, str]] = {}
    for device_id in {report.device_id for report in world.published.reports}:
        for entry_id in sorted(await world.db.cars_of_device(device_id), reverse=True):
            if entry_id in event_of_entry:
                cars.setdefault(device_id, {})[event_of_entry[entry_id]] = entry_id
    expected: Counter[tuple[Any, ...]] = Counter()
    for report in world.published.reports:
        payload = report.payload
        for event_id, entry_id in cars.get(report.device_id, {}).items():
            expected[_comparable([event_id, entry_id, report.device_id, render_ts(report.ts), report.latitude,
                                  report.longitude, payload.get("altitude"), payload.get("speed"),
                                  payload.get("angle"), payload.get("satellites"), report.entry_id])] += 1
    return expected


def _comparable(item: list[Any]) -> tuple[Any, ...]:
    """An item as a hashable tuple, numbers as floats rounded far below any coordinate's precision."""
    return tuple(round(float(value), 9) if isinstance(value, (int, float)) and not isinstance(value, bool)
                 else value for value in item)


def _problems(heard: list[Heard]) -> list[str]:
    """Where the services' messages depart from the format of section 5: two lines, a header with ``publisher``,
    ``seq`` and ``published`` (Unix seconds, about when it was heard), items of eleven fields in ``ts`` order."""
    problems = []
    for number, one in enumerate(heard, 1):
        header = one.header()
        if not (isinstance(header.get("publisher"), str) and header["publisher"]):
            problems.append(f"message {number}: publisher {header.get('publisher')!r}")
        if not isinstance(header.get("seq"), int) or isinstance(header.get("seq"), bool):
            problems.append(f"message {number}: seq {header.get('seq')!r}")
        published = header.get("published")
        if not isinstance(published, (int, float)) or abs(one.received - published) > within(PUBLISHED_SKEW):
            problems.append(f"message {number}: published {published!r}, heard at {one.received:.3f}")
        items = one.positions()
        wrong = [item for item in items if len(item) != len(POSITION_FIELDS)]
        if wrong:
            problems.append(f"message {number}: items of {len(wrong[0])} fields, not {len(POSITION_FIELDS)}")
        times = [item[POSITION_FIELDS.index("ts")] for item in items if len(item) == len(POSITION_FIELDS)]
        if times != sorted(times):
            problems.append(f"message {number}: times not in order: {times}")
    return problems


@then("the service in the {hall} hall told the others of each position once per event, in messages numbered "
      "from 1 without a gap, each in time order")
def step_told_each_once(context: StepContext, hall: str) -> None:
    world = context.world
    channel = _channel(context)
    expected = context.suite.run(_expected_items(world))

    missing: list[tuple[Any, ...]] = []

    def complete(heard: list[Heard]) -> bool:
        items = Counter(_comparable(item) for one in heard if readable(one) for item in one.positions())
        missing[:] = [key for key, count in expected.items() if items[key] < count]
        return not missing

    try:
        heard = [one for one in context.suite.run(channel.wait_until(
            complete, timeout=SETTLE, what=f"every position of this scenario, from the service in the {hall} hall"))
            if readable(one)]
    except AssertionError as failure:
        raise AssertionError(f"{failure}\nnot heard ({len(missing)}), e.g. {missing[:3]}") from None
    assert_that(_problems(heard), equal_to([]), "how the messages depart from the format of section 5")
    headers = [one.header() for one in heard]
    assert_that({header["publisher"] for header in headers}, has_length(1), "publishers heard (one service stores)")
    assert_that([header["seq"] for header in headers], equal_to(list(range(1, len(heard) + 1))), "the numbers")
    items = Counter(_comparable(item) for one in heard for item in one.positions())
    assert_that(dict(items), equal_to(dict(expected)),
                f"the items told, in the field order {POSITION_FIELDS} (each (position, event) once)")


@when("someone tells the services two things they cannot read")
def step_say_unreadable(context: StepContext) -> None:
    """Garbage, and a well-formed header whose positions are not a list: each is to be ignored with one warning
    (section 5). Every service's log is marked first."""
    halls = _halls(context)
    instances = instances_of(context.world)
    halls.log_marks = {name: one.process.log_size() for name, one in instances.instances.items()}
    channel = _channel(context)
    unreadable = [b"this is not a live message", message(f"{MADE_UP}{secrets.token_hex(4)}", 1)
                  .split(b"\n")[0] + b'\n{"not": "a list of positions"}']
    for raw in unreadable:
        reached = context.suite.run(channel.say(raw))
        assert reached >= len(instances.instances), f"{raw!r} reached {reached} subscribers"


@then("the service in the {hall} hall noted each thing it could not read once in its log")
def step_noted_once(context: StepContext, hall: str) -> None:
    """Read after a positive barrier: a later position reached a fan of that service through the channel."""
    process = _instance(context, hall).process
    mark = _halls(context).log_marks[hall]
    warnings = [line for line in process.log_since(mark) if " WARNING " in line]
    assert_that(warnings, has_length(2), f"warnings in the log of the service in the {hall} hall since the suite "
                                         f"said two unreadable things: {warnings}")


@then("the restarted service in the {hall} hall numbers its messages from 1 again, under a new name")
def step_new_publisher(context: StepContext, hall: str) -> None:
    halls = _halls(context)
    channel = _channel(context)
    before = halls.earlier_publisher[hall]

    def told(heard: list[Heard]) -> bool:
        return any(readable(one) and one.header().get("publisher") != before
                   for one in heard[halls.heard_before_restart:])

    heard = context.suite.run(channel.wait_until(told, timeout=SETTLE, what="a message of the restarted service"))
    later = [one for one in heard[halls.heard_before_restart:] if readable(one)]
    assert_that(_problems(later), equal_to([]), "how the messages depart from the format of section 5")
    headers = [one.header() for one in later]
    assert_that([(header["publisher"] != before, header["seq"]) for header in headers],
                equal_to([(True, seq) for seq in range(1, len(headers) + 1)]),
                f"(a publisher other than {before!r}, seq) of each message after the restart: {headers}")


@when("the service in the {hall} hall restarts")
def step_restart_hall(context: StepContext, hall: str) -> None:
    """SIGTERM, then started again with the same settings (a redeployment)."""
    halls = _halls(context)
    channel = _channel(context)
    publishers = [heard.header().get("publisher") for heard in channel.heard if readable(heard)]
    assert publishers, f"the service in the {hall} hall has told the others nothing yet"
    halls.earlier_publisher[hall] = str(publishers[-1])
    halls.heard_before_restart = len(channel.heard)
    instances = instances_of(context.world)
    status = instances.stop(hall)
    assert_that(status, equal_to(0), f"the exit status of the service in the {hall} hall")
    instances.restart(hall)


