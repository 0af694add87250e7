"""CPU time of a whole process tree, daemons included, through a control group of its own.

A suite run is more than its behave process: Processors, valkey-server, PostgreSQL and its backends (which
``pg_ctl`` detaches from the tree, so ``getrusage(RUSAGE_CHILDREN)`` never counts them), Chromium. Every process
stays in the control group its parent was in, however it forks or detaches, so a group made for one run adds up
all of their CPU. That figure bounds any schedule: on N cores no run can take less than CPU / N seconds of wall
time, which is what says whether a speed goal is within this machine's reach at all.

Needs permission to make a group (root, or a delegated cgroup v2 subtree). Without it :func:`account` yields
``None`` and the figure is left out, never guessed.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

#: cgroup v2's unified tree (mounted here alone, or under ``unified`` beside v1 controllers), then v1's cpuacct.
V2_ROOTS = (Path("/sys/fs/cgroup"), Path("/sys/fs/cgroup/unified"))
V1_CPUACCT = Path("/sys/fs/cgroup/cpuacct")


@dataclass
class Group:
    """One control group made for one run: :meth:`join` puts a process in it (call it in the child, before exec)."""

    path: Path
    version: int

    def join(self) -> None:
        (self.path / ("cgroup.procs" if self.version == 2 else "tasks")).write_text(str(os.getpid()))

    def cpu_seconds(self) -> float:
        """CPU used so far by every process that was ever in the group."""
        if self.version == 2:
            for line in (self.path / "cpu.stat").read_text().splitlines():
                name, value = line.split()
                if name == "usage_usec":
                    return int(value) / 1e6
            raise OSError(f"{self.path}/cpu.stat has no usage_usec")
        return int((self.path / "cpuacct.usage").read_text()) / 1e9


def _make() -> Group | None:
    name = f"bench-{uuid.uuid4().hex[:12]}"
    for root in V2_ROOTS:
        if (root / "cgroup.procs").exists() and (root / "cgroup.controllers").exists():
            with contextlib.suppress(OSError):
                path = root / name
                path.mkdir()
                if (path / "cpu.stat").exists():
                    return Group(path, 2)
                path.rmdir()
    if (V1_CPUACCT / "tasks").exists():
        with contextlib.suppress(OSError):
            path = V1_CPUACCT / name
            path.mkdir()
            return Group(path, 1)
    return None


def _remove(group: Group, wait: float = 5.0) -> None:
    """Remove the group once its last process is gone (a server may take a moment to exit after the run)."""
    deadline = time.monotonic() + wait
    while True:
        try:
            group.path.rmdir()
            return
        except OSError:
            if time.monotonic() >= deadline:
                return  # something outlived the run; the crash clean-up of the next suite run ends it
            time.sleep(0.1)  # poll interval of a bounded wait for the group to empty


@contextlib.contextmanager
def account() -> Iterator[Group | None]:
    """A fresh control group for one run, or ``None`` where this user may not make one."""
    group = _make()
    try:
        yield group
    finally:
        if group is not None:
            _remove(group)
