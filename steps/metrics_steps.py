"""What the Processor counts, read from /metrics as deltas over the scenario."""

from behave import then
from hamcrest import assert_that, equal_to

ORPHANS = "processor_live_broadcast_orphan_records_total"


@then("exactly {count:d} orphan position has been counted")
@then("exactly {count:d} orphan positions have been counted")
def step_orphans(context, count):
    world = context.world
    assert world.baseline is not None, "no position was reported in this scenario"
    now = context.suite.run(world.metrics())
    assert_that(now.delta(world.baseline, ORPHANS), equal_to(count), f"{ORPHANS} moved by this much")
