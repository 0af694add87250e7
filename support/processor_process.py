"""The Processor under test, as a real child process started from a command line.

Default command: ``python -m processor``. Another implementation is tested with
``-D processor_cmd="..."``; it receives the same environment variables (docs/processor.md, section 1).
"""

from __future__ import annotations

import os
import signal
import subprocess
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp

from .settings import REPO_ROOT
from .waiting import eventually


class ProcessorProcess:
    """One Processor instance: start, wait until healthy, stop (SIGTERM) or kill (SIGKILL), read its log."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], log_path: Path, port: int) -> None:
        self.command = list(command)
        self.env = dict(env)
        self.log_path = log_path
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def live_url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/live"

    def start(self) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PROCESSOR_")}
        environment.update(self.env)
        with self.log_path.open("ab") as log:
            self.proc = subprocess.Popen(self.command, env=environment, cwd=REPO_ROOT, stdout=log,
                                         stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True)

    async def wait_healthy(self, session: aiohttp.ClientSession, timeout: float = 20.0) -> None:
        """Return once ``/healthz`` answers 200; fail early, with the log, if the process exits."""

        async def probe() -> tuple[bool, str]:
            if not self.running():
                return True, "exited"
            try:
                async with session.get(f"{self.base_url}/healthz", timeout=aiohttp.ClientTimeout(total=2)) as r:
                    return r.status == 200, f"HTTP {r.status} {await r.text()}"
            except aiohttp.ClientError as exc:
                return False, f"{type(exc).__name__}: {exc}"

        await eventually(probe, timeout=timeout, what=f"{self.base_url}/healthz to answer 200")
        if not self.running():
            code = self.proc.returncode if self.proc else None
            raise ProcessorExited(f"the Processor exited with status {code} before it was healthy:\n{self.tail()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = 10.0) -> int | None:
        """SIGTERM, then SIGKILL after ``timeout``; return the exit status."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        return self.proc.returncode

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def tail(self, lines: int = 50) -> str:
        try:
            text = self.log_path.read_text(errors="replace")
        except FileNotFoundError:
            return "<no log>"
        return "\n".join(text.splitlines()[-lines:])


class ProcessorExited(RuntimeError):
    """The Processor ended while the suite still needed it."""
