"""A network link the suite can stall: a TCP relay between one Processor instance and PostgreSQL.

Some contract rules are about what happens while an answer is on its way. The snapshot/live boundary
(docs/processor.md, section 4) says live positions are buffered from *before* the snapshot query runs: a
position committed after the snapshot was read, and published while the answer is still travelling to the
Processor, must reach the fan live. Holding PostgreSQL's results back on the wire makes that moment last as
long as the suite needs, without touching the Processor: it only sees a slow network.

While :meth:`SlowLink.hold` is in force, each relayed connection passes PostgreSQL's messages on until the
first *result* of a command (a ``DataRow`` or ``CommandComplete``, PostgreSQL protocol 3) and keeps that and
everything after it. So statements still get prepared, queries run and finish on the server (a query's
snapshot is taken while the Processor waits), and their results wait in the relay. :meth:`SlowLink.release`
passes everything on, in order. Requests from the Processor always go through.

:meth:`SlowLink.cut` makes the database unreachable for that instance alone: every relayed connection is cut and
new ones are closed as soon as they open, until :meth:`SlowLink.mend`.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
from urllib.parse import urlsplit, urlunsplit

from ..clock import ANSWER

#: The first message of a connection that asks for TLS or GSS encryption; the server answers with one byte.
ENCRYPTION_REQUESTS = {80877103, 80877104}
#: Server messages that carry a command's result.
RESULTS = {ord("D"), ord("C")}


class SlowLink:
    """Listens on a free loopback port and relays each connection to ``upstream_url``'s host and port."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream_url = upstream_url
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or 5432
        self._server: asyncio.Server | None = None
        self._holding = False
        self._cut = False
        self._released = asyncio.Event()
        self._released.set()
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: list[asyncio.StreamWriter] = []
        #: The local port of each relayed connection to PostgreSQL (``pg_stat_activity.client_port``).
        self.upstream_ports: set[int] = set()
        #: The upstream ports whose results the relay holds right now.
        self.held_ports: set[int] = set()

    async def start(self) -> None:
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", 0)

    @property
    def url(self) -> str:
        """``upstream_url`` with the relay's address instead of the server's."""
        assert self._server is not None, "the link is not started"
        port = self._server.sockets[0].getsockname()[1]
        parts = urlsplit(self._upstream_url)
        credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit((parts.scheme, f"{credentials}127.0.0.1:{port}", parts.path, parts.query, parts.fragment))

    def hold(self) -> None:
        """From now on each connection keeps PostgreSQL's results, from its next one on."""
        self._holding = True
        self._released.clear()

    def release(self) -> None:
        """Pass the held results on, and everything after them; idempotent."""
        self._holding = False
        self.held_ports.clear()
        self._released.set()

    async def cut(self) -> None:
        """Cut every relayed connection, and close new ones at once, until :meth:`mend`."""
        self._cut = True
        for task in list(self._tasks):
            task.cancel()
        for writer in self._writers:
            writer.close()
        self._writers.clear()

    def mend(self) -> None:
        """Relay new connections again."""
        self._cut = False

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        if self._cut:
            client_writer.close()
            return
        try:
            server_reader, server_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            client_writer.close()
            return
        port = server_writer.get_extra_info("sockname")[1]
        self.upstream_ports.add(port)
        self._writers += [client_writer, server_writer]
        first = asyncio.get_running_loop().create_future()
        pumps = [asyncio.create_task(self._requests(client_reader, server_writer, first)),
                 asyncio.create_task(self._answers(server_reader, client_writer, first, port))]
        self._tasks.update(pumps)
        await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        for task in pumps:
            task.cancel()
        await asyncio.gather(*pumps, return_exceptions=True)
        self._tasks.difference_update(pumps)
        for writer in (client_writer, server_writer):
            writer.close()

    async def _requests(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                        first: asyncio.Future[bool]) -> None:
        """Client to server, untouched; notes whether the connection opens with an encryption request."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            head = await reader.readexactly(8)
            first.set_result(struct.unpack("!I", head[4:])[0] in ENCRYPTION_REQUESTS)
            writer.write(head)
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        if not first.done():
            first.set_result(False)

    async def _answers(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter,
                       first: asyncio.Future[bool], port: int) -> None:
        """Server to client, message by message, holding results while :meth:`hold` is in force."""
        with contextlib.suppress(OSError, asyncio.IncompleteReadError):
            if await first:
                answer = await reader.readexactly(1)  # b"N": no encryption (b"S" would start TLS: not relayed)
                writer.write(answer)
                if answer != b"N":
                    await reader.read(-1)
                    return
            while True:
                head = await reader.readexactly(5)
                body = await reader.readexactly(struct.unpack("!I", head[1:])[0] - 4)
                if self._holding and head[0] in RESULTS and port not in self.held_ports:
                    self.held_ports.add(port)
                if port in self.held_ports:
                    await self._released.wait()
                writer.write(head + body)
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
