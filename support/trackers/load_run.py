"""Bounded load with a full delivery history (the ``@load`` scenario).

Trackers on several events report at a paced rate for a bounded time; fans watch the events. Afterwards
the history is checked end to end: every published position stored exactly once, and every fan received
every position of its event exactly once, in the order each tracker reported them, and nothing else.
All waits are for outcomes, with deadlines; the only timed pause paces the publishing rate.
"""

from __future__ import annotations

import asyncio
import time
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from ..fans.viewer import QUIET_WINDOW, Viewer
from ..scenario.world import World
from ..waiting import eventually
from .publisher import car_entry
from .record import Report

#: How often the paced publisher wakes up to send what is due.
TICK = 0.005
#: Reported positions are stamped from here on, ``STEP`` apart, so every tracker's ``ts`` strictly increases.
TS_BASE = datetime(2026, 6, 1, 8, 0, tzinfo=UTC)
STEP = timedelta(milliseconds=5)


@dataclass
class LoadRun:
    """One @load scenario's events, fans and what was published, kept in the world's state (:func:`load_run`)."""

    world: World
    #: event name -> tracker aliases
    trackers: dict[str, list[str]] = field(default_factory=dict)
    #: fan name -> event name
    fans: dict[str, str] = field(default_factory=dict)
    published: list[Report] = field(default_factory=list)
    achieved_rate: float = 0.0

    # -- set-up --------------------------------------------------------------------------------------------

    async def add_events(self, organisation: str, events: int, trackers: int) -> None:
        for e in range(1, events + 1):
            name = f"Load rally {e}"
            await self.world.add_event(organisation, name)
            aliases = [f"load-{e}-tracker-{t}" for t in range(1, trackers + 1)]
            for t, alias in enumerate(aliases, 1):
                await self.world.add_entry(name, f"#{t}", f"crew {e}/{t}", [alias])
            self.trackers[name] = aliases

    async def open_maps(self, fans_per_event: int) -> None:
        for name in self.trackers:
            for f in range(1, fans_per_event + 1):
                fan = f"{name} fan {f}"
                self.world.allow(fan, name)
                answer = await self.world.open_map(fan, name)
                assert answer.get("type") == "subscribed", f"{fan} could not open the map of {name}: {answer}"
                self.fans[fan] = name

    # -- load ----------------------------------------------------------------------------------------------

    async def publish(self, rate: float, seconds: float) -> None:
        """Report ``rate`` positions per second for ``seconds``, round-robin over every tracker."""
        publisher = self.world.suite.publisher
        assert publisher is not None
        schedule = [(event, alias) for event, aliases in self.trackers.items() for alias in aliases]
        total = int(rate * seconds)
        began = time.monotonic()
        sent = 0
        while sent < total:
            due = min(total, int((time.monotonic() - began) * rate) + 1)
            if due <= sent:
                await asyncio.sleep(TICK)  # pacing
                continue
            batch: list[tuple[str, str, datetime, float, float, dict[str, str]]] = []
            pipe = publisher.redis.pipeline(transaction=False)
            for k in range(sent, due):
                _, alias = schedule[k % len(schedule)]
                device_id, ts = self.world.device(alias), TS_BASE + k * STEP
                latitude, longitude = 41.0 + k * 1e-5, 19.0 + k * 1e-5
                fields = car_entry(device_id, ts, latitude, longitude)
                pipe.xadd(publisher.stream, fields)  # type: ignore[arg-type]  # redis-py's field types are invariant; str fields are what it sends
                batch.append((alias, device_id, ts, latitude, longitude, fields))
            sent_at = time.monotonic()
            for (alias, device_id, ts, latitude, longitude, fields), entry_id in zip(batch, await pipe.execute(),
                                                                                      strict=False):
                entry = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                self.published.append(Report(alias, device_id, ts, latitude, longitude, entry, sent_at, fields))
            sent = due
        elapsed = time.monotonic() - began
        self.achieved_rate = sent / elapsed if elapsed else 0.0
        self.world.published.add_round(self.published)

    # -- outcomes ------------------------------------------------------------------------------------------

    def _by_device(self) -> dict[str, list[Report]]:
        out: dict[str, list[Report]] = defaultdict(list)
        for item in self.published:
            out[item.device_id].append(item)
        return out

    async def stored_problems(self, timeout: float) -> list[str]:
        """Wait until every tracker has as many rows as it reported (or the deadline), then compare."""
        expected = self._by_device()
        devices = list(expected)
        db = self.world.db

        async def probe() -> tuple[bool, dict[str, list[tuple[datetime, str | None]]]]:
            assert db.pool is not None
            rows = await db.pool.fetch("SELECT device_id, ts, stream_id FROM positions WHERE device_id = ANY($1)"
                                       " ORDER BY device_id, ts", devices)
            stored: dict[str, list[tuple[datetime, str | None]]] = defaultdict(list)
            for row in rows:
                stored[row["device_id"]].append((row["ts"], row["stream_id"]))
            done = all(len(stored[d]) >= len(items) for d, items in expected.items())
            return done, stored

        try:
            stored = await eventually(probe, timeout=timeout, what="every reported position to be stored")
        except AssertionError:
            _, stored = await probe()
        problems = []
        for device_id, items in expected.items():
            want = [(item.ts, item.entry_id) for item in items]
            rows = stored.get(device_id, [])
            if rows != want:
                alias = items[0].alias
                missing = len(set(want) - set(rows))
                extra = len(rows) - len(set(rows) & set(want))
                problems.append(f"{alias}: {len(rows)} row(s) stored for {len(want)} reported "
                                f"({missing} missing, {extra} unexpected)")
        return problems

    async def delivered_problems(self, timeout: float) -> list[str]:
        """Wait until every fan has the last position of each tracker of its event (or the deadline), listen
        for a quiet window in case anything arrives twice, then compare each fan's history with what was
        published."""
        by_device = self._by_device()
        deadline = time.monotonic() + timeout
        problems: list[str] = []
        for fan, event in self.fans.items():
            viewer = self.world.viewer(fan)
            for alias in self.trackers[event]:
                last = by_device[self.world.device(alias)][-1].entry_id
                try:
                    await viewer.wait_for(lambda f, last=last: f.get("type") == "position"  # type: ignore[misc]  # a lambda with a bound default has no inferable type
                                          and f.get("streamId") == last,
                                          timeout=max(0.0, deadline - time.monotonic()),
                                          what=f"{alias}'s last position")
                except AssertionError:
                    problems.append(f"{fan} never received {alias}'s last position ({last})")
        await next(iter(self.world.viewers.values())).listen_quietly(QUIET_WINDOW)
        for fan, event in self.fans.items():
            problems += self._history_problems(fan, event, self.world.viewer(fan), by_device)
        return problems

    def _history_problems(self, fan: str, event: str, viewer: Viewer,
                          by_device: dict[str, list[Report]]) -> list[str]:
        event_id = self.world.event(event)
        ours = {self.world.device(alias) for alias in self.trackers[event]}
        received: dict[str, list[str | None]] = defaultdict(list)
        problems = []
        for frame in viewer.inbox:
            if frame.get("type") != "position":
                continue
            if frame.get("eventId") != event_id or frame.get("deviceId") not in ours:
                problems.append(f"{fan} (watching {event}) received a position of another event or tracker: "
                                f"{frame.get('eventId')} / {frame.get('deviceId')}")
                continue
            received[frame["deviceId"]].append(frame.get("streamId"))
        for device_id in sorted(ours):
            want = [item.entry_id for item in by_device[device_id]]
            got = received.get(device_id, [])
            if got == want:
                continue
            alias = self.world.alias_of(device_id)
            duplicates = len(got) - len(set(got))
            missing = len(set(want) - set(got))
            first_seen = [x for x in dict.fromkeys(got) if x in set(want)]
            order = "in order" if first_seen == [x for x in want if x in set(got)] else "OUT OF ORDER"
            problems.append(f"{fan}: {alias} received {len(got)} of {len(want)} positions ({missing} missing, "
                            f"{duplicates} duplicated, {order})")
        return problems[:20]

    def summary(self) -> str:
        return (f"{len(self.published)} positions published at {self.achieved_rate:.0f}/s by "
                f"{sum(len(a) for a in self.trackers.values())} trackers on {len(self.trackers)} events, "
                f"watched by {len(self.fans)} fans")


def load_run(world: World) -> LoadRun:
    """The scenario's load run, made on first use and kept in the world's state for the rest of the scenario."""
    return world.state(LoadRun, lambda: LoadRun(world))
