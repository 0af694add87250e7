"""A service being redeployed: asked to shut down (SIGTERM) or interrupted from the keyboard (SIGINT), with or
without work in hand, and what its fans, the stream and the database then show (docs/processor.md, section 8)."""

from __future__ import annotations

import asyncio
import signal
import time
from dataclasses import dataclass, field
from datetime import datetime

from behave import given, then, when
from hamcrest import assert_that, equal_to, greater_than, less_than
from websockets.exceptions import InvalidHandshake

from support.clock import ANSWER, SETTLE
from support.database.postgres import InsertHold
from support.fans.viewer import Viewer
from support.processes.instances import Instance, ScenarioInstances, instances_of
from support.scenario.gherkin import StepContext
from support.trackers.publisher import render_ts
from support.trackers.stream import pending_ids
from support.waiting import eventually

#: The scenario's name for the instance being redeployed.
REDEPLOYED = "redeployed"
#: WebSocket close code of a Processor shutting down (docs/processor.md, "Close codes").
CLOSE_GOING_AWAY = 1001


@dataclass
class Shutdown:
    """When the signal went, and how the shutdown ended: the exit status and its seconds after the signal."""

    signalled_at: float | None = None
    exit_status: int | None = None
    exit_seconds: float | None = None
    #: Variables the service starts with beyond the suite's own.
    #: ``PROCESSOR_SHUTDOWN_TIMEOUT`` for the service, when the scenario sets one.
    shutdown_timeout: str | None = None
    #: The entry ids it had taken and not stored when the shutdown began.
    taken: list[str] = field(default_factory=list)


def _shutdown(context: StepContext) -> Shutdown:
    return context.world.state(Shutdown, Shutdown)


def _redeployed(context: StepContext) -> Instance:
    return context.world.state(ScenarioInstances).instance(REDEPLOYED)


# -- set up --------------------------------------------------------------------------------------------------

@given("a service of this scenario's own, about to be redeployed")
def step_redeployed(context: StepContext) -> None:
    instances_of(context.world).start(REDEPLOYED)


@given("a service of this scenario's own, to be redeployed, set up but not started yet")
def step_set_up(context: StepContext) -> None:
    """Its telemetry stream exists (the scenario's reports go there); the service starts in a later step, so
    that it finds a burst already waiting and takes it in one go."""
    instances_of(context.world)


@given("a service of this scenario's own, to be redeployed, that waits at most {seconds:d} second for its work "
       "when asked to shut down, set up but not started yet")
def step_set_up_timeout(context: StepContext, seconds: int) -> None:
    instances_of(context.world)
    _shutdown(context).shutdown_timeout = str(seconds)


@when("the service being redeployed starts")
def step_start(context: StepContext) -> None:
    timeout = _shutdown(context).shutdown_timeout
    if timeout is None:
        instances_of(context.world).start(REDEPLOYED)
    else:
        instances_of(context.world).start(REDEPLOYED, PROCESSOR_SHUTDOWN_TIMEOUT=timeout)


@given('{person} follows the "{event}" through the service being redeployed')
def step_follow_redeployed(context: StepContext, person: str, event: str) -> None:
    world = context.world
    context.suite.run(world.connect(person, processor=_redeployed(context).process))
    answer = context.suite.run(world.open_map(person, event))
    assert_that(answer.get("type"), equal_to("subscribed"), f"{person} could not open the map of {event}")


@when("the service being redeployed has taken them and is storing them")
def step_storing(context: StepContext) -> None:
    """The group lists the reports as delivered to it, and its insert waits in the stalled database."""
    instances = instances_of(context.world)
    instance = _redeployed(context)

    async def holding() -> tuple[bool, str]:
        owed = await instances.pending(instance.group)
        waiting = await context.world.db.inserts_waiting()
        return owed.of(instance.consumer) > 0 and waiting >= 1, f"pending {owed}, inserts waiting: {waiting}"

    context.suite.run(eventually(holding, timeout=SETTLE, what="the service to hold reports it has not stored"))
    _shutdown(context).taken = context.suite.run(pending_ids(instances.publisher.redis, instances.stream,
                                                             instance.group, instance.consumer))


# -- the signal ----------------------------------------------------------------------------------------------

def _signal(context: StepContext, signum: signal.Signals) -> None:
    """The signal goes to the service's process group; the steps that follow run while it shuts down."""
    process = _redeployed(context).process
    assert process.running(), f"the service had already exited:\n{process.tail()}"
    process.interrupt(signum)
    _shutdown(context).signalled_at = time.monotonic()


@when("the service being redeployed is asked to shut down")
def step_sigterm(context: StepContext) -> None:
    _signal(context, signal.SIGTERM)


@when("the service being redeployed is interrupted from the keyboard")
def step_sigint(context: StepContext) -> None:
    """SIGINT, as Ctrl-C sends it to a service run in a terminal."""
    _signal(context, signal.SIGINT)


@when("the database stalls {seconds:d} seconds more after the signal, then stores again")
def step_stall_more(context: StepContext, seconds: int) -> None:
    """Hold the stalled database until ``seconds`` after the signal (a hold of its own length, not a wait for an
    outcome), then let the held insert through: a service that gave up sooner has left its batch unstored."""
    signalled_at = _shutdown(context).signalled_at
    assert signalled_at is not None, "the service was not asked to shut down"
    context.suite.run(asyncio.sleep(max(0.0, seconds - (time.monotonic() - signalled_at))))  # the hold's length
    context.suite.run(context.world.state(InsertHold).release())


