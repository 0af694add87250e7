"""A failing scenario's diagnostics reach every report: the living documentation, the one-page HTML, JSON,
Allure, JUnit and the console.

Runs the real suite (services and all) against a Processor that loses every live position
(report_checks/broken_processor.py), so the @happy-path scenario fails while Alice waits for tracker-A to
move. The reports must then carry what the suite saw: Alice's frames and the Processor's log tail.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import re

from report_checks.runs import FAILING_STEP, REPO_ROOT, SCENARIO, Run, counts_of, diagnostics_shown, read_index
from support.livingdoc.model import page_name


def test_the_scenario_fails_at_the_live_position(run: Run) -> None:
    assert run.result.returncode != 0, f"behave passed against a broken Processor:\n{run.result.stdout[-3000:]}"
    assert re.search(r"^0 scenarios? passed, 1 failed", run.result.stdout, re.MULTILINE), run.result.stdout[-3000:]


def test_json_report_embeds_the_diagnostics_in_the_failing_step(run: Run) -> None:
    features = json.loads((run.out / "acceptance.json").read_text())
    scenario = next(e for f in features for e in f["elements"] if e["name"] == SCENARIO)
    failed = [s for s in scenario["steps"] if s.get("result", {}).get("status") == "failed"]
    assert [s["name"] for s in failed] == [FAILING_STEP]
    embedded = "".join(base64.b64decode(e["data"]).decode() for e in failed[0].get("embeddings", [])
                       if e["mime_type"] == "text/plain")
    diagnostics_shown(embedded, "JSON embeddings of the failing step")


def _html_text(page: str) -> str:
    """The page's text with html-pretty's compressed embeds (base64 gzip, shown by its JavaScript) opened."""
    opened = [gzip.decompress(base64.b64decode(data)).decode()
              for data in re.findall(r'<span[^>]*class="to-render"[^>]*data="([^"]+)"', page)]
    return html.unescape(page) + "\n".join(opened)


def test_the_one_page_html_report_embeds_the_diagnostics(run: Run) -> None:
    page = (run.out / "acceptance.html").read_text()
    assert SCENARIO in page
    diagnostics_shown(_html_text(page), "one-page HTML report (-D report=html-page)")


def _failing_step_item(page: str) -> str:
    """The ``<li>`` of the living documentation's failed step: its text, error and diagnostics."""
    found = re.search(r'<li class="step failed">(.*?)</li>', page, re.DOTALL)
    assert found is not None, "no failed step on the feature's page"
    return html.unescape(found.group(1))


def _failing_feature(run: Run) -> str:
    """The path of the one feature the index counts a failure in (the file holding SCENARIO, whatever its name)."""
    index = read_index(run.out / "html" / "index.html")
    failing = [entry["data-path"] for entry in index.entries if counts_of(entry)[1]]
    assert len(failing) == 1, f"features with a failure: {failing}"
    assert SCENARIO in (REPO_ROOT / failing[0]).read_text(), f"{failing[0]} does not hold {SCENARIO!r}"
    return failing[0]


def test_the_living_documentation_shows_the_diagnostics_under_the_failing_step(run: Run) -> None:
    page_file = page_name(_failing_feature(run))
    for view in ("", "dev/"):
        page = (run.out / "html" / view / page_file).read_text()
        assert SCENARIO in html.unescape(page)
        item = _failing_step_item(page)
        assert FAILING_STEP in item, f"{view or 'owner'} view: the failed step is not {FAILING_STEP!r}"
        diagnostics_shown(item, f"living documentation, {view or 'owner'} view, failing step")
        assert "<details class=\"diagnostics\">" in page, "the diagnostics are not folded"


def test_the_living_documentation_counts_the_run(run: Run) -> None:
    passed, failed, skipped, untested = run.scenario_counts()
    index = read_index(run.out / "html" / "index.html")
    # --tags=@happy-path: behave "skips" every other scenario; for a reader they were not run.
    assert counts_of(index.totals) == (0, 1, 0, skipped + untested) == (passed, failed, 0, skipped + untested)
    _failing_feature(run)


def test_allure_results_attach_the_diagnostics(run: Run) -> None:
    attachments = "\n".join(p.read_text() for p in (run.out / "allure-results").glob("*-attachment.txt"))
    diagnostics_shown(attachments, "Allure attachments")


def test_junit_and_console_keep_the_diagnostics(run: Run) -> None:
    junit = "\n".join(html.unescape(p.read_text()) for p in (run.out / "junit").glob("*.xml"))
    diagnostics_shown(junit, "JUnit XML")
    diagnostics_shown(run.result.stdout, "console")
