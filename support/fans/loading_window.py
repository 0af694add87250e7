"""A fan's map that is still loading while positions are stored and sent out: the snapshot/live boundary,
opened on purpose instead of hoped for.

The contract (docs/processor.md, section 4, "Snapshot/live boundary") promises that a position stored while a
fan's snapshot loads reaches that fan exactly once. The window is made with PostgreSQL's lock queue:

1. an :class:`~support.database.postgres.InsertHold` keeps the Processor's insert of the positions waiting;
2. a :class:`~support.database.postgres.ReadQueue` queues behind that insert, so every later read of ``positions``
   waits behind it;
3. the fan asks for the map: the Processor starts buffering live positions and its snapshot query waits;
4. the hold is released: the insert (queued first) commits and the positions are published, which another
   fan who already has the map open sees arrive (so the Processor has handed them to its subscribers);
5. only then the read queue is released: the snapshot is read, and it holds those very positions.

Every position of the window is then both in the snapshot and among the live positions buffered for the fan,
with the same time: the fan must see each once.

The other side of the boundary, positions committed just *after* the snapshot was read but published while
its answer travels to the Processor, is opened with a :class:`~support.processes.slow_link.SlowLink` between one
instance and PostgreSQL (:func:`open_while_answer_travels`): those positions can only reach the fan from the
live buffer. The answer is held at least :data:`HELD_AT_LEAST` seconds, so an instance that gives up on a query's
result sooner than the contract allows (``db.query-wait``: at least 2 s) fails to open the map.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable, Collection
from dataclasses import dataclass, field

from ..clock import SETTLE
from ..database.postgres import InsertHold
from ..processes.slow_link import SlowLink
from ..scenario.world import World
from ..trackers.record import Key
from ..waiting import eventually
from .deliveries import key_of, since_latest_snapshot, wait_for_positions
from .viewer import Frame

#: How long the snapshot's answer is held on its way at least: a little more than the 2 s a Processor must wait
#: for a query's result (docs/processor.md, section 10, ``db.query-wait``). A duration the suite imposes, not a
#: deadline: never scaled by ``-D timeout_factor``.
QUERY_WAIT = 2.5


@dataclass
class LoadingWindow:
    """The positions of the scenario's window (stored while a fan's map was loading), in the world's state."""

    keys: list[Key] = field(default_factory=list)


async def open_while_loading(world: World, person: str, event: str, hold: InsertHold, observer: str,
                             window: Collection[Key]) -> Frame:
    """Open ``person``'s map of ``event`` so that its snapshot loads while ``window``'s positions (held back
    by ``hold``) are stored and published; ``observer`` already has the map open. Return the answer; ``window``
    becomes the scenario's :class:`LoadingWindow`."""
    world.state(LoadingWindow, LoadingWindow).keys = list(window)
    db = world.db

    async def insert_waiting() -> tuple[bool, int]:
        waiting = await db.inserts_waiting()
        return waiting >= 1, waiting

    await eventually(insert_waiting, timeout=SETTLE, what="the Processor's insert to wait for the hold")
    reads = await db.queue_reads()
    world.cleanups.append(reads.release)
    viewer = world.viewers.get(person) or await world.connect(person)
    since = await world.start_opening(person, event)

    async def snapshot_waiting() -> tuple[bool, int]:
        waiting = await db.lock_waiters("AccessShareLock")
        return waiting >= 1, waiting

    await eventually(snapshot_waiting, timeout=SETTLE, what=f"{person}'s snapshot query to wait")
    await hold.release()
    await reads.granted(SETTLE)  # the held insert has committed
    event_id = world.event(event)
    await wait_for_positions(world.viewer(observer), window, event_id=event_id, timeout=SETTLE,
                             what=f"positions stored while {person}'s map loads, as {observer} receives them")
    answered_early = [f for f in viewer.inbox[since:] if f.get("eventId") == event_id]
    assert not answered_early, f"{person}'s map opened before its snapshot could be read: {answered_early}"
    await reads.release()
    world.answers[person] = await viewer.wait_for(
        lambda f: f.get("eventId") == event_id and f.get("type") in ("subscribed", "error"),
        timeout=SETTLE, what=f"an answer to subscribing to {event!r}", since=since,
    )
    return world.answers[person]


def times_seen(frames: list[Frame], event_id: str, wanted: Collection[Key]) -> dict[Key, int]:
    """How often each wanted position reached a fan for ``event_id``: snapshot items and live frames together,
    from the event's latest snapshot on (a resync in place resets the count: support/fans/deliveries.py,
    since_latest_snapshot)."""
    seen = {key: 0 for key in wanted}
    for frame in since_latest_snapshot(frames, event_id):
        if frame.get("type") == "subscribed":
            items = frame.get("snapshot") or []
        elif frame.get("type") == "position":
            items = [frame]
        else:
            continue
        for item in items:
            if key_of(item) in seen:
                seen[key_of(item)] += 1
    return seen


async def open_while_answer_travels(world: World, person: str, event: str, link: SlowLink, observer: str,
                                    publish: Callable[[], Awaitable[Collection[Key]]]) -> tuple[Frame, list[Key]]:
    """Open ``person``'s map so that its snapshot is read *before* positions are stored, while they are
    published *before* the Processor has the snapshot (``link`` holds PostgreSQL's answers to the instance
    ``person`` is connected to; ``observer`` follows the event on the same instance). Only positions buffered
    from before the snapshot query can reach ``person``: the snapshot does not hold them. The answer is held
    :data:`QUERY_WAIT` seconds at least, so a Processor that gives up on a query sooner fails here. Returns the
    answer and the positions ``publish`` sent, which become the scenario's :class:`LoadingWindow`."""
    db = world.db
    viewer = world.viewer(person)
    began = await db.server_clock()
    link.hold()
    since = await world.start_opening(person, event)

    async def snapshot_read() -> tuple[bool, int]:
        finished = await db.finished_queries(link.held_ports, since=began, mentioning="positions")
        return finished >= 1, finished

    await eventually(snapshot_read, timeout=SETTLE,
                     what=f"the snapshot query for {person} to have run on the server")
    held_since = time.monotonic()
    window = list(await publish())
    world.state(LoadingWindow, LoadingWindow).keys = window
    event_id = world.event(event)
    await wait_for_positions(world.viewer(observer), window, event_id=event_id, timeout=SETTLE,
                             what=f"positions stored while {person}'s snapshot is on its way, as {observer} "
                                  f"receives them")
    answered_early = [f for f in viewer.inbox[since:] if f.get("eventId") == event_id]
    assert not answered_early, f"{person}'s map opened while its snapshot was held up: {answered_early}"
    await asyncio.sleep(max(0.0, QUERY_WAIT - (time.monotonic() - held_since)))  # a hold of its own length, not a wait
    link.release()
    world.answers[person] = await viewer.wait_for(
        lambda f: f.get("eventId") == event_id and f.get("type") in ("subscribed", "error"),
        timeout=SETTLE, what=f"an answer to subscribing to {event!r}", since=since,
    )
    in_snapshot = [item for item in world.answers[person].get("snapshot") or [] if key_of(item) in set(window)]
    assert not in_snapshot, f"the snapshot was read after the positions were stored, not before: {in_snapshot}"
    return world.answers[person], window
