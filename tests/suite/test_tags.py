"""The README's tag table and the tags in features/ agree, and the tag scheme holds (fast: no services).

The scheme (README, "Tags"): feature-area tags on each Feature, one short tag of its own on each scenario
for targeted runs, and capability tags that say what a scenario needs from the run. Anyone reading the
README must find every tag they meet in a feature file, and nothing the features no longer use.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator
from pathlib import Path

from behave.model import Feature, Rule, Scenario, ScenarioOutline
from behave.parser import parse_file

REPO_ROOT = Path(__file__).resolve().parents[2]
FEATURES = sorted((REPO_ROOT / "features").glob("**/*.feature"))
#: The seed's scenario tags: referred to from outside the suite, never renamed.
SEED_TAGS = {"happy-path", "auth", "forbidden", "fanout", "orphan", "faulty"}


def _scenarios(container: Feature | Rule) -> Iterator[Scenario | ScenarioOutline]:
    yield from container.scenarios
    for rule in getattr(container, "rules", []) or []:
        yield from _scenarios(rule)


def _feature_tags() -> dict[str, list[str]]:
    """Every tag in features/ -> where it is used (``file: feature`` or ``file: scenario``)."""
    used: dict[str, list[str]] = {}
    for path in FEATURES:
        feature = parse_file(str(path))
        where = path.relative_to(REPO_ROOT)
        containers = [feature, *(getattr(feature, "rules", []) or [])]
        for container in containers:
            for tag in container.tags:
                used.setdefault(str(tag), []).append(f"{where}: {container.name}")
        for scenario in _scenarios(feature):
            tags = list(scenario.tags)
            for examples in getattr(scenario, "examples", []) or []:
                tags += list(examples.tags)
            for tag in tags:
                used.setdefault(str(tag), []).append(f"{where}: {scenario.name}")
    return used


def _readme_tags() -> list[str]:
    """The tags in the first column of the table under README's "### Tags" heading."""
    readme = (REPO_ROOT / "README.md").read_text()
    section = readme.split("### Tags", 1)[1]
    section = re.split(r"^#{1,3} ", section, maxsplit=1, flags=re.MULTILINE)[0]
    tags = []
    for line in section.splitlines():
        if line.startswith("|") and not line.startswith("| ---"):
            first_cell = line.split("|")[1]
            tags += re.findall(r"`@([A-Za-z0-9_.-]+)`", first_cell)
    return tags


def test_every_tag_used_in_features_is_in_the_readme_table() -> None:
    documented = set(_readme_tags())
    missing = {tag: where for tag, where in _feature_tags().items() if tag not in documented}
    assert missing == {}, f"tags used in features/ without a row in README's tag table: {missing}"


def test_the_readme_table_lists_only_tags_that_features_use() -> None:
    used = _feature_tags()
    stale = sorted(tag for tag in _readme_tags() if tag not in used)
    assert stale == [], f"README's tag table lists tags no feature uses: {stale}"


def test_the_readme_table_lists_each_tag_once() -> None:
    twice = sorted(tag for tag, count in Counter(_readme_tags()).items() if count > 1)
    assert twice == [], f"tags with more than one row in README's tag table: {twice}"


def test_every_scenario_has_a_tag_of_its_own() -> None:
    """One short tag per scenario, so ``--tags=@x`` runs exactly that scenario (an outline counts once)."""
    scenarios = [(path.relative_to(REPO_ROOT), scenario) for path in FEATURES
                 for scenario in _scenarios(parse_file(str(path)))]
    counts = Counter(str(tag) for _, scenario in scenarios for tag in scenario.tags)
    without = [f"{where}: {scenario.name}" for where, scenario in scenarios
               if not any(counts[str(tag)] == 1 for tag in scenario.tags)]
    assert without == [], f"scenarios without a tag of their own: {without}"


def test_the_seed_tags_stay() -> None:
    missing = sorted(SEED_TAGS - set(_feature_tags()))
    assert missing == [], f"the seed's scenario tags must stay: {missing}"
