"""Background probes of Redis and PostgreSQL, so ``/healthz`` answers instantly from recent facts."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any

import redis.asyncio as aioredis

from .store import Store

__all__ = ["Health"]

logger = logging.getLogger("processor.health")


class Health:
    """Probes both dependencies every ``interval`` seconds with short timeouts."""

    def __init__(
        self, redis: aioredis.Redis, store: Store, consumer_running: Callable[[], bool],
        *, interval: float = 1.0, timeout: float = 1.0,
    ) -> None:
        self.redis = redis
        self.store = store
        self.consumer_running = consumer_running
        self.interval = interval
        self.timeout = timeout
        self.redis_up = False
        self.postgres_up = False

    async def _probe_redis(self) -> bool:
        try:
            await asyncio.wait_for(self.redis.ping(), self.timeout)
            return True
        except asyncio.CancelledError:
            raise
        except Exception:
            return False

    async def _probe_postgres(self) -> bool:
        try:
            await asyncio.wait_for(self.store.ping(self.timeout), self.timeout)
            return True
        except asyncio.CancelledError:
            raise
        except Exception:
            return False

    async def probe(self) -> None:
        redis_up, postgres_up = await asyncio.gather(self._probe_redis(), self._probe_postgres())
        for name, before, after in (("redis", self.redis_up, redis_up), ("postgres", self.postgres_up, postgres_up)):
            if before != after:
                logger.info("%s is %s", name, "up" if after else "down")
        self.redis_up, self.postgres_up = redis_up, postgres_up

    async def run(self) -> None:
        while True:
            await self.probe()
            await asyncio.sleep(self.interval)

    def report(self) -> tuple[bool, dict[str, Any]]:
        """``(healthy, body)`` for ``GET /healthz``."""
        consumer = self.consumer_running()
        healthy = self.redis_up and self.postgres_up and consumer
        return healthy, {
            "status": "ok" if healthy else "unavailable",
            "redis": "up" if self.redis_up else "down",
            "postgres": "up" if self.postgres_up else "down",
            "consumer": "running" if consumer else "stopped",
        }
