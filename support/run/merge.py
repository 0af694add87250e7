"""One report from the workers of a parallel run (support/run/parallel.py): their JUnit files merged per feature,
their behave JSON merged per feature, and the run's totals counted from them.

behave writes one JUnit file per feature (``TESTS-<feature>.xml``); two workers that ran scenarios of the same
feature each write one of that name, so the merge puts their test cases under one ``testsuite`` and sums its
counts. The JSON is one array of features; the same feature from two workers becomes one, its elements in the
order the workers are given. CI tools and ``.ci/junit_summary.py`` then read the merged folder as they read a
single run's.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Totals:
    """Scenarios (an outline's rows each) by outcome, counted as ``.ci/junit_summary.py`` counts them."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0

    def __add__(self, other: Totals) -> Totals:
        return Totals(self.passed + other.passed, self.failed + other.failed, self.skipped + other.skipped)

    def line(self) -> str:
        return f"{self.passed} passed, {self.failed} failed, {self.skipped} skipped"


def case_outcome(case: ET.Element) -> str:
    """``failed``, ``skipped`` or ``passed`` for one JUnit test case."""
    if case.find("failure") is not None or case.find("error") is not None:
        return "failed"
    if case.find("skipped") is not None or case.get("status") in ("skipped", "untested"):
        return "skipped"
    return "passed"


def merge_junit(folders: Sequence[Path], target: Path) -> Totals:
    """Merge the JUnit files of ``folders`` into ``target`` (one file per feature); return the totals."""
    target.mkdir(parents=True, exist_ok=True)
    suites: dict[str, list[ET.Element]] = {}
    for folder in folders:
        for report in sorted(folder.glob("*.xml")):
            suites.setdefault(report.name, []).append(ET.parse(report).getroot())
    totals = Totals()
    for name, parts in sorted(suites.items()):
        merged = ET.Element("testsuite", dict(parts[0].attrib))
        cases = [case for part in parts for case in part.iter("testcase")]
        merged.extend(cases)
        outcomes = [case_outcome(case) for case in cases]
        merged.set("tests", str(len(cases)))
        merged.set("failures", str(sum(1 for case in cases if case.find("failure") is not None)))
        merged.set("errors", str(sum(1 for case in cases if case.find("error") is not None)))
        merged.set("skipped", str(outcomes.count("skipped")))
        merged.set("time", f"{sum(float(part.get('time', 0) or 0) for part in parts):.6f}")
        ET.ElementTree(merged).write(target / name, encoding="UTF-8", xml_declaration=True)
        totals += Totals(outcomes.count("passed"), outcomes.count("failed"), outcomes.count("skipped"))
    return totals


def count_junit(folder: Path) -> Totals:
    """The totals of one folder of JUnit files."""
    outcomes = [case_outcome(case) for report in sorted(folder.glob("*.xml"))
                for case in ET.parse(report).getroot().iter("testcase")]
    return Totals(outcomes.count("passed"), outcomes.count("failed"), outcomes.count("skipped"))


def failure_details(folder: Path) -> list[str]:
    """Each failed test case of a folder of JUnit files, as text: its name, the failure with the failing step and
    traceback, and what it printed (the suite's "What the suite saw"), for the console of a parallel run whose
    workers' own console (``--format progress``) only names the failing scenarios."""
    details = []
    for report in sorted(folder.glob("*.xml")):
        for case in ET.parse(report).getroot().iter("testcase"):
            problem = case.find("failure")
            if problem is None:
                problem = case.find("error")
            if problem is None:
                continue
            out = case.find("system-out")
            printed = (out.text or "").strip() if out is not None else ""
            details.append(f"{case.get('classname')}: {case.get('name')}\n{problem.get('message', '')}\n"
                           f"{(problem.text or '').strip()}\n{printed}".rstrip())
    return details


def _feature_status(elements: Iterable[dict[str, Any]]) -> str:
    statuses = {element.get("status") for element in elements}
    for status in ("failed", "error", "undefined", "passed"):
        if status in statuses:
            return status
    return "skipped"


def merge_json(files: Sequence[Path], target: Path) -> int:
    """Merge behave JSON reports ``files`` (missing ones passed over) into ``target``; return its features."""
    features: dict[str, dict[str, Any]] = {}
    for file in files:
        if not file.exists():
            continue
        for feature in json.loads(file.read_text(encoding="utf-8") or "[]"):
            key = str(feature.get("location") or feature.get("name"))
            if key in features:
                features[key]["elements"].extend(feature.get("elements", []))
            else:
                features[key] = {**feature, "elements": list(feature.get("elements", []))}
    merged = [features[key] for key in sorted(features)]
    for feature in merged:
        feature["status"] = _feature_status(feature["elements"])
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_text(json.dumps(merged, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    return len(merged)


def scenarios_in_json(file: Path) -> list[str]:
    """Every scenario element of a behave JSON report as ``<location> <name>`` (an outline's rows each), for
    comparing what ran with what a dry run lists."""
    return [f"{element.get('location')} {element.get('name')}"
            for feature in json.loads(file.read_text(encoding="utf-8") or "[]")
            for element in feature.get("elements", []) if element.get("type") == "scenario"]
