"""A second service whose way to the database the scenario controls: race control's corrections held up on the
way, overtaken, cut off or missed, and what the fans watching through it then see (docs/processor.md, section 4,
"Corrections"; the windows are opened by support/processes/second_service.py)."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime

from behave import given, then, when
from hamcrest import assert_that, equal_to, greater_than_or_equal_to, has_entries

from support.clock import CATCH_UP, SETTLE
from support.database.race_control import RaceControl
from support.fans.live_map import LiveMap, wait_for_map
from support.fans.matchers import COORDINATE_TOLERANCE
from support.fans.viewer import QUIET_WINDOW
from support.processes.healthz import main_processor_healthy
from support.processes.instances import ScenarioInstances, instances_of
from support.processes.second_service import (
    LISTENING,
    READS_POSITIONS,
    SECOND,
    STORER,
    SecondService,
    begin_holding,
    held_query,
    listening,
    notified,
    stop_holding,
    take_no_reports,
)
from support.processes.slow_link import SlowLink
from support.scenario.gherkin import StepContext
from support.services.base import service_control
from support.waiting import eventually

#: The consumer group of the second service, made by the suite so that it is never handed a report.
SECOND_GROUP = "group-second"


def _service(context: StepContext) -> SecondService:
    return context.world.state(SecondService)


def _race_control(context: StepContext) -> RaceControl:
    return context.world.state(RaceControl, RaceControl)


def _instances(context: StepContext) -> ScenarioInstances:
    return context.world.state(ScenarioInstances)


# -- set up --------------------------------------------------------------------------------------------------

def _start_second(context: StepContext) -> None:
    world = context.world
    instances = instances_of(world)
    endpoints = context.suite.endpoints
    assert endpoints is not None
    link = SlowLink(endpoints.database_url)
    context.suite.run(link.start())
    world.cleanups.append(link.close)
    world.state(SecondService, lambda: SecondService(link))
    context.suite.run(take_no_reports(instances.publisher.redis, instances.stream, SECOND_GROUP))
    instances.start(SECOND, group=SECOND_GROUP, PROCESSOR_DATABASE_URL=link.url)


@given("a second service, which takes no reports itself and reaches the database over a line the scenario can "
       "hold up or cut")
def step_second(context: StepContext) -> None:
    _start_second(context)


@given("a service that stores the trackers' reports, and a second service, which takes no reports itself and "
       "reaches the database over a line the scenario can hold up or cut")
def step_storer_and_second(context: StepContext) -> None:
    """Both read the scenario's own stream; only the first is ever handed its reports."""
    instances_of(context.world).start(STORER)
    _start_second(context)


@given("{person} is connected to the second service")
def step_connected(context: StepContext, person: str) -> None:
    world = context.world
    viewer = context.suite.run(world.connect(person, processor=_instances(context).instance(SECOND).process))
    assert viewer.refusal is None, f"{person}'s connection was refused: {viewer.refusal}"
    context.suite.run(listening(_instances(context), SECOND))


@given('{person} has the live map of the "{event}" open through the second service')
def step_open_on_second(context: StepContext, person: str, event: str) -> None:
    """Connected, the map open, and the second service listening for corrections (a change made before that
    would reach the map only through a resync)."""
    step_connected(context, person)
    answer = context.suite.run(context.world.open_map(person, event))
    assert_that(answer, has_entries(type="subscribed"), f"{person} could not open the map of {event}")


# -- answers held up on their way --------------------------------------------------------------------------------

def _hold(context: StepContext) -> SecondService:
    service = _service(context)
    context.suite.run(begin_holding(service, context.world.db, _instances(context), _race_control(context).changes))
    return service


def _flag(context: StepContext, tracker: str, time: datetime) -> None:
    world = context.world
    changed = context.suite.run(world.db.set_faulty(world.device(tracker), time, True))
    _race_control(context).changed()
    assert_that(changed, equal_to(1), f"positions of {tracker} at {time} flagged")


@when("race control flags the position of {tracker} at {time:Time} as faulty, while the second service's look-up "
      "of it is held up on its way")
def step_flag_held(context: StepContext, tracker: str, time: datetime) -> None:
    """The correction's query runs on the server; its answer waits in the link."""
    service = _hold(context)
    _flag(context, tracker, time)
    context.suite.run(held_query(service, context.world.db, "correction"))


@when('{person} opens the live map of the "{event}" through the second service, and its fresh map is held up on '
      'its way')
def step_open_held(context: StepContext, person: str, event: str) -> None:
    """The snapshot query runs on the server (so it is read before anything the scenario changes next); its
    answer waits in the link while the map is loading."""
    world = context.world
    service = _hold(context)
    service.opened[person] = world.event(event)
    context.suite.run(world.start_opening(person, event))
    context.suite.run(held_query(service, world.db, "snapshot"))


@when("the held-up answer reaches the second service")
def step_release(context: StepContext) -> None:
    service = _service(context)
    service.link.release()
    stop_holding(service)


@when("the held-up answers reach the second service, the latest first")
def step_release_latest_first(context: StepContext) -> None:
    """Once the second service has been told of every change made since the hold, and had the quiet window to
    run a query for each if it would (an implementation that runs them side by side has its later answers held
    too): the answers of queries reading positions go on newest query first, each only after the one before."""
    service = _service(context)
    instances = _instances(context)
    changes = _race_control(context).changes - service.changes_before
    context.suite.run(notified(service, instances, changes))
    context.suite.run(asyncio.sleep(QUIET_WINDOW))  # quiet-window: a second query, if any, is sent and held now
    assert service.since is not None
    ports = context.suite.run(context.world.db.finished_query_ports(service.link.held_ports, since=service.since,
                                                                     mentioning=READS_POSITIONS))
    order = [service.link.by_port(port) for port in reversed(ports)]
    print(f"held answers of queries reading positions: {len(order)}; passed on newest first")
    context.suite.run(service.link.release_in_order(order))
    stop_holding(service)


