"""Server processes started from binaries, watched through their own output.

A server announces readiness in its log ("Ready to accept connections", "ready to accept connections"), so
the suite waits for that line rather than probing a port.

Each server is recorded in the run's record as soon as it is started (support/services/records.py), so that if
the run is killed, the next one ends it (support/services/leftovers.py).
"""

from __future__ import annotations

import collections
import os
import signal
import subprocess
import threading
from collections.abc import Sequence
from pathlib import Path

from .records import forget, record_process


class ServerProcess:
    """A child process whose combined output is kept (last 200 lines) and matched against a ready line."""

    def __init__(self, name: str, argv: Sequence[str], *, ready_line: str, user: str | None = None,
                 cwd: str | None = None, leftover_signal: int = signal.SIGTERM,
                 kin: str = "child processes") -> None:
        self.name = name
        self.argv = list(argv)
        self.ready_line = ready_line
        self.user = user
        self.cwd = cwd
        #: How the next run ends this server if this run is killed, and what its children are called then.
        self.leftover_signal = leftover_signal
        self.kin = kin
        self._record: Path | None = None
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
        self._record = record_process(self._proc.pid, self.name, group=self._proc.pid, stop_signal=self.leftover_signal,
                                      kin=self.kin, argv=self.argv)
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
        if self.running():
            assert self._proc is not None
            self._proc.send_signal(signum)
            try:
                self._proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        self._forget()

    def kill(self) -> None:
        if self._proc is not None and self._proc.poll() is None:
            self._proc.kill()
            self._proc.wait(10)
        self._forget()

    def _forget(self) -> None:
        """Drop the server from the run's record once it has exited (``kill``'s wait may have timed out)."""
        if self._proc is not None and self._proc.poll() is not None:
            forget(self._record)
            self._record = None

    def tail(self, n: int = 30) -> str:
        return "\n".join(list(self.lines)[-n:])
