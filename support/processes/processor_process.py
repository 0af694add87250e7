"""The Processor under test, as a real child process started from a command line.

Default command: ``python -m processor``. Another implementation is tested with
``-D processor_cmd="..."``; it receives the same environment variables (docs/processor.md, section 1).

The command may be a launcher (``sh -c …``, ``npm start``) that forks the Processor as a child instead of
exec-ing it. The command runs in a session (and process group) of its own, so every signal goes to the whole
group: SIGTERM reaches the Processor itself, not just its launcher, and stopping leaves no process behind.

Its stderr (the log, and the one line of a start that fails: docs/processor.md, section 1) and its stdout go to two
files, so a step can tell what was written where.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path

import aiohttp

from ..clock import ANSWER, CATCH_UP, PROBE, SETTLE, within
from ..run.settings import REPO_ROOT
from ..services.records import record_process
from ..waiting import eventually


class ProcessorProcess:
    """One Processor instance: start, wait until healthy, stop (SIGTERM) or kill (SIGKILL), read its log.

    ``log_path`` receives its stderr (the log), ``stdout_path`` (beside it) its stdout."""

    def __init__(self, command: Sequence[str], env: Mapping[str, str], log_path: Path, port: int, *,
                 host: str = "127.0.0.1") -> None:
        self.command = list(command)
        self.env = dict(env)
        self.log_path = log_path
        self.stdout_path = log_path.with_name(f"{log_path.stem}.stdout")
        self.host = host
        self.port = port
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def base_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def live_url(self) -> str:
        return f"ws://{self.host}:{self.port}/live"

    @property
    def log_paths(self) -> list[Path]:
        """Every file the Processor wrote to: its stderr, then its stdout."""
        return [self.log_path, self.stdout_path]

    def start(self) -> None:
        environment = {k: v for k, v in os.environ.items() if not k.startswith("PROCESSOR_")}
        environment.update(self.env)
        with self.log_path.open("ab") as log, self.stdout_path.open("ab") as out:
            self.proc = subprocess.Popen(self.command, env=environment, cwd=REPO_ROOT, stdout=out,
                                         stderr=log, stdin=subprocess.DEVNULL, start_new_session=True)
        record_process(self.proc.pid, "processor", group=self.proc.pid, argv=self.command)  # for a killed run's sweep

    def wait_exit(self, timeout: float) -> int | None:
        """Wait up to ``timeout`` (scaled by the suite's clock) for the command to end by itself; its exit status,
        or ``None`` while it still runs."""
        assert self.proc is not None, "the Processor was never started"
        try:
            return self.proc.wait(within(timeout))
        except subprocess.TimeoutExpired:
            return None

    def stderr_lines(self) -> list[str]:
        """What it wrote on stderr so far, line by line (empty lines left out)."""
        return _lines(self.log_path)

    def stdout_lines(self) -> list[str]:
        """What it wrote on stdout so far, line by line (empty lines left out)."""
        return _lines(self.stdout_path)

    async def wait_healthy(self, session: aiohttp.ClientSession, timeout: float = CATCH_UP) -> None:
        """Return once ``/healthz`` answers 200; fail early, with the log, if the process exits."""

        async def probe() -> tuple[bool, str]:
            if not self.running():
                return True, "exited"
            try:
                limit = aiohttp.ClientTimeout(total=within(PROBE))
                async with session.get(f"{self.base_url}/healthz", timeout=limit) as r:
                    return r.status == 200, f"HTTP {r.status} {await r.text()}"
            except aiohttp.ClientError as exc:
                return False, f"{type(exc).__name__}: {exc}"

        await eventually(probe, timeout=timeout, what=f"{self.base_url}/healthz to answer 200")
        if not self.running():
            code = self.proc.returncode if self.proc else None
            raise ProcessorExited(f"the Processor exited with status {code} before it was healthy:\n{self.tail()}")

    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self, timeout: float = SETTLE, signum: signal.Signals = signal.SIGTERM) -> int | None:
        """``signum`` (SIGTERM, or SIGINT as from the keyboard) to the whole process group, then SIGKILL to it
        after ``timeout`` (scaled by the suite's clock); return the exit status of the command (the launcher's,
        when there is one)."""
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            self._signal_group(signum)
        return self.wait_stopped(timeout)

    def interrupt(self, signum: signal.Signals = signal.SIGTERM) -> None:
        """``signum`` to the whole process group, without waiting: a shutdown begins (see :meth:`wait_stopped`)."""
        assert self.running(), "the Processor is not running"
        self._signal_group(signum)

    def wait_stopped(self, timeout: float = SETTLE) -> int | None:
        """Wait ``timeout`` (scaled) for the command to exit after a signal, SIGKILL its group if it has not, reap
        what is left of the group; return the command's exit status."""
        timeout = within(timeout)
        if self.proc is None:
            return None
        if self.proc.poll() is None:
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self._signal_group(signal.SIGKILL)
                self.proc.wait(within(SETTLE))
        self._reap_group(timeout)
        return self.proc.returncode

    def kill(self) -> None:
        """SIGKILL to the whole process group: the Processor dies mid-work, with its launcher if it has one."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self._signal_group(signal.SIGKILL)
            self.proc.wait(SETTLE)
        self._reap_group(SETTLE)

    def pause(self) -> None:
        """Freeze the whole process group (SIGSTOP): the Processor, and a launcher around it, stop running but
        keep their sockets, like an overloaded or stalled host."""
        assert self.running(), "the Processor is not running"
        self._signal_group(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused group carry on (SIGCONT) where it stopped."""
        if self.proc is not None:
            self._signal_group(signal.SIGCONT)

    def _signal_group(self, signum: signal.Signals) -> None:
        assert self.proc is not None
        try:
            os.killpg(self.proc.pid, signum)  # start_new_session: the group id is the command's pid
        except ProcessLookupError:
            return  # the whole group has exited already: nothing to signal

    def _reap_group(self, timeout: float) -> None:
        """After the command ended: wait for what is left of its group (a launcher's child that got the same
        signal) to end, then SIGKILL the rest, so no process outlives the suite."""
        assert self.proc is not None
        deadline = time.monotonic() + timeout
        killed = False
        while members := group_members(self.proc.pid):
            if time.monotonic() >= deadline:
                if killed:  # not raised: the run's clean-up (services, other instances) must go on
                    sys.stderr.write(f"processes {members} of the Processor's group survived SIGKILL\n")
                    return
                self._signal_group(signal.SIGKILL)
                killed, deadline = True, time.monotonic() + ANSWER
            time.sleep(0.02)  # poll interval of a deadline-bounded wait for processes that are not our children

    def log_size(self) -> int:
        """Where its log ends now: a mark for :meth:`log_since`."""
        try:
            return self.log_path.stat().st_size
        except FileNotFoundError:
            return 0

    def log_since(self, mark: int) -> list[str]:
        """The lines its log gained after ``mark`` (:meth:`log_size`)."""
        try:
            with self.log_path.open("rb") as log:
                log.seek(mark)
                return log.read().decode("utf-8", "replace").splitlines()
        except FileNotFoundError:
            return []

    def tail(self, lines: int = 50) -> str:
        """The last ``lines`` lines of its stderr, and of its stdout when it wrote anything there."""
        if not self.log_path.exists():
            return "<no log>"
        text = "\n".join(self.stderr_lines()[-lines:])
        if out := self.stdout_lines():
            text += "\n---- and on stdout ----\n" + "\n".join(out[-lines:])
        return text


def _lines(path: Path) -> list[str]:
    try:
        text = path.read_text(errors="replace")
    except FileNotFoundError:
        return []
    return [line for line in text.splitlines() if line.strip()]


def group_members(pgid: int) -> list[int]:
    """The live (not zombie) processes of process group ``pgid``, read from /proc."""
    members = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue  # the process ended while we looked
        fields = stat[stat.rindex(")") + 2:].split()  # after "pid (comm) ": state, ppid, pgrp, ...
        if int(fields[2]) == pgid and fields[0] not in ("Z", "X"):
            members.append(int(entry.name))
    return members


class ProcessorExited(RuntimeError):
    """The Processor ended while the suite still needed it."""
