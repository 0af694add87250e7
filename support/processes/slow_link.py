"""A network link the suite can stall, cut or silence: a TCP relay between one Processor instance and PostgreSQL.

Some contract rules are about what happens while an answer is on its way. The snapshot/live boundary
(docs/processor.md, section 4) says live positions are buffered from *before* the snapshot query runs: a
position committed after the snapshot was read, and published while the answer is still travelling to the
Processor, must reach the fan live. A correction's query may likewise be overtaken by a newer live position, or
by a second correction. Holding PostgreSQL's results back on the wire makes such a moment last as long as the
suite needs, without touching the Processor: it only sees a slow network.

While :meth:`SlowLink.hold` is in force, each relayed connection passes PostgreSQL's messages on until the
first *result* (a ``DataRow`` or ``CommandComplete``, PostgreSQL protocol 3) of a read whose SQL mentions
``positions`` (a snapshot's or a correction's query; never a write) and keeps that and everything after it.
So statements still get prepared, queries run and finish on the server (a query's snapshot is taken while the
Processor waits), and their results wait in the relay. :meth:`SlowLink.release`
passes everything on; :meth:`SlowLink.release_in_order` lets the held connections go one at a time, in an order
the scenario chooses. Requests from the Processor always go through.

The relay reads the Processor's side too, message by message: each connection's start-up parameters
(:attr:`Relayed.parameters`), whether it LISTENs (the corrections listener of section 4, whose notifications a
hold never keeps back) and whether it stores positions (an ``INSERT`` into ``positions``, section 10). The
listener's connection alone can be cut (:meth:`SlowLink.cut_listeners`) or silenced, its bytes dropped both
ways while the sockets stay open (:meth:`SlowLink.silence_listeners`: a connection that died without a word),
and new connections can be turned away for a while (:meth:`SlowLink.refuse`). :meth:`SlowLink.cut` makes the
database unreachable for that instance alone (every connection cut, new ones turned away) until :meth:`SlowLink.mend`.
"""

from __future__ import annotations

import asyncio
import re
import struct
from dataclasses import dataclass, field

from ..clock import ANSWER, within
from .relay import Connection, Relay

#: The first message of a connection that asks for TLS or GSS encryption; the server answers with one byte.
ENCRYPTION_REQUESTS = {80877103, 80877104}
#: The start-up message's protocol version 3.0: key/value parameters follow.
PROTOCOL_3 = 196608
#: Server messages that carry a command's result.
RESULTS = {ord("D"), ord("C")}
#: Client messages that carry or name SQL: a simple query, the parse of a prepared statement, its execution.
QUERY, PARSE, BIND = ord("Q"), ord("P"), ord("B")
#: What the SQL of a held command mentions by default: the snapshot's and the corrections' queries read
#: ``latest_positions`` (docs/processor.md, section 7), positions are stored into ``positions``.
POSITIONS = "positions"
#: SQL that stores positions (anywhere in the text: a statement may begin with ``WITH``), and SQL that writes.
STORES_POSITIONS = re.compile(r"\binsert\s+into\s+positions\b")
WRITES = re.compile(r"\b(insert\s+into|update|delete\s+from)\b")


@dataclass(eq=False)
class Relayed(Connection):
    """One relayed connection: its upstream port (``pg_stat_activity.client_port``) and what the relay saw of it."""

    port: int = field(init=False)
    #: The start-up message's parameters (``user``, ``database``, and any setting the client sends).
    parameters: dict[str, str] = field(default_factory=dict)
    listens: bool = False
    stores_positions: bool = False
    #: The SQL of each statement the client prepared, by name, and of the command it executes now.
    statements: dict[bytes, str] = field(default_factory=dict)
    executing: str = ""
    silenced: bool = False
    #: Set while its results may pass; cleared when a hold keeps its next result.
    gate: asyncio.Event = field(default_factory=asyncio.Event)
    #: Set once the first held message went on after the gate opened.
    passed: asyncio.Event = field(default_factory=asyncio.Event)
    held: bool = False
    #: Whether the client's first message asked for encryption (the server then answers with one byte first).
    encrypting: asyncio.Future[bool] = field(init=False)

    def __post_init__(self) -> None:
        self.port = int(self.server.get_extra_info("sockname")[1])
        self.encrypting = asyncio.get_running_loop().create_future()
        self.gate.set()


