"""Fan-out of live positions to WebSocket clients.

Each client has one bounded queue, drained by a writer task that exists only while frames wait, so a slow
client only ever delays itself: when its queue is full it is closed with 1013. A client whose socket is not
backed up is written to at once (what ``websockets.broadcast`` does). Each position frame is rendered and
encoded once per message, whatever the number of subscribers, the positions of one event in a message reach each
subscriber in one write, and metrics are counted once per dispatch.

The snapshot/live boundary of each subscription is a :class:`processor.boundary.Boundary`; this module applies
its verdicts. When the instance itself falls behind the live channel past its bound, :meth:`Hub.shed_behind`
closes the fans who would otherwise see stale positions, so that they come back to a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import deque
from collections.abc import Iterable, Mapping
from typing import Any, Protocol

from websockets.protocol import State

from . import frames
from .boundary import Boundary, watermarks
from .metrics import Metrics
from .routing import RoutedPosition

__all__ = ["CLOSE_BEHIND", "Client", "Connection", "Hub", "Subscription", "Transport", "WireProtocol"]

logger = logging.getLogger("processor.hub")

#: Fan-out yields to the event loop at least every this many positions so that fast clients' writers
#: drain between chunks of a large batch instead of overflowing their queues.
YIELD_EVERY = 64

#: A client whose socket holds less than this many unsent bytes, and nothing queued, is written to at once
#: (what ``websockets.broadcast`` does) instead of through its writer task: a profile of 1,000 viewers showed
#: 63 % of the CPU in per-frame writer-task wake-ups. Above it, frames queue and the 1013 rule applies.
DIRECT_WRITE_LIMIT = 64 * 1024

#: The reason sent with 1013 to fans shed because this instance fell behind the live channel.
CLOSE_BEHIND = "live map fell behind, reconnect"


class Transport(Protocol):
    """The part of ``asyncio.Transport`` the direct write uses: how much is still unsent, and write."""

    def get_write_buffer_size(self) -> int: ...

    def write(self, data: bytes) -> None: ...


class WireProtocol(Protocol):
    """The part of websockets' sans-I/O protocol the direct write consults: whether the connection is open."""

    state: State


class Connection(Protocol):
    """What the hub needs from a WebSocket connection (``websockets`` ServerConnection or a fake).

    ``transport``, ``protocol`` and ``send_in_progress`` are the seam of the direct write: a WebSocket frame
    built once per message (:func:`frames.websocket_text`; server frames are unmasked and compression is off)
    goes straight to ``transport.write`` while the connection is open and no fragmented message is being sent.
    websockets writes whole frames to the same transport, so frames never interleave. ``transport`` is ``None``
    until the connection is made.
    """

    # Read-only here (properties), so a connection whose own fields are narrower still matches.
    @property
    def transport(self) -> Transport | None: ...

    @property
    def protocol(self) -> WireProtocol: ...

    @property
    def send_in_progress(self) -> object | None: ...

    async def send(self, message: bytes, *, text: bool | None = None) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


