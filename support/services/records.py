"""Each run's record of the processes it started and the folders it made, kept under the cache folder.

A run killed with SIGKILL runs no clean-up: its valkey-server, PostgreSQL (with its backends) and Processors
keep running, and PostgreSQL's data folder stays in ``/dev/shm``. So each run writes down what it starts, as
it starts it, in ``<cache>/runs/<pid>-<random>/``: ``run.json`` names the run itself (pid, start time, boot),
and one small JSON file per process (pid, start time, process group, the signal that ends it) or folder. The
next run ends and removes what the record of a run that is gone still names (support/services/leftovers.py);
a run that ends normally clears its own record at exit.

The run holds an exclusive ``flock`` on the record's ``lock`` file for as long as it lives (the kernel lets go
when it dies, ``kill -9`` included): two runs starting together never clean up the same record twice.
"""

from __future__ import annotations

import fcntl
import hashlib
import json
import os
import signal
import sys
import tempfile
import threading
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from . import pids
from .cache import cache_dir

OWNER_FILE = "run.json"
LOCK_FILE = "lock"


def runs_dir() -> Path:
    """Where every run on this machine keeps its record (next to the PostgreSQL template)."""
    return cache_dir() / "runs"


@dataclass(frozen=True)
class Owner:
    """The run a record belongs to (the ``behave`` process)."""

    pid: int
    starttime: int
    boot_id: str
    argv: tuple[str, ...] = ()

    @classmethod
    def me(cls) -> Owner:
        starttime = pids.start_time(os.getpid())
        assert starttime is not None  # we are alive
        return cls(os.getpid(), starttime, pids.boot_id(), tuple(sys.argv))

    def alive(self) -> bool:
        """Whether the run still runs: same boot, and its pid still names the process that made the record."""
        return self.boot_id == pids.boot_id() and pids.same_process(self.pid, self.starttime)


@dataclass(frozen=True)
class ProcessEntry:
    """One process the run started, and how to end it if the run cannot."""

    name: str
    pid: int
    starttime: int
    #: Its process group when it leads one (started in a session of its own): the group is signalled, so a
    #: launcher's child goes too.
    group: int | None
    #: What ends it quickly and cleanly (PostgreSQL: SIGQUIT, immediate shutdown of every backend).
    stop_signal: str
    #: What its children are called in messages ("backends").
    kin: str
    argv: tuple[str, ...]


@dataclass(frozen=True)
class FolderEntry:
    """A folder the run made and deletes when it ends."""

    path: str


Entry = ProcessEntry | FolderEntry


def _write_json(path: Path, data: dict[str, Any]) -> None:
    """Write aside, then rename: a reader never sees half a file (names starting with '.' are not read)."""
    staging = path.with_name(f".{path.name}.tmp")
    staging.write_text(json.dumps(data))
    os.replace(staging, path)


def read_owner(record: Path) -> Owner | None:
    """The run of ``record``, or ``None`` when its ``run.json`` is missing or unreadable."""
    try:
        data = json.loads((record / OWNER_FILE).read_text())
        return Owner(int(data["pid"]), int(data["starttime"]), str(data["boot_id"]), tuple(data.get("argv", ())))
    except (OSError, ValueError, KeyError, TypeError):
        return None


def read_entries(record: Path) -> list[tuple[Path, Entry]]:
    """The entries of ``record``, each with its file (unreadable files are passed over)."""
    found: list[tuple[Path, Entry]] = []
    for file in sorted(record.glob("[!.]*.json")):
        if file.name == OWNER_FILE:
            continue
        try:
            data = json.loads(file.read_text())
            entry: Entry
            if data["kind"] == "process":
                entry = ProcessEntry(str(data["name"]), int(data["pid"]), int(data["starttime"]),
                                     None if data["group"] is None else int(data["group"]), str(data["stop_signal"]),
                                     str(data["kin"]), tuple(data["argv"]))
            else:
                entry = FolderEntry(str(data["path"]))
        except (OSError, ValueError, KeyError, TypeError):
            continue
        found.append((file, entry))
    return found