def start_up_parameters(body: bytes) -> dict[str, str]:
    """The key/value pairs of a protocol-3 start-up message (``body``: after its length and version)."""
    parts = body.split(b"\0")
    pairs = zip(parts[0::2], parts[1::2], strict=False)
    return {key.decode(errors="replace"): value.decode(errors="replace") for key, value in pairs if key}


def note_request(connection: Relayed, kind: int, body: bytes) -> None:
    """Follow the SQL a client sends: a simple query is executed at once; a prepared statement is named by its
    ``Parse`` and executed by a ``Bind`` that names it (the unnamed one, ``b""``, is re-parsed each time)."""
    if kind == QUERY:
        connection.executing = body.split(b"\0", 1)[0].decode(errors="replace").strip().lower()
    elif kind == PARSE:
        name, rest = body.split(b"\0", 1)
        connection.statements[name] = rest.split(b"\0", 1)[0].decode(errors="replace").strip().lower()
        sql = connection.statements[name]
        if sql.startswith("listen"):
            connection.listens = True
        elif STORES_POSITIONS.search(sql):
            connection.stores_positions = True
    elif kind == BIND:
        statement = body.split(b"\0", 2)[1]
        connection.executing = connection.statements.get(statement, "")
    if kind == QUERY and connection.executing.startswith("listen"):
        connection.listens = True
    elif kind == QUERY and STORES_POSITIONS.search(connection.executing):
        connection.stores_positions = True


def reads(sql: str, mentioning: str) -> bool:
    """Whether a command is a read that mentions ``mentioning`` (a write, such as the Processor's own insert of
    positions, is never held: holding it would only delay what the scenario waits to see published)."""
    return mentioning in sql and not WRITES.search(sql)


