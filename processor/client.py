"""The outbound side of one WebSocket connection (I/O only; what to send is the hub's business).

Each client has one bounded queue, drained by a writer task that exists only while frames wait, so a slow
client only ever delays itself: when its queue is full it is closed with 1013. A client whose socket is not
backed up is written to at once (what ``websockets.broadcast`` does), with a WebSocket frame built once per
message for every subscriber (:mod:`processor.websocket_framing`).
"""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from typing import Protocol

from websockets.protocol import State

from .metrics import Metrics
from .websocket_framing import websocket_text

__all__ = ["CLOSE_WAIT", "DIRECT_WRITE_LIMIT", "Client", "Connection", "Transport", "WireProtocol"]

logger = logging.getLogger("processor.hub")  # the name its lines had while the client lived in hub.py

#: A client whose socket holds less than this many unsent bytes, and nothing queued, is written to at once
#: (what ``websockets.broadcast`` does) instead of through its writer task: a profile of 1,000 viewers showed
#: 63 % of the CPU in per-frame writer-task wake-ups. Above it, frames queue and the 1013 rule applies.
DIRECT_WRITE_LIMIT = 64 * 1024
#: Seconds the Processor waits for a client's closing handshake, from the moment it decides to close, before it
#: drops the connection (docs/processor.md, section 9, ``browser.close-wait``). websockets' own ``close_timeout``
#: starts only once the close frame is written out, which a client that stopped reading never lets happen.
CLOSE_WAIT = 2.0

_OPEN = State.OPEN


class Transport(Protocol):
    """The part of ``asyncio.Transport`` the direct write uses: how much is still unsent, and write."""

    def get_write_buffer_size(self) -> int: ...

    def write(self, data: bytes) -> None: ...

    def abort(self) -> None: ...


class WireProtocol(Protocol):
    """The part of websockets' sans-I/O protocol the direct write consults: whether the connection is open."""

    state: State


class Connection(Protocol):
    """What a client needs from a WebSocket connection (``websockets`` ServerConnection or a fake).

    ``transport``, ``protocol`` and ``send_in_progress`` are the seam of the direct write: a WebSocket frame
    built once per message (:func:`websocket_text`; server frames are unmasked and compression is off)
    goes straight to ``transport.write`` while the connection is open and no fragmented message is being sent.
    websockets writes whole frames to the same transport, so frames never interleave. ``transport`` is ``None``
    until the connection is made.
    """

    # Read-only here (properties), so a connection whose own fields are narrower still matches.
    @property
    def transport(self) -> Transport | None: ...

    @property
    def protocol(self) -> WireProtocol: ...

    @property
    def send_in_progress(self) -> object | None: ...

    async def send(self, message: bytes, *, text: bool | None = None) -> None: ...

    async def close(self, code: int = 1000, reason: str = "") -> None: ...


class _Close:
    __slots__ = ("code", "reason")

    def __init__(self, code: int, reason: str) -> None:
        self.code = code
        self.reason = reason


