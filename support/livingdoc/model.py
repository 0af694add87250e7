"""What the living documentation shows, as plain data, and the rules that turn behave's statuses into it.

Kept free of behave objects (collect.py reads those) so that the rules a reader relies on can be tested on
their own: a dry run never reports anything as failed; a scenario the run did not select is "not run", not
"skipped" (skipped means the suite decided, with a reason, that it cannot run here); features are in story
order, which is the order of their file paths (``features/01_live_broadcast.feature`` ...).
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field

PASSED, FAILED, SKIPPED, NOT_RUN, UNDEFINED = "passed", "failed", "skipped", "not run", "undefined"
#: The outcomes a scenario can have, in the order the reports list them.
OUTCOMES = (PASSED, FAILED, SKIPPED, NOT_RUN)
#: Which outcome an outline (or a feature) shows when its parts differ: a failure first, then what the suite could
#: not run here; scenarios the run did not select hide no passes ("3 passed, 17 not run" shows passed).
_WORST_FIRST = (FAILED, SKIPPED, PASSED, NOT_RUN)

_FAILED_STATUSES = {"failed", "error", "hook_error", "undefined", "pending", "cleanup_error"}
_UNDEFINED_STATUSES = {"undefined", "pending", "untested_undefined", "untested_pending"}


def scenario_outcome(status: str, skip_reason: str | None, dry_run: bool) -> str:
    """The outcome of one scenario (or one row of an outline) from behave's status name.

    A dry run runs nothing, so everything in it is "not run", whatever behave computed (behave 1.3.3 marks
    some features of a dry run "failed"). A skip without a reason is a scenario the run did not select
    (``--tags``, ``-n``), which is "not run" for a reader; a skip with a reason is the suite's own decision.
    """
    if dry_run:
        return NOT_RUN
    if status == "passed":
        return PASSED
    if status in _FAILED_STATUSES:
        return FAILED
    if status == "skipped":
        return SKIPPED if skip_reason else NOT_RUN
    return NOT_RUN


def step_outcome(status: str, dry_run: bool) -> str:
    """The outcome of one step; an undefined step stays visible in a dry run (authors look for them there)."""
    if status in _UNDEFINED_STATUSES:
        return UNDEFINED
    if dry_run:
        return NOT_RUN
    if status == "passed":
        return PASSED
    if status in _FAILED_STATUSES:
        return FAILED
    if status == "skipped":
        return SKIPPED
    return NOT_RUN


def combined_outcome(outcomes: Iterable[str]) -> str:
    """One outcome for several (an outline's rows, a feature's scenarios): see _WORST_FIRST; "not run" for none."""
    seen = set(outcomes)
    return next((outcome for outcome in _WORST_FIRST if outcome in seen), NOT_RUN)


def story_key(path: str) -> tuple[tuple[int, int | str], ...]:
    """Sort key for feature files: their path, with numbers compared as numbers (``9_x`` before ``10_x``)."""
    return tuple((0, int(part)) if part.isdigit() else (1, part.lower())
                 for part in re.split(r"(\d+)", path.replace("\\", "/")) if part)


def page_name(path: str) -> str:
    """A feature's HTML file: its path under features/, flattened (``features/a/b.feature`` -> ``a__b.html``)."""
    parts = path.replace("\\", "/").split("/")
    under = [i for i, part in enumerate(parts[:-1]) if part == "features"]
    parts = parts[under[-1] + 1:] if under else parts[-1:]
    stem = "__".join(parts).removesuffix(".feature")
    return re.sub(r"[^A-Za-z0-9_.-]", "-", stem) + ".html"


def own_tags(tags_per_scenario: list[list[str]]) -> list[str | None]:
    """Each scenario's tag of its own (used by no other scenario; README, "Tags"), or None."""
    uses: dict[str, int] = {}
    for tags in tags_per_scenario:
        for tag in set(tags):
            uses[tag] = uses.get(tag, 0) + 1
    return [next((tag for tag in tags if uses[tag] == 1), None) for tags in tags_per_scenario]


