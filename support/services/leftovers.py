"""Cleaning up after an earlier run that was killed: ending what it left running, deleting what it left on disk.

Every run records what it starts (support/services/records.py). At the start of a run, :func:`sweep_earlier_runs`
reads the records of runs that are gone (their ``behave`` process no longer exists, or a new one has its pid)
and, for each recorded process that is *still the same process* (pid and start time, same boot; never a match
by name):

1. sends it the signal that ends it cleanly (valkey-server and the Processor: SIGTERM to their process group;
   PostgreSQL: SIGQUIT, which makes the postmaster end every backend at once), then SIGCONT in case it was
   frozen (the overload scenarios freeze servers);
2. waits, polling, a bounded time for it and its kin (children by parent pid, such as PostgreSQL's backends,
   which each lead a session of their own; and its group's other members) as they were when the sweep began;
3. SIGKILLs whichever of them is still the same process, and waits again.

Then it deletes the recorded folders (PostgreSQL's data in ``/dev/shm``, the run's logs) and the record, and
says in one line what it did. A record whose run still lives is left alone: runs may share a machine. So is
another user's record: the folders and pids it names are not ours to trust.
"""

from __future__ import annotations

import atexit
import fcntl
import os
import shutil
import signal
import sys
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from . import pids
from .records import LOCK_FILE, FolderEntry, Owner, ProcessEntry, current, read_entries, read_owner, runs_dir

#: Seconds a process has to end after its stop signal, then again after SIGKILL.
GRACE = 5.0
#: Interval of the polls that wait for processes which are not our children (so cannot be waited for).
POLL = 0.02
#: A record without ``run.json`` older than this is the remains of a run killed while it made the record.
UNFINISHED_RECORD_AGE = 60.0

Identity = tuple[int, int]  # (pid, start time)


@dataclass
class Cleaned:
    """What clearing one record did, for the run's one line."""

    owner: Owner | None
    ended: list[str] = field(default_factory=list)
    removed: list[str] = field(default_factory=list)
    #: What could not be ended or deleted; its entries stay in the record for the next run to try again.
    problems: list[str] = field(default_factory=list)

    def did_something(self) -> bool:
        return bool(self.ended or self.removed or self.problems)

    def describe(self, what: str) -> str:
        parts = [*self.ended, *([f"removed {', '.join(self.removed)}"] if self.removed else [])]
        line = f"{what}: {', '.join(parts) or 'nothing'}"
        if self.problems:
            line += f"; could not clean up {'; '.join(self.problems)} (left for the next run)"
        return line


def _send(entry: ProcessEntry, signum: signal.Signals) -> None:
    """Signal the recorded process (its whole group when it leads one) if it is still the same process."""
    if not pids.same_process(entry.pid, entry.starttime):
        return
    try:
        if entry.group == entry.pid:
            os.killpg(entry.group, signum)  # the leader is the recorded process: the group is its group
        else:
            os.kill(entry.pid, signum)
    except ProcessLookupError:
        pass  # it ended between the check and the signal


def _kill(identity: Identity) -> None:
    pid, starttime = identity
    if pids.same_process(pid, starttime):
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass  # it ended between the check and the signal


def _wait_gone(identities: Sequence[Identity], timeout: float) -> list[Identity]:
    """Poll until none of ``identities`` is alive or ``timeout`` passed; return those still alive."""
    deadline = time.monotonic() + timeout
    while True:
        alive = [identity for identity in identities if pids.same_process(*identity)]
        if not alive or time.monotonic() >= deadline:
            return alive
        time.sleep(POLL)  # poll interval of a deadline-bounded wait for processes that are not our children


def end_processes(entries: Sequence[ProcessEntry], *, grace: float = GRACE) -> tuple[list[str], list[ProcessEntry],
                                                                                     list[str]]:
    """End the recorded processes that are still the same processes, with their kin. Returns what was ended
    (one phrase each), the entries whose processes survived (or are not ours to signal), and a phrase for each."""
    # Kin are taken before any signal: once a postmaster is gone, its backends no longer name it as parent.
    targets = {entry: [(p.pid, p.starttime) for p in pids.kin(entry.pid, entry.group)] for entry in entries
               if pids.same_process(entry.pid, entry.starttime)}
    survivors: list[ProcessEntry] = []
    problems: list[str] = []
    for entry in list(targets):
        try:
            _send(entry, signal.Signals[entry.stop_signal])
            _send(entry, signal.SIGCONT)  # a frozen (SIGSTOPped) process acts on its signal only once thawed
        except PermissionError:
            del targets[entry]
            survivors.append(entry)
            problems.append(f"{entry.name} pid {entry.pid} (not ours to signal)")
    everyone = [identity for entry, kin in targets.items() for identity in [(entry.pid, entry.starttime), *kin]]
    forced = _wait_gone(everyone, grace)
    left: set[Identity] = set()
    if forced:
        for identity in forced:
            try:
                _kill(identity)
            except PermissionError:
                pass  # still alive: reported below
        left = set(_wait_gone(forced, grace))
    ended: list[str] = []
    for entry, kin in targets.items():
        mine = {(entry.pid, entry.starttime), *kin}
        if mine & left:
            survivors.append(entry)
            problems.append(f"{entry.name} pid {entry.pid} (alive after SIGKILL: pids "
                            f"{', '.join(str(pid) for pid, _ in sorted(mine & left))})")
            continue
        phrase = f"{entry.name} pid {entry.pid}" + (f" (+{len(kin)} {entry.kin})" if kin else "")
        ended.append(phrase + (" (SIGKILL)" if mine & set(forced) else ""))
    return ended, survivors, problems


