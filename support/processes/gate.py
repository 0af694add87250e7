"""A dependency the suite can make unreachable for one Processor: a gate on loopback in front of Redis or PostgreSQL.

Stopping the run's servers disturbs every instance, and only the embedded provider can do it; the gate works under
every provider and affects one instance. Closed, its port is bound but not listening, so every connection to it is
refused at once (as when the server is down: the kernel answers with a reset), and no other program can take the
port meanwhile. Opened, it listens and relays each connection, byte for byte, to the real server.
"""

from __future__ import annotations

import asyncio

from .relay import Connection, Relay


class Gate(Relay[Connection]):
    """Stands for the server of ``upstream_url`` at :attr:`url`; closed until :meth:`open`."""

    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url, reserve=True)

    @property
    def is_open(self) -> bool:
        return self.listening

    async def open(self) -> None:
        """Listen on the same port and relay every connection from now on."""
        await self.start()

    def _connection(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> Connection:
        return Connection(client, server)
