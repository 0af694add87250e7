"""Loopback ports: free ones for the services a run starts, and the one fixed port a scenario needs.

Every server of a run listens on a port the kernel picked as free. Only ``@defaults`` needs a fixed one: the
Processor's default port, 8080, which another run of the suite on the same machine (or a busy CI machine's other
jobs) may want at the same moment. :func:`fixed_port` takes a machine-wide lock for it (``flock`` on a file in the
suite's cache folder, which every run and every user of the machine shares), waiting while another run holds it;
then checks that nothing else listens there, and fails, naming the program, when something does: the promise cannot
be checked then, and a skip would hide that.

A free port is reserved until it is used. Asking the kernel for a port (``bind`` to port 0) and closing it leaves
a window until the server binds it, in which another ``bind(0)`` on the machine may be given the same port:
another worker of a parallel run (support/run/parallel.py), another run, another Processor of the same run. The
loser's server then fails to bind, and worse, the suite's health check may be answered by the winner. So the port is
handed over the way ``ephemeral-port-reserve`` does it: a connection is made to it and closed from the accepting side
first, which leaves that side in TIME_WAIT on the port for a minute. While it is there the kernel gives the port to
no ``bind(0)``, but a server binding it with ``SO_REUSEADDR`` gets it: asyncio's and uvloop's servers (the
Processor, the CMS stand-in, the web site, the relays), valkey-server, PostgreSQL and Node's servers all do.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
import time
from collections.abc import Iterator
from pathlib import Path

from ..clock import within
from .cache import cache_dir

#: TCP state LISTEN in /proc/net/tcp.
LISTEN = "0A"


class PortBusy(AssertionError):
    """A fixed port is held by something else; the message says by what."""


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


@contextlib.contextmanager
def fixed_port(port: int, *, wait: float) -> Iterator[None]:
    """Hold the machine-wide lock on ``port`` (waiting up to ``wait`` seconds, scaled, for another run to let it
    go), and make sure no program listens on it, for the duration of the ``with``."""
    folder = cache_dir()
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"port-{port}.lock"
    # Read-only is enough for flock, so a file another user created (mode 0644) serves every user.
    fd = os.open(path, os.O_RDONLY | os.O_CREAT | os.O_CLOEXEC, 0o644)
    try:
        deadline = time.monotonic() + within(wait)
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() >= deadline:
                    raise PortBusy(f"another run of the suite on this machine has held port {port} for {wait} s "
                                   f"(the lock {path}); try again when it is done") from None
                time.sleep(0.05)  # poll interval of a deadline-bounded wait for another process's lock
        _assert_free(port)
        yield
    finally:
        os.close(fd)  # lets go of the lock


def _assert_free(port: int) -> None:
    """Bind the port on every address, as the Processor does (``SO_REUSEADDR``: connections of an earlier holder
    still in TIME_WAIT do not count); fail, naming who listens, if that is refused."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind(("0.0.0.0", port))
        except OSError as exc:
            raise PortBusy(f"port {port} is in use by {_holder(port)} ({exc.strerror}): the Processor's default "
                           "port cannot be checked while it is; stop that program, or run this scenario elsewhere"
                           ) from None


def _holder(port: int) -> str:
    """Which process listens on ``port``, as far as /proc tells this user."""
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with contextlib.suppress(OSError):
            for line in Path(table).read_text().splitlines()[1:]:
                fields = line.split()
                if fields[3] == LISTEN and int(fields[1].rsplit(":", 1)[1], 16) == port:
                    inodes.add(fields[9])
    for pid in (entry for entry in Path("/proc").iterdir() if entry.name.isdigit()):
        with contextlib.suppress(OSError):
            for fd in (pid / "fd").iterdir():
                if os.readlink(fd) in {f"socket:[{inode}]" for inode in inodes}:
                    command = (pid / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
                    return f"process {pid.name} ({command[:120]})"
    return "another program (not visible to this user)" if inodes else "another program"
