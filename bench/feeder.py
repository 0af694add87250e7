"""The live feeder (a worker process): publishes batches of positions on a live channel, in the Processor's format.

This is the input of the Processor's *live job*: what every instance receives from the instance that stored a batch
(docs/processor.md section 5). Fed to the Processor (through its live reader: the feeder is just another
publisher to it) and to each peer on a channel of the peer's own, it gives every target the very same batches, so
that what differs between them is only how they fan out. The Processor's own ingest (``XADD`` → store → fan-out)
is measured apart, by :mod:`bench.generator`; a peer fed by that ingest would have its figure depend on the
Processor's storage, and a floor must not include what it is the floor of.

Pacing is :mod:`bench.generator`'s: every ``TICK`` (2 ms) the positions due go out together, as the generator's
``XADD`` pipeline of a tick would reach a Processor with a free loop: one message per tick (split at
``batch_max``, the Processor's ``PROCESSOR_READ_COUNT``). Each position carries the feeder's clock in ``altitude``
at the moment its message is built, so a viewer measures PUBLISH → frame latency the same way as XADD → frame.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from typing import Any

import redis.asyncio as aioredis

from .generator import TICK, TS_BASE_MS, render_ts_ms
from .wire import live_message


class Feeder:
    def __init__(self, redis_url: str) -> None:
        self.redis = aioredis.Redis.from_url(redis_url)
        #: One publisher for the worker's life; its messages are numbered per channel, so that no receiver ever
        #: sees a gap (a gap makes the Processor resynchronise every open map).
        self.publisher = f"bench-feeder/{secrets.token_hex(4)}"
        self.seqs: dict[str, int] = {}

    async def shutdown(self) -> None:
        await self.redis.aclose()

    async def _publish(self, channel: str, positions: list[list[Any]]) -> int:
        seq = self.seqs.get(channel, 0) + 1
        self.seqs[channel] = seq
        return int(await self.redis.publish(channel, live_message(self.publisher, seq, time.time(), positions)))

    async def run(self, channel: str, events: list[str], entries: list[str], devices: list[str],
                  device_event: list[int], rate: float, duration: float, seq_start: int,
                  batch_max: int = 500) -> dict[str, Any]:
        """Publish ``rate`` positions/s for ``duration`` s on ``channel``, round-robin over ``devices``
        (``entries[i]`` is the entry of ``devices[i]``, ``device_event[i]`` its index in ``events``)."""
        total = int(rate * duration)
        per_event = [0] * len(events)
        sent = messages = 0
        first = 0.0
        sizes: list[int] = []
        receivers: set[int] = set()
        began = time.monotonic()
        while sent < total:
            due = min(total, int((time.monotonic() - began) * rate) + 1)
            if due <= sent:
                await asyncio.sleep(TICK)  # pacing
                continue
            for start in range(sent, due, batch_max):
                now = time.time()
                first = first or now
                batch = []
                for k in range(start, min(due, start + batch_max)):
                    d = k % len(devices)
                    seq = seq_start + k
                    batch.append([events[device_event[d]], entries[d], devices[d], render_ts_ms(TS_BASE_MS + seq),
                                  41.0 + (seq % 10000) * 1e-5, 19.0 + (seq % 7919) * 1e-5, now, 80.0, 90.0, 11,
                                  f"{int(now * 1000)}-{k}"])
                    per_event[device_event[d]] += 1
                receivers.add(await self._publish(channel, batch))
                messages += 1
                sizes.append(len(batch))
            sent = due
        elapsed = time.monotonic() - began
        return {"published": sent, "per_event": per_event, "first_send": first, "seconds": elapsed,
                "achieved_rate": sent / elapsed if elapsed else 0.0, "seq_end": seq_start + sent,
                "ts_first_ms": TS_BASE_MS + seq_start, "ts_last_ms": TS_BASE_MS + seq_start + sent - 1,
                "messages": messages, "batch_mean": sent / messages if messages else None,
                "batch_max": max(sizes, default=0), "receivers": sorted(receivers)}

    async def probe(self, channel: str, positions: list[list[Any]]) -> int:
        """Publish one message of exactly these positions (the frames check); return how many received it."""
        return await self._publish(channel, positions)
