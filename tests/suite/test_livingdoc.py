"""The living documentation's rules (support/livingdoc/): outcomes, story order, counts, coverage, rendering.

Fast and without services: the rules on plain data, then two small feature files of its own rendered through
behave's parser, as a dry run would see them. The real run and the browser are the reports lane's.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from behave.parser import parse_file

from support.livingdoc.collect import StepNotes, attach_coverage, feature_doc
from support.livingdoc.coverage import contract_from_map
from support.livingdoc.formatter import tag_selection, without_caption
from support.livingdoc.model import (
    FAILED,
    NOT_RUN,
    PASSED,
    SKIPPED,
    UNDEFINED,
    Counts,
    RunInfo,
    combined_outcome,
    in_story_order,
    own_tags,
    page_name,
    scenario_outcome,
    step_outcome,
    story_key,
)
from support.livingdoc.render import format_duration, paragraphs, write_report
from support.run.reports import DIAGNOSTICS_TITLE


@pytest.mark.parametrize("status", ["passed", "failed", "error", "hook_error", "skipped", "untested", "undefined"])
def test_a_dry_run_shows_every_scenario_as_not_run(status: str) -> None:
    assert scenario_outcome(status, skip_reason="no Chromium", dry_run=True) == NOT_RUN


@pytest.mark.parametrize(("status", "reason", "outcome"), [
    ("passed", None, PASSED),
    ("failed", None, FAILED),
    ("error", None, FAILED),
    ("hook_error", None, FAILED),
    ("undefined", None, FAILED),
    ("skipped", "no Chromium found", SKIPPED),  # the suite decided it cannot run here, and says why
    ("skipped", None, NOT_RUN),  # not selected by --tags: nobody decided anything about it
    ("untested", None, NOT_RUN),  # the run was aborted before it
])
def test_a_scenario_outcome_in_a_real_run(status: str, reason: str | None, outcome: str) -> None:
    assert scenario_outcome(status, reason, dry_run=False) == outcome


def test_step_outcomes_keep_undefined_steps_visible_even_in_a_dry_run() -> None:
    assert step_outcome("untested", dry_run=True) == NOT_RUN
    assert step_outcome("undefined", dry_run=True) == UNDEFINED
    assert step_outcome("failed", dry_run=False) == FAILED
    assert step_outcome("skipped", dry_run=False) == SKIPPED


def test_several_outcomes_show_a_failure_first_and_hide_no_pass_behind_not_run() -> None:
    assert combined_outcome([PASSED, FAILED, NOT_RUN]) == FAILED
    assert combined_outcome([PASSED, SKIPPED]) == SKIPPED
    assert combined_outcome([PASSED, NOT_RUN]) == PASSED
    assert combined_outcome([NOT_RUN, NOT_RUN]) == NOT_RUN
    assert combined_outcome([]) == NOT_RUN


def test_story_order_is_the_order_of_the_file_paths_numbers_as_numbers() -> None:
    paths = ["features/10_load.feature", "features/02_who_may_watch.feature", "features/9_bad_days.feature",
             "features/01_live_broadcast.feature"]
    assert sorted(paths, key=story_key) == ["features/01_live_broadcast.feature",
                                            "features/02_who_may_watch.feature", "features/9_bad_days.feature",
                                            "features/10_load.feature"]


def test_a_feature_page_is_named_after_its_file() -> None:
    assert page_name("features/01_live_broadcast.feature") == "01_live_broadcast.html"
    assert page_name("features/area/x y.feature") == "area__x-y.html"
    assert page_name("/repo/features/01_a.feature") == "01_a.html"
    assert page_name("elsewhere.feature") == "elsewhere.html"


def test_a_scenario_own_tag_is_the_one_no_other_scenario_uses() -> None:
    assert own_tags([["fanout"], ["redis-restart", "needs-service-control"], ["needs-service-control", "x"], []]) \
        == ["fanout", "redis-restart", "x", None]


def test_counts_add_up_by_outcome() -> None:
    counts = Counts()
    for outcome in (PASSED, PASSED, FAILED, NOT_RUN):
        counts.add(outcome)
    total = counts + Counts(skipped=2)
    assert (total.passed, total.failed, total.skipped, total.not_run, total.total) == (2, 1, 2, 1, 6)
    assert total.items() == [(PASSED, 2), (FAILED, 1), (SKIPPED, 2), (NOT_RUN, 1)]


def test_the_contract_map_is_turned_round_to_give_each_scenario_its_promises() -> None:
    contract = contract_from_map({
        "start.command": {"summary": "starts", "scenarios": ["happy-path"]},
        "config.port": {"summary": "the port", "scenarios": ["happy-path", "@auth"]},
        "config.host": {"summary": "the host", "note": "not checked"},
        "http.private": {"summary": "private", "exempt": "no black box sees it"},
    })
    assert [p.id for p in contract.promises_of("happy-path")] == ["start.command", "config.port"]
    assert [p.id for p in contract.promises_of("auth")] == ["config.port"]
    assert contract.promises_of(None) == []
    assert contract.checked == 2
    assert contract.entries[3].exempt == "no black box sees it"


def test_small_helpers() -> None:
    assert paragraphs(["One line", "goes on.", "", "  Second.", ""]) == ["One line goes on.", "Second."]
    assert [format_duration(s) for s in (None, 0.4213, 12.34, 125.2)] == ["", "0.42 s", "12.3 s", "2 min 05 s"]
    assert without_caption(f"---- {DIAGNOSTICS_TITLE} ----\nframes\n") == "frames\n"
    assert without_caption("frames\n") == "frames\n"
    assert tag_selection(None) == ""
    assert tag_selection(["@a or @b"]) == "@a or @b"
    assert tag_selection(["@a", "not @b"]) == "(@a) and (not @b)"


FEATURE_A = """\
@area-b
Feature: Second in the story
  Told second.

  Background:
    Given a thing

  @only-b
  Scenario: B's one
    When it happens
    Then it shows
