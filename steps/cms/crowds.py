"""The CMS limiting requests or answering slowly: when the service asks it again after a 429, how long it holds
back, how it paces a crowd, how many questions it keeps open at once, and that one fan's identical checks share
one question (docs/processor.md, section 4, "Time budget, 429 and crowds").

Scenarios that leave the service holding back for seconds run on a service of their own, so that no later
scenario meets a service still waiting for the CMS's limit to pass."""

from __future__ import annotations

import asyncio
import time
from collections import Counter
from dataclasses import dataclass, field

from behave import given, then, when
from hamcrest import (
    all_of,
    assert_that,
    equal_to,
    greater_than_or_equal_to,
    has_entries,
    instance_of,
    less_than,
    less_than_or_equal_to,
)

from support.clock import RECOVER, STEP
from support.cms.visitors import requests_about, seconds_of
from support.fans.matchers import an_error, assert_refused
from support.fans.viewer import Viewer
from support.processes.instances import instances_of
from support.scenario.gherkin import StepContext
from support.scenario.world import World

#: What the CMS does once the requests it would not take pass, in the feature's words -> the stand-in's outage.
AFTER_THE_WAIT = {"answers as usual": None, "does not answer at all": "silent"}
#: How often the CMS was asked, in words.
TIMES = {"once": 1, "twice": 2}
#: Requests a window of the stand-in takes in the scenarios that limit them by the window's end.
POINTS = 50
#: Seconds without a 429 after which the service stops pacing its requests (docs/processor.md, cms.429.pace.ends).
PACING_QUIET = 10.0
#: How long after those seconds the service may take to notice, in rounds of fans (each takes a few answers).
PACING_SLACK = 3.0
#: Fans arriving together in one round of the pacing scenario: more than a paced service lets out at once.
ROUND = 6


@dataclass
class Crowds:
    """What these steps remember: the crowd's names, and where the CMS's record stood when they came."""

    fans: list[str] = field(default_factory=list)
    mark: int = 0
    points: int = 0


def _crowds(context: StepContext) -> Crowds:
    return context.world.state(Crowds, Crowds)


# -- a service of the scenario's own, and a CMS that limits or is slow ------------------------------------------

@given("the live map is served by a service of this scenario's own")
def step_own_service(context: StepContext) -> None:
    world = context.world
    world.service = instances_of(world).start("cms-own").process


@given("the CMS allows no more requests for the next {duration}, and after that {then}")
def step_no_requests_for(context: StepContext, duration: str, then: str) -> None:
    """A limiter window of ``duration`` that is used up now: Directus's 429 names it in ``Retry-After`` (rounded
    to whole seconds) and ``extensions.reset``."""
    assert then in AFTER_THE_WAIT, f"no CMS behaviour called {then!r} (known: {list(AFTER_THE_WAIT)})"
    stub = context.suite.stub
    stub.rate_limit(points=POINTS, window=seconds_of(duration))
    stub.use_up_rate_limit()
    outage = AFTER_THE_WAIT[then]
    if outage is not None:
        stub.go_down(outage)  # the limiter answers first: only requests it lets through meet the outage


@given("the CMS allows {points:d} requests a second and answers each after {duration}")
def step_limited_and_slow(context: StepContext, points: int, duration: str) -> None:
    stub = context.suite.stub
    stub.rate_limit(points=points, window=1.0)
    stub.delay = seconds_of(duration)
    _crowds(context).points = points


@given("the CMS answers each request after {duration}")
def step_slow(context: StepContext, duration: str) -> None:
    context.suite.stub.delay = seconds_of(duration)


@given("the CMS has no requests left in its current window")
def step_window_used_up(context: StepContext) -> None:
    context.suite.stub.use_up_rate_limit()


# -- one fan asked to wait ---------------------------------------------------------------------------------------

def _answer_seconds(context: StepContext, person: str) -> float:
    took = float(context.world.answers[person]["_received_at"] - context.world.asked_at[person])
    print(f"{person} was answered after {took:.2f} s")
    return took


