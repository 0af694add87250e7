"""behave's model (features, scenarios, outlines, steps) -> the living documentation's data (model.py).

Read once, at the end of the run, from the objects behave ran (or, for a feature the run never showed its
formatters, from the file itself): by then every status is final, and the order of the run (``-D
order=random`` shuffles it) no longer matters, since model.in_story_order puts everything back in file order.
behave ships no type information, so its objects are ``Any`` here.
"""

from __future__ import annotations

import traceback
from dataclasses import dataclass, field
from typing import Any

from .coverage import Contract
from .model import (
    FAILED,
    NOT_RUN,
    ExamplesDoc,
    FeatureDoc,
    RunDoc,
    ScenarioDoc,
    StepDoc,
    own_tags,
    scenario_outcome,
    step_outcome,
)


@dataclass
class StepNotes:
    """What the formatter learnt about steps while they ran, by ``id(step)`` (behave's steps are not hashable
    by identity, and the objects stay alive in their features until the report is written)."""

    diagnostics: dict[int, list[str]] = field(default_factory=dict)
    code_locations: dict[int, str] = field(default_factory=dict)


def _status(entity: Any) -> str:
    return str(getattr(entity.status, "name", entity.status))


def _table(step: Any) -> list[list[str]]:
    table = getattr(step, "table", None)
    if table is None:
        return []
    return [list(table.headings), *(list(row.cells) for row in table.rows)]


def _traceback(step: Any) -> str:
    tb = getattr(step, "exc_traceback", None)
    return "".join(traceback.format_tb(tb)) if tb is not None else ""


def step_doc(step: Any, notes: StepNotes, dry_run: bool, not_run: bool = False) -> StepDoc:
    """One step; ``not_run`` when its scenario did not run (behave then calls its steps "skipped")."""
    outcome = step_outcome(_status(step), dry_run)
    if not_run and outcome != "undefined":
        outcome = NOT_RUN
    failed = outcome == FAILED
    duration = getattr(step, "duration", None)
    return StepDoc(
        keyword=str(step.keyword), text=str(step.name), outcome=outcome, location=str(step.location),
        code_location=notes.code_locations.get(id(step), ""),
        duration=float(duration) if duration and not dry_run else None,
        table=_table(step), docstring=getattr(step, "text", None),
        error=str(step.error_message or "") if failed else "",
        traceback=_traceback(step) if failed else "",
        diagnostics=list(notes.diagnostics.get(id(step), [])),
    )


def run_doc(scenario: Any, notes: StepNotes, dry_run: bool, feature_skip: str = "") -> RunDoc:
    """What happened to one scenario (or outline row) that behave built."""
    skip_reason = str(getattr(scenario, "skip_reason", None) or feature_skip or "")
    outcome = scenario_outcome(_status(scenario), skip_reason or None, dry_run)
    not_run = outcome == NOT_RUN
    background = [step_doc(step, notes, dry_run, not_run) for step in scenario.background_steps]
    duration = getattr(scenario, "duration", None)
    row = getattr(scenario, "_row", None)
    return RunDoc(
        outcome=outcome,
        steps=[step_doc(step, notes, dry_run, not_run) for step in scenario.steps],
        background_problems=[step for step in background if step.outcome == FAILED or step.diagnostics],
        skip_reason=skip_reason if outcome != NOT_RUN else "",
        duration=float(duration) if duration and not dry_run else None,
        cells=list(row.cells) if row is not None else [],
    )


def _scenario_doc(scenario: Any, notes: StepNotes, dry_run: bool, feature_skip: str) -> ScenarioDoc:
    doc = ScenarioDoc(
        keyword=str(scenario.keyword), name=str(scenario.name), line=int(scenario.line),
        location=str(scenario.location), tags=[str(tag) for tag in scenario.tags],
        description=[str(line) for line in scenario.description], steps=[], runs=[],
    )
    examples = getattr(scenario, "examples", None)
    if examples is None:  # a plain scenario: its steps as they ran
        run = run_doc(scenario, notes, dry_run, feature_skip)
        doc.steps, doc.runs = run.steps, [run]
        return doc
    # An outline: its steps as written (a template; its rows are what runs), then a run per Examples row.
    doc.steps = [step_doc(step, StepNotes(), dry_run=True) for step in scenario.steps]
    doc.runs = [run_doc(row, notes, dry_run, feature_skip) for row in scenario.scenarios]
    start = 0
    for example in examples:
        table = example.table
        count = len(table.rows) if table is not None else 0
        header = list(table.headings) if table is not None else []
        doc.examples.append(ExamplesDoc(str(example.name or ""), header, doc.runs[start:start + count]))
        start += count
    return doc


def _all_scenarios(container: Any) -> list[Any]:
    scenarios = list(container.scenarios)
    for rule in getattr(container, "rules", None) or []:
        scenarios += _all_scenarios(rule)
    return scenarios


def feature_doc(feature: Any, notes: StepNotes, dry_run: bool) -> FeatureDoc:
    """A feature and everything in it (own tags and promises are filled in by :func:`attach_coverage`)."""
    skip = str(getattr(feature, "skip_reason", None) or "")
    background = getattr(feature, "background", None)
    problem = "a hook of this feature failed" if getattr(feature, "hook_failed", False) and not dry_run else ""
    return FeatureDoc(
        path=str(feature.filename), name=str(feature.name),
        description=[str(line) for line in feature.description], tags=[str(tag) for tag in feature.tags],
        background=[step_doc(step, StepNotes(), dry_run=True) for step in background.steps] if background else [],
        scenarios=[_scenario_doc(s, notes, dry_run, skip) for s in _all_scenarios(feature)],
        problem=problem,
    )


def attach_coverage(features: list[FeatureDoc], contract: Contract) -> dict[str, tuple[FeatureDoc, ScenarioDoc]]:
    """Give every scenario its own tag and the promises it proves; return own tag -> (feature, scenario)."""
    scenarios = [(feature, scenario) for feature in features for scenario in feature.scenarios]
    for (_, scenario), tag in zip(scenarios, own_tags([s.tags for _, s in scenarios]), strict=True):
        scenario.own_tag = tag
        scenario.promises = contract.promises_of(tag)
    return {scenario.own_tag: (feature, scenario) for feature, scenario in scenarios if scenario.own_tag}

