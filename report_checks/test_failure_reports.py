"""A failing scenario's diagnostics reach every report: HTML, JSON, Allure, JUnit and the console.

Runs the real suite (services and all) against a Processor that loses every live position
(report_checks/broken_processor.py), so the @happy-path scenario fails while Alice waits for tracker-A to
move. The reports must then carry what the suite saw: Alice's frames and the Processor's log tail.
"""

from __future__ import annotations

import base64
import gzip
import html
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from report_checks.broken_processor import FAULT_MARKER, FAULT_VARIABLE
from support.run.reports import DIAGNOSTICS_TITLE

REPO_ROOT = Path(__file__).resolve().parent.parent
SCENARIO = "A signed-in fan sees every car, then follows them live"
FAILING_STEP = "Alice sees tracker-A move to 41.3290, 19.8210 within 1 second"
#: Alice's answer to opening the map, as the report lists her frames.
ALICE_FRAMES = re.compile(r'Alice \(open\): \d+ frame\(s\):\s+\{"type": "subscribed"')


@pytest.fixture(scope="module")
def run(tmp_path_factory: pytest.TempPathFactory) -> tuple[subprocess.CompletedProcess[str], Path]:
    """One behave run of @happy-path against the broken Processor, every report requested."""
    out = tmp_path_factory.mktemp("reports")
    command = [
        sys.executable, "-m", "behave", "--tags=@happy-path", "--format", "plain",
        "-D", "require_services=true",
        "-D", f"processor_cmd={sys.executable} report_checks/broken_processor.py",
        "-D", "report=html,json,allure", "-D", f"report_dir={out}",
        "--junit", "--junit-directory", str(out / "junit"),
    ]
    env = {**os.environ, FAULT_VARIABLE: "live-positions-lost"}
    result = subprocess.run(command, cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=300)
    return result, out


def _diagnostics_shown(text: str, where: str) -> None:
    assert DIAGNOSTICS_TITLE in text, f"{where}: no {DIAGNOSTICS_TITLE!r}"
    assert ALICE_FRAMES.search(text), f"{where}: Alice's frames are missing"
    assert FAULT_MARKER in text, f"{where}: the Processor's log tail is missing"


def test_the_scenario_fails_at_the_live_position(run: tuple[subprocess.CompletedProcess[str], Path]) -> None:
    result, _ = run
    assert result.returncode != 0, f"behave passed against a broken Processor:\n{result.stdout[-3000:]}"
    assert re.search(r"^0 scenarios? passed, 1 failed", result.stdout, re.MULTILINE), result.stdout[-3000:]


def test_json_report_embeds_the_diagnostics_in_the_failing_step(run) -> None:
    _, out = run
    features = json.loads((out / "acceptance.json").read_text())
    scenario = next(e for f in features for e in f["elements"] if e["name"] == SCENARIO)
    failed = [s for s in scenario["steps"] if s.get("result", {}).get("status") == "failed"]
    assert [s["name"] for s in failed] == [FAILING_STEP]
    embedded = "".join(base64.b64decode(e["data"]).decode() for e in failed[0].get("embeddings", [])
                       if e["mime_type"] == "text/plain")
    _diagnostics_shown(embedded, "JSON embeddings of the failing step")


def _html_text(page: str) -> str:
    """The page's text with html-pretty's compressed embeds (base64 gzip, shown by its JavaScript) opened."""
    opened = [gzip.decompress(base64.b64decode(data)).decode()
              for data in re.findall(r'<span[^>]*class="to-render"[^>]*data="([^"]+)"', page)]
    return html.unescape(page) + "\n".join(opened)


def test_html_report_embeds_the_diagnostics(run) -> None:
    _, out = run
    page = (out / "acceptance.html").read_text()
    assert SCENARIO in page
    _diagnostics_shown(_html_text(page), "HTML report")


def test_allure_results_attach_the_diagnostics(run) -> None:
    _, out = run
    attachments = "\n".join(p.read_text() for p in (out / "allure-results").glob("*-attachment.txt"))
    _diagnostics_shown(attachments, "Allure attachments")


def test_junit_and_console_keep_the_diagnostics(run) -> None:
    result, out = run
    junit = "\n".join(html.unescape(p.read_text()) for p in (out / "junit").glob("*.xml"))
    _diagnostics_shown(junit, "JUnit XML")
    _diagnostics_shown(result.stdout, "console")
