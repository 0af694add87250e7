"""The behave processes of a parallel run (support/run/parallel.py): started, waited for, and stopped.

Each worker runs in a session of its own, so a Ctrl-C at the terminal reaches only the runner, which then asks
each worker once, with SIGTERM (which the suite turns into Ctrl-C: support/run/interrupts.py), to abort and
clean up; a second signal in the middle of a worker's clean-up would cut it short. A worker still there after
:data:`GRACE` seconds is killed with its process group. Each worker also gets SIGTERM from the kernel if the
runner dies (``PR_SET_PDEATHSIG``), and is recorded in the runner's record (support/services/records.py), so a
``kill -9`` of the runner leaves nothing for long: the next run ends whatever is left.

Waiting uses pidfds (Linux 5.3+): one ``select`` wakes when any worker ends, with a deadline, and never reaps
another child of the runner (the shared services are its children too).
"""

from __future__ import annotations

import contextlib
import ctypes
import os
import selectors
import signal
import subprocess
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from ..services.records import forget, record_process

#: Seconds a worker has to abort and clean up (stop its Processors and services) after SIGTERM.
GRACE = 60.0
_PR_SET_PDEATHSIG = 1
_libc = ctypes.CDLL(None, use_errno=True)
_prctl = _libc.prctl  # looked up here: the child between fork and exec must not load anything


def _die_with_runner() -> None:
    """In the worker, before ``exec``: SIGTERM when the runner's thread that started it ends."""
    _prctl(_PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)


@dataclass
class Worker:
    """One behave process: its number, command line and log."""

    index: int
    count: int
    argv: list[str]
    log: Path
    #: What the worker is for, in the runner's lines ("own services", "shared services").
    role: str = ""
    #: The command that runs this worker's scenarios alone (printed when it fails).
    replay: list[str] = field(default_factory=list)
    process: subprocess.Popen[bytes] | None = None
    began: float = 0.0
    took: float = 0.0
    _record: Path | None = field(default=None, repr=False)
    _log_file: IO[bytes] | None = field(default=None, repr=False)

    @property
    def name(self) -> str:
        return f"worker {self.index}/{self.count}"

    @property
    def returncode(self) -> int | None:
        return None if self.process is None else self.process.poll()

    def start(self, cwd: Path, env: dict[str, str] | None = None) -> None:
        self.log.parent.mkdir(parents=True, exist_ok=True)
        self._log_file = self.log.open("wb")
        self.began = time.monotonic()
        self.process = subprocess.Popen(self.argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL, stdout=self._log_file,
                                        stderr=subprocess.STDOUT, start_new_session=True,
                                        preexec_fn=_die_with_runner)  # only prctl, looked up before the fork
        self._record = record_process(self.process.pid, f"behave {self.name}", group=self.process.pid,
                                      argv=self.argv)

    def finished(self) -> None:
        """The worker has ended: note its time, close its log, drop it from the runner's record."""
        if self.took == 0.0:
            self.took = time.monotonic() - self.began
        if self._log_file is not None:
            self._log_file.close()
            self._log_file = None
        forget(self._record)
        self._record = None

    def signal(self, signum: int, *, group: bool = False) -> None:
        if self.process is not None and self.process.poll() is None:
            # The worker may end between poll() and the signal: then there is nothing left to signal.
            with contextlib.suppress(ProcessLookupError):
                if group:
                    os.killpg(self.process.pid, signum)
                else:
                    self.process.send_signal(signum)


def wait_any(workers: Sequence[Worker], deadline: float) -> list[Worker]:
    """Block until at least one of ``workers`` (all running) ends, or ``deadline`` (``time.monotonic()``)
    passes; return those that ended (reaped), possibly none at the deadline."""
    with selectors.DefaultSelector() as selector:
        fds = []
        try:
            for worker in workers:
                assert worker.process is not None
                fd = os.pidfd_open(worker.process.pid)
                fds.append(fd)
                selector.register(fd, selectors.EVENT_READ, worker)
            selector.select(timeout=max(0.0, deadline - time.monotonic()))
        finally:
            for fd in fds:
                os.close(fd)
    ended = [worker for worker in workers if worker.returncode is not None]
    for worker in ended:
        worker.finished()
    return ended


def wait_all(workers: Sequence[Worker], deadline: float) -> list[Worker]:
    """Wait until every worker has ended or ``deadline`` passes; return those still running."""
    running = [worker for worker in workers if worker.returncode is None]
    for worker in workers:
        if worker.returncode is not None:
            worker.finished()
    while running and time.monotonic() < deadline:
        ended = wait_any(running, deadline)
        running = [worker for worker in running if worker not in ended]
    return running


def stop_all(workers: Sequence[Worker], grace: float = GRACE) -> list[str]:
    """Ask every running worker to abort (SIGTERM, once), give them ``grace`` seconds to clean up, then kill
    what is left with its process group; return one line per worker that had to be killed."""
    for worker in workers:
        worker.signal(signal.SIGTERM)
    try:
        left = wait_all(workers, time.monotonic() + grace)
    except KeyboardInterrupt:  # a second Ctrl-C: no more patience
        left = [worker for worker in workers if worker.returncode is None]
    killed = []
    for worker in left:
        worker.signal(signal.SIGKILL, group=True)
        killed.append(f"{worker.name} did not end within {grace:.0f} s of SIGTERM: killed")
    wait_all(left, time.monotonic() + 10)
    return killed
