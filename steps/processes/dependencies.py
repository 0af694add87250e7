"""A service started while the database or the telemetry feed (Redis) is out of its reach: it listens at once, says
what is missing, retries with backoff, one log line per failed attempt, and is healthy once it can reach it
(docs/processor.md, section 1). The dependency is kept out of reach by a gate in front of the run's server
(support/processes/gate.py), so nothing else notices."""

from __future__ import annotations

from behave import given, then, when
from hamcrest import assert_that, equal_to

from support.clock import CATCH_UP, SETTLE, STEP, within
from support.processes.gate import Gate
from support.processes.healthz import wait_for_health
from support.processes.instances import instances_of
from support.processes.startup import NewService, attempt_gaps, backoff_problems, environment, launch, log_lines
from support.scenario.gherkin import StepContext
from support.services.ports import free_port
from support.waiting import eventually

#: The dependencies the features name: the variable that points at each, and its name in /healthz.
DEPENDENCIES = {
    "the database": ("PROCESSOR_DATABASE_URL", "postgres"),
    "the telemetry feed": ("PROCESSOR_REDIS_URL", "redis"),
}
#: The backoff of docs/processor.md, section 1: 0.1 s doubling to 5 s.
FACTOR, CAP = 2.0, 5.0
#: Failed attempts seen before judging the backoff: four waits (0.1 … 0.8 s) without the cap; with it, seven
#: (… 3.2 s, then 5 s instead of 6.4 s).
ATTEMPTS, ATTEMPTS_TO_CAP = 5, 8
#: How much longer than its delay one wait may take: the attempt itself and a busy machine.
SLACK = 0.5


def _new(context: StepContext) -> NewService:
    return context.world.state(NewService, NewService)


def _dependency(name: str) -> tuple[str, str]:
    assert name in DEPENDENCIES, f"no dependency called {name!r} (known: {list(DEPENDENCIES)})"
    return DEPENDENCIES[name]


@given("{dependency} cannot be reached from a new service")
def step_out_of_reach(context: StepContext, dependency: str) -> None:
    variable, _ = _dependency(dependency)
    suite, new = context.suite, _new(context)
    assert suite.endpoints is not None
    upstream = suite.endpoints.database_url if variable == "PROCESSOR_DATABASE_URL" else suite.endpoints.redis_url
    gate = Gate(upstream)

    async def close() -> None:
        await gate.close()

    context.world.cleanups.append(close)  # registered before the service starts: closed after it stopped
    new.dependency, new.gate = dependency, gate


@when("the new service starts")
def step_starts(context: StepContext) -> None:
    """Started and left to itself: no wait for it to be healthy."""
    new = _new(context)
    assert new.gate is not None and new.dependency is not None, "no dependency was put out of reach"
    variable, _ = _dependency(new.dependency)
    instances = instances_of(context.world)  # a stream of its own
    name, port = f"gated-{instances.token}", free_port()
    env = environment(context.suite, name, port, {"PROCESSOR_STREAM": instances.stream, variable: new.gate.url})
    new.process = launch(context.world, name, env, port=port)


@then("the new service answers at once that {dependency} is down")
def step_answers_down(context: StepContext, dependency: str) -> None:
    """``/healthz`` answers 503 with the dependency ``down`` while it is still out of reach: the service listened
    without waiting for it (within the time a start may take, docs/processor.md section 10)."""
    _, key = _dependency(dependency)
    suite, new = context.suite, _new(context)
    process = new.started()
    assert suite.http is not None
    status, body = suite.run(wait_for_health(suite.http, process.base_url,
                                             lambda status, body: status == 503 and body.get(key) == "down",
                                             timeout=CATCH_UP, what=f"/healthz to say {key} is down"),
                             timeout=CATCH_UP + SETTLE)
    assert new.gate is not None and not new.gate.is_open, "the dependency became reachable meanwhile"
    assert process.running(), f"the new service exited:\n{process.tail()}"
    print(f"/healthz {status} {body}")


@then("it logs each failed attempt to reach {dependency} in one line, waiting {first:g} second and then twice as "
      "long each time")
def step_backoff(context: StepContext, dependency: str, first: float) -> None:
    _check_backoff(context, first, ATTEMPTS, cap=CAP)


@then("it logs each failed attempt to reach {dependency} in one line, waiting {first:g} second and then twice as "
      "long each time, but never more than {cap:g} seconds")
def step_backoff_capped(context: StepContext, dependency: str, first: float, cap: float) -> None:
    _check_backoff(context, first, ATTEMPTS_TO_CAP, cap=cap)


def _check_backoff(context: StepContext, first: float, attempts: int, *, cap: float) -> None:
    """The warnings (and errors) of each source in its log, read as one line per failed attempt: the source that
    retries must have logged ``attempts`` of them, and every source with three or more waits between them as the
    backoff does. Waits are read from the lines' own times (the contract's format, millisecond precision)."""
    process = _new(context).started()

    async def logged() -> tuple[bool, dict[str, list[float]] | str]:
        assert process.running(), f"the new service exited:\n{process.tail()}"
        lines, other = log_lines(process.stderr_lines())
        gaps = attempt_gaps(lines)
        done = any(len(waits) >= attempts - 1 for waits in gaps.values())
        return done, gaps if done else f"waits per source {gaps}; lines not in the log format: {other[:5]}"

    gaps = context.suite.run(eventually(logged, timeout=STEP, what=f"{attempts} failed attempts in its log"),
                             timeout=STEP + SETTLE)
    assert isinstance(gaps, dict)
    print("\n".join(f"{source}: waits {', '.join(f'{gap:.3f}' for gap in waits)} s" for source, waits in gaps.items()))
    problems = {source: found for source, waits in gaps.items()
                if (found := backoff_problems(waits[:attempts - 1], first=first, factor=FACTOR, cap=cap,
                                              slack=within(SLACK)))}
    assert_that(problems, equal_to({}), "waits between failed attempts that differ from the backoff")


@when("{dependency} can be reached again")
def step_reachable(context: StepContext, dependency: str) -> None:
    new = _new(context)
    assert new.gate is not None and new.dependency == dependency, f"{dependency} was not put out of reach"
    context.suite.run(new.gate.open())


@then("the new service is healthy")
def step_new_healthy(context: StepContext) -> None:
    """``/healthz`` 200: it reached everything it needs (30 s: after a dependency comes back)."""
    suite = context.suite
    assert suite.http is not None
    suite.run(_new(context).started().wait_healthy(suite.http, timeout=STEP), timeout=STEP + SETTLE)
