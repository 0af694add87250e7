"""The base of the suite's TCP relays (support/processes/relay.py): its URL keeps all but the address, it relays
bytes both ways, a reserved port refuses connections until the relay starts, and :meth:`Relay.close` leaves no
connection or task behind. Against an echo server on loopback: no Redis or PostgreSQL needed."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from support.processes.gate import Gate
from support.processes.relay import Connection, Relay, relayed_url


class _Plain(Relay[Connection]):
    def _connection(self, client: asyncio.StreamWriter, server: asyncio.StreamWriter) -> Connection:
        return Connection(client, server)


async def _echo_server() -> asyncio.Server:
    async def echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        with contextlib.suppress(OSError):
            while data := await reader.read(65536):
                writer.write(data)
                await writer.drain()
        writer.close()

    return await asyncio.start_server(echo, "127.0.0.1", 0)


def _url(server: asyncio.Server) -> str:
    return f"postgresql://user:pw@127.0.0.1:{server.sockets[0].getsockname()[1]}/db?sslmode=disable"


def test_the_url_keeps_credentials_path_and_query() -> None:
    assert relayed_url("redis://:secret@10.0.0.1:6380/3?x=1", 4242) == "redis://:secret@127.0.0.1:4242/3?x=1"
    assert relayed_url("postgresql://db.example/app", 4242) == "postgresql://127.0.0.1:4242/app"


async def test_it_relays_both_ways_and_close_leaves_nothing_behind() -> None:
    server = await _echo_server()
    relay = _Plain(_url(server))
    await relay.start()
    try:
        assert relay.url == f"postgresql://user:pw@127.0.0.1:{relay.port}/db?sslmode=disable"
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        writer.write(b"hello")
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(5), 2) == b"hello"
        relaying = relay._tasks | relay._handlers  # the connection's two directions and the task that accepted it
        assert len(relaying) == 3
        await relay.close()
        assert all(task.done() for task in relaying), "close() left a task behind"
        assert not relay.listening
        assert await asyncio.wait_for(reader.read(100), 2) == b""  # the relay cut the connection
        writer.close()
    finally:
        await relay.close()
        server.close()


async def test_a_reserved_port_refuses_connections_until_the_relay_starts() -> None:
    server = await _echo_server()
    gate = Gate(_url(server))
    try:
        assert not gate.is_open and gate.url.endswith(f":{gate.port}/db?sslmode=disable")
        with pytest.raises(ConnectionRefusedError):
            await asyncio.open_connection("127.0.0.1", gate.port)
        await gate.open()
        assert gate.is_open
        reader, writer = await asyncio.open_connection("127.0.0.1", gate.port)
        writer.write(b"ping")
        await writer.drain()
        assert await asyncio.wait_for(reader.readexactly(4), 2) == b"ping"
        writer.close()
    finally:
        await gate.close()
        server.close()
    assert not gate.is_open


async def test_an_upstream_that_is_down_closes_the_client() -> None:
    server = await _echo_server()
    url = _url(server)
    server.close()
    await server.wait_closed()
    relay = _Plain(url)
    await relay.start()
    try:
        reader, writer = await asyncio.open_connection("127.0.0.1", relay.port)
        assert await asyncio.wait_for(reader.read(100), 2) == b""
        writer.close()
    finally:
        await relay.close()
