"""What the Processor counts, read from /metrics as deltas over the scenario (from the baseline its first own
report fixed: support/scenario/world.py)."""

from __future__ import annotations

from collections import Counter

from behave import then
from hamcrest import assert_that, equal_to, greater_than_or_equal_to

from support.clock import ANSWER
from support.scenario.gherkin import StepContext
from support.trackers.broken import BrokenReports
from support.waiting import eventually

ORPHANS = "processor_live_broadcast_orphan_records_total"
DEAD_LETTERS = "processor_dead_letter_entries_total"
DUPLICATES = "processor_positions_duplicate_total"
STORED = "processor_positions_stored_total"
BROADCAST = "processor_positions_broadcast_total"
BATCH_SECONDS = "processor_ingest_batch_seconds"


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


@then("each broken report has been counted under its reason")
def step_dead_letters_by_reason(context: StepContext) -> None:
    """``processor_dead_letter_entries_total{reason}`` rose, for each reason, by as many reports as the table
    gave it, and no other reason rose."""
    world = context.world
    baseline = world.baseline
    assert baseline is not None, "no report was sent in this scenario"
    expected = Counter(world.state(BrokenReports).reasons.values())

    async def risen() -> dict[str, float]:
        now = await world.metrics()
        reasons = {dict(labels).get("reason", "") for name, labels in {**now.samples, **baseline.samples}
                   if name == DEAD_LETTERS}
        return {reason: now.delta(baseline, DEAD_LETTERS, reason=reason) for reason in reasons | set(expected)}

    async def counted() -> tuple[bool, dict[str, float]]:
        deltas = await risen()
        return all(deltas[reason] >= count for reason, count in expected.items()), deltas

    context.suite.run(eventually(counted, timeout=ANSWER, what=f"{DEAD_LETTERS} to rise by {dict(expected)}"))
    deltas = {reason: delta for reason, delta in context.suite.run(risen()).items() if delta}
    assert_that(deltas, equal_to(dict(expected)), f"{DEAD_LETTERS} moved by this much, per reason")


@then("no orphan position has been counted")
def step_no_orphans(context: StepContext) -> None:
    step_orphans(context, 0)


@then("exactly {count:d} duplicate positions have been counted")
def step_duplicates(context: StepContext, count: int) -> None:
    _counted_exactly(context, DUPLICATES, count, "no position was reported in this scenario")


@then("exactly {count:d} positions have been counted as stored")
def step_stored_count(context: StepContext, count: int) -> None:
    """Rows inserted, not reports received: a duplicate is not counted as stored."""
    _counted_exactly(context, STORED, count, "no position was reported in this scenario")


@then("exactly {count:d} position has been counted as sent out to fans")
def step_broadcast_count(context: StepContext, count: int) -> None:
    """Positions fanned out for an event with a fan on this instance; an orphan reaches no event."""
    _counted_exactly(context, BROADCAST, count, "no position was reported in this scenario")


@then("the time it took to store the position has been measured")
def step_batch_timed(context: StepContext) -> None:
    """``processor_ingest_batch_seconds`` (a histogram) observed the batch: its count and its ``+Inf`` bucket rose
    alike, and its sum did not fall."""
    world = context.world
    baseline = world.baseline
    assert baseline is not None, "no position was reported in this scenario"

    async def observed() -> tuple[bool, dict[str, float]]:
        now = await world.metrics()
        deltas = {"count": now.delta(baseline, f"{BATCH_SECONDS}_count"),
                  "+Inf bucket": now.delta(baseline, f"{BATCH_SECONDS}_bucket", le="+Inf"),
                  "sum": now.delta(baseline, f"{BATCH_SECONDS}_sum")}
        return deltas["count"] >= 1, deltas

    deltas = context.suite.run(eventually(observed, timeout=ANSWER, what=f"{BATCH_SECONDS} to observe a batch"))
    assert_that(deltas["+Inf bucket"], equal_to(deltas["count"]), f"{BATCH_SECONDS}: the +Inf bucket and the count")
    assert_that(deltas["sum"], greater_than_or_equal_to(0), f"{BATCH_SECONDS}_sum moved by this much")


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

