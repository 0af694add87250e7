"""Processor load: latency, fan-out, storage, idle memory, connect time, and the bare-broadcast baseline.

Layout of one run (all on 127.0.0.1):

* the Processor under test (``python -m processor``, started by :class:`support.run.suite.Suite`);
* a **generator** process ``XADD``-ing positions at a paced rate (:mod:`bench.generator`);
* a **viewer fleet** process holding N WebSocket viewers (:mod:`bench.wsclient`);
* this process: the Directus stub (the suite's), the seeding, and the bookkeeping.

The world: one organisation, ``EVENTS`` events with ``DEVICES_PER_EVENT`` trackers each (one car per
tracker), one signed-in fan per viewer allowed to watch every event. A *cell* opens N viewers spread over
the first E events, publishes R positions/s round-robin over those events' trackers for D seconds, waits
(bounded) for delivery and storage, and compares what every viewer got with what was published for its
event. The same cell against the bare ``websockets.broadcast()`` server gives the fan-out baseline.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from support.processes.scrape import scrape

from . import harness as _harness
from .generator import TS_BASE_MS
from .harness import Harness
from .workers import CpuMeter, StealMeter, Worker, memory
from .wsclient import percentiles

EVENTS = 10
DEVICES_PER_EVENT = 100
POLL = 0.05  # poll interval of the deadline-bounded waits below


def _ts(ms: int) -> datetime:
    return datetime.fromtimestamp(ms / 1000, tz=UTC)


def spread(n: int, k: int) -> list[int]:
    """``k`` indexes spread evenly over ``range(n)`` (first, last and between)."""
    if n <= k:
        return list(range(n))
    return sorted({round(i * (n - 1) / (k - 1)) for i in range(k)})


@dataclass
class LoadWorld:
    org_id: str
    events: list[str]
    devices: list[str]
    device_event: list[int]
    users: list[str]
    cookies: list[str]
    #: ``device_entry[i]``: the entry (car) ``devices[i]`` is on; the live feeder's positions name it.
    device_entry: list[str]


@dataclass
class LoadConfig:
    quick: bool = False
    cell_seconds: float = 5.0
    scaling_viewers: tuple[int, ...] = (10, 100, 1000)
    scaling_rates: tuple[int, ...] = (100, 1000, 5000)
    sweep_rates: tuple[int, ...] = (100, 200, 400)
    sweep_seconds: float = 3.0
    latency_viewers: int = 500
    latency_rate: int = 100
    idle_viewers: int = 1000
    burst: int = 50_000
    sample: int = 20

    @classmethod
    def make(cls, quick: bool) -> LoadConfig:
        if not quick:
            return cls()
        return cls(quick=True, cell_seconds=2.0, scaling_rates=(100, 1000), sweep_rates=(100, 200),
                   sweep_seconds=2.0, burst=20_000)


@dataclass
class Target:
    """What the fleet connects to and what drives it: the Processor + generator, or the bare server."""

    name: str
    url: str
    pid: int
    start: Callable[..., None]  # send the run command (non-blocking)
    result: Callable[[float], dict[str, Any]]
    stores: bool


class LoadBench:
    def __init__(self, harness: Harness, config: LoadConfig, say: Callable[[str], None]) -> None:
        self.h = harness
        self.cfg = config
        self.say = say
        self.seq = 0
        self.fleet: Worker | None = None
        self.gen: Worker | None = None
        self.server: Worker | None = None
        self.world: LoadWorld | None = None
        self.connected: tuple[str, int, int] | None = None  # (url, viewers, events) of the open fleet
        self.results: dict[str, Any] = {}

    # -- set-up ----------------------------------------------------------------------------------------

    def start(self) -> None:
        self.fleet = Worker("bench-viewers", "bench.wsclient:Fleet")
        self.gen = Worker("bench-generator", "bench.generator:Generator", redis_url=self.h.endpoints.redis_url,
                          stream=self.h.endpoints.stream)
        self.world = self.h.run(self._seed())

    async def _seed(self) -> LoadWorld:
        db = self.h.suite.db
        assert db is not None and db.pool is not None
        stub = self.h.suite.stub
        token = uuid.uuid4().hex[:6]
        org_id = str(uuid.uuid4())
        events = [str(uuid.uuid4()) for _ in range(EVENTS)]
        devices, device_event, entries, assignments = [], [], [], []
        for e in range(EVENTS):
            for d in range(DEVICES_PER_EVENT):
                device = f"bench-{token}-{e:02d}-{d:03d}"
                entry_id = str(uuid.uuid4())
                devices.append(device)
                device_event.append(e)
                entries.append((entry_id, events[e], f"#{d}", f"crew {e}/{d}"))
                assignments.append((entry_id, device))
        async with db.pool.acquire() as conn, conn.transaction():
            await conn.execute("INSERT INTO organizations (id, name, slug) VALUES ($1, $2, $3)", org_id,
                               "Bench Rally Club", f"bench-{token}")
            await conn.executemany(
                "INSERT INTO events (id, organization_id, name, slug) VALUES ($1, $2, $3, $4)",
                [(ev, org_id, f"Bench rally {i}", f"bench-{token}-{i}") for i, ev in enumerate(events)])
            await conn.executemany("INSERT INTO entries (id, event_id, number, crew) VALUES ($1, $2, $3, $4)",
                                   entries)
            await conn.executemany("INSERT INTO devices (id, label) VALUES ($1, $2)", [(d, d) for d in devices])
            await conn.executemany("INSERT INTO entry_devices (entry_id, device_id) VALUES ($1, $2)", assignments)
            # one earlier position per tracker, so every snapshot has a car for each tracker
            await conn.copy_records_to_table(
                "positions", columns=["device_id", "ts", "latitude", "longitude"],
                records=[(d, _ts(TS_BASE_MS - 60_000), 41.0, 19.0) for d in devices])
        stub.known_events.update(events)
        users, cookies = [], []
        viewers = max(self.cfg.idle_viewers, *self.cfg.scaling_viewers)
        for _ in range(viewers):
            user = str(uuid.uuid4())
            users.append(user)
            cookies.append(stub.sign_in(user))
            for event in events:
                stub.grant(user, event)
        return LoadWorld(org_id, events, devices, device_event, users, cookies, [e[0] for e in entries])

    def close(self) -> None:
        for worker in (self.fleet, self.gen, self.server):
            if worker is not None:
                worker.close()
        self.fleet = self.gen = self.server = None

    # -- targets ---------------------------------------------------------------------------------------

    def processor_target(self) -> Target:
        process = self.h.suite.processor
        assert process.proc is not None and self.gen is not None
        gen = self.gen
        return Target("processor", process.live_url, process.proc.pid,
                      lambda **kw: gen.send("run", **kw), gen.result, stores=True)

    def baseline_target(self, mode: str = "broadcast") -> Target:
        """The bare server: ``broadcast`` (``websockets.broadcast()``) or ``raw`` (one encoded frame written to
        every transport)."""
        if self.server is None:
            self.server = Worker("bench-broadcast", "bench.broadcast_server:BroadcastServer")
            self.server_port = self.server.call("start")
        server, world = self.server, self.world
        assert world is not None

        def start(**kw: Any) -> None:
            kw.pop("n_events")
            server.send("run", events=world.events[:max(kw["device_event"]) + 1], mode=mode, **kw)

        name = "bare broadcast()" if mode == "broadcast" else "raw transport.write()"
        return Target(name, f"ws://127.0.0.1:{self.server_port}/live", self.server.pid, start, server.result,
                      stores=False)

    def quiesce(self, pid: int, limit: float = 30.0) -> float:
        """Wait (bounded) until the target is idle, e.g. done with the backlog of an over-capacity cell, so
        it does not bleed into the next measurement. Returns the seconds waited."""
        began = time.monotonic()
        while time.monotonic() - began < limit:
            meter = CpuMeter(pid)
            time.sleep(0.25)  # the CPU sampling window of a deadline-bounded wait
            if meter.percent() < 15:
                break
        return time.monotonic() - began

    # -- one cell --------------------------------------------------------------------------------------

    def _open_fleet(self, target: Target, viewers: int, n_events: int) -> dict[str, Any]:
        assert self.fleet is not None and self.world is not None
        key = (target.url, viewers, n_events)
        if self.connected == key:
            progress = self.fleet.call("progress")
            if progress["open"] == viewers:
                return {"reused": True}
        self.fleet.call("close_all")
        self.connected = None
        connect = self.fleet.call("connect", url=target.url, cookies=self.world.cookies[:viewers], timeout=180)
        events = [self.world.events[i % n_events] for i in range(viewers)]
        subscribe = self.fleet.call("subscribe", event_ids=events, timeout=180)
        self.connected = key
        return {"connect": connect, "subscribe": subscribe}

    def cell(self, target: Target, *, label: str, viewers: int, rate: float | None, n_events: int,
             seconds: float, profile: str | None = None, watch: dict[str, int] | None = None) -> dict[str, Any]:
        """Publish at ``rate`` for ``seconds`` to ``viewers`` spread over ``n_events`` events; measure.

        ``watch``: other processes (name -> pid) whose CPU is measured over the same window as the target's and
        the fleet's (e.g. the live feeder and valkey: the load-makers' side must not be the bottleneck)."""
        assert self.fleet is not None and self.world is not None
        world = self.world
        settled = self.quiesce(target.pid)
        opened = self._open_fleet(target, viewers, n_events)
        devices = [d for d, e in zip(world.devices, world.device_event, strict=False) if e < n_events]
        device_event = [e for e in world.device_event if e < n_events]
        self.fleet.call("arm", sampled=spread(viewers, self.cfg.sample))
        before = self._metrics() if target.stores else None
        meter, fleet_meter = CpuMeter(target.pid), CpuMeter(self.fleet.pid)
        watched = {name: CpuMeter(pid) for name, pid in (watch or {}).items()}
        steal = StealMeter()
        spy = start_profile(target.pid, profile, seconds + 1.0) if profile else None
        target.start(devices=devices, device_event=device_event, n_events=n_events, rate=rate, duration=seconds,
                     seq_start=self.seq)
        run = target.result(seconds + 120)
        self.seq = run["seq_end"]
        expected = [run["per_event"][i % n_events] for i in range(viewers)]
        self.fleet.call("expect", expected=expected)
        drain_limit = max(5.0, seconds)
        drained = self._wait_delivered(drain_limit)
        after = self._metrics() if target.stores else None  # at the drain deadline: what was dispatched by then
        cpu = meter.percent()
        fleet_cpu = fleet_meter.percent()
        watched_cpu = {name: m.percent() for name, m in watched.items()}
        steal_pct = steal.percent()
        mem = memory(target.pid)
        stored = self._wait_stored(devices, run) if target.stores else None
        profile_summary = finish_profile(spy) if spy else None
        stats = self.fleet.call("stats")
        result = summarise(label, target.name, viewers, rate, n_events, seconds, opened, run, expected, stats,
                           drained, stored, cpu, fleet_cpu, mem, before, after, profile_summary)
        result["settled_before_s"] = settled
        result["steal_pct"] = steal_pct
        if watched_cpu:
            result["cpu_pct_of"] = watched_cpu
        for key in ("messages", "batch_mean", "batch_max"):  # the live feeder's batches
            if key in run:
                result[f"feed_{key}"] = run[key]
        return result

    def _wait_delivered(self, limit: float) -> dict[str, Any]:
        """Until every open viewer has what was published for its event, or ``limit`` s (or 2 s without
        progress) pass."""
        assert self.fleet is not None
        began = time.monotonic()
        last_missing, last_change = None, began
        while True:
            progress = self.fleet.call("progress")
            missing = progress["missing"]
            now = time.monotonic()
            if missing != last_missing:
                last_missing, last_change = missing, now
            if missing == 0 or now - began > limit or now - last_change > 2.0:
                return {"missing": missing, "waited": now - began, "complete": missing == 0}
            time.sleep(POLL)  # poll interval of a deadline-bounded wait

    def _wait_stored(self, devices: list[str], run: dict[str, Any], limit: float = 30.0) -> dict[str, Any]:
        async def count() -> tuple[int, float | None]:
            db = self.h.suite.db
            assert db is not None and db.pool is not None
            row = await db.pool.fetchrow(
                "SELECT count(*) AS n, extract(epoch FROM max(received_at)) AS last FROM positions"
                " WHERE device_id = ANY($1::text[]) AND ts BETWEEN $2 AND $3",
                devices, _ts(run["ts_first_ms"]), _ts(run["ts_last_ms"]))
            return row["n"], float(row["last"]) if row["last"] is not None else None

        began = time.monotonic()
        while True:
            n, last = self.h.run(count())
            if n >= run["published"] or time.monotonic() - began > limit:
                break
            time.sleep(POLL)  # poll interval of a deadline-bounded wait
        span = (last - run["first_send"]) if last else None
        return {"rows": n, "published": run["published"], "complete": n == run["published"],
                "seconds": span, "per_s": n / span if span and span > 0 else None}

    def _metrics(self) -> dict[str, float]:
        async def get() -> dict[str, float]:
            assert self.h.suite.http is not None
            snap = await scrape(self.h.suite.processor.base_url, self.h.suite.http)
            names = ["processor_slow_consumer_disconnects_total", "processor_positions_stored_total",
                     "processor_positions_broadcast_total", "processor_frames_sent_total",
                     "processor_positions_duplicate_total", "processor_websocket_connections",
                     "processor_subscriptions", "processor_snapshot_queries_total"]
            values = {name: snap.value(name) for name in names}
            values["processor_frames_sent_total"] = snap.value("processor_frames_sent_total", type="position")
            return values

        try:
            return self.h.run(get(), timeout=10)
        except Exception:
            return {}

    # -- the measurements --------------------------------------------------------------------------------

    def idle_memory(self, target: Target) -> dict[str, Any]:
        """RSS before and after ``idle_viewers`` viewers connect and subscribe (no traffic), and connect time."""
        assert self.fleet is not None and self.world is not None
        n = self.cfg.idle_viewers
        self.fleet.call("close_all")
        self.connected = None
        self.quiesce(target.pid)
        rss0 = memory(target.pid)["VmRSS"]
        meter, stub_meter = CpuMeter(target.pid), CpuMeter(os.getpid())
        connect = self.fleet.call("connect", url=target.url, cookies=self.world.cookies[:n], timeout=180)
        connect_cpu, stub_cpu = meter.percent(), stub_meter.percent()
        rss1 = memory(target.pid)["VmRSS"]
        events = [self.world.events[i % EVENTS] for i in range(n)]
        queries_before = self._metrics().get("processor_snapshot_queries_total") if target.stores else None
        subscribe = self.fleet.call("subscribe", event_ids=events, timeout=180)
        queries_after = self._metrics().get("processor_snapshot_queries_total") if target.stores else None
        time.sleep(1.0)  # idle on purpose: memory of idle viewers (not an outcome wait)
        rss2 = memory(target.pid)["VmRSS"]
        # The wording: 1,000 fans opening ONE event at once (each also keeps its own event's map open).
        one = self.fleet.call("subscribe", event_ids=[self.world.events[0]] * n, timeout=180)
        queries_one = self._metrics().get("processor_snapshot_queries_total") if target.stores else None
        self.fleet.call("close_all")
        self.connected = None
        time.sleep(0.5)  # settle: the target releases the closed connections (not an outcome wait)
        rss3 = memory(target.pid)["VmRSS"]
        ok = connect["statuses"].get("101", 0)
        return {"target": target.name, "viewers": n, "connected": ok, "connect": connect, "subscribe": subscribe,
                "connect_cpu_pct": connect_cpu, "stub_cpu_pct": stub_cpu,
                "rss_before_kib": rss0, "rss_connected_kib": rss1, "rss_subscribed_kib": rss2,
                "rss_after_close_kib": rss3,
                "kib_per_viewer_connected": (rss1 - rss0) / max(ok, 1),
                "kib_per_viewer": (rss2 - rss0) / max(ok, 1), "events": EVENTS,
                "snapshot_queries": (queries_after - queries_before)
                if queries_before is not None and queries_after is not None else None,
                "one_event": {"subscribe": one, "snapshot_queries": (queries_one - queries_after)
                              if queries_one is not None and queries_after is not None else None}}

    def burst(self, profile: str | None = None) -> dict[str, Any]:
        """A backlog of ``burst`` positions appears at once: how fast does the Processor store it all?

        The Processor is paused (SIGSTOP) while the generator ``XADD``s the backlog as fast as redis-py goes,
        then resumed (SIGCONT); storage is timed from the resume to the last row's ``received_at``. Without
        the pause the figure would be capped by the producer's own ``XADD`` rate (see the Redis baseline).
        """
        assert self.gen is not None and self.world is not None and self.fleet is not None
        self.fleet.call("close_all")
        self.connected = None
        target = self.processor_target()
        self.quiesce(target.pid)
        before = self._metrics()
        os.kill(target.pid, signal.SIGSTOP)
        try:
            run = self.gen.call("burst", devices=self.world.devices, count=self.cfg.burst, seq_start=self.seq,
                                timeout=120)
        finally:
            os.kill(target.pid, signal.SIGCONT)
            resumed = time.time()
        self.seq = run["seq_end"]
        meter = CpuMeter(target.pid)
        spy = start_profile(target.pid, profile, 8.0, settle=False) if profile else None
        stored = self._wait_stored(self.world.devices, {**run, "first_send": resumed}, limit=60.0)
        cpu = meter.percent()
        after = self._metrics()
        return {"published": run["published"], "publish_seconds": run["seconds"],
                "xadd_per_s": run["published"] / run["seconds"] if run["seconds"] else None,
                "stored": stored, "cpu_pct": cpu, "memory_kib": memory(target.pid),
                "stored_metric_delta": after.get("processor_positions_stored_total", 0)
                - before.get("processor_positions_stored_total", 0),
                "profile": finish_profile(spy) if spy else None}

    def warm_up(self, target: Target) -> dict[str, Any]:
        return self.cell(target, label="warm-up", viewers=10, rate=100, n_events=EVENTS, seconds=1.0)


def summarise(label: str, target: str, viewers: int, rate: float | None, n_events: int, seconds: float,
              opened: dict[str, Any], run: dict[str, Any], expected: list[int], stats: dict[str, Any],
              drained: dict[str, Any], stored: dict[str, Any] | None, cpu: float, fleet_cpu: float,
              mem: dict[str, int], before: dict[str, float] | None, after: dict[str, float] | None,
              profile: dict[str, Any] | None) -> dict[str, Any]:
    received = stats["positions"]
    open_flags = stats["open"]
    undelivered = sum(max(0, e - r) for e, r, o in zip(expected, received, open_flags, strict=False) if o)
    deltas = {k: after.get(k, 0) - before.get(k, 0) for k in after} if before and after else {}
    # Missing frames are *late* when, at the drain deadline, the server had not even dispatched every
    # published position yet (a backlog upstream of the viewers: it fell behind, nothing was dropped yet);
    # the bare server dispatches synchronously, so what it misses is still in its socket buffers. Otherwise
    # the frames were dispatched and never arrived: *lost*.
    if target == "processor":
        backlog = max(0, run["published"] - int(deltas.get("processor_positions_broadcast_total", 0)))
    else:
        backlog = run["published"] if undelivered else 0
    late = undelivered if backlog else 0
    loss = undelivered - late
    shed_missing = sum(max(0, e - r) for e, r, o in zip(expected, received, open_flags, strict=False) if not o)
    excess = sum(max(0, r - e) for e, r in zip(expected, received, strict=False))
    total = sum(received)
    span = (stats["last_rx"] - run["first_send"]) if stats["last_rx"] and run.get("first_send") else None
    lat = percentiles(stats["latencies"])
    return {
        "label": label, "target": target, "viewers": viewers, "events": n_events, "rate": rate,
        "seconds": seconds, "opened": opened, "published": run["published"],
        "achieved_rate": run.get("achieved_rate"),
        "offered_fps": sum(expected) / run["seconds"] if run["seconds"] else None,
        "frames_expected": sum(expected), "frames_received": total,
        "delivered_fps": total / span if span and span > 0 else None,
        "loss": loss, "late": late, "undispatched_at_deadline": backlog,
        "over_capacity": bool(late or open_flags.count(False)), "shed_viewers": open_flags.count(False),
        "shed_missing": shed_missing,
        "close_codes": stats["close_codes"], "excess": excess,
        "duplicates": stats["duplicates"], "out_of_order": stats["out_of_order"],
        "latency_ms": {k: (v * 1000 if v is not None else None) for k, v in lat.items()},
        "latency_samples": len(stats["latencies"]), "errors": stats["errors"][:5],
        "drain": drained, "stored": stored, "cpu_pct": cpu, "fleet_cpu_pct": fleet_cpu,
        "rss_kib": mem.get("VmRSS"), "hwm_kib": mem.get("VmHWM"), "metrics_delta": deltas,
        "profile": profile,
    }


# -- profiling ---------------------------------------------------------------------------------------------

def pyspy() -> str | None:
    """py-spy from the worktree's venv, else from the running interpreter's (a shared venv)."""
    for candidate in (Path(__file__).resolve().parent.parent / ".venv" / "bin" / "py-spy",
                      Path(sys.executable).parent / "py-spy"):
        if candidate.exists():
            return str(candidate)
    return None


def start_profile(pid: int, name: str, seconds: float,
                  settle: bool = True) -> tuple[subprocess.Popen[bytes], Path] | None:
    tool = pyspy()
    if tool is None:
        return None
    _harness.OUT.mkdir(parents=True, exist_ok=True)
    path = _harness.OUT / f"profile-{name}.txt"
    proc = subprocess.Popen([tool, "record", "--pid", str(pid), "--duration", str(max(1, round(seconds))),
                             "--rate", "200", "--format", "raw", "--nonblocking", "-o", str(path)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if settle:
        time.sleep(0.3)  # py-spy attaches before the traffic starts (not an outcome wait)
    return proc, path


def finish_profile(spy: tuple[subprocess.Popen[bytes], Path]) -> dict[str, Any]:
    proc, path = spy
    try:
        _, err = proc.communicate(timeout=30)
    except subprocess.TimeoutExpired:
        proc.kill()
        _, err = proc.communicate()
    if not path.exists():
        return {"error": (err or b"").decode(errors="replace")[-500:]}
    return summarise_profile(path)


def summarise_profile(path: Path, top: int = 12) -> dict[str, Any]:
    """Self and inclusive sample shares per function, from py-spy's collapsed stacks."""
    self_counts: dict[str, int] = {}
    incl_counts: dict[str, int] = {}
    total = 0
    for line in path.read_text(errors="replace").splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        total += count
        frames = [_short(f) for f in stack.split(";")]
        self_counts[frames[-1]] = self_counts.get(frames[-1], 0) + count
        for frame in set(frames):
            incl_counts[frame] = incl_counts.get(frame, 0) + count

    def table(counts: dict[str, int]) -> list[tuple[str, float]]:
        ranked = sorted(counts.items(), key=lambda kv: -kv[1])
        return [(name, round(100 * c / total, 1)) for name, c in ranked[:top]] if total else []

    processor_incl = {k: v for k, v in incl_counts.items() if "processor/" in k}
    return {"file": os.path.relpath(path, Path(__file__).resolve().parent.parent), "samples": total,
            "self": table(self_counts), "inclusive_processor": table(processor_incl)}


def _short(frame: str) -> str:
    """``func (/abs/path/site-packages/pkg/mod.py:12)`` -> ``func (pkg/mod.py:12)``."""
    name, _, where = frame.partition(" (")
    where = where.rstrip(")")
    for marker in ("site-packages/", "/work/main/", "lib/python3.11/"):
        if marker in where:
            where = where.split(marker, 1)[1]
            break
    where = where.rsplit(":", 1)[0]  # per function, not per line
    return f"{name} ({where})"


def dumps(value: Any) -> str:
    return json.dumps(value, indent=1, default=str)