class SlowLink(Relay[Relayed]):
    """Listens on a free loopback port and relays each connection to ``upstream_url``'s host and port."""

    default_port = 5432

    def __init__(self, upstream_url: str) -> None:
        super().__init__(upstream_url)
        self._holding = False
        self._mentioning = POSITIONS
        self._refusing = False
        #: Every connection relayed so far, in the order they were opened.
        self.connections: list[Relayed] = []
        #: The connections whose results the relay holds right now, in the order it began holding them.
        self.held: list[Relayed] = []
        #: Every byte the Processor sent PostgreSQL through the relay, in order per connection (what the database
        #: was asked: queries, their parameters).
        self.heard = bytearray()

    @property
    def upstream_ports(self) -> set[int]:
        """The local port of each relayed connection to PostgreSQL (``pg_stat_activity.client_port``)."""
        return {connection.port for connection in self.connections}

    @property
    def held_ports(self) -> set[int]:
        """The upstream ports whose results the relay holds right now."""
        return {connection.port for connection in self.held}

    # -- holding results back -----------------------------------------------------------------------------

    def hold(self, mentioning: str = POSITIONS) -> None:
        """From now on each connection but a listening one keeps PostgreSQL's results, from the next result of a
        read whose SQL mentions ``mentioning`` on (other commands, such as a health probe's ``SELECT 1``, the
        client library's own look-ups of types or an insert, are answered as usual until then)."""
        self._mentioning = mentioning.lower()
        self._holding = True

    def release(self) -> None:
        """Pass the held results on, and everything after them, all at once; idempotent."""
        self._holding = False
        held, self.held = self.held, []
        for connection in held:
            connection.gate.set()

    async def release_in_order(self, order: list[Relayed]) -> None:
        """Stop holding, and let the held connections go one at a time in ``order``, each only once the one before
        has passed its first held message on (or was closed meanwhile); then the rest, if any, all at once."""
        self._holding = False
        for connection in order:
            if connection not in self.held:
                continue  # closed meanwhile (e.g. a health probe the Processor gave up on)
            self.held.remove(connection)
            connection.gate.set()
            went = [asyncio.ensure_future(connection.passed.wait()), asyncio.ensure_future(connection.closed.wait())]
            done, pending = await asyncio.wait(went, timeout=within(ANSWER), return_when=asyncio.FIRST_COMPLETED)
            for waiter in pending:
                waiter.cancel()
            assert done, f"the held results of port {connection.port} did not go on within {ANSWER} s"
        self.release()

    def cut_held(self) -> None:
        """Cut every held connection, both ways, instead of passing its results on; stop holding."""
        self._holding = False
        held, self.held = self.held, []
        for connection in held:
            connection.cut()

    # -- the listener's connection, and new connections ------------------------------------------------------

    def by_port(self, port: int) -> Relayed:
        found = [connection for connection in self.connections if connection.port == port]
        assert found, f"no relayed connection from port {port}"
        return found[-1]

    def listeners(self) -> list[Relayed]:
        return [connection for connection in self.connections if connection.listens]

    def cut_listeners(self) -> int:
        """Close the listening connections, both ways; return how many there were."""
        listening = self.listeners()
        for connection in listening:
            connection.cut()
        return len(listening)

    def silence_listeners(self) -> int:
        """Drop every byte of the listening connections from now on, both ways, keeping their sockets open (a
        connection that died without a word); return how many there were."""
        listening = self.listeners()
        for connection in listening:
            connection.silenced = True
        return len(listening)

    def refuse(self) -> None:
        """Close every new connection at once, until :meth:`admit`."""
        self._refusing = True

    def admit(self) -> None:
        self._refusing = False

    async def cut(self) -> None:
        """The database unreachable for this instance alone: every relayed connection cut, and new ones closed at
        once, until :meth:`mend`."""
        self.refuse()
        for connection in self.connections:
            connection.cut()

    def mend(self) -> None:
        """Relay new connections again."""
        self.admit()

    async def close(self) -> None:
        """Stop listening and cut every relayed connection (what was held is let go, refused ones admitted)."""
        self.release()
        self.admit()
        await super().close()

    # -- relaying ------------------------------------------------------------------------------------------

    def _admits(self) -> bool:
        return not self._refusing

    def _connection(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> Relayed:
        connection = Relayed(client, server)
        self.connections.append(connection)
        return connection

    def _ended(self, connection: Relayed) -> None:
        if connection in self.held:
            self.held.remove(connection)

    async def _requests(self, reader: asyncio.StreamReader, connection: Relayed) -> None:
        """Client to server, message by message, noting the start-up parameters and what the SQL does."""
        writer, first = connection.server, connection.encrypting
        try:
            head = await reader.readexactly(8)
            length, code = struct.unpack("!II", head)
            first.set_result(code in ENCRYPTION_REQUESTS)
            if code in ENCRYPTION_REQUESTS:  # the server's one-byte answer is relayed by _answers; then start-up
                writer.write(head)
                self.heard += head
                head = await reader.readexactly(8)
                length, code = struct.unpack("!II", head)
            body = await reader.readexactly(length - 8)
            if code == PROTOCOL_3:
                connection.parameters = start_up_parameters(body)
            writer.write(head + body)
            self.heard += head + body
            while True:
                head = await reader.readexactly(5)
                body = await reader.readexactly(struct.unpack("!I", head[1:])[0] - 4)
                note_request(connection, head[0], body)
                self.heard += head + body
                if connection.silenced:
                    continue
                writer.write(head + body)
                await writer.drain()
        finally:
            if not first.done():
                first.set_result(False)

    async def _answers(self, reader: asyncio.StreamReader, connection: Relayed) -> None:
        """Server to client, message by message, holding results while :meth:`hold` is in force."""
        writer = connection.client
        if await connection.encrypting:
            answer = await reader.readexactly(1)  # b"N": no encryption (b"S" would start TLS: not relayed)
            writer.write(answer)
            if answer != b"N":
                await reader.read(-1)
                return
        while True:
            head = await reader.readexactly(5)
            body = await reader.readexactly(struct.unpack("!I", head[1:])[0] - 4)
            if connection.silenced:
                continue
            if (self._holding and head[0] in RESULTS and not connection.listens and not connection.held
                    and reads(connection.executing, self._mentioning)):
                connection.held = True
                connection.passed.clear()
                connection.gate.clear()
                self.held.append(connection)
            if connection.held:
                await connection.gate.wait()
                connection.held = False
                writer.write(head + body)
                await writer.drain()
                connection.passed.set()
                continue
            writer.write(head + body)
            await writer.drain()
