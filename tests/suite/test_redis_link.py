"""The link to Redis the suite troubles on purpose (support/processes/redis_link.py): it relays untouched, recognises
a subscription, loses the write that carries a ``PUBLISH``, holds back channel messages, and goes silent. Against a
stand-in server on loopback that answers ``+OK`` to every read: no Redis needed."""

from __future__ import annotations

import asyncio
import contextlib

from support.processes.redis_link import RedisLink

SUBSCRIBE = b"*2\r\n$9\r\nSUBSCRIBE\r\n$4\r\nlive\r\n"
PUBLISH = b"*3\r\n$7\r\nPUBLISH\r\n$4\r\nlive\r\n$1\r\nx\r\n*3\r\n$4\r\nXACK\r\n$1\r\ns\r\n$1\r\ng\r\n"
PING = b"*1\r\n$4\r\nPING\r\n"
#: How long a negative check listens on loopback, where an answer takes well under a millisecond.
QUIET = 0.1


class _Server:
    """Answers ``+OK`` for every chunk it reads, and keeps what it read."""

    def __init__(self) -> None:
        self.received = b""
        self.server: asyncio.Server | None = None

    async def start(self) -> str:
        self.server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        return f"redis://127.0.0.1:{self.server.sockets[0].getsockname()[1]}/0"

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                self.received += data
                writer.write(b"+OK\r\n")
                await writer.drain()
        writer.close()

    def close(self) -> None:
        assert self.server is not None
        self.server.close()


async def _linked() -> tuple[_Server, RedisLink, asyncio.StreamReader, asyncio.StreamWriter]:
    server = _Server()
    link = RedisLink(await server.start())
    await link.start()
    port = int(link.url.rsplit(":", 1)[1].split("/")[0])
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    return server, link, reader, writer


async def _ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, command: bytes) -> bytes:
    writer.write(command)
    await writer.drain()
    return await asyncio.wait_for(reader.read(100), 2)


async def test_the_link_keeps_the_credentials_and_database_of_the_url() -> None:
    link = RedisLink("redis://:secret@10.0.0.1:6380/3")
    await link.start()
    try:
        assert link.url.startswith("redis://:secret@127.0.0.1:") and link.url.endswith("/3")
    finally:
        await link.close()


async def test_the_writes_carrying_a_publish_are_lost_and_their_connections_cut_until_kept() -> None:
    server, link, reader, writer = await _linked()
    try:
        assert await _ask(reader, writer, PING) == b"+OK\r\n"
        link.lose_publishes()
        assert await _ask(reader, writer, PUBLISH) == b""  # the connection was cut
        assert link.publish_lost.is_set() and b"PUBLISH" not in server.received
        again, writer = await _linked_connection(link)  # a client's retry, on a new connection
        assert await _ask(again, writer, PING) == b"+OK\r\n"
        assert await _ask(again, writer, PUBLISH) == b""
        link.keep_publishes()
        again, writer = await _linked_connection(link)
        assert await _ask(again, writer, PUBLISH) == b"+OK\r\n" and b"PUBLISH" in server.received
    finally:
        writer.close()
        await link.close()
        server.close()


async def test_channel_messages_wait_while_held_and_other_connections_do_not() -> None:
    server, link, reader, writer = await _linked()
    other = await _linked_connection(link)
    try:
        assert await _ask(reader, writer, SUBSCRIBE) == b"+OK\r\n"
        assert link.channel_subscribers == 1
        link.hold_channel()
        writer.write(PING)
        await writer.drain()
        assert await _ask(*other, PING) == b"+OK\r\n"  # a connection that never subscribed is not held
        assert await _nothing_within(reader, QUIET)
        link.release_channel()
        assert await asyncio.wait_for(reader.read(100), 2) == b"+OK\r\n"
        assert link.drop_channel() == 1
        assert await asyncio.wait_for(reader.read(100), 2) == b""
    finally:
        writer.close()
        other[1].close()
        await link.close()
        server.close()


async def test_a_silent_link_relays_nothing_until_it_speaks_again() -> None:
    server, link, reader, writer = await _linked()
    try:
        link.go_silent()
        writer.write(PING)
        await writer.drain()
        assert await _nothing_within(reader, QUIET) and server.received == b""
        link.speak_again()
        assert await asyncio.wait_for(reader.read(100), 2) == b"+OK\r\n"
    finally:
        writer.close()
        await link.close()
        server.close()


async def _linked_connection(link: RedisLink) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    port = int(link.url.rsplit(":", 1)[1].split("/")[0])
    return await asyncio.open_connection("127.0.0.1", port)


async def _nothing_within(reader: asyncio.StreamReader, seconds: float) -> bool:
    """Whether nothing arrives on ``reader`` for ``seconds`` (a read that keeps its bytes for the next one)."""
    waiting = asyncio.ensure_future(reader.read(100))
    done, _ = await asyncio.wait([waiting], timeout=seconds)
    if done:
        return False
    waiting.cancel()
    await asyncio.gather(waiting, return_exceptions=True)
    return True
