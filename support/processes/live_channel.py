"""The live channel between instances (docs/processor.md section 5), heard and spoken on by the suite.

Instances tell each other what they stored on the Redis channel ``<stream>:live``: two lines of JSON per message,
a header (``publisher``, ``seq``, ``published``) and the positions as arrays in the contract's field order. The
suite listens to a scenario's private channel (:meth:`LiveChannel.listen`) to check that format, and speaks on it
(:meth:`LiveChannel.say`) as an instance that does not exist: messages with a gap in their numbering, or messages
of another shape.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import redis.asyncio as aioredis

from ..clock import ANSWER, within

#: The fields of a position, in the order a live message's arrays list them (docs/processor.md section 5).
POSITION_FIELDS = ("eventId", "entryId", "deviceId", "ts", "lat", "lon", "altitude", "speed", "heading",
                   "satellites", "streamId")


def channel_of(stream: str) -> str:
    """The live channel of the instances reading ``stream``, as the contract names it."""
    return f"{stream}:live"


@dataclass(frozen=True)
class Heard:
    """One message on the channel, as it arrived (``received``: ``time.time()``, to compare with ``published``)."""

    raw: bytes
    received: float

    def header(self) -> dict[str, Any]:
        """The first line, parsed (fails with the message in view if it is not a JSON object)."""
        first = self.raw.split(b"\n", 1)[0]
        header = json.loads(first)
        assert isinstance(header, dict), f"the first line of a live message is not an object: {self.raw[:300]!r}"
        return header

    def positions(self) -> list[list[Any]]:
        """The second line, parsed: one array per position."""
        lines = self.raw.split(b"\n")
        assert len(lines) == 2, f"a live message has {len(lines)} lines, not 2: {self.raw[:300]!r}"
        items = json.loads(lines[1])
        assert isinstance(items, list) and all(isinstance(item, list) for item in items), (
            f"the second line of a live message is not a list of arrays: {lines[1][:300]!r}")
        return items


def message(publisher: str, seq: int, positions: list[list[Any]] | None = None) -> bytes:
    """A live message as an instance would send it, published now."""
    header = {"publisher": publisher, "seq": seq, "published": time.time()}
    return json.dumps(header).encode() + b"\n" + json.dumps(positions or []).encode()


class LiveChannel:
    """The suite's own connection to a scenario's live channel: what it heard, in order, and what it says."""

    def __init__(self, redis_url: str, stream: str) -> None:
        self.channel = channel_of(stream)
        self.redis = aioredis.Redis.from_url(redis_url)
        self.heard: list[Heard] = []
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None

    async def listen(self) -> None:
        """Subscribe; return once Redis has confirmed it (what is published from then on is heard)."""
        pubsub = self.redis.pubsub()
        await pubsub.subscribe(self.channel)
        confirmed = await pubsub.get_message(timeout=within(ANSWER))
        assert confirmed is not None and confirmed.get("type") == "subscribe", f"no subscription: {confirmed}"
        self._reader = asyncio.create_task(self._read(pubsub), name=f"listen-{self.channel}")

    async def _read(self, pubsub: Any) -> None:
        try:
            async for item in pubsub.listen():
                if item.get("type") == "message":
                    data = item["data"]
                    self.heard.append(Heard(data if isinstance(data, bytes) else str(data).encode(), time.time()))
                    self._arrived.set()
        finally:
            await pubsub.aclose()

    async def wait_until(self, done: Callable[[list[Heard]], bool], *, timeout: float, what: str) -> list[Heard]:
        """Return what was heard once ``done`` says it is enough; fail showing it after ``timeout`` seconds."""
        deadline = time.monotonic() + within(timeout)
        while not done(self.heard):
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                shown = "\n".join(f"  {h.raw[:300]!r}" for h in self.heard) or "  nothing"
                raise AssertionError(f"waited {timeout} s for {what} on {self.channel}; heard:\n{shown}")
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass  # deadline reached: the loop checks once more and then reports
        return list(self.heard)

    async def listeners(self) -> int:
        """How many connections subscribe to the channel now (``PUBSUB NUMSUB``), the suite's own included."""
        [(_, count)] = await self.redis.pubsub_numsub(self.channel)
        return int(count)

    async def say(self, raw: bytes) -> int:
        """Publish ``raw`` on the channel; return how many subscribers Redis delivered it to."""
        return int(await self.redis.publish(self.channel, raw))

    async def close(self) -> None:
        if self._reader is not None:
            self._reader.cancel()
            await asyncio.gather(self._reader, return_exceptions=True)
        await self.redis.aclose()
