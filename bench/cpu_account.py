"""CPU time of a whole process tree, daemons included, through a control group of its own.

A suite run is more than its behave process: Processors, valkey-server, PostgreSQL and its backends (which
``pg_ctl`` detaches from the tree, so ``getrusage(RUSAGE_CHILDREN)`` never counts them), Chromium. Every process
stays in the control group its parent was in, however it forks or detaches, so a group made for one run adds up
all of their CPU. That figure bounds any schedule: on N cores no run can take less than CPU / N seconds of wall
time, which is what says whether a speed goal is within this machine's reach at all.

Needs permission to make a group (root, or a delegated cgroup v2 subtree). Without it :func:`account` yields
``None`` and the figure is left out, never guessed.

Where the CPU went is measured the same way: :class:`Split` moves each process of the run, once its command line
says what it is (a Processor, PostgreSQL, valkey, Chromium), into a child group of that kind, where its children
are born too; what stays in the run's own group is behave and the suite's own helpers. A process is moved within
one polling interval of its ``exec``, so at most that much of its CPU is counted as the suite's own.
"""

from __future__ import annotations

import contextlib
import os
import threading
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Self

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

    def child(self, name: str) -> Group:
        """A group inside this one (its CPU counts in this one's too)."""
        path = self.path / name
        path.mkdir(exist_ok=True)
        return Group(path, self.version)

    def pids(self) -> list[int]:
        """The processes directly in this group (not in its children)."""
        try:
            return [int(pid) for pid in (self.path / "cgroup.procs").read_text().split()]
        except (OSError, ValueError):
            return []

    def adopt(self, pid: int) -> None:
        """Move process ``pid`` (all its threads) here; its later children are born here."""
        (self.path / "cgroup.procs").write_text(str(pid))

    def cpu_seconds(self) -> float:
        """CPU used so far by every process that was ever in the group."""
        if self.version == 2:
            for line in (self.path / "cpu.stat").read_text().splitlines():
                name, value = line.split()
                if name == "usage_usec":
                    return int(value) / 1e6
            raise OSError(f"{self.path}/cpu.stat has no usage_usec")
        return int((self.path / "cpuacct.usage").read_text()) / 1e9


#: The kinds of process a suite run is made of, as :class:`Split` reports them. Anything else (behave, the parallel
#: runner's workers, a shell) is the suite's own and stays in the run's group.
SUITE_OWN = "behave and the suite's helpers"
KINDS = ("Processor", "PostgreSQL", "valkey", "Chromium")


def kind_of(argv: Sequence[str]) -> str | None:
    """What a process is, from its command line (``/proc/<pid>/cmdline`` split at NULs); ``None``: the suite's own
    or not known yet (a child between ``fork`` and ``exec`` still shows its parent's command line)."""
    if not argv:
        return None
    exe = os.path.basename(argv[0].split(" ", 1)[0].rstrip(":"))  # a backend shows "postgres: user db host idle"
    if exe in ("postgres", "initdb", "pg_ctl", "postmaster"):
        return "PostgreSQL"
    if exe.startswith(("valkey", "redis-server")):
        return "valkey"
    if "chrom" in exe or exe == "headless_shell":
        return "Chromium"
    if exe.startswith("python") and any(argv[i] == "-m" and argv[i + 1] == "processor" for i in range(len(argv) - 1)):
        return "Processor"
    return None


def argv_of(pid: int) -> list[str]:
    """``/proc/<pid>/cmdline`` split at its NULs (empty once the process is gone)."""
    try:
        raw = Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return []
    return [part.decode(errors="replace") for part in raw.split(b"\0") if part]


class Sampler:
    """Calls :meth:`sample` every ``interval`` seconds on a thread of its own while a run goes (``with``, or
    :meth:`start` and :meth:`stop`): how :class:`Split` and ``bench.processor_starts`` watch a run's group."""

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._watch, name=type(self).__name__, daemon=True)

    def sample(self) -> None:
        raise NotImplementedError

    def _watch(self) -> None:
        while not self._stop.wait(self.interval):  # the sampling period, not a wait for an outcome
            self.sample()

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def __enter__(self) -> Self:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


class Split(Sampler):
    """While a run goes, moves its processes into one child group per kind (:data:`KINDS`); :meth:`seconds` then
    says how much CPU each kind used, and the suite's own share (the rest)."""

    def __init__(self, group: Group, interval: float = 0.01) -> None:
        super().__init__(interval)
        self.group = group
        self.kinds = {kind: group.child(kind) for kind in KINDS}

    def sample(self) -> None:
        for pid in self.group.pids():
            kind = kind_of(argv_of(pid))
            if kind is not None:
                with contextlib.suppress(OSError):  # it may have exited meanwhile
                    self.kinds[kind].adopt(pid)

    def seconds(self) -> dict[str, float]:
        """CPU seconds by kind, and :data:`SUITE_OWN`: the run's total less the kinds'."""
        by_kind = {kind: group.cpu_seconds() for kind, group in self.kinds.items()}
        by_kind[SUITE_OWN] = max(0.0, self.group.cpu_seconds() - sum(by_kind.values()))
        return by_kind


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
    """Remove the group (its children first) once its last process is gone (a server may take a moment to exit
    after the run)."""
    for child in [path for path in group.path.iterdir() if path.is_dir()]:
        _remove(Group(child, group.version), wait)
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


@contextlib.contextmanager
def split(group: Group | None) -> Iterator[Split | None]:
    """Sort ``group``'s processes by kind while the block runs (``None`` when there is no group, or where child
    groups cannot be made)."""
    if group is None:
        yield None
        return
    try:
        splitter = Split(group)
    except OSError:
        yield None
        return
    with splitter:
        yield splitter
