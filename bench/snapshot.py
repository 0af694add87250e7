"""Snapshot time for one event of 1,000 trackers, with 100k and 10M (quick: 1M) stored positions.

The history lives in a database of its own (``bench_snapshot_<random>`` in the same PostgreSQL), bulk loaded
with ``COPY`` the way docs/processor.md section 7 describes for bulk loads (indexes dropped and the triggers that
keep ``latest_positions`` disabled during the load; indexes rebuilt and ``latest_positions`` rebuilt with the
documented statement after, then ``VACUUM ANALYZE``), and a second
Processor instance is pointed at it. Three figures per history size:

* **subscribe**: ``subscribe`` sent -> ``subscribed`` (with 1,000 positions) read off the socket, through a
  real connection; this includes the Directus check, the query, rendering and the socket;
* **server execute**: the Processor's own snapshot statement as PostgreSQL timed it (``log_min_duration_statement
  = 0`` for the measurement only, read back from the embedded server's log);
* **EXPLAIN ANALYZE** of that same statement text (or, if the log is not available, of the contract's
  query on ``latest_positions``), run directly.
"""

from __future__ import annotations

import asyncio
import re
import statistics
import time
import uuid
from collections.abc import AsyncIterator, Callable
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg

from support.database.postgres import SCHEMA

from .harness import Harness
from .wsclient import RawViewer, open_viewer, percentiles

DEVICES = 1000
TRACKERS_PER_CAR = 2

#: The contract's query (docs/processor.md, section 4, "Snapshot"), used only if the Processor's own text
#: cannot be read from the PostgreSQL log.
CONTRACT_SNAPSHOT = """
SELECT p.* FROM entries e
JOIN entry_devices ed ON ed.entry_id = e.id
JOIN latest_positions p ON p.device_id = ed.device_id
WHERE e.event_id = $1
"""

#: docs/processor.md, section 7: a newer sound position replaces a device's row of ``latest_positions``, never an
#: older one (the rebuild below and the Processor's own upsert, which bench/baselines.py measures, both end so).
LATEST_UPSERT = """
ON CONFLICT (device_id) DO UPDATE
    SET ts = EXCLUDED.ts, latitude = EXCLUDED.latitude, longitude = EXCLUDED.longitude,
        altitude = EXCLUDED.altitude, speed = EXCLUDED.speed, heading = EXCLUDED.heading,
        satellites = EXCLUDED.satellites, stream_id = EXCLUDED.stream_id
    WHERE l.ts < EXCLUDED.ts
"""

#: docs/processor.md, section 7, "Rebuilding latest_positions": after a load that bypassed the triggers.
REBUILD_LATEST = """
INSERT INTO latest_positions AS l
    (device_id, ts, latitude, longitude, altitude, speed, heading, satellites, stream_id)
SELECT DISTINCT ON (device_id) device_id, ts, latitude, longitude, altitude, speed, heading, satellites, stream_id
FROM positions
WHERE NOT faulty
ORDER BY device_id, ts DESC""" + LATEST_UPSERT

LOG_LINE = re.compile(r"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d")
EXECUTE = re.compile(r"duration: ([0-9.]+) ms\s+execute [^:]*:\s*(.*)", re.S)


def _with_database(url: str, database: str) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{database}"))


def _groups(lines: list[str]) -> list[str]:
    """PostgreSQL log records (a record's continuation lines joined to it)."""
    groups: list[str] = []
    for line in lines:
        if LOG_LINE.match(line) or not groups:
            groups.append(line)
        else:
            groups[-1] += "\n" + line
    return groups


