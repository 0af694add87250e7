"""Bounded load with a full delivery history (features/11_load.feature, tag @load); the run is
support/trackers/load_run.py."""

from __future__ import annotations

from behave import given, then, when

from support.clock import RECOVER, STEP
from support.scenario.gherkin import StepContext
from support.trackers.load_run import load_run


@given('the organisation "{organisation}" runs {events:d} events with {trackers:d} trackers each')
def step_load_events(context: StepContext, organisation: str, events: int, trackers: int) -> None:
    context.suite.run(load_run(context.world).add_events(organisation, events, trackers))


@given("{fans:d} fans have the live map of each event open")
def step_load_fans(context: StepContext, fans: int) -> None:
    context.suite.run(load_run(context.world).open_maps(fans))


@when("the trackers report {rate:d} positions per second for {seconds:d} seconds")
def step_load_publish(context: StepContext, rate: int, seconds: int) -> None:
    context.suite.run(load_run(context.world).publish(rate, seconds), timeout=seconds + STEP)


@then("every reported position is stored exactly once")
def step_load_stored(context: StepContext) -> None:
    run = load_run(context.world)
    problems = context.suite.run(run.stored_problems(RECOVER), timeout=RECOVER + STEP)
    assert not problems, f"{run.summary()}; storage problems:\n  " + "\n  ".join(problems[:20])


@then("every fan receives every position of their event exactly once, in the order each tracker reported it")
def step_load_delivered(context: StepContext) -> None:
    run = load_run(context.world)
    problems = context.suite.run(run.delivered_problems(RECOVER), timeout=RECOVER + STEP)
    assert not problems, f"{run.summary()}; delivery problems:\n  " + "\n  ".join(problems[:20])
