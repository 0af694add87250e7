"""A backlog waiting for a service: how many reports it takes at a time, and what its operator sees meanwhile.

The counts come from Redis (support/processes/backlog.py); the service's own gauges must say the same.
"""

from __future__ import annotations

import asyncio

from behave import given, then

from support.clock import ANSWER, within
from support.fans.viewer import QUIET_WINDOW
from support.processes.backlog import Backlog, ServiceUnderTest, backlog
from support.processes.instances import instances_of
from support.scenario.gherkin import StepContext
from support.waiting import eventually


@given("the service, taking its default number at a time")
def step_main_service(context: StepContext) -> None:
    """The run's main Processor: the suite sets no ``PROCESSOR_READ_COUNT`` for it."""
    suite, endpoints = context.suite, context.suite.endpoints
    assert endpoints is not None and "PROCESSOR_READ_COUNT" not in suite.processor.env
    context.world.state(ServiceUnderTest, lambda: ServiceUnderTest(suite.processor, endpoints.stream))


@given("a second service that takes {count:d} reports at a time")
def step_second_service(context: StepContext, count: int) -> None:
    """A Processor of the scenario's own, on its own stream, with ``PROCESSOR_READ_COUNT`` = ``count``."""
    instances = instances_of(context.world)
    instance = instances.start("second", PROCESSOR_READ_COUNT=str(count))
    context.world.state(ServiceUnderTest, lambda: ServiceUnderTest(instance.process, instances.stream))


@given("a service of this scenario's own")
def step_own_service(context: StepContext) -> None:
    """A Processor of the scenario's own, on its own stream (the scenario's reports go there from now on)."""
    instances = instances_of(context.world)
    instance = instances.start("own")
    context.world.state(ServiceUnderTest, lambda: ServiceUnderTest(instance.process, instances.stream))


@then("the service has taken {taken:d} of them to store, and {waiting:d} wait to be read")
def step_backlog_taken(context: StepContext, taken: int, waiting: int) -> None:
    """One batch of the set size is being stored and the next was read ahead (docs/processor.md, section 5): the
    service's consumer owes exactly ``taken`` entries, ``waiting`` are not delivered yet, and that stays so (a
    quiet window after the counts are reached: a service that reads more would have)."""
    world = context.world
    service = world.state(ServiceUnderTest)

    async def reached() -> tuple[bool, Backlog]:
        now = await backlog(world, service)
        return (now.taken, now.waiting) == (taken, waiting), now

    context.suite.run(eventually(reached, timeout=ANSWER, what=f"{taken} entries taken, {waiting} waiting"))
    context.suite.run(asyncio.sleep(within(QUIET_WINDOW)))  # quiet-window: documented in support/fans/viewer.py
    now = context.suite.run(backlog(world, service))
    assert (now.taken, now.waiting) == (taken, waiting), f"after the quiet window: {now}"


@then("the service shows {taken:d} reports taken but not yet stored, and {waiting:d} waiting to be read")
def step_backlog_gauges(context: StepContext, taken: int, waiting: int) -> None:
    """``processor_stream_pending`` and ``processor_stream_lag`` on the service's ``/metrics`` (refreshed in the
    background, so waited for)."""
    world = context.world
    service = world.state(ServiceUnderTest)

    async def shown() -> tuple[bool, Backlog]:
        now = await backlog(world, service)
        return (now.gauge_taken, now.gauge_waiting) == (taken, waiting), now

    context.suite.run(eventually(shown, timeout=ANSWER, what=f"the gauges at {taken} taken, {waiting} waiting"))
