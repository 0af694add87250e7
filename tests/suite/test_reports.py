"""-D report: which reports a plain behave run adds (support/run/reports.py); fast, no services (the dry run
below takes a few seconds: it parses every feature file, and runs nothing)."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

from support.livingdoc.model import story_key
from support.run.reports import REPORTS, ReportOptionError, requested_reports

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_no_report_unless_asked() -> None:
    assert requested_reports({}) == []
    assert requested_reports({"report": ""}) == []


def test_reports_are_read_in_order_without_repeats() -> None:
    assert requested_reports({"report": " HTML, json,html "}) == ["html", "json"]


def test_an_unknown_report_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ReportOptionError, match=r"unknown pdf .*known: html, html-page, json, allure"):
        requested_reports({"report": "html,pdf"})


def test_every_report_names_an_importable_formatter() -> None:
    """A typo in a formatter's module or class would only show in a run that asks for that report."""
    from behave.formatter.base import Formatter

    from support.run.reports import _load

    for spec, _ in REPORTS.values():
        assert issubclass(_load(spec), Formatter), spec


def test_a_dry_run_writes_the_living_documentation(tmp_path: Path) -> None:
    """behave runs no hook in a dry run; -D report still works there (add_reports_to_this_run), and the whole
    specification is listed, in story order, with every scenario "not run" and nothing failed."""
    result = subprocess.run(
        [sys.executable, "-m", "behave", "--dry-run", "--format", "null", "--tags=@load or not @load",
         "-D", "report=html", "-D", f"report_dir={tmp_path}"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=120)
    index = tmp_path / "html" / "index.html"
    assert index.is_file(), result.stdout[-2000:] + result.stderr[-2000:]
    page = index.read_text()
    features = sorted((str(p.relative_to(REPO_ROOT)) for p in (REPO_ROOT / "features").glob("*.feature")),
                      key=story_key)
    assert re.findall(r'<li class="feature[^"]*" data-path="([^"]+)"', page) == features
    summary = re.search(r"^(\d+) scenarios? passed, (\d+) failed, (\d+) skipped(?:, (\d+) untested)?", result.stdout,
                        re.MULTILINE)
    assert summary is not None, result.stdout[-2000:]
    scenarios = sum(int(n or 0) for n in summary.groups())
    totals = re.search(r'<section class="totals"[^>]*>', page)
    assert totals is not None
    assert f'data-not-run="{scenarios}"' in totals.group(), (totals.group(), scenarios)
    assert 'data-failed="0"' in totals.group() and 'data-passed="0"' in totals.group()
