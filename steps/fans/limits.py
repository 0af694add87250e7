"""The limits a fan's connection lives with: requests per second (floods), and how many events one connection
may follow at once."""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass

from behave import given, then, when
from hamcrest import assert_that, equal_to, greater_than, greater_than_or_equal_to, less_than, less_than_or_equal_to

from support.clock import STEP
from support.cms.directus_stub import session_of
from support.fans.viewer import Frame
from support.scenario.gherkin import StepContext
from support.waiting import eventually

#: The error code of a request refused by the per-connection rate limit.
SLOW_DOWN = "rate_limited"
#: What the contract names each of many events in a scenario that needs them by number.
NUMBERED_EVENT = "Event {}"


@dataclass
class Flood:
    """A burst of requests: where its answers begin in the fan's inbox, how many were sent, about which events,
    when sending began and when the last answer arrived."""

    since: int
    count: int
    event_ids: frozenset[str]
    began: float
    answered: float | None = None
    stub_mark: int = 0


@dataclass
class Limits:
    """What these steps remember: the flood sent, the numbered events a fan may watch."""

    flood: Flood | None = None
    numbered: int = 0


def _limits(context: StepContext) -> Limits:
    return context.world.state(Limits, Limits)


def _flood(context: StepContext, person: str) -> Flood:
    flood = _limits(context).flood
    assert flood is not None, f"{person} sent no flood of requests in this scenario"
    return flood


def _send_flood(context: StepContext, person: str, event_ids: list[str]) -> None:
    viewer = context.world.viewer(person)
    context.world.stub_mark = len(context.suite.stub.requests)
    messages = [json.dumps({"type": "subscribe", "eventId": event_id}) for event_id in event_ids]
    _limits(context).flood = Flood(len(viewer.inbox), len(messages), frozenset(event_ids), time.monotonic(),
                                   stub_mark=context.world.stub_mark)

    async def _send_all() -> None:
        for message in messages:
            await viewer.send(message)

    context.suite.run(_send_all())


# -- floods ------------------------------------------------------------------------------------------------

@when('{person} asks to follow the "{event}" {count:d} times in one burst')
def step_flood(context: StepContext, person: str, event: str, count: int) -> None:
    _send_flood(context, person, [context.world.event(event)] * count)


@when("{person} asks to follow {count:d} different events in one burst")
def step_flood_different(context: StepContext, person: str, count: int) -> None:
    """Events no one runs: the CMS forbids each, and no two requests are alike (none can share a CMS question)."""
    _send_flood(context, person, [str(uuid.uuid4()) for _ in range(count)])


def _answers(context: StepContext, person: str) -> list[Frame]:
    flood = _flood(context, person)
    return [f for f in context.world.viewer(person).inbox[flood.since:]
            if f.get("eventId") in flood.event_ids and f.get("type") in ("subscribed", "error")]


def _limited(answer: Frame) -> bool:
    return answer.get("type") == "error" and answer.get("code") == SLOW_DOWN


