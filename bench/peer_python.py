"""The Processor's live job and nothing else, as fast as asyncio goes: the Python peer of issue 21.

``python -m bench.peer_python --redis-url redis://127.0.0.1:6379/0 --channel telemetry:teltonika:live``

It does what a Processor instance does with the live channel (docs/processor.md section 5) and no more: subscribe
to ``<stream>:live``, and for each batch write every fan of an event that batch's ``position`` frames, **one write
per fan per batch**, in the Processor's exact bytes (:mod:`bench.wire`). Not done, because they are not the live
job: authentication (Directus), snapshots (a ``subscribe`` is answered with an empty one), storage, corrections,
metrics, the snapshot/live boundary. Kept, because the job needs them: the sequence check (gaps are counted), a
bound on what a slow fan may have waiting (``--buffer-limit`` bytes unsent: closed with 1013, as the Processor
sheds a slow consumer), and the close handshake.

Why it is the strongest asyncio baseline rather than a typical one: no WebSocket library (the upgrade and the
client frames are parsed here, in an ``asyncio.Protocol``); pub/sub read by a bare RESP protocol with hiredis's
C parser, dispatched from the read callback without a task switch; every frame of a batch framed once and the
joined bytes handed to each fan's transport in one ``write``; uvloop. And ``--coalesce`` (the default): the
messages that arrived in one read of the pub/sub socket are fanned out together, one write per fan for all of
them, so a busy peer batches more the busier it is, as the Processor's own ingest dispatcher does.

On start it prints one JSON line on stdout, ``{"port": N}``, once it listens and is subscribed; SIGTERM ends it
and prints its counters on stderr.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import hashlib
import json
import signal
import sys
import time
from typing import Any, cast
from urllib.parse import urlsplit

import hiredis
import orjson

from .wire import position_frame, render, websocket_close, websocket_text

GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Peer:
    """The fans by event, and the fan-out of live-channel messages to them."""

    def __init__(self, buffer_limit: int, coalesce: bool) -> None:
        self.subs: dict[str, set[Fan]] = {}
        self.buffer_limit = buffer_limit
        self.coalesce = coalesce
        self.last_seq: dict[str, int] = {}
        self.counters = {"messages": 0, "positions": 0, "dispatches": 0, "writes": 0, "gaps": 0, "shed": 0,
                         "malformed": 0, "fans": 0}

    def receive(self, messages: list[bytes]) -> None:
        """Messages read from the live channel in one go: fan them out (together, when coalescing)."""
        if self.coalesce:
            self._dispatch(messages)
        else:
            for message in messages:
                self._dispatch([message])

    def _dispatch(self, messages: list[bytes]) -> None:
        framed: dict[str, list[bytes]] = {}
        counters = self.counters
        for data in messages:
            counters["messages"] += 1
            head, _, body = data.partition(b"\n")
            try:
                header = orjson.loads(head)
                publisher, seq = header["publisher"], header["seq"]
            except (ValueError, KeyError, TypeError):
                counters["malformed"] += 1
                continue
            last = self.last_seq.get(publisher)
            self.last_seq[publisher] = seq
            if last is not None and seq > last + 1:
                counters["gaps"] += seq - last - 1
            if not self.subs:
                continue  # nobody watches: the positions need not be decoded
            try:
                positions = orjson.loads(body)
            except ValueError:
                counters["malformed"] += 1
                continue
            subs = self.subs
            for p in positions:
                event_id = p[0]
                if event_id in subs:
                    frame = websocket_text(position_frame(p))
                    group = framed.get(event_id)
                    if group is None:
                        framed[event_id] = [frame]
                    else:
                        group.append(frame)
                    counters["positions"] += 1
        for event_id, frames in framed.items():
            joined = frames[0] if len(frames) == 1 else b"".join(frames)
            fans = self.subs.get(event_id)
            if not fans:
                continue
            counters["dispatches"] += 1
            for fan in list(fans):  # a fan shed on the way leaves the set
                fan.send(joined)

    def stats(self) -> dict[str, Any]:
        return {**self.counters, "events": len(self.subs), "subscriptions": sum(len(s) for s in self.subs.values())}


class Fan(asyncio.Protocol):
    """One viewer's connection: the HTTP upgrade, then client frames (``subscribe``/``unsubscribe``, ping, close)."""

    def __init__(self, peer: Peer) -> None:
        self.peer = peer
        self.transport: asyncio.Transport | None = None
        self.buf = b""
        self.upgraded = False
        self.closing = False
        self.events: set[str] = set()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.transport = cast("asyncio.Transport", transport)  # uvloop's transports are not asyncio's subclasses

    def connection_lost(self, exc: Exception | None) -> None:
        for event_id in self.events:
            fans = self.peer.subs.get(event_id)
            if fans is not None:
                fans.discard(self)
                if not fans:
                    del self.peer.subs[event_id]
        self.events.clear()
        self.closing = True

    def send(self, data: bytes) -> None:
        """One write of ``data``; a fan with more than ``buffer_limit`` bytes unsent is closed with 1013."""
        transport = self.transport
        if self.closing or transport is None:
            return
        if transport.get_write_buffer_size() > self.peer.buffer_limit:
            self.peer.counters["shed"] += 1
            self.close(1013, "slow consumer")
            return
        transport.write(data)
        self.peer.counters["writes"] += 1

    def close(self, code: int, reason: str) -> None:
        if self.transport is not None and not self.closing:
            self.closing = True
            self.transport.write(websocket_close(code, reason))
            self.transport.close()

    def data_received(self, data: bytes) -> None:
        buf = self.buf + data if self.buf else data
        if not self.upgraded:
            end = buf.find(b"\r\n\r\n")
            if end < 0:
                self.buf = buf
                if len(buf) > 16384:
                    self._refuse(b"431 Request Header Fields Too Large")
                return
            if not self._upgrade(buf[:end]):
                return
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
            if not b1 & 0x80 or length > 65536:  # clients must mask (RFC 6455 5.1); frames are small
                self.close(1002 if not b1 & 0x80 else 1009, "")
                return
            end = pos + head + 4 + length
            if end > size:
                break
            mask = buf[pos + head:pos + head + 4]
            payload = _unmask(buf[pos + head + 4:end], mask)
            pos = end
            opcode = b0 & 0x0F
            if opcode == 1:
                self._text(payload)
            elif opcode == 9:  # ping
                self.transport.write(b"\x8a" + bytes((len(payload),)) + payload)  # type: ignore[union-attr]  # set in connection_made
            elif opcode == 8:  # close: answer with the same code, then hang up
                self.close(int.from_bytes(payload[:2], "big") if len(payload) >= 2 else 1000, "")
                return
        self.buf = buf[pos:]

    def _upgrade(self, request: bytes) -> bool:
        lines = request.split(b"\r\n")
        parts = lines[0].split()
        headers = {}
        for line in lines[1:]:
            name, _, value = line.partition(b":")
            headers[name.strip().lower()] = value.strip()
        key = headers.get(b"sec-websocket-key")
        if len(parts) < 3 or parts[0] != b"GET" or key is None or b"websocket" not in headers.get(b"upgrade",
                                                                                                  b"").lower():
            self._refuse(b"400 Bad Request")
            return False
        accept = base64.b64encode(hashlib.sha1(key + GUID).digest())
        self.transport.write(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"  # type: ignore[union-attr]  # set in connection_made
                             b"Sec-WebSocket-Accept: " + accept + b"\r\n\r\n")
        self.upgraded = True
        self.peer.counters["fans"] += 1
        return True

    def _refuse(self, status: bytes) -> None:
        assert self.transport is not None
        self.transport.write(b"HTTP/1.1 " + status + b"\r\nContent-Length: 0\r\nConnection: close\r\n\r\n")
        self.transport.close()
        self.closing = True

    def _text(self, payload: bytes) -> None:
        """``subscribe`` / ``unsubscribe`` (section 4), answered at once: no authorisation, an empty snapshot."""
        try:
            frame = json.loads(payload)
            kind, event_id = frame["type"], frame["eventId"].lower()
        except (ValueError, KeyError, TypeError, AttributeError):
            self._answer({"type": "error", "code": "bad_request", "message": "malformed frame"})
            return
        if kind == "subscribe":
            self.peer.subs.setdefault(event_id, set()).add(self)
            self.events.add(event_id)
            self._answer({"type": "subscribed", "eventId": event_id, "snapshot": []})
        elif kind == "unsubscribe":
            fans = self.peer.subs.get(event_id)
            if fans is not None:
                fans.discard(self)
                if not fans:
                    del self.peer.subs[event_id]
            self.events.discard(event_id)
            self._answer({"type": "unsubscribed", "eventId": event_id})
        else:
            self._answer({"type": "error", "code": "bad_request", "eventId": event_id, "message": "malformed frame"})

    def _answer(self, frame: dict[str, Any]) -> None:
        if self.transport is not None and not self.closing:
            self.transport.write(websocket_text(render(frame).encode()))


