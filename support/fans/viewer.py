"""A person watching the live map: a real ``websockets`` client with an inbox.

A background reader keeps every frame the Processor sends, in order. Steps never read the socket
themselves; they ask the inbox: :meth:`Viewer.wait_for` returns the first frame that matches or fails showing
every frame that did arrive.
"""

from __future__ import annotations

import asyncio
import json
import socket
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidStatus
from websockets.frames import Frame as WireFrame
from websockets.frames import Opcode
from websockets.protocol import Event

from ..clock import ANSWER, within

Frame = dict[str, Any]
Predicate = Callable[[Frame], bool]

#: How long a negative check listens after its positive barrier before it concludes "nothing came".
#: Frames to one connection are delivered in order, so anything that would have preceded the barrier has
#: already arrived; the window only guards against a misbehaving server sending late.
QUIET_WINDOW = 0.25


#: The segment size of a client on a poor network (bytes; IPv4's minimum datagram less the headers).
SMALL_SEGMENT = 536


class FrameTimeout(AssertionError):
    """The awaited frame did not arrive; the message lists what did."""


@dataclass
class Refusal:
    """The upgrade was answered with an HTTP status instead of a WebSocket."""

    status: int
    body: str
    #: The answer's headers, lower-case names (e.g. ``retry-after`` on a 503 while the CMS limits requests).
    headers: dict[str, str] = field(default_factory=dict)


