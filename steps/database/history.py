"""Changes made in the database behind the Processor's back: announcements sent by mistake or unreadable, and
positions recorded, corrected, deleted or wiped by other hands; what the Processor counts and logs of them, and
what a map opened afterwards shows (docs/processor.md, section 7)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import asyncpg
from behave import given, then, when
from hamcrest import assert_that, equal_to, greater_than, has_length

from support.clock import SETTLE
from support.database.race_control import (
    LatestRowHold,
    RaceControl,
    announce,
    delete_position,
    latest_while_wiped,
    mistaken,
    move_position,
    row_taken,
    row_waiters,
    unreadable,
)
from support.processes.scrape import scrape
from support.scenario.gherkin import StepContext
from support.trackers.publisher import render_ts
from support.trackers.record import Position
from support.waiting import eventually

NOTIFICATIONS = "processor_correction_notifications_total"
BAD_NOTIFICATIONS = "processor_correction_notifications_bad_total"
#: Log levels of a line that warns (docs/processor.md, section 1: ``<time> <LEVEL> <logger> <message>``).
WARNING_LEVELS = (" WARNING ", " ERROR ")
#: Where the batch reported in reverse id order sits on the trackers' clock (after every recorded position).
LATE_BATCH = datetime(2026, 5, 2, 11, 5, tzinfo=UTC)


def _race_control(context: StepContext) -> RaceControl:
    return context.world.state(RaceControl, RaceControl)


def _pool(context: StepContext) -> asyncpg.Pool:
    pool = context.world.db.pool
    assert pool is not None, "the suite's database is not open"
    return pool


def _log_lines(context: StepContext) -> list[str]:
    return context.suite.processor.log_path.read_text(errors="replace").splitlines()


def _before_announcing(context: StepContext) -> None:
    """Note the main Processor's counters and log length: what the announcement changes is compared with them.

    Announcements of earlier scenarios' clean-ups (cars deleted: ``withdrawn``) may still be on their way, and would
    be counted as this scenario's. So first a barrier: one unreadable announcement of the suite's own, sent now.
    The channel delivers in commit order and the Processor reads it in that order, so once that one is counted
    (and logged), so is everything committed before it; the baseline is taken after it."""
    http = context.suite.http
    assert http is not None
    base_url = context.suite.processor.base_url
    before = context.suite.run(scrape(base_url, http))
    lines_before = len(_log_lines(context))
    context.suite.run(announce(_pool(context), unreadable()))

    async def barrier_counted() -> tuple[bool, float]:
        now = await scrape(base_url, http)
        warned = any(level in line for line in _log_lines(context)[lines_before:] for level in WARNING_LEVELS)
        return now.delta(before, BAD_NOTIFICATIONS) >= 1 and warned, now.delta(before, BAD_NOTIFICATIONS)

    context.suite.run(eventually(barrier_counted, timeout=SETTLE, what="the suite's barrier announcement counted"))
    race_control = _race_control(context)
    race_control.baseline = context.suite.run(scrape(base_url, http))
    race_control.log_lines = len(_log_lines(context))


# -- announcements that do not come from a change ----------------------------------------------------------------

@when("the database announces by mistake that {tracker} was taken off car {number}")
def step_mistaken_removal(context: StepContext, tracker: str, number: str) -> None:
    world = context.world
    entry_id = world.car(number)
    event_id = next(world.event(name) for (name, car), entry in world.entries.items() if entry == entry_id)
    _before_announcing(context)
    context.suite.run(announce(_pool(context), mistaken("removed", event_id=event_id, entry_id=entry_id,
                                                        device_id=world.device(tracker))))


@when("the database announces by mistake that the position of {tracker} at {time:Time} is faulty")
def step_mistaken_flag(context: StepContext, tracker: str, time: datetime) -> None:
    """The announcement a flag would send, though the position stays as it was."""
    world = context.world
    _before_announcing(context)
    context.suite.run(announce(_pool(context), mistaken("faulty", event_id="", entry_id="",
                                                        device_id=world.device(tracker))))


@when("the database announces something the service cannot read")
def step_unreadable(context: StepContext) -> None:
    _before_announcing(context)
    context.suite.run(announce(_pool(context), unreadable()))


@then("the operator sees {count:d} announcements from the database counted, {bad:d} of them unreadable")
def step_announcements_counted(context: StepContext, count: int, bad: int) -> None:
    """Run after a positive barrier (a later correction reached the fan, so every announcement before it was
    received): the two counters of section 6 rose by exactly this much."""
    baseline = _race_control(context).baseline
    http = context.suite.http
    assert baseline is not None and http is not None

    async def counted() -> tuple[bool, dict[str, float]]:
        now = await scrape(context.suite.processor.base_url, http)
        seen = {NOTIFICATIONS: now.delta(baseline, NOTIFICATIONS), BAD_NOTIFICATIONS: now.delta(baseline,
                                                                                               BAD_NOTIFICATIONS)}
        return seen[NOTIFICATIONS] >= count and seen[BAD_NOTIFICATIONS] >= bad, seen

    seen = context.suite.run(eventually(counted, timeout=SETTLE, what=f"{count} announcements counted"))
    assert_that(seen, equal_to({NOTIFICATIONS: count, BAD_NOTIFICATIONS: bad}), "announcements counted")


@then("the service's log warns once about an announcement it could not read")
def step_logged_once(context: StepContext) -> None:
    """Run after a positive barrier: the log lines written since the announcement, at WARNING or ERROR, are one."""
    since = _race_control(context).log_lines
    assert since is not None, "no announcement was made in this scenario"
    lines = _log_lines(context)[since:]
    warnings = [line for line in lines if any(level in line for level in WARNING_LEVELS)]
    assert_that(warnings, has_length(1), f"warnings in the Processor's log since the announcement "
                                         f"(every new line: {lines})")


# -- positions changed directly in the database ----------------------------------------------------------------

@when("another program records a late position of {tracker} at {time:Time}, at {latitude:g}, {longitude:g}")
def step_late_insert(context: StepContext, tracker: str, time: datetime, latitude: float, longitude: float) -> None:
    """A plain INSERT from a session that does not keep ``latest_positions`` itself: the insert trigger's case."""
    context.suite.run(context.world.record_positions([(tracker, time, latitude, longitude)]))


