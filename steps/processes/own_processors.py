"""Processors of a scenario's own, set up to show one behaviour: a small queue for each fan, frequent keepalive
checks, few events per fan; and what their fans then experience: stalling, being dropped."""

from __future__ import annotations

import time
from dataclasses import dataclass

from behave import given, then, when
from hamcrest import assert_that, equal_to

from support.clock import ANSWER, CATCH_UP
from support.fans.deliveries import wait_for_positions
from support.processes.instances import THAT_SERVICE, ScenarioInstances, instances_of
from support.processes.scrape import MetricsSnapshot
from support.scenario.gherkin import StepContext
from support.waiting import eventually

#: WebSocket close code of a fan who did not answer the keepalive ping in time (docs/processor.md, "Close codes").
CLOSE_KEEPALIVE = 1011


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

@given("a service of its own, for this scenario")
def step_own_processor(context: StepContext) -> None:
    instances_of(context.world).start(THAT_SERVICE)


@given("a service that checks every half second whether each fan is still there (a test setting; the product checks "
       "every 20 seconds)")
def step_pinging_processor(context: StepContext) -> None:
    """Keepalive pings every half second, and half a second for the answer (defaults: 20 s each)."""
    instances_of(context.world).start(THAT_SERVICE, PROCESSOR_PING_INTERVAL="0.5", PROCESSOR_PING_TIMEOUT="0.5")


@given("a service that lets each fan follow at most {count:d} events at once (a test setting; the product allows 50)")
def step_subscription_limit(context: StepContext, count: int) -> None:
    instances_of(context.world).start(THAT_SERVICE, PROCESSOR_MAX_SUBSCRIPTIONS=str(count))


# -- a fan who stops reading ---------------------------------------------------------------------------------

@when("{person} stops reading {pronoun} messages")
def step_stop_reading(context: StepContext, person: str, pronoun: str) -> None:
    viewer = context.world.viewer(person)
    instances = context.world.state_if_any(ScenarioInstances)
    if instances is not None:
        first = next(iter(instances.instances))
        _own(context).baseline = context.suite.run(instances.metrics(first))
    context.suite.call(viewer.stop_reading)


@then("{person} has received every one of those positions")
def step_received_all(context: StepContext, person: str) -> None:
    world = context.world
    context.suite.run(wait_for_positions(world.viewer(person), [r.key for r in world.published.latest_round],
                                         event_id=world.answers[person]["eventId"], timeout=CATCH_UP,
                                         what="positions reported"))


@then("that service drops {person}'s connection within {seconds:g} seconds")
def step_dropped(context: StepContext, person: str, seconds: float) -> None:
    name = THAT_SERVICE
    gauge = "processor_websocket_connections"
    instances = context.world.state(ScenarioInstances)
    baseline = _baseline(context)
    began = time.monotonic()

    async def dropped() -> tuple[bool, float]:
        now = (await instances.metrics(name)).value(gauge)
        return now <= baseline.value(gauge) - 1, now

    context.suite.run(eventually(dropped, timeout=seconds, what=f"{gauge} on {name} to drop by 1"))
    print(f"{gauge} dropped {time.monotonic() - began:.2f} s after {person} stopped reading")
    viewer = context.world.viewer(person)
    context.suite.call(viewer.resume_reading)
    closed = context.suite.run(viewer.wait_closed(timeout=ANSWER))
    print(f"{person}'s connection ended with {closed}")
    assert_that(closed[0], equal_to(CLOSE_KEEPALIVE), f"{person}'s connection ended with {closed}")
