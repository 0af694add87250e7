"""Services in halls: one that stores the trackers' reports and one that only serves fans, and what they tell each
other on the live channel (docs/processor.md section 5): its format, what a service does with what it cannot read,
what it lost, news that arrives late, and a connection that fails just after a batch was stored.

"The service in the north hall" is the scenario's instance ``north`` (support/processes/instances.py); a service
that only serves fans stores nothing (its consumer group starts past every entry), so every position reaches its
fans through the live channel; it reaches Redis through a :class:`~support.processes.redis_link.RedisLink` the
scenario can trouble. The channel itself is heard and spoken on with
:class:`~support.processes.live_channel.LiveChannel`.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any

from behave import given, then, when
from hamcrest import assert_that, equal_to, has_entries, has_item, has_length, none

from support.clock import ANSWER, SETTLE, within
from support.fans.matchers import a_position
from support.processes.instances import Instance, instances_of
from support.processes.live_channel import POSITION_FIELDS, Heard, LiveChannel, message
from support.processes.overload import LAG_BOUND_MS
from support.processes.redis_link import RedisLink
from support.scenario.gherkin import StepContext
from support.scenario.world import World
from support.trackers.publisher import render_ts
from support.waiting import eventually

GAPS = "processor_live_gaps_total"
SUBSCRIPTIONS = "processor_subscriptions"
#: How far a message's ``published`` may be from when the suite heard it (Unix seconds): the same host's clock,
#: so only the time the message took; generous, like every limit (a wrong unit is off by years).
PUBLISHED_SKEW = ANSWER
#: How the publishers the suite makes up begin (no instance's consumer name does).
MADE_UP = "nobody/"


@dataclass
class Halls:
    """What these steps remember: which hall stores, the suite's ear on the channel, marks taken before a trouble."""

    storing: str | None = None
    channel: LiveChannel | None = None
    #: The publisher of each hall's messages before it restarted.
    earlier_publisher: dict[str, str] = field(default_factory=dict)
    #: How much the channel had heard when a hall restarted.
    heard_before_restart: int = 0
    #: Each instance's log size before the suite said something unreadable.
    log_marks: dict[str, int] = field(default_factory=dict)
    #: Each fan's inbox length, and the gap counter of each instance, before a trouble.
    inbox_marks: dict[str, int] = field(default_factory=dict)
    gaps_before: dict[str, float] = field(default_factory=dict)
    #: The report whose news was last seen sent, and when (``time.monotonic()``).
    told: tuple[str, float] | None = None


def _halls(context: StepContext) -> Halls:
    return context.world.state(Halls, Halls)


def _instance(context: StepContext, hall: str) -> Instance:
    return instances_of(context.world).instance(hall)


def _link(context: StepContext, hall: str) -> RedisLink:
    link = _instance(context, hall).link
    assert link is not None, f"the service in the {hall} hall reaches Redis directly, not over a link"
    return link


def _channel(context: StepContext) -> LiveChannel:
    """The suite's own connection to the scenario's live channel (listening only if a step asked for it)."""
    halls = _halls(context)
    if halls.channel is None:
        instances = instances_of(context.world)
        assert context.suite.endpoints is not None
        halls.channel = LiveChannel(context.suite.endpoints.redis_url, instances.stream)
        context.world.cleanups.append(halls.channel.close)
    return halls.channel


# -- the services --------------------------------------------------------------------------------------------

def _start_pair(context: StepContext, first: str, second: str, **serving: str) -> None:
    instances = instances_of(context.world)
    instances.start(first)
    instances.start(second, stores=False, linked=True, **serving)
    _halls(context).storing = first


@given("the service in the {first} hall stores the trackers' reports, and the service in the {second} hall only "
       "serves fans")
def step_pair(context: StepContext, first: str, second: str) -> None:
    _start_pair(context, first, second)


@given("the service in the {first} hall stores the trackers' reports, and the service in the {second} hall only "
       "serves fans, letting them fall only a moment behind")
def step_pair_bounded(context: StepContext, first: str, second: str) -> None:
    """``PROCESSOR_LIVE_LAG_LIMIT_MS`` short for the serving one (the default is 5 s)."""
    _start_pair(context, first, second, PROCESSOR_LIVE_LAG_LIMIT_MS=str(LAG_BOUND_MS))


@given("the service in the {hall} hall stores the trackers' reports over a connection the suite can cut")
def step_storing_linked(context: StepContext, hall: str) -> None:
    instances_of(context.world).start(hall, linked=True)
    _halls(context).storing = hall


