"""The map when it opens, and how positions follow it: what snapshot items carry, opening a map again, fans who open
the map together sharing one query, a map that could not be read, and a catch-up delivered event by event.

The contract's sections: docs/processor.md section 4, "Frames", "Snapshot/live boundary", "Order"; what the
operator sees of it is read by steps/processes/counters.py.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from itertools import groupby

from behave import given, then, when
from hamcrest import assert_that, contains_inanyorder, equal_to, has_entries, has_length

from support.clock import ANSWER, SETTLE
from support.cms.directus_stub import session_of
from support.database.postgres import ReadQueue
from support.fans.deliveries import key_of, live_positions, wait_for_positions
from support.fans.live_map import wait_for_map
from support.fans.matchers import a_position
from support.fans.viewer import QUIET_WINDOW, Frame
from support.fans.watching import event_of_device
from support.processes.instances import instances_of
from support.processes.scrape import MetricsSnapshot
from support.processes.slow_link import SlowLink
from support.scenario.gherkin import StepContext, positions
from support.waiting import eventually

SNAPSHOT_QUERIES = "processor_snapshot_queries_total"
#: The keys of a ``position`` frame (docs/processor.md section 4, "Frames"); a snapshot item has them without ``type``.
POSITION_KEYS = {"type", "eventId", "entryId", "deviceId", "ts", "lat", "lon", "altitude", "speed", "heading",
                 "satellites", "streamId"}


@dataclass
class Opening:
    """What these steps remember: where each fan's answer will be in its inbox, and the CMS's requests before."""

    since: dict[str, int] = field(default_factory=dict)
    #: The main Processor's metrics before the first of them asked.
    before: MetricsSnapshot | None = None


def _opening(context: StepContext) -> Opening:
    return context.world.state(Opening, Opening)


# -- what a snapshot item carries -------------------------------------------------------------------------------

@then("{person}'s map names no report for any of them, as they were recorded before")
def step_no_report_named(context: StepContext, person: str) -> None:
    """Positions not ingested from the stream have ``streamId`` null (the key is there)."""
    answer = context.world.answers[person]
    assert_that(answer, has_entries(type="subscribed"))
    assert_that([item.get("streamId", "<no streamId>") for item in answer["snapshot"]],
                equal_to([None] * len(answer["snapshot"])), f"the streamId of each car on {person}'s map")


@when('{person} opens the live map of the "{event}" again')
def step_open_again(context: StepContext, person: str, event: str) -> None:
    """On the same connection, already following the event: the answer is a fresh snapshot."""
    context.suite.run(context.world.open_map(person, event))


@then("{viewer}'s map shows that position as {person} was sent it, naming its car, its event and the report it "
      "came from")
def step_snapshot_as_live(context: StepContext, viewer: str, person: str) -> None:
    """The snapshot item is the live frame without ``type``: the same keys, the same values (docs/processor.md
    section 4); both name the event, the car and the stream entry the position came from."""
    world = context.world
    [report] = world.published.last_sent
    answer = world.answers[viewer]
    assert_that(answer, has_entries(type="subscribed"))
    items = [item for item in answer["snapshot"] if key_of(item) == report.key]
    assert_that(items, has_length(1), f"{report.alias} at {report.key[1]} on {viewer}'s map")
    frames = [frame for frame in live_positions(world.viewer(person)) if key_of(frame) == report.key]
    assert_that(frames, has_length(1), f"live frames of {report.alias} at {report.key[1]} sent to {person}")
    live = {key: value for key, value in frames[0].items() if not key.startswith("_")}
    [car] = context.suite.run(world.db.cars_of_device(report.device_id))
    assert_that(set(live), equal_to(POSITION_KEYS), f"the keys of the position frame {person} was sent")
    assert_that(live, has_entries(eventId=answer["eventId"], entryId=car, streamId=report.entry_id),
                f"what the position frame {person} was sent names")
    assert_that(items[0], equal_to({key: value for key, value in live.items() if key != "type"}),
                f"{report.alias} on {viewer}'s map, against the frame {person} was sent")


# -- one event's positions together ------------------------------------------------------------------------------

@then("{person} gets those positions event by event, each event's one after the other in time order")
def step_event_by_event(context: StepContext, person: str) -> None:
    """The positions of the last sending arrived in one message: the frames of each event come back to back (no
    frame of another event between them), each event's in ``ts`` order (docs/processor.md section 4, "Order")."""
    world = context.world
    viewer = world.viewer(person)
    sent = world.published.last_sent
    wanted = {report.key for report in sent}
    home = {device_id: context.suite.run(event_of_device(world, device_id))
            for device_id in {report.device_id for report in sent}}
    for event_id in set(home.values()):
        expected = [report.key for report in sent if home[report.device_id] == event_id]
        context.suite.run(wait_for_positions(viewer, expected, event_id=event_id, timeout=ANSWER,
                                             what=f"the catch-up's positions of event {event_id}"))
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    frames = live_positions(viewer)
    first = min(index for index, frame in enumerate(frames) if key_of(frame) in wanted)
    last = max(index for index, frame in enumerate(frames) if key_of(frame) in wanted)
    span = frames[first:last + 1]
    shown = [f"{world.alias_of(str(frame['deviceId']))} {frame['ts']}" for frame in span]
    runs = [event_id for event_id, _ in groupby(str(frame["eventId"]) for frame in span)]
    assert_that(sorted(runs), equal_to(sorted(set(runs))),
                f"the events of the frames {person} got for the catch-up, in order: {shown}")
    for event_id in set(runs):
        times = [str(frame["ts"]) for frame in span if frame["eventId"] == event_id]
        assert_that(times, equal_to(sorted(times)), f"the times of event {event_id}'s positions, as {person} got them")