@then("{person} can no longer connect to the service being redeployed")
def step_no_new_fans(context: StepContext, person: str) -> None:
    """Refused at the door (no listener any more, or an HTTP error), never a live channel."""
    process = _redeployed(context).process
    viewer = Viewer(person, context.world.cookie(person))

    async def attempt() -> str:
        try:
            opened = await viewer.connect(process.live_url, timeout=ANSWER)
        except (OSError, InvalidHandshake, TimeoutError) as exc:
            return f"refused: {type(exc).__name__}: {exc}"
        if not opened:
            return f"refused: HTTP {viewer.refusal.status if viewer.refusal else '?'}"
        await viewer.close()
        return "let in"

    outcome = context.suite.run(attempt())
    print(f"{person}'s attempt: {outcome}")
    assert outcome.startswith("refused"), f"{person} got a live channel from a service shutting down: {outcome}"


# -- how it ended ----------------------------------------------------------------------------------------------

@then("{person} is disconnected with a notice that the live map is going away for a moment")
def step_going_away(context: StepContext, person: str) -> None:
    """WebSocket close 1001 (going away): the browser may reconnect to another instance at once."""
    viewer = context.world.viewer(person)
    closed = context.suite.run(viewer.wait_closed(timeout=ANSWER))
    assert_that(closed[0], equal_to(CLOSE_GOING_AWAY), f"{person}'s connection ended with {closed}")


@then("the service being redeployed exits cleanly within {seconds:g} seconds")
def step_exits(context: StepContext, seconds: float) -> None:
    """Cleanly: exit status 0, counted from the signal (docs/processor.md, "Shutdown")."""
    shutdown = _shutdown(context)
    assert shutdown.signalled_at is not None, "the service was not asked to shut down"
    shutdown.exit_status = _redeployed(context).process.wait_stopped(timeout=SETTLE)
    shutdown.exit_seconds = time.monotonic() - shutdown.signalled_at
    print(f"the service exited with {shutdown.exit_status} {shutdown.exit_seconds:.2f} s after the signal")
    assert_that(shutdown.exit_status, equal_to(0), "exit status")
    assert_that(shutdown.exit_seconds, less_than(seconds), "seconds from the signal to the exit")


@then("every report the service being redeployed had taken is stored exactly once")
def step_taken_stored(context: StepContext) -> None:
    """The batch in hand when the signal came (however much of the burst it was): each of its positions is one
    row, naming its report's entry."""
    world = context.world
    taken = set(_shutdown(context).taken)
    assert taken, "the service had taken nothing"
    reports = [report for report in world.published.reports if report.entry_id in taken]
    rows = context.suite.run(world.db.positions_of_devices({report.device_id for report in reports}))
    stored = {(row.device_id, render_ts(row.ts)): row.stream_id for row in rows}
    missing = [report.entry_id for report in reports if stored.get(report.key) != report.entry_id]
    print(f"the service had {len(taken)} reports in hand")
    assert_that(missing, equal_to([]), f"reports taken ({len(taken)}) but not stored as their own entry")


@then("the positions the service being redeployed had taken are still waiting to be stored")
def step_still_owed(context: StepContext) -> None:
    """After the exit: the group still lists the burst's reports as delivered to it and unacknowledged, and none
    of them is stored."""
    world = context.world
    instances = instances_of(world)
    instance = _redeployed(context)
    owed = context.suite.run(instances.pending(instance.group))
    assert_that(owed.of(instance.consumer), greater_than(0), f"reports still pending for the service: {owed}")
    devices = {report.device_id for report in world.published.latest_round}
    keys = {report.key for report in world.published.latest_round}
    stored = [row for row in context.suite.run(world.db.positions_of_devices(devices))
              if (row.device_id, render_ts(row.ts)) in keys]
    assert_that(stored, equal_to([]), "positions of the burst stored though the service gave up on them")


@then("no report is left unfinished")
def step_nothing_owed(context: StepContext) -> None:
    """Every report was acknowledged by its group (``XPENDING`` empty), whoever took it."""
    instances = instances_of(context.world)

    async def settled() -> tuple[bool, dict[str, int]]:
        owed = {group: (await instances.pending(group)).total for group in instances.groups()}
        return all(total == 0 for total in owed.values()), owed

    context.suite.run(eventually(settled, timeout=SETTLE, what="every group's pending list to be empty"))


@when("the service being redeployed is started again")
def step_restart(context: StepContext) -> None:
    """The same name in the same group, so it owns the entries its predecessor read (section 5)."""
    instances_of(context.world).restart(REDEPLOYED)


@then("the service being redeployed never took {tracker}'s report of {time:Time}")
def step_never_took(context: StepContext, tracker: str, time: datetime) -> None:
    """Run after the exit: a report sent after the signal was neither read and left pending, nor stored."""
    world = context.world
    reports = world.published.sent_as(tracker, render_ts(time))
    assert reports, f"{tracker} did not report a position at {time} in this scenario"
    instances = instances_of(world)
    owed = set(context.suite.run(pending_ids(instances.publisher.redis, instances.stream, _redeployed(context).group)))
    assert_that([r.entry_id for r in reports if r.entry_id in owed], equal_to([]),
                f"reports of {tracker} at {time} left pending (pending: {sorted(owed)})")
    stored = [row for row in context.suite.run(world.db.positions_of(world.device(tracker))) if row.ts == time]
    assert_that(stored, equal_to([]), f"positions of {tracker} at {time} stored by a service shutting down")
