"""The contract-coverage gate's own rules (.ci/contract_coverage.py), on small made-up contracts and maps: a gate
that cannot fail would let a promise lose its scenario unnoticed."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

GATE = Path(__file__).resolve().parents[2] / ".ci" / "contract_coverage.py"


@pytest.fixture(scope="module")
def gate() -> ModuleType:
    spec = importlib.util.spec_from_file_location("contract_coverage", GATE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while the class is made
    spec.loader.exec_module(module)
    return module


CONTRACT = """# Contract
## 1. Start
Exits 2 on a bad setting <a id="start.exit-2">`start.exit-2`</a>.
Listens on 8080 <a id="config.port.default">`config.port.default`</a>.
"""


def _outcome(gate: ModuleType, contract: str, table: dict[str, Any], tags: dict[str, int]) -> Any:
    """The gate's verdict (its ``Outcome``; typed Any: the module is loaded from its path, unknown to mypy)."""
    promises, problems = gate.parse_contract(contract)
    assert problems == []
    entries, problems = gate.parse_map(table)
    assert problems == []
    own = {tag: gate.Scenario("features/x.feature", tag) for tag, n in tags.items() if n == 1}
    return gate.check(promises, entries, own, tags)


def test_every_promise_checked_passes(gate: ModuleType) -> None:
    table: dict[str, Any] = {"start.exit-2": {"summary": "exit 2", "scenarios": ["misconfigured"]},
             "config.port.default": {"summary": "8080", "scenarios": ["defaults"]}}
    outcome = _outcome(gate, CONTRACT, table, {"misconfigured": 1, "defaults": 1})
    assert outcome.problems == []
    assert outcome.summary_line() == "contract: 2 promises, 2 checked, 0 exempt, 0 unchecked"


def test_an_unchecked_promise_fails(gate: ModuleType) -> None:
    table: dict[str, Any] = {"start.exit-2": {"summary": "exit 2", "scenarios": ["misconfigured"]},
             "config.port.default": {"summary": "8080"}}
    outcome = _outcome(gate, CONTRACT, table, {"misconfigured": 1})
    assert any("config.port.default" in line for line in outcome.problems)
    assert outcome.summary_line().endswith("1 unchecked")


@pytest.mark.parametrize("tags, wanted", [({}, "which no scenario"), ({"defaults": 2}, "on 2 scenarios")])
def test_a_mapping_must_name_one_existing_scenario(gate: ModuleType, tags: dict[str, int], wanted: str) -> None:
    table: dict[str, Any] = {"start.exit-2": {"summary": "exit 2", "exempt": "cannot be seen"},
             "config.port.default": {"summary": "8080", "scenarios": ["defaults"]}}
    outcome = _outcome(gate, CONTRACT, table, tags)
    assert any(wanted in line for line in outcome.problems)


def test_a_promise_the_contract_no_longer_has_fails(gate: ModuleType) -> None:
    table: dict[str, Any] = {"start.exit-2": {"summary": "exit 2", "scenarios": ["misconfigured"]},
             "config.port.default": {"summary": "8080", "scenarios": ["defaults"]},
             "config.gone": {"summary": "gone", "scenarios": ["defaults"]}}
    outcome = _outcome(gate, CONTRACT, table, {"misconfigured": 1, "defaults": 1})
    assert any("no longer has" in line for line in outcome.problems)


def test_too_many_exemptions_fail(gate: ModuleType) -> None:
    table: dict[str, Any] = {"start.exit-2": {"summary": "exit 2", "exempt": "cannot be seen"},
             "config.port.default": {"summary": "8080", "scenarios": ["defaults"]}}
    outcome = _outcome(gate, CONTRACT, table, {"defaults": 1})
    assert any("exempt" in line for line in outcome.problems)


def test_a_marker_twice_is_refused(gate: ModuleType) -> None:
    _, problems = gate.parse_contract(CONTRACT + 'Again <a id="start.exit-2">`start.exit-2`</a>.\n')
    assert any("marked twice" in line for line in problems)
