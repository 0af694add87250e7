"""The CMS unavailable: down (errors or silence) or limiting requests; what fans are told meanwhile, and that they
get in once it is back."""

from __future__ import annotations

import time
from dataclasses import dataclass

from behave import given, then, when
from hamcrest import (
    all_of,
    assert_that,
    equal_to,
    greater_than,
    greater_than_or_equal_to,
    has_entries,
    instance_of,
    less_than,
    none,
)

from support.cms.visitors import refusals
from support.fans.matchers import an_error, assert_refused
from support.processes.scrape import MetricsSnapshot
from support.scenario.gherkin import StepContext

CMS_OUTAGES = {"answers every request with an error": "503", "does not answer at all": "silent"}


@dataclass
class Availability:
    """What these steps remember: the metrics before the CMS limited requests, when it came back, and how long
    a refused upgrade took."""

    baseline: MetricsSnapshot | None = None
    #: ``time.monotonic()`` when the CMS came back (or its limit passed).
    back_at: float | None = None
    upgrade_seconds: float | None = None


def _availability(context: StepContext) -> Availability:
    return context.world.state(Availability, Availability)


# -- the CMS down ------------------------------------------------------------------------------------------

@given("the CMS is down and {how}")
def step_cms_down(context: StepContext, how: str) -> None:
    assert how in CMS_OUTAGES, f"no CMS outage called {how!r} (known: {list(CMS_OUTAGES)})"
    stub = context.suite.stub

    async def come_back() -> None:
        stub.come_back()

    context.world.cleanups.append(come_back)
    context.suite.call(stub.go_down, CMS_OUTAGES[how])


@when("the CMS is back")
def step_cms_back(context: StepContext) -> None:
    context.suite.call(context.suite.stub.come_back)
    _availability(context).back_at = time.monotonic()


@when("{person} tries to open the live channel")
def step_open_channel(context: StepContext, person: str) -> None:
    began = time.monotonic()
    context.suite.run(context.world.connect(person, processor=context.suite.processor))
    _availability(context).upgrade_seconds = time.monotonic() - began


@then("{person} is turned away within {seconds:g} seconds because signing in is unavailable")
def step_refused_unavailable(context: StepContext, person: str, seconds: float) -> None:
    refusal = assert_refused(context.world.viewer(person), 503)
    upgrade_seconds = _availability(context).upgrade_seconds
    assert upgrade_seconds is not None, f"{person} did not try to open the live channel"
    assert_that(upgrade_seconds, less_than(seconds), "seconds until the refusal")
    print(f"refused with {refusal.status} after {upgrade_seconds:.2f} s")


@then('{person} can open the live map of the "{event}" again')
def step_open_again(context: StepContext, person: str, event: str) -> None:
    world = context.world
    world.viewers.pop(person, None)
    viewer = context.suite.run(world.connect(person))
    assert_that(viewer.refusal, none(), f"{person}'s connection was refused again")
    answer = context.suite.run(world.open_map(person, event))
    assert_that(answer, has_entries(type="subscribed"))
    back_at = _availability(context).back_at
    assert back_at is not None, "the CMS did not come back in this scenario"
    print(f"{person} was back on the map {time.monotonic() - back_at:.2f} s after the CMS came back")


# -- the CMS limiting requests -----------------------------------------------------------------------------

@given("the CMS is limiting requests and has none left for now")
def step_cms_limiting(context: StepContext) -> None:
    stub = context.suite.stub
    _availability(context).baseline = context.suite.run(context.world.metrics())
    stub.rate_limit(points=50, window=None)  # the window ends when the scenario says so
    stub.use_up_rate_limit()


@when("the CMS limit passes")
def step_cms_limit_passes(context: StepContext) -> None:
    context.suite.stub.lift_rate_limit()
    _availability(context).back_at = time.monotonic()  # for the "again" step's report of how long getting back in took


@then("{person} is told to try again in a moment")
def step_try_again(context: StepContext, person: str) -> None:
    """Not an outage: ``unavailable`` with the seconds to wait (``retryAfter``)."""
    answer = context.world.answers[person]
    assert_that(answer, all_of(an_error("unavailable"), has_entries(retryAfter=all_of(
        instance_of(int), greater_than_or_equal_to(1)))))


@then("{person} is turned away for now and told to try again in a moment")
def step_refused_try_again(context: StepContext, person: str) -> None:
    refusal = assert_refused(context.world.viewer(person), 503)
    retry_after = refusal.headers.get("retry-after", "")
    assert_that(retry_after.isdigit() and int(retry_after) >= 1, equal_to(True),
                f"Retry-After of the refusal: {retry_after!r}")


@then("the refusals are counted as the CMS limiting requests, not as a CMS outage")
def step_counted_as_limited(context: StepContext) -> None:
    baseline = _availability(context).baseline
    assert baseline is not None, "the CMS did not limit requests in this scenario"
    rose = refusals(context.suite.run(context.world.metrics()), baseline)
    assert_that(rose, has_entries(directus_rate_limited=greater_than(0)), "auth failure reasons that rose")
    assert_that(set(rose), equal_to({"directus_rate_limited"}), "auth failure reasons that rose")
