"""One scenario's bookkeeping (support/scenario/, support/trackers/record.py): per-feature state, the record of what
was published with its baseline rule, and the step parameter types. Fakes only: no services."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from behave.matchers import ParseMatcher

import support.scenario.world as world_module
from support.scenario.gherkin import parse_time, positions, quoted, split_names
from support.scenario.state import MissingState, ScenarioState
from support.scenario.world import World
from support.trackers import stream
from support.trackers.record import Position, Published, Report

T0 = datetime(2026, 5, 2, 11, 0, tzinfo=UTC)


def _report(alias: str, seconds: int, entry_id: str, ts_text: str | None = None) -> Report:
    ts = T0 + timedelta(seconds=seconds)
    fields = {"ts": ts_text or ts.strftime("%Y-%m-%dT%H:%M:%S.000Z"), "payload": '{"speed": 80.0}'}
    return Report(alias, f"dev-{alias}", ts, 41.0, 19.0, entry_id, 0.0, fields)


# -- per-feature state -----------------------------------------------------------------------------------------

@dataclass
class Remembered:
    answers: list[str] = field(default_factory=list)


def test_state_is_made_once_and_is_the_same_object_for_the_rest_of_the_scenario() -> None:
    state = ScenarioState()
    made: list[Remembered] = []

    def make() -> Remembered:
        made.append(Remembered())
        return made[-1]

    first = state.get(Remembered, make)
    first.answers.append("subscribed")
    assert state.get(Remembered, make) is first
    assert state.get(Remembered) is first
    assert len(made) == 1


def test_state_no_earlier_step_made_is_a_clear_failure_or_none() -> None:
    state = ScenarioState()
    with pytest.raises(MissingState, match="no Remembered in this scenario"):
        state.get(Remembered)
    assert state.find(Remembered) is None


def test_state_of_another_type_under_a_kind_is_refused() -> None:
    state = ScenarioState()
    with pytest.raises(TypeError):
        state.get(Remembered, lambda: "not remembered")  # type: ignore[arg-type, return-value]  # the mistake under test


# -- the record of what was published ------------------------------------------------------------------------------

def test_the_latest_round_is_only_replaced_by_another_round() -> None:
    record = Published()
    burst = [_report("A", 1, "1-0"), _report("B", 2, "2-0")]
    record.add_round(burst)
    record.add([_report("A", 3, "3-0")])
    assert record.latest_round == burst
    assert [r.entry_id for r in record.last_sent] == ["3-0"]
    assert [r.entry_id for r in record.reports] == ["1-0", "2-0", "3-0"]
    assert record.rounds_end() == T0 + timedelta(seconds=2)


def test_the_record_finds_reports_as_they_were_sent() -> None:
    record = Published()
    record.add([_report("A", 1, "1-0"), _report("A", 1, "1-1"), _report("A", 2, "2-0", ts_text="local")])
    assert [r.entry_id for r in record.sent_as("A", "2026-05-02T11:00:01.000Z")] == ["1-0", "1-1"]
    assert record.sent_as("A", "local")[0].entry_id == "2-0"
    last = record.last_of("A")
    assert last is not None and last.entry_id == "2-0"
    assert last.payload == {"speed": 80.0}
    assert record.last_of("B") is None
    assert record.rounds_end() is None


def test_a_failure_report_shows_each_report_and_each_round_in_one_line() -> None:
    record = Published()
    record.add([_report("A", 1, "1-0")])
    record.add_round([_report("A", 2, "2-0"), _report("B", 3, "3-0"), _report("A", 4, "4-0")])
    lines = record.describe()
    assert len(lines) == 2
    assert lines[0].startswith("  1-0 A: {")
    assert lines[1] == "  2-0 … 4-0 A, B: 3 reports"


# -- the world's publishing: one place, with the baseline rule ----------------------------------------------------

class FakePublisher:
    def __init__(self) -> None:
        self.sent: list[dict[str, str]] = []

    async def publish(self, fields: dict[str, str]) -> str:
        self.sent.append(fields)
        return f"{len(self.sent)}-0"


def _world(monkeypatch: pytest.MonkeyPatch) -> tuple[World, FakePublisher, list[str]]:
    publisher = FakePublisher()
    suite: Any = SimpleNamespace(stub=SimpleNamespace(requests=[]), publisher=publisher)
    world = World(suite)
    scrapes: list[str] = []

    async def metrics() -> Any:
        scrapes.append("scraped")
        return f"snapshot {len(scrapes)}"

    async def pipelined(publisher: FakePublisher, entries: Sequence[dict[str, str]], *,
                        together: bool = False) -> list[str]:
        return [await publisher.publish(fields) for fields in entries]

    async def burst(publisher: FakePublisher, trackers: Sequence[tuple[str, str]], count: int,
                    start: datetime, *, together: bool = False) -> list[Report]:
        return [Report(*trackers[i % len(trackers)], start, 41.0, 19.0, f"burst-{i}", 0.0, {}) for i in range(count)]

    monkeypatch.setattr(world, "metrics", metrics)
    monkeypatch.setattr(stream, "publish_burst", pipelined)
    monkeypatch.setattr(world_module, "report_burst", burst)
    return world, publisher, scrapes


def test_the_first_own_report_fixes_the_baseline_and_every_report_is_recorded(monkeypatch: pytest.MonkeyPatch) -> None:
    world, publisher, scrapes = _world(monkeypatch)

    async def story() -> None:
        await world.publish("tracker-A", T0, 41.1, 19.1)
        await world.publish_together([Position("tracker-A", T0 + timedelta(seconds=1), 41.2, 19.2),
                                      Position("tracker-B", T0 + timedelta(seconds=2), 41.3, 19.3)])
        await world.publish_again("tracker-A", T0)

    asyncio.run(story())
    assert scrapes == ["scraped"] and world.baseline == "snapshot 1"
    assert [r.entry_id for r in world.published.reports] == ["1-0", "2-0", "3-0", "4-0"]
    assert publisher.sent[3] == publisher.sent[0] and publisher.sent[3] is not publisher.sent[0]
    assert world.published.latest_round == []


def test_traffic_in_quantity_is_a_round_and_fixes_no_baseline(monkeypatch: pytest.MonkeyPatch) -> None:
    world, _, scrapes = _world(monkeypatch)
    reports = asyncio.run(world.publish_burst(["tracker-A", "tracker-B"], 4, T0))
    assert scrapes == [] and world.baseline is None
    assert world.published.latest_round == reports and len(reports) == 4


def test_a_retry_of_a_report_never_sent_fails_the_step(monkeypatch: pytest.MonkeyPatch) -> None:
    world, _, _ = _world(monkeypatch)
    with pytest.raises(AssertionError, match="tracker-A has not reported a position"):
        asyncio.run(world.publish_again("tracker-A", T0))


# -- step parameter types --------------------------------------------------------------------------------------------

def test_names_times_and_quoted_names_as_feature_files_write_them() -> None:
    assert split_names("tracker-A, tracker-B and tracker-C") == ["tracker-A", "tracker-B", "tracker-C"]
    assert split_names("Alice nor Carol") == ["Alice", "Carol"]
    assert parse_time("2026-05-02 11:00:00") == T0
    assert quoted('"Rally of Durres" and "Rally of Shkodra"') == ["Rally of Durres", "Rally of Shkodra"]
    with pytest.raises(ValueError, match="no quoted names"):
        quoted("Rally of Durres")


def test_a_typed_parameter_matches_what_an_untyped_one_matches() -> None:
    """Types convert; they never change which step definition a step finds (a value a type cannot convert is
    still found, and the step fails with the conversion's error, as it did converting by hand)."""
    typed = ParseMatcher(lambda context: None, "{trackers:Names} report at {time:Time}")
    plain = ParseMatcher(lambda context: None, "{trackers} report at {time}")
    text = "tracker-A and tracker-B report at 2026-05-02 11:00:00"
    arguments = typed.match(text).arguments
    assert [a.original for a in arguments] == [a.value for a in plain.match(text).arguments]
    assert arguments[0].value == ["tracker-A", "tracker-B"] and arguments[1].value == T0
    for text in ("A report at B report at 2026-05-02 11:00:00", "tracker-A reports at 2026-05-02 11:00:00"):
        assert bool(typed.match(text)) == bool(plain.match(text))


def test_a_positions_table_becomes_positions() -> None:
    table: Any = [{"tracker": "tracker-A", "time (UTC)": "2026-05-02 11:00:00", "latitude": "41.3290",
                   "longitude": "19.8210"}]
    assert positions(table) == [Position("tracker-A", T0, 41.329, 19.821)]
    assert positions(table, "tracker-B")[0].tracker == "tracker-B"
