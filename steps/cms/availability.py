"""The CMS unavailable: down (errors, silence, not running, locked by its licence) or limiting requests; what fans
are told meanwhile, how long the service waits for it, how refusals are counted, and that fans get in once it is
back."""

from __future__ import annotations

import time
from dataclasses import dataclass

from behave import given, then, when
from hamcrest import (
    all_of,
    assert_that,
    equal_to,
    greater_than_or_equal_to,
    has_entries,
    instance_of,
    less_than,
    none,
)

from support.cms.visitors import counted_since_start, seconds_of, start_counting
from support.fans.matchers import an_error, assert_refused
from support.processes.instances import instances_of
from support.scenario.gherkin import StepContext

#: How the CMS fails, in the feature files' words -> the stand-in's mode ("unreachable": it stops listening).
CMS_OUTAGES = {
    "answers every request with an error": "503",
    "does not answer at all": "silent",
    "is not running at all": "unreachable",
    "refuses every request as locked by its licence": "restricted",
}
#: PROCESSOR_DIRECTUS_TIMEOUT when unset (docs/processor.md, section 1).
DEFAULT_CMS_TIMEOUT = 2.0
#: What the service counts, in the feature files' words -> how much each reason of
#: ``processor_auth_failures_total`` rose (docs/processor.md, section 4), and no other reason.
COUNTED = {
    "the refusal as a CMS outage": {"directus_unavailable": 1},
    "both refusals as forbidden": {"forbidden": 2},
    "one refusal as forbidden and one as an event that does not exist": {"forbidden": 1, "not_found": 1},
    "the refusals as sessions that are not valid, not as a CMS outage": {"invalid_cookie": 2},
    "both refusals as the CMS limiting requests, not as a CMS outage": {"directus_rate_limited": 2},
}


@dataclass
class Availability:
    """What these steps remember: when the CMS came back, and how long a refused upgrade took."""

    #: ``time.monotonic()`` when the CMS came back (or its limit passed).
    back_at: float | None = None
    upgrade_seconds: float | None = None


def _availability(context: StepContext) -> Availability:
    return context.world.state(Availability, Availability)


# -- the CMS down ------------------------------------------------------------------------------------------

@given("the CMS is down and {how}")
def step_cms_down(context: StepContext, how: str) -> None:
    """Counting starts here: what the service counts from now on is the outage's doing."""
    assert how in CMS_OUTAGES, f"no CMS outage called {how!r} (known: {list(CMS_OUTAGES)})"
    stub = context.suite.stub
    context.suite.run(start_counting(context.world))

    async def come_back() -> None:
        stub.come_back()
        if not stub.listening:
            await stub.start()  # on the port every Processor of the run was given

    context.world.cleanups.append(come_back)
    if CMS_OUTAGES[how] == "unreachable":
        context.suite.run(stub.stop_listening())
    else:
        context.suite.call(stub.go_down, CMS_OUTAGES[how])


@when("the CMS is back")
def step_cms_back(context: StepContext) -> None:
    stub = context.suite.stub
    context.suite.call(stub.come_back)
    if not stub.listening:
        context.suite.run(stub.start())
    _availability(context).back_at = time.monotonic()


@when("{person} tries to connect to the live map")
def step_open_channel(context: StepContext, person: str) -> None:
    began = time.monotonic()
    context.suite.run(context.world.connect(person))
    _availability(context).upgrade_seconds = time.monotonic() - began


@then("{person} is turned away within {seconds:g} seconds because signing in is unavailable")
def step_refused_unavailable(context: StepContext, person: str, seconds: float) -> None:
    refusal = assert_refused(context.world.viewer(person), 503)
    upgrade_seconds = _availability(context).upgrade_seconds
    assert upgrade_seconds is not None, f"{person} did not try to open the live channel"
    assert_that(upgrade_seconds, less_than(seconds), "seconds until the refusal")
    print(f"refused with {refusal.status} after {upgrade_seconds:.2f} s")


@then("{person} is turned away between {low:g} and {high:g} seconds after trying, because signing in is unavailable")
def step_refused_after(context: StepContext, person: str, low: float, high: float) -> None:
    """The service waited for the CMS as long as it was configured to (no less than ``low``), then gave up in
    time (less than ``high``: its timeout + 1 s, docs/processor.md ``ws.upgrade.refusal-time``)."""
    assert_refused(context.world.viewer(person), 503)
    upgrade_seconds = _availability(context).upgrade_seconds
    assert upgrade_seconds is not None, f"{person} did not try to open the live channel"
    print(f"refused after {upgrade_seconds:.2f} s")
    assert_that(upgrade_seconds, all_of(greater_than_or_equal_to(low), less_than(high)), "seconds until the refusal")


@then("{person} is told within {seconds:g} seconds that the live map is unavailable for now")
def step_told_unavailable_within(context: StepContext, person: str, seconds: float) -> None:
    answer = context.world.answers[person]
    assert_that(answer, an_error("unavailable"))
    took = answer["_received_at"] - context.world.asked_at[person]
    print(f"{person} was told after {took:.2f} s")
    assert_that(took, less_than(seconds), "seconds until the answer")


@then("the service has counted {what}")
def step_counts(context: StepContext, what: str) -> None:
    assert what in COUNTED, f"no count called {what!r} (known: {list(COUNTED)})"
    rose = context.suite.run(counted_since_start(context.world))
    assert_that(rose, equal_to(COUNTED[what]), "processor_auth_failures_total reasons that rose")


# -- how long the service waits for the CMS ----------------------------------------------------------------

@given("the live map is served by the service as it comes, which gives the CMS {duration} to answer")
def step_default_service(context: StepContext, duration: str) -> None:
    """The run's main Processor: it is started without PROCESSOR_DIRECTUS_TIMEOUT (support/run/suite.py)."""
    assert_that(seconds_of(duration), equal_to(DEFAULT_CMS_TIMEOUT), "the contract's default CMS timeout")
    env = context.suite.processor.env
    assert "PROCESSOR_DIRECTUS_TIMEOUT" not in env, f"the main Processor sets {env['PROCESSOR_DIRECTUS_TIMEOUT']}"


@given("the live map is served by a service that gives the CMS {duration} to answer (a test setting)")
def step_service_with_timeout(context: StepContext, duration: str) -> None:
    world = context.world
    timeout = str(seconds_of(duration))
    world.service = instances_of(world).start("cms-timeout", PROCESSOR_DIRECTUS_TIMEOUT=timeout).process


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
    context.suite.run(start_counting(context.world))
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


