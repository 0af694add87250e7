"""The schema check at start (processor.store): ``latest_positions`` and the triggers that keep it true are
required (section 7), because without them every snapshot would silently show stale positions; missing
correction triggers are only a warning."""

from __future__ import annotations

from typing import Any

import pytest

from processor.store import SchemaError, Store
from processor.store_sql import COLUMNS_SQL, LATEST_TRIGGERS, REQUIRED_SCHEMA, TRIGGERS_SQL, UNIQUE_KEY_SQL

CORRECTION_TRIGGERS = [("positions", "live_corrections_faulty"), ("entry_devices", "live_corrections_entry_devices"),
                       ("entries", "live_corrections_entries")]


class FakePool:
    """Answers the three catalogue queries of :meth:`Store.check_schema` from a described schema."""

    def __init__(self, tables: dict[str, tuple[str, ...]], triggers: list[tuple[str, str]],
                 unique_key: bool = True) -> None:
        self.tables = tables
        self.triggers = triggers
        self.unique_key = unique_key

    async def fetch(self, sql: str) -> list[tuple[str, str]]:
        if sql == COLUMNS_SQL:
            return [(table, column) for table, columns in self.tables.items() for column in columns]
        if sql == TRIGGERS_SQL:
            return list(self.triggers)
        raise AssertionError(f"unexpected query {sql!r}")

    async def fetchval(self, sql: str) -> Any:
        assert sql == UNIQUE_KEY_SQL
        return self.unique_key


async def _check(pool: FakePool) -> None:
    store = Store("postgresql://unused")
    store.pool = pool  # the fake answers only what check_schema asks (Store.pool is typed loosely)
    await store.check_schema()


def _complete() -> tuple[dict[str, tuple[str, ...]], list[tuple[str, str]]]:
    return dict(REQUIRED_SCHEMA), [*CORRECTION_TRIGGERS, *(("positions", name) for name in LATEST_TRIGGERS)]


async def test_the_fixture_schema_passes() -> None:
    tables, triggers = _complete()
    await _check(FakePool(tables, triggers))


async def test_a_database_without_latest_positions_is_refused_naming_it() -> None:
    tables, triggers = _complete()
    del tables["latest_positions"]
    with pytest.raises(SchemaError, match=r"^missing table latest_positions$"):
        await _check(FakePool(tables, triggers))


async def test_latest_positions_without_its_triggers_is_refused_naming_them() -> None:
    tables, triggers = _complete()
    triggers = [t for t in triggers if t[1] not in ("latest_positions_insert", "latest_positions_update")]
    with pytest.raises(SchemaError, match="latest_positions_insert, latest_positions_update") as raised:
        await _check(FakePool(tables, triggers))
    assert "\n" not in str(raised.value)  # one line on stderr


async def test_a_missing_correction_trigger_is_not_a_schema_error() -> None:
    """Section 7: corrections degrade to a warning at start, the latest table's triggers do not."""
    tables, triggers = _complete()
    await _check(FakePool(tables, [t for t in triggers if t[1] != "live_corrections_faulty"]))


def test_the_fixture_defines_every_required_latest_trigger() -> None:
    from pathlib import Path

    fixture = (Path(__file__).parents[2] / "fixtures" / "test-schema.sql").read_text()
    for name in LATEST_TRIGGERS:
        assert f"CREATE TRIGGER {name}\n" in fixture, name