@when("the held-up answers reach the second service, the {first} first")
def step_release_named_first(context: StepContext, first: str) -> None:
    service = _service(context)
    assert first in service.named, f"no held answer called {first!r} (known: {list(service.named)})"
    order = [service.named[first], *(c for name, c in service.named.items() if name != first)]
    context.suite.run(service.link.release_in_order(order))
    stop_holding(service)


# -- corrections the second service missed -------------------------------------------------------------------

@when("race control flags the position of {tracker} at {time:Time} as faulty while the second service's "
      "connection for corrections is cut and cannot be made again")
def step_flag_while_cut(context: StepContext, tracker: str, time: datetime) -> None:
    """The listener's connection is cut and new connections are refused until the flag is committed: the
    notification is sent while nobody of the second service listens. Meanwhile its gauge must read 0."""
    link = _service(context).link
    instances = _instances(context)
    link.refuse()
    try:
        assert_that(link.cut_listeners(), greater_than_or_equal_to(1), "listening connections cut")

        async def not_listening() -> tuple[bool, float]:
            value = (await instances.metrics(SECOND)).value(LISTENING)
            return value == 0, value

        context.suite.run(eventually(not_listening, timeout=SETTLE, what=f"{LISTENING} = 0 on the second service"))
        _flag(context, tracker, time)
    finally:
        link.admit()


@when("race control flags the position of {tracker} at {time:Time} as faulty while the second service's look-up "
      "of it is cut off on its way")
def step_flag_lookup_cut(context: StepContext, tracker: str, time: datetime) -> None:
    """The correction's query runs; the connection that carries its answer is cut instead of passing it on."""
    service = _hold(context)
    _flag(context, tracker, time)
    context.suite.run(held_query(service, context.world.db, "correction"))
    service.link.cut_held()
    stop_holding(service)


@when("race control flags the position of {tracker} at {time:Time} as faulty while the database restarts and the "
      "second service cannot reach it yet")
def step_flag_while_restarting(context: StepContext, tracker: str, time: datetime) -> None:
    suite = context.suite
    provider = service_control(suite.provider)
    link = _service(context).link

    async def restore() -> None:  # registered before breaking anything: runs even if a later step fails
        link.admit()
        await asyncio.to_thread(provider.start_service, "postgres")
        await main_processor_healthy(suite)

    context.world.cleanups.append(restore)
    link.refuse()
    try:
        provider.stop_service("postgres")
        provider.start_service("postgres")
        _flag(context, tracker, time)
    finally:
        link.admit()


@when("race control flags the position of {tracker} at {time:Time} as faulty while the second service's "
      "connection for corrections has silently stopped passing anything")
def step_flag_while_silent(context: StepContext, tracker: str, time: datetime) -> None:
    """The listener's connection drops every byte both ways and stays open: only the service's own check of
    the connection can tell (docs/processor.md, section 4, "Missed notifications")."""
    assert_that(_service(context).link.silence_listeners(), greater_than_or_equal_to(1), "listening connections")
    _flag(context, tracker, time)


@then("{person} sees {tracker} go back to {latitude:g}, {longitude:g} without reopening {pronoun} map")
def step_back_without_reopening(context: StepContext, person: str, tracker: str, latitude: float, longitude: float,
                                pronoun: str) -> None:
    """Within the limit of section 10 for a missed correction; the fan sends nothing meanwhile."""
    world = context.world
    device_id = world.device(tracker)

    def back(shown: LiveMap) -> bool:
        item = shown.get(device_id)
        return (item is not None and abs(item.get("lat", 1e9) - latitude) <= COORDINATE_TOLERANCE
                and abs(item.get("lon", 1e9) - longitude) <= COORDINATE_TOLERANCE)

    began = time.monotonic()
    context.suite.run(wait_for_map(world.viewer(person), world.answers[person]["eventId"], back, timeout=CATCH_UP,
                                   what=f"{tracker} at {latitude}, {longitude}", names=world.alias_of),
                      timeout=CATCH_UP + SETTLE)
    print(f"{person}'s map showed {tracker} back {time.monotonic() - began:.2f} s after the change "
          f"({_race_control(context).since_change():.2f} s)")


@then("{person}'s map ends showing {tracker} at {latitude:g}, {longitude:g}")
def step_map_ends(context: StepContext, person: str, tracker: str, latitude: float, longitude: float) -> None:
    """Shown there (waited for), and still there after the quiet window: nothing out of order undid it."""
    world = context.world
    viewer = world.viewer(person)
    device_id = world.device(tracker)

    def there(shown: LiveMap) -> bool:
        item = shown.get(device_id)
        return (item is not None and abs(item.get("lat", 1e9) - latitude) <= COORDINATE_TOLERANCE
                and abs(item.get("lon", 1e9) - longitude) <= COORDINATE_TOLERANCE)

    opened = world.state_if_any(SecondService)
    event_id = opened.opened[person] if opened is not None and person in opened.opened else \
        world.answers[person]["eventId"]
    context.suite.run(wait_for_map(viewer, event_id, there, timeout=SETTLE, what=f"{tracker} at {latitude}, "
                                   f"{longitude}", names=world.alias_of))
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    context.suite.run(wait_for_map(viewer, event_id, there, timeout=0, what=f"{tracker} still at {latitude}, "
                                   f"{longitude} after the quiet window", names=world.alias_of))