@then('{person} follows the "{event}" within {seconds:g} seconds')
def step_follows_within(context: StepContext, person: str, event: str, seconds: float) -> None:
    assert_that(context.world.answers[person], has_entries(type="subscribed", eventId=context.world.event(event)))
    assert_that(_answer_seconds(context, person), less_than(seconds), "seconds until the answer")


@then("{person} is told within {seconds:g} seconds to try again in a moment")
def step_try_again_within(context: StepContext, person: str, seconds: float) -> None:
    """Not an outage: ``unavailable`` with the seconds to wait (``retryAfter``)."""
    assert_that(context.world.answers[person], all_of(an_error("unavailable"), has_entries(
        retryAfter=all_of(instance_of(int), greater_than_or_equal_to(1)))))
    assert_that(_answer_seconds(context, person), less_than(seconds), "seconds until the answer")


@then('the CMS was asked {how_often} whether {person} may watch the "{event}"')
def step_asked_times(context: StepContext, how_often: str, person: str, event: str) -> None:
    assert how_often in TIMES, f"no count called {how_often!r} (known: {list(TIMES)})"
    path = f"/items/events/{context.world.event(event)}"
    asked = [str(r) for r in requests_about(context.world, person) if r.path == path]
    assert_that(len(asked), equal_to(TIMES[how_often]), f"what the CMS was asked: {asked}")


@then("{person} is turned away for now without the CMS being asked")
def step_refused_unasked(context: StepContext, person: str) -> None:
    """503 with ``Retry-After``: the service knew the CMS would refuse, and did not ask it."""
    refusal = assert_refused(context.world.viewer(person), 503)
    retry_after = refusal.headers.get("retry-after", "")
    assert_that(retry_after.isdigit() and int(retry_after) >= 1, equal_to(True), f"Retry-After: {retry_after!r}")
    asked = [str(r) for r in requests_about(context.world, person)]
    assert_that(asked, equal_to([]), f"what the CMS was asked about {person}")


# -- a crowd -----------------------------------------------------------------------------------------------------

async def _arrive_together(world: World, names: list[str]) -> list[Viewer]:
    return list(await asyncio.gather(*(world.connect(name) for name in names)))


@when("{count:d} fans connect to the live map at the same moment")
def step_crowd(context: StepContext, count: int) -> None:
    crowds = _crowds(context)
    crowds.fans = [f"fan {n}" for n in range(1, count + 1)]
    crowds.mark = len(context.suite.stub.requests)
    context.suite.run(_arrive_together(context.world, crowds.fans), timeout=STEP)


@then("each of them is let in or turned away for now")
def step_crowd_outcome(context: StepContext) -> None:
    """In, or 503: mostly with ``Retry-After`` (the CMS limiting), though a check the slow CMS could not answer
    within the budget may end as an outage."""
    outcomes: Counter[str] = Counter()
    for name in _crowds(context).fans:
        refusal = context.world.viewer(name).refusal
        if refusal is None:
            outcomes["let in"] += 1
        elif refusal.status == 503:
            outcomes["told to try again" if refusal.headers.get("retry-after") else "told it is unavailable"] += 1
        else:
            outcomes[f"refused {refusal.status} {refusal.body!r}"] += 1
    print(f"the crowd: {dict(outcomes)}")
    assert_that(set(outcomes) - {"let in", "told to try again", "told it is unavailable"}, equal_to(set()),
                f"outcomes: {dict(outcomes)}")


@then("the CMS was never asked more than {count:d} questions at once")
def step_at_most_open(context: StepContext, count: int) -> None:
    most = context.suite.stub.open_at_most(_crowds(context).mark)
    print(f"at most {most} questions were open at the CMS at once")
    assert_that(most, less_than_or_equal_to(count), "questions open at the CMS at once")