class Client:
    """The outbound side of one connection: direct writes, else a bounded frame queue and its writer task. What it
    is subscribed to is the hub's business (:meth:`processor.hub.Hub.subscriptions`)."""

    __slots__ = ("closed", "closer", "connection", "limit", "metrics", "name", "queue", "transport", "writer", "ws")

    def __init__(self, connection: Connection, limit: int, metrics: Metrics, name: str = "") -> None:
        self.connection = connection
        #: The connection's transport (once made) and sans-I/O protocol, kept here: neither changes during a
        #: connection's life, and the direct write runs once per fan per batch, when the connection's own objects
        #: are out of the CPU's caches (one object less to fetch per fan).
        self.transport: Transport | None = connection.transport
        self.ws: WireProtocol = connection.protocol
        self.limit = limit
        self.metrics = metrics
        self.name = name
        #: Frames waiting for the writer; created on first use (an idle viewer costs no deque).
        self.queue: deque[bytes | _Close] | None = None
        self.closed = False
        #: The writer task while frames wait (``None`` otherwise); the task closing the connection, if any.
        self.writer: asyncio.Task[None] | None = None
        self.closer: asyncio.Task[None] | None = None

    def send(self, frame: str | bytes, kind: str, wire: bytes | None = None) -> bool:
        """Queue a frame and count it; close the client with 1013 if its queue is full. False if not queued."""
        if self.put(frame.encode() if isinstance(frame, str) else frame, wire):
            self.metrics.frames_sent.labels(kind).inc()
            return True
        return False

    def put(self, data: bytes, wire: bytes | None = None) -> bool:
        """Write or queue an encoded text message without counting it (the hub counts positions per dispatch);
        ``wire``: the same message already framed, shared by every subscriber."""
        if self.closed:
            return False
        if self.writer is None and self._write_now(data, wire):
            return True
        queue = self.queue
        if queue is None:
            queue = self.queue = deque()
        if len(queue) >= self.limit:
            self.overflow()
            return False
        queue.append(data)
        if self.writer is None:
            self.writer = asyncio.create_task(self._write(), name=f"writer-{self.name}")
        return True

    def put_many(self, items: list[bytes], wire: bytes) -> int:
        """Write or queue several encoded text messages, in order; ``wire``: all of them already framed, one after
        another, written in ONE ``transport.write`` when the socket is not backed up (one system call per fan
        instead of one per position: the fan-out's cost is mostly those calls). Return how many were queued or
        written (fewer if the queue overflowed)."""
        if self.closed:
            return 0
        if self.writer is None:  # _write_now(wire), inlined: this runs once per fan per batch
            transport = self.transport
            if transport is None:
                transport = self.transport = self.connection.transport
            if (transport is not None and transport.get_write_buffer_size() < DIRECT_WRITE_LIMIT
                    and self.connection.send_in_progress is None):
                if self.ws.state is _OPEN:
                    try:
                        transport.write(wire)
                    except Exception as exc:  # the transport failed under us: the handler sees the close
                        logger.debug("direct write to %s failed: %s", self.name, exc)
                return len(items)
        count = 0
        for data in items:  # backed up: each one waits in the queue under the 1013 rule
            if not self.put(data):
                break
            count += 1
        return count

    def _write_now(self, data: bytes, wire: bytes | None) -> bool:
        """Write without the writer task when the socket is not backed up; False: queue it instead."""
        transport = self.transport
        if transport is None:
            transport = self.transport = self.connection.transport
        if transport is None or transport.get_write_buffer_size() >= DIRECT_WRITE_LIMIT:
            return False
        if self.connection.send_in_progress is not None:  # a fragmented message is being sent: wait in line
            return False
        if self.ws.state is not _OPEN:
            return True  # closing: like broadcast(), drop it; the handler cleans up
        try:
            transport.write(wire if wire is not None else websocket_text(data))
        except Exception as exc:  # the transport failed under us: the handler sees the connection close
            logger.debug("direct write to %s failed: %s", self.name, exc)
        return True

    def close_after_flush(self, code: int, reason: str) -> None:
        """Close once the frames already queued are written (e.g. an error frame, then 1008)."""
        if not self.closed:
            if self.queue is None:
                self.queue = deque()
            self.queue.append(_Close(code, reason))
            if self.writer is None:
                self.writer = asyncio.create_task(self._write(), name=f"writer-{self.name}")

    def overflow(self) -> None:
        """Slow consumer: drop everything queued and close with 1013."""
        if self.closed:
            return
        self.metrics.slow_consumers.inc()
        logger.info("client %s is too slow (%d frames queued): closing with 1013", self.name, self.limit)
        self.shut(1013, "slow consumer")

    def shut(self, code: int, reason: str) -> None:
        """Drop everything queued and close now with ``code``."""
        if self.closed:
            return
        self.closed = True
        self.queue = None
        if self.writer is not None:
            self.writer.cancel()
        self.closer = asyncio.create_task(self._close(code, reason), name=f"close-{self.name}")

    async def _close(self, code: int, reason: str) -> None:
        """Close with ``code``; a client that has not completed the closing handshake within :data:`CLOSE_WAIT`
        (its socket backed up, the close frame still unsent) loses the connection: it sees no close code."""
        try:
            async with asyncio.timeout(CLOSE_WAIT):
                await self.connection.close(code, reason)
        except TimeoutError:
            logger.debug("close %s: no closing handshake within %.1f s: dropping the connection", self.name, CLOSE_WAIT)
            transport = self.connection.transport
            if transport is not None:
                transport.abort()
        except Exception as exc:  # the connection may already be gone
            logger.debug("close %s: %s", self.name, exc)

    async def _write(self) -> None:
        """Drain the queue, then end (the next queued frame starts a new writer)."""
        try:
            while self.queue:
                item = self.queue.popleft()
                if not self.queue:
                    self.queue = None  # drained: give the deque back
                if isinstance(item, _Close):
                    self.closed = True
                    self.queue = None
                    await self._close(item.code, item.reason)
                    return
                await self.connection.send(item, text=True)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # ConnectionClosed and friends: the handler cleans up
            logger.debug("writer %s stopped: %s", self.name, exc)
            self.closed = True
            self.queue = None
        finally:
            if self.writer is asyncio.current_task():
                self.writer = None

    def stop(self) -> None:
        self.closed = True
        self.queue = None
        if self.writer is not None:
            self.writer.cancel()
