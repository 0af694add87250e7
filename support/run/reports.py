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

The living documentation (support/livingdoc/, ``-D report=html``) takes ``context.attach`` like the JSON
formatter. ``-D report=html,html-page,json,allure`` adds those formatters to a plain ``behave`` run, a dry run
included (see the README, "Reports").
"""

from __future__ import annotations

import sys
from collections.abc import Callable, Iterable, Mapping, MutableSequence
from pathlib import Path
from typing import Any, cast

from behave.formatter.base import Formatter, StreamOpener
from behave.runner import Context

#: The caption of the diagnostics in every report, and the first line of the printed block.
DIAGNOSTICS_TITLE = "What the suite saw"

#: ``-D report=`` kinds -> (formatter, file or directory under ``-D report_dir``).
REPORTS: dict[str, tuple[str, str]] = {
    "html": ("support.livingdoc.formatter:LivingDocFormatter", "html"),
    "html-page": ("behave_html_pretty_formatter:PrettyHTMLFormatter", "acceptance.html"),
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


def add_requested_reports(config: Any, formatters: MutableSequence[Formatter]) -> list[Path]:
    """Add the formatters ``-D report`` asks for to ``formatters`` (the runner's); return where they write.

    Called when behave has built its formatters from ``-f``/``-o`` but has not yet shown them a feature; it
    closes every formatter in its list after ``after_all``, so an added one sees the whole run exactly like
    one given on the command line (without ``-o``'s positional pairing, where ``-f html-pretty -o x.html -f
    progress`` and ``-f progress -f html-pretty -o x.html`` differ).
    """
    userdata = config.userdata
    directory = Path(userdata.get("report_dir", DEFAULT_REPORT_DIR))
    written = []
    for kind in requested_reports(userdata):
        spec, name = REPORTS[kind]
        target = directory / name
        target.parent.mkdir(parents=True, exist_ok=True)
        formatters.append(_load(spec)(StreamOpener(filename=str(target)), config))
        written.append(target)
    return written


def add_reports_to_this_run(hooks: dict[str, Any], say: Callable[[str], None] = print) -> None:
    """Make ``-D report`` work in every run, a dry run included: call it from environment.py's top level.

    behave runs no hook at all in a dry run (``before_all`` included), yet the specification should be
    readable before anything runs. What it does run in a dry run is environment.py itself, with the runner's
    hook dictionary as its globals; so this finds that runner and wraps its ``run_model``, which behave calls
    right after building the formatters. behave 1.3.3 offers no public way to add a formatter at run time;
    ``tests/suite/test_reports.py`` runs a dry run to keep this honest.
    """
    runner = _runner_owning(hooks)
    if runner is None:  # environment.py imported outside a behave run (a test reading it)
        return
    requested_reports(runner.config.userdata)  # an unknown report fails now, before services start
    run_model = runner.run_model

    def run_model_with_reports(*args: Any, **kwargs: Any) -> Any:
        for target in add_requested_reports(runner.config, runner.formatters):
            say(f"report: {target}")
        return run_model(*args, **kwargs)

    runner.run_model = run_model_with_reports


def _runner_owning(hooks: dict[str, Any]) -> Any:
    """The behave runner whose ``hooks`` dictionary is ``hooks`` (environment.py's globals), from the stack."""
    frame = sys._getframe(1)
    while frame is not None:
        candidate = frame.f_locals.get("self")
        if candidate is not None and getattr(candidate, "hooks", None) is hooks:
            return candidate
        frame = frame.f_back  # type: ignore[assignment]  # None ends the loop
    return None


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