@then("once it has refused some, the CMS is asked at most one question more than it allows in each later window")
def step_paced(context: StepContext) -> None:
    """The windows are the stand-in's limiter windows (each request records the one it fell in); the first one
    with a 429 may have taken a crowd that arrived before any 429 came back (docs/processor.md, cms.in-flight)."""
    crowds = _crowds(context)
    seen = context.suite.stub.requests_since(crowds.mark)
    per_window = Counter(r.window for r in seen if r.window is not None)
    refused = Counter(r.window for r in seen if r.window is not None and r.status == 429)
    print("requests (refused) per window: " + ", ".join(
        f"{w}: {per_window[w]} ({refused[w]})" for w in sorted(per_window)))
    assert refused, "the CMS refused nothing: the crowd was too small to show pacing"
    first = min(refused)
    later = {w: n for w, n in per_window.items() if w > first}
    assert later, "the crowd came to the CMS in one window only: nothing was paced"
    assert_that(max(later.values()), less_than_or_equal_to(crowds.points + 1), f"requests per later window: {later}")


# -- one fan, two tabs -------------------------------------------------------------------------------------------

def _second_tab(person: str) -> str:
    return f"{person}'s second tab"


@when('{person} opens the live map of the "{event}" in two tabs at the same moment')
def step_two_tabs(context: StepContext, person: str, event: str) -> None:
    """Two connections with the very same cookie, opened together, then both following the event together."""
    world = context.world
    cookie = world.cookie(person)
    tabs = [Viewer(person, cookie), Viewer(_second_tab(person), cookie)]
    world.viewers.update({person: tabs[0], _second_tab(person): tabs[1]})

    async def both() -> None:
        await asyncio.gather(*(tab.connect(world.processor.live_url) for tab in tabs))
        await asyncio.gather(*(world.open_map(tab.name, event) for tab in tabs))

    context.suite.run(both())


@then('both of {person}\'s tabs show the live map of the "{event}"')
def step_both_tabs(context: StepContext, person: str, event: str) -> None:
    for tab in (person, _second_tab(person)):
        assert_that(context.world.answers[tab], has_entries(type="subscribed", eventId=context.world.event(event)),
                    f"the answer in {tab}")


@then('the CMS was asked who {person} is and whether she may watch the "{event}", each only once')
def step_asked_once_each(context: StepContext, person: str, event: str) -> None:
    asked = Counter(r.path for r in requests_about(context.world, person))
    assert_that(dict(asked), equal_to({"/users/me": 1, f"/items/events/{context.world.event(event)}": 1}),
                "what the CMS was asked with her session")


# -- pacing ends -------------------------------------------------------------------------------------------------

@then("for 10 seconds after its last refusal, the service asks the CMS about fans arriving together a few at a "
      "time, and about all of them at once from then on")
def step_pacing_ends(context: StepContext) -> None:
    """Round after round, :data:`ROUND` fresh fans open the live channel together. A pacing service sends one
    question, then after its answer no more than the limit less one: never all of them at once (the CMS answers
    slowly, so questions sent together are open together). Pacing must last until :data:`PACING_QUIET` seconds
    after the CMS's last 429, and end soon after."""
    world, stub = context.world, context.suite.stub
    refusals = [r.at for name in world.people for r in requests_about(world, name) if r.status == 429]
    assert refusals, "the CMS refused nobody of this scenario"
    last = max(refusals)

    async def rounds() -> list[tuple[float, int]]:
        seen: list[tuple[float, int]] = []
        while True:
            mark, began = len(stub.requests), time.monotonic()
            names = [f"late fan {len(seen) + 1}.{n}" for n in range(1, ROUND + 1)]
            viewers = await _arrive_together(world, names)
            refused = [str(v.refusal) for v in viewers if v.refusal is not None]
            assert not refused, f"fans turned away while the CMS was not limiting: {refused}"
            seen.append((began - last, stub.open_at_most(mark)))
            if seen[-1][1] >= ROUND or began - last > PACING_QUIET + PACING_SLACK:
                return seen
            for viewer in viewers:
                await viewer.close()

    seen = context.suite.run(rounds(), timeout=PACING_QUIET + PACING_SLACK + RECOVER)
    print("rounds (seconds after the last refusal, questions open at once): "
          + ", ".join(f"{at:.2f} s: {most}" for at, most in seen))
    at, most = seen[-1]
    assert_that(most, equal_to(ROUND), f"the service still paced its questions {at:.2f} s after the last refusal")
    assert_that(at, greater_than_or_equal_to(PACING_QUIET - 0.1), "seconds after the last refusal that pacing ended")
