"""A service of the scenario's own, started for one purpose ("a service that ..."), which later steps call "that
service": other limits, a database link the suite overhears, other web sites allowed."""

from __future__ import annotations

from behave import given

from support.processes.instances import THAT_SERVICE, instances_of
from support.processes.slow_link import SlowLink
from support.scenario.gherkin import StepContext


def _start(context: StepContext, *, without: tuple[str, ...] = (), **overrides: str) -> None:
    instances_of(context.world).start(THAT_SERVICE, without=without, settings=overrides)


@given("a service that keeps the usual limits")
def step_usual_service(context: StepContext) -> None:
    """Nothing the contract gives a default is set: the rate limit, the frame limit, keepalive, the queue."""
    _start(context)


@given("a service that lets each fan send {rate:d} requests a second")
def step_rate_service(context: StepContext, rate: int) -> None:
    _start(context, PROCESSOR_SUBSCRIBE_RATE=str(rate))


@given("a service that lets {count:d} messages wait for each fan")
def step_queue_service(context: StepContext, count: int) -> None:
    """It reads 50 reports at a time (as every service of a scenario's own does): a queue of 100 is the least the
    contract allows (docs/processor.md, ``PROCESSOR_CLIENT_QUEUE``)."""
    _start(context, PROCESSOR_CLIENT_QUEUE=str(count))


@given("a service that accepts messages of at most {size:Count} characters (a test setting; the product "
       "accepts 65,536)")
def step_frame_limit_service(context: StepContext, size: int) -> None:
    """Characters of plain ASCII: bytes, the unit of ``PROCESSOR_MAX_FRAME_BYTES``."""
    _start(context, PROCESSOR_MAX_FRAME_BYTES=str(size))


@given("a service whose conversation with the database is overheard")
def step_overheard_service(context: StepContext) -> None:
    """It reaches PostgreSQL through a relay that keeps every byte the service sends (``SlowLink.heard``)."""
    endpoints = context.suite.endpoints
    assert endpoints is not None
    link = context.world.state(SlowLink, lambda: SlowLink(endpoints.database_url))
    context.suite.run(link.start())
    context.world.cleanups.append(link.close)
    _start(context, PROCESSOR_DATABASE_URL=link.url)


@given("a service that lets pages of every web site in")
def step_every_site_service(context: StepContext) -> None:
    _start(context, PROCESSOR_ALLOWED_ORIGINS="*")


@given("a service that was told of no web site")
def step_no_site_service(context: StepContext) -> None:
    """``PROCESSOR_ALLOWED_ORIGINS`` not set at all: its default."""
    _start(context, without=("PROCESSOR_ALLOWED_ORIGINS",))