class SnapshotBench:
    def __init__(self, harness: Harness, sizes: list[int], say: Callable[[str], None], profile: bool = True) -> None:
        self.h = harness
        self.profile = profile
        self.sizes = sizes
        self.say = say
        self.database = f"bench_snapshot_{uuid.uuid4().hex[:6]}"
        self.url = _with_database(harness.endpoints.database_url, self.database)
        self.event_id = str(uuid.uuid4())
        self.devices = [f"snap-{i:04d}" for i in range(DEVICES)]
        self.loaded = 0
        self.statement: str | None = None
        self.answer = b""  # the Processor's last ``subscribed`` frame (replayed by the floor server)
        self._last_seen = ""

    def run(self) -> dict[str, Any]:
        results: dict[str, Any] = {"devices": DEVICES, "sizes": []}
        self.h.run(self._create())
        process = None
        try:
            process = self.h.start_processor(
                "snapshot", PROCESSOR_DATABASE_URL=self.url, PROCESSOR_CONSUMER="bench-snapshot",
                PROCESSOR_STREAM=f"bench-snapshot-{uuid.uuid4().hex[:6]}:telemetry:teltonika")
            for size in self.sizes:
                began = time.monotonic()
                load = self.h.run(self._load(size), timeout=900)
                self.say(f"  snapshot: {size:,} positions loaded in {time.monotonic() - began:.1f} s")
                measured = self.h.run(self._measure(process.live_url), timeout=300)
                results["sizes"].append({"positions": size, "load": load, **measured})
            results["floor"] = self._floor()
            slow = (results["sizes"][-1].get("subscribe_ms") or {}).get("p50") or 0
            if self.profile and slow > 5:
                from .load import finish_profile, start_profile

                assert process.proc is not None
                spy = start_profile(process.proc.pid, "snapshot", 3.0)
                calls = self.h.run(self._hammer(process.live_url, 3.0), timeout=60)
                results["profile"] = {"label": f"profile snapshot subscribes at {self.sizes[-1]:,} positions",
                                      "subscribes": calls, "profile": finish_profile(spy) if spy else None}
            results["statement_source"] = "processor (PostgreSQL log)" if self.statement else "contract query"
            results["statement"] = self.statement or CONTRACT_SNAPSHOT
        finally:
            if process is not None:
                self.h.stop_processor(process)
            self.h.run(self._drop(), timeout=120)
        return results

    # -- database ----------------------------------------------------------------------------------------

    async def _admin(self, statement: str) -> None:
        conn = await asyncpg.connect(self.h.endpoints.database_url)
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    async def _create(self) -> None:
        await self._admin(f'CREATE DATABASE "{self.database}"')
        conn = await asyncpg.connect(self.url)
        try:
            await conn.execute(SCHEMA.read_text())
            org = str(uuid.uuid4())
            await conn.execute("INSERT INTO organizations (id, name, slug) VALUES ($1, 'Snapshot Club', 'snap')", org)
            await conn.execute("INSERT INTO events (id, organization_id, name, slug) VALUES ($1, $2, 'Snap', 'snap')",
                               self.event_id, org)
            cars = [(str(uuid.uuid4()), self.event_id, f"#{i}", None) for i in range(DEVICES // TRACKERS_PER_CAR)]
            await conn.executemany("INSERT INTO entries (id, event_id, number, crew) VALUES ($1, $2, $3, $4)", cars)
            await conn.executemany("INSERT INTO devices (id, label) VALUES ($1, $1)", [(d,) for d in self.devices])
            await conn.executemany("INSERT INTO entry_devices (entry_id, device_id) VALUES ($1, $2)",
                                   [(cars[i // TRACKERS_PER_CAR][0], d) for i, d in enumerate(self.devices)])
        finally:
            await conn.close()
        stub = self.h.suite.stub
        stub.known_events.add(self.event_id)
        self.user = str(uuid.uuid4())
        self.cookie = stub.sign_in(self.user)
        stub.grant(self.user, self.event_id)

    async def _drop(self) -> None:
        await self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)')
        self.h.suite.stub.forget(cookies=[self.cookie], users=[self.user], events=[self.event_id])

    async def _load(self, size: int) -> dict[str, Any]:
        """Bring the history to ``size`` positions (``size / 1000`` per tracker, one every second, every 97th
        flagged faulty)."""
        per_device_from, per_device_to = self.loaded // DEVICES, size // DEVICES
        conn = await asyncpg.connect(self.url, command_timeout=900)
        try:
            await conn.execute("SET maintenance_work_mem = '256MB'")
            began = time.monotonic()
            await conn.execute("ALTER TABLE positions DROP CONSTRAINT positions_pkey")
            await conn.execute("DROP INDEX positions_latest_sound_idx")
            await conn.execute("ALTER TABLE positions DISABLE TRIGGER USER")  # rebuilt below, as section 7 says
            base = 1_900_000_000  # epoch seconds, 2030

            suffixes = [
                f"\t{time.strftime('%Y-%m-%d %H:%M:%S', time.gmtime(base + i))}+00\t{41 + (i % 1000) * 1e-4:.4f}"
                f"\t{19 + (i % 700) * 1e-4:.4f}\t{'t' if i % 97 == 0 else 'f'}\n"
                for i in range(per_device_from, per_device_to)
            ]

            async def chunks() -> AsyncIterator[bytes]:
                for device in self.devices:
                    yield "".join([device + s for s in suffixes]).encode()

            await conn.copy_to_table("positions", source=chunks(), columns=["device_id", "ts", "latitude",
                                                                             "longitude", "faulty"], format="text")
            copied = time.monotonic() - began
            await conn.execute("ALTER TABLE positions ADD PRIMARY KEY (device_id, ts)")
            await conn.execute("CREATE INDEX positions_latest_sound_idx ON positions (device_id, ts DESC) "
                               "WHERE NOT faulty")
            await conn.execute("ALTER TABLE positions ENABLE TRIGGER USER")
            indexed = time.monotonic() - began - copied
            await conn.execute(REBUILD_LATEST)
            rebuilt = time.monotonic() - began - copied - indexed
            await conn.execute("VACUUM ANALYZE")  # every table, as autovacuum would have by now
            total = time.monotonic() - began
            rows = await conn.fetchval("SELECT count(*) FROM positions")
        finally:
            await conn.close()
        self.loaded = size
        added = (per_device_to - per_device_from) * DEVICES
        return {"rows": rows, "copied_rows": added, "copy_seconds": copied, "copy_rows_per_s": added / copied,
                "index_seconds": indexed, "latest_rebuild_seconds": rebuilt, "total_seconds": total}

    # -- measurement -------------------------------------------------------------------------------------

    async def _log_statements(self, enable: bool) -> None:
        conn = await asyncpg.connect(self.h.endpoints.database_url)
        try:
            if enable:
                await conn.execute("ALTER SYSTEM SET log_min_duration_statement = 0")
            else:
                await conn.execute("ALTER SYSTEM RESET log_min_duration_statement")
            await conn.execute("SELECT pg_reload_conf()")
        finally:
            await conn.close()

    async def _latest_execute(self, timeout: float = 0.5) -> tuple[float, str] | None:
        """The newest logged execution of a snapshot statement (it reads ``latest_positions``) not returned before
        (waits up to ``timeout``)."""
        deadline = time.monotonic() + timeout
        while True:
            groups = [g for g in _groups(self.h.postgres_log)
                      if "LATEST_POSITIONS" in g.upper() and "DISTINCT ON" in g.upper() and EXECUTE.search(g)]
            if groups and groups[-1].split("\n", 1)[0] != self._last_seen:
                self._last_seen = groups[-1].split("\n", 1)[0]
                match = EXECUTE.search(groups[-1])
                assert match is not None
                lines = [line for line in match.group(2).split("\n") if "DETAIL:" not in line]
                return float(match.group(1)), "\n".join(lines).strip()
            if time.monotonic() > deadline:
                return None
            await asyncio.sleep(0.005)  # poll interval of a deadline-bounded wait for the log line

    async def _measure(self, live_url: str, rounds: int = 25) -> dict[str, Any]:
        viewer: RawViewer = await open_viewer(0, live_url, self.cookie)
        if viewer.status != 101:
            return {"error": f"upgrade answered {viewer.status}"}
        round_trips: list[float] = []
        executes: list[float] = []
        sizes: set[int] = set()
        log = bool(self.h.postgres_log)
        try:
            if log:
                await self._log_statements(True)
            await viewer.subscribe(self.event_id)  # warm-up: prepared statement, plan cache
            if log:
                await self._latest_execute()
            for _ in range(rounds):
                began = time.time()
                arrived = await viewer.subscribe(self.event_id)
                round_trips.append(1000 * (arrived - began))
                sizes.add(viewer.other[-1].get("snapshotSize", -1))
                self.answer = viewer.last_subscribed
                if log:
                    logged = await self._latest_execute()
                    if logged:
                        executes.append(logged[0])
                        self.statement = self.statement or logged[1]
                await asyncio.sleep(0.06)  # pacing: stay under PROCESSOR_SUBSCRIBE_RATE (20 frames/s)
        finally:
            viewer.close()
            if log:
                await self._log_statements(False)
        explain = await self._explain(self.statement or CONTRACT_SNAPSHOT)
        return {"subscribe_ms": percentiles(round_trips, (50, 95)), "snapshot_sizes": sorted(sizes),
                "server_execute_ms": percentiles(executes, (50, 95)) if executes else None,
                "explain": explain}

    def _floor(self) -> dict[str, Any]:
        """The same client and pacing against a bare ``websockets`` server that answers ``subscribe`` with the
        Processor's own last ``subscribed`` frame, byte for byte: what moving ~1,000 positions through one
        WebSocket round trip costs on this machine with no Directus check, no query and no rendering."""
        if not self.answer:
            return {"error": "no subscribed frame was captured"}
        from .workers import Worker

        server = Worker("bench-snapshot-floor", "bench.broadcast_server:BroadcastServer")
        try:
            port = server.call("start")
            server.call("answer_with", frame=self.answer.decode())
            measured = self.h.run(self._round_trips(f"ws://127.0.0.1:{port}/live"), timeout=120)
            return {**measured, "frame_bytes": len(self.answer)}
        finally:
            server.close()

    async def _round_trips(self, live_url: str, rounds: int = 25) -> dict[str, Any]:
        viewer = await open_viewer(0, live_url, None)
        try:
            await viewer.subscribe(self.event_id)  # warm-up, as for the Processor
            trips = []
            for _ in range(rounds):
                began = time.time()
                trips.append(1000 * (await viewer.subscribe(self.event_id) - began))
                await asyncio.sleep(0.06)  # pacing: the same as the Processor's rounds
            return {"subscribe_ms": percentiles(trips, (50, 95))}
        finally:
            viewer.close()

    async def _hammer(self, live_url: str, seconds: float, connections: int = 4) -> int:
        """Subscribe again and again over a few connections for ``seconds`` (under the rate limit)."""
        viewers = [await open_viewer(i, live_url, self.cookie) for i in range(connections)]
        deadline = time.monotonic() + seconds
        calls = 0

        async def loop(viewer: RawViewer) -> None:
            nonlocal calls
            while time.monotonic() < deadline:
                await viewer.subscribe(self.event_id)
                calls += 1
                await asyncio.sleep(0.05)  # pacing: stay under PROCESSOR_SUBSCRIBE_RATE per connection

        try:
            await asyncio.gather(*(loop(v) for v in viewers if v.status == 101))
        finally:
            for viewer in viewers:
                viewer.close()
        return calls

    async def _explain(self, statement: str, rounds: int = 7) -> dict[str, Any]:
        """Execution time without per-node timing overhead (``TIMING OFF``), and one fully timed plan."""
        conn = await asyncpg.connect(self.url)
        try:
            event = uuid.UUID(self.event_id)
            times = []
            for _ in range(rounds):
                rows = await conn.fetch(f"EXPLAIN (ANALYZE, TIMING OFF) {statement}", event)
                match = re.search(r"Execution Time: ([0-9.]+) ms", "\n".join(r[0] for r in rows))
                if match:
                    times.append(float(match.group(1)))
            rows = await conn.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", event)
            plan = "\n".join(r[0] for r in rows)
            fetches = []
            for _ in range(rounds):
                began = time.perf_counter()
                result = await conn.fetch(statement, event)
                fetches.append(1000 * (time.perf_counter() - began))
            return {"execution_ms_median": statistics.median(times) if times else None,
                    "fetch_ms_median": statistics.median(fetches), "rows": len(result), "plan": plan}
        finally:
            await conn.close()
