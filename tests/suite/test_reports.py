"""-D report: which reports a plain behave run adds (support/run/reports.py); fast, no services."""

from __future__ import annotations

import pytest

from support.run.reports import REPORTS, ReportOptionError, requested_reports


def test_no_report_unless_asked() -> None:
    assert requested_reports({}) == []
    assert requested_reports({"report": ""}) == []


def test_reports_are_read_in_order_without_repeats() -> None:
    assert requested_reports({"report": " HTML, json,html "}) == ["html", "json"]


def test_an_unknown_report_is_refused_with_the_known_ones() -> None:
    with pytest.raises(ReportOptionError, match=r"unknown pdf .*known: html, json, allure"):
        requested_reports({"report": "html,pdf"})


def test_every_report_names_an_importable_formatter() -> None:
    """A typo in a formatter's module or class would only show in a run that asks for that report."""
    from behave.formatter.base import Formatter

    from support.run.reports import _load

    for spec, _ in REPORTS.values():
        assert issubclass(_load(spec), Formatter), spec
