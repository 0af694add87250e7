"""A fan's map still loading while positions are stored and sent out: each of them shown once, none lost.

How the window is held open is support/fans/loading_window.py; the positions of the window are the scenario's
:class:`~support.fans.loading_window.LoadingWindow`.
"""

from __future__ import annotations

from behave import then, when
from hamcrest import assert_that, equal_to, has_entries

from support.database.postgres import InsertHold
from support.fans.loading_window import LoadingWindow, open_while_answer_travels, open_while_loading, times_seen
from support.fans.viewer import QUIET_WINDOW
from support.processes.slow_link import SlowLink
from support.scenario.gherkin import StepContext, positions
from support.trackers.record import Key


@when('{person} opens the live map of the "{event}", which is still loading while those positions are stored '
      'and sent out to {observer}')
def step_open_while_loading(context: StepContext, person: str, event: str, observer: str) -> None:
    """The window is what the scenario reported last ("those positions": at the same moment, into the stalled
    database)."""
    world = context.world
    window = [report.key for report in world.published.last_sent]
    context.suite.run(open_while_loading(world, person, event, world.state(InsertHold), observer, window))
    assert_that(world.answers[person], has_entries(type="subscribed"), f"{person}'s map did not open")


@when('{person} opens the live map of the "{event}", whose fresh map is read but held up on its way to the '
      'service in the {name} hall while these positions are stored and sent out to {observer}:')
def step_open_while_answer_travels(context: StepContext, person: str, event: str, name: str, observer: str) -> None:
    """The positions are committed after the snapshot was read, so only the live buffer can bring them to the fan
    (support/fans/loading_window.py, open_while_answer_travels)."""
    world = context.world
    planned = positions(context.table)

    async def publish() -> list[Key]:
        return [report.key for report in await world.publish_together(planned)]

    answer, _ = context.suite.run(open_while_answer_travels(world, person, event, world.state(SlowLink), observer,
                                                            publish))
    assert_that(answer, has_entries(type="subscribed"), f"{person}'s map did not open")


@then("{person} has seen each position stored while {pronoun} map was loading exactly once")
def step_loading_window_once(context: StepContext, person: str, pronoun: str) -> None:
    """After the scenario's positive barrier: each position of the window, whose time is also that of the
    tracker's position in the snapshot, in the snapshot or live, once."""
    world = context.world
    viewer = world.viewer(person)
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    seen = times_seen(viewer.inbox, world.answers[person]["eventId"], world.state(LoadingWindow).keys)
    assert_that({f"{world.alias_of(d)} at {ts}": n for (d, ts), n in seen.items()},
                equal_to({f"{world.alias_of(d)} at {ts}": 1 for (d, ts) in seen}),
                f"how often {person} was shown each position stored while the map loaded")
