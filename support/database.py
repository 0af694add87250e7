"""The suite's own hands on PostgreSQL: load the schema, seed what a scenario needs, check what was stored.

The Processor is judged by what ends up in the database, not by what it says about it.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import asyncpg

from .settings import REPO_ROOT

SCHEMA = REPO_ROOT / "fixtures" / "test-schema.sql"


@dataclass(frozen=True)
class StoredPosition:
    device_id: str
    ts: datetime
    latitude: float
    longitude: float
    faulty: bool
    stream_id: str | None


class Database:
    """A small asyncpg pool owned by the suite (never shared with the Processor)."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.pool: asyncpg.Pool | None = None

    async def open(self) -> None:
        self.pool = await asyncpg.create_pool(self.url, min_size=1, max_size=4, timeout=10)

    async def close(self) -> None:
        if self.pool is not None:
            await self.pool.close()
            self.pool = None

    @property
    def _pool(self) -> asyncpg.Pool:
        assert self.pool is not None, "database not open"
        return self.pool

    async def load_schema(self, path: Path = SCHEMA) -> None:
        await self._pool.execute(path.read_text())

    # -- seeding ---------------------------------------------------------------------------------------

    async def add_organization(self, org_id: str, name: str, slug: str) -> None:
        await self._pool.execute("INSERT INTO organizations (id, name, slug) VALUES ($1, $2, $3)", org_id, name, slug)

    async def add_event(self, event_id: str, org_id: str, name: str, slug: str) -> None:
        await self._pool.execute(
            "INSERT INTO events (id, organization_id, name, slug, discipline) VALUES ($1, $2, $3, $4, 'rally')",
            event_id, org_id, name, slug,
        )

    async def add_entry(self, entry_id: str, event_id: str, number: str, crew: str | None) -> None:
        await self._pool.execute("INSERT INTO entries (id, event_id, number, crew) VALUES ($1, $2, $3, $4)",
                                 entry_id, event_id, number, crew)

    async def add_device(self, device_id: str, label: str) -> None:
        await self._pool.execute("INSERT INTO devices (id, label) VALUES ($1, $2) ON CONFLICT DO NOTHING",
                                 device_id, label)

    async def assign_device(self, entry_id: str, device_id: str) -> None:
        await self._pool.execute("INSERT INTO entry_devices (entry_id, device_id) VALUES ($1, $2)", entry_id, device_id)

    async def unassign_device(self, device_id: str) -> None:
        await self._pool.execute("DELETE FROM entry_devices WHERE device_id = $1", device_id)

    async def add_positions(self, rows: Iterable[tuple[str, datetime, float, float]]) -> None:
        await self._pool.executemany(
            "INSERT INTO positions (device_id, ts, latitude, longitude) VALUES ($1, $2, $3, $4)", list(rows)
        )

    async def flag_faulty(self, device_id: str, ts: datetime | None = None) -> int:
        """Mark one position (or, with ``ts=None``, every position) of a device faulty; return rows changed."""
        if ts is None:
            status = await self._pool.execute("UPDATE positions SET faulty = true WHERE device_id = $1", device_id)
        else:
            status = await self._pool.execute(
                "UPDATE positions SET faulty = true WHERE device_id = $1 AND ts = $2", device_id, ts
            )
        return int(status.split()[-1])

    # -- reading ---------------------------------------------------------------------------------------

    async def positions_of(self, device_id: str) -> list[StoredPosition]:
        rows = await self._pool.fetch(
            "SELECT device_id, ts, latitude, longitude, faulty, stream_id FROM positions"
            " WHERE device_id = $1 ORDER BY ts",
            device_id,
        )
        return [StoredPosition(**dict(row)) for row in rows]

    # -- clean-up --------------------------------------------------------------------------------------

    async def forget(self, *, organizations: Iterable[str], devices: Iterable[str]) -> None:
        """Delete a scenario's rows: its organisations (events, entries and assignments cascade), devices and
        every position of its devices."""
        devices = list(devices)
        async with self._pool.acquire() as conn, conn.transaction():
            await conn.execute("DELETE FROM positions WHERE device_id = ANY($1::text[])", devices)
            await conn.execute("DELETE FROM organizations WHERE id = ANY($1::uuid[])", list(organizations))
            await conn.execute("DELETE FROM devices WHERE id = ANY($1::text[])", devices)
