"""Which process a pid names *now*, read from ``/proc``.

A pid alone does not name a process for long: once it ends, the kernel hands the number to the next one. A
pid together with its start time (``/proc/<pid>/stat`` field 22, clock ticks since boot) and the boot it
belongs to does, so the clean-up after a killed run (support/services/leftovers.py) ends only the processes it
recorded, never one that merely reuses their number. Nothing here matches processes by name.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

PROC = Path("/proc")
#: States of a process that has ended but not been reaped yet: it runs nothing, signals do nothing to it.
DEAD_STATES = frozenset("ZXx")


@dataclass(frozen=True)
class ProcStat:
    """The fields of ``/proc/<pid>/stat`` the clean-up needs."""

    pid: int
    state: str
    ppid: int
    pgrp: int
    #: Clock ticks after boot at which the process started (field 22): with the pid, its identity.
    starttime: int

    @property
    def live(self) -> bool:
        return self.state not in DEAD_STATES


def parse_stat(pid: int, text: str) -> ProcStat:
    """Parse one ``/proc/<pid>/stat`` line. The command name (field 2) is in parentheses and may itself hold
    spaces and parentheses, so the fields are counted from the *last* ``)``."""
    fields = text[text.rindex(")") + 2:].split()  # fields 3 onwards: state, ppid, pgrp, ...
    return ProcStat(pid=pid, state=fields[0], ppid=int(fields[1]), pgrp=int(fields[2]), starttime=int(fields[19]))


def stat(pid: int) -> ProcStat | None:
    """The process ``pid`` now, or ``None`` when there is none."""
    try:
        return parse_stat(pid, (PROC / str(pid) / "stat").read_text())
    except (OSError, ValueError, IndexError):
        return None  # no such process (or it ended while we read)


def start_time(pid: int) -> int | None:
    """The start time of the live process ``pid``; ``None`` when there is none or it has ended (a zombie)."""
    found = stat(pid)
    return found.starttime if found is not None and found.live else None


def same_process(pid: int, starttime: int) -> bool:
    """Whether ``pid`` still names the live process that started at ``starttime``."""
    return start_time(pid) == starttime


def processes() -> Iterator[ProcStat]:
    """Every process on the machine (in our pid namespace), live or not."""
    for entry in PROC.iterdir():
        if entry.name.isdigit():
            found = stat(int(entry.name))
            if found is not None:
                yield found


def kin(pid: int, pgrp: int | None) -> list[ProcStat]:
    """The live children of ``pid`` (by parent pid: PostgreSQL's backends, which each start a session of their
    own) and the other live members of process group ``pgrp`` (a launcher's child), with their start times."""
    return [p for p in processes()
            if p.live and p.pid != pid and (p.ppid == pid or (pgrp is not None and p.pgrp == pgrp))]


def group_members(pgrp: int) -> list[ProcStat]:
    """The live processes of process group ``pgrp``."""
    return [p for p in processes() if p.live and p.pgrp == pgrp]


def boot_id() -> str:
    """This boot's id: start times count from boot, so they only identify a process within one boot."""
    try:
        return (PROC / "sys" / "kernel" / "random" / "boot_id").read_text().strip()
    except OSError:
        return "unknown"
