"""The parallel runner's own parts (support/run/parallel.py, workers.py, merge.py, durations.py, ordering.py):
reading ``-D`` options, each worker's command line and seed, the merged JUnit and JSON and their totals, the
durations file from a JSON report, the random order reaching the scenarios behave runs, and workers that are
waited for with a deadline and stopped (SIGTERM, then SIGKILL) without sleeping."""

import json
import sys
import time
from pathlib import Path

from behave.parser import parse_file

from support.run.durations import lines_to_keys, measured, write
from support.run.merge import Totals, count_junit, failure_details, merge_json, merge_junit, scenarios_in_json
from support.run.ordering import shuffle_run
from support.run.parallel import defines, derived_seed, replay_argv, worker_argv
from support.run.workers import Worker, stop_all, wait_all

# -- options and command lines ---------------------------------------------------------------------------------


def test_defines_reads_every_spelling_behave_accepts_and_the_last_wins():
    args = ["-D", "services=embedded", "--tags=@x", "-Dorder=random", "--define", "seed=7", "--define=a=b=c",
            "-D", "services=docker", "features/x.feature"]
    assert defines(args) == {"services": "docker", "order": "random", "seed": "7", "a": "b=c"}


def test_each_worker_gets_its_own_seed_the_same_for_the_same_run_seed():
    seeds = [derived_seed(42, index) for index in range(1, 6)]
    assert len(set(seeds)) == 5
    assert seeds == [derived_seed(42, index) for index in range(1, 6)]
    assert derived_seed(43, 1) != seeds[0]


def test_a_workers_command_runs_its_shard_with_its_reports_after_the_users_options(tmp_path):
    argv = worker_argv(["--tags=@live", "-D", "report_dir=x"], 2, 3, tmp_path, services=["-D", "services=external"],
                       seed=42, reports=["json"])
    assert argv[:4] == [sys.executable, "-m", "behave", "--tags=@live"]
    text = " ".join(argv)
    assert "-D shard=2/3 -D services=external" in text
    assert f"--junit-directory {tmp_path / 'junit'}" in text and "--show-skipped" in text
    assert text.index(f"report_dir={tmp_path}") > text.index("report_dir=x")  # later -D options win in behave
    assert f"-D order=random -D seed={derived_seed(42, 2)}" in text
    assert argv[-2:] == ["--format", "progress"]
    assert "--format" not in worker_argv(["-f", "plain"], 1, 1, tmp_path, services=[], seed=None, reports=["json"])


def test_a_failed_worker_is_replayed_alone_with_its_shard_and_seed():
    assert replay_argv(["--tags=@x"], 2, 3, 42) == ["behave", "--tags=@x", "-D", "shard=2/3", "-D", "order=random",
                                                     "-D", f"seed={derived_seed(42, 2)}"]
    assert replay_argv([], 1, 2, None) == ["behave", "-D", "shard=1/2"]


# -- merging ---------------------------------------------------------------------------------------------------