def _removable(path: Path) -> bool:
    """Only absolute paths below a top-level folder: a damaged record must never name ``/`` or ``/tmp``."""
    return path.is_absolute() and len(path.parts) >= 3 and ".." not in path.parts


def remove_folders(entries: Sequence[FolderEntry]) -> tuple[list[str], list[FolderEntry], list[str]]:
    """Delete the recorded folders that still exist. Returns those deleted, the entries left, and problems."""
    removed: list[str] = []
    left: list[FolderEntry] = []
    problems: list[str] = []
    for entry in entries:
        path = Path(entry.path)
        if not _removable(path):
            left.append(entry)
            problems.append(f"{path} (not a folder the suite makes)")
            continue
        if not (path.exists() or path.is_symlink()):
            continue
        try:
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path)
            else:
                path.unlink()
        except OSError as exc:
            left.append(entry)
            problems.append(f"{path} ({exc.strerror or exc})")
            continue
        removed.append(str(path))
    return removed, left, problems


def clear_record(record: Path, *, grace: float = GRACE) -> Cleaned:
    """End and delete what ``record`` names, then delete the entries done with, and the record when all are.
    The caller holds the record's lock (its own run's, or one taken by :func:`sweep`)."""
    owner = read_owner(record)
    entries = read_entries(record)
    processes = [(file, entry) for file, entry in entries if isinstance(entry, ProcessEntry)]
    folders = [(file, entry) for file, entry in entries if isinstance(entry, FolderEntry)]
    cleaned = Cleaned(owner)
    survivors: list[ProcessEntry] = []
    if owner is None or owner.boot_id == pids.boot_id():  # after a reboot, none of its processes can run
        cleaned.ended, survivors, problems = end_processes([entry for _, entry in processes], grace=grace)
        cleaned.problems += problems
    cleaned.removed, folders_left, problems = remove_folders([entry for _, entry in folders])
    cleaned.problems += problems
    keep = set(survivors) | set(folders_left)
    for file, entry in entries:
        if entry not in keep:
            file.unlink(missing_ok=True)
    if not keep:
        shutil.rmtree(record, ignore_errors=True)
    return cleaned


def _lock(record: Path) -> int | None:
    """The record's lock, or ``None`` when its run (or another sweep) holds it, or it has none."""
    try:
        fd = os.open(record / LOCK_FILE, os.O_RDWR | os.O_CLOEXEC)
    except OSError:
        return None
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        os.close(fd)
        return None
    return fd


def sweep(root: Path | None = None, *, grace: float = GRACE) -> list[Cleaned]:
    """Clear the record of every run under ``root`` (default: the cache's) that is gone; leave live runs' alone."""
    root = root if root is not None else runs_dir()
    try:
        records = sorted(path for path in root.iterdir() if path.is_dir())
    except FileNotFoundError:
        return []
    done: list[Cleaned] = []
    for record in records:
        try:
            if record.stat().st_uid != os.geteuid():
                continue  # another user's: what it names is not ours to end or delete
        except OSError:
            continue  # another sweep removed it
        owner = read_owner(record)
        if owner is None:
            try:
                unfinished = time.time() - record.stat().st_mtime > UNFINISHED_RECORD_AGE
            except OSError:
                continue  # another sweep removed it
            if unfinished:
                shutil.rmtree(record, ignore_errors=True)  # no entries: they are written after run.json
            continue
        if owner.alive():
            continue
        fd = _lock(record)
        if fd is None:
            continue  # its run holds it after all, or another run is clearing it right now
        try:
            done.append(clear_record(record, grace=grace))
        finally:
            os.close(fd)
    return done


def sweep_earlier_runs() -> str | None:
    """Clear what killed runs left behind; one line per such run saying what was done, or ``None``. Never
    raises for a file it cannot read: the new run must not fail because an old one was killed. Also arranges
    that this run's own record is cleared when it exits (whatever its clean-up missed is ended then)."""
    atexit.register(_clear_this_run_at_exit)
    try:
        cleaned = sweep()
    except OSError as exc:
        return f"could not look for what earlier runs left behind in {runs_dir()}: {exc}"
    lines = [c.describe(f"cleaned up after an earlier run that was killed (pid {c.owner.pid if c.owner else '?'})")
             for c in cleaned if c.did_something()]
    return "\n".join(lines) or None


def _clear_this_run_at_exit() -> None:
    """At the run's exit: whatever its own clean-up missed is ended and removed, then the record goes."""
    record = current()
    if record is None or os.getpid() != record.owner.pid:
        return  # nothing recorded, or a forked child exiting: the run itself still runs
    cleaned = clear_record(record.path)
    record.release()
    if cleaned.did_something():
        sys.stderr.write(cleaned.describe("the run left these behind; ended at exit") + "\n")
