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
from dataclasses import dataclass

from .relay import CHUNK, Connection, Relay

#: How a command name looks on the wire (RESP bulk string), matched without regard to case.
PUBLISH = b"\r\nPUBLISH\r\n"


@dataclass(eq=False)
class _Connection(Connection):
    held: bool = False
    #: The last bytes the client sent, so a command split across two reads is still recognised.
    tail: bytes = b""


class PublishHold(Relay[_Connection]):
    """Listens on a free loopback port and relays each connection to ``upstream_url``'s host and port."""

    default_port = 6379

    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url)
        self._armed = False
        self._released = asyncio.Event()
        self._released.set()
        #: Set once a connection's answers are held (the instance has published and waits for the reply).
        self.holding = asyncio.Event()

    def hold_after_publish(self) -> None:
        """From now on, the first connection that sends a ``PUBLISH`` gets no answer until :meth:`release`."""
        self._armed = True
        self._released.clear()
        self.holding.clear()

    def release(self) -> None:
        """Pass the held answers on, and everything after them; idempotent."""
        self._armed = False
        self._released.set()

    async def close(self) -> None:
        """Stop listening and cut every relayed connection (what was held is let go first)."""
        self.release()
        await super().close()

    def _connection(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> _Connection:
        return _Connection(client, server)

    async def _requests(self, reader: asyncio.StreamReader, connection: _Connection) -> None:
        """Client to server, untouched; marks the connection held when it publishes while the link is armed (before
        the command goes on, so no answer to it can slip through)."""
        while data := await reader.read(CHUNK):
            seen = connection.tail + data
            if self._armed and PUBLISH in seen.upper():
                self._armed = False
                connection.held = True
                self.holding.set()
            connection.tail = seen[-len(PUBLISH):]
            connection.server.write(data)
            await connection.server.drain()

    async def _answers(self, reader: asyncio.StreamReader, connection: _Connection) -> None:
        """Server to client, untouched, except that a held connection's answers wait for :meth:`release`."""
        while data := await reader.read(CHUNK):
            if connection.held:
                await self._released.wait()
                connection.held = False
            connection.client.write(data)
            await connection.client.drain()