"""

FEATURE_B = """\
@area-a
Feature: First in the story
  Told first,
  over two lines.

  Background:
    Given a thing

  @first
  Scenario Outline: Written first
    When <n> happen
    Examples:
      | n |
      | 1 |
      | 2 |

  @second @slow
  Scenario: Written second
    Then another
"""


@pytest.fixture
def rendered(tmp_path: Path) -> Path:
    """Two feature files rendered as a dry run sees them (file names deliberately out of alphabetical order)."""
    (tmp_path / "features").mkdir()
    (tmp_path / "features" / "02_b.feature").write_text(FEATURE_A)
    (tmp_path / "features" / "01_a.feature").write_text(FEATURE_B)
    docs = []
    for path in sorted((tmp_path / "features").glob("*.feature"), reverse=True):
        feature = parse_file(str(path))
        feature.scenarios.reverse()  # as -D order=random may leave them
        docs.append(feature_doc(feature, StepNotes(), dry_run=True))
    features = in_story_order(docs)
    contract = contract_from_map({"p.one": {"summary": "promise one", "scenarios": ["first"]}})
    by_tag = attach_coverage(features, contract)
    write_report(tmp_path / "html", RunInfo("Spec", dry_run=True, started="now"), features, contract, by_tag)
    return tmp_path / "html"


def test_the_index_lists_features_in_story_order_with_not_run_totals(rendered: Path) -> None:
    index = (rendered / "index.html").read_text()
    assert re.findall(r'data-path="[^"]*/features/([^"]+)"', index) == ["01_a.feature", "02_b.feature"]
    totals = re.search(r'<section class="totals"[^>]*>', index)
    assert totals is not None
    assert 'data-not-run="4"' in totals.group() and 'data-failed="0"' in totals.group()
    assert "First in the story" in index and "Told first, over two lines." in index


def test_a_feature_page_folds_its_scenarios_in_file_order_with_the_background_once(rendered: Path) -> None:
    page = (rendered / "01_a.html").read_text()
    assert re.findall(r'<details class="scenario[^"]*" id="([^"]+)"', page) == ["first", "second"]
    assert " open" not in "".join(re.findall(r"<details[^>]*>", page))
    assert page.count("a thing") == 1, "the Background is shown once"
    assert "promise one" in page and 'href="contract.html#p.one"' in page


def test_the_owner_view_has_no_locations_or_tags_and_the_developer_view_has_both(rendered: Path) -> None:
    owner = (rendered / "01_a.html").read_text()
    dev = (rendered / "dev" / "01_a.html").read_text()
    visible = re.sub(r"<[^>]+>", " ", owner)
    assert not re.search(r"\.feature:\d+", visible) and "@slow" not in visible and "@first" not in visible
    assert re.search(r"01_a\.feature:\d+", dev) and "@slow" in dev and "@area-a" in dev


def test_the_glossary_page_renders_the_markdown_and_escapes_raw_html(tmp_path: Path) -> None:
    from support.livingdoc.render import glossary_html

    source = tmp_path / "GLOSSARY.md"
    source.write_text("# Glossary\n\n- **fan**: anyone who watches. <script>x</script>\n\n"
                      "| a | b |\n| - | - |\n| 1 | 2 |\n")
    html = str(glossary_html(source))
    assert "<li><strong>fan</strong>: anyone who watches." in html and "<table>" in html
    assert "<script>" not in html and "&lt;script&gt;" in html
    assert glossary_html(tmp_path / "missing.md") is None
