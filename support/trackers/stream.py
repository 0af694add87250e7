"""The telemetry stream seen from outside the Processor: what its consumer group still owes, what was set aside.

Counts come from Redis itself (``XPENDING``, ``XRANGE`` on ``<stream>:dead``), never from the Processor's own
report of its work (docs/processor.md, sections 3 and 5).
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import cast

import redis.asyncio as aioredis

from .publisher import TelemetryPublisher


def _text(value: bytes | str | int) -> str:
    return value.decode("utf-8", "replace") if isinstance(value, bytes) else str(value)


@dataclass(frozen=True)
class Pending:
    """A consumer group's pending entries list: delivered to a consumer, not acknowledged yet."""

    total: int
    by_consumer: dict[str, int]

    def of(self, consumer: str) -> int:
        return self.by_consumer.get(consumer, 0)


@dataclass(frozen=True)
class DeadLetter:
    """One entry of ``<stream>:dead``: the original fields plus ``reason``, ``detail`` and ``source_id``."""

    entry_id: str
    fields: dict[str, str]

    @property
    def source_id(self) -> str | None:
        return self.fields.get("source_id")

    @property
    def reason(self) -> str | None:
        return self.fields.get("reason")


def dead_letter_stream(stream: str) -> str:
    """The dead-letter stream of ``stream``, as the contract names it."""
    return f"{stream}:dead"


async def pending(redis: aioredis.Redis, stream: str, group: str) -> Pending:
    """``XPENDING <stream> <group>`` (summary form); raises ``ResponseError`` (NOGROUP) for an unknown group."""
    summary = await redis.xpending(stream, group)
    consumers = {_text(item["name"]): int(item["pending"]) for item in summary.get("consumers") or []}
    return Pending(int(summary.get("pending") or 0), consumers)



async def pending_ids(redis: aioredis.Redis, stream: str, group: str, consumer: str | None = None,
                      count: int = 10_000) -> list[str]:
    """The entry ids ``group`` (or only its ``consumer``) still owes (``XPENDING`` in its extended form), oldest
    first."""
    entries = await redis.xpending_range(stream, group, min="-", max="+", count=count, consumername=consumer)
    return [_text(entry["message_id"]) for entry in entries]


async def dead_letters(redis: aioredis.Redis, stream: str, source_ids: Collection[str]) -> list[DeadLetter]:
    """The dead letters of ``stream`` whose ``source_id`` is one of ``source_ids``, in the order they were added.

    The dead-letter stream may be shared with other scenarios (the run's main stream), hence the filter.
    """
    wanted = set(source_ids)
    letters = []
    entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", await redis.xrange(dead_letter_stream(stream)))
    for entry_id, fields in entries:
        letter = DeadLetter(_text(entry_id), {_text(k): _text(v) for k, v in fields.items()})
        if letter.source_id in wanted:
            letters.append(letter)
    return letters


async def delete_dead_letters(redis: aioredis.Redis, stream: str, letters: Sequence[DeadLetter]) -> None:
    """Remove a scenario's own dead letters from a shared dead-letter stream."""
    if letters:
        await redis.xdel(dead_letter_stream(stream), *(letter.entry_id for letter in letters))


async def publish_burst(publisher: TelemetryPublisher, entries: Sequence[dict[str, str]], *,
                        together: bool = False) -> list[str]:
    """``XADD`` every entry in one pipelined round trip, as a busy producer would; return the entry ids in order.

    ``together``: in one MULTI/EXEC transaction, so that a consumer blocked on the stream is woken only once
    all of them are there and reads them in one batch (a plain pipeline may wake it after the first)."""
    async with publisher.redis.pipeline(transaction=together) as pipe:
        for fields in entries:
            pipe.xadd(publisher.stream, fields)  # type: ignore[arg-type]  # redis-py's field types are invariant; str fields are what it sends
        return [_text(entry_id) for entry_id in await pipe.execute()]


async def delete_keys(redis: aioredis.Redis, prefix: str) -> int:
    """Delete every key that starts with ``prefix`` (a scenario's private stream, its dead letters, ...)."""
    keys = [key async for key in redis.scan_iter(match=f"{prefix}*")]
    if keys:
        await redis.delete(*keys)
    return len(keys)