@then("{person} gets an answer to each request, most of them asking {pronoun} to slow down")
def step_flood_answers(context: StepContext, person: str, pronoun: str) -> None:
    """Every request answered (none silently dropped), most with the rate-limit error."""
    flood = _flood(context, person)

    async def all_answered() -> tuple[bool, int]:
        return len(_answers(context, person)) >= flood.count, len(_answers(context, person))

    context.suite.run(eventually(all_answered, timeout=STEP, what=f"{flood.count} answers to {person}'s requests"))
    flood.answered = time.monotonic()
    got = _answers(context, person)
    assert_that(len(got), equal_to(flood.count), f"answers to {person}'s {flood.count} requests")
    limited = [a for a in got if _limited(a)]
    print(f"{len(got)} answers, {len(limited)} of them {SLOW_DOWN!r}")
    assert_that(len(limited), greater_than(flood.count // 2), f"answers that were {SLOW_DOWN!r}")


@then("the CMS was asked about {person}'s requests far fewer than {count:d} times")
def step_cms_spared(context: StepContext, person: str, count: int) -> None:
    token = session_of(context.world.person(person).cookie or "")
    seen = [r for r in context.suite.stub.requests_since(context.world.stub_mark) if r.session == token]
    print(f"the CMS saw {len(seen)} requests for {person}'s session during the flood")
    assert_that(len(seen), less_than(count // 5), "requests the CMS saw for Alice's session during the flood")


@then("about {rate:d} of {person}'s requests a second were let through, after a first burst of twice that")
def step_rate(context: StepContext, rate: int, person: str) -> None:
    """A token bucket of ``rate`` a second, ``2 * rate`` deep, full when the connection opened
    (docs/processor.md, ``PROCESSOR_SUBSCRIBE_RATE``): at least the burst is let through, and at most the burst
    plus what refilled while the Processor read the flood (at most from the first request sent to the last
    answer received), plus one for rounding."""
    flood = _flood(context, person)
    assert flood.answered is not None, "the flood's answers were not awaited"
    let_through = [a for a in _answers(context, person) if not _limited(a)]
    seconds = flood.answered - flood.began
    most = 2 * rate + rate * seconds + 1
    print(f"{len(let_through)} of {flood.count} requests let through in {seconds:.2f} s (burst {2 * rate}, "
          f"at most {most:.1f})")
    assert_that(len(let_through), greater_than_or_equal_to(2 * rate), "requests let through")
    assert_that(len(let_through), less_than_or_equal_to(most), "requests let through")


@then("the CMS was asked only about the requests that were let through")
def step_cms_only_let_through(context: StepContext) -> None:
    """A refused request costs nothing: the CMS hears of no event whose request was refused, and of each let through
    once (no two are alike, so none shares a question)."""
    flood = _limits(context).flood
    assert flood is not None, "no flood of requests in this scenario"
    person = next(name for name, viewer in context.world.viewers.items() if len(viewer.inbox) > flood.since)
    answers = _answers(context, person)
    refused = {str(a["eventId"]) for a in answers if _limited(a)}
    let_through = {str(a["eventId"]) for a in answers if not _limited(a)}
    asked = [r.path.rsplit("/", 1)[-1] for r in context.suite.stub.requests_since(flood.stub_mark)
             if r.path.startswith("/items/events/")]
    assert_that(sorted(set(asked) & refused), equal_to([]), "events the CMS was asked about though refused")
    assert_that(sorted(asked), equal_to(sorted(let_through)), "events the CMS was asked about")


# -- following many events ---------------------------------------------------------------------------------

@given('{person} may watch {count:d} events of the "{organisation}"')
def step_many_events(context: StepContext, person: str, count: int, organisation: str) -> None:
    world = context.world
    for number in range(1, count + 1):
        name = NUMBERED_EVENT.format(number)
        context.suite.run(world.add_event(organisation, name))
        world.allow(person, name)
    _limits(context).numbered = count


async def _open_patiently(context: StepContext, person: str, event: str) -> Frame:
    """Open ``event``'s map as a client that honours the rate limit: asked to slow down, it asks again a moment
    later (more events than the rate limit's burst are opened one after another)."""

    async def opened() -> tuple[bool, Frame]:
        answer = await context.world.open_map(person, event)
        return not _limited(answer), answer

    return await eventually(opened, timeout=STEP, what=f"{person}'s request for {event} to be let through")


@when("{person} opens the live maps of {count:d} of those events")
def step_open_numbered(context: StepContext, person: str, count: int) -> None:
    answers = {number: context.suite.run(_open_patiently(context, person, NUMBERED_EVENT.format(number)))
               for number in range(1, count + 1)}
    refused = {number: answer for number, answer in answers.items() if answer.get("type") != "subscribed"}
    assert_that(refused, equal_to({}), f"events {person} could not open (of {count})")


@when("{person} opens the live map of the last of those events")
def step_open_last(context: StepContext, person: str) -> None:
    last = _limits(context).numbered
    assert last, "no numbered events in this scenario"
    context.suite.run(_open_patiently(context, person, NUMBERED_EVENT.format(last)))
