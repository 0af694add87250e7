"""Counted before passed on: what a service has counted by the time another instance receives its positions, with
the service kept waiting right after it passes them on (support/processes/publish_hold.py, counting.py)."""

from __future__ import annotations

from dataclasses import dataclass

from behave import given, then, when
from hamcrest import assert_that, equal_to

from support.clock import ANSWER
from support.processes.backlog import ServiceUnderTest
from support.processes.counting import ChannelListener
from support.processes.instances import instances_of
from support.processes.publish_hold import PublishHold
from support.processes.scrape import MetricsSnapshot
from support.scenario.gherkin import StepContext

COUNTERS = {"stored": "processor_positions_stored_total", "duplicate": "processor_positions_duplicate_total",
            "orphan": "processor_live_broadcast_orphan_records_total"}


@dataclass
class Counting:
    """The link the service reaches Redis through, the suite's listener, and the service's counters before."""

    link: PublishHold
    listener: ChannelListener | None = None
    baseline: MetricsSnapshot | None = None


@given("a service of this scenario's own, which can be kept waiting right after it passes positions on")
def step_service_behind_link(context: StepContext) -> None:
    """The service reaches Redis through a :class:`PublishHold`; nothing is held until a step arms it."""
    world, endpoints = context.world, context.suite.endpoints
    assert endpoints is not None
    link = PublishHold(endpoints.redis_url)
    context.suite.run(link.start())
    instances = instances_of(world)
    world.cleanups.append(link.close)
    instance = instances.start("own", PROCESSOR_REDIS_URL=link.url)
    world.state(ServiceUnderTest, lambda: ServiceUnderTest(instance.process, instances.stream))
    world.state(Counting, lambda: Counting(link))


@given("another instance listens to what the service passes on")
def step_listen(context: StepContext) -> None:
    world, http = context.world, context.suite.http
    service, counting = world.state(ServiceUnderTest), world.state(Counting)
    assert world.publisher is not None and http is not None
    listener = ChannelListener(world.publisher.redis, f"{service.stream}:live", service.process.base_url, http)
    context.suite.run(listener.start())
    world.cleanups.append(listener.close)
    counting.listener = listener


@when("the service will be kept waiting as soon as it has passed positions on")
def step_hold_after_publish(context: StepContext) -> None:
    world = context.world
    counting = world.state(Counting)
    counting.baseline = context.suite.run(instances_of(world).metrics("own"))
    counting.link.hold_after_publish()  # the link's clean-up (close) releases it in any case


@then("by the time the other instance gets them, the service has counted {stored:d} stored, {duplicate:d} "
      "duplicate and {orphan:d} orphan positions")
def step_counted_first(context: StepContext, stored: int, duplicate: int, orphan: int) -> None:
    """The suite scraped the service the moment the live message reached it, while the service still waited for
    Redis's answer to its ``PUBLISH``: every count must already be there (docs/processor.md, section 10)."""
    counting = context.world.state(Counting)
    assert counting.listener is not None and counting.baseline is not None
    snapshot = context.suite.run(counting.listener.counted_at_first_message(ANSWER))
    assert counting.link.holding.is_set(), "the service was not kept waiting: no PUBLISH went through the link"
    counting.link.release()
    deltas = {name: snapshot.delta(counting.baseline, metric) for name, metric in COUNTERS.items()}
    assert_that(deltas, equal_to({"stored": stored, "duplicate": duplicate, "orphan": orphan}),
                "what the service had counted when another instance got its positions")