@given('{person} follows the "{event}" through the service in the {hall} hall')
def step_follow_in_hall(context: StepContext, person: str, event: str, hall: str) -> None:
    world = context.world
    context.suite.run(world.connect(person, processor=_instance(context, hall).process))
    answer = context.suite.run(world.open_map(person, event))
    assert_that(answer, has_entries(type="subscribed"), f"{person} could not open the map of {event}")


@when('{person} opens the live map of the "{event}" through the service in the {hall} hall')
def step_open_in_hall(context: StepContext, person: str, event: str, hall: str) -> None:
    """Connects first unless the fan already has a connection (to that service)."""
    world = context.world
    if person not in world.viewers:
        context.suite.run(world.connect(person, processor=_instance(context, hall).process))
    context.suite.run(world.open_map(person, event))


@when("the service in the {hall} hall restarts")
def step_restart_hall(context: StepContext, hall: str) -> None:
    """SIGTERM, then started again with the same settings (a redeployment)."""
    halls = _halls(context)
    channel = _channel(context)
    publishers = [heard.header().get("publisher") for heard in channel.heard if _readable(heard)]
    assert publishers, f"the service in the {hall} hall has told the others nothing yet"
    halls.earlier_publisher[hall] = str(publishers[-1])
    halls.heard_before_restart = len(channel.heard)
    instances = instances_of(context.world)
    status = instances.stop(hall)
    assert_that(status, equal_to(0), f"the exit status of the service in the {hall} hall")
    instances.restart(hall)


# -- listening to the channel --------------------------------------------------------------------------------

@given("someone listens to what the services tell each other")
def step_listen(context: StepContext) -> None:
    context.suite.run(_channel(context).listen())


def _readable(heard: Heard) -> bool:
    """One of the services' own messages, not something the suite said (its made-up publishers are ``nobody/…``)."""
    try:
        return not str(heard.header().get("publisher", "")).startswith(MADE_UP)
    except (ValueError, AssertionError):
        return False


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
        items = Counter(_comparable(item) for one in heard if _readable(one) for item in one.positions())
        missing[:] = [key for key, count in expected.items() if items[key] < count]
        return not missing

    try:
        heard = [one for one in context.suite.run(channel.wait_until(
            complete, timeout=SETTLE, what=f"every position of this scenario, from the service in the {hall} hall"))
            if _readable(one)]
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
        return any(_readable(one) and one.header().get("publisher") != before
                   for one in heard[halls.heard_before_restart:])

    heard = context.suite.run(channel.wait_until(told, timeout=SETTLE, what="a message of the restarted service"))
    later = [one for one in heard[halls.heard_before_restart:] if _readable(one)]
    assert_that(_problems(later), equal_to([]), "how the messages depart from the format of section 5")
    headers = [one.header() for one in later]
    assert_that([(header["publisher"] != before, header["seq"]) for header in headers],
                equal_to([(True, seq) for seq in range(1, len(headers) + 1)]),
                f"(a publisher other than {before!r}, seq) of each message after the restart: {headers}")


# -- losing what the others said ------------------------------------------------------------------------------

def _mark_before_trouble(context: StepContext, hall: str) -> None:
    halls = _halls(context)
    halls.inbox_marks = {name: len(viewer.inbox) for name, viewer in context.world.viewers.items()}
    halls.gaps_before[hall] = context.suite.run(instances_of(context.world).metrics(hall)).value(GAPS)


@when("the service in the {hall} hall loses its connection to what the others tell it")
def step_drop_channel(context: StepContext, hall: str) -> None:
    _mark_before_trouble(context, hall)
    cut = context.suite.call(_link(context, hall).drop_channel)
    assert cut >= 1, f"the service in the {hall} hall had no subscription to cut"


@when("one of the messages of another service never reaches the service in the {hall} hall")
def step_seq_gap(context: StepContext, hall: str) -> None:
    """The suite speaks as a service that does not exist: its messages 1 and 3 (2 is lost), no positions."""
    _mark_before_trouble(context, hall)
    channel = _channel(context)
    publisher = f"{MADE_UP}{secrets.token_hex(4)}"
    for seq in (1, 3):
        reached = context.suite.run(channel.say(message(publisher, seq)))
        assert reached >= 1, f"message {seq} reached no service"


@then("the operator sees that the service in the {hall} hall lost what the others told it {count:d} time")
def step_gaps_counted(context: StepContext, hall: str, count: int) -> None:
    instances = instances_of(context.world)
    before = _halls(context).gaps_before[hall]

    async def counted() -> tuple[bool, float]:
        delta = (await instances.metrics(hall)).value(GAPS) - before
        return delta >= count, delta

    delta = context.suite.run(eventually(counted, timeout=SETTLE, what=f"{GAPS} to rise by {count}"))
    assert_that(delta, equal_to(count), f"{GAPS} of the service in the {hall} hall moved by this much")


