"""The load generator (a worker process): trackers ``XADD``-ing positions in the contract's format.

Each position carries its send time (``time.time()``) in ``altitude`` so viewers can measure
XADD -> frame latency (see :mod:`bench.wsclient`). ``ts`` is ``ts_base + sequence`` milliseconds, so every
position of a run has its own ``(device_id, ts)`` and a device's positions are in ``ts`` order.
"""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime
from typing import Any

import redis.asyncio as aioredis

#: Positions of one run are stamped from here on (ms), far from any real or suite data.
TS_BASE_MS = int(datetime(2030, 1, 1, tzinfo=UTC).timestamp() * 1000)

#: How often the paced generator wakes up to send what is due.
TICK = 0.002


def render_ts_ms(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"


def entry(device_id: str, seq: int, sent: float) -> dict[str, str]:
    lat = 41.0 + (seq % 10000) * 1e-5
    lon = 19.0 + (seq % 7919) * 1e-5
    payload = (f'{{"latitude":{lat!r},"longitude":{lon!r},"altitude":{sent!r},"angle":90.0,"speed":80.0,'
               f'"satellites":11,"io":{{"1":{seq}}}}}')
    return {"ts": render_ts_ms(TS_BASE_MS + seq), "device_id": device_id, "codec": "8E", "payload": payload}


class Generator:
    def __init__(self, redis_url: str, stream: str) -> None:
        self.redis = aioredis.Redis.from_url(redis_url)
        self.stream = stream

    async def shutdown(self) -> None:
        await self.redis.aclose()

    async def run(self, devices: list[str], device_event: list[int], n_events: int, rate: float,
                  duration: float, seq_start: int) -> dict[str, Any]:
        """Publish ``rate`` positions/s for ``duration`` s, round-robin over ``devices``."""
        total = int(rate * duration)
        per_event = [0] * n_events
        sent = 0
        first = last = 0.0
        began = time.monotonic()
        lateness: list[float] = []
        while sent < total:
            due = min(total, int((time.monotonic() - began) * rate) + 1)
            if due > sent:
                pipe = self.redis.pipeline(transaction=False)
                now = time.time()
                first = first or now
                for k in range(sent, due):
                    device_index = k % len(devices)
                    device = devices[device_index]
                    pipe.xadd(self.stream, entry(device, seq_start + k, now))  # type: ignore[arg-type]  # redis-py's field types are invariant; str fields are what it sends
                    per_event[device_event[device_index]] += 1
                await pipe.execute()
                last = time.time()
                lateness.append(last - now)
                sent = due
            else:
                await asyncio.sleep(TICK)  # pacing
        elapsed = time.monotonic() - began
        return {"published": sent, "per_event": per_event, "first_send": first, "last_send": last,
                "seconds": elapsed, "achieved_rate": sent / elapsed if elapsed else 0.0,
                "seq_end": seq_start + sent, "ts_first_ms": TS_BASE_MS + seq_start,
                "ts_last_ms": TS_BASE_MS + seq_start + sent - 1,
                "max_pipeline_ms": 1000 * max(lateness, default=0.0)}

    async def burst(self, devices: list[str], count: int, seq_start: int, pipeline: int = 1000) -> dict[str, Any]:
        """Publish ``count`` positions as fast as Redis takes them (pipelines of ``pipeline``)."""
        began = time.time()
        sent = 0
        while sent < count:
            pipe = self.redis.pipeline(transaction=False)
            now = time.time()
            upto = min(count, sent + pipeline)
            for k in range(sent, upto):
                pipe.xadd(self.stream, entry(devices[k % len(devices)], seq_start + k, now))  # type: ignore[arg-type]  # redis-py's field types are invariant; str fields are what it sends
            await pipe.execute()
            sent = upto
        ended = time.time()
        return {"published": sent, "first_send": began, "last_send": ended, "seconds": ended - began,
                "seq_end": seq_start + sent, "ts_first_ms": TS_BASE_MS + seq_start,
                "ts_last_ms": TS_BASE_MS + seq_start + sent - 1}
