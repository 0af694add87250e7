"""A Processor's ``/healthz`` (docs/processor.md, "Health"): one probe, a wait for the state a step expects, and the
wait for the main Processor to be healthy again after a scenario broke a service."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import aiohttp

from ..clock import PROBE, STEP, within
from ..run.suite import Suite
from ..waiting import eventually

#: What ``/healthz`` answered: its HTTP status and JSON body.
Health = tuple[int, dict[str, Any]]
#: The body of a healthy ``/healthz`` (docs/processor.md section 2); only these keys are compared, so an
#: implementation may add its own (a version, say).
HEALTHY = {"status": "ok", "redis": "up", "postgres": "up", "consumer": "running"}


def says(body: dict[str, Any], wanted: dict[str, str]) -> bool:
    """Whether ``body`` has every key of ``wanted`` with that value (other keys are the implementation's own)."""
    return all(body.get(key) == value for key, value in wanted.items())


def healthy(status: int, body: dict[str, Any]) -> bool:
    """200 with the healthy body (:data:`HEALTHY`)."""
    return status == 200 and says(body, HEALTHY)


async def health(http: aiohttp.ClientSession, base_url: str) -> Health:
    """One ``GET /healthz``, bounded by the clock's probe timeout."""
    async with http.get(f"{base_url}/healthz", timeout=aiohttp.ClientTimeout(total=within(PROBE))) as response:
        body: dict[str, Any] = await response.json(content_type=None)
        return response.status, body


async def wait_for_health(http: aiohttp.ClientSession, base_url: str, wanted: Callable[[int, dict[str, Any]], bool],
                          *, timeout: float, what: str) -> Health:
    """Probe ``/healthz`` until ``wanted(status, body)``; fail with the last answer when the deadline passes."""

    async def probe() -> tuple[bool, Health]:
        status, body = await health(http, base_url)
        return wanted(status, body), (status, body)

    return await eventually(probe, timeout=timeout, what=what)


async def main_processor_healthy(suite: Suite, timeout: float = STEP) -> float:
    """Wait for the main Processor's ``/healthz`` 200 and for the suite's own database and Redis connections to work
    again (after a scenario stopped a service); return how long it took."""
    assert suite.http is not None and suite.db is not None and suite.publisher is not None
    http, db, redis = suite.http, suite.db, suite.publisher.redis
    began = time.monotonic()

    await wait_for_health(http, suite.processor.base_url, healthy,
                          timeout=timeout, what=f"the main Processor to be healthy again: 200 with {HEALTHY}")

    async def suite_db() -> tuple[bool, str]:
        await db.positions_of_devices([])
        return True, "ok"

    await eventually(suite_db, timeout=timeout, what="the suite's database connection to work again")

    async def suite_redis() -> tuple[bool, str]:
        await redis.ping()
        return True, "ok"

    await eventually(suite_redis, timeout=timeout, what="the suite's Redis connection to work again")
    return time.monotonic() - began