@then('{person} gets a fresh map of the "{event}"')
def step_fresh_map(context: StepContext, person: str, event: str) -> None:
    """A ``subscribed`` in place, which the fan did not ask for (section 5, "Gaps")."""
    world = context.world
    event_id = world.event(event)
    since = _halls(context).inbox_marks[person]
    context.suite.run(world.viewer(person).wait_for(
        lambda f: f.get("type") == "subscribed" and f.get("eventId") == event_id, timeout=SETTLE,
        what=f"a fresh map of the {event}", since=since))


# -- a connection that fails after the commit -----------------------------------------------------------------

@when("the connection of the service in the {hall} hall fails whenever it tells the others what it stored")
def step_lose_publishes(context: StepContext, hall: str) -> None:
    """Every write that carries a ``PUBLISH`` is lost with its connection (a client library's retry too), after the
    batch was stored and handed to the service's own fans: the batch stays pending and is read again. Stored again,
    it must route nothing, so that its round trip then carries only the ``XACK`` and gets through."""
    link = _link(context, hall)

    async def keep() -> None:
        link.keep_publishes()

    context.world.cleanups.append(keep)
    context.suite.call(link.lose_publishes)


@then("the connection of the service in the {hall} hall failed as it told the others about them")
def step_publish_lost(context: StepContext, hall: str) -> None:
    link = _link(context, hall)
    context.suite.run(asyncio.wait_for(link.publish_lost.wait(), within(SETTLE)))


# -- news that arrives late ----------------------------------------------------------------------------------

@when("the news from the service in the {first} hall is held up on its way to the {second} hall")
def step_hold_news(context: StepContext, first: str, second: str) -> None:
    link = _link(context, second)

    async def release() -> None:
        link.release_channel()

    context.world.cleanups.append(release)
    context.suite.call(link.hold_channel)


@when("the service in the {hall} hall has told the others about it")
def step_told_about_it(context: StepContext, hall: str) -> None:
    _told(context)


def _told(context: StepContext) -> float:
    """Wait until the storing service has stored and published the latest report (its group owes nothing: the
    ``PUBLISH`` goes before the ``XACK``); return when that was seen (``time.monotonic()``), once per report."""
    halls = _halls(context)
    world = context.world
    [report] = world.published.last_sent
    if halls.told is not None and halls.told[0] == report.entry_id:
        return halls.told[1]
    instances = instances_of(world)
    storing = instances.instance(halls.storing or "")

    async def published() -> tuple[bool, str]:
        stored = [row for row in await world.db.positions_of(report.device_id) if row.ts == report.ts]
        owed = await instances.pending(storing.group)
        return len(stored) == 1 and owed.total == 0, f"{len(stored)} stored, pending {owed}"

    context.suite.run(eventually(published, timeout=SETTLE, what="the position stored and published"))
    halls.told = (report.entry_id, time.monotonic())
    return halls.told[1]


@when("the news reaches the {hall} hall {seconds:g} seconds late")
def step_news_late(context: StepContext, hall: str, seconds: float) -> None:
    """Held ``seconds`` after the storing service published it, then let through."""
    told = _told(context)
    held = max(0.0, told + seconds - time.monotonic())
    context.suite.run(asyncio.sleep(held))  # pacing: the news stays held this long after it was sent
    context.suite.call(_link(context, hall).release_channel)
    print(f"news held {time.monotonic() - told:.2f} s after it was published")


@then("{person} sees {tracker} at {latitude:g}, {longitude:g} on the map {pronoun} opened")
def step_snapshot_shows(context: StepContext, person: str, tracker: str, latitude: float, longitude: float,
                        pronoun: str) -> None:
    answer = context.world.answers[person]
    assert_that(answer, has_entries(type="subscribed"), f"{person}'s answer to opening the map")
    assert_that(answer["snapshot"], has_item(a_position(context.world.device(tracker), latitude, longitude)),
                f"{person}'s map when it opened")
    assert_that(context.world.viewer(person).closed_with, none(), f"how {person}'s connection ended")



# -- the maps open on a service ----------------------------------------------------------------------------------

@then("the operator sees {count:d} live map open on the service in the {hall} hall")
@then("the operator sees {count:d} live maps open on the service in the {hall} hall")
def step_maps_open(context: StepContext, count: int, hall: str) -> None:
    """``processor_subscriptions`` of that service (started in the scenario): one per (fan, event) followed."""
    instances = instances_of(context.world)

    async def open_maps() -> tuple[bool, float]:
        value = (await instances.metrics(hall)).value(SUBSCRIPTIONS)
        return value == count, value

    context.suite.run(eventually(open_maps, timeout=ANSWER, what=f"{SUBSCRIPTIONS} to be {count}"))