@dataclass
class Counts:
    """How many scenarios (outline rows counted one by one, as behave counts them) ended each way."""

    passed: int = 0
    failed: int = 0
    skipped: int = 0
    not_run: int = 0

    def add(self, outcome: str, n: int = 1) -> None:
        name = outcome.replace(" ", "_")
        setattr(self, name, getattr(self, name) + n)

    def __add__(self, other: Counts) -> Counts:
        return Counts(self.passed + other.passed, self.failed + other.failed, self.skipped + other.skipped,
                      self.not_run + other.not_run)

    @property
    def total(self) -> int:
        return self.passed + self.failed + self.skipped + self.not_run

    def items(self) -> list[tuple[str, int]]:
        """``(outcome, count)`` in report order, for the templates."""
        return [(outcome, getattr(self, outcome.replace(" ", "_"))) for outcome in OUTCOMES]


@dataclass(frozen=True)
class Promise:
    """A promise of the contract (docs/processor.md) by its ID, with the map's one-line summary."""

    id: str
    summary: str


@dataclass
class StepDoc:
    """One step as written, and what happened to it."""

    keyword: str
    text: str
    outcome: str = NOT_RUN
    #: ``features/x.feature:12`` and the step definition's ``steps/x_steps.py:40`` (developer's view).
    location: str = ""
    code_location: str = ""
    duration: float | None = None
    table: list[list[str]] = field(default_factory=list)  # the header first
    docstring: str | None = None
    error: str = ""
    traceback: str = ""
    #: "What the suite saw", as attached while the step failed (support/run/reports.py).
    diagnostics: list[str] = field(default_factory=list)


@dataclass
class RunDoc:
    """One execution: a plain scenario's, or one row of an outline's."""

    outcome: str
    steps: list[StepDoc]
    #: Background steps, only those that went wrong here (the Background itself is shown once per feature).
    background_problems: list[StepDoc] = field(default_factory=list)
    skip_reason: str = ""
    duration: float | None = None
    cells: list[str] = field(default_factory=list)  # an outline row's values


@dataclass
class ExamplesDoc:
    """An outline's Examples table; its rows are the outline's runs, in the same order."""

    name: str
    header: list[str]
    runs: list[RunDoc]


@dataclass
class ScenarioDoc:
    """A scenario or a scenario outline, as a reader finds it on its feature's page."""

    keyword: str
    name: str
    line: int
    location: str
    tags: list[str]
    description: list[str]
    #: The steps as written (an outline's with its placeholders).
    steps: list[StepDoc]
    runs: list[RunDoc]
    examples: list[ExamplesDoc] = field(default_factory=list)
    own_tag: str | None = None
    promises: list[Promise] = field(default_factory=list)

    @property
    def anchor(self) -> str:
        return self.own_tag or f"line-{self.line}"

    @property
    def is_outline(self) -> bool:
        return bool(self.examples)

    @property
    def outcome(self) -> str:
        return combined_outcome(run.outcome for run in self.runs)

    @property
    def counts(self) -> Counts:
        counts = Counts()
        for run in self.runs:
            counts.add(run.outcome)
        return counts


@dataclass
class FeatureDoc:
    """A feature file: a capability, its description, its Background (once) and its scenarios in file order."""

    path: str
    name: str
    description: list[str]
    tags: list[str]
    background: list[StepDoc]
    scenarios: list[ScenarioDoc]
    #: A hook of the feature itself failed: its scenarios may not say why.
    problem: str = ""

    @property
    def page(self) -> str:
        return page_name(self.path)

    @property
    def counts(self) -> Counts:
        total = Counts()
        for scenario in self.scenarios:
            total = total + scenario.counts
        return total

    @property
    def outcome(self) -> str:
        return FAILED if self.problem else combined_outcome(s.outcome for s in self.scenarios)


@dataclass
class RunInfo:
    """The run as a whole, for every page's header."""

    title: str
    dry_run: bool
    started: str
    duration: float | None = None
    tags: str = ""


def in_story_order(features: Iterable[FeatureDoc]) -> list[FeatureDoc]:
    """Features by their file paths (the numbering of the files is the story), scenarios by their line."""
    ordered = sorted(features, key=lambda feature: story_key(feature.path))
    for feature in ordered:
        feature.scenarios.sort(key=lambda scenario: scenario.line)
    return ordered


def totals(features: Iterable[FeatureDoc]) -> Counts:
    result = Counts()
    for feature in features:
        result = result + feature.counts
    return result