class RunRecord:
    """One run's record, written as the run starts things and cleared when it ends."""

    def __init__(self, path: Path, owner: Owner, lock_fd: int | None) -> None:
        self.path = path
        self.owner = owner
        self._lock_fd = lock_fd
        self._mutex = threading.Lock()  # processes start and stop from the steps' thread and the I/O loop's

    @classmethod
    def create(cls, root: Path, owner: Owner | None = None) -> RunRecord:
        """Make a new record under ``root``, locked, with its ``run.json`` written before any entry."""
        owner = owner or Owner.me()
        root.mkdir(parents=True, exist_ok=True)
        path = Path(tempfile.mkdtemp(prefix=f"{owner.pid}-", dir=root))
        fd = os.open(path / LOCK_FILE, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o644)
        fcntl.flock(fd, fcntl.LOCK_EX)  # ours for life; O_CLOEXEC: no child keeps it after we die
        _write_json(path / OWNER_FILE, {**asdict(owner), "argv": list(owner.argv)})
        return cls(path, owner, fd)

    def add_process(self, pid: int, name: str, *, group: int | None = None, stop_signal: int = signal.SIGTERM,
                    kin: str = "child processes", argv: Sequence[str] = ()) -> Path | None:
        """Record process ``pid`` (just started, so the pid is still its own); ``None`` if it already ended."""
        starttime = pids.start_time(pid)
        if starttime is None:
            return None
        entry = ProcessEntry(name, pid, starttime, group, signal.Signals(stop_signal).name, kin, tuple(argv))
        file = self.path / f"process-{pid}-{starttime}.json"
        with self._mutex:
            self._prune()
            _write_json(file, {"kind": "process", **asdict(entry), "argv": list(entry.argv)})
        return file

    def add_folder(self, folder: Path) -> Path:
        """Record ``folder`` (absolute), to be deleted if the run cannot."""
        folder = folder.absolute()
        file = self.path / f"folder-{hashlib.sha1(str(folder).encode()).hexdigest()[:16]}.json"
        with self._mutex:
            _write_json(file, {"kind": "folder", "path": str(folder)})
        return file

    def forget(self, file: Path) -> None:
        """Drop an entry: its process was stopped, its folder deleted."""
        with self._mutex:
            file.unlink(missing_ok=True)

    def _prune(self) -> None:
        """Drop the entries of processes that have ended with their whole group (Processor instances a scenario
        stopped), so the record names what may still run."""
        for file, entry in read_entries(self.path):
            if isinstance(entry, ProcessEntry) and not pids.same_process(entry.pid, entry.starttime) and (
                    entry.group is None or not pids.group_members(entry.group)):
                file.unlink(missing_ok=True)

    def release(self) -> None:
        """Let go of the lock, as the run's death would (the record stays)."""
        if self._lock_fd is not None:
            os.close(self._lock_fd)
            self._lock_fd = None


# -- this run's record -------------------------------------------------------------------------------------

_mutex = threading.Lock()
_this_run: RunRecord | None = None
_unavailable = False


def this_run() -> RunRecord | None:
    """This run's record, made on first use (cleared at exit: see :func:`~.leftovers.sweep_earlier_runs`);
    ``None`` (said once) when the cache folder cannot hold it: the run goes on, only a ``kill -9`` of it would
    then leave things behind."""
    global _this_run, _unavailable
    with _mutex:
        if _this_run is None and not _unavailable:
            try:
                _this_run = RunRecord.create(runs_dir())
            except OSError as exc:
                _unavailable = True
                sys.stderr.write(f"no record of this run's processes in {runs_dir()} ({exc}): if the run is killed, "
                                 f"the next one cannot clean up after it\n")
        return _this_run


def record_process(pid: int, name: str, *, group: int | None = None, stop_signal: int = signal.SIGTERM,
                   kin: str = "child processes", argv: Sequence[str] = ()) -> Path | None:
    """Record a process this run just started (see :meth:`RunRecord.add_process`); the entry's file, for
    :func:`forget`, or ``None`` when there is no record."""
    record = this_run()
    if record is None:
        return None
    try:
        return record.add_process(pid, name, group=group, stop_signal=stop_signal, kin=kin, argv=argv)
    except OSError as exc:
        sys.stderr.write(f"could not record {name} pid {pid} in {record.path}: {exc}\n")
        return None


def record_folder(folder: Path) -> Path | None:
    """Record a folder this run made and will delete; the entry's file, for :func:`forget`."""
    record = this_run()
    if record is None:
        return None
    try:
        return record.add_folder(folder)
    except OSError as exc:
        sys.stderr.write(f"could not record {folder} in {record.path}: {exc}\n")
        return None


def forget(file: Path | None) -> None:
    """Drop an entry of this run's record (``None``: nothing was recorded)."""
    if file is not None and _this_run is not None:
        _this_run.forget(file)


def current() -> RunRecord | None:
    """This run's record if one was made, without making one."""
    return _this_run
