"""The clean-up after a killed run (support/services/records.py, leftovers.py), with harmless ``sleep``
children standing in for the servers a killed run left running. No services; each test takes milliseconds
(a process that ignores its stop signal costs the short grace these tests give).

What must hold: a recorded process that still runs is ended, with its kin; a pid now used by another process
(another start time) is never touched; a record whose run still lives is left alone; folders go; a normal run
leaves no record."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from support.services import leftovers, pids, records
from support.services.leftovers import clear_record, sweep
from support.services.records import FolderEntry, Owner, RunRecord, read_entries

GRACE = 0.5
#: The children a test started, killed after it if still running.
Children = list[subprocess.Popen[bytes]]


def _gone(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the child ended (it is ours, so wait for it: a bounded wait, no sleep)."""
    try:
        proc.wait(2)
    except subprocess.TimeoutExpired:
        return False
    return True


@pytest.fixture
def children() -> Iterator[Children]:
    """Children a test starts; whatever is left is killed afterwards."""
    started: Children = []
    yield started
    for proc in started:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def spawn(children: Children, *argv: str) -> subprocess.Popen[bytes]:
    proc = subprocess.Popen(argv or ("sleep", "30"), start_new_session=True)
    children.append(proc)
    return proc


def dead_owner() -> Owner:
    """A run that is gone: our own pid with a start time that is not ours (a pid since reused)."""
    me = Owner.me()
    return Owner(me.pid, me.starttime + 1, me.boot_id, ("behave",))


def killed_run(root: Path) -> RunRecord:
    """The record of a run killed with SIGKILL: written, its owner gone, its lock let go."""
    record = RunRecord.create(root, dead_owner())
    record.release()
    return record


def test_a_process_the_killed_run_left_running_is_ended(tmp_path: Path, children: Children) -> None:
    leftover = spawn(children)
    record = killed_run(tmp_path)
    record.add_process(leftover.pid, "valkey-server", group=leftover.pid)

    cleaned = sweep(tmp_path, grace=GRACE)

    assert _gone(leftover) and leftover.returncode == -signal.SIGTERM
    assert [c.ended for c in cleaned] == [[f"valkey-server pid {leftover.pid}"]]
    assert not record.path.exists(), "the record goes once everything it named is gone"
    assert "cleaned up" in cleaned[0].describe("cleaned up")


def test_a_pid_now_used_by_another_process_is_never_ended(tmp_path: Path, children: Children) -> None:
    bystander = spawn(children)
    record = killed_run(tmp_path)
    file = record.add_process(bystander.pid, "postgres")
    starttime = pids.start_time(bystander.pid)
    assert file is not None and starttime is not None
    # The recorded process started at another time: the kernel has given its pid to this bystander since.
    file.write_text(file.read_text().replace(f'"starttime": {starttime}', f'"starttime": {starttime - 1}'))

    cleaned = sweep(tmp_path, grace=GRACE)

    assert bystander.poll() is None, "a process that merely reuses a recorded pid was signalled"
    assert not cleaned[0].did_something()
    assert not record.path.exists()


def test_the_record_of_a_run_that_still_runs_is_left_alone(tmp_path: Path, children: Children) -> None:
    server = spawn(children)
    folder = tmp_path / "data"
    folder.mkdir()
    record = RunRecord.create(tmp_path / "runs")  # ours: this test process is the run, and holds the lock
    record.add_process(server.pid, "valkey-server")
    record.add_folder(folder)

    assert sweep(tmp_path / "runs", grace=GRACE) == []
    assert server.poll() is None and folder.exists() and record.path.exists()

    # Alive by its lock alone (e.g. its pid check cannot be trusted): still left alone.
    other = RunRecord.create(tmp_path / "runs", dead_owner())
    other.add_process(server.pid, "valkey-server")
    assert sweep(tmp_path / "runs", grace=GRACE) == []
    assert server.poll() is None
    record.release()
    other.release()


def test_folders_are_removed_and_a_damaged_record_cannot_remove_a_top_level_folder(tmp_path: Path) -> None:
    data = tmp_path / "live-suite-x" / "pgdata"
    data.mkdir(parents=True)
    (data / "PG_VERSION").write_text("18\n")
    record = killed_run(tmp_path / "runs")
    record.add_folder(tmp_path / "live-suite-x")
    record.add_folder(tmp_path / "never-made")
    record.add_folder(Path("/tmp"))

    [cleaned] = sweep(tmp_path / "runs", grace=GRACE)

    assert not (tmp_path / "live-suite-x").exists()
    assert cleaned.removed == [str(tmp_path / "live-suite-x")]
    assert Path("/tmp").is_dir() and cleaned.problems == ["/tmp (not a folder the suite makes)"]
    assert [entry for _, entry in read_entries(record.path)] == [FolderEntry("/tmp")], "kept, for a person to see"


