"""The fan-out baseline (a worker process): a bare ``websockets`` server that only ``broadcast()``s.

It speaks just enough of the ``/live`` protocol for the same viewer fleet to use it: a ``subscribe`` is
answered ``subscribed`` with an empty snapshot (no Directus, no database), and a paced driver renders
position frames shaped like the Processor's (send time in ``altitude``) and hands each to
``websockets.broadcast()`` for the subscribers of its event. Its delivered frames/s is the ceiling of one
Python process fanning out through ``websockets`` on this machine; the Processor is reported as a ratio of it.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Any

from websockets.asyncio.server import ServerConnection, broadcast, serve

from .generator import TICK, TS_BASE_MS, render_ts_ms


def _encode_text(payload: bytes) -> bytes:
    """One unmasked server text frame (RFC 6455)."""
    n = len(payload)
    if n < 126:
        return bytes((0x81, n)) + payload
    if n < 65536:
        return bytes((0x81, 126)) + n.to_bytes(2, "big") + payload
    return bytes((0x81, 127)) + n.to_bytes(8, "big") + payload


class BroadcastServer:
    def __init__(self) -> None:
        self.server: Any = None
        self.subscribers: dict[str, set[ServerConnection]] = {}
        self.connections: set[ServerConnection] = set()
        #: What a ``subscribe`` is answered with when set (:meth:`answer_with`); else an empty snapshot.
        self.answer: str | None = None

    async def start(self, backlog: int = 2048) -> int:
        self.server = await serve(self._handler, "127.0.0.1", 0, compression=None, ping_interval=20,
                                  ping_timeout=20, max_size=65536, backlog=backlog)
        return self.server.sockets[0].getsockname()[1]

    async def _handler(self, connection: ServerConnection) -> None:
        self.connections.add(connection)
        joined: list[str] = []
        try:
            async for message in connection:
                frame = json.loads(message)
                if frame.get("type") == "subscribe":
                    event_id = frame["eventId"]
                    self.subscribers.setdefault(event_id, set()).add(connection)
                    joined.append(event_id)
                    await connection.send(self.answer if self.answer is not None else
                                          json.dumps({"type": "subscribed", "eventId": event_id, "snapshot": []}))
        except Exception as exc:  # a viewer leaving mid-run is normal for the baseline; it only stops counting
            del exc
        finally:
            self.connections.discard(connection)
            for event_id in joined:
                self.subscribers.get(event_id, set()).discard(connection)

    async def answer_with(self, frame: str) -> None:
        """Answer every ``subscribe`` with ``frame`` (the snapshot floor: the Processor's own answer, replayed by a
        server that checks nothing and queries nothing)."""
        self.answer = frame

    async def run(self, events: list[str], devices: list[str], device_event: list[int], rate: float | None,
                  duration: float, seq_start: int, mode: str = "broadcast") -> dict[str, Any]:
        """Broadcast ``rate`` position frames/s (``None``: as fast as the loop goes) for ``duration`` s.

        ``mode="broadcast"``: ``websockets.broadcast()``, which frames the message once per connection.
        ``mode="raw"``: the frame is encoded once and the same bytes written to every transport, the floor of
        what an asyncio server can do per connection.
        """
        total = int(rate * duration) if rate else None
        sent = 0
        began = time.monotonic()
        first = 0.0
        per_event = [0] * len(events)
        while True:
            elapsed = time.monotonic() - began
            if (total is not None and sent >= total) or (total is None and elapsed >= duration):
                break
            due = min(total, int(elapsed * rate) + 1) if total is not None else sent + 1  # type: ignore[operator]  # rate is set whenever total is (the caller's contract)
            if due <= sent:
                await asyncio.sleep(TICK)  # pacing
                continue
            now = time.time()
            first = first or now
            for k in range(sent, due):
                d = k % len(devices)
                event_index = device_event[d]
                seq = seq_start + k
                frame = json.dumps({
                    "type": "position", "eventId": events[event_index],
                    "entryId": "00000000-0000-4000-8000-000000000000",
                    "deviceId": devices[d], "ts": render_ts_ms(TS_BASE_MS + seq), "lat": 41.0 + (seq % 10000) * 1e-5,
                    "lon": 19.0 + (seq % 7919) * 1e-5, "altitude": now, "speed": 80.0, "heading": 90.0,
                    "satellites": 11, "streamId": f"{int(now * 1000)}-{k}",
                }, separators=(",", ":"))
                targets = self.subscribers.get(events[event_index], ())
                if mode == "raw":
                    data = _encode_text(frame.encode())
                    for connection in targets:
                        connection.transport.write(data)
                else:
                    broadcast(targets, frame)
                per_event[event_index] += 1
            sent = due
            if total is None:
                await asyncio.sleep(0)  # flat out, but let the loop flush the sockets
        elapsed = time.monotonic() - began
        return {"published": sent, "per_event": per_event, "first_send": first, "seconds": elapsed,
                "achieved_rate": sent / elapsed if elapsed else 0.0, "seq_end": seq_start + sent}

    async def drained(self) -> int:
        """Bytes still waiting in the server's socket buffers."""
        return sum(c.transport.get_write_buffer_size() for c in self.connections if c.transport is not None)

    async def shutdown(self) -> None:
        if self.server is not None:
            self.server.close()
            await self.server.wait_closed()