def _unmask(payload: bytes, mask: bytes) -> bytes:
    """XOR with the 4-byte mask, a whole machine word at a time (client frames here are a few dozen bytes)."""
    n = len(payload)
    if not n:
        return payload
    key = int.from_bytes((mask * (n // 4 + 1))[:n], "little")
    return (int.from_bytes(payload, "little") ^ key).to_bytes(n, "little")


class LiveChannel(asyncio.Protocol):
    """A bare RESP connection subscribed to one channel; every read's messages go to :meth:`Peer.receive`."""

    def __init__(self, peer: Peer, channel: str, password: str | None, ready: asyncio.Future[None]) -> None:
        self.peer = peer
        self.channel = channel.encode()
        self.password = password
        self.reader = hiredis.Reader()
        self.ready = ready
        self.lost: asyncio.Future[None] = ready.get_loop().create_future()

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        commands = [[b"AUTH", self.password.encode()]] if self.password else []
        commands.append([b"SUBSCRIBE", self.channel])
        cast("asyncio.Transport", transport).write(b"".join(_resp(c) for c in commands))

    def data_received(self, data: bytes) -> None:
        self.reader.feed(data)
        messages: list[bytes] = []
        while True:
            reply = self.reader.gets()
            if reply is False:
                break
            if isinstance(reply, list) and len(reply) == 3:
                if reply[0] == b"message":
                    messages.append(reply[2])
                elif reply[0] == b"subscribe" and not self.ready.done():
                    self.ready.set_result(None)
            elif isinstance(reply, hiredis.ReplyError) and not self.ready.done():
                self.ready.set_exception(RuntimeError(f"redis: {reply}"))
        if messages:
            self.peer.receive(messages)

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.ready.done():
            self.ready.set_exception(ConnectionError(f"redis closed the connection: {exc}"))
        if not self.lost.done():
            self.lost.set_result(None)


def _settle(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _resp(parts: list[bytes]) -> bytes:
    return b"*%d\r\n" % len(parts) + b"".join(b"$%d\r\n%s\r\n" % (len(p), p) for p in parts)


async def serve(args: argparse.Namespace) -> int:
    loop = asyncio.get_running_loop()
    peer = Peer(args.buffer_limit, args.coalesce)
    url = urlsplit(args.redis_url)
    ready: asyncio.Future[None] = loop.create_future()
    live = LiveChannel(peer, args.channel, url.password, ready)
    await loop.create_connection(lambda: live, url.hostname or "127.0.0.1", url.port or 6379)
    await asyncio.wait_for(ready, 10)
    server = await loop.create_server(lambda: Fan(peer), args.host, args.port, backlog=4096)
    port = server.sockets[0].getsockname()[1]
    print(json.dumps({"port": port, "coalesce": args.coalesce}), flush=True)
    stop: asyncio.Future[None] = loop.create_future()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, _settle, stop)
    began = time.monotonic()
    await asyncio.wait([stop, live.lost], return_when=asyncio.FIRST_COMPLETED)
    server.close()
    print(json.dumps({**peer.stats(), "seconds": time.monotonic() - began,
                      "redis_lost": live.lost.done()}), file=sys.stderr, flush=True)
    return 1 if live.lost.done() and not stop.done() else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.peer_python", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--redis-url", default="redis://127.0.0.1:6379/0")
    parser.add_argument("--channel", default="telemetry:teltonika:live", help="the live channel: <stream>:live")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=0, help="0: any free port (printed on stdout)")
    parser.add_argument("--buffer-limit", type=int, default=1 << 20,
                        help="bytes a fan may have unsent before it is closed with 1013")
    parser.add_argument("--no-coalesce", dest="coalesce", action="store_false",
                        help="fan out each message on its own, even when several arrived in one read")
    args = parser.parse_args(argv)
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        print("uvloop not installed: the default event loop (slower)", file=sys.stderr)
    return asyncio.run(serve(args))


if __name__ == "__main__":
    sys.exit(main())
