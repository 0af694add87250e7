"""A lean WebSocket client for many simultaneous viewers, and the fleet worker that drives them.

The suite's :class:`support.fans.viewer.Viewer` (a full ``websockets`` client that parses every frame) is right
for correctness but would make the *client* the bottleneck at 100,000 frames/s on a 2-core machine. Here
each viewer is a bare ``asyncio.Protocol``: it does the HTTP upgrade itself, splits the byte stream into
frames and, for most viewers, only counts ``position`` frames. A few *sampled* viewers (spread over the
fleet) parse every frame, which gives the latency figures and an exact duplicate/order check. The same
client measures the Processor and the bare ``websockets.broadcast()`` baseline, so their ratio is fair.

Latency: the load generator puts its send time (``time.time()``, CLOCK_REALTIME, shared by every process on
the machine) into each position's ``altitude``, which the contract carries unchanged to the ``position``
frame; a sampled viewer subtracts it from the time it read the frame off its socket.
"""

from __future__ import annotations

import asyncio
import base64
import json
import os
import struct
import time
from typing import Any

from websockets.utils import apply_mask

POSITION = b'"position"'


def _mask_frame(opcode: int, payload: bytes) -> bytes:
    """One client frame (FIN set, masked as RFC 6455 requires of clients)."""
    mask = os.urandom(4)
    length = len(payload)
    if length < 126:
        header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
    elif length < 65536:
        header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
    else:
        header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
    return header + mask + apply_mask(payload, mask)


def _stream_key(stream_id: str) -> tuple[int, int]:
    ms, _, seq = stream_id.partition("-")
    return int(ms), int(seq or 0)


class RawViewer(asyncio.Protocol):
    """One connection to ``/live``. Counters are plain attributes, read by :class:`Fleet`."""

    def __init__(self, index: int, host: str, port: int, path: str, cookie: str | None) -> None:
        self.index = index
        self.request = (
            f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            f"Sec-WebSocket-Key: {base64.b64encode(os.urandom(16)).decode()}\r\nSec-WebSocket-Version: 13\r\n"
            + (f"Cookie: {cookie}\r\n" if cookie else "") + "\r\n"
        ).encode()
        self.transport: asyncio.Transport | None = None
        self.upgraded: asyncio.Future[int] = asyncio.get_running_loop().create_future()
        self.closed: asyncio.Future[int | None] = asyncio.get_running_loop().create_future()
        self.status = 0
        self.close_code: int | None = None
        self.buf = b""
        self.fragments: list[bytes] = []
        self.handshaking = True
        # counters (reset by arm)
        self.sampled = False
        self.positions = 0
        self.other: list[dict[str, Any]] = []  # every non-position frame, parsed (answers, errors)
        self.last_subscribed: bytes = b""  # the last ``subscribed`` answer as it arrived (the floor replays it)
        self.last_rx = 0.0
        self.latencies: list[float] = []
        self.seen: set[tuple[str, str]] = set()
        self.last_key: dict[str, tuple[int, int]] = {}
        self.duplicates = 0
        self.out_of_order = 0
        self.answer_waiter: tuple[str, asyncio.Future[float]] | None = None
        #: When set (sampled viewers only), every frame's payload as it arrived: the frames check.
        self.capture: list[bytes] | None = None

    # -- asyncio.Protocol --------------------------------------------------------------------------

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = transport  # type: ignore[assignment]  # asyncio hands a Transport; this protocol only uses its write side
        self.transport.write(self.request)  # type: ignore[union-attr]  # set in connection_made, before any data

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.upgraded.done():
            self.upgraded.set_result(self.status or -1)
        if not self.closed.done():
            self.closed.set_result(self.close_code)

    def data_received(self, data: bytes) -> None:
        now = time.time()
        buf = self.buf + data if self.buf else data
        if self.handshaking:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                return
            status_line = buf[:end].split(b"\r\n", 1)[0].split()
            self.status = int(status_line[1]) if len(status_line) > 1 and status_line[1].isdigit() else -1
            self.handshaking = False
            if self.status != 101:
                self.upgraded.set_result(self.status)
                self.transport.close()  # type: ignore[union-attr]  # set in connection_made, before any data
                return
            self.upgraded.set_result(101)
            buf = buf[end + 4:]
        pos, size = 0, len(buf)
        while size - pos >= 2:
            b0, b1 = buf[pos], buf[pos + 1]
            length, head = b1 & 0x7F, 2
            if length == 126:
                if size - pos < 4:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 4], "big"), 4
            elif length == 127:
                if size - pos < 10:
                    break
                length, head = int.from_bytes(buf[pos + 2:pos + 10], "big"), 10
            mask = b""
            if b1 & 0x80:  # servers must not mask, but be tolerant
                mask, head = buf[pos + head:pos + head + 4], head + 4
            end = pos + head + length
            if end > size:
                break
            payload = buf[pos + head:end]
            if mask:
                payload = apply_mask(payload, mask)
            pos = end
            opcode = b0 & 0x0F
            if opcode == 0 or not b0 & 0x80:  # fragmented message
                self.fragments.append(payload)
                if not b0 & 0x80:
                    continue
                payload, self.fragments = b"".join(self.fragments), []
                opcode = 1
            if opcode == 1 or opcode == 2:
                self._message(payload, now)
            elif opcode == 9:
                self.transport.write(_mask_frame(10, payload))  # type: ignore[union-attr]  # set in connection_made, before any data
            elif opcode == 8:
                self.close_code = int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1005
                if not self.transport.is_closing():  # type: ignore[union-attr]  # set in connection_made, before any data
                    self.transport.write(_mask_frame(8, payload[:2]))  # type: ignore[union-attr]  # set in connection_made, before any data
                    self.transport.close()  # type: ignore[union-attr]  # set in connection_made, before any data
                self.buf = b""
                return
        self.buf = buf[pos:]

    def _message(self, payload: bytes, now: float) -> None:
        if not self.sampled and POSITION in payload:
            self.positions += 1
            self.last_rx = now
            return
        if self.capture is not None:
            self.capture.append(payload)
        try:
            frame = json.loads(payload)
        except ValueError:
            frame = {"type": "<not JSON>"}
        if frame.get("type") == "position":
            self.positions += 1
            self.last_rx = now
            altitude = frame.get("altitude")
            if isinstance(altitude, (int, float)):
                self.latencies.append(now - altitude)
            device, stream_id = frame.get("deviceId"), frame.get("streamId") or ""
            key = (device, stream_id)
            if key in self.seen:
                self.duplicates += 1
            self.seen.add(key)
            order = _stream_key(stream_id) if stream_id else (0, 0)
            if order < self.last_key.get(device, (-1, -1)):
                self.out_of_order += 1
            self.last_key[device] = order
            return
        summary = {k: v for k, v in frame.items() if k != "snapshot"}
        summary["snapshotSize"] = len(frame.get("snapshot") or [])
        summary["_rx"] = now
        self.other.append(summary)
        if frame.get("type") == "subscribed":
            self.last_subscribed = payload
        if self.answer_waiter is not None and frame.get("type") in ("subscribed", "error"):
            event_id, future = self.answer_waiter
            if frame.get("eventId") == event_id and not future.done():
                future.set_result(now)

    # -- API -------------------------------------------------------------------------------------------

    def send_text(self, text: str) -> None:
        if self.transport is not None and not self.transport.is_closing():
            self.transport.write(_mask_frame(1, text.encode()))

    async def subscribe(self, event_id: str) -> float:
        """Send ``subscribe``; return the time (``time.time()``) the answer arrived."""
        future: asyncio.Future[float] = asyncio.get_running_loop().create_future()
        self.answer_waiter = (event_id, future)
        self.send_text(json.dumps({"type": "subscribe", "eventId": event_id}))
        try:
            return await future
        finally:
            self.answer_waiter = None

    def close(self) -> None:
        if self.transport is not None and not self.transport.is_closing():
            if not self.handshaking and self.status == 101:
                self.transport.write(_mask_frame(8, (1000).to_bytes(2, "big")))
            self.transport.close()


