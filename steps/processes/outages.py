"""Trouble around the Processor: the database or Redis stopped, frozen and back, and a telemetry stream it cannot
read. Whatever a scenario breaks it repairs in a clean-up registered before breaking it, and the clean-up waits
until the run's main Processor is healthy again, so the next scenario finds everything as it was."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from behave import then, when
from hamcrest import assert_that

from support.clock import RECOVER, SETTLE, STEP
from support.fans.matchers import an_error
from support.processes.healthz import HEALTHY, Health, healthy, main_processor_healthy, says, wait_for_health
from support.processes.instances import THAT_SERVICE, instances_of
from support.scenario.gherkin import StepContext
from support.services.base import service_control

SERVICE_NAMES = {"the database": "postgres", "the telemetry feed": "redis"}


@dataclass
class Outage:
    """When this scenario's trouble began and ended (``time.monotonic()``), for the reports of how long it took."""

    down_at: float | None = None
    back_at: float | None = None


def _outage(context: StepContext) -> Outage:
    return context.world.state(Outage, Outage)


def _since(moment: float | None) -> float:
    """Seconds since ``moment``, which an earlier step of the scenario noted."""
    assert moment is not None, "the step that breaks or repairs something has not run in this scenario"
    return time.monotonic() - moment


def _await_health(context: StepContext, wanted: Callable[[int, dict[str, Any]], bool], *, timeout: float, what: str,
                  base_url: str | None = None) -> Health:
    """Wait (on the suite's loop) for the main Processor's, or ``base_url``'s, /healthz to be ``wanted``."""
    suite = context.suite
    assert suite.http is not None
    url = base_url or suite.processor.base_url
    return suite.run(wait_for_health(suite.http, url, wanted, timeout=timeout, what=what), timeout=timeout + SETTLE)


# -- the database and Redis --------------------------------------------------------------------------------

@when("{service} goes down")
def step_service_down(context: StepContext, service: str) -> None:
    assert service in SERVICE_NAMES, f"no service called {service!r} (known: {list(SERVICE_NAMES)})"
    suite = context.suite
    provider = service_control(suite.provider)
    name = SERVICE_NAMES[service]

    async def restore() -> None:  # registered before breaking anything: runs even if a later step fails
        await asyncio.to_thread(provider.start_service, name)
        await main_processor_healthy(suite)

    context.world.cleanups.append(restore)
    provider.stop_service(name)
    _outage(context).down_at = time.monotonic()


@when("the telemetry feed stops answering for a while")
def step_redis_freezes(context: StepContext) -> None:
    suite = context.suite
    provider = service_control(suite.provider)

    async def thaw() -> None:  # registered before freezing: runs even if a later step fails
        provider.resume_service("redis")
        await main_processor_healthy(suite)

    context.world.cleanups.append(thaw)
    provider.pause_service("redis")
    _outage(context).down_at = time.monotonic()


@then("the service reports that no positions are coming in, instead of waiting forever")
def step_reads_give_up(context: StepContext) -> None:
    """A read blocked on a frozen Redis must end at the Processor's socket timeout (5 s by default): /healthz
    then shows the consumer stopped, retrying."""

    status, body = _await_health(context, lambda _, body: body.get("consumer") == "stopped", timeout=RECOVER,
                                 what="/healthz to report the consumer stopped")
    print(f"/healthz {status} {body} {_since(_outage(context).down_at):.2f} s after Redis froze")


@when("the telemetry feed answers again")
def step_redis_thaws(context: StepContext) -> None:
    service_control(context.suite.provider).resume_service("redis")
    _outage(context).back_at = time.monotonic()


@when("{service} is back, empty")
@when("{service} is back")
def step_service_back(context: StepContext, service: str) -> None:
    assert service in SERVICE_NAMES, f"no service called {service!r} (known: {list(SERVICE_NAMES)})"
    provider = service_control(context.suite.provider)
    provider.start_service(SERVICE_NAMES[service])
    _outage(context).back_at = time.monotonic()


@then("the service reports {service} as down")
def step_reported_down(context: StepContext, service: str) -> None:
    key = SERVICE_NAMES[service]

    status, body = _await_health(context, lambda status, body: status == 503 and body.get(key) == "down",
                                 timeout=SETTLE, what=f"/healthz to report {key} down")
    print(f"/healthz {status} {body} {_since(_outage(context).down_at):.2f} s after {key} went down")


@then("the service is healthy again")
def step_healthy_again(context: StepContext) -> None:
    seconds = context.suite.run(main_processor_healthy(context.suite), timeout=STEP + SETTLE)
    print(f"healthy again {_since(_outage(context).back_at):.2f} s after the restart (waited {seconds:.2f} s)")


@then("{person} is told the live map is unavailable for now")
def step_told_unavailable(context: StepContext, person: str) -> None:
    assert_that(context.world.answers[person], an_error("unavailable"))


# -- a telemetry stream the service cannot read ------------------------------------------------------------

@when("the trackers' reports for that service are overwritten with something that is no list of reports")
def step_stream_overwritten(context: StepContext) -> None:
    """Redis and PostgreSQL keep answering; only reading the stream fails (WRONGTYPE). The key is the
    scenario's private stream, deleted in clean-up."""
    instances = instances_of(context.world)
    redis = instances.publisher.redis

    async def overwrite() -> None:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(instances.stream)
            pipe.set(instances.stream, "not a stream")
            await pipe.execute()

    context.suite.run(overwrite())
    _outage(context).down_at = time.monotonic()


@when("the trackers' reports for that service are repaired")
def step_stream_repaired(context: StepContext) -> None:
    """The foreign value goes; the Processor recreates its stream and group (MKSTREAM) when it next tries."""
    instances = instances_of(context.world)
    redis = instances.publisher.redis

    async def repair() -> None:
        await redis.delete(instances.stream)

    context.suite.run(repair())
    _outage(context).back_at = time.monotonic()


@then("that service reports that it cannot take the trackers' reports, though the telemetry feed and the database "
       "are up")
def step_reports_consumer_stopped(context: StepContext) -> None:
    name = THAT_SERVICE
    base_url = instances_of(context.world).instance(name).process.base_url
    wanted = {"status": "unavailable", "redis": "up", "postgres": "up", "consumer": "stopped"}

    status, body = _await_health(context, lambda status, body: status == 503 and says(body, wanted), timeout=SETTLE,
                                 what=f"/healthz of {name} to say {wanted}", base_url=base_url)
    print(f"/healthz {status} {body} {_since(_outage(context).down_at):.2f} s after the stream was overwritten")


@then("that service is healthy again")
def step_private_healthy_again(context: StepContext) -> None:
    name = THAT_SERVICE
    base_url = instances_of(context.world).instance(name).process.base_url

    _await_health(context, healthy, timeout=STEP, what=f"/healthz of {name} to answer 200 with {HEALTHY}",
                  base_url=base_url)
    print(f"{name} healthy again {_since(_outage(context).back_at):.2f} s after the repair")
