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
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable

import redis.asyncio as aioredis

from . import live_channel
from .backoff import Backoff
from .hub import Hub
from .metrics import Metrics

__all__ = ["LiveReader"]

logger = logging.getLogger("processor.live")


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
                        await self.handle(message["data"])
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

    async def handle(self, data: bytes | str) -> None:
        """Check one live-channel message for lag and gaps, then fan it out."""
        try:
            message = live_channel.parse(data)
        except live_channel.BadLiveMessage as exc:
            logger.warning("ignoring malformed live message: %s", exc)
            return
        if message.publisher == self.own:
            return  # dispatched to this instance's fans by the ingest loop, right after its commit
        lag = self.clock() - message.published
        self.metrics.live_dispatch_lag.set(max(0.0, lag))
        missing = self.sequences.observe(message.publisher, message.seq)
        if missing:
            self._lost(f"{missing} message(s) of publisher {message.publisher} never arrived")
        if lag > self.lag_limit:
            self.hub.shed_behind(message.published)
        if not self.hub.events:
            return  # nobody watches anything through this instance: no need to decode the positions
        try:
            positions = message.positions()
        except live_channel.BadLiveMessage as exc:
            logger.warning("ignoring malformed live message: %s", exc)
            return
        await self.hub.dispatch(positions)

    def _lost(self, why: str) -> None:
        """Messages were lost: count it and have every open map resynchronised."""
        self.metrics.live_gaps.inc()
        logger.warning("live positions were lost (%s): resynchronising every open map", why)
        if self.resync is not None:
            self.resync()