async def open_viewer(index: int, url: str, cookie: str | None, timeout: float = 10.0) -> RawViewer:
    """Connect one viewer (``url`` like ``ws://127.0.0.1:8080/live``); check ``.status`` for 101."""
    rest = url.split("://", 1)[1]
    hostport, _, path = rest.partition("/")
    host, _, port = hostport.partition(":")
    loop = asyncio.get_running_loop()
    viewer = RawViewer(index, host, int(port), "/" + path, cookie)
    try:
        await asyncio.wait_for(loop.create_connection(lambda: viewer, host, int(port)), timeout)
        await asyncio.wait_for(asyncio.shield(viewer.upgraded), timeout)
    except (TimeoutError, OSError) as exc:
        viewer.status = viewer.status or -1
        viewer.error = f"{type(exc).__name__}: {exc}"  # type: ignore[attr-defined]  # an ad-hoc note on the failed viewer, read by the report
        viewer.close()
    return viewer


def percentiles(values: list[float], points: tuple[float, ...] = (50, 99)) -> dict[str, float | None]:
    if not values:
        return {f"p{p:g}": None for p in points} | {"max": None}  # type: ignore[return-value]  # dict[str, None] is a dict[str, float | None] here (built, never mutated)
    ordered = sorted(values)
    out: dict[str, float | None] = {}
    for p in points:
        rank = min(len(ordered) - 1, max(0, round(p / 100 * len(ordered) + 0.5) - 1))
        out[f"p{p:g}"] = ordered[rank]
    out["max"] = ordered[-1]
    return out


