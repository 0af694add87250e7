"""The event as the CMS stores it, and what the Processor stored: seeded and checked in PostgreSQL."""

from behave import given, then
from hamcrest import assert_that, contains_exactly, has_properties

from support.waiting import eventually
from support.world import parse_time


def _trackers(cell: str) -> list[str]:
    return [name.strip() for name in cell.split(",") if name.strip()]


@given('the organisation "{organisation}" runs the event "{event}"')
def step_event(context, organisation, event):
    context.suite.run(context.world.add_event(organisation, event))


@given('the "{event}" has these entries:')
def step_entries(context, event):
    for row in context.table:
        context.suite.run(context.world.add_entry(event, row["car"], row["crew"], _trackers(row["trackers"])))


@given("these positions were recorded:")
def step_positions(context):
    rows = [(row["tracker"], parse_time(row["time (UTC)"]), float(row["latitude"]), float(row["longitude"]))
            for row in context.table]
    context.suite.run(context.world.record_positions(rows))


@given("{tracker} is on no car")
def step_unassigned(context, tracker):
    context.world.device(tracker)  # a fresh id that no entry has ever carried


@given("the position of {tracker} at {time} is flagged as faulty")
def step_flag_one(context, tracker, time):
    changed = context.suite.run(context.world.db.flag_faulty(context.world.device(tracker), parse_time(time)))
    assert changed == 1, f"expected to flag one position of {tracker} at {time}, flagged {changed}"


@given("every position of {tracker} is flagged as faulty")
def step_flag_all(context, tracker):
    changed = context.suite.run(context.world.db.flag_faulty(context.world.device(tracker)))
    assert changed > 0, f"{tracker} has no position to flag"


@then("the position of {tracker} at {time} is stored")
def step_stored(context, tracker, time):
    world = context.world
    device_id, ts = world.device(tracker), parse_time(time)

    async def stored():
        rows = [row for row in await world.db.positions_of(device_id) if row.ts == ts]
        return len(rows) == 1, rows

    rows = context.suite.run(eventually(stored, timeout=5, what=f"{tracker}'s position at {time} in positions"))
    assert_that(rows, contains_exactly(has_properties(device_id=device_id, ts=ts, faulty=False)))
