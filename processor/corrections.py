"""Corrections reach the live map: database changes pushed through PostgreSQL ``LISTEN``/``NOTIFY``.

Triggers (docs/processor.md section 7) announce on :data:`CHANNEL` which device of which event may now belong
elsewhere on the map. A notification is a hint, never data: one worker recomputes, with one query over the
committed state, where each affected device belongs now, and hands the answer to :meth:`Hub.correct`, which
orders it against live positions (see there). Notifications are handled one batch at a time, in the order they
arrived, so corrections reach a fan in commit order.

The listener holds a connection of its own, outside the pool: a pool hands connections out and takes them
back, which would drop the ``LISTEN``. When that connection is lost, notifications sent meanwhile are lost
with it, so after reconnecting every open map is resynchronised with a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import json
import logging
import re
from dataclasses import dataclass
from typing import Protocol

import asyncpg

from .backoff import Backoff
from .hub import Hub, render_snapshot
from .metrics import Metrics
from .protocol import UUID
from .routing import RoutedPosition
from .store import Correction

__all__ = ["CHANNEL", "OPS", "BadNotification", "Change", "Corrections", "parse", "route"]

logger = logging.getLogger("processor.corrections")

CHANNEL = "live_corrections"
OPS = ("faulty", "fitted", "removed", "withdrawn")
#: Device ids as the database may hold them (wider than the stream's rule: the CMS may list any tracker).
DEVICE_ID = re.compile(r"[^\x00]{1,256}")
#: Seconds between two keepalive queries on the listening connection: a silently dead connection (no FIN, no
#: error) would otherwise go unnoticed for as long as nobody changes anything.
KEEPALIVE = 5.0
#: Longest a resync waits for one event's snapshot (live positions for that event wait in its buffer meanwhile).
SNAPSHOT_TIMEOUT = 5.0
#: Most notifications folded into one recomputation.
BATCH = 1000


class BadNotification(ValueError):
    """A payload on the channel that is not one of the documented shapes; the message says why."""


@dataclass(frozen=True, slots=True)
class Change:
    """One announced change: ``device_id`` may have moved on ``event_id``'s map (``None``: on every map)."""

    op: str
    device_id: str
    event_id: str | None


def parse(payload: object) -> Change:
    """Parse one notification payload; raise :class:`BadNotification` for anything else."""
    if not isinstance(payload, str):
        raise BadNotification("payload is not text")
    try:
        data = json.loads(payload)
    except (ValueError, RecursionError):
        raise BadNotification("payload is not JSON") from None
    if not isinstance(data, dict):
        raise BadNotification("payload is not a JSON object")
    op = data.get("op")
    if op not in OPS:
        raise BadNotification(f"unknown op {str(op)[:40]!r}")
    device_id = data.get("deviceId")
    if not isinstance(device_id, str) or not DEVICE_ID.fullmatch(device_id):
        raise BadNotification("deviceId must be a non-empty string of at most 256 characters")
    if op == "faulty":
        return Change(op, device_id, None)
    for key in ("eventId", "entryId"):
        value = data.get(key)
        if not isinstance(value, str) or not UUID.fullmatch(value):
            raise BadNotification(f"{key} must be a UUID")
    return Change(op, device_id, data["eventId"].lower())


def route(changes: list[Change], watched: list[str]) -> list[tuple[str, str]]:
    """The (event, device) pairs to recompute: only events watched on this instance; a ``faulty`` change
    concerns the device on every watched event (the query finds where it is on a car). No duplicates, in
    first-seen order."""
    watched_set = set(watched)
    pairs: dict[tuple[str, str], None] = {}
    for change in changes:
        if change.event_id is None:
            for event_id in watched:
                pairs[(event_id, change.device_id)] = None
        elif change.event_id in watched_set:
            pairs[(change.event_id, change.device_id)] = None
    return list(pairs)


class CorrectionStore(Protocol):
    dsn: str

    async def corrections(self, pairs: list[tuple[str, str]]) -> list[Correction]: ...

    async def snapshot(self, event_id: str) -> list[RoutedPosition]: ...


_RESYNC = object()  # queued after a (re)connect: every open map may be stale