class Fleet:
    """The viewer worker: many :class:`RawViewer` in one process (see :mod:`bench.workers`)."""

    def __init__(self) -> None:
        self.viewers: list[RawViewer] = []
        self.expected: list[int] = []

    async def shutdown(self) -> None:
        await self.close_all()

    async def connect(self, url: str, cookies: list[str | None], concurrency: int = 2000,
                      timeout: float = 15.0) -> dict[str, Any]:
        """Open one viewer per cookie, all at once (bounded by ``concurrency``); time each upgrade."""
        semaphore = asyncio.Semaphore(concurrency)
        durations: list[float] = []
        start = time.monotonic()

        async def one(index: int, cookie: str | None) -> RawViewer:
            async with semaphore:
                began = time.monotonic()
                viewer = await open_viewer(index, url, cookie, timeout)
                durations.append(time.monotonic() - began)
                return viewer

        base = len(self.viewers)
        opened = await asyncio.gather(*(one(base + i, c) for i, c in enumerate(cookies)))
        elapsed = time.monotonic() - start
        self.viewers.extend(opened)
        statuses: dict[str, int] = {}
        for viewer in opened:
            statuses[str(viewer.status)] = statuses.get(str(viewer.status), 0) + 1
        return {"viewers": len(opened), "seconds": elapsed, "statuses": statuses,
                "upgrade_ms": {k: (v * 1000 if v is not None else None)
                               for k, v in percentiles(durations).items()}}

    async def subscribe(self, event_ids: list[str], timeout: float = 20.0, concurrency: int = 2000) -> dict[str, Any]:
        """Viewer ``i`` (of the open ones) subscribes to ``event_ids[i]``; time each answer."""
        semaphore = asyncio.Semaphore(concurrency)
        durations: list[float] = []
        answers: dict[str, int] = {}
        start = time.monotonic()

        async def one(viewer: RawViewer, event_id: str) -> None:
            async with semaphore:
                began = time.time()
                try:
                    arrived = await asyncio.wait_for(viewer.subscribe(event_id), timeout)
                except TimeoutError:
                    answers["timeout"] = answers.get("timeout", 0) + 1
                    return
                durations.append(arrived - began)
                answer = viewer.other[-1] if viewer.other else {}
                kind = answer.get("type", "?") + ("/" + answer["code"] if answer.get("code") else "")
                answers[kind] = answers.get(kind, 0) + 1

        live = [v for v in self.viewers if v.status == 101 and not v.closed.done()]
        await asyncio.gather(*(one(v, e) for v, e in zip(live, event_ids, strict=False)))
        return {"subscribed": len(durations), "seconds": time.monotonic() - start, "answers": answers,
                "answer_ms": {k: (v * 1000 if v is not None else None) for k, v in percentiles(durations).items()}}

    async def arm(self, sampled: list[int]) -> None:
        """Reset every counter; the viewers at these positions in the fleet parse every frame."""
        chosen = set(sampled)
        self.expected = []
        for i, viewer in enumerate(self.viewers):
            viewer.sampled = i in chosen
            viewer.positions = 0
            viewer.latencies = []
            viewer.seen = set()
            viewer.last_key = {}
            viewer.duplicates = viewer.out_of_order = 0
            viewer.last_rx = 0.0

    async def capture(self, index: int) -> None:
        """Keep every payload viewer ``index`` receives from now on (it must be sampled: see :meth:`arm`)."""
        self.viewers[index].capture = []

    async def captured(self, index: int) -> list[bytes]:
        """What viewer ``index`` received since :meth:`capture`, and stop keeping it."""
        viewer = self.viewers[index]
        payloads, viewer.capture = viewer.capture or [], None
        return payloads

    async def expect(self, expected: list[int]) -> None:
        """How many positions each viewer should get (what was published for its event)."""
        self.expected = expected

    async def progress(self) -> dict[str, Any]:
        is_open = [v.status == 101 and not v.closed.done() for v in self.viewers]
        missing = sum(max(0, e - v.positions) for v, e, o in zip(self.viewers, self.expected, is_open,
                                                                 strict=False) if o)
        return {"positions": sum(v.positions for v in self.viewers), "open": sum(is_open), "missing": missing,
                "last_rx": max((v.last_rx for v in self.viewers), default=0.0)}

    async def stats(self) -> dict[str, Any]:
        """Per-viewer counts and close codes, the sampled viewers' latencies and checks."""
        latencies: list[float] = []
        for viewer in self.viewers:
            latencies.extend(viewer.latencies)
        closes: dict[str, int] = {}
        for viewer in self.viewers:
            if viewer.closed.done():
                code = str(viewer.close_code)
                closes[code] = closes.get(code, 0) + 1
        return {
            "positions": [v.positions for v in self.viewers],
            "open": [v.status == 101 and not v.closed.done() for v in self.viewers],
            "close_codes": closes,
            "latencies": latencies,
            "sampled": sum(1 for v in self.viewers if v.sampled),
            "duplicates": sum(v.duplicates for v in self.viewers),
            "out_of_order": sum(v.out_of_order for v in self.viewers),
            "errors": [o for v in self.viewers for o in v.other if o.get("type") == "error"][:20],
            "last_rx": max((v.last_rx for v in self.viewers), default=0.0),
        }

    async def close_all(self, timeout: float = 10.0) -> dict[str, Any]:
        viewers, self.viewers = self.viewers, []
        for viewer in viewers:
            viewer.close()
        pending = [v.closed for v in viewers if not v.closed.done()]
        if pending:
            await asyncio.wait(pending, timeout=timeout)
        return {"closed": len(viewers)}

    async def cpu(self) -> float:
        from .workers import cpu_seconds

        return cpu_seconds()
