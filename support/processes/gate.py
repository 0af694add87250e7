"""A dependency the suite can make unreachable for one Processor: a gate on loopback in front of Redis or PostgreSQL.

Stopping the run's servers disturbs every instance, and only the embedded provider can do it; the gate works under
every provider and affects one instance. Closed, its port is bound but not listening, so every connection to it is
refused at once (as when the server is down: the kernel answers with a reset), and no other program can take the
port meanwhile. Opened, it listens and relays each connection, byte for byte, to the real server.
"""

from __future__ import annotations

import asyncio
import contextlib
import socket
from urllib.parse import urlsplit, urlunsplit


class Gate:
    """Stands for the server of ``upstream_url`` at :attr:`url`; closed until :meth:`open`."""

    def __init__(self, upstream_url: str) -> None:
        parts = urlsplit(upstream_url)
        self._upstream_url = upstream_url
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or {"redis": 6379, "rediss": 6379}.get(parts.scheme, 5432)
        self._socket = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        self._socket.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()

    @property
    def port(self) -> int:
        return int(self._socket.getsockname()[1])

    @property
    def url(self) -> str:
        """``upstream_url`` with the gate's address instead of the server's (credentials, path and query kept)."""
        parts = urlsplit(self._upstream_url)
        credentials = parts.netloc.rsplit("@", 1)[0] + "@" if "@" in parts.netloc else ""
        return urlunsplit((parts.scheme, f"{credentials}127.0.0.1:{self.port}", parts.path, parts.query,
                           parts.fragment))

    @property
    def is_open(self) -> bool:
        return self._server is not None

    async def open(self) -> None:
        """Listen on the same port and relay every connection from now on."""
        if self._server is None:
            self._server = await asyncio.start_server(self._relay, sock=self._socket)

    async def close(self) -> None:
        """Stop listening and end every relayed connection (clean-up)."""
        if self._server is not None:
            self._server.close()
        for writer in list(self._writers):
            writer.close()
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._server is not None:
            with contextlib.suppress(Exception):
                await self._server.wait_closed()
            self._server = None
        else:
            self._socket.close()

    async def _relay(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(self._host, self._port)
        except OSError:
            client_writer.close()
            return
        self._writers.update((client_writer, server_writer))
        pumps = [asyncio.create_task(_pump(client_reader, server_writer)),
                 asyncio.create_task(_pump(server_reader, client_writer))]
        self._tasks.update(pumps)
        try:
            await asyncio.wait(pumps, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in pumps:
                task.cancel()
            await asyncio.gather(*pumps, return_exceptions=True)
            self._tasks.difference_update(pumps)
            for writer in (client_writer, server_writer):
                writer.close()
                self._writers.discard(writer)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    with contextlib.suppress(OSError):
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
