"""What the suite's TCP relays share: a stand-in on loopback for Redis or PostgreSQL, in front of one Processor.

The suite troubles one Processor instance's dependency on purpose, without touching the server itself (so it works
under every provider, and the run's other Processors see nothing), by putting a relay between the two: the
instance is given :attr:`Relay.url` instead of the server's URL. Each relay of support/processes/ says what it
does to the traffic; this module owns the rest, once:

* where the server is (the upstream URL's host and port) and where the relay is (:attr:`Relay.url`, the same URL
  with the relay's loopback address: credentials, database, path and query kept);
* listening: on a free loopback port at :meth:`Relay.start`, or (``reserve=True``) on a port bound at once but not
  listened on until :meth:`Relay.start`, so that every connection is refused meanwhile, as when the server is down;
* for each accepted connection, one to the server, and the two directions run side by side until either ends,
  when both sides are closed (:meth:`Relay._requests`: client to server, :meth:`Relay._answers`: server to client,
  both byte for byte unless a subclass says otherwise);
* clean-up (:meth:`Relay.close`): no listening socket, connection or task left behind.

A subclass keeps what it knows of each connection in a :class:`Connection` of its own (:meth:`Relay._connection`)
and overrides the directions it troubles.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from collections.abc import Awaitable
from dataclasses import dataclass, field
from typing import Generic, TypeVar
from urllib.parse import urlsplit, urlunsplit

from ..clock import ANSWER

#: Where every relay listens.
LOOPBACK = "127.0.0.1"
#: The server's port when the upstream URL names none, by scheme (otherwise :attr:`Relay.default_port`).
DEFAULT_PORTS = {"redis": 6379, "rediss": 6379}
#: The most bytes one read takes.
CHUNK = 65536


@dataclass(eq=False)
class Connection:
    """One relayed connection: the writer to the client and the writer to the server."""

    client: asyncio.StreamWriter
    server: asyncio.StreamWriter
    #: Set once the relay has closed it (either side ended, or it was cut).
    closed: asyncio.Event = field(default_factory=asyncio.Event, kw_only=True)

    def cut(self) -> None:
        """Close both sides now; the relay then ends the connection."""
        for writer in (self.client, self.server):
            writer.close()


C = TypeVar("C", bound=Connection)


def relayed_url(upstream_url: str, port: int) -> str:
    """``upstream_url`` with ``LOOPBACK:port`` instead of the server's address (credentials, path, query kept)."""
    parts = urlsplit(upstream_url)
    credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
    return urlunsplit((parts.scheme, f"{credentials}{LOOPBACK}:{port}", parts.path, parts.query, parts.fragment))


async def pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    """Pass every byte from ``reader`` to ``writer``, untouched, until the reader's end."""
    while data := await reader.read(CHUNK):
        writer.write(data)
        await writer.drain()


class Relay(Generic[C]):
    """Stands for the server of ``upstream_url`` at :attr:`url`, relaying each connection to it.

    With ``reserve``, the port is bound at once but not listened on until :meth:`start`: connections to it are
    refused meanwhile (the kernel answers with a reset), and no other program can take it.
    """

    #: The server's port when ``upstream_url`` names none and its scheme has no entry in :data:`DEFAULT_PORTS`.
    default_port = 5432

    def __init__(self, upstream_url: str, *, reserve: bool = False) -> None:
        parts = urlsplit(upstream_url)
        self._upstream_url = upstream_url
        self._upstream_host = parts.hostname or LOOPBACK
        self._upstream_port = parts.port or DEFAULT_PORTS.get(parts.scheme, self.default_port)
        self._socket: socket.socket | None = None
        self._server: asyncio.Server | None = None
        self._own_port: int | None = None
        #: The connections being relayed now, the tasks that run their directions, and the tasks that accepted
        #: them (each ends once its connection is closed).
        self._relaying: set[C] = set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._handlers: set[asyncio.Task[None]] = set()
        if reserve:
            self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            self._socket.bind((LOOPBACK, 0))  # bound, not listening: connections are refused
            self._own_port = int(self._socket.getsockname()[1])

    # -- where it is -------------------------------------------------------------------------------------

    @property
    def port(self) -> int:
        """The relay's own loopback port."""
        assert self._own_port is not None, "the relay is not started"
        return self._own_port

    @property
    def url(self) -> str:
        """``upstream_url`` with the relay's address instead of the server's (credentials and database kept)."""
        return relayed_url(self._upstream_url, self.port)

    @property
    def listening(self) -> bool:
        """Whether the relay accepts connections (from :meth:`start` to :meth:`close`)."""
        return self._server is not None and self._server.is_serving()

    # -- life ----------------------------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (on the reserved port, or else on a free one) and relay every connection from now on; idempotent."""
        if self._server is not None:
            return
        if self._socket is None:
            self._server = await asyncio.start_server(self._accept, LOOPBACK, 0)
            self._own_port = int(self._server.sockets[0].getsockname()[1])
        else:
            self._server = await asyncio.start_server(self._accept, sock=self._socket)

    async def close(self) -> None:
        """Stop listening, cut every relayed connection and end its tasks (clean-up); waits at most ``ANSWER``
        for the connections to be closed, and as long for the server."""
        if self._server is not None:
            self._server.close()  # and the reserved socket with it
        elif self._socket is not None:
            self._socket.close()
        for connection in list(self._relaying):
            connection.cut()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._handlers:
            await asyncio.wait(self._handlers, timeout=ANSWER)
        if self._server is not None:
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._server.wait_closed(), ANSWER)

    # -- what a subclass says --------------------------------------------------------------------------------

    def _admits(self) -> bool:
        """Whether to relay a new connection (otherwise it is closed at once); by default always."""
        return True

    def _connection(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> C:
        """What the relay keeps of a new connection, given its two writers."""
        raise NotImplementedError

    async def _requests(self, reader: asyncio.StreamReader, connection: C) -> None:
        """Client to server (``reader`` reads the client): byte for byte by default."""
        await pump(reader, connection.server)

    async def _answers(self, reader: asyncio.StreamReader, connection: C) -> None:
        """Server to client (``reader`` reads the server): byte for byte by default."""
        await pump(reader, connection.client)

    def _ended(self, connection: C) -> None:
        """Called once a connection is closed (after :attr:`Connection.closed` is set); by default nothing."""

    # -- relaying ------------------------------------------------------------------------------------------

    async def _accept(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        handler = asyncio.current_task()
        assert handler is not None
        self._handlers.add(handler)
        try:
            await self._relay(client_reader, client_writer)
        finally:
            self._handlers.discard(handler)

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if not self._admits():
            client_writer.close()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(self._upstream_host, self._upstream_port)
        except OSError:
            client_writer.close()
            return
        connection = self._connection(client_writer, server_writer)
        self._relaying.add(connection)
        directions = [asyncio.create_task(_until_either_end(self._requests(client_reader, connection))),
                      asyncio.create_task(_until_either_end(self._answers(server_reader, connection)))]
        self._tasks.update(directions)
        try:
            await asyncio.wait(directions, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in directions:
                task.cancel()
            await asyncio.gather(*directions, return_exceptions=True)
            self._tasks.difference_update(directions)
            self._relaying.discard(connection)
            connection.cut()
            connection.closed.set()
            self._ended(connection)


async def _until_either_end(direction: Awaitable[None]) -> None:
    """Run one direction; a side that resets or closes mid-message ends it like a side that closes cleanly."""
    with contextlib.suppress(OSError, asyncio.IncompleteReadError):
        await direction
