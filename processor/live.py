"""Reader of the ``<stream>:live`` pub/sub channel: one per instance, feeding the local hub."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from .backoff import Backoff
from .hub import Hub


__all__ = ["LiveReader"]

logger = logging.getLogger("processor.live")


class LiveReader:
    """Subscribes to the live channel and reconnects with backoff whenever Redis fails."""

    def __init__(self, redis: aioredis.Redis, channel: str, hub: Hub) -> None:
        self.redis = redis
        self.channel = channel
        self.hub = hub
        self.subscribed = False

    async def run(self) -> None:
        backoff = Backoff()
        while True:
            pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self.channel)
                self.subscribed = True
                if backoff.delay != backoff.initial:
                    logger.info("subscribed to %s again", self.channel)
                backoff.reset()
                while True:
                    message = await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)
                    if message is not None and message.get("type") == "message":
                        await self.hub.dispatch_message(message["data"])
            except asyncio.CancelledError:
                raise
            except Exception as exc:
                self.subscribed = False
                delay = backoff.next()
                logger.warning("live channel %s: %s: %s; retrying in %.1f s", self.channel, type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
            finally:
                self.subscribed = False
                try:
                    await asyncio.wait_for(pubsub.aclose(), 1.0)
                except Exception as exc:  # the connection is already broken; the next round reconnects
                    logger.debug("closing the live subscription: %s", exc)
