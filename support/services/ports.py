"""Free loopback ports for the services a run starts, reserved until they are used.

Asking the kernel for a port (``bind`` to port 0) and closing it leaves a window until the server binds it, in
which another ``bind(0)`` on the machine may be given the same port: another worker of a parallel run
(support/run/parallel.py), another run, another Processor of the same run. The loser's server then fails to
bind, and worse, the suite's health check may be answered by the winner. So the port is handed over the way
``ephemeral-port-reserve`` does it: a connection is made to it and closed from the accepting side first, which
leaves that side in TIME_WAIT on the port for a minute. While it is there the kernel gives the port to no
``bind(0)``, but a server binding it with ``SO_REUSEADDR`` gets it: asyncio's and uvloop's servers (the
Processor, the CMS stand-in, the web site, the relays), valkey-server, PostgreSQL and Node's servers all do.
"""

from __future__ import annotations

import socket


def free_port(host: str = "127.0.0.1") -> int:
    """A port nobody listens on, that no other ``bind(0)`` is given for about a minute (see the docstring)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        server.bind((host, 0))
        server.listen(1)
        port = int(server.getsockname()[1])
        with socket.create_connection((host, port)) as client:
            accepted, _ = server.accept()
            accepted.close()  # the accepting side closes first: its end of the connection waits in TIME_WAIT
            client.recv(1)  # its FIN has arrived (EOF), so that close was the active one
    return port
