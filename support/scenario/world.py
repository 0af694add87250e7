"""One scenario's world: the people, events, cars and trackers it talks about, under fresh ids.

Feature files speak of "Alice", "the Rally of Tirana" and "tracker-A"; the world maps each name to a fresh
UUID, IMEI or session cookie the first time it is mentioned, so no scenario can see another's data, whatever
order they run in. It publishes the scenario's reports and records them (:attr:`World.published`), keeps what each
feature's steps remember (:meth:`World.state`), and :meth:`World.clean_up` removes every row, session and
connection the scenario made.
"""

from __future__ import annotations

import asyncio
import re
import secrets
import time
import uuid
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TypeVar

from ..clock import ANSWER
from ..database.postgres import Database
from ..fans.viewer import Frame, Viewer
from ..processes.processor_process import ProcessorProcess
from ..processes.scrape import MetricsSnapshot, scrape
from ..run.suite import Suite
from ..trackers import stream
from ..trackers.broken import BROKEN_PLACE, broken_entry
from ..trackers.publisher import TelemetryPublisher, car_entry, render_ts
from ..trackers.record import Position, Published, Report
from ..trackers.traffic import report_burst
from .state import ScenarioState

S = TypeVar("S")

#: A report about to be sent: the position it stands for, and the stream fields that carry it.
Draft = tuple[Position, dict[str, str]]


@dataclass
class Person:
    name: str
    user_id: str
    cookie: str | None


