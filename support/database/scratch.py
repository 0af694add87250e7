"""Databases of a scenario's own on the run's PostgreSQL server: ``fixtures/test-schema.sql`` minus one thing.

The start-up checks of docs/processor.md (section 7) are about a schema that lacks something. The run's database is
shared by every scenario and the main Processor, so it is never altered: each such scenario creates a database of
its own (named after the run's, ``<run's database>_<hex>``), loads the reference schema into it, removes the one
thing, points one Processor at it, and drops it in clean-up (``WITH (FORCE)``: whatever still holds a connection).

:func:`catalog` lists what a database defines (tables, columns, indexes, constraints, functions, triggers,
extensions, schemas), to show that a Processor installed nothing there.
"""

from __future__ import annotations

import secrets
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from ..clock import SETTLE, within
from .postgres import SCHEMA

#: What the scenarios take away from the reference schema, by the name the steps use; each statement runs after
#: the schema is loaded. The faulty flag goes with what depends on it (a partial index, two triggers), as a DROP
#: COLUMN ... CASCADE does.
WITHOUT = {
    "faulty column": "ALTER TABLE positions DROP COLUMN faulty CASCADE",
    "latest_positions table": "DROP TABLE latest_positions",
    "unique key": "ALTER TABLE positions DROP CONSTRAINT positions_pkey",
    "latest_positions_update trigger": "DROP TRIGGER latest_positions_update ON positions",
    "live_corrections_faulty trigger": "DROP TRIGGER live_corrections_faulty ON positions",
    "primary key, replaced by a unique index":
        "ALTER TABLE positions DROP CONSTRAINT positions_pkey;"
        " CREATE UNIQUE INDEX positions_device_id_ts_key ON positions (device_id, ts)",
}

#: Namespaces that are the server's or an extension's own bookkeeping: TimescaleDB adds a chunk table there on
#: the first insert into a new time range, which is the database working, not the Processor installing something.
CATALOG_SQL = """
WITH ours AS (
    SELECT oid, nspname FROM pg_namespace
    WHERE nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND nspname NOT LIKE 'pg_temp%' AND nspname NOT LIKE 'pg_toast_temp%'
      AND nspname NOT LIKE '\\_timescaledb%' AND nspname NOT LIKE 'timescaledb\\_%'
)
SELECT 'schema ' || nspname FROM ours
UNION ALL
SELECT 'relation ' || n.nspname || '.' || c.relname || ' (' || c.relkind::text || ')'
FROM pg_class c JOIN ours n ON n.oid = c.relnamespace
UNION ALL
SELECT 'column ' || n.nspname || '.' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod)
FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN ours n ON n.oid = c.relnamespace
WHERE a.attnum > 0 AND NOT a.attisdropped
UNION ALL
SELECT 'constraint ' || n.nspname || '.' || c.conname || ' ' || pg_get_constraintdef(c.oid)
FROM pg_constraint c JOIN ours n ON n.oid = c.connamespace
UNION ALL
SELECT 'function ' || n.nspname || '.' || p.proname || '(' || pg_get_function_identity_arguments(p.oid) || ') '
       || md5(coalesce(p.prosrc, ''))
FROM pg_proc p JOIN ours n ON n.oid = p.pronamespace
UNION ALL
SELECT 'trigger ' || c.relname || '.' || t.tgname || ' ' || t.tgenabled::text
FROM pg_trigger t JOIN pg_class c ON c.oid = t.tgrelid JOIN ours n ON n.oid = c.relnamespace
WHERE NOT t.tgisinternal
UNION ALL
SELECT 'extension ' || extname FROM pg_extension
UNION ALL
SELECT 'event trigger ' || evtname FROM pg_event_trigger
"""


def with_database(url: str, database: str) -> str:
    """``url`` pointing at ``database`` on the same server, with the same credentials."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


class ScratchDatabase:
    """One database of a scenario's own: created from the reference schema minus :data:`WITHOUT` ``[without]``."""

    def __init__(self, run_database_url: str, without: str) -> None:
        assert without in WITHOUT, f"the schema can go without {list(WITHOUT)}, not {without!r}"
        self.without = without
        self._admin_url = run_database_url
        run_database = urlsplit(run_database_url).path.lstrip("/") or "postgres"
        self.name = f"{run_database}_{secrets.token_hex(4)}"
        self.url = with_database(run_database_url, self.name)
        self._created = False

    async def create(self) -> None:
        """Create it, load ``fixtures/test-schema.sql``, then take the one thing away."""
        await self._admin(f'CREATE DATABASE "{self.name}"')
        self._created = True
        conn = await asyncpg.connect(self.url, timeout=within(SETTLE))
        try:
            await conn.execute(SCHEMA.read_text())
            await conn.execute(WITHOUT[self.without])
        finally:
            await conn.close()

    async def catalog(self) -> set[str]:
        """Everything the database defines, one line each (see :data:`CATALOG_SQL`)."""
        conn = await asyncpg.connect(self.url, timeout=within(SETTLE))
        try:
            return {row[0] for row in await conn.fetch(CATALOG_SQL)}
        finally:
            await conn.close()

    async def count_positions(self, device_id: str) -> dict[datetime, int]:
        """How many rows ``positions`` holds for ``device_id``, per ``ts``."""
        conn = await asyncpg.connect(self.url, timeout=within(SETTLE))
        try:
            rows = await conn.fetch("SELECT ts, count(*) AS n FROM positions WHERE device_id = $1 GROUP BY ts",
                                    device_id)
            return {row["ts"]: int(row["n"]) for row in rows}
        finally:
            await conn.close()

    async def drop(self) -> None:
        if self._created:
            await self._admin(f'DROP DATABASE IF EXISTS "{self.name}" WITH (FORCE)')
            self._created = False

    async def _admin(self, statement: str) -> None:
        conn = await asyncpg.connect(self._admin_url, timeout=within(SETTLE))
        try:
            await conn.execute(statement)
        finally:
            await conn.close()