# -- fans who open the map together ------------------------------------------------------------------------------

@given("the database keeps every map waiting for now")
def step_reads_wait(context: StepContext) -> None:
    """The suite holds ``positions`` in ACCESS EXCLUSIVE mode: every snapshot query (which names ``positions``,
    docs/processor.md section 10) waits until the hold ends (or the scenario's clean-up)."""
    _opening(context).before = context.suite.run(context.world.metrics())
    reads = context.suite.run(context.world.db.queue_reads())
    context.world.cleanups.append(reads.release)
    context.world.state(ReadQueue, lambda: reads)


async def _snapshots_waiting(context: StepContext) -> int:
    return await context.world.db.lock_waiters("AccessShareLock")


@when('{person} opens the live map of the "{event}", which waits for the database')
def step_open_waiting(context: StepContext, person: str, event: str) -> None:
    world = context.world
    _opening(context).since[person] = context.suite.run(world.start_opening(person, event))

    async def waiting() -> tuple[bool, int]:
        count = await _snapshots_waiting(context)
        return count >= 1, count

    context.suite.run(eventually(waiting, timeout=SETTLE, what=f"{person}'s snapshot query to wait"))


@when('{people:Names} open the live map of the "{event}" while {person}\'s is waiting')
def step_open_together(context: StepContext, people: list[str], event: str, person: str) -> None:
    """Their subscribes are sent together; the step returns once the CMS has answered each of them (the
    Processor then holds every answer it needs) and the quiet window has passed, in which it takes them in: no
    outside sign tells when a subscriber has joined the query that will run next."""
    world = context.world
    opening = _opening(context)
    mark = len(world.suite.stub.requests)
    for name in people:
        opening.since[name] = context.suite.run(world.start_opening(name, event))
    path = f"/items/events/{world.event(event)}"
    sessions = {session_of(world.cookie(name)) for name in people}

    async def answered() -> tuple[bool, list[str]]:
        seen = [str(r) for r in world.suite.stub.requests_since(mark) if r.path == path and r.session in sessions]
        return len(seen) >= len(people), seen

    context.suite.run(eventually(answered, timeout=SETTLE, what=f"the CMS to answer for {', '.join(people)}"))
    context.suite.run(world.viewer(person).listen_quietly(QUIET_WINDOW))  # pacing: the answers are taken in


@then('the service reads only one map of the "{event}" at a time')
def step_one_at_a_time(context: StepContext, event: str) -> None:
    """Read after the quiet window: a query for the fans who came later would be waiting by now."""
    waiting = context.suite.run(_snapshots_waiting(context))
    assert_that(waiting, equal_to(1), "snapshot queries waiting for the database")


