"""Changes made in the database behind the Processor's back: announcements sent by mistake or unreadable, and
positions recorded, corrected, deleted or wiped by other hands; what the Processor counts and logs of them, and
what a map opened afterwards shows (docs/processor.md, section 7)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import asyncpg
from behave import then, when
from hamcrest import assert_that, equal_to, greater_than, has_length

from support.clock import SETTLE
from support.database.race_control import (
    RaceControl,
    announce,
    delete_position,
    latest_while_wiped,
    mistaken,
    move_position,
    unreadable,
)
from support.processes.scrape import scrape
from support.scenario.gherkin import StepContext
from support.waiting import eventually

NOTIFICATIONS = "processor_correction_notifications_total"
BAD_NOTIFICATIONS = "processor_correction_notifications_bad_total"
#: Log levels of a line that warns (docs/processor.md, section 1: ``<time> <LEVEL> <logger> <message>``).
WARNING_LEVELS = (" WARNING ", " ERROR ")


def _race_control(context: StepContext) -> RaceControl:
    return context.world.state(RaceControl, RaceControl)


def _pool(context: StepContext) -> asyncpg.Pool:
    pool = context.world.db.pool
    assert pool is not None, "the suite's database is not open"
    return pool


def _log_lines(context: StepContext) -> list[str]:
    return context.suite.processor.log_path.read_text(errors="replace").splitlines()


def _before_announcing(context: StepContext) -> None:
    """Note the main Processor's counters and log length: what the announcement changes is compared with them."""
    assert context.suite.http is not None
    race_control = _race_control(context)
    race_control.baseline = context.suite.run(scrape(context.suite.processor.base_url, context.suite.http))
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


@when("the database announces something the Processor cannot read")
def step_unreadable(context: StepContext) -> None:
    _before_announcing(context)
    context.suite.run(announce(_pool(context), unreadable()))


@then("the Processor has counted {count:d} announcements from the database, {bad:d} of them unreadable")
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


@then("the Processor's log warns once about an announcement it could not read")
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
