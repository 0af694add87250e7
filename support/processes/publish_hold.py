"""A link to Redis the suite can hold up: a TCP relay between one Processor instance and Redis.

"Every position of a batch is counted before its live message is published" (docs/processor.md, section 10) is
about a moment that passes in microseconds. The relay stretches it: once :meth:`PublishHold.hold_after_publish` is
armed, the first connection that sends a ``PUBLISH`` gets no more answers from Redis until :meth:`release`. Redis
still receives the command and delivers the message to its subscribers (the suite among them), but the instance
waits for the reply, so whatever it does only *after* publishing has not happened yet when the suite sees the
message. Requests always go through; only that one connection's answers wait, so the instance's other
connections (reading the stream, health probes, the live channel's subscription) carry on.

A connection's answers are held from the moment the ``PUBLISH`` passes: redis-py (and any client that waits for
each reply, or each pipeline's replies, before it sends more on the connection) has no answer outstanding then.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass
from urllib.parse import urlsplit, urlunsplit

from ..clock import ANSWER

#: How a command name looks on the wire (RESP bulk string), matched without regard to case.
PUBLISH = b"\r\nPUBLISH\r\n"


@dataclass
class _Connection:
    held: bool = False
    #: The last bytes the client sent, so a command split across two reads is still recognised.
    tail: bytes = b""


class PublishHold:
    """Listens on a free loopback port and relays each connection to ``upstream_url``'s host and port."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream_url = upstream_url
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 6379
        self._server: asyncio.Server | None = None
        self._armed = False
        self._released = asyncio.Event()
        self._released.set()
        #: Set once a connection's answers are held (the instance has published and waits for the reply).
        self.holding = asyncio.Event()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        """``upstream_url`` with the relay's address instead of the server's (credentials and database kept)."""
        assert self._server is not None, "the link is not started"
        port = self._server.sockets[0].getsockname()[1]
        parts = urlsplit(self._upstream_url)
        credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit((parts.scheme, f"{credentials}127.0.0.1:{port}", parts.path, parts.query, parts.fragment))

    def hold_after_publish(self) -> None:
        """From now on, the first connection that sends a ``PUBLISH`` gets no answer until :meth:`release`."""
        self._armed = True
        self._released.clear()
        self.holding.clear()

    def release(self) -> None:
        """Pass the held answers on, and everything after them; idempotent."""
        self._armed = False
        self._released.set()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            client_writer.close()
            return
        self._writers += [client_writer, server_writer]
        connection = _Connection()
        pumps = [asyncio.create_task(self._requests(client_reader, server_writer, connection)),
                 asyncio.create_task(self._answers(server_reader, client_writer, connection))]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        self._tasks.difference_update(pumps)
        for writer in (client_writer, server_writer):
            writer.close()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        connection: _Connection) -> None:
        """Client to server, untouched; marks the connection held when it publishes while the link is armed (before
        the command goes on, so no answer to it can slip through)."""
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                seen = connection.tail + data
                if self._armed and PUBLISH in seen.upper():
                    self._armed = False
                    connection.held = True
                    self.holding.set()
                connection.tail = seen[-len(PUBLISH):]
                writer.write(data)
                await writer.drain()

    async def _answers(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       connection: _Connection) -> None:
        """Server to client, untouched, except that a held connection's answers wait for :meth:`release`."""
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                if connection.held:
                    await self._released.wait()
                    connection.held = False
                writer.write(data)
                await writer.drain()

    async def close(self) -> None:
        """Stop listening and cut every relayed connection."""
        self.release()
        if self._server is not None:
            self._server.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), ANSWER)
