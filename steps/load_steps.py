"""Bounded load with a full delivery history (features/load.feature, tag @load)."""

from behave import given, then, when

from support.trackers.load_run import LoadRun

#: Deadlines for the outcomes after publishing stops (generous: the load itself lasts seconds).
STORED_WITHIN = 15.0
DELIVERED_WITHIN = 15.0


def _run(context) -> LoadRun:
    if context.world.notes.load is None:
        context.world.notes.load = LoadRun(context.world)
    return context.world.notes.load


@given('the organisation "{organisation}" runs {events:d} events with {trackers:d} trackers each')
def step_load_events(context, organisation, events, trackers):
    context.suite.run(_run(context).add_events(organisation, events, trackers))


@given("{fans:d} fans have the live map of each event open")
def step_load_fans(context, fans):
    context.suite.run(_run(context).open_maps(fans))


@when("the trackers report {rate:d} positions per second for {seconds:d} seconds")
def step_load_publish(context, rate, seconds):
    context.suite.run(_run(context).publish(rate, seconds), timeout=seconds + 30)


@then("every reported position is stored exactly once")
def step_load_stored(context):
    run = _run(context)
    problems = context.suite.run(run.stored_problems(STORED_WITHIN), timeout=STORED_WITHIN + 30)
    assert not problems, f"{run.summary()}; storage problems:\n  " + "\n  ".join(problems[:20])


@then("every fan receives every position of their event exactly once, in the order each tracker reported it")
def step_load_delivered(context):
    run = _run(context)
    problems = context.suite.run(run.delivered_problems(DELIVERED_WITHIN), timeout=DELIVERED_WITHIN + 30)
    assert not problems, f"{run.summary()}; delivery problems:\n  " + "\n  ".join(problems[:20])