class _Connection(ClientConnection):
    """websockets' client connection, noting when each keepalive ping of the server arrived (websockets answers
    it with a pong by itself, as browsers do, while the client reads)."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.pings: list[float] = []

    def process_event(self, event: Event) -> None:
        if isinstance(event, WireFrame) and event.opcode is Opcode.PING:
            self.pings.append(time.monotonic())
        super().process_event(event)


class Viewer:
    """One WebSocket connection to ``/live`` on behalf of one person."""

    def __init__(self, name: str, cookie: str | None) -> None:
        self.name = name
        self.cookie = cookie
        self.inbox: list[Frame] = []
        self.refusal: Refusal | None = None
        self.connection: ClientConnection | None = None
        self._arrived = asyncio.Event()
        self._reader: asyncio.Task[None] | None = None
        self.closed_with: tuple[int | None, str] | None = None
        self.paused = False
        self._reading = asyncio.Event()
        self._reading.set()
        #: The loop the connection lives on (the suite's I/O loop), once connected.
        self._loop: asyncio.AbstractEventLoop | None = None

    # -- connection ------------------------------------------------------------------------------------

    async def connect(self, url: str, *, origin: str | None = None, timeout: float = ANSWER,
                      receive_buffer: int | None = None, subprotocols: list[str] | None = None,
                      offer_compression: bool = False) -> bool:
        """Open the connection; return False (and keep the HTTP status in :attr:`refusal`) if refused.

        ``receive_buffer`` (bytes) sets the socket's receive buffer before connecting: a client on a poor
        network, whose stalls the Processor notices after little data instead of megabytes.
        ``offer_compression``: offer ``permessage-deflate``, as browsers do."""
        headers = {"Cookie": self.cookie} if self.cookie is not None else {}
        extra = {}
        if receive_buffer is not None:
            extra["sock"] = await _small_socket(url, receive_buffer)
        try:
            self.connection = await connect(
                url, additional_headers=headers, origin=origin, open_timeout=within(timeout),  # type: ignore[arg-type]  # websockets' connect() accepts these; its annotations are narrower
                compression="deflate" if offer_compression else None, max_size=None, ping_interval=None,
                subprotocols=subprotocols, create_connection=_Connection, **extra,  # type: ignore[arg-type]  # websockets' connect() accepts these; its annotations are narrower
            )
        except InvalidStatus as exc:
            body = exc.response.body.decode("utf-8", "replace") if exc.response.body else ""
            headers = {name.lower(): value for name, value in exc.response.headers.raw_items()}
            self.refusal = Refusal(exc.response.status_code, body, headers)
            return False
        self._loop = asyncio.get_running_loop()
        self._reader = asyncio.create_task(self._read(), name=f"viewer-{self.name}")
        return True

    @property
    def pings(self) -> list[float]:
        """When each keepalive ping of the Processor arrived (``time.monotonic()``), while the viewer read."""
        return self.connection.pings if isinstance(self.connection, _Connection) else []

    async def _read(self) -> None:
        assert self.connection is not None
        try:
            async for message in self.connection:
                await self._reading.wait()  # cleared by stop_reading(): a stalled client
                try:
                    frame = json.loads(message)
                except (TypeError, ValueError):
                    frame = {"type": "<not JSON>", "raw": repr(message)[:200]}
                if not isinstance(frame, dict):
                    frame = {"type": "<not an object>", "raw": frame}
                frame["_received_at"] = time.monotonic()
                self.inbox.append(frame)
                self._arrived.set()
        except ConnectionClosed as exc:  # closed with an error code: keep the code the Processor sent
            received = exc.rcvd
            self.closed_with = (received.code, received.reason) if received else (None, f"{type(exc).__name__}: {exc}")
        except Exception as exc:  # a dropped connection ends the inbox; what ended it is reported below
            self.closed_with = (None, f"{type(exc).__name__}: {exc}")
        finally:
            if self.closed_with is None:
                self.closed_with = (self.connection.close_code, self.connection.close_reason or "")
            self._arrived.set()

    async def send(self, frame: Frame | str | bytes) -> None:
        """Send ``frame``: a dict as JSON text, a ``str`` as text, ``bytes`` as a binary message."""
        assert self.connection is not None, f"{self.name} is not connected"
        await self.connection.send(frame if isinstance(frame, str | bytes) else json.dumps(frame))

    def stop_reading(self) -> None:
        """Act as a stalled client: stop taking bytes off the socket (the kernel's buffers then fill up and
        pings go unanswered)."""
        assert self.connection is not None, f"{self.name} is not connected"
        self._reading.clear()
        self.connection.transport.pause_reading()
        self.paused = True

    def resume_reading(self) -> None:
        """Read again after :meth:`stop_reading`. Safe from any thread: the transport and the event belong to the
        suite's I/O loop, and a step calling this from its own thread raced the loop closing the connection (the
        transport lost its loop halfway through ``resume_reading``), so from another thread the work is handed to
        the loop, ahead of whatever the step asks of the loop next."""
        loop = self._loop
        if loop is not None and not _running_on(loop):
            loop.call_soon_threadsafe(self._resume_reading)
        else:
            self._resume_reading()

    def _resume_reading(self) -> None:
        if self.paused and self.connection is not None:
            self.paused = False
            self._reading.set()
            if not self.connection.transport.is_closing():  # a connection already dropped has nothing to resume
                self.connection.transport.resume_reading()

    async def close(self) -> None:
        self.resume_reading()
        if self.connection is not None:
            await self.connection.close()
        if self._reader is not None:
            await asyncio.gather(self._reader, return_exceptions=True)

    # -- inbox -----------------------------------------------------------------------------------------

    async def wait_for(self, predicate: Predicate, *, timeout: float, what: str, since: int = 0) -> Frame:
        """The first frame satisfying ``predicate`` among those received from index ``since`` on, waiting up to
        ``timeout`` seconds for it."""
        deadline = time.monotonic() + within(timeout)
        while True:
            for frame in self.inbox[since:]:
                if predicate(frame):
                    return frame
            remaining = deadline - time.monotonic()
            if remaining <= 0 or (self.closed_with is not None and self._reader is not None and self._reader.done()):
                raise FrameTimeout(self._explain(what, timeout))
            self._arrived.clear()
            try:
                await asyncio.wait_for(self._arrived.wait(), remaining)
            except TimeoutError:
                pass  # deadline reached: the loop re-checks the inbox once more and then reports

    async def wait_closed(self, *, timeout: float) -> tuple[int | None, str]:
        """The close code and reason, once the connection has ended."""
        if self._reader is None:
            raise AssertionError(f"{self.name} never connected")
        try:
            await asyncio.wait_for(asyncio.shield(self._reader), within(timeout))
        except TimeoutError:
            raise FrameTimeout(f"{self.name}'s connection was still open after {timeout} s;"
                               f" frames: {self.describe_inbox()}") from None
        assert self.closed_with is not None
        return self.closed_with

    async def listen_quietly(self, window: float = QUIET_WINDOW) -> None:
        """Keep receiving for a bounded quiet window; only for negative checks, after a positive barrier."""
        await asyncio.sleep(within(window))  # quiet-window: documented above (QUIET_WINDOW)

    def frames(self, predicate: Predicate) -> list[Frame]:
        return [frame for frame in self.inbox if predicate(frame)]

    def _explain(self, what: str, timeout: float) -> str:
        ended = f"; connection ended: {self.closed_with}" if self.closed_with else ""
        return f"{self.name} did not receive {what} within {timeout} s{ended}; received {self.describe_inbox()}"

    def describe_inbox(self) -> str:
        if not self.inbox:
            return "no frames at all"
        lines = [f"{len(self.inbox)} frame(s):"]
        for frame in self.inbox:
            shown = {k: v for k, v in frame.items() if k != "_received_at"}
            lines.append("  " + json.dumps(shown, default=str)[:500])
        return "\n".join(lines)


async def _small_socket(url: str, receive_buffer: int) -> socket.socket:
    """A TCP socket connected to ``url``'s host and port, with its receive buffer set before the handshake
    (so the window it advertises stays small)."""
    from urllib.parse import urlsplit

    parts = urlsplit(url)
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    # Small segments too: the Processor's kernel sizes its send buffer by the segments in flight, so a link of
    # small segments keeps what the kernel holds for a stalled fan small (kilobytes, not megabytes).
    sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_MAXSEG, SMALL_SEGMENT)
    sock.setblocking(False)
    try:
        await asyncio.get_running_loop().sock_connect(sock, (parts.hostname, parts.port or 80))
    except BaseException:
        sock.close()
        raise
    return sock


def _running_on(loop: asyncio.AbstractEventLoop) -> bool:
    """Whether the caller runs on ``loop`` (in one of its callbacks or tasks)."""
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False
