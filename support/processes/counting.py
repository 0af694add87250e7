"""What a service has counted at the moment another instance receives its positions: the suite listens on the
service's live channel (``<stream>:live``, docs/processor.md section 1) like another instance would, and scrapes
the service's ``/metrics`` as soon as the first message arrives (support/processes/publish_hold.py keeps the service
waiting meanwhile)."""

from __future__ import annotations

import asyncio
import contextlib

import aiohttp
import redis.asyncio as aioredis

from ..clock import within
from .scrape import MetricsSnapshot, scrape


class ChannelListener:
    """Subscribed to one live channel; :meth:`counted_at_first_message` is what the service showed then."""

    def __init__(self, redis: aioredis.Redis, channel: str, base_url: str, http: aiohttp.ClientSession) -> None:
        self._pubsub = redis.pubsub()
        self._channel = channel
        self._base_url = base_url
        self._http = http
        self._task: asyncio.Task[MetricsSnapshot] | None = None

    async def start(self) -> None:
        """Subscribe (confirmed by Redis before this returns), then wait for the first message in the background."""
        await self._pubsub.subscribe(self._channel)
        self._task = asyncio.create_task(self._first_message(), name="live-channel-listener")

    async def _first_message(self) -> MetricsSnapshot:
        async for message in self._pubsub.listen():
            if message.get("type") == "message":
                return await scrape(self._base_url, self._http)  # at once: the service is kept waiting meanwhile
        raise AssertionError(f"the subscription to {self._channel} ended without a message")

    async def counted_at_first_message(self, timeout: float) -> MetricsSnapshot:
        """Wait up to ``timeout`` seconds (scaled: support/clock.py) for the first message's scrape."""
        assert self._task is not None, "the listener was not started"
        return await asyncio.wait_for(asyncio.shield(self._task), within(timeout))

    async def close(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(BaseException):
                await self._task
        await self._pubsub.reset()  # aclose() is reset() under a name redis-py leaves untyped
