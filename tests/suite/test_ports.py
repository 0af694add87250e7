"""Free ports (support/services/ports.py): a port handed out is kept from every other ``bind(0)`` on the machine
(another worker of a parallel run, another run) until its server binds it, and a server binding with
``SO_REUSEADDR`` (asyncio, valkey, PostgreSQL) gets it."""

import errno
import socket

import pytest

from support.services.ports import free_port


def test_a_free_port_is_not_handed_to_another_bind_but_a_server_gets_it():
    port = free_port()
    with socket.socket() as plain, pytest.raises(OSError) as refused:  # what bind(0) checks: the port is taken
        plain.bind(("127.0.0.1", port))
    assert refused.value.errno == errno.EADDRINUSE
    with socket.socket() as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind(("127.0.0.1", port))
        server.listen()


def test_nobody_listens_on_a_free_port_so_it_serves_as_a_closed_one():
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", free_port()), timeout=2)


def test_many_free_ports_are_all_different_and_kept_from_bind_0():
    ports = {free_port() for _ in range(100)}
    assert len(ports) == 100
    for _ in range(1000):
        with socket.socket() as other:
            other.bind(("127.0.0.1", 0))
            assert other.getsockname()[1] not in ports
