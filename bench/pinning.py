"""CPU pinning for the comparison cells: the server under test on a core of its own, everything else on the rest.

Unpinned, the scheduler puts the target, the viewer fleet, the feeder, valkey and whatever else runs on the machine
wherever it likes, and moves them: the target's share of a core, and so its latency, then depends on what the other
processes happen to do that second (bench/README.md, "Keeping a baseline honest"). Pinned, the target has its core
and the load-makers share the others, so a cell measures the target, and the fleet's CPU says whether the other
side kept up.

Affinity is set per thread (``sched_setaffinity`` on a pid only moves that thread), for the process and its
children (PostgreSQL's backends, a shell's child), and only for processes this bench started.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass


def available() -> list[int]:
    """The cores this process may run on."""
    return sorted(os.sched_getaffinity(0))


def _threads(pid: int) -> list[int]:
    try:
        return [int(t) for t in os.listdir(f"/proc/{pid}/task")]
    except OSError:
        return []


def _children(pid: int) -> list[int]:
    """Every descendant of ``pid`` (from /proc/*/stat's parent field)."""
    parents: dict[int, list[int]] = {}
    for name in os.listdir("/proc"):
        if not name.isdigit():
            continue
        try:
            with open(f"/proc/{name}/stat") as f:
                ppid = int(f.read().rsplit(")", 1)[1].split()[1])
        except (OSError, IndexError, ValueError):
            continue
        parents.setdefault(ppid, []).append(int(name))
    found, todo = [], [pid]
    while todo:
        for child in parents.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def pin(pid: int, cores: Iterable[int], children: bool = True) -> int:
    """Pin every thread of ``pid`` (and of its descendants) to ``cores``; return how many threads were moved."""
    cpus = set(cores)
    moved = 0
    for process in [pid, *(_children(pid) if children else [])]:
        for tid in _threads(process):
            try:
                os.sched_setaffinity(tid, cpus)
                moved += 1
            except OSError:  # the thread ended meanwhile
                continue
    return moved


def affinity(pid: int) -> list[int]:
    try:
        return sorted(os.sched_getaffinity(pid))
    except OSError:
        return []


@dataclass(frozen=True)
class Plan:
    """Which cores the target gets and which the load-makers get; ``enabled`` False: nothing is pinned (and why)."""

    target: tuple[int, ...]
    others: tuple[int, ...]
    enabled: bool
    reason: str = ""

    @classmethod
    def make(cls, wanted: bool = True) -> Plan:
        cores = available()
        if not wanted:
            return cls(tuple(cores), tuple(cores), False, "pinning turned off (--no-pin)")
        if len(cores) < 2:
            return cls(tuple(cores), tuple(cores), False, f"only {len(cores)} core available")
        # The last core for the target: the kernel's housekeeping and most interrupts favour core 0.
        return cls((cores[-1],), tuple(cores[:-1]), True)

    def describe(self) -> dict[str, object]:
        return {"enabled": self.enabled, "target_cores": list(self.target), "other_cores": list(self.others),
                "reason": self.reason}

    def apply(self, target: int | None, others: Iterable[int | None]) -> dict[str, list[int]]:
        """Pin ``target`` to the target's cores and every pid of ``others`` to the rest; return the affinities
        now in force (by pid), so a cell records where its processes ran."""
        if not self.enabled:
            return {}
        placed: dict[str, list[int]] = {}
        for pid in others:
            if pid is not None and pid != target:
                pin(pid, self.others)
                placed[str(pid)] = affinity(pid)
        if target is not None:
            pin(target, self.target)
            placed[str(target)] = affinity(target)
        return placed

    def release(self, pids: Iterable[int | None]) -> None:
        """Give every process back all the cores (after the comparison, so later cells run as before)."""
        if not self.enabled:
            return
        everything = set(self.target) | set(self.others)
        for pid in pids:
            if pid is not None:
                pin(pid, everything)
