"""The living documentation (``-D report=html``) as a product owner meets it, before any run and in a browser.

A dry run must render the whole specification: every feature in story order (the order of the file paths),
each with its scenarios counted "not run" (as many as behave's own JSON lists for it), nothing failed. Then
the index opens in real Chromium (the system's, launched as the @browser scenarios launch it): every entry
there, every scenario folded until clicked, the Background once, and no file locations or tags in the owner's
view, while the developer's view has them. A screenshot of the index is left for reviewers.
"""

from __future__ import annotations

import json
import os
import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from report_checks.runs import REPO_ROOT, Run, counts_of, read_index
from support.fans.browser import ARGS, find_chromium
from support.livingdoc.model import story_key

#: Where the index's picture is left: the reports lane's folder (reports/<lane>/).
SCREENSHOT = REPO_ROOT / "reports" / "reports" / "living-doc-index.png"
#: What the owner's view must not show: ``file:line`` and ``@tags`` (an address like a@b is no tag).
LOCATION = re.compile(r"\.(feature|py):\d+")
TAG = re.compile(r"(?<![\w.])@[a-z][\w-]*")


def _feature_files() -> list[str]:
    paths = (str(path.relative_to(REPO_ROOT)) for path in (REPO_ROOT / "features").rglob("*.feature"))
    return sorted(paths, key=story_key)


def _json_scenarios(dry: Run) -> Counter[str]:
    """Scenarios per feature file (outline rows one by one) as behave's own JSON report of the dry run lists them."""
    counts: Counter[str] = Counter()
    for feature in json.loads((dry.out / "acceptance.json").read_text()):
        path = feature["location"].rsplit(":", 1)[0]
        counts[path] += sum(1 for element in feature.get("elements", []) if element.get("type") != "background")
    return counts


def test_the_dry_run_lists_every_feature_in_story_order(dry: Run) -> None:
    assert dry.result.returncode == 0, dry.result.stdout[-3000:] + dry.result.stderr[-3000:]
    index = read_index(dry.out / "html" / "index.html")
    assert [entry["data-path"] for entry in index.entries] == _feature_files()


def test_the_dry_run_counts_every_scenario_not_run_and_none_failed(dry: Run) -> None:
    index = read_index(dry.out / "html" / "index.html")
    expected = _json_scenarios(dry)
    assert {entry["data-path"]: counts_of(entry) for entry in index.entries} == \
        {path: (0, 0, 0, expected[path]) for path in _feature_files()}
    behave_total = sum(dry.scenario_counts())
    assert counts_of(index.totals) == (0, 0, 0, sum(expected.values())) == (0, 0, 0, behave_total)


@pytest.fixture(scope="module")
def chromium() -> Iterator[Any]:
    path, why_not = find_chromium(None)
    if path is None:
        if os.environ.get("CI") == "true":
            pytest.fail(f"CI must open the report in a real browser: {why_not}")
        pytest.skip(why_not)
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=path, args=ARGS)
        yield browser
        browser.close()


def _open(chromium: Any, path: Path) -> Any:
    page = chromium.new_page(viewport={"width": 1280, "height": 1000})
    page.goto(path.as_uri())
    return page


def _owner_text_is_clean(text: str, where: str) -> None:
    assert not LOCATION.search(text), f"{where}: a file location in the owner's view: {LOCATION.search(text)}"
    assert not TAG.search(text), f"{where}: a tag in the owner's view: {TAG.search(text)}"


def _open_details(page: Any) -> int:
    return int(page.eval_on_selector_all("details", "all => all.filter(d => d.open).length"))


def test_chromium_shows_the_index_with_every_feature_and_the_totals(dry: Run, chromium: Any) -> None:
    page = _open(chromium, dry.out / "html" / "index.html")
    entries = page.locator("li.feature")
    assert entries.count() == len(_feature_files())
    assert [entries.nth(i).get_attribute("data-path") for i in range(entries.count())] == _feature_files()
    for i in range(entries.count()):
        assert entries.nth(i).locator("h2 a").is_visible(), f"entry {i + 1} has no visible link"
    totals = page.inner_text("#totals")
    assert f"{sum(_json_scenarios(dry).values())} not run" in totals and "0 failed" in totals, totals
    assert page.locator("details").count() >= len(_feature_files()) and _open_details(page) == 0
    _owner_text_is_clean(page.text_content("body"), "index")
    SCREENSHOT.parent.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOT), full_page=True)
    page.close()


def test_chromium_shows_a_feature_folded_and_opens_a_scenario_on_a_click(dry: Run, chromium: Any) -> None:
    page = _open(chromium, dry.out / "html" / "index.html")
    page.locator("li.feature h2 a").first.click()
    page.wait_for_load_state()
    scenarios = page.locator("details.scenario")
    assert scenarios.count() > 0 and _open_details(page) == 0, "the scenarios are not folded"
    first_step = scenarios.first.locator("li.step").first
    assert not first_step.is_visible()
    scenarios.first.locator("summary").click()
    assert first_step.is_visible(), "a click on a scenario's title does not show its steps"
    assert page.locator("section.background").count() <= 1
    _owner_text_is_clean(page.text_content("body"), page.url)
    page.get_by_role("link", name="Developer's view").click()
    page.wait_for_load_state()
    assert "/dev/" in page.url
    assert LOCATION.search(page.inner_text("body")), "the developer's view shows no file locations"
    page.close()


def test_chromium_opens_the_glossary_from_the_index(dry: Run, chromium: Any) -> None:
    """Owners look the specification's words up while they read it (features/GLOSSARY.md, issue 22)."""
    page = _open(chromium, dry.out / "html" / "index.html")
    page.get_by_role("link", name="Glossary").click()
    page.wait_for_load_state()
    assert page.url.endswith("/glossary.html"), page.url
    glossary = page.locator("#glossary")
    terms = glossary.locator("li strong")
    assert terms.count() >= 20, f"the glossary page shows {terms.count()} defined words"
    words = {terms.nth(i).inner_text() for i in range(terms.count())}
    assert {"fan", "race control", "tracker", "orphan", "faulty", "correction"} <= words, sorted(words)
    page.close()
