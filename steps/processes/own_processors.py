"""Processors of a scenario's own, set up to show one behaviour: a small queue for each fan, frequent keepalive
checks, few events per fan; and what their fans then experience: stalling, being dropped."""

from __future__ import annotations

import time
from dataclasses import dataclass
from datetime import UTC, datetime

from behave import given, then, when
from hamcrest import assert_that, equal_to, greater_than_or_equal_to

from support.clock import ANSWER, CATCH_UP, SETTLE
from support.fans.deliveries import bursts_until, wait_for_positions
from support.processes.instances import ScenarioInstances, instances_of
from support.processes.scrape import MetricsSnapshot
from support.scenario.gherkin import StepContext
from support.waiting import eventually

#: Bursts a stalled fan may survive before the slow-consumer scenario gives up.
MAX_BURSTS = 10
#: Where the bursts of the slow-consumer scenario sit on the trackers' clock.
BURSTS_START = datetime(2026, 5, 2, 15, 0, tzinfo=UTC)
SLOW_CONSUMERS = "processor_slow_consumer_disconnects_total"


@dataclass
class OwnProcessors:
    """What these steps remember: an instance's metrics before a fan stalled."""

    baseline: MetricsSnapshot | None = None


def _own(context: StepContext) -> OwnProcessors:
    return context.world.state(OwnProcessors, OwnProcessors)


def _baseline(context: StepContext) -> MetricsSnapshot:
    baseline = _own(context).baseline
    assert baseline is not None, "no fan stopped reading in this scenario"
    return baseline


# -- set up ------------------------------------------------------------------------------------------------

@given("a Processor {name} that reads {batch:d} reports at a time and lets {count:d} messages queue up for each fan")
def step_small_queue(context: StepContext, name: str, batch: int, count: int) -> None:
    """A small queue, but as the contract sizes it: one live message carries up to a batch of positions, so a
    queue under two batches could close a fan who reads promptly (docs/processor.md, PROCESSOR_CLIENT_QUEUE)."""
    assert count >= 2 * batch, f"the contract wants a client queue of at least 2 x the batch size ({2 * batch})"
    instances_of(context.world).start(name, PROCESSOR_READ_COUNT=str(batch), PROCESSOR_CLIENT_QUEUE=str(count))


@given("a Processor {name} of this scenario's own")
def step_own_processor(context: StepContext, name: str) -> None:
    instances_of(context.world).start(name)


@given("a Processor {name} that checks often whether each fan is still there")
def step_pinging_processor(context: StepContext, name: str) -> None:
    """Keepalive pings every half second, and half a second for the answer (defaults: 20 s each)."""
    instances_of(context.world).start(name, PROCESSOR_PING_INTERVAL="0.5", PROCESSOR_PING_TIMEOUT="0.5")


@given("a Processor {name} that lets each fan follow {count:d} events at once")
def step_subscription_limit(context: StepContext, name: str, count: int) -> None:
    instances_of(context.world).start(name, PROCESSOR_MAX_SUBSCRIPTIONS=str(count))


# -- a fan who stops reading ---------------------------------------------------------------------------------

@when("{person} stops reading {pronoun} messages")
def step_stop_reading(context: StepContext, person: str, pronoun: str) -> None:
    viewer = context.world.viewer(person)
    instances = context.world.state_if_any(ScenarioInstances)
    if instances is not None:
        first = next(iter(instances.instances))
        _own(context).baseline = context.suite.run(instances.metrics(first))
    context.suite.call(viewer.stop_reading)


@when("{tracker} reports bursts of {count:d} positions until Processor {name} gives up on {person}")
def step_bursts_until_slow(context: StepContext, tracker: str, count: int, name: str, person: str) -> None:
    """Burst after burst: each one must reach every fan still reading (the positive barrier) before the
    Processor's slow-consumer counter is read; stop once it has risen, or fail after a bounded number."""
    world = context.world
    readers = [v for n, v in world.viewers.items() if n != person]
    event_id = world.answers[readers[0].name]["eventId"]
    instances = world.state(ScenarioInstances)
    baseline = _baseline(context)

    async def gave_up() -> bool:
        snapshot = await instances.metrics(name)
        return bool(snapshot.delta(baseline, SLOW_CONSUMERS) >= 1)

    reports, bursts = context.suite.run(
        bursts_until(world, tracker, count, readers, event_id=event_id, start=BURSTS_START, done=gave_up,
                     max_bursts=MAX_BURSTS, timeout=CATCH_UP, what=f"Processor {name} to give up on {person}"),
        timeout=MAX_BURSTS * (CATCH_UP + SETTLE))
    print(f"Processor {name} gave up on {person} during burst {bursts} ({len(reports)} positions reported)")


@then("{person} has received every one of those positions")
def step_received_all(context: StepContext, person: str) -> None:
    world = context.world
    context.suite.run(wait_for_positions(world.viewer(person), [r.key for r in world.published.latest_round],
                                         event_id=world.answers[person]["eventId"], timeout=CATCH_UP,
                                         what="positions reported"))


@then("Processor {name} has disconnected {count:d} fan as too slow")
def step_slow_disconnects(context: StepContext, name: str, count: int) -> None:
    instances = context.world.state(ScenarioInstances)
    baseline = _baseline(context)

    async def counted() -> tuple[bool, float]:
        delta = (await instances.metrics(name)).delta(baseline, SLOW_CONSUMERS)
        return delta >= count, delta

    delta = context.suite.run(eventually(counted, timeout=SETTLE, what=f"{SLOW_CONSUMERS} to rise by {count}"))
    assert_that(delta, equal_to(count), f"{SLOW_CONSUMERS} moved by this much")


@then("Processor {name} drops {person}'s connection within {seconds:g} seconds")
def step_dropped(context: StepContext, name: str, person: str, seconds: float) -> None:
    gauge = "processor_websocket_connections"
    instances = context.world.state(ScenarioInstances)
    baseline = _baseline(context)
    began = time.monotonic()

    async def dropped() -> tuple[bool, float]:
        now = (await instances.metrics(name)).value(gauge)
        return now <= baseline.value(gauge) - 1, now

    context.suite.run(eventually(dropped, timeout=seconds, what=f"{gauge} on Processor {name} to drop by 1"))
    print(f"{gauge} dropped {time.monotonic() - began:.2f} s after {person} stopped reading")
    viewer = context.world.viewer(person)
    context.suite.call(viewer.resume_reading)
    closed = context.suite.run(viewer.wait_closed(timeout=ANSWER))
    print(f"{person}'s connection ended with {closed}")
    assert_that(closed[0], greater_than_or_equal_to(1000), f"{person}'s connection ended with {closed}")
