"""Fans the service gives up on: one who stops reading (its queue of messages fills up), one who stops answering the
keepalive check; what they learn when they read again, and when."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from behave import given, then, when
from hamcrest import (
    assert_that,
    equal_to,
    greater_than_or_equal_to,
    has_entries,
    less_than_or_equal_to,
    none,
)

from support.clock import ANSWER, BACKSTOP, CATCH_UP, STEP
from support.fans.deliveries import key_of
from support.fans.viewer import Frame, Viewer
from support.processes.instances import THAT_SERVICE, ScenarioInstances, that_service
from support.processes.scrape import MetricsSnapshot
from support.scenario.gherkin import StepContext
from support.trackers.record import Report
from support.trackers.traffic import report_burst
from support.waiting import eventually

#: WebSocket close codes and the reason of a slow consumer (docs/processor.md, "Close codes").
CLOSE_TOO_SLOW = (1013, "slow consumer")
CLOSE_KEEPALIVE = 1011
#: A connection that ended without a closing handshake: no code at all, or 1006 as browsers report it.
NO_CLOSE = (None, 1006)
SLOW_CONSUMERS = "processor_slow_consumer_disconnects_total"
CONNECTIONS = "processor_websocket_connections"
#: Where the rounds of the slow-fan scenarios sit on the trackers' clock.
ROUNDS_START = datetime(2026, 5, 2, 16, 0, tzinfo=UTC)
#: Rounds of reports a stalled fan may survive before the scenario gives up.
MAX_ROUNDS = 1000
#: The receive buffer of a fan on a poor network (bytes).
POOR_NETWORK = 4096
AFTER = re.compile(r"after (?P<seconds>[0-9.]+) seconds?")


@dataclass
class GivenUp:
    """How a fan was given up on: positions reported before the round in which the service gave up, and after it,
    and the keys of the rounds (to count what the fan received)."""

    before: int
    after: int
    keys: frozenset[tuple[str, str]]


@dataclass
class SlowFans:
    """What these steps remember: the service's metrics when a fan stalled, how the fan was given up on, when
    fans opened their maps."""

    baseline: MetricsSnapshot | None = None
    given_up: GivenUp | None = None
    opened_at: dict[str, float] = field(default_factory=dict)


def _slow(context: StepContext) -> SlowFans:
    return context.world.state(SlowFans, SlowFans)


async def _delivered(viewer: Viewer, keys: set[tuple[str, str]], event_id: str, since: int, what: str) -> None:
    """Return once ``viewer`` has received a position of ``event_id`` for each of ``keys`` (looking only at what
    arrived from inbox index ``since`` on: rounds arrive in order)."""
    missing = set(keys)

    def complete(frame: Frame) -> bool:
        if frame.get("type") == "position" and frame.get("eventId") == event_id:
            missing.discard(key_of(frame))
        return not missing

    await viewer.wait_for(complete, timeout=CATCH_UP, what=what, since=since)


# -- a fan whose queue fills up ------------------------------------------------------------------------------

@given('{person} follows the "{event}" through that service over a poor network')
def step_follow_poor(context: StepContext, person: str, event: str) -> None:
    """A small receive buffer and small segments: when the fan stalls, the service's queue for her fills after
    little traffic (support/fans/viewer.py, ``receive_buffer``)."""
    _follow(context, person, event, POOR_NETWORK)


@given('{person} follows the "{event}" through that service')
def step_follow(context: StepContext, person: str, event: str) -> None:
    _follow(context, person, event, None)


def _follow(context: StepContext, person: str, event: str, receive_buffer: int | None) -> None:
    world = context.world
    viewer = context.suite.run(world.connect(person, processor=that_service(world), receive_buffer=receive_buffer))
    assert_that(viewer.refusal, none(), f"{person}'s connection was refused")
    context.world.state(SlowFans, SlowFans).opened_at[person] = time.monotonic()
    answer = context.suite.run(world.open_map(person, event))
    assert_that(answer, has_entries(type="subscribed"), f"{person} could not open the map of {event}")


async def _rounds(context: StepContext, tracker: str, batch: int, *, until_given_up: bool, most: int,
                  then: Callable[[], Awaitable[None]] | None = None) -> tuple[list[Report], int]:
    """Round after round of ``batch`` reports, each reaching every fan still reading (the positive barrier) before
    the service's slow-consumer counter is read; stop when it rose (``until_given_up``; ``then`` runs at once), or
    after ``most`` rounds."""
    world = context.world
    instances = world.state(ScenarioInstances)
    readers = [v for v in world.viewers.values() if not v.paused]
    event_id = world.answers[readers[0].name]["eventId"]
    baseline = await instances.metrics(THAT_SERVICE)
    _slow(context).baseline = baseline
    assert world.publisher is not None
    reports: list[Report] = []
    marks = [len(viewer.inbox) for viewer in readers]
    try:
        for number in range(most):
            sent = await report_burst(world.publisher, [(tracker, world.device(tracker))], batch,
                                      ROUNDS_START + timedelta(minutes=number))
            reports += sent
            for viewer, since in zip(readers, marks, strict=True):
                await _delivered(viewer, {r.key for r in sent}, event_id, since, f"the positions of round {number + 1}")
            marks = [len(viewer.inbox) for viewer in readers]
            given_up = (await instances.metrics(THAT_SERVICE)).delta(baseline, SLOW_CONSUMERS) >= 1
            if given_up and then is not None:
                await then()
            if given_up:
                return reports, number + 1
    finally:
        world.published.add_round(reports)
    if until_given_up:
        raise AssertionError(f"the service did not give up on the fan after {most} rounds of {batch} positions")
    return reports, most


@when("{tracker} reports positions {batch:d} at a time until that service gives up on {person}, who reads again "
      "{when}")
def step_rounds_until_slow(context: StepContext, tracker: str, batch: int, person: str, when: str) -> None:
    """Once the service gave up, ``person`` reads again ``at once`` or ``after N seconds`` (a stall of that length,
    on purpose: the contract's close wait is what is measured)."""
    stalled = context.world.viewer(person)
    pause = 0.0 if when == "at once" else float(AFTER.fullmatch(when)["seconds"])  # type: ignore[index]  # fails loudly on another wording

    async def read_again() -> None:
        if pause:
            await asyncio.sleep(pause)  # the stall the scenario names, not a wait for an outcome
        stalled.resume_reading()

    reports, count = context.suite.run(_rounds(context, tracker, batch, until_given_up=True, most=MAX_ROUNDS,
                                               then=read_again), timeout=BACKSTOP)
    _slow(context).given_up = GivenUp(len(reports) - batch, len(reports), frozenset(r.key for r in reports))
    print(f"the service gave up on {person} in round {count} ({len(reports)} positions reported)")


@when("{tracker} reports {count:d} positions, {batch:d} at a time")
def step_rounds(context: StepContext, tracker: str, count: int, batch: int) -> None:
    assert count % batch == 0, f"{count} positions do not make rounds of {batch}"
    reports, rounds = context.suite.run(_rounds(context, tracker, batch, until_given_up=False, most=count // batch),
                                        timeout=BACKSTOP)
    print(f"{len(reports)} positions reported in {rounds} rounds")


@then("that service has disconnected {count:d} fan as too slow")
def step_disconnected_slow(context: StepContext, count: int) -> None:
    _assert_slow_disconnects(context, count)


@then("that service has disconnected no fan as too slow")
def step_disconnected_none(context: StepContext) -> None:
    _assert_slow_disconnects(context, 0)


def _assert_slow_disconnects(context: StepContext, count: int) -> None:
    baseline = _slow(context).baseline
    assert baseline is not None, "no positions were reported to a stalled fan in this scenario"
    instances = context.world.state(ScenarioInstances)
    delta = context.suite.run(instances.metrics(THAT_SERVICE)).delta(baseline, SLOW_CONSUMERS)
    assert_that(delta, equal_to(count), f"{SLOW_CONSUMERS} moved by this much")


@then("{person} learns she was disconnected for being too slow")
def step_told_too_slow(context: StepContext, person: str) -> None:
    closed = context.suite.run(context.world.viewer(person).wait_closed(timeout=ANSWER))
    assert_that(closed, equal_to(CLOSE_TOO_SLOW), f"{person}'s connection ended with")


@then("{person}'s connection is simply gone, with no word why")
def step_gone(context: StepContext, person: str) -> None:
    closed = context.suite.run(context.world.viewer(person).wait_closed(timeout=ANSWER))
    assert_that(closed[0] in NO_CLOSE, equal_to(True), f"{person}'s connection ended with {closed}")


@then("{person} learns she was disconnected for being too slow, after about {limit:d} messages waited for her")
def step_queue_limit(context: StepContext, person: str, limit: int) -> None:
    """What the fan received (everything written to her socket before the close), plus the messages that waited
    in her queue, is what was reported up to the moment the service gave up: somewhere in the last round."""
    given_up = _slow(context).given_up
    assert given_up is not None, f"the service did not give up on {person} in this scenario"
    viewer = context.world.viewer(person)
    context.suite.run(viewer.wait_closed(timeout=ANSWER))  # everything written before the close has arrived
    received = len({key_of(f) for f in viewer.inbox if f.get("type") == "position"} & given_up.keys)
    least, most = given_up.before - received, given_up.after - received
    print(f"{person} received {received} positions; {given_up.before}..{given_up.after} were reported by then: "
          f"{least}..{most} waited")
    slack = 2  # the message being written when the queue overflowed, and the one that overflowed it
    assert_that(limit, greater_than_or_equal_to(least - slack), "messages that were waiting, at least")
    assert_that(limit, less_than_or_equal_to(most + slack), "messages that were waiting, at most")
    step_told_too_slow(context, person)


# -- keepalive -------------------------------------------------------------------------------------------------

@then("that service checks on {person} about {seconds:d} seconds after she opened her map")
def step_first_ping(context: StepContext, person: str, seconds: int) -> None:
    """The first keepalive ping arrives one ping interval after the connection opened (give or take the moment
    the map opened, and the machine's hurry: a second early at most, two late)."""
    viewer = context.world.viewer(person)
    opened = context.world.state(SlowFans, SlowFans).opened_at[person]

    async def pinged() -> tuple[bool, int]:
        return bool(viewer.pings), len(viewer.pings)

    context.suite.run(eventually(pinged, timeout=seconds + STEP, what=f"a keepalive ping to {person}"),
                      timeout=seconds + BACKSTOP)
    after = viewer.pings[0] - opened
    print(f"the first keepalive ping reached {person} {after:.2f} s after she opened her map")
    assert_that(after, greater_than_or_equal_to(seconds - 1), "seconds until the first ping")
    assert_that(after, less_than_or_equal_to(seconds + 2), "seconds until the first ping")


@then("that service drops {person} about {seconds:d} seconds after she opened her map, as she did not answer")
def step_dropped_unanswered(context: StepContext, person: str, seconds: int) -> None:
    """One ping interval, then the wait for the pong, then closed with 1011; the connection counts as open until the
    closing handshake has waited its 2 s for the silent fan (docs/processor.md, "Close codes", section 9)."""
    instances = context.world.state(ScenarioInstances)
    baseline = _slow_baseline(context)
    opened = context.world.state(SlowFans, SlowFans).opened_at[person]

    async def dropped() -> tuple[bool, float]:
        now = (await instances.metrics(THAT_SERVICE)).value(CONNECTIONS)
        return now <= baseline.value(CONNECTIONS) - 1, now

    context.suite.run(eventually(dropped, timeout=seconds + STEP, what=f"{CONNECTIONS} to drop by 1"),
                      timeout=seconds + BACKSTOP)
    after = time.monotonic() - opened
    print(f"{person} was dropped {after:.2f} s after she opened her map")
    assert_that(after, greater_than_or_equal_to(seconds - 2), "seconds until she was dropped")
    assert_that(after, less_than_or_equal_to(seconds + 5), "seconds until she was dropped")
    viewer = context.world.viewer(person)
    context.suite.call(viewer.resume_reading)  # on the loop's thread, which owns the connection
    closed = context.suite.run(viewer.wait_closed(timeout=ANSWER))
    assert_that(closed[0], equal_to(CLOSE_KEEPALIVE), f"{person}'s connection ended with {closed}")


def _slow_baseline(context: StepContext) -> MetricsSnapshot:
    """The service's metrics from before the fan stalled (taken by "stops reading")."""
    instances = context.world.state(ScenarioInstances)
    baseline = _slow(context).baseline
    if baseline is None:
        baseline = _slow(context).baseline = context.suite.run(instances.metrics(THAT_SERVICE))
    return baseline
