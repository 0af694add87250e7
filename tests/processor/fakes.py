"""Fakes standing in for WebSocket connections, Redis, PostgreSQL and Directus in the unit lane."""

from __future__ import annotations

import asyncio
import json
from typing import Any

from websockets.protocol import State

from processor import live_channel, protocol
from processor.directus import Outcome
from processor.routing import RoutedPosition, from_row
from processor.store import StoreResult


class FakeTransport:
    """The write buffer of a socket: empty while the peer reads, full (past the direct-write limit) while the
    connection is ``blocked``."""

    def __init__(self, connection: FakeConnection) -> None:
        self.connection = connection

    def get_write_buffer_size(self) -> int:
        from processor.client import DIRECT_WRITE_LIMIT

        return 0 if self.connection.unblocked.is_set() else DIRECT_WRITE_LIMIT

    def abort(self) -> None:
        """Drop the connection at once, as a socket closed without a handshake."""
        self.connection.aborted = True
        self.connection.protocol.state = State.CLOSED

    def write(self, data: bytes) -> None:
        """Unframe the server frames of one write (unmasked text, FIN set; whole frames only) as a client would,
        and record their texts."""
        self.connection.writes += 1
        while data:
            assert data[0] == 0x81 and not data[1] & 0x80, data[:2]
            size, offset = data[1], 2
            if size == 126:
                size, offset = int.from_bytes(data[2:4], "big"), 4
            elif size == 127:
                size, offset = int.from_bytes(data[2:10], "big"), 10
            assert len(data) >= offset + size, "a frame cut in two"
            self.connection.sent.append(data[offset:offset + size].decode())
            self.connection.direct += 1
            data = data[offset + size:]


class FakeWire:
    """websockets' sans-I/O protocol as the direct write consults it: its state."""

    def __init__(self) -> None:
        self.state = State.OPEN


class FakeConnection:
    """Records frames; ``blocked`` makes its socket back up and ``send`` hang like a client that stopped reading.
    With ``transport`` it offers the direct-write seam of :class:`processor.client.Connection` (as websockets does);
    ``direct`` counts the frames written to the transport that way."""

    def __init__(self, blocked: bool = False, transport: bool = True) -> None:
        self.sent: list[str] = []
        self.direct = 0  # frames written straight to the transport
        self.writes = 0  # transport.write calls
        self.closed_with: tuple[int, str] | None = None
        self.aborted = False
        #: ``close`` hangs like websockets' while the socket is backed up (until ``unblocked``).
        self.close_waits = False
        self.unblocked = asyncio.Event()
        if not blocked:
            self.unblocked.set()
        self.transport = FakeTransport(self) if transport else None
        self.protocol = FakeWire()
        self.send_in_progress: object | None = None

    async def send(self, message: str | bytes, *, text: bool | None = None) -> None:
        await self.unblocked.wait()
        self.sent.append(message.decode() if isinstance(message, bytes) else message)

    async def close(self, code: int = 1000, reason: str = "") -> None:
        if self.close_waits:
            await self.unblocked.wait()
        if self.closed_with is None:
            self.closed_with = (code, reason)
            self.protocol.state = State.CLOSED

    @property
    def frames(self) -> list[dict[str, Any]]:
        return [json.loads(message) for message in self.sent]


class FakeRedis:
    """Just enough of redis.asyncio.Redis for Ingest.handle: records calls in order."""

    def __init__(self) -> None:
        self.calls: list[tuple[Any, ...]] = []
        self.fail_publish = False

    def pipeline(self, transaction: bool = True) -> FakePipeline:
        return FakePipeline(self)

    async def publish(self, channel: str, message: str) -> int:
        if self.fail_publish:
            raise ConnectionError("redis went away")
        self.calls.append(("publish", channel, message))
        return 1

    async def xack(self, stream: str, group: str, *ids: bytes) -> int:
        self.calls.append(("xack", stream, group, ids))
        return len(ids)

    async def xinfo_groups(self, stream: str) -> list[dict[bytes | str, Any]]:
        self.calls.append(("xinfo_groups", stream))
        return [{"name": b"other", "lag": 7, "pending": 1}, {"name": b"processor", "lag": 3, "pending": 2}]


class FakePipeline:
    def __init__(self, redis: FakeRedis) -> None:
        self.redis = redis
        self.queued: list[tuple[Any, ...]] = []

    async def __aenter__(self) -> FakePipeline:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def xadd(self, stream: str, fields: dict[Any, Any]) -> None:
        self.queued.append(("xadd", stream, fields))

    def publish(self, channel: str, message: str) -> None:
        self.queued.append(("publish", channel, message))

    def xack(self, stream: str, group: str, *ids: bytes) -> None:
        self.queued.append(("xack", stream, group, ids))

    async def execute(self) -> list[Any]:
        """All or nothing as seen from here: a failed publish fails the round trip (no XACK recorded)."""
        if self.redis.fail_publish and any(call[0] == "publish" for call in self.queued):
            raise ConnectionError("redis went away")
        self.redis.calls.extend(self.queued)
        return [b"1-0"] * len(self.queued)


