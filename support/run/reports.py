"""Reports of a run for people who were not watching it: an HTML page, JSON, Allure results, and the
failing step's diagnostics in every one of them.

Why this module exists: behave 1.3.3 sets ``step.error_message`` from the exception *after* ``after_step``
has run, so appending the suite's diagnostics to it there changes nothing. What does reach the reports is
each formatter's own attachment mechanism, called while the failing step is still the current one (that is,
from ``after_step``):

* behave's JSON formatter: ``context.attach`` (an ``embeddings`` entry of the step, base64 as in Cucumber);
* behave-html-pretty-formatter: its ``embed`` (a collapsible block under the step);
* allure-behave: ``allure.attach`` (an attachment of the step, when the Allure formatter is active);
* the console and JUnit: printed, so behave's capture puts it under the failure and in ``system-out``.

``-D report=html,json,allure`` adds those formatters to a plain ``behave`` run (see the README, "Reports").
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any, cast

from behave.formatter.base import Formatter, StreamOpener
from behave.runner import Context

#: The caption of the diagnostics in every report, and the first line of the printed block.
DIAGNOSTICS_TITLE = "What the suite saw"

#: ``-D report=`` kinds -> (formatter, file or directory under ``-D report_dir``).
REPORTS: dict[str, tuple[str, str]] = {
    "html": ("behave_html_pretty_formatter:PrettyHTMLFormatter", "acceptance.html"),
    "json": ("behave.formatter.json:PrettyJSONFormatter", "acceptance.json"),
    "allure": ("allure_behave.formatter:AllureFormatter", "allure-results"),
}
DEFAULT_REPORT_DIR = "reports"


class ReportOptionError(ValueError):
    """``-D report`` names a report the suite does not know; the message lists the known ones."""


def requested_reports(userdata: Mapping[str, str]) -> list[str]:
    """The report kinds ``-D report=html,json,allure`` asks for (none by default), validated."""
    kinds = [kind.strip().lower() for kind in str(userdata.get("report", "")).split(",") if kind.strip()]
    unknown = [kind for kind in kinds if kind not in REPORTS]
    if unknown:
        raise ReportOptionError(f"-D report: unknown {', '.join(unknown)} (known: {', '.join(REPORTS)})")
    return list(dict.fromkeys(kinds))


def _load(spec: str) -> type[Formatter]:
    module_name, class_name = spec.split(":")
    module = __import__(module_name, fromlist=[class_name])
    return cast("type[Formatter]", getattr(module, class_name))


def add_requested_reports(context: Context) -> list[Path]:
    """Add the formatters ``-D report`` asks for to this run; return where they write.

    Called from ``before_all``: behave has built its formatters from ``-f``/``-o`` by then but has not yet
    shown them a feature, and it closes every formatter in its list after ``after_all``, so an added one
    sees the whole run exactly like one given on the command line (without ``-o``'s positional pairing,
    where ``-f html-pretty -o x.html -f progress`` and ``-f progress -f html-pretty -o x.html`` differ).
    """
    userdata = context.config.userdata
    kinds = requested_reports(userdata)
    directory = Path(userdata.get("report_dir", DEFAULT_REPORT_DIR))
    written = []
    for kind in kinds:
        spec, name = REPORTS[kind]
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        formatter = _load(spec)(StreamOpener(filename=str(target)), context.config)
        context._runner.formatters.append(formatter)  # behave offers no public way to add one at run time
        written.append(target)
    return written


def _formatters(context: Context) -> Iterable[Any]:
    runner = getattr(context, "_runner", None)
    return getattr(runner, "formatters", None) or []


def attach_diagnostics(context: Context, text: str) -> None:
    """Put ``text`` (the failing step's "What the suite saw") into every report of this run.

    Must be called from ``after_step``: each formatter attaches to the step it considers current, which is
    the failing one until behave reports the step's result right after the hook.
    """
    block = f"---- {DIAGNOSTICS_TITLE} ----\n{text.strip(chr(10))}\n"
    print(block)  # console and JUnit system-out, through behave's capture
    context.attach("text/plain", block.encode("utf-8"))  # JSON formatter: the step's "embeddings"
    for formatter in _formatters(context):
        if getattr(formatter, "name", "") == "html-pretty":
            formatter.embed("text/plain", block, caption=DIAGNOSTICS_TITLE)
    if _allure_active(context):
        import allure  # imported only when its formatter runs: it is an optional report

        allure.attach(block, name=DIAGNOSTICS_TITLE, attachment_type=allure.attachment_type.TEXT)


def _allure_active(context: Context) -> bool:
    return any(type(formatter).__module__.startswith("allure_behave") for formatter in _formatters(context))