def _slug(name: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") + "-" + secrets.token_hex(3)


class World:
    """One scenario's names, seeded rows, people, viewers, reports and state; made fresh for each scenario."""

    def __init__(self, suite: Suite) -> None:
        self.suite = suite
        self.organizations: dict[str, str] = {}
        self.events: dict[str, str] = {}
        #: The organisation that runs each event, by event name.
        self.event_organisations: dict[str, str] = {}
        self.entries: dict[tuple[str, str], str] = {}
        self.devices: dict[str, str] = {}
        #: The positions the scenario stored itself (``these positions were recorded``), as ``(device_id, ts)``.
        self.seeded: set[tuple[str, datetime]] = set()
        self.people: dict[str, Person] = {}
        self.viewers: dict[str, Viewer] = {}
        #: Each person's latest answer to opening a map: ``subscribed`` (with its snapshot) or ``error``.
        self.answers: dict[str, Frame] = {}
        #: When (``time.monotonic()``) each person last asked to open a map, to time the answer.
        self.asked_at: dict[str, float] = {}
        #: The Processor this scenario's fans use when a step names none: the run's main one, unless a step
        #: gives the scenario one of its own (e.g. one the CMS may keep busy for longer than a scenario).
        self.service: ProcessorProcess | None = None
        self.stub_mark = len(suite.stub.requests)
        #: The Processor's metrics just before the scenario's first own report (counters are compared as deltas).
        self.baseline: MetricsSnapshot | None = None
        #: Every report the scenario published, and its latest round.
        self.published = Published()
        #: Where this scenario's trackers report: the run's stream, unless a scenario points it at its own.
        self.publisher: TelemetryPublisher | None = suite.publisher
        #: Extra clean-ups a scenario registers (its own Processor instances, locks, traffic); run last first.
        self.cleanups: list[Callable[[], Awaitable[None]]] = []
        #: Extra sections for a failing step's report (e.g. what a browser page showed): title -> text.
        self.reporters: list[Callable[[], tuple[str, str]]] = []
        self._state = ScenarioState()

    def state(self, kind: type[S], make: Callable[[], S] | None = None) -> S:
        """What a feature's steps remember for later steps (support/scenario/state.py): this scenario's ``kind``,
        made by ``make`` on first use; without ``make``, the one an earlier step made."""
        return self._state.get(kind, make)

    def state_if_any(self, kind: type[S]) -> S | None:
        """This scenario's ``kind`` if an earlier step made one, else ``None``."""
        return self._state.find(kind)

    @property
    def db(self) -> Database:
        assert self.suite.db is not None
        return self.suite.db

    # -- names -> fresh ids ----------------------------------------------------------------------------

    def device(self, alias: str) -> str:
        """A fresh IMEI-like id for the tracker the scenario calls ``alias``."""
        if alias not in self.devices:
            self.devices[alias] = "35" + "".join(str(secrets.randbelow(10)) for _ in range(13))
        return self.devices[alias]

    def alias_of(self, device_id: str) -> str:
        return next((alias for alias, known in self.devices.items() if known == device_id), device_id)

    def event(self, name: str) -> str:
        assert name in self.events, f"no event called {name!r} in this scenario (known: {list(self.events)})"
        return self.events[name]

    # -- seeding ---------------------------------------------------------------------------------------

    async def add_organization(self, name: str) -> str:
        if name not in self.organizations:
            self.organizations[name] = str(uuid.uuid4())
            await self.db.add_organization(self.organizations[name], name, _slug(name))
        return self.organizations[name]

    async def add_event(self, organization: str, name: str) -> str:
        org_id = await self.add_organization(organization)
        self.events[name] = str(uuid.uuid4())
        self.event_organisations[name] = organization
        await self.db.add_event(self.events[name], org_id, name, _slug(name))
        self.suite.stub.known_events.add(self.events[name])
        return self.events[name]

    async def add_entry(self, event: str, number: str, crew: str, devices: list[str]) -> None:
        entry_id = str(uuid.uuid4())
        self.entries[(event, number)] = entry_id
        await self.db.add_entry(entry_id, self.event(event), number, crew)
        for alias in devices:
            await self.db.add_device(self.device(alias), alias)
            await self.db.assign_device(entry_id, self.device(alias))

    def car(self, number: str) -> str:
        """The entry id of the scenario's car ``number`` (e.g. ``#7``)."""
        entries = [entry_id for (_, car), entry_id in self.entries.items() if car == number]
        assert len(entries) == 1, f"expected one car {number} in this scenario, found {len(entries)}"
        return entries[0]

    async def record_positions(self, rows: Iterable[tuple[str, datetime, float, float]]) -> None:
        """Store positions as if reported long ago (``(tracker, ts, latitude, longitude)``, e.g. :class:`Position`)."""
        seeded = [(self.device(alias), ts, lat, lon) for alias, ts, lat, lon in rows]
        await self.db.add_positions(seeded)
        self.seeded.update((device_id, ts) for device_id, ts, _, _ in seeded)

    # -- people ----------------------------------------------------------------------------------------

    def person(self, name: str, *, signed_in: bool = True) -> Person:
        if name not in self.people:
            user_id = str(uuid.uuid4())
            cookie = self.suite.stub.sign_in(user_id) if signed_in else None
            self.people[name] = Person(name, user_id, cookie)
        return self.people[name]

    def cookie(self, name: str) -> str:
        """The session cookie of ``name``, who must be signed in (the CMS acts on sessions, not people)."""
        cookie = self.person(name).cookie
        assert cookie is not None, f"{name} is not signed in"
        return cookie

    def allow(self, name: str, event: str) -> None:
        self.suite.stub.grant(self.person(name).user_id, self.event(event))

    # -- viewers ---------------------------------------------------------------------------------------

    async def connect(self, name: str, *, origin: str | None = None, signed_in: bool = True,
                      processor: ProcessorProcess | None = None, receive_buffer: int | None = None) -> Viewer:
        """Open ``name``'s connection to ``processor`` (default: the run's main Processor)."""
        person = self.person(name, signed_in=signed_in)
        viewer = Viewer(name, person.cookie)
        self.viewers[name] = viewer
        await viewer.connect((processor or self.processor).live_url, origin=origin, receive_buffer=receive_buffer)
        return viewer

    @property
    def processor(self) -> ProcessorProcess:
        """The Processor the scenario's fans use when a step names none (:attr:`service`, else the main one)."""
        return self.service or self.suite.processor

    async def open_map(self, name: str, event: str, *, written: Callable[[str], str] = str) -> Frame:
        """Connect (if needed) and subscribe; return the Processor's answer for that event.

        ``written`` spells the event id as the fan's client sends it (e.g. ``str.upper``); the answer is
        recognised whatever case it names the event in, so a wrong spelling fails the step that checks it,
        with the frame in view, rather than a timeout here."""
        viewer = self.viewers.get(name) or await self.connect(name)
        assert viewer.refusal is None, f"{name}'s connection was refused: {viewer.refusal}"
        event_id = self.event(event)
        already = len(viewer.inbox)
        self.asked_at[name] = time.monotonic()
        await self.start_opening(name, event, written=written)
        self.answers[name] = await viewer.wait_for(
            lambda f: str(f.get("eventId")).lower() == event_id and f.get("type") in ("subscribed", "error"),
            timeout=ANSWER, what=f"an answer to subscribing to {event!r}", since=already,
        )
        return self.answers[name]

    async def start_opening(self, name: str, event: str, *, written: Callable[[str], str] = str) -> int:
        """Send ``name``'s request to follow ``event`` without waiting for the answer; return the inbox index
        from which the answer will be."""
        viewer = self.viewers.get(name) or await self.connect(name)
        already = len(viewer.inbox)
        await viewer.send({"type": "subscribe", "eventId": written(self.event(event))})
        return already

    async def close_map(self, name: str, event: str) -> Frame:
        """Unsubscribe ``name`` from ``event``; return the Processor's answer (``unsubscribed`` or ``error``)."""
        viewer = self.viewer(name)
        event_id = self.event(event)
        already = len(viewer.inbox)
        await viewer.send({"type": "unsubscribe", "eventId": event_id})
        return await viewer.wait_for(
            lambda f: f.get("eventId") == event_id and f.get("type") in ("unsubscribed", "error"),
            timeout=ANSWER, what=f"an answer to unsubscribing from {event!r}", since=already,
        )

    def viewer(self, name: str) -> Viewer:
        assert name in self.viewers, f"{name} has no connection (known: {list(self.viewers)})"
        return self.viewers[name]

    # -- telemetry -------------------------------------------------------------------------------------

    async def publish(self, alias: str, ts: datetime, latitude: float, longitude: float, *,
                      ts_text: str | None = None, payload: Mapping[str, float | int | None] | None = None,
                      rewrite: Callable[[dict[str, str]], None] | None = None) -> Report:
        """Publish a position as the tracker would.

        ``ts_text`` sends the time as written (e.g. with a local offset) instead of in UTC; ``payload``
        replaces the default altitude, angle, speed and satellites (``None`` leaves one out); ``rewrite`` changes
        the stream fields last (another codec, another spelling: support/trackers/formats.py)."""
        fields = car_entry(self.device(alias), ts, latitude, longitude, **(payload or {}))
        if ts_text is not None:
            fields["ts"] = ts_text
        if rewrite is not None:
            rewrite(fields)
        [report] = await self._publish([(Position(alias, ts, latitude, longitude), fields)])
        return report

    async def publish_together(self, positions: Sequence[Position]) -> list[Report]:
        """Publish ``positions`` in one MULTI/EXEC, so that the Processor reads them in one batch."""
        drafts = [(position, car_entry(self.device(position.tracker), *position[1:])) for position in positions]
        return await self._publish(drafts, at_once=True, together=True)

    async def publish_twice(self, position: Position) -> list[Report]:
        """The same report twice, back to back in one round trip, so that both usually land in one batch."""
        fields = car_entry(self.device(position.tracker), *position[1:])
        return await self._publish([(position, fields), (position, dict(fields))], at_once=True)

    async def publish_again(self, alias: str, ts: datetime) -> Report:
        """The producer retries: the very fields of ``alias``'s report of ``ts``, as a new stream entry."""
        earlier = self.published.sent_as(alias, render_ts(ts))
        assert earlier, f"{alias} has not reported a position at {ts} in this scenario"
        first = earlier[0]
        [report] = await self._publish([(Position(alias, first.ts, first.latitude, first.longitude),
                                         dict(first.fields))])
        return report

    async def publish_broken(self, alias: str, problems: Sequence[tuple[str, datetime]]) -> list[Report]:
        """One report per ``(problem, ts)``, each broken that way (support/trackers/broken.py, BREAKAGES), sent
        one after the other."""
        device_id = self.device(alias)
        return await self._publish([(Position(alias, ts, *BROKEN_PLACE), broken_entry(problem, device_id, ts))
                                    for problem, ts in problems])

    async def publish_burst(self, aliases: Sequence[str], count: int, start: datetime, *,
                            together: bool = False) -> list[Report]:
        """``count`` positions, the trackers taking turns, in one round trip (``together``: one MULTI/EXEC): the
        scenario's latest round.

        Traffic in quantity fixes no metrics baseline: no scenario counts metrics over it."""
        assert self.publisher is not None
        reports = await report_burst(self.publisher, [(alias, self.device(alias)) for alias in aliases], count, start,
                                     together=together)
        self.published.add_round(reports)
        return reports

    async def _publish(self, drafts: Sequence[Draft], *, at_once: bool = False, together: bool = False) -> list[Report]:
        """The one way a scenario's own reports go out: the first fixes the metrics baseline, each is recorded.

        Sent one after the other, or ``at_once`` in one pipelined round trip (``together``: one MULTI/EXEC)."""
        if self.baseline is None:
            self.baseline = await self.metrics()
        assert self.publisher is not None
        if at_once:
            sent_at = time.monotonic()
            ids = await stream.publish_burst(self.publisher, [fields for _, fields in drafts], together=together)
            reports = [self._report(draft, entry_id, sent_at) for draft, entry_id in zip(drafts, ids, strict=True)]
        else:
            reports = []
            for draft in drafts:
                sent_at = time.monotonic()
                reports.append(self._report(draft, await self.publisher.publish(draft[1]), sent_at))
        self.published.add(reports)
        return reports

    def _report(self, draft: Draft, entry_id: str, sent_at: float) -> Report:
        (alias, ts, latitude, longitude), fields = draft
        return Report(alias, self.device(alias), ts, latitude, longitude, entry_id, sent_at, fields)

    async def metrics(self) -> MetricsSnapshot:
        """The metrics of the Processor the scenario's fans use (:attr:`processor`)."""
        assert self.suite.http is not None
        return await scrape(self.processor.base_url, self.suite.http)

    # -- clean-up and reports --------------------------------------------------------------------------

    async def clean_up(self) -> None:
        await asyncio.gather(*(viewer.close() for viewer in self.viewers.values()), return_exceptions=True)
        failures = []
        for cleanup in reversed(self.cleanups):  # every one runs, even after another failed
            try:
                await cleanup()
            except Exception as exc:
                failures.append(exc)
        await self.db.forget(organizations=self.organizations.values(), devices=self.devices.values())
        self.suite.stub.reset_modes()  # a rotated secret, a rate limit, an outage: the next scenario finds none
        self.suite.stub.forget(
            cookies=[p.cookie for p in self.people.values() if p.cookie],
            users=[p.user_id for p in self.people.values()],
            events=list(self.events.values()),
        )
        if failures:
            raise failures[0]

    def report_text(self) -> str:
        """What a failing scenario saw: every frame, the CMS requests, the Processor's last log lines."""
        parts = ["", "---- names in this scenario ----"]
        parts += [f"  {alias}: {device_id}" for alias, device_id in self.devices.items()]
        parts += [f"  {name}: {event_id}" for name, event_id in self.events.items()]
        parts.append("---- frames received ----")
        for name, viewer in self.viewers.items():
            state = f"refused {viewer.refusal}" if viewer.refusal else f"closed {viewer.closed_with}" \
                if viewer.closed_with else "open"
            parts.append(f"  {name} ({state}): {viewer.describe_inbox()}")
        parts.append("---- published to the stream ----")
        parts += self.published.describe()
        parts.append("---- requests the CMS stub saw ----")
        parts += [f"  {request}" for request in self.suite.stub.requests_since(self.stub_mark)] or ["  none"]
        for reporter in self.reporters:
            title, text = reporter()
            parts += [f"---- {title} ----", text]
        for process in self.suite.processors:
            parts.append(f"---- last 50 lines of {process.log_path.name} ----")
            parts.append(process.tail(50))
        return "\n".join(parts)