@when("the database no longer keeps the maps waiting")
def step_reads_go(context: StepContext) -> None:
    context.suite.run(context.world.state(ReadQueue).release())


@then("{people:Names} see these cars on the map:")
def step_all_see(context: StepContext, people: list[str]) -> None:
    world = context.world
    expected = [a_position(world.device(p.tracker), p.latitude, p.longitude, p.ts) for p in positions(context.table)]
    event_ids = set(world.events.values())

    def answers(frame: Frame) -> bool:
        return frame.get("eventId") in event_ids and frame.get("type") in ("subscribed", "error")

    for person in people:
        since = _opening(context).since[person]
        answer = context.suite.run(world.viewer(person).wait_for(
            answers, timeout=SETTLE, what="an answer to opening the map", since=since))
        world.answers[person] = answer
        assert_that(answer, has_entries(type="subscribed"), f"{person}'s answer")
        assert_that(answer["snapshot"], contains_inanyorder(*expected), f"{person}'s map")


@then("the operator sees that the service read the map from the database twice for the three fans")
def step_two_queries(context: StepContext) -> None:
    """``processor_snapshot_queries_total`` of the main Processor rose by exactly 2: the first fan's query, which
    nobody may join once it runs, and one shared by the two who came while it waited (read after every answer:
    a query is counted when it starts)."""
    before = _opening(context).before
    assert before is not None, "the maps were not kept waiting in this scenario"
    delta = context.suite.run(context.world.metrics()).delta(before, SNAPSHOT_QUERIES)
    assert_that(delta, equal_to(2), f"{SNAPSHOT_QUERIES} moved by this much")


# -- a map that could not be read ---------------------------------------------------------------------------------

@given("the service in the {hall} hall reaches the database over a line that can be cut")
def step_cuttable_database(context: StepContext, hall: str) -> None:
    endpoints = context.suite.endpoints
    assert endpoints is not None
    link = context.world.state(SlowLink, lambda: SlowLink(endpoints.database_url))
    context.suite.run(link.start())
    context.world.cleanups.append(link.close)
    instances_of(context.world).start(hall, PROCESSOR_DATABASE_URL=link.url)


@when("the line between the service in the {hall} hall and the database is cut")
def step_cut_database(context: StepContext, hall: str) -> None:
    context.suite.run(context.world.state(SlowLink).cut())


@when("the line between the service in the {hall} hall and the database is mended")
def step_mend_database(context: StepContext, hall: str) -> None:
    context.suite.call(context.world.state(SlowLink).mend)


@then("{person}'s map soon shows {tracker} at {latitude:g}, {longitude:g}")
def step_map_soon_shows(context: StepContext, person: str, tracker: str, latitude: float, longitude: float) -> None:
    """The map drawn from every frame (support/fans/live_map.py): a live frame, a correction or a fresh snapshot
    may bring it (the service resynchronises its maps after its line to the database came back)."""
    world = context.world
    device_id = world.device(tracker)
    expected = a_position(device_id, latitude, longitude)
    context.suite.run(wait_for_map(world.viewer(person), world.answers[person]["eventId"],
                                   lambda shown: expected.matches(shown.get(device_id)), timeout=ANSWER,
                                   what=f"{tracker} at {latitude}, {longitude}", names=world.alias_of))


@then('{person} is shown nothing more of the "{event}"')
def step_nothing_more(context: StepContext, person: str, event: str) -> None:
    """A negative check after a positive barrier: no frame of the event after the fan's latest answer."""
    world = context.world
    viewer = world.viewer(person)
    event_id = world.event(event)
    answer = world.answers[person]
    context.suite.run(viewer.listen_quietly(QUIET_WINDOW))
    index = next(i for i, frame in enumerate(viewer.inbox) if frame is answer)
    later: list[Frame] = [frame for frame in viewer.inbox[index + 1:] if frame.get("eventId") == event_id]
    assert_that(later, equal_to([]), f"frames of the {event} {person} got after {answer}")
