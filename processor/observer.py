"""The stream's backlog as metrics, polled apart from ingestion: a slow ``XINFO GROUPS`` never delays a batch,
and a stalled batch never freezes the gauges that would show it."""

from __future__ import annotations

import asyncio
import logging

import redis.asyncio as aioredis

from .metrics import Metrics

__all__ = ["StreamObserver"]

logger = logging.getLogger("processor.observer")


class StreamObserver:
    """Refreshes ``processor_stream_lag`` and ``processor_stream_pending`` from ``XINFO GROUPS``."""

    def __init__(self, redis: aioredis.Redis, stream: str, group: str, metrics: Metrics) -> None:
        self.redis = redis
        self.stream = stream
        self.group = group
        self.metrics = metrics

    async def poll(self) -> None:
        """One reading of the group's lag and pending count (Redis errors propagate)."""
        group = self.group.encode()
        for info in await self.redis.xinfo_groups(self.stream):
            name = info.get("name")
            if name == group or name == self.group:
                lag = info.get("lag")
                if lag is not None:
                    self.metrics.stream_lag.set(lag)
                self.metrics.stream_pending.set(info.get("pending") or 0)

    async def run(self, interval: float = 1.0) -> None:
        while True:
            try:
                await self.poll()
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis down or the stream not created yet: /healthz reports the outage
                logger.debug("XINFO GROUPS failed: %s", exc)
            await asyncio.sleep(interval)
