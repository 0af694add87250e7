"""Services whose link to Redis goes silent (a frozen Redis, as each of them sees it): what their ``/healthz`` says,
how soon, and how promptly it answers meanwhile (docs/processor.md section 2, and ``PROCESSOR_REDIS_TIMEOUT``).

The silence is a :class:`~support.processes.redis_link.RedisLink` per instance that stops relaying either way; the
run's Redis and its other Processors see nothing of it. From the moment the links go silent, one task probes every
service's ``/healthz`` over and over and notes when each first reported Redis down, when each first reported its
consumer stopped, and how long every answer took; the steps then judge what it noted.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass, field

import aiohttp
from behave import given, then, when
from hamcrest import all_of, assert_that, equal_to, greater_than_or_equal_to, less_than_or_equal_to

from support.clock import PROBE, STEP, within
from support.processes.healthz import HEALTHY, health, healthy
from support.processes.instances import instances_of
from support.scenario.gherkin import StepContext
from support.waiting import POLL_INTERVAL, eventually

#: How soon ``/healthz`` answers, whatever its dependencies do (docs/processor.md section 2), in seconds.
PROMPT = 1.0
#: The names of the two services in the scenario, in the order the feature introduces them.
SERVICES = ("first", "second")


@dataclass
class Watch:
    """What one service's ``/healthz`` said since the silence began: when (seconds after it) Redis was first
    reported down and the consumer first stopped, and how long each answer took (a failed probe counts as the
    suite's whole probe timeout)."""

    redis_down: float | None = None
    consumer_stopped: float | None = None
    redis_up: float | None = None
    answers: list[float] = field(default_factory=list)


@dataclass
class Silence:
    """The silence: when it began and ended (``time.monotonic()``), the watch of each service, and its task."""

    began: float = 0.0
    ended: float | None = None
    watches: dict[str, Watch] = field(default_factory=dict)
    task: asyncio.Task[None] | None = None


def _silence(context: StepContext) -> Silence:
    return context.world.state(Silence, Silence)


async def _watch(http: aiohttp.ClientSession, urls: dict[str, str], silence: Silence) -> None:
    """Probe every service until the scenario ends (the clean-up cancels it); note what each said, and when."""
    while True:
        for name, url in urls.items():
            watch = silence.watches[name]
            asked = time.monotonic()
            try:
                status, body = await health(http, url)
            except (aiohttp.ClientError, TimeoutError):
                watch.answers.append(within(PROBE))
                continue
            answered = time.monotonic()
            watch.answers.append(answered - asked)
            since = answered - silence.began
            if silence.ended is None:
                if watch.redis_down is None and status == 503 and body.get("redis") == "down":
                    watch.redis_down = since
                if watch.consumer_stopped is None and status == 503 and body.get("consumer") == "stopped":
                    watch.consumer_stopped = since
            elif watch.redis_up is None and body.get("redis") == "up":
                watch.redis_up = answered - silence.ended
        await asyncio.sleep(POLL_INTERVAL)  # poll interval of the watch, which the steps bound by their deadlines


@given("a service with the default settings, and a second one set to give up on an unanswered read after "
       "{seconds:d} seconds (a test setting)")
def step_two_services(context: StepContext, seconds: int) -> None:
    instances = instances_of(context.world)
    instances.start(SERVICES[0], linked=True)
    instances.start(SERVICES[1], linked=True, PROCESSOR_REDIS_TIMEOUT=str(seconds))


@when("the line of both services to the trackers' reports goes silent")
def step_go_silent(context: StepContext) -> None:
    instances = instances_of(context.world)
    silence = _silence(context)
    links = [instances.instance(name).link for name in SERVICES]
    urls = {name: instances.instance(name).process.base_url for name in SERVICES}
    silence.watches = {name: Watch() for name in SERVICES}
    assert context.suite.http is not None
    http = context.suite.http

    async def begin() -> None:
        for link in links:
            assert link is not None
            link.go_silent()
        silence.began = time.monotonic()
        silence.task = asyncio.create_task(_watch(http, urls, silence), name="watch-healthz")

    async def end() -> None:
        for link in links:
            if link is not None:
                link.speak_again()
        if silence.task is not None:
            silence.task.cancel()
            await asyncio.gather(silence.task, return_exceptions=True)

    context.world.cleanups.append(end)
    context.suite.run(begin())


def _wait_noted(context: StepContext, noted: str, seconds: float) -> dict[str, float | None]:
    """Wait until every service's watch has noted ``noted`` or ``seconds`` (scaled) passed since the silence
    began (or ended, for ``redis_up``); return what was noted."""
    silence = _silence(context)

    async def all_noted() -> tuple[bool, dict[str, float | None]]:
        seen = {name: getattr(watch, noted) for name, watch in silence.watches.items()}
        start = silence.began if silence.ended is None else silence.ended
        return all(value is not None for value in seen.values()) or \
            time.monotonic() - start > within(seconds), seen

    return context.suite.run(eventually(all_noted, timeout=seconds + STEP, what=f"every service to note {noted}"))


def _answers_prompt(context: StepContext) -> None:
    """Every ``/healthz`` answer so far came within 1 s (docs/processor.md section 2): it never waits on Redis."""
    slowest = {name: round(max(watch.answers, default=0.0), 3) for name, watch in _silence(context).watches.items()}
    assert_that({name: value for name, value in slowest.items() if value > within(PROMPT)}, equal_to({}),
                f"services whose slowest /healthz answer took more than {PROMPT} s while the link was silent")


@then("within {seconds:g} seconds both services report that the trackers' reports cannot be reached, answering "
      "every health check within a second")
def step_reported_down(context: StepContext, seconds: float) -> None:
    """Redis is probed every second with a 1 s timeout: reported down by 2 s after the silence began."""
    seen = _wait_noted(context, "redis_down", seconds)
    print(f"redis reported down after {seen} s of silence")
    for name, after in seen.items():
        assert after is not None and after <= within(seconds), \
            f"the {name} service reported Redis down after {after} s of silence, not within {seconds} s"
    _answers_prompt(context)


@then("the second service reports within {within_s:g} seconds that no positions are coming in, and the first one "
      "between {low:g} and {high:g} seconds")
def step_consumers_stop(context: StepContext, within_s: float, low: float, high: float) -> None:
    """A read blocked on a silent Redis fails at the socket timeout: 2 s for the second service, the default 5 s for
    the first (its read in flight may have been sent up to a second before the silence, ``READ_BLOCK_MS``). The
    lower bound is not scaled: a slow machine only makes it later."""
    seen = _wait_noted(context, "consumer_stopped", high)
    print(f"consumers reported stopped after {seen} s of silence")
    first, second = (seen[name] for name in SERVICES)
    assert second is not None and second <= within(within_s), \
        f"the second service (PROCESSOR_REDIS_TIMEOUT=2) reported its consumer stopped after {second} s"
    assert_that(first, all_of(greater_than_or_equal_to(low), less_than_or_equal_to(within(high))),
                "seconds of silence before the first service (default PROCESSOR_REDIS_TIMEOUT) reported its consumer "
                "stopped")
    _answers_prompt(context)


@when("the line speaks again")
def step_speak_again(context: StepContext) -> None:
    instances = instances_of(context.world)
    silence = _silence(context)

    async def speak() -> None:
        for name in SERVICES:
            link = instances.instance(name).link
            assert link is not None
            link.speak_again()
        silence.ended = time.monotonic()

    context.suite.run(speak())


@then("within {seconds:g} seconds both services report that the trackers' reports can be reached again")
def step_reported_up(context: StepContext, seconds: float) -> None:
    """The next probe, at most a second later, finds Redis answering."""
    seen = _wait_noted(context, "redis_up", seconds)
    print(f"redis reported up {seen} s after the silence ended")
    for name, after in seen.items():
        assert after is not None and after <= within(seconds), \
            f"the {name} service reported Redis up {after} s after the link spoke again, not within {seconds} s"


@then("both services are healthy again")
def step_both_healthy(context: StepContext) -> None:
    instances = instances_of(context.world)
    assert context.suite.http is not None
    http = context.suite.http
    for name in SERVICES:
        url = instances.instance(name).process.base_url

        async def back(url: str = url) -> tuple[bool, tuple[int, dict[str, object]]]:
            status, body = await health(http, url)
            return healthy(status, body), (status, body)

        context.suite.run(eventually(back, timeout=STEP, what=f"the {name} service: 200 with {HEALTHY}"),
                          timeout=2 * STEP)