@when("race control corrects the position of {tracker} at {time:Time} to {latitude:g}, {longitude:g}")
def step_correct_place(context: StepContext, tracker: str, time: datetime, latitude: float, longitude: float) -> None:
    changed = context.suite.run(move_position(_pool(context), context.world.device(tracker), time, latitude, longitude))
    assert_that(changed, equal_to(1), f"positions of {tracker} at {time} corrected")


@when("race control deletes the position of {tracker} at {time:Time}")
def step_delete_position(context: StepContext, tracker: str, time: datetime) -> None:
    changed = context.suite.run(delete_position(_pool(context), context.world.device(tracker), time))
    assert_that(changed, equal_to(1), f"positions of {tracker} at {time} deleted")


@dataclass
class Wiped:
    """Latest positions before the wipe, and while it lasted."""

    counts: tuple[int, int] | None = None


@when("someone wipes every recorded position at once, and undoes it before anyone else sees")
def step_wipe(context: StepContext) -> None:
    """One TRUNCATE in a transaction that is rolled back (support/database/race_control.py, latest_while_wiped)."""
    context.world.state(Wiped, Wiped).counts = context.suite.run(latest_while_wiped(_pool(context)))


@then("while the history was wiped, the database held no latest position either")
def step_wiped_latest(context: StepContext) -> None:
    counts = context.world.state(Wiped).counts
    assert counts is not None, "nothing was wiped in this scenario"
    before, during = counts
    assert_that(before, greater_than(0), "latest positions before the wipe (the scenario's own, at least)")
    assert_that(during, equal_to(0), "latest positions while every position was wiped")


# -- the order in which the service takes the latest positions of a batch ----------------------------------------

@dataclass
class ByIds:
    """The scenario's trackers in the order of their ids, and the hold on the middle one's latest position."""

    devices: list[str]
    hold: LatestRowHold | None = None


@given("another program holds the latest position of the middle one of {trackers:Names}, in the order of their ids")
def step_hold_middle(context: StepContext, trackers: list[str]) -> None:
    world = context.world
    devices = sorted(world.device(alias) for alias in trackers)
    assert len(devices) == 3, f"three trackers, not {len(devices)}"
    hold = LatestRowHold(_pool(context))
    world.cleanups.append(hold.release)
    context.suite.run(hold.acquire(devices[1]))
    world.state(ByIds, lambda: ByIds(devices, hold))


@when("{trackers:Names} report positions at the same moment, the one with the highest id first")
def step_report_reversed(context: StepContext, trackers: list[str]) -> None:
    """In one batch, in time order from the highest id to the lowest: an order of arrival or of time is the
    reverse of the order of the ids."""
    world = context.world
    by_id = sorted(trackers, key=world.device, reverse=True)
    planned = [Position(alias, LATE_BATCH + timedelta(seconds=index), 41.34 + index / 1000, 19.83)
               for index, alias in enumerate(by_id)]
    context.suite.run(world.publish_together(planned))


@then("the service is held up by that program, having taken the first of them in the order of their ids and not "
      "yet the last")
def step_taken_in_order(context: StepContext) -> None:
    """While the service's insert waits for the held row, the row before it in id order is taken (by the
    service), the one after it is not (docs/processor.md, section 7: upserted in device_id order)."""
    by_ids = context.world.state(ByIds)
    pool = _pool(context)

    async def held_up() -> tuple[bool, int]:
        waiting = await row_waiters(pool)
        return waiting >= 1, waiting

    context.suite.run(eventually(held_up, timeout=SETTLE, what="the service's insert to wait for the held row"))
    first, last = by_ids.devices[0], by_ids.devices[-1]
    taken = {"first": context.suite.run(row_taken(pool, first)), "last": context.suite.run(row_taken(pool, last))}
    assert_that(taken, equal_to({"first": True, "last": False}),
                "latest positions taken by the service while it waits for the middle one")


@when("the other program lets go")
def step_let_go(context: StepContext) -> None:
    hold = context.world.state(ByIds).hold
    assert hold is not None
    context.suite.run(hold.release())


@then("the positions they reported are stored")
def step_reported_stored(context: StepContext) -> None:
    world = context.world
    keys = {report.key for report in world.published.last_sent}

    async def stored() -> tuple[bool, int]:
        rows = await world.db.positions_of_devices({device for device, _ in keys})
        found = {(row.device_id, render_ts(row.ts)) for row in rows} & keys
        return len(found) == len(keys), len(found)

    context.suite.run(eventually(stored, timeout=SETTLE, what=f"the {len(keys)} positions reported stored"))