def _junit(folder: Path, name: str, cases: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(f'<testsuite name="f" tests="9" time="1.5">{cases}</testsuite>')


def test_the_same_feature_from_two_workers_becomes_one_suite_with_the_counts_summed(tmp_path):
    _junit(tmp_path / "w1", "TESTS-a.xml", '<testcase name="one"/><testcase name="two"><failure/></testcase>')
    _junit(tmp_path / "w2", "TESTS-a.xml", '<testcase name="three" status="skipped"><skipped/></testcase>')
    _junit(tmp_path / "w2", "TESTS-b.xml", '<testcase name="four"/><testcase name="five"><error/></testcase>')
    totals = merge_junit([tmp_path / "w1", tmp_path / "w2", tmp_path / "absent"], tmp_path / "merged")
    assert totals == Totals(passed=2, failed=2, skipped=1)
    assert count_junit(tmp_path / "merged") == totals
    assert totals.line() == "2 passed, 2 failed, 1 skipped"
    merged = (tmp_path / "merged" / "TESTS-a.xml").read_text()
    assert 'tests="3"' in merged and 'failures="1"' in merged and 'skipped="1"' in merged and 'time="3.0' in merged
    assert merged.index('name="one"') < merged.index('name="three"')


def test_a_failure_is_shown_with_its_step_traceback_and_what_the_suite_saw(tmp_path):
    _junit(tmp_path, "TESTS-a.xml", '<testcase classname="a.F" name="one"><failure message="boom">Failing step: x\n'
           'Traceback ...</failure><system-out>What the suite saw</system-out></testcase><testcase name="two"/>')
    assert failure_details(tmp_path) == ["a.F: one\nboom\nFailing step: x\nTraceback ...\nWhat the suite saw"]


def test_the_json_reports_merge_per_feature_and_list_every_scenario(tmp_path):
    def feature(location, *names, status="passed"):
        return {"location": location, "name": location, "status": status,
                "elements": [{"type": "scenario", "name": name, "location": f"{location}{index}", "status": status}
                             for index, name in enumerate(names)]}
    (tmp_path / "1.json").write_text(json.dumps([feature("f.feature:1", "a"), feature("g.feature:1", "b")]))
    (tmp_path / "2.json").write_text(json.dumps([feature("f.feature:1", "c", status="failed")]))
    assert merge_json([tmp_path / "1.json", tmp_path / "2.json", tmp_path / "none.json"], tmp_path / "m.json") == 2
    merged = json.loads((tmp_path / "m.json").read_text())
    assert [f["status"] for f in merged] == ["failed", "passed"]
    assert scenarios_in_json(tmp_path / "m.json") == ["f.feature:10 a", "f.feature:10 c", "g.feature:10 b"]


# -- durations -------------------------------------------------------------------------------------------------

FEATURE = """\
Feature: Sample
  Scenario: One
    Given a step
  Scenario Outline: Two <n>
    Given a step
    Examples:
      | n |
      | 1 |
      | 2 |
"""


def test_durations_sum_an_outlines_rows_under_its_one_key_and_keep_other_figures(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "sample.feature").write_text(FEATURE)
    keys = lines_to_keys([tmp_path / "sample.feature"])
    file = next(iter(keys))[0]
    assert sorted(set(keys.values())) == [f"{file}::One", f"{file}::Two <n>"]

    def element(line, seconds):
        return {"type": "scenario", "location": f"{file}:{line}", "status": "passed",
                "steps": [{"result": {"duration": seconds}}, {"result": {"duration": 0.5}}]}
    report = tmp_path / "r.json"
    report.write_text(json.dumps([{"elements": [element(2, 1.0), element(8, 2.0), element(9, 3.0),
                                                element(99, 1.0)]}]))
    seconds, unknown = measured([report], keys)
    assert seconds == {f"{file}::One": 1.5, f"{file}::Two <n>": 6.0}
    assert unknown == [f"{file}:99"]
    target = tmp_path / "durations.json"
    target.write_text(json.dumps({"seconds": {f"{file}::One": 9.0, "gone::x": 1.0}}))
    write({f"{file}::Two <n>": 6.0}, target, set(keys.values()))
    assert json.loads(target.read_text())["seconds"] == {f"{file}::One": 9.0, f"{file}::Two <n>": 6.0}


# -- order -----------------------------------------------------------------------------------------------------

def test_random_order_reorders_what_behave_runs_and_keeps_its_two_lists_alike(tmp_path):
    path = tmp_path / "many.feature"
    path.write_text("Feature: Many\n" + "".join(f"  Scenario: S{i}\n    Given a step\n" for i in range(12)))
    feature = parse_file(str(path))
    assert shuffle_run([feature], 1234) == 1234
    ran = [item.name for item in feature.run_items]
    assert ran != [f"S{i}" for i in range(12)]
    assert [item.name for item in feature.scenarios] == ran
    again = parse_file(str(path))
    shuffle_run([again], 1234)
    assert [item.name for item in again.run_items] == ran


# -- workers ---------------------------------------------------------------------------------------------------

def _worker(tmp_path: Path, index: int, code: str) -> Worker:
    worker = Worker(index, 2, [sys.executable, "-c", code], tmp_path / f"w{index}" / "log")
    worker.start(tmp_path)
    return worker


def test_waiting_returns_when_every_worker_ended_with_their_logs(tmp_path):
    workers = [_worker(tmp_path, 1, "print('one')"), _worker(tmp_path, 2, "import sys; sys.exit(3)")]
    assert wait_all(workers, time.monotonic() + 30) == []
    assert [worker.returncode for worker in workers] == [0, 3]
    assert workers[0].log.read_text() == "one\n"
    assert all(worker.took > 0 for worker in workers)


def test_a_worker_past_the_deadline_is_still_running_then_stopped(tmp_path):
    # a stand-in for a worker: it sleeps so that it is still running at the deadline
    worker = _worker(tmp_path, 1, "import time; time.sleep(60)")
    began = time.monotonic()
    assert wait_all([worker], began + 0.3) == [worker]
    assert stop_all([worker], grace=10) == []
    assert worker.returncode is not None and time.monotonic() - began < 10


def test_a_worker_that_ignores_sigterm_is_killed_after_the_grace(tmp_path):
    code = ("import signal, sys, time; signal.signal(signal.SIGTERM, signal.SIG_IGN); print('ready', flush=True); "
            "time.sleep(60)")  # a stand-in that will not stop
    worker = _worker(tmp_path, 1, code)
    deadline = time.monotonic() + 10
    while "ready" not in worker.log.read_text() and time.monotonic() < deadline:
        wait_all([worker], time.monotonic() + 0.05)  # polling its log, with a deadline
    lines = stop_all([worker], grace=0.5)
    assert lines == ["worker 1/2 did not end within 0 s of SIGTERM: killed"]
    assert worker.returncode == -9
