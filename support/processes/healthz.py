"""A Processor's ``/healthz`` (docs/processor.md, "Health"): one probe, and a wait for the state a step expects."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import aiohttp

from ..clock import PROBE, within
from ..waiting import eventually

#: What ``/healthz`` answered: its HTTP status and JSON body.
Health = tuple[int, dict[str, Any]]


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
