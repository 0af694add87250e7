"""The event as the CMS stores it, and what the Processor stored: seeded and checked in PostgreSQL."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

from behave import given, then, when
from hamcrest import assert_that, close_to, contains_exactly, equal_to, has_properties, is_in

from support.clock import ANSWER, SETTLE, STEP
from support.database.postgres import InsertHold, StoredPosition
from support.database.race_control import RaceControl
from support.fans.matchers import COORDINATE_TOLERANCE
from support.scenario.gherkin import StepContext, parse_time, positions
from support.trackers.broken import BrokenReports
from support.trackers.publisher import render_ts
from support.waiting import eventually


def _trackers(cell: str) -> list[str]:
    return [name.strip() for name in cell.split(",") if name.strip()]


@given('the organisation "{organisation}" runs the event "{event}"')
def step_event(context: StepContext, organisation: str, event: str) -> None:
    context.suite.run(context.world.add_event(organisation, event))


@given('the "{event}" has these cars:')
def step_entries(context: StepContext, event: str) -> None:
    for row in context.table:
        context.suite.run(context.world.add_entry(event, row["car"], row["crew"], _trackers(row["trackers"])))


@given("these positions were recorded:")
def step_positions(context: StepContext) -> None:
    context.suite.run(context.world.record_positions(positions(context.table)))


@given("{tracker} is on no car")
def step_unassigned(context: StepContext, tracker: str) -> None:
    context.world.device(tracker)  # a fresh id that no entry has ever carried


@given("the position of {tracker} at {time:Time} is flagged as faulty")
def step_flag_one(context: StepContext, tracker: str, time: datetime) -> None:
    changed = context.suite.run(context.world.db.flag_faulty(context.world.device(tracker), time))
    assert changed == 1, f"expected to flag one position of {tracker} at {time}, flagged {changed}"


@given("every position of {tracker} is flagged as faulty")
def step_flag_all(context: StepContext, tracker: str) -> None:
    changed = context.suite.run(context.world.db.flag_faulty(context.world.device(tracker)))
    assert changed > 0, f"{tracker} has no position to flag"


@then("the position of {tracker} at {time:Time} is stored")
def step_stored(context: StepContext, tracker: str, time: datetime) -> None:
    world = context.world
    device_id, ts = world.device(tracker), time

    async def stored() -> tuple[bool, list[StoredPosition]]:
        rows = [row for row in await world.db.positions_of(device_id) if row.ts == ts]
        return len(rows) == 1, rows

    rows = context.suite.run(eventually(stored, timeout=ANSWER, what=f"{tracker}'s position at {time} in positions"))
    assert_that(rows, contains_exactly(has_properties(device_id=device_id, ts=ts, faulty=False)))


# -- stored exactly once -------------------------------------------------------------------------------

def _stored_once(context: StepContext, tracker: str, time: datetime) -> None:
    world = context.world
    device_id, ts = world.device(tracker), time
    ids = {report.entry_id for report in world.published.sent_at(tracker, ts)}
    assert ids, f"{tracker} has not reported a position at {time} in this scenario"

    async def stored() -> tuple[bool, list[StoredPosition]]:
        rows = [row for row in await world.db.positions_of(device_id) if row.ts == ts]
        return len(rows) >= 1, rows

    context.suite.run(eventually(stored, timeout=ANSWER, what=f"{tracker}'s position at {time} in positions"))
    rows = [row for row in context.suite.run(world.db.positions_of(device_id)) if row.ts == ts]
    assert_that(rows, contains_exactly(has_properties(device_id=device_id, ts=ts, stream_id=is_in(sorted(ids)))),
                f"the rows of {tracker} at {time}; its reports were stream entries {sorted(ids)}")


@then("the position of {tracker} at {time:Time} is stored as {latitude:g}, {longitude:g}, taken from its report")
def step_stored_as(context: StepContext, tracker: str, time: datetime, latitude: float, longitude: float) -> None:
    """Stored with the reported coordinates, and ``stream_id`` naming the stream entry it was taken from."""
    _stored_once(context, tracker, time)
    world = context.world
    rows = [row for row in context.suite.run(world.db.positions_of(world.device(tracker)))
            if row.ts == time]
    assert_that(rows, contains_exactly(has_properties(latitude=close_to(latitude, COORDINATE_TOLERANCE),  # type: ignore[arg-type]  # PyHamcrest's nested generic matchers: mypy infers Matcher[Never]
                                                      longitude=close_to(longitude, COORDINATE_TOLERANCE))))  # type: ignore[arg-type]  # PyHamcrest's nested generic matchers: mypy infers Matcher[Never]


@then("the position of {tracker} at {time:Time} is still stored as taken from its first report")
def step_first_report_kept(context: StepContext, tracker: str, time: datetime) -> None:
    """The row names the stream entry that inserted it: the first report, not a later copy (docs/processor.md,
    section 5, ``stream_id``)."""
    world = context.world
    reports = world.published.sent_at(tracker, time)
    assert len(reports) >= 2, f"{tracker} reported its position at {time} {len(reports)} time(s), not twice or more"
    _stored_once(context, tracker, time)
    rows = [row for row in context.suite.run(world.db.positions_of(world.device(tracker))) if row.ts == time]
    assert_that([row.stream_id for row in rows], equal_to([reports[0].entry_id]),
                f"the stream entry {tracker}'s row names; its reports were entries "
                f"{[report.entry_id for report in reports]}, in that order")


@then("the position of {tracker} at {time:Time} is stored exactly once")
def step_stored_once(context: StepContext, tracker: str, time: datetime) -> None:
    _stored_once(context, tracker, time)


@then("each of these positions is stored exactly once:")
def step_each_stored_once(context: StepContext) -> None:
    for row in context.table:
        _stored_once(context, row["tracker"], parse_time(row["time (UTC)"]))


@then("each of the {count:Count} positions is stored exactly once")
def step_burst_stored_once(context: StepContext, count: int) -> None:
    """Count in the database itself: one row per report, none missing, none extra (besides the positions the
    scenario recorded itself), each from its own entry."""
    world = context.world
    reports = world.published.latest_round
    assert_that(len(reports), equal_to(count), "reports sent in this scenario's latest round")
    expected = {report.key: report.entry_id for report in reports}
    devices = sorted({report.device_id for report in reports})

    async def all_stored() -> tuple[bool, str]:
        rows = await world.db.positions_of_devices(devices)
        present = {(row.device_id, render_ts(row.ts)) for row in rows}
        return present >= expected.keys(), f"{len(present & expected.keys())} of {len(expected)} stored"

    context.suite.run(eventually(all_stored, timeout=STEP, what=f"all {count} positions in positions"))
    rows = [row for row in context.suite.run(world.db.positions_of_devices(devices))
            if (row.device_id, row.ts) not in world.seeded]
    stored = Counter((row.device_id, render_ts(row.ts)) for row in rows)
    twice = {key: n for key, n in stored.items() if n > 1}
    extra = sorted(set(stored) - expected.keys())
    wrong_source = sorted(key for row in rows
                          if (key := (row.device_id, render_ts(row.ts))) in expected and row.stream_id != expected[key])
    assert_that((len(rows), twice, extra[:10], wrong_source[:10]), equal_to((count, {}, [], [])),
                "(rows, stored twice, not reported, stream_id not its own entry)")


# -- holding inserts back (makes races and crashes deterministic) --------------------------------------

@given("the database stalls and stores nothing for now")
def step_hold(context: StepContext) -> None:
    """Every INSERT into positions waits from now on, until the positions are let through (or clean-up)."""
    hold = context.suite.run(context.world.db.hold_inserts())
    context.world.cleanups.append(hold.release)
    context.world.state(InsertHold, lambda: hold)


#: How long an insert waiting on a lock the suite holds must wait without giving up (docs/processor.md, section 10,
#: "a snapshot query or an insert waiting on a table lock the suite holds"): the Processor's own figure, unscaled.
LOCK_WAIT = 2.0


@when("the database stays stalled for {seconds:g} seconds, while the service keeps waiting to store")
def step_stall_for(context: StepContext, seconds: float) -> None:
    """Hold the stall ``seconds`` longer, watching the waiting insert: for the first :data:`LOCK_WAIT` seconds it
    must be the same statement of the same session, neither cancelled nor retried; past them it may give up,
    provided it comes back (the positions must still be stored once the stall ends, which a later step checks)."""
    assert seconds > LOCK_WAIT, f"stall longer than the {LOCK_WAIT} s the contract promises to wait"
    changes = context.suite.run(context.world.db.watch_waiting(seconds, steady=LOCK_WAIT))
    assert_that(changes, equal_to([]), "the waiting insert (session, statement start) changed during the stall")


@when("the database is no longer stalled")
def step_release(context: StepContext) -> None:
    context.suite.run(context.world.state(InsertHold).release())


# -- the cars' trackers changing during the rally --------------------------------------------------------

@when("{tracker} is fitted to car {number}")
def step_fit(context: StepContext, tracker: str, number: str) -> None:
    world = context.world
    entry_id = world.car(number)
    context.suite.run(world.db.add_device(world.device(tracker), tracker))
    context.suite.run(world.db.assign_device(entry_id, world.device(tracker)))
    world.state(RaceControl, RaceControl).changed()


@when("{tracker} is taken off its car")
def step_take_off(context: StepContext, tracker: str) -> None:
    context.suite.run(context.world.db.unassign_device(context.world.device(tracker)))
    context.world.state(RaceControl, RaceControl).changed()


@then("none of the broken reports is stored")
def step_broken_not_stored(context: StepContext) -> None:
    """Checked after a later valid report got through, so every broken one has been dealt with."""
    world = context.world
    broken_times = {report.ts for report in world.state(BrokenReports).by_problem.values()}
    for alias, device_id in world.devices.items():
        rows = [row for row in context.suite.run(world.db.positions_of(device_id)) if row.ts in broken_times]
        assert_that(rows, equal_to([]), f"positions of {alias} stored from broken reports")


# -- trackers moving between cars, and trackers on two cars ------------------------------------------------

@when("{tracker} is moved to car {number}")
def step_move(context: StepContext, tracker: str, number: str) -> None:
    moved = context.suite.run(context.world.db.move_device(context.world.device(tracker), context.world.car(number)))
    context.world.state(RaceControl, RaceControl).changed()
    assert moved == 1, f"{tracker} was on {moved} cars, expected 1"


@given("{trackers:Names} are each fitted to both car {first} and car {second}")
def step_fit_both(context: StepContext, trackers: list[str], first: str, second: str) -> None:
    """Fit each tracker to both cars, alternating which car comes first, so that the car the contract names
    (the entry of lowest id) is neither always the first nor always the last assignment: only the rule itself
    picks it for every tracker."""
    world = context.world
    cars = sorted([world.car(first), world.car(second)])
    for index, alias in enumerate(trackers):
        context.suite.run(world.db.add_device(world.device(alias), alias))
        for entry_id in (cars if index % 2 else list(reversed(cars))):
            context.suite.run(world.db.assign_device(entry_id, world.device(alias)))


# -- a position waiting to be stored ------------------------------------------------------------------------

@when("the service is storing it")
def step_storing(context: StepContext) -> None:
    """The Processor has read the report and its insert waits for the held table."""

    async def waiting() -> tuple[bool, int]:
        count = await context.world.db.inserts_waiting()
        return count >= 1, count

    context.suite.run(eventually(waiting, timeout=SETTLE, what="the Processor's insert to wait for the held table"))


# -- several events of one organisation ----------------------------------------------------------------------

@given('the organisation "{organisation}" also runs the events {events:Quoted}')
def step_more_events(context: StepContext, organisation: str, events: list[str]) -> None:
    for event in events:
        context.suite.run(context.world.add_event(organisation, event))


@given('{person} may watch every event of the "{organisation}"')
def step_may_watch_all(context: StepContext, person: str, organisation: str) -> None:
    """Granted in the CMS, like "{person} may watch the ..." for each of the organisation's events."""
    world = context.world
    events = [event for event, runner in world.event_organisations.items() if runner == organisation]
    assert events, f"the {organisation} runs no event in this scenario"
    for event in events:
        world.allow(person, event)