class FakeStore:
    """Stores positions in a dict keyed by (device_id, ts); routes devices via ``routes``."""

    def __init__(self, routes: dict[str, list[tuple[str, str]]] | None = None) -> None:
        self.rows: dict[tuple[str, Any], Any] = {}
        self.routes = routes or {}
        self.failures = 0
        self.calls = 0
        self.snapshots: dict[str, list[RoutedPosition]] = {}
        self.snapshot_calls = 0
        self.snapshot_error: Exception | None = None
        self.snapshot_gate: asyncio.Event | None = None

    async def insert(self, positions: list[Any]) -> StoreResult:
        self.calls += 1
        if self.failures:
            self.failures -= 1
            raise ConnectionRefusedError("postgres is down")
        inserted = orphans = 0
        routed = []
        for p in positions:
            key = (p.device_id, p.ts)
            if key in self.rows:
                continue
            self.rows[key] = p
            inserted += 1
            routes = self.routes.get(p.device_id, [])
            if not routes:
                orphans += 1
            row = {
                "device_id": p.device_id, "ts": p.ts, "latitude": p.latitude, "longitude": p.longitude,
                "altitude": p.altitude, "speed": p.speed, "heading": p.heading, "satellites": p.satellites,
                "stream_id": p.stream_id,
            }
            for event_id, entry_id in routes:
                routed.append(from_row(row, event_id, entry_id))
        return StoreResult(inserted, len(positions) - inserted, orphans, routed)

    async def snapshot(self, event_id: str) -> list[RoutedPosition]:
        self.snapshot_calls += 1
        if self.snapshot_gate is not None:
            await self.snapshot_gate.wait()
        if self.snapshot_error is not None:
            raise self.snapshot_error
        return self.snapshots.get(event_id, [])

    async def snapshot_frame(self, event_id: str) -> tuple[bytes, list[tuple[str, str]]]:
        """What Store.snapshot_frame makes of its query's columns, from the same positions as :meth:`snapshot`."""
        positions = await self.snapshot(event_id)
        columns = [[getattr(p, name) for p in positions] for name in protocol.SNAPSHOT_COLUMNS]
        exotic = protocol.exotic_floats(dict(zip(protocol.SNAPSHOT_COLUMNS, columns, strict=True)))
        return protocol.subscribed_columns(event_id, columns, exotic), [(p.device_id, p.ts) for p in positions]


class FakeDirectus:
    def __init__(self, user: Outcome = Outcome.OK, event: Outcome = Outcome.OK) -> None:
        self.user = user
        self.event = event
        self.calls: list[str] = []
        self.retry_after = 1

    async def current_user(self, cookie: str) -> tuple[Outcome, str | None]:
        self.calls.append("/users/me")
        return self.user, ("u1" if self.user is Outcome.OK else None)

    async def may_watch(self, cookie: str, event_id: str) -> Outcome:
        self.calls.append(f"/items/events/{event_id}")
        return self.event


class FakeHealth:
    def __init__(self, healthy: bool = True) -> None:
        self.healthy = healthy

    def report(self) -> tuple[bool, dict[str, Any]]:
        state = "up" if self.healthy else "down"
        return self.healthy, {
            "status": "ok" if self.healthy else "unavailable", "redis": state, "postgres": state,
            "consumer": "running" if self.healthy else "stopped",
        }


def position(event_id: str, device_id: str, ts: str, stream_id: str = "1-0", **extra: Any) -> RoutedPosition:
    """A routed position as the store hands it on (``extra``: lat, lon, altitude, …)."""
    fields: dict[str, Any] = {
        "event_id": event_id, "entry_id": "e-" + device_id, "device_id": device_id, "ts": ts, "lat": 1.0,
        "lon": 2.0, "altitude": None, "speed": None, "heading": None, "satellites": None, "stream_id": stream_id,
    }
    fields.update(extra)
    return RoutedPosition(**fields)


def item(p: RoutedPosition) -> dict[str, Any]:
    """Its ``<position>`` object, as frames carry it."""
    return protocol.position_object(p)


def live(*positions: RoutedPosition, publisher: str = "p1", seq: int = 1, published: float = 0.0) -> bytes:
    """A live-channel message carrying ``positions``."""
    return live_channel.encode(publisher, seq, published, positions)


async def settle(rounds: int = 5) -> None:
    """Let writer tasks run."""
    for _ in range(rounds):
        await asyncio.sleep(0)
