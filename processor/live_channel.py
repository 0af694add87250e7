"""The live channel between instances (docs/processor.md section 5): ``<stream>:live`` messages, both halves.

What the ingest loop publishes: each instance is a :class:`Publisher`, named anew at every start, whose messages
are numbered ``seq`` from 1 and carry their publish time and the routed positions of one stored batch
(:meth:`Publisher.message`). What the live reader makes of them: :func:`parse` reads the header only, so an
instance nobody watches through need not decode the positions, and :class:`Sequences` says how many messages of a
publisher went missing (pub/sub loses messages silently).
"""

from __future__ import annotations

import secrets
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import orjson

from .protocol import compile_over_positions, position_values
from .routing import RoutedPosition

__all__ = ["MAX_PUBLISHERS", "BadLiveMessage", "LiveMessage", "Publisher", "Sequences", "encode", "parse"]

#: Publishers whose last sequence number is remembered (each Processor start is a new publisher).
MAX_PUBLISHERS = 1024


class BadLiveMessage(ValueError):
    """A live-channel message that is not of the documented shape; the message says why."""


# -- the publishing half --------------------------------------------------------------------------------------


_rows: Callable[[Sequence[RoutedPosition]], list[list[object]]] = compile_over_positions(
    "_rows", "positions", "[[" + position_values("p") + "] for p in positions]",
    """The positions as arrays in :class:`RoutedPosition` field order.""")


def encode(publisher: str, seq: int, published: float, positions: Sequence[RoutedPosition]) -> bytes:
    """Encode a live-channel message: a header line (publisher, seq, published), then the positions as arrays in
    :class:`RoutedPosition` field order (compact, and decoded without a key lookup per field). Encoded by orjson
    (8 times faster than the json module here): the values are those just stored, so finite numbers and valid
    text, and what it writes any JSON parser reads back to the same values."""
    header = orjson.dumps({"publisher": publisher, "seq": seq, "published": published})
    return header + b"\n" + orjson.dumps(_rows(positions))


class Publisher:
    """This instance on the live channel: who it is (unique per start) and the number of its last message."""

    __slots__ = ("id", "seq")

    def __init__(self, consumer: str) -> None:
        self.id = f"{consumer}/{secrets.token_hex(4)}"
        self.seq = 0

    def message(self, positions: Sequence[RoutedPosition], published: float) -> bytes:
        """The next message, carrying ``positions`` published at ``published`` (Unix seconds). Numbered even if
        it never reaches Redis (a failed ``PUBLISH``): receivers then see the gap and resync."""
        self.seq += 1
        return encode(self.id, self.seq, published, positions)


# -- the reading half -----------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class LiveMessage:
    """One message of ``<stream>:live``: who published it (``publisher``, numbered ``seq`` from 1 per publisher),
    when (``published``, Unix seconds on the publisher's clock), and the routed positions of one batch, still
    encoded (``body``) so that an instance nobody watches through need not decode them."""

    publisher: str
    seq: int
    published: float
    body: bytes | str

    def positions(self) -> list[RoutedPosition]:
        """Decode the positions; raise :class:`BadLiveMessage` if they are not of the documented shape."""
        try:
            items = orjson.loads(self.body)
            if not isinstance(items, list):
                raise TypeError("positions is not a list")
            positions = [RoutedPosition(*item) for item in items]
        except (ValueError, TypeError) as exc:  # orjson.JSONDecodeError is a ValueError
            raise BadLiveMessage(f"{type(exc).__name__}: {exc}") from None
        for p in positions:
            if not (isinstance(p.event_id, str) and isinstance(p.device_id, str) and isinstance(p.ts, str)):
                raise BadLiveMessage("a position lacks its eventId, deviceId or ts")
        return positions


def parse(data: bytes | str) -> LiveMessage:
    """Decode a live-channel message's header; raise :class:`BadLiveMessage` for anything else."""
    try:
        head, _, body = data.partition(b"\n" if isinstance(data, bytes) else "\n")  # type: ignore[arg-type]  # bytes with bytes, str with str
        message = orjson.loads(head)
        publisher, seq, published = message["publisher"], message["seq"], message["published"]
        if not (isinstance(publisher, str) and isinstance(seq, int) and isinstance(published, (int, float))
                and not isinstance(published, bool)):
            raise TypeError("publisher, seq or published has the wrong type")
    except (ValueError, TypeError, KeyError) as exc:  # orjson.JSONDecodeError is a ValueError
        raise BadLiveMessage(f"{type(exc).__name__}: {exc}") from None
    return LiveMessage(publisher, seq, float(published), body)


class Sequences:
    """The last sequence number seen per publisher; says how many messages went missing in between."""

    def __init__(self, limit: int = MAX_PUBLISHERS) -> None:
        self.last: OrderedDict[str, int] = OrderedDict()
        self.limit = limit

    def observe(self, publisher: str, seq: int) -> int:
        """Record ``seq`` from ``publisher``; return how many of its messages were skipped (0: none, or a
        publisher seen for the first time)."""
        last = self.last.get(publisher)
        self.last[publisher] = seq
        self.last.move_to_end(publisher)
        if len(self.last) > self.limit:
            self.last.popitem(last=False)
        if last is None or seq <= last:
            return 0
        return seq - last - 1

    def forget(self) -> None:
        """After a loss of the subscription: what follows cannot be compared with what came before."""
        self.last.clear()
