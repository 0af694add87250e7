"""Reader of the ``<stream>:live`` pub/sub channel: one per instance, feeding the local hub.

Pub/sub loses messages silently: when this instance falls too far behind, Redis drops its subscription
(``client-output-buffer-limit pubsub``), and whatever is published while it reconnects never arrives. So every
message carries its publisher, a sequence number and its publish time (docs/processor.md section 5;
:mod:`processor.live_channel` knows the format):

* the age of each message when its dispatch begins is the gauge ``processor_live_dispatch_lag_seconds``;
* a gap in a publisher's sequence, or subscribing again after a loss, is counted in ``processor_live_gaps_total``
  and every open map is resynchronised with a fresh snapshot (the lost positions are in the database);
* a message older than ``PROCESSOR_LIVE_LAG_LIMIT_MS`` closes, with 1013, the fans it would show the past to
  (:meth:`Hub.shed_behind`): they reconnect to a fresh snapshot instead of trailing minutes behind.

This instance's own messages (publisher ``own``) come back too and are skipped before any of that: their
positions were dispatched to this instance's fans by the ingest loop straight after the commit
(:mod:`processor.ingest`), never queued in pub/sub, so they can neither lag there nor be lost there.

The messages that arrived while a fan-out ran are read together and fanned out together (each fan gets an event's
positions in one write, in the messages' order), as the ingest loop does with the batches waiting for its
dispatcher: one write per fan per message made a busy instance fall further behind the busier it was. Each message
is still checked on its own, in order, and what came before a message that resyncs or sheds goes out first.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Sequence

import redis.asyncio as aioredis
from redis.asyncio.client import PubSub

from . import live_channel
from .backoff import Backoff
from .hub import Hub
from .metrics import Metrics
from .routing import RoutedPosition

__all__ = ["COALESCE_MAX", "LiveReader"]

logger = logging.getLogger("processor.live")

#: At most this many live messages already read are fanned out together (see :meth:`LiveReader.handle_many`).
COALESCE_MAX = 64


class LiveReader:
    """Subscribes to the live channel and reconnects with backoff whenever Redis fails."""

    def __init__(self, redis: aioredis.Redis, channel: str, hub: Hub, metrics: Metrics, *,
                 lag_limit: float = 5.0, resync: Callable[[], None] | None = None,
                 clock: Callable[[], float] = time.time, own: str | None = None) -> None:
        self.redis = redis
        self.channel = channel
        self.hub = hub
        self.metrics = metrics
        self.lag_limit = lag_limit
        self.resync = resync
        self.clock = clock
        self.own = own  # this instance's publisher: its messages were dispatched here already
        self.sequences = live_channel.Sequences()
        self.subscribed = False

    async def run(self) -> None:
        backoff = Backoff()
        subscribed_before = False
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            connection = None
            try:
                await pubsub.subscribe(self.channel)
                # redis-py reconnects a pub/sub connection that broke while it reads, and subscribes again by
                # itself: without this callback such a loss would go unnoticed (never counted, never resynced).
                connection = pubsub.connection
                if connection is not None:
                    connection.register_connect_callback(self._subscribed_again)
                self.subscribed = True
                if subscribed_before:
                    logger.info("subscribed to %s again", self.channel)
                    self.sequences.forget()
                    self._lost("the live channel was subscribed again after a loss")
                subscribed_before = True
                backoff.reset()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        await self._handle_ready(pubsub, message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed = False
                delay = backoff.next()
                logger.warning("live channel %s: %s: %s; retrying in %.1f s", self.channel, type(exc).__name__, exc,
                               delay)
                await asyncio.sleep(delay)
            finally:
                self.subscribed = False
                if connection is not None:
                    connection.deregister_connect_callback(self._subscribed_again)
                try:
                    await asyncio.wait_for(pubsub.aclose(), 1.0)  # type: ignore[no-untyped-call]  # redis-py leaves aclose unannotated
                except Exception as exc:  # the connection is already broken; the next round reconnects
                    logger.debug("closing the live subscription: %s", exc)

    def _subscribed_again(self, connection: object) -> None:
        """redis-py connected the subscription's connection again, after its own callback subscribed it again:
        whatever was published while the connection was down never arrived."""
        self.sequences.forget()
        self._lost("the live channel's connection was lost and subscribed again")

    async def _handle_ready(self, pubsub: PubSub, first: bytes | str) -> None:
        """Fan out ``first`` together with the messages already read behind it (at most :data:`COALESCE_MAX`):
        while a fan-out runs, the messages arriving meanwhile wait, and then go out in one write per fan instead
        of one each, so a busy instance catches up instead of falling further behind."""
        batch = [first]
        failure: Exception | None = None
        connection = pubsub.connection
        try:
            # can_read: something is buffered (or the connection is broken: get_message then raises). Asking first
            # spares a read that would wait for nothing and time out: a third of the reader's cost per message.
            while len(batch) < COALESCE_MAX and connection is not None and await connection.can_read():
                message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=0.0)  # no wait
                if message is None:
                    break
                if message.get("type") == "message":
                    batch.append(message["data"])
        except Exception as exc:  # what was read before the failure still goes out, as it would have one by one
            failure = exc
        await self.handle_many(batch)
        if failure is not None:
            raise failure

    async def handle(self, data: bytes | str) -> None:
        """Check one live-channel message for lag and gaps, then fan it out."""
        await self.handle_many([data])

    async def handle_many(self, messages: Sequence[bytes | str]) -> None:
        """Check live-channel messages for lag and gaps one by one, in order, and fan their positions out
        together (:meth:`Hub.dispatch`: each fan gets an event's positions in one write, in the messages' order).
        Before a message that resyncs or sheds fans, the positions of the messages before it go out first, as
        they would have one message at a time."""
        positions: list[RoutedPosition] = []
        for data in messages:
            try:
                message = live_channel.parse(data)
            except live_channel.BadLiveMessage as exc:
                logger.warning("ignoring malformed live message: %s", exc)
                continue
            if message.publisher == self.own:
                continue  # dispatched to this instance's fans by the ingest loop, right after its commit
            lag = self.clock() - message.published
            self.metrics.live_dispatch_lag.set(max(0.0, lag))
            missing = self.sequences.observe(message.publisher, message.seq)
            behind = lag > self.lag_limit
            if (missing or behind) and positions:
                await self.hub.dispatch(positions)
                positions = []
            if missing:
                self._lost(f"{missing} message(s) of publisher {message.publisher} never arrived")
            if behind:
                self.hub.shed_behind(message.published)
            if not self.hub.events:
                continue  # nobody watches anything through this instance: no need to decode the positions
            try:
                positions.extend(message.positions())
            except live_channel.BadLiveMessage as exc:
                logger.warning("ignoring malformed live message: %s", exc)
        if positions:
            await self.hub.dispatch(positions)

    def _lost(self, why: str) -> None:
        """Messages were lost: count it and have every open map resynchronised."""
        self.metrics.live_gaps.inc()
        logger.warning("live positions were lost (%s): resynchronising every open map", why)
        if self.resync is not None:
            self.resync()