def test_children_that_outlive_their_parent_are_ended_too(tmp_path: Path, children: Children) -> None:
    """PostgreSQL's backends each lead a session of their own: found by parent pid, SIGKILLed by identity if
    they outlive the postmaster. The stand-in: a shell whose two children ignore SIGTERM."""
    parent = spawn(children, "sh", "-c", "trap '' TERM; sleep 30 & sleep 30 & trap - TERM; wait")
    record = killed_run(tmp_path)
    kin = _wait_for_kin(parent.pid, 2)
    record.add_process(parent.pid, "postgres", kin="backends")  # not its group: kin by parent pid only

    [cleaned] = sweep(tmp_path, grace=GRACE)

    assert _gone(parent)
    assert cleaned.ended == [f"postgres pid {parent.pid} (+2 backends) (SIGKILL)"]
    assert not any(pids.same_process(p.pid, p.starttime) for p in kin)


def _wait_for_kin(pid: int, count: int) -> list[pids.ProcStat]:
    """The children of ``pid`` once it has ``count`` of them (a bounded poll)."""
    deadline = time.monotonic() + 5
    while len(kin := pids.kin(pid, None)) < count and time.monotonic() < deadline:
        time.sleep(0.01)
    assert len(kin) == count, kin
    return kin


def test_a_frozen_leftover_is_thawed_so_that_it_acts_on_its_signal(tmp_path: Path, children: Children) -> None:
    frozen = spawn(children)
    os.kill(frozen.pid, signal.SIGSTOP)
    record = killed_run(tmp_path)
    record.add_process(frozen.pid, "processor", group=frozen.pid)

    [cleaned] = sweep(tmp_path, grace=GRACE)

    assert _gone(frozen) and frozen.returncode == -signal.SIGTERM, "ended by SIGTERM, not after the grace"
    assert cleaned.ended == [f"processor pid {frozen.pid}"]


def test_records_of_another_boot_name_no_live_process(tmp_path: Path, children: Children) -> None:
    running = spawn(children)
    me = Owner.me()
    record = RunRecord.create(tmp_path, Owner(me.pid, me.starttime, "an-earlier-boot"))
    record.release()
    record.add_process(running.pid, "valkey-server")

    sweep(tmp_path, grace=GRACE)

    assert running.poll() is None
    assert not record.path.exists()


def test_a_run_that_ends_normally_leaves_no_record(tmp_path: Path, children: Children) -> None:
    stopped, forgotten = spawn(children), spawn(children)
    folder = tmp_path / "scratch"
    folder.mkdir()
    record = RunRecord.create(tmp_path / "runs")
    forgotten_entry = record.add_process(forgotten.pid, "processor")
    record.add_process(stopped.pid, "valkey-server")
    record.add_folder(folder)
    stopped.terminate()
    stopped.wait()
    assert forgotten_entry is not None
    record.add_process(os.getpid(), "pruning happens here")  # the stopped server's entry is pruned
    assert {entry.name for _, entry in read_entries(record.path) if isinstance(entry, records.ProcessEntry)} == {
        "processor", "pruning happens here"}
    record.forget(forgotten_entry)
    record.forget(record.path / f"process-{os.getpid()}-{pids.start_time(os.getpid())}.json")

    cleaned = clear_record(record.path, grace=GRACE)  # at exit: what its own clean-up missed
    record.release()

    assert forgotten.poll() is None, "a forgotten entry is not ended"
    assert cleaned.removed == [str(folder)] and not folder.exists()
    assert not record.path.exists()


def test_the_sweep_says_one_line_per_killed_run(tmp_path: Path, children: Children,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SUITE_CACHE_DIR", str(tmp_path))
    monkeypatch.setattr(leftovers, "GRACE", GRACE)
    server = spawn(children)
    record = killed_run(records.runs_dir())
    record.add_process(server.pid, "valkey-server", group=server.pid)
    (tmp_path / "pgdata").mkdir()
    record.add_folder(tmp_path / "pgdata")

    line = leftovers.sweep_earlier_runs()

    assert line == (f"cleaned up after an earlier run that was killed (pid {os.getpid()}): "
                    f"valkey-server pid {server.pid}, removed {tmp_path / 'pgdata'}")
    assert leftovers.sweep_earlier_runs() is None


def test_stat_lines_are_read_from_the_last_parenthesis() -> None:
    line = "42 (a) b (c) S 1 42 42 0 -1 4194560 0 0 0 0 0 0 0 0 20 0 1 0 777 0 0"
    assert pids.parse_stat(42, line) == pids.ProcStat(pid=42, state="S", ppid=1, pgrp=42, starttime=777)
    assert pids.stat(os.getpid()) is not None and pids.start_time(os.getpid()) is not None
