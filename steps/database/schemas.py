"""A service started on a database of the scenario's own that lacks one thing of the reference schema
(support/database/scratch.py): it stops at once with status 3 and one line naming what is missing, or, for what it
allows, runs, warns if it must, and installs nothing (docs/processor.md, sections 1 and 7)."""

from __future__ import annotations

from datetime import datetime

from behave import given, then, when
from hamcrest import assert_that, equal_to, has_length

from support.clock import ANSWER, SETTLE
from support.database.scratch import ScratchDatabase
from support.processes.instances import instances_of
from support.processes.startup import NewService, environment, launch, log_lines
from support.scenario.gherkin import StepContext
from support.services.ports import free_port
from support.waiting import eventually

#: What the features say the database lacks, and what support/database/scratch.py takes away for it.
LACKS = {
    "the flag that marks a position as faulty": "faulty column",
    "the table of each tracker's latest position": "latest_positions table",
    "the rule that a tracker has one position per moment": "unique key",
    "the trigger that keeps each tracker's latest position true when a position changes":
        "latest_positions_update trigger",
    "the trigger that announces a position flagged as faulty": "live_corrections_faulty trigger",
    "its primary key, a unique index keeping one position per tracker and moment instead":
        "primary key, replaced by a unique index",
}
#: Exit status of an incomplete schema (docs/processor.md, section 1).
EXIT_SCHEMA = 3
#: The warning of a missing correction trigger (docs/processor.md, section 7).
CORRECTIONS_WARNING = "corrections will not reach open maps"


def _new(context: StepContext) -> NewService:
    return context.world.state(NewService, NewService)


def _scratch(context: StepContext) -> ScratchDatabase:
    scratch = _new(context).scratch
    assert scratch is not None, "the scenario has no database of its own"
    return scratch


@given("a database of its own without {what}")
def step_scratch_database(context: StepContext, what: str) -> None:
    """Created on the run's server from fixtures/test-schema.sql, minus that; dropped in clean-up."""
    assert what in LACKS, f"no database can lack {what!r} (known: {list(LACKS)})"
    suite, new = context.suite, _new(context)
    assert suite.endpoints is not None
    scratch = ScratchDatabase(suite.endpoints.database_url, LACKS[what])
    context.world.cleanups.append(scratch.drop)  # before the service starts: dropped after it stopped
    suite.run(scratch.create())
    new.scratch, new.catalog = scratch, suite.run(scratch.catalog())


@when("a new service is started on that database")
def step_start_on_scratch(context: StepContext) -> None:
    """On a stream of its own, left to itself: no wait for it to be healthy."""
    scratch = _scratch(context)
    instances = instances_of(context.world)
    name, port = f"schema-{instances.token}", free_port()
    env = environment(context.suite, name, port,
                      {"PROCESSOR_STREAM": instances.stream, "PROCESSOR_DATABASE_URL": scratch.url})
    _new(context).process = launch(context.world, name, env, port=port)


@then("it stops at once because the database is incomplete, with one line naming {words:Quoted}")
def step_stops_incomplete(context: StepContext, words: list[str]) -> None:
    """Exit status 3, and exactly one line on stderr that names every one of ``words`` (case aside)."""
    process = _new(context).started()
    status = process.wait_exit(SETTLE)
    lines = process.stderr_lines()
    said = "\n".join(f"  stderr: {line}" for line in lines)
    print(f"exit status {status}\n{said}")
    assert_that(status, equal_to(EXIT_SCHEMA), f"its exit status; it said:\n{said}")
    naming = [line for line in lines if all(word.lower() in line.lower() for word in words)]
    assert_that(naming, has_length(1), f"its lines on stderr naming {' and '.join(words)}")


@then("it has warned once that corrections will not reach open maps, naming {names:Quoted}")
def step_warned(context: StepContext, names: list[str]) -> None:
    lines, _ = log_lines(_new(context).started().stderr_lines())
    warnings = [line.message for line in lines if line.level == "WARNING" and CORRECTIONS_WARNING in line.message]
    assert_that(warnings, has_length(1), f"its warnings that {CORRECTIONS_WARNING}")
    missing = [name for name in names if name not in warnings[0]]
    assert_that(missing, equal_to([]), f"names missing from its warning {warnings[0]!r}")


@then("it has warned of nothing")
def step_warned_nothing(context: StepContext) -> None:
    lines, _ = log_lines(_new(context).started().stderr_lines())
    warnings = [f"{line.level} {line.source} {line.message}" for line in lines if line.level in ("WARNING", "ERROR")]
    assert_that(warnings, equal_to([]), "its warnings and errors")


@then("that position is stored once in that database")
def step_stored_in_scratch(context: StepContext) -> None:
    """The position the scenario's latest step reported (twice, say), in the database of its own: one row."""
    world, scratch = context.world, _scratch(context)
    sent = world.published.last_sent
    assert sent and len({(r.device_id, r.ts) for r in sent}) == 1, f"the latest step reported one position: {sent}"
    report = sent[0]

    async def stored() -> tuple[bool, dict[datetime, int]]:
        rows = await scratch.count_positions(report.device_id)
        return rows.get(report.ts, 0) >= 1, rows

    rows = context.suite.run(eventually(stored, timeout=ANSWER, what=f"{report.alias}'s position in {scratch.name}"))
    assert_that(rows.get(report.ts, 0), equal_to(1), f"rows of {report.alias} at {report.ts} in {scratch.name}: {rows}")


@then("the database defines exactly what it did before the new service started")
def step_installs_nothing(context: StepContext) -> None:
    """Tables, columns, indexes, constraints, functions, triggers, extensions and schemas, compared with the list
    made before the service started (support/database/scratch.py, ``CATALOG_SQL``)."""
    before = _new(context).catalog
    assert before is not None
    after = context.suite.run(_scratch(context).catalog())
    assert_that({"added": sorted(after - before), "removed": sorted(before - after)},
                equal_to({"added": [], "removed": []}), "what the database defines, compared with before the start")
