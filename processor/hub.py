"""Fan-out of live positions to WebSocket clients, and the snapshot/live boundary.

Each client has one bounded queue drained by one writer task, so a slow client only ever delays itself:
when its queue is full it is closed with 1013. Each position frame is rendered once per message,
whatever the number of subscribers.

A subscription buffers live positions from *before* its snapshot query starts; once the snapshot is
queued, buffered and later positions go out unless their ``ts`` is not newer than the snapshot's position
for the same device. Since positions are published only after they are committed, each position reaches
a new subscriber exactly once: in the snapshot or live.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections import deque
from collections.abc import Iterable
from typing import Any, Protocol

from websockets.asyncio.server import broadcast

from . import frames
from .metrics import Metrics


__all__ = ["Hub", "Client", "Subscription", "Connection"]

logger = logging.getLogger("processor.hub")

#: Fan-out yields to the event loop at least every this many positions so that fast clients' writers
#: drain between chunks of a large batch instead of overflowing their queues.
YIELD_EVERY = 64

#: A client whose socket holds less than this many unsent bytes, and nothing queued, is written to at once
#: (what ``websockets.broadcast`` does) instead of through its writer task: a profile of 1,000 viewers showed
#: 63 % of the CPU in per-frame writer-task wake-ups. Above it, frames queue and the 1013 rule applies.
DIRECT_WRITE_LIMIT = 64 * 1024


class Connection(Protocol):
    """What the hub needs from a WebSocket connection (``websockets`` ServerConnection or a fake)."""

    async def send(self, message: str) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class Client:
    """The outbound side of one connection: a bounded frame queue and its writer task."""

    def __init__(self, connection: Connection, limit: int, metrics: Metrics, name: str = "") -> None:
        self.connection = connection
        self.limit = limit
        self.metrics = metrics
        self.name = name
        self.queue: deque[str | _Close] = deque()
        self.subscriptions: dict[str, Subscription] = {}
        self.closed = False
        self._ready = asyncio.Event()
        self._writing = False
        self._sent = {kind: metrics.frames_sent.labels(kind)
                      for kind in ("subscribed", "position", "unsubscribed", "error", "correction")}
        self.writer = asyncio.create_task(self._write(), name=f"writer-{name}")

    def send(self, frame: str, kind: str) -> bool:
        """Queue a frame; close the client with 1013 if its queue is full. False if not queued."""
        if self.closed:
            return False
        if not self.queue and not self._writing and self._write_now(frame):
            self._sent[kind].inc()
            return True
        if len(self.queue) >= self.limit:
            self.overflow()
            return False
        self.queue.append(frame)
        self._sent[kind].inc()
        self._ready.set()
        return True

    def _write_now(self, frame: str) -> bool:
        """Write without the writer task when the socket is not backed up; False: queue it instead."""
        transport = getattr(self.connection, "transport", None)
        if transport is None or transport.get_write_buffer_size() >= DIRECT_WRITE_LIMIT:
            return False
        broadcast([self.connection], frame)  # type: ignore[list-item]
        return True

    def close_after_flush(self, code: int, reason: str) -> None:
        """Close once the frames already queued are written (e.g. an error frame, then 1008)."""
        if not self.closed:
            self.queue.append(_Close(code, reason))
            self._ready.set()

    def overflow(self) -> None:
        """Slow consumer: drop everything queued and close with 1013."""
        if self.closed:
            return
        self.closed = True
        self.queue.clear()
        self.metrics.slow_consumers.inc()
        logger.info("client %s is too slow (%d frames queued): closing with 1013", self.name, self.limit)
        self.writer.cancel()
        asyncio.create_task(self._close(1013, "slow consumer"))

    async def _close(self, code: int, reason: str) -> None:
        try:
            await self.connection.close(code, reason)
        except Exception as exc:  # the connection may already be gone
            logger.debug("close %s: %s", self.name, exc)

    async def _write(self) -> None:
        try:
            while True:
                while not self.queue:
                    self._ready.clear()
                    await self._ready.wait()
                item = self.queue.popleft()
                if isinstance(item, _Close):
                    self.closed = True
                    self.queue.clear()
                    await self._close(item.code, item.reason)
                    return
                self._writing = True
                try:
                    await self.connection.send(item)
                finally:
                    self._writing = False
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # ConnectionClosed and friends: the handler cleans up
            logger.debug("writer %s stopped: %s", self.name, exc)
            self.closed = True
            self.queue.clear()

    def stop(self) -> None:
        self.closed = True
        self.queue.clear()
        self.writer.cancel()


class _Correction:
    """A correction that reached a subscription still waiting for its snapshot: judged once the snapshot is out."""

    __slots__ = ("device_id", "horizon", "frame", "only_if_shown")

    def __init__(self, device_id: str, horizon: str | None, frame: str, only_if_shown: bool) -> None:
        self.device_id = device_id
        self.horizon = horizon
        self.frame = frame
        self.only_if_shown = only_if_shown  # a "gone" for a device no live frame or correction mentioned yet


class Subscription:
    """One (client, event) pair; buffering until its snapshot is queued, then live."""

    __slots__ = ("client", "event_id", "buffer", "watermark", "active")

    def __init__(self, client: Client, event_id: str) -> None:
        self.client = client
        self.event_id = event_id
        self.buffer: list[tuple[str, str, str] | _Correction] | None = []
        self.watermark: dict[str, str] = {}
        self.active = False  # counted in processor_subscriptions

    def deliver(self, device_id: str, ts: str, frame: str) -> None:
        if self.buffer is not None:
            if len(self.buffer) >= self.client.limit:
                self.client.overflow()
                return
            self.buffer.append((device_id, ts, frame))
            return
        mark = self.watermark.get(device_id)
        if mark is not None and ts <= mark:  # fixed-width UTC strings compare like instants
            return
        self.client.send(frame, "position")

    def correct(self, device_id: str, horizon: str | None, frame: str, gone: bool, known: bool) -> bool:
        """Send a ``correction`` unless this fan's snapshot is newer than what the correction's query saw, or it
        says "gone" of a device this fan never had. While buffering, it waits in line with the live positions."""
        if self.buffer is not None:
            self.buffer.append(_Correction(device_id, horizon, frame, gone and not known))
            return True
        mark = self.watermark.get(device_id)
        if mark is not None and mark > (horizon or ""):
            return False  # the snapshot was read after the correction's query: it already says more
        if gone and not known and mark is None:
            return False  # never on this fan's map: nothing to take off
        return self.client.send(frame, "correction")


class Hub:
    """Registry of subscriptions by event, and the fan-out of live-channel messages."""

    def __init__(self, metrics: Metrics, client_queue: int = 1024) -> None:
        self.metrics = metrics
        self.by_event: dict[str, set[Subscription]] = {}
        #: Per watched event and device: the newest ``ts`` dispatched live, and the fence a correction set
        #: (live positions not newer than it are stale). Only kept while the event has subscribers.
        self.newest: dict[str, dict[str, str]] = {}
        self.fences: dict[str, dict[str, str]] = {}
        self.corrections_sent = metrics.corrections_sent
        self.yield_every = max(1, min(YIELD_EVERY, client_queue // 4))

    # -- subscriptions ---------------------------------------------------------------------------------

    def begin(self, client: Client, event_id: str) -> Subscription:
        """Start buffering live positions for ``event_id``; call before the snapshot query."""
        sub = client.subscriptions.get(event_id)
        if sub is None:
            sub = Subscription(client, event_id)
            client.subscriptions[event_id] = sub
            self.by_event.setdefault(event_id, set()).add(sub)
            self.newest.setdefault(event_id, {})
        else:  # re-subscribe: a fresh snapshot and a fresh boundary
            sub.buffer = []
        return sub

    def complete(self, sub: Subscription, snapshot: list[dict[str, Any]]) -> None:
        """Queue ``subscribed`` with the snapshot, then the buffered positions newer than it."""
        if sub.client.subscriptions.get(sub.event_id) is not sub:
            return  # the client went away meanwhile
        sub.watermark = {}
        for item in snapshot:
            mark = sub.watermark.get(item["deviceId"])
            if mark is None or item["ts"] > mark:
                sub.watermark[item["deviceId"]] = item["ts"]
        buffered, sub.buffer = sub.buffer or [], None
        if not sub.active:
            sub.active = True
            self.metrics.subscriptions.inc()
        sub.client.send(frames.subscribed(sub.event_id, snapshot), "subscribed")
        self._replay(sub, buffered)

    @staticmethod
    def _replay(sub: Subscription, buffered: list[tuple[str, str, str] | _Correction]) -> None:
        """Deliver what waited for the snapshot, in arrival order, by the rules of each kind."""
        for item in buffered:
            if isinstance(item, _Correction):
                sub.correct(item.device_id, item.horizon, item.frame, item.only_if_shown, False)
            else:
                sub.deliver(*item)

    def abort(self, sub: Subscription) -> None:
        """The snapshot failed: a new subscription is not made; an existing one carries on."""
        if sub.active:
            buffered, sub.buffer = sub.buffer or [], None
            self._replay(sub, buffered)
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

    def dispatch(self, positions: Iterable[Any]) -> int:
        """Fan out ``<position>`` items to local subscribers; return how many had any."""
        count = 0
        for item in positions:
            count += self._dispatch_one(item)
        return count

    def _dispatch_one(self, item: Any) -> int:
        if not isinstance(item, dict):
            return 0
        subs = self.by_event.get(item.get("eventId"))  # type: ignore[arg-type]
        if not subs:
            return 0
        self.metrics.broadcast.inc()
        device_id, ts = item.get("deviceId"), item.get("ts")
        if not isinstance(device_id, str) or not isinstance(ts, str):
            return 1
        event_id = item["eventId"]
        fences = self.fences.get(event_id)
        if fences is not None:
            fence = fences.get(device_id)
            if fence is not None and ts <= fence:
                return 1  # older than what a correction already settled: stale
        newest = self.newest.get(event_id)
        if newest is not None and ts > newest.get(device_id, ""):
            newest[device_id] = ts
        frame = frames.position_frame(item)
        for sub in list(subs):
            sub.deliver(device_id, ts, frame)
        return 1

    async def dispatch_message(self, data: bytes | str) -> None:
        """Fan out one live-channel message, yielding now and then so writers keep draining."""
        try:
            message = json.loads(data)
            positions = message["positions"]
            if not isinstance(positions, list):
                raise TypeError("positions is not a list")
        except (ValueError, TypeError, KeyError) as exc:
            logger.warning("ignoring malformed live message: %s", exc)
            return
        for index, item in enumerate(positions, 1):
            self._dispatch_one(item)
            if index % self.yield_every == 0:
                await asyncio.sleep(0)

    # -- corrections (docs/processor.md section 4, "Corrections") ----------------------------------------

    def watched_events(self) -> list[str]:
        """Events with at least one subscriber on this instance."""
        return list(self.by_event)

    def correct(self, event_id: str, device_id: str, position: dict[str, Any] | None, horizon: str | None) -> int:
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
