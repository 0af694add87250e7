"""What the lane "crash" (.ci/lanes/crash.sh) looks at: one run's record of what it started, read from outside.

* ``wait PID [--stream KEY]``: wait (polling, with a deadline) until the run ``PID`` has recorded
  valkey-server, PostgreSQL and a Processor, all running, and (with ``--stream``) its scenario has begun
  sending telemetry (the stream has entries): the run is killed mid-way, not before it did anything. Print
  its record's folder.
* ``snapshot RECORD FILE``: write to FILE every process the record names, with its kin (PostgreSQL's
  backends) and start times, and every folder; fail unless all of them run and exist now (a proof that the
  next run cleaned up needs something to clean up).
* ``left FILE``: fail, naming them, if any process of the snapshot still runs (the same process: pid and start
  time) or any of its folders or its record still exists.
* ``no-record PID``: fail if the run ``PID`` (ended) left its record behind.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import redis

from support.services import pids
from support.services.records import FolderEntry, ProcessEntry, read_entries, read_owner, runs_dir

NEEDED = {"valkey-server", "postgres", "processor"}


def records_of(pid: int) -> list[Path]:
    if not runs_dir().is_dir():
        return []
    return [record for record in runs_dir().glob(f"{pid}-*")
            if (owner := read_owner(record)) is not None and owner.pid == pid]


def running_names(record: Path) -> set[str]:
    return {entry.name for _, entry in read_entries(record)
            if isinstance(entry, ProcessEntry) and pids.same_process(entry.pid, entry.starttime)}


def _has_entries(record: Path, stream: str) -> bool:
    """Whether the run's valkey-server (its port read from the recorded command line) holds entries in ``stream``."""
    for _, entry in read_entries(record):
        if isinstance(entry, ProcessEntry) and entry.name == "valkey-server":
            port = int(entry.argv[entry.argv.index("--port") + 1])
            try:
                with redis.Redis(port=port, socket_timeout=1) as client:
                    return int(client.xlen(stream)) > 0
            except redis.RedisError:
                return False
    return False


def wait(pid: int, timeout: float, stream: str | None) -> int:
    owner_start = pids.start_time(pid)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if owner_start is None or not pids.same_process(pid, owner_start):
            print(f"run {pid} ended before it had started {', '.join(sorted(NEEDED))}", file=sys.stderr)
            return 1
        for record in records_of(pid):
            if running_names(record) >= NEEDED and (stream is None or _has_entries(record, stream)):
                print(record)
                return 0
        time.sleep(0.05)  # poll interval of a deadline-bounded wait for another process's files
    busy = f" and sent telemetry to {stream}" if stream else ""
    print(f"run {pid} had not recorded {', '.join(sorted(NEEDED))}{busy} after {timeout} s", file=sys.stderr)
    return 1


def snapshot(record: Path, out: Path) -> int:
    processes: list[dict[str, object]] = []
    folders: list[str] = []
    described: list[str] = []
    problems: list[str] = []
    for _, entry in read_entries(record):
        if isinstance(entry, FolderEntry):
            folders.append(entry.path)
            if not Path(entry.path).exists():
                problems.append(f"folder {entry.path} does not exist")
        elif pids.same_process(entry.pid, entry.starttime):
            kin = pids.kin(entry.pid, entry.group)
            processes.append({"name": entry.name, "pid": entry.pid, "starttime": entry.starttime})
            processes += [{"name": f"{entry.name}'s {entry.kin}", "pid": p.pid, "starttime": p.starttime} for p in kin]
            described.append(f"{entry.name} pid {entry.pid}" + (f" (+{len(kin)} {entry.kin})" if kin else ""))
    missing = NEEDED - {str(p["name"]) for p in processes}
    if missing:
        problems.append(f"not running: {', '.join(sorted(missing))}")
    out.write_text(json.dumps({"record": str(record), "processes": processes, "folders": folders}, indent=1))
    print(f"recorded and still there: {len(processes)} processes ({', '.join(described)}), "
          f"folders {', '.join(folders)}")
    for problem in problems:
        print(f"snapshot: {problem}", file=sys.stderr)
    return 1 if problems else 0


def left(snapshot_file: Path) -> int:
    data = json.loads(snapshot_file.read_text())
    remaining = [f"{p['name']} pid {p['pid']}" for p in data["processes"]
                 if pids.same_process(int(p["pid"]), int(p["starttime"]))]
    remaining += [f"folder {folder}" for folder in [*data["folders"], data["record"]] if Path(folder).exists()]
    if remaining:
        print(f"left behind: {', '.join(remaining)}", file=sys.stderr)
        return 1
    print(f"nothing left of the {len(data['processes'])} processes and {len(data['folders'])} folders, record gone")
    return 0


def no_record(pid: int) -> int:
    found = records_of(pid)
    for record in found:
        print(f"run {pid} left its record {record}: {[entry for _, entry in read_entries(record)]}", file=sys.stderr)
    return 1 if found else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    command = commands.add_parser("wait")
    command.add_argument("pid", type=int)
    command.add_argument("--timeout", type=float, default=60.0)
    command.add_argument("--stream")
    command = commands.add_parser("snapshot")
    command.add_argument("record", type=Path)
    command.add_argument("out", type=Path)
    commands.add_parser("left").add_argument("snapshot", type=Path)
    commands.add_parser("no-record").add_argument("pid", type=int)
    args = parser.parse_args()
    if args.command == "wait":
        return wait(args.pid, args.timeout, args.stream)
    if args.command == "snapshot":
        return snapshot(args.record, args.out)
    if args.command == "left":
        return left(args.snapshot)
    return no_record(args.pid)


if __name__ == "__main__":
    sys.exit(main())
