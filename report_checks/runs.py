"""The behave runs the report checks read, and what they look for in every report.

Two runs, each once per session (conftest.py): the @happy-path scenario against a Processor that loses every
live position (broken_processor.py), with every report requested, and a dry run of the whole specification.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
from dataclasses import dataclass
from html.parser import HTMLParser
from pathlib import Path

from report_checks.broken_processor import FAULT_MARKER, FAULT_VARIABLE
from support.run.reports import DIAGNOSTICS_TITLE

REPO_ROOT = Path(__file__).resolve().parent.parent
SCENARIO = "A signed-in fan sees every car, then follows them live"
FAILING_STEP = "Alice sees tracker-A move to 41.3290, 19.8210 within 1 second"
#: Alice's answer to opening the map, as the reports list her frames.
ALICE_FRAMES = re.compile(r'Alice \(open\): \d+ frame\(s\):\s+\{"type": "subscribed"')
#: behave's own closing line for scenarios.
SCENARIO_SUMMARY = re.compile(r"^(\d+) scenarios? passed, (\d+) failed, (\d+) skipped(?:, (\d+) untested)?",
                              re.MULTILINE)


@dataclass
class Run:
    """A finished behave run: its console output, exit status and the folder its reports are in."""

    result: subprocess.CompletedProcess[str]
    out: Path

    def scenario_counts(self) -> tuple[int, int, int, int]:
        """behave's own scenario counts: passed, failed, skipped, untested (its closing line)."""
        summary = SCENARIO_SUMMARY.search(self.result.stdout)
        assert summary is not None, self.result.stdout[-3000:]
        passed, failed, skipped, untested = (int(n or 0) for n in summary.groups())
        return passed, failed, skipped, untested


def broken_run(out: Path) -> Run:
    """One behave run of @happy-path against the broken Processor, every report requested."""
    command = [
        sys.executable, "-m", "behave", "--tags=@happy-path", "--format", "plain",
        "-D", "require_services=true",
        "-D", f"processor_cmd={sys.executable} report_checks/broken_processor.py",
        "-D", "report=html,html-page,json,allure", "-D", f"report_dir={out}",
        "--junit", "--junit-directory", str(out / "junit"),
    ]
    env = {**os.environ, FAULT_VARIABLE: "live-positions-lost"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    return Run(result, out)


def dry_run(out: Path) -> Run:
    """The whole specification (@load too), nothing run: the living documentation, and JSON to compare it to."""
    command = [sys.executable, "-m", "behave", "--dry-run", "--format", "null", "--tags=@load or not @load",
               "-D", "report=html,json", "-D", f"report_dir={out}"]
    result = subprocess.run(command, cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    return Run(result, out)


def diagnostics_shown(text: str, where: str) -> None:
    assert DIAGNOSTICS_TITLE in text, f"{where}: no {DIAGNOSTICS_TITLE!r}"
    assert ALICE_FRAMES.search(text), f"{where}: Alice's frames are missing"
    assert FAULT_MARKER in text, f"{where}: the Processor's log tail is missing"


class _IndexReader(HTMLParser):
    """The living documentation's index as data: the totals and each feature entry's ``data-*`` attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.totals: dict[str, str] = {}
        self.entries: list[dict[str, str]] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {name: value or "" for name, value in attrs}
        classes = values.get("class", "").split()
        if tag == "section" and "totals" in classes:
            self.totals = values
        elif tag == "li" and "feature" in classes:
            self.entries.append(values)


def read_index(path: Path) -> _IndexReader:
    reader = _IndexReader()
    reader.feed(path.read_text(encoding="utf-8"))
    return reader


def counts_of(attributes: dict[str, str]) -> tuple[int, int, int, int]:
    """An index element's passed, failed, skipped and not-run counts."""
    passed, failed, skipped, not_run = (int(attributes[f"data-{name}"])
                                        for name in ("passed", "failed", "skipped", "not-run"))
    return passed, failed, skipped, not_run
