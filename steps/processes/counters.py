"""What the Processor counts, read from /metrics as deltas over the scenario (from the baseline its first own
report fixed: support/scenario/world.py)."""

from __future__ import annotations

from behave import then
from hamcrest import assert_that, equal_to

from support.clock import ANSWER
from support.scenario.gherkin import StepContext
from support.waiting import eventually

ORPHANS = "processor_live_broadcast_orphan_records_total"
DEAD_LETTERS = "processor_dead_letter_entries_total"
DUPLICATES = "processor_positions_duplicate_total"


@then("exactly {count:d} orphan position has been counted")
def step_orphans(context: StepContext, count: int) -> None:
    """Read after a positive barrier (a later position that reached a fan), so every earlier one was counted."""
    world = context.world
    assert world.baseline is not None, "no position was reported in this scenario"
    now = context.suite.run(world.metrics())
    assert_that(now.delta(world.baseline, ORPHANS), equal_to(count), f"{ORPHANS} moved by this much")


def _counted_exactly(context: StepContext, metric: str, count: int, nothing_sent: str) -> None:
    """Wait for ``metric`` to rise by ``count`` over the scenario (it may be scraped before the last increment),
    then require that it did not go past it."""
    world = context.world
    baseline = world.baseline
    assert baseline is not None, nothing_sent

    async def counted() -> tuple[bool, float]:
        delta = (await world.metrics()).delta(baseline, metric)
        return delta >= count, delta

    delta = context.suite.run(eventually(counted, timeout=ANSWER, what=f"{metric} to rise by {count}"))
    assert_that(delta, equal_to(count), f"{metric} moved by this much")


@then("exactly {count:d} broken reports have been counted")
def step_dead_letter_count(context: StepContext, count: int) -> None:
    _counted_exactly(context, DEAD_LETTERS, count, "no report was sent in this scenario")


@then("no orphan position has been counted")
def step_no_orphans(context: StepContext) -> None:
    step_orphans(context, 0)


@then("exactly {count:d} duplicate positions have been counted")
def step_duplicates(context: StepContext, count: int) -> None:
    _counted_exactly(context, DUPLICATES, count, "no position was reported in this scenario")


# -- what fans were sent, and the maps open ---------------------------------------------------------------------

FRAMES_SENT = "processor_frames_sent_total"


@then("the operator sees {count:d} positions sent out to fans")
def step_positions_sent(context: StepContext, count: int) -> None:
    """``processor_frames_sent_total{type="position"}`` of the main Processor over the scenario: one per fan per
    position (read after every fan got it; its frames are counted when queued, before they are written)."""
    world = context.world
    baseline = world.baseline
    assert baseline is not None, "no position was reported in this scenario"

    async def counted() -> tuple[bool, float]:
        delta = (await world.metrics()).delta(baseline, FRAMES_SENT, type="position")
        return delta >= count, delta

    delta = context.suite.run(eventually(counted, timeout=ANSWER, what=f"{FRAMES_SENT} to rise by {count}"))
    assert_that(delta, equal_to(count), f'{FRAMES_SENT}{{type="position"}} moved by this much')

