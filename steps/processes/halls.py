"""Services in halls (support/processes/halls.py): one that stores the trackers' reports and one that only serves
fans; what they do when what the others tell them is lost or arrives late (docs/processor.md section 5, "Falling
behind"), when a connection fails just after a batch was stored, and the maps open on them. The format of what they
tell each other is steps/processes/live_channel.py.
"""

from __future__ import annotations

import asyncio
import secrets
import time

from behave import given, then, when
from hamcrest import assert_that, equal_to, has_entries, has_item, none

from support.clock import ANSWER, SETTLE, within
from support.fans.matchers import a_position
from support.processes.halls import MADE_UP, Halls, channel_of_scenario, halls_of, in_hall, link_of
from support.processes.instances import Instance, instances_of
from support.processes.live_channel import LiveChannel, message
from support.processes.overload import LAG_BOUND_MS
from support.processes.redis_link import RedisLink
from support.scenario.gherkin import StepContext
from support.waiting import eventually

GAPS = "processor_live_gaps_total"
SUBSCRIPTIONS = "processor_subscriptions"


def _halls(context: StepContext) -> Halls:
    return halls_of(context.world)


def _instance(context: StepContext, hall: str) -> Instance:
    return in_hall(context.world, hall)


def _link(context: StepContext, hall: str) -> RedisLink:
    return link_of(context.world, hall)


def _channel(context: StepContext) -> LiveChannel:
    return channel_of_scenario(context.world)


# -- the services --------------------------------------------------------------------------------------------

def _start_pair(context: StepContext, first: str, second: str, **serving: str) -> None:
    instances = instances_of(context.world)
    instances.start(first)
    instances.start(second, stores=False, linked=True, settings=serving)
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


@given("the service in the {hall} hall stores the trackers' reports over a connection that can be cut")
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
