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
    """Redis's bytes as text; bytes that are not UTF-8 as ``surrogateescape`` does, so they compare with what a
    broken report sent (support/trackers/broken.py)."""
    return value.decode("utf-8", "surrogateescape") if isinstance(value, bytes) else str(value)


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


async def group_lag(redis: aioredis.Redis, stream: str, group: str) -> int | None:
    """``XINFO GROUPS``' ``lag`` of ``group``: entries of ``stream`` not yet delivered to it (``None``: unknown)."""
    for info in await redis.xinfo_groups(stream):
        if _text(info["name"]) == group:
            lag = info.get("lag")
            return None if lag is None else int(lag)
    raise LookupError(f"no consumer group {group!r} on {stream}")


async def group_of(redis: aioredis.Redis, stream: str, consumer: str) -> str:
    """The consumer group of ``stream`` that has a consumer called ``consumer``."""
    for info in await redis.xinfo_groups(stream):
        group = _text(info["name"])
        if any(_text(c["name"]) == consumer for c in await redis.xinfo_consumers(stream, group)):
            return group
    raise LookupError(f"no consumer group of {stream} has a consumer {consumer!r}")


@dataclass(frozen=True)
class Owed:
    """One entry a consumer group lists as pending: delivered to ``consumer``, not acknowledged."""

    entry_id: str
    group: str
    consumer: str

    def __str__(self) -> str:
        return f"{self.entry_id} (group {self.group}, consumer {self.consumer})"


async def _owed(redis: aioredis.Redis, stream: str, entry_ids: Collection[str]) -> list[Owed]:
    wanted = set(entry_ids)
    if not wanted:
        return []
    first, last = min(wanted, key=_entry_order), max(wanted, key=_entry_order)
    owed = []
    for group in await redis.xinfo_groups(stream):
        name = _text(group["name"])
        # the range holds the scenario's own entries (and whatever another scenario sent in between: filtered)
        for item in await redis.xpending_range(stream, name, min=first, max=last, count=100_000):
            if (entry_id := _text(item["message_id"])) in wanted:
                owed.append(Owed(entry_id, name, _text(item["consumer"])))
    return owed


async def pending_among(redis: aioredis.Redis, stream: str, entry_ids: Collection[str]) -> list[str]:
    """Which of ``entry_ids`` some consumer group of ``stream`` lists as pending (delivered, not acknowledged)."""
    return [str(owed) for owed in await _owed(redis, stream, entry_ids)]


async def acknowledged_among(redis: aioredis.Redis, stream: str, entry_ids: Collection[str]) -> list[str]:
    """Which of ``entry_ids`` some consumer group of ``stream`` has acknowledged: delivered to it (at or before its
    last delivered id) and no longer pending."""
    owed = {(item.entry_id, item.group) for item in await _owed(redis, stream, entry_ids)}
    acknowledged = []
    for group in await redis.xinfo_groups(stream):
        name, last = _text(group["name"]), _entry_order(_text(group["last-delivered-id"]))
        acknowledged += [f"{entry_id} (group {name})" for entry_id in entry_ids
                         if _entry_order(entry_id) <= last and (entry_id, name) not in owed]
    return acknowledged


def _entry_order(entry_id: str) -> tuple[int, int]:
    milliseconds, _, sequence = entry_id.partition("-")
    return int(milliseconds), int(sequence)


async def pending_ids(redis: aioredis.Redis, stream: str, group: str, consumer: str | None = None,
                      count: int = 10_000) -> list[str]:
    """The entry ids ``group`` (or only its ``consumer``) still owes (``XPENDING`` in its extended form), oldest
    first."""
    entries = await redis.xpending_range(stream, group, min="-", max="+", count=count, consumername=consumer)
    return [_text(entry["message_id"]) for entry in entries]


async def dead_letters(redis: aioredis.Redis, stream: str, source_ids: Collection[str]) -> list[DeadLetter]:
    """The dead letters of ``stream`` whose ``source_id`` is one of ``source_ids``, in the order they were added.

    The dead-letter stream may be shared with other scenarios (the run's main stream), hence the filter. A key
    that holds no stream (a scenario made it unusable on purpose) holds no dead letters.
    """
    wanted = set(source_ids)
    letters: list[DeadLetter] = []
    if _text(await redis.type(dead_letter_stream(stream))) not in ("stream", "none"):
        return letters
    entries = cast("list[tuple[bytes, dict[bytes, bytes]]]", await redis.xrange(dead_letter_stream(stream)))
    for entry_id, fields in entries:
        letter = DeadLetter(_text(entry_id), {_text(k): _text(v) for k, v in fields.items()})
        if letter.source_id in wanted:
            letters.append(letter)
    return letters


#: What :func:`block_dead_letters` puts where the dead-letter stream belongs.
OUT_OF_ORDER = "out of order: not a stream"


async def block_dead_letters(redis: aioredis.Redis, stream: str) -> bool:
    """Make ``<stream>:dead`` unusable: a plain string where the stream belongs, so every ``XADD`` to it fails
    (``WRONGTYPE``). False if the key already existed (then nothing changed)."""
    return bool(await redis.set(dead_letter_stream(stream), OUT_OF_ORDER, nx=True))


async def unblock_dead_letters(redis: aioredis.Redis, stream: str) -> bool:
    """Undo :func:`block_dead_letters`; False if the key no longer held its placeholder."""
    key = dead_letter_stream(stream)
    if _text(await redis.get(key) or b"") != OUT_OF_ORDER:
        return False
    return bool(await redis.delete(key))


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
