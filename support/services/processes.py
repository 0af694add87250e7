"""Server processes started from binaries, watched through their own output.

A server announces readiness in its log ("Ready to accept connections", "ready to accept connections"), so
the suite waits for that line rather than probing a port.
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
from collections.abc import Sequence


class ServerProcess:
    """A child process whose combined output is kept (last 200 lines) and matched against a ready line."""

    def __init__(self, name: str, argv: Sequence[str], *, ready_line: str, user: str | None = None,
                 cwd: str | None = None) -> None:
        self.name = name
        self.argv = list(argv)
        self.ready_line = ready_line
        self.user = user
        self.cwd = cwd
        self.lines: collections.deque[str] = collections.deque(maxlen=200)
        self._ready = threading.Event()
        self._proc: subprocess.Popen[str] | None = None

    def start(self, timeout: float = 30.0) -> None:
        """Start the server and return once it printed its ready line; raise with its output otherwise."""
        self._ready.clear()
        self._proc = subprocess.Popen(
            self.argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, text=True,
            user=self.user, cwd=self.cwd, start_new_session=True, errors="replace",
        )
        threading.Thread(target=self._pump, args=(self._proc,), name=f"{self.name}-log", daemon=True).start()
        if not self._ready.wait(timeout):
            self.kill()
            raise RuntimeError(f"{self.name} did not report ready within {timeout} s:\n{self.tail()}")
        if self._proc.poll() is not None:
            raise RuntimeError(f"{self.name} exited with {self._proc.returncode}:\n{self.tail()}")

    def _pump(self, proc: subprocess.Popen[str]) -> None:
        assert proc.stdout is not None
        for line in proc.stdout:
            self.lines.append(line.rstrip("\n"))
            if self.ready_line in line:
                self._ready.set()
        self._ready.set()  # exited: unblock start(), which then reports the exit

    @property
    def pid(self) -> int | None:
        return self._proc.pid if self._proc else None

    def running(self) -> bool:
        return self._proc is not None and self._proc.poll() is None

    def send_signal(self, signum: int) -> None:
        if self.running():
            assert self._proc is not None
            os.kill(self._proc.pid, signum)

    def stop(self, signum: int = signal.SIGTERM, timeout: float = 10.0) -> None:
        """Ask the server to stop; kill it if it has not within ``timeout``."""
        if not self.running():
            return
        assert self._proc is not None
        self._proc.send_signal(signum)
        try:
            self._proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)

    def tail(self, n: int = 30) -> str:
        return "\n".join(list(self.lines)[-n:])
