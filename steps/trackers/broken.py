"""Broken reports: sent, set aside with their reasons (``<stream>:dead``), acknowledged, and kept while they cannot be
set aside (support/trackers/broken.py has the ways to break a report and the reasons' words)."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from behave import given, then, when
from hamcrest import assert_that, contains_inanyorder, empty, equal_to, has_entries, is_not

from support.clock import ANSWER, within
from support.fans.viewer import QUIET_WINDOW
from support.scenario.gherkin import StepContext
from support.trackers.broken import BrokenReports, reason_code
from support.trackers.stream import (
    DeadLetter,
    acknowledged_among,
    block_dead_letters,
    dead_letter_stream,
    dead_letters,
    delete_dead_letters,
    pending_among,
    unblock_dead_letters,
)
from support.waiting import eventually

#: Where broken reports sit on the clock: apart from everything else, so "not stored" is unambiguous.
BROKEN_START = datetime(2026, 5, 2, 13, 0, tzinfo=UTC)


# -- broken reports ------------------------------------------------------------------------------------

@when("{tracker} sends these broken reports:")
def step_broken(context: StepContext, tracker: str) -> None:
    """Each row breaks one otherwise valid report of ``tracker`` (support/trackers/broken.py, BREAKAGES) and names
    the reason it must be set aside with."""
    world = context.world
    rows = [(row["problem"].strip(), reason_code(row["reason"])) for row in context.table]
    problems = [problem for problem, _ in rows]
    assert len(set(problems)) == len(problems), "each problem once in the table"
    reports = context.suite.run(world.publish_broken(
        tracker, [(problem, BROKEN_START + timedelta(seconds=index)) for index, problem in enumerate(problems)]))
    broken = world.state(BrokenReports, BrokenReports)
    broken.by_problem = dict(zip(problems, reports, strict=True))
    broken.reasons = dict(rows)
    assert world.publisher is not None
    redis, stream = world.publisher.redis, world.publisher.stream

    async def forget_dead_letters() -> None:
        ids = [report.entry_id for report in broken.by_problem.values()]
        await delete_dead_letters(redis, stream, await dead_letters(redis, stream, ids))

    world.cleanups.append(forget_dead_letters)


@dataclass
class SetAside:
    """The dead letters of a scenario's broken reports so far, and the problems that have none yet."""

    letters: list[DeadLetter]
    missing: list[str]

    def __repr__(self) -> str:
        return f"{len(self.letters)} dead letters; none for the reports where: {self.missing}"


@then("each broken report is set aside, untouched, with its reason")
def step_dead_letters(context: StepContext) -> None:
    """Read ``<stream>:dead`` itself: one entry per broken report, its fields intact (byte for byte), plus the
    reason the table names, a detail and the id of the report it came from."""
    world = context.world
    broken = world.state(BrokenReports)
    by_source = {report.entry_id: problem for problem, report in broken.by_problem.items()}
    assert world.publisher is not None
    redis, stream = world.publisher.redis, world.publisher.stream

    async def all_set_aside() -> tuple[bool, SetAside]:
        letters = await dead_letters(redis, stream, by_source)
        found = {letter.source_id for letter in letters}
        return len(letters) >= len(by_source), SetAside(letters, [p for i, p in by_source.items() if i not in found])

    letters = context.suite.run(eventually(all_set_aside, timeout=ANSWER,
                                           what=f"{len(by_source)} entries in {stream}:dead")).letters
    assert_that([letter.source_id for letter in letters], contains_inanyorder(*by_source),  # type: ignore[misc]  # PyHamcrest: mypy cannot unify list[str | None] with a matcher of str
                f"dead letters for each broken report once; got {[letter.fields for letter in letters]}")
    wrong = {}
    for letter in letters:
        assert letter.source_id is not None  # dead_letters chose it by its source id
        problem = by_source[letter.source_id]
        if letter.reason != broken.reasons[problem]:
            wrong[problem] = f"{letter.reason} ({letter.fields.get('detail')})"
    assert_that(wrong, equal_to({}), "broken reports set aside with another reason than the table's: what they got")
    for letter in letters:
        assert letter.source_id is not None
        problem = by_source[letter.source_id]
        fields = broken.by_problem[problem].fields
        assert_that(letter.fields, has_entries({**fields, "source_id": letter.source_id}),
                    f"the dead letter of the report where {problem}")
        assert_that(letter.fields.get("detail", ""), is_not(empty()), f"the detail of the report where {problem}")  # type: ignore[arg-type]  # PyHamcrest's nested generic matchers: mypy infers Matcher[Never]


@then("none of the broken reports is left waiting")
def step_broken_acknowledged(context: StepContext) -> None:
    """Every broken report was acknowledged: no consumer group of the stream lists it as pending."""
    world = context.world
    ids = [report.entry_id for report in world.state(BrokenReports).by_problem.values()]
    assert world.publisher is not None
    redis, stream = world.publisher.redis, world.publisher.stream

    async def acknowledged() -> tuple[bool, list[str]]:
        waiting = await pending_among(redis, stream, ids)
        return not waiting, waiting

    context.suite.run(eventually(acknowledged, timeout=ANSWER, what="no broken report pending in any group"))


# -- while broken reports cannot be set aside ---------------------------------------------------------------

@given("broken reports cannot be set aside for now")
def step_dead_letters_broken(context: StepContext) -> None:
    """``<stream>:dead`` holds a plain string, so adding to it fails: only on a stream of the scenario's own (its
    instances' clean-up deletes the key), never on the run's."""
    world = context.world
    assert world.publisher is not None and world.publisher is not context.suite.publisher, \
        "only on a scenario's own stream: start a service of its own first"
    assert context.suite.run(block_dead_letters(world.publisher.redis, world.publisher.stream)), \
        f"{dead_letter_stream(world.publisher.stream)} already exists"


@when("broken reports can be set aside again")
def step_dead_letters_repaired(context: StepContext) -> None:
    world = context.world
    assert world.publisher is not None
    assert context.suite.run(unblock_dead_letters(world.publisher.redis, world.publisher.stream)), \
        f"{dead_letter_stream(world.publisher.stream)} was not the suite's placeholder any more"


@then("the broken reports are kept, not set aside")
def step_broken_kept(context: StepContext) -> None:
    """The service has taken a broken report (a consumer owes it: the positive barrier) and, a quiet window later,
    has acknowledged none: nothing is acknowledged while its dead letter cannot be written."""
    world = context.world
    ids = [report.entry_id for report in world.state(BrokenReports).by_problem.values()]
    assert world.publisher is not None
    redis, stream = world.publisher.redis, world.publisher.stream

    async def taken() -> tuple[bool, list[str]]:
        waiting = await pending_among(redis, stream, ids)
        return bool(waiting), waiting

    context.suite.run(eventually(taken, timeout=ANSWER, what="a broken report taken by the service"))
    context.suite.run(asyncio.sleep(within(QUIET_WINDOW)))  # quiet-window: documented in support/fans/viewer.py
    assert_that(context.suite.run(acknowledged_among(redis, stream, ids)), equal_to([]),
                "broken reports acknowledged though they could not be set aside")