#: One position ready to send: ``(device_id, ts, encoded text, WebSocket frame)``.
_Framed = tuple[str, str, bytes, bytes]


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class Client:
    """The outbound side of one connection: direct writes, else a bounded frame queue and its writer task."""

    __slots__ = ("closed", "closer", "connection", "limit", "metrics", "name", "queue", "subscriptions", "writer")

    def __init__(self, connection: Connection, limit: int, metrics: Metrics, name: str = "") -> None:
        self.connection = connection
        self.limit = limit
        self.metrics = metrics
        self.name = name
        #: Frames waiting for the writer; created on first use (an idle viewer costs no deque).
        self.queue: deque[bytes | _Close] | None = None
        self.subscriptions: dict[str, Subscription] = {}
        self.closed = False
        #: The writer task while frames wait (``None`` otherwise); the task closing the connection, if any.
        self.writer: asyncio.Task[None] | None = None
        self.closer: asyncio.Task[None] | None = None

    def send(self, frame: str | bytes, kind: str, wire: bytes | None = None) -> bool:
        """Queue a frame and count it; close the client with 1013 if its queue is full. False if not queued."""
        if self.put(frame.encode() if isinstance(frame, str) else frame, wire):
            self.metrics.frames_sent.labels(kind).inc()
            return True
        return False

    def put(self, data: bytes, wire: bytes | None = None) -> bool:
        """Write or queue an encoded text message without counting it (the hub counts positions per dispatch);
        ``wire``: the same message already framed, shared by every subscriber."""
        if self.closed:
            return False
        if self.writer is None and self._write_now(data, wire):
            return True
        queue = self.queue
        if queue is None:
            queue = self.queue = deque()
        if len(queue) >= self.limit:
            self.overflow()
            return False
        queue.append(data)
        if self.writer is None:
            self.writer = asyncio.create_task(self._write(), name=f"writer-{self.name}")
        return True

    def put_many(self, items: list[bytes], wire: bytes) -> int:
        """Write or queue several encoded text messages, in order; ``wire``: all of them already framed, one after
        another, written in ONE ``transport.write`` when the socket is not backed up (one system call per fan
        instead of one per position: the fan-out's cost is mostly those calls). Return how many were queued or
        written (fewer if the queue overflowed)."""
        if self.closed:
            return 0
        if self.writer is None and self._write_now(b"", wire):
            return len(items)
        count = 0
        for data in items:  # backed up: each one waits in the queue under the 1013 rule
            if not self.put(data):
                break
            count += 1
        return count

    def _write_now(self, data: bytes, wire: bytes | None) -> bool:
        """Write without the writer task when the socket is not backed up; False: queue it instead."""
        connection = self.connection
        transport = connection.transport
        if transport is None or transport.get_write_buffer_size() >= DIRECT_WRITE_LIMIT:
            return False
        if connection.send_in_progress is not None:  # a fragmented message is being sent: wait in line
            return False
        if connection.protocol.state is not State.OPEN:
            return True  # closing: like broadcast(), drop it; the handler cleans up
        try:
            transport.write(wire if wire is not None else frames.websocket_text(data))
        except Exception as exc:  # the transport failed under us: the handler sees the connection close
            logger.debug("direct write to %s failed: %s", self.name, exc)
        return True

    def close_after_flush(self, code: int, reason: str) -> None:
        """Close once the frames already queued are written (e.g. an error frame, then 1008)."""
        if not self.closed:
            if self.queue is None:
                self.queue = deque()
            self.queue.append(_Close(code, reason))
            if self.writer is None:
                self.writer = asyncio.create_task(self._write(), name=f"writer-{self.name}")

    def overflow(self) -> None:
        """Slow consumer: drop everything queued and close with 1013."""
        if self.closed:
            return
        self.metrics.slow_consumers.inc()
        logger.info("client %s is too slow (%d frames queued): closing with 1013", self.name, self.limit)
        self.shut(1013, "slow consumer")

    def shut(self, code: int, reason: str) -> None:
        """Drop everything queued and close now with ``code``."""
        if self.closed:
            return
        self.closed = True
        self.queue = None
        if self.writer is not None:
            self.writer.cancel()
        self.closer = asyncio.create_task(self._close(code, reason), name=f"close-{self.name}")

    async def _close(self, code: int, reason: str) -> None:
        try:
            await self.connection.close(code, reason)
        except Exception as exc:  # the connection may already be gone
            logger.debug("close %s: %s", self.name, exc)

    async def _write(self) -> None:
        """Drain the queue, then end (the next queued frame starts a new writer)."""
        try:
            while self.queue:
                item = self.queue.popleft()
                if not self.queue:
                    self.queue = None  # drained: give the deque back
                if isinstance(item, _Close):
                    self.closed = True
                    self.queue = None
                    await self._close(item.code, item.reason)
                    return
                await self.connection.send(item, text=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # ConnectionClosed and friends: the handler cleans up
            logger.debug("writer %s stopped: %s", self.name, exc)
            self.closed = True
            self.queue = None
        finally:
            if self.writer is asyncio.current_task():
                self.writer = None

    def stop(self) -> None:
        self.closed = True
        self.queue = None
        if self.writer is not None:
            self.writer.cancel()


class Subscription:
    """One (client, event) pair: its boundary, and since when (wall clock) it has been holding for a snapshot."""

    __slots__ = ("active", "boundary", "client", "event_id", "since")

    def __init__(self, client: Client, event_id: str) -> None:
        self.client = client
        self.event_id = event_id
        self.boundary: Boundary[bytes | str] = Boundary()  # held: positions' encoded bytes, corrections' text
        self.active = False  # counted in processor_subscriptions
        self.since = time.time()

    def deliver(self, device_id: str, ts: str, data: bytes) -> bool:
        """One encoded position frame (a held one, replayed): :meth:`deliver_many` of one; True if it was sent."""
        wire = frames.websocket_text(data)
        return self.deliver_many([(device_id, ts, data, wire)], wire) == 1

    def deliver_many(self, batch: list[_Framed], joined: bytes) -> int:
        """Hold, drop or send several positions of this subscription's event, in order (``joined``: all their
        wire frames, one after another); return how many were sent."""
        boundary = self.boundary
        if boundary.held is not None:
            for device_id, ts, data, _wire in batch:
                if not boundary.hold_position(device_id, ts, data, self.client.limit):
                    self.client.overflow()
                    break
            return 0
        admitted = [item for item in batch if boundary.admits_position(item[0], item[1])]
        if not admitted:
            return 0
        if len(admitted) < len(batch):
            joined = b"".join(item[3] for item in admitted)
        return self.client.put_many([item[2] for item in admitted], joined)

    def correct(self, device_id: str, horizon: str | None, frame: str, gone: bool, known: bool) -> bool:
        """Send a ``correction`` unless the boundary says this fan already knows better (see
        :meth:`Boundary.admits_correction`). While holding, it waits in line with the live positions."""
        boundary = self.boundary
        if boundary.held is not None:
            boundary.hold_correction(device_id, horizon, frame, gone and not known)
            return True
        if not boundary.admits_correction(device_id, horizon, gone, known):
            return False
        return self.client.send(frame, "correction")


class Hub:
    """Registry of subscriptions by event, and the fan-out of live positions."""

    def __init__(self, metrics: Metrics, client_queue: int = 1024) -> None:
        self.metrics = metrics
        self.by_event: dict[str, set[Subscription]] = {}
        #: Per watched event and device: the newest ``ts`` dispatched live, and the fence a correction set
        #: (live positions not newer than it are stale). Only kept while the event has subscribers.
        self.newest: dict[str, dict[str, str]] = {}
        self.fences: dict[str, dict[str, str]] = {}
        self.corrections_sent = metrics.corrections_sent
        self.positions_sent = metrics.frames_sent.labels("position")
        self.yield_every = max(1, min(YIELD_EVERY, client_queue // 4))

    # -- subscriptions ---------------------------------------------------------------------------------

    def begin(self, client: Client, event_id: str) -> Subscription:
        """Start holding live positions for ``event_id``; call before the snapshot query."""
        sub = client.subscriptions.get(event_id)
        if sub is None:
            sub = Subscription(client, event_id)
            client.subscriptions[event_id] = sub
            self.by_event.setdefault(event_id, set()).add(sub)
            self.newest.setdefault(event_id, {})
        else:  # re-subscribe: a fresh snapshot and a fresh boundary
            sub.boundary.restart()
            sub.since = time.time()
        return sub

    def complete(self, sub: Subscription, snapshot: list[RoutedPosition], frame: bytes | None = None,
                 watermark: Mapping[str, str] | None = None, wire: bytes | None = None) -> None:
        """Queue ``subscribed`` with the snapshot, then the held positions newer than it. Subscribers served by
        the same query pass the same encoded ``frame``, ``watermark`` and framed ``wire`` (see
        :func:`render_snapshot`)."""
        if sub.client.subscriptions.get(sub.event_id) is not sub:
            return  # the client went away meanwhile
        if frame is None or watermark is None:
            frame, watermark = render_snapshot(sub.event_id, snapshot)
            wire = None
        held = sub.boundary.open(watermark)
        if not sub.active:
            sub.active = True
            self.metrics.subscriptions.inc()
        sub.client.send(frame, "subscribed", wire)
        self._replay(sub, held)

    def _replay(self, sub: Subscription, held: list[Any]) -> None:
        """Deliver what waited for the snapshot, in arrival order, by the rules of each kind."""
        sent = 0
        for item in held:
            if item[0] == "c":
                sub.correct(item[1], item[2], item[3], item[4], False)
            elif sub.deliver(item[1], item[2], item[3]):
                sent += 1
        if sent:
            self.positions_sent.inc(sent)

    def abort(self, sub: Subscription) -> None:
        """The snapshot failed: a new subscription is not made; an existing one carries on."""
        if sub.active:
            self._replay(sub, sub.boundary.abandon())
        else:
            self._discard(sub)

    def unsubscribe(self, client: Client, event_id: str) -> bool:
        sub = client.subscriptions.get(event_id)
        if sub is None:
            return False
        self._discard(sub)
        return True

    def remove_client(self, client: Client) -> None:
        for sub in list(client.subscriptions.values()):
            self._discard(sub)
        client.stop()

    def _discard(self, sub: Subscription) -> None:
        sub.client.subscriptions.pop(sub.event_id, None)
        subs = self.by_event.get(sub.event_id)
        if subs is not None:
            subs.discard(sub)
            if not subs:
                del self.by_event[sub.event_id]
                self.newest.pop(sub.event_id, None)
                self.fences.pop(sub.event_id, None)
        if sub.active:
            sub.active = False
            self.metrics.subscriptions.dec()

    # -- fan-out ---------------------------------------------------------------------------------------

    async def dispatch(self, positions: Iterable[RoutedPosition]) -> int:
        """Fan out routed positions to local subscribers, yielding now and then so writers keep draining;
        return how many positions had any subscriber.

        The positions of one event go out together: each fan gets all of them in one write (a batch of a few
        positions per fan costs one system call, not a few), in their order; across events the order of a batch
        is not kept (no fan can tell: each event's positions stay in order)."""
        by_event: dict[str, list[RoutedPosition]] = {}
        for position in positions:
            group = by_event.get(position.event_id)
            if group is None:
                by_event[position.event_id] = [position]
            else:
                group.append(position)
        broadcast = sent = since_yield = 0
        step = self.yield_every
        for event_id, group in by_event.items():
            for start in range(0, len(group), step):
                chunk = group[start:start + step]
                counted, count = self._dispatch_event(event_id, chunk)
                broadcast += counted
                sent += count
                since_yield += len(chunk)
                if since_yield >= step:
                    since_yield = 0
                    await asyncio.sleep(0)
        if broadcast:
            self.metrics.broadcast.inc(broadcast)
        if sent:
            self.positions_sent.inc(sent)
        return broadcast

    def _dispatch_event(self, event_id: str, group: list[RoutedPosition]) -> tuple[int, int]:
        """Fan out positions of one event: (how many had a subscriber here, frames sent)."""
        subs = self.by_event.get(event_id)
        if not subs:
            return 0, 0
        fences = self.fences.get(event_id)
        newest = self.newest.get(event_id)
        batch: list[_Framed] = []
        for p in group:
            device_id, ts = p.device_id, p.ts
            if fences is not None:
                fence = fences.get(device_id)
                if fence is not None and ts <= fence:
                    continue  # older than what a correction already settled: stale
            if newest is not None and ts > newest.get(device_id, ""):
                newest[device_id] = ts
            data = frames.position_frame(p).encode()
            batch.append((device_id, ts, data, frames.websocket_text(data)))  # framed once for every fan
        if not batch:
            return len(group), 0
        joined = batch[0][3] if len(batch) == 1 else b"".join(item[3] for item in batch)
        sent = 0
        for sub in list(subs):
            sent += sub.deliver_many(batch, joined)
        return len(group), sent

    # -- falling behind (docs/processor.md section 5, "Falling behind") ---------------------------------

    def shed_behind(self, published: float) -> int:
        """This instance is dispatching a message published at ``published`` (Unix seconds) later than its bound:
        close with 1013 every fan with a subscription older than that message (who is being shown the past), so
        it reconnects to a fresh snapshot; a subscription begun after it was published has the message's
        positions in its snapshot already. Return how many fans were closed."""
        shed: set[Client] = set()
        for subs in self.by_event.values():
            for sub in subs:
                if sub.since < published and not sub.client.closed:
                    shed.add(sub.client)
        for client in shed:
            client.shut(1013, CLOSE_BEHIND)
        if shed:
            self.metrics.live_behind_disconnects.inc(len(shed))
            logger.warning("fell behind the live channel: closed %d fan(s) with 1013 to reconnect", len(shed))
        return len(shed)

    # -- corrections (docs/processor.md section 4, "Corrections") ----------------------------------------

    def watched_events(self) -> list[str]:
        """Events with at least one subscriber on this instance."""
        return list(self.by_event)

    def correct(self, event_id: str, device_id: str, position: RoutedPosition | None, horizon: str | None) -> int:
        """Tell the fans of ``event_id`` where ``device_id`` belongs now: ``position`` (its latest sound position)
        or gone from the map (``None``). ``horizon`` is the newest ``ts`` of the device the correction's query could
        see (``None``: no position at all). Return how many subscriptions it was queued or buffered for.

        Ordering with live positions: a live position newer than ``horizon`` already dispatched was invisible to
        the query, so the fans already see something newer and the correction is dropped; otherwise it is queued
        behind everything dispatched so far, and the fence stops any live position not newer than ``horizon``
        (already known to the query, possibly the very one just flagged) from arriving after it."""
        subs = self.by_event.get(event_id)
        if not subs:
            return 0
        newest = self.newest.setdefault(event_id, {})
        if newest.get(device_id, "") > (horizon or ""):
            return 0
        fences = self.fences.setdefault(event_id, {})
        known = device_id in newest or device_id in fences
        if horizon is not None and horizon > fences.get(device_id, ""):
            fences[device_id] = horizon
        frame = frames.correction(event_id, device_id, position)
        count = 0
        for sub in list(subs):
            if sub.correct(device_id, horizon, frame, position is None, known):
                count += 1
        self.corrections_sent.inc(count)
        return count


def render_snapshot(event_id: str, snapshot: list[RoutedPosition]) -> tuple[bytes, Mapping[str, str]]:
    """The encoded ``subscribed`` frame and the boundary's watermarks of one snapshot: computed once per query,
    shared by every subscriber it serves."""
    return frames.subscribed(event_id, snapshot).encode(), watermarks([(p.device_id, p.ts) for p in snapshot])