class Corrections:
    """The listener (dedicated connection, re-listens with backoff) and the worker (recompute, then correct)."""

    def __init__(self, store: CorrectionStore, hub: Hub, metrics: Metrics, channel: str = CHANNEL,
                 *, keepalive: float = KEEPALIVE) -> None:
        self.store = store
        self.hub = hub
        self.metrics = metrics
        self.channel = channel
        self.keepalive = keepalive
        self.queue: asyncio.Queue[Change | object] = asyncio.Queue()
        self.listening = False
        self.connection: asyncpg.Connection | None = None

    # -- notifications ---------------------------------------------------------------------------------

    def accept(self, payload: object) -> Change | None:
        """Count, parse and queue one payload; a bad one is counted and logged once, and changes nothing."""
        self.metrics.correction_notifications.inc()
        try:
            change = parse(payload)
        except BadNotification as exc:
            self.metrics.correction_notifications_bad.inc()
            logger.warning("ignoring a notification on %s: %s: %.200r", self.channel, exc, payload)
            return None
        self.queue.put_nowait(change)
        return change

    def request_resync(self) -> None:
        """Have every open map resynchronised with a fresh snapshot (e.g. live positions were lost)."""
        self.queue.put_nowait(_RESYNC)

    def _on_notification(self, connection: object, pid: int, channel: str, payload: object) -> None:
        self.accept(payload)

    # -- the listener ----------------------------------------------------------------------------------

    async def listen(self) -> None:
        """Keep one connection LISTENing; after every connect but the first, resynchronise the open maps."""
        backoff = Backoff()
        connected_before = False
        while True:
            lost = asyncio.Event()
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(self.store.dsn, timeout=5.0,
                                                   server_settings={"application_name": "processor-listen"})
                connection.add_termination_listener(lambda _, lost=lost: lost.set())
                await connection.add_listener(self.channel, self._on_notification)
                self.connection = connection
                self.listening = True
                self.metrics.correction_listener_up.set(1)
                backoff.reset()
                if connected_before:
                    self.metrics.correction_listener_reconnects.inc()
                    logger.info("listening on %s again; resynchronising every open map", self.channel)
                    self.queue.put_nowait(_RESYNC)
                else:
                    logger.info("listening on %s", self.channel)
                connected_before = True
                while not lost.is_set():
                    try:
                        await asyncio.wait_for(lost.wait(), self.keepalive)
                    except TimeoutError:
                        await connection.fetchval("SELECT 1", timeout=self.keepalive)
                raise ConnectionError("the listening connection was closed")
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = backoff.next()
                logger.warning("corrections listener: %s: %s; listening again in %.1f s", type(exc).__name__, exc,
                               delay)
                self.listening = False
                self.metrics.correction_listener_up.set(0)
                if connection is not None:
                    connection.terminate()
                    connection = None
                await asyncio.sleep(delay)
            finally:
                self.listening = False
                self.metrics.correction_listener_up.set(0)
                self.connection = None
                if connection is not None:
                    connection.terminate()

    # -- the worker ------------------------------------------------------------------------------------

    async def work(self) -> None:
        """Handle queued changes in order, a batch at a time; a failed batch becomes a resync (with backoff)."""
        backoff = Backoff()
        resync_needed = False
        while True:
            if not resync_needed:
                first = await self.queue.get()
                batch = [first]
                while len(batch) < BATCH and not self.queue.empty():
                    batch.append(self.queue.get_nowait())
                resync_needed = any(item is _RESYNC for item in batch)
                changes = [item for item in batch if isinstance(item, Change)]
                if resync_needed:
                    changes = []  # the fresh snapshots below carry every change committed before them
            else:
                changes = []
            try:
                if resync_needed:
                    await self.resync()
                    resync_needed = False
                else:
                    await self.apply(changes)
                backoff.reset()
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                delay = backoff.next()
                logger.warning("corrections could not be computed (%s: %s); resynchronising every open map in "
                               "%.1f s", type(exc).__name__, exc, delay)
                resync_needed = True
                await asyncio.sleep(delay)

    async def apply(self, changes: list[Change]) -> int:
        """Recompute the affected (event, device) pairs in one query and correct the maps; return frames queued."""
        pairs = route(changes, self.hub.watched_events())
        if not pairs:
            return 0
        sent = 0
        for correction in await self.store.corrections(pairs):
            sent += self.hub.correct(correction.event_id, correction.device_id, correction.position,
                                     correction.horizon)
        return sent

    async def resync(self) -> None:
        """Send every active subscription a fresh snapshot, exactly as a re-subscribe does (same boundary)."""
        for event_id in self.hub.watched_events():
            watched = self.hub.events.get(event_id)
            if watched is None:
                continue
            subs = [sub for sub in watched.subs if sub.active and not sub.boundary.holding]
            if not subs:
                continue
            for sub in subs:
                self.hub.begin(sub.client, event_id)
            try:
                snapshot = await asyncio.wait_for(self.store.snapshot(event_id), SNAPSHOT_TIMEOUT)
            except BaseException:
                for sub in subs:
                    self.hub.abort(sub)
                raise
            frame, watermark = render_snapshot(event_id, snapshot)
            for sub in subs:
                self.hub.complete(sub, snapshot, frame, watermark)
