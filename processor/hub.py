"""Fan-out of live positions to WebSocket clients: who is subscribed to what, and what each of them is sent.

The writing itself is :class:`processor.client.Client`'s (a bounded queue per client, direct writes while its
socket is not backed up, 1013 for a slow consumer). Each position frame is rendered and encoded once per message,
whatever the number of subscribers, the positions of one event in a message reach each subscriber in one write,
and metrics are counted once per dispatch. The boundary is judged once per batch for all the subscriptions that
share a snapshot's watermarks, and what it admits is joined once for them: per fan, only the write is left.

The snapshot/live boundary of each subscription is a :class:`processor.boundary.Boundary`; this module applies
its verdicts. When the instance itself falls behind the live channel past its bound, :meth:`Hub.shed_behind`
closes the fans who would otherwise see stale positions, so that they come back to a fresh snapshot.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping

from . import protocol
from .boundary import Boundary, Held, HeldCorrection, admitted, watermarks
from .client import Client
from .metrics import Metrics
from .routing import RoutedPosition
from .websocket_framing import websocket_text

__all__ = ["CLOSE_BEHIND", "Hub", "Subscription", "Watched", "render_snapshot"]

logger = logging.getLogger("processor.hub")

#: Fan-out yields to the event loop at least every this many positions so that fast clients' writers
#: drain between chunks of a large batch instead of overflowing their queues.
YIELD_EVERY = 64

#: The reason sent with 1013 to fans shed because this instance fell behind the live channel.
CLOSE_BEHIND = "live map fell behind, reconnect"


#: The subscriptions of a client that has none (never written to).
_NONE: Mapping[str, Subscription] = {}

#: One position ready to send: ``(device_id, ts, encoded text, WebSocket frame)``.
_Framed = tuple[str, str, bytes, bytes]


class Subscription(Boundary[bytes, str]):
    """One (client, event) pair: its boundary (held: positions' encoded bytes, corrections' text), and since when
    (wall clock) it has been holding for a snapshot.

    It *is* its boundary (a subclass, not a field) so that the fan-out reads one object per fan, not two: with
    hundreds of fans per event, each fan's objects are out of the CPU's caches by the time a batch reaches it."""

    __slots__ = ("active", "client", "event_id", "since")

    def __init__(self, client: Client, event_id: str) -> None:
        super().__init__()
        self.client = client
        self.event_id = event_id
        self.active = False  # counted in processor_subscriptions
        self.since = time.time()

    @property
    def boundary(self) -> Boundary[bytes, str]:
        """The snapshot/live boundary: the subscription itself."""
        return self

    def deliver(self, device_id: str, ts: str, data: bytes) -> bool:
        """One encoded position frame (a held one, replayed): :meth:`deliver_many` of one; True if it was sent."""
        wire = websocket_text(data)
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


class Watched:
    """One event with subscribers on this instance: its subscriptions and, per device, the newest ``ts`` dispatched
    live and the fence a correction set (live positions not newer than it are stale). Kept only while the event
    has subscribers."""

    __slots__ = ("fences", "newest", "subs")

    def __init__(self) -> None:
        self.subs: set[Subscription] = set()
        self.newest: dict[str, str] = {}
        self.fences: dict[str, str] = {}


class Hub:
    """Registry of subscriptions by event, and the fan-out of live positions."""

    def __init__(self, metrics: Metrics, client_queue: int = 1024) -> None:
        self.metrics = metrics
        #: The events with at least one subscriber on this instance.
        self.events: dict[str, Watched] = {}
        #: The subscriptions of each client, by event (a client with none has no entry).
        self.clients: dict[Client, dict[str, Subscription]] = {}
        self.corrections_sent = metrics.corrections_sent
        self.positions_sent = metrics.frames_sent.labels("position")
        self.yield_every = max(1, min(YIELD_EVERY, client_queue // 4))

    # -- subscriptions ---------------------------------------------------------------------------------

    def subscriptions(self, client: Client) -> Mapping[str, Subscription]:
        """The subscriptions of ``client``, by event (read-only)."""
        return self.clients.get(client, _NONE)

    def begin(self, client: Client, event_id: str) -> Subscription:
        """Start holding live positions for ``event_id``; call before the snapshot query."""
        subs = self.clients.get(client)
        sub = subs.get(event_id) if subs is not None else None
        if sub is None:
            sub = Subscription(client, event_id)
            if subs is None:
                subs = self.clients[client] = {}
            subs[event_id] = sub
            watched = self.events.get(event_id)
            if watched is None:
                watched = self.events[event_id] = Watched()
            watched.subs.add(sub)
        else:  # re-subscribe: a fresh snapshot and a fresh boundary
            sub.boundary.restart()
            sub.since = time.time()
        return sub

    def complete(self, sub: Subscription, snapshot: list[RoutedPosition], frame: bytes | None = None,
                 watermark: Mapping[str, str] | None = None, wire: bytes | None = None) -> None:
        """Queue ``subscribed`` with the snapshot, then the held positions newer than it. Subscribers served by
        the same query pass the same encoded ``frame``, ``watermark`` and framed ``wire`` (see
        :func:`render_snapshot`)."""
        if self.clients.get(sub.client, _NONE).get(sub.event_id) is not sub:
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

    def _replay(self, sub: Subscription, held: list[Held[bytes, str]]) -> None:
        """Deliver what waited for the snapshot, in arrival order, by the rules of each kind."""
        sent = 0
        for item in held:
            if isinstance(item, HeldCorrection):
                sub.correct(item.device_id, item.horizon, item.item, item.only_if_shown, False)
            elif sub.deliver(item.device_id, item.ts, item.item):
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
        sub = self.clients.get(client, _NONE).get(event_id)
        if sub is None:
            return False
        self._discard(sub)
        return True

    def remove_client(self, client: Client) -> None:
        for sub in list(self.clients.get(client, _NONE).values()):
            self._discard(sub)
        client.stop()

    def _discard(self, sub: Subscription) -> None:
        subs = self.clients.get(sub.client)
        if subs is not None:
            subs.pop(sub.event_id, None)
            if not subs:
                del self.clients[sub.client]
        watched = self.events.get(sub.event_id)
        if watched is not None:
            watched.subs.discard(sub)
            if not watched.subs:
                del self.events[sub.event_id]
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
        watched = self.events.get(event_id)
        if watched is None:
            return 0, 0
        fences = watched.fences  # empty until a correction sets one
        newest = watched.newest
        batch: list[_Framed] = []
        for p in group:
            device_id, ts = p.device_id, p.ts
            if fences:
                fence = fences.get(device_id)
                if fence is not None and ts <= fence:
                    continue  # older than what a correction already settled: stale
            if ts > newest.get(device_id, ""):
                newest[device_id] = ts
            data = protocol.position_frame(p).encode()
            batch.append((device_id, ts, data, websocket_text(data)))  # framed once for every fan
        if not batch:
            return len(group), 0
        return len(group), self._deliver(watched, batch)

    @staticmethod
    def _deliver(watched: Watched, batch: list[_Framed]) -> int:
        """Hand a framed batch of one event to each of its subscriptions: the frames sent.

        The same as :meth:`Subscription.deliver_many` for each, with the per-fan work taken out: what a boundary
        admits depends only on its watermarks, which the subscriptions served by one snapshot query share, so it
        is judged once per batch per watermarks (not per fan and position), and the admitted frames are joined
        once for all the fans sharing them. Per fan what is left is the write."""
        items = [item[2] for item in batch]
        joined = batch[0][3] if len(batch) == 1 else b"".join(item[3] for item in batch)
        plans: dict[int, tuple[Mapping[str, str], list[bytes], bytes]] = {}
        mark: Mapping[str, str] | None = None
        data: list[bytes] = items
        wire = joined
        sent = 0
        for sub in tuple(watched.subs):
            if sub.held is not None:  # the snapshot is still loading: held, one by one
                sub.deliver_many(batch, joined)
                continue
            if sub.watermark is not mark:
                mark = sub.watermark
                if not mark:  # an empty snapshot: everything passes
                    data, wire = items, joined
                else:
                    plan = plans.get(id(mark))  # the plan keeps its watermarks alive: an id is not reused
                    if plan is None:
                        passed = admitted(mark, batch)
                        if passed is batch:
                            plan = (mark, items, joined)
                        else:
                            plan = (mark, [item[2] for item in passed], b"".join(item[3] for item in passed))
                        plans[id(mark)] = plan
                    data, wire = plan[1], plan[2]
            if data:
                sent += sub.client.put_many(data, wire)
        return sent

    # -- falling behind (docs/processor.md section 5, "Falling behind") ---------------------------------

    def shed_behind(self, published: float) -> int:
        """This instance is dispatching a message published at ``published`` (Unix seconds) later than its bound:
        close with 1013 every fan with a subscription older than that message (who is being shown the past), so
        it reconnects to a fresh snapshot; a subscription begun after it was published has the message's
        positions in its snapshot already. Return how many fans were closed."""
        shed: set[Client] = set()
        for watched in self.events.values():
            for sub in watched.subs:
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
        return list(self.events)

    def correct(self, event_id: str, device_id: str, position: RoutedPosition | None, horizon: str | None) -> int:
        """Tell the fans of ``event_id`` where ``device_id`` belongs now: ``position`` (its latest sound position)
        or gone from the map (``None``). ``horizon`` is the newest ``ts`` of the device the correction's query could
        see (``None``: no position at all). Return how many subscriptions it was queued or buffered for.

        Ordering with live positions: a live position newer than ``horizon`` already dispatched was invisible to
        the query, so the fans already see something newer and the correction is dropped; otherwise it is queued
        behind everything dispatched so far, and the fence stops any live position not newer than ``horizon``
        (already known to the query, possibly the very one just flagged) from arriving after it."""
        watched = self.events.get(event_id)
        if watched is None:
            return 0
        newest, fences = watched.newest, watched.fences
        if newest.get(device_id, "") > (horizon or ""):
            return 0
        known = device_id in newest or device_id in fences
        if horizon is not None and horizon > fences.get(device_id, ""):
            fences[device_id] = horizon
        frame = protocol.correction(event_id, device_id, position)
        count = 0
        for sub in list(watched.subs):
            if sub.correct(device_id, horizon, frame, position is None, known):
                count += 1
        self.corrections_sent.inc(count)
        return count


def render_snapshot(event_id: str, snapshot: list[RoutedPosition]) -> tuple[bytes, Mapping[str, str]]:
    """The encoded ``subscribed`` frame and the boundary's watermarks of one snapshot: computed once per query,
    shared by every subscriber it serves."""
    return protocol.subscribed(event_id, snapshot).encode(), watermarks([(p.device_id, p.ts) for p in snapshot])
