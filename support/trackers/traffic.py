"""Trackers reporting in quantity: bursts, continuous traffic and deliberately broken reports.

Every report is kept as a :class:`Report` (which tracker, which time, which stream entry it became, when it was
sent), so scenarios can compare exactly what was sent with what was stored and what each fan received.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from ..clock import SETTLE
from ..waiting import eventually
from .publisher import TelemetryPublisher, car_entry, position_entry
from .record import Published, Report
from .stream import publish_burst

#: How often a tracker of continuous traffic reports. This is the producer's cadence (the rate of the modelled
#: rally), not a wait for an outcome: nothing is awaited by it.
TRAFFIC_CADENCE = 0.005


def _place(index: int) -> tuple[float, float]:
    """A plausible spot near Tirana, different for every report of a run of traffic."""
    return round(41.30 + index * 1e-5, 6), round(19.80 + index * 1e-5, 6)


def _entry(device_id: str, ts: datetime, latitude: float, longitude: float) -> dict[str, str]:
    return car_entry(device_id, ts, latitude, longitude)


async def report_burst(publisher: TelemetryPublisher, trackers: Sequence[tuple[str, str]], count: int,
                       start: datetime, step: timedelta = timedelta(milliseconds=100)) -> list[Report]:
    """``count`` positions, the trackers ``(alias, device_id)`` taking turns, each tracker's clock advancing by
    ``step``; all sent in one round trip so they reach the Processor as a burst."""
    planned = []
    for index in range(count):
        alias, device_id = trackers[index % len(trackers)]
        ts = start + step * (index // len(trackers))
        planned.append((alias, device_id, ts, *_place(index)))
    sent_at = time.monotonic()
    entries = [_entry(device_id, ts, lat, lon) for _, device_id, ts, lat, lon in planned]
    ids = await publish_burst(publisher, entries)
    return [Report(alias, device_id, ts, lat, lon, entry_id, sent_at, fields)
            for (alias, device_id, ts, lat, lon), entry_id, fields in zip(planned, ids, entries, strict=False)]


class ContinuousTraffic:
    """Trackers reporting one after another, without pause between rounds, until :meth:`stop`: a rally in
    progress that fans join in the middle of. Once stopped, everything it reported is ``record``'s latest round."""

    def __init__(self, publisher: TelemetryPublisher, trackers: Sequence[tuple[str, str]], start: datetime,
                 record: Published, step: timedelta = timedelta(milliseconds=100),
                 cadence: float = TRAFFIC_CADENCE) -> None:
        self.publisher = publisher
        self.record = record
        self.trackers = list(trackers)
        self.start_ts = start
        self.step = step
        self.cadence = cadence
        self.reports: list[Report] = []
        self.failure: BaseException | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = asyncio.Event()
        self._recorded = False

    async def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="continuous-traffic")

    async def _run(self) -> None:
        index = 0
        try:
            while not self._stopping.is_set():
                alias, device_id = self.trackers[index % len(self.trackers)]
                ts = self.start_ts + self.step * (index // len(self.trackers))
                lat, lon = _place(index)
                sent_at = time.monotonic()
                fields = _entry(device_id, ts, lat, lon)
                entry_id = await self.publisher.publish(fields)
                self.reports.append(Report(alias, device_id, ts, lat, lon, entry_id, sent_at, fields))
                index += 1
                try:  # producer cadence: TRAFFIC_CADENCE above; stop() interrupts it at once
                    await asyncio.wait_for(self._stopping.wait(), self.cadence)
                except TimeoutError:
                    continue  # the cadence elapsed: report the next position
        except BaseException as exc:  # a dead producer must fail the scenario, not stall it silently
            self.failure = exc
            raise

    async def wait_reported(self, count: int, *, timeout: float = SETTLE) -> None:
        """Return once ``count`` reports in total have been sent."""

        async def enough() -> tuple[bool, str]:
            if self.failure is not None:
                raise AssertionError(f"the traffic stopped: {self.failure!r}")
            return len(self.reports) >= count, f"{len(self.reports)} reports sent"

        await eventually(enough, timeout=timeout, what=f"{count} reports of continuous traffic")

    async def stop(self) -> None:
        """Stop reporting and record the round; idempotent (also the scenario's clean-up)."""
        self._stopping.set()
        if self._task is not None:
            await asyncio.gather(self._task, return_exceptions=True)
        if not self._recorded:
            self._recorded = True
            self.record.add_round(self.reports)
        if self.failure is not None and not isinstance(self.failure, asyncio.CancelledError):
            raise AssertionError(f"the traffic stopped early: {self.failure!r}")


# -- broken reports (docs/processor.md, section 3, "Malformed entries") ------------------------------------

#: Where a broken report's valid original puts the car (latitude, longitude).
BROKEN_PLACE = (41.33, 19.82)


@dataclass
class BrokenReports:
    """The scenario's broken reports, by the problem its feature file names (in the world's state)."""

    by_problem: dict[str, Report] = field(default_factory=dict)


def _not_json(fields: dict[str, str], _: re.Match[str]) -> None:
    fields["payload"] = fields["payload"][:-1]  # drop the closing brace


def _no_device(fields: dict[str, str], _: re.Match[str]) -> None:
    del fields["device_id"]


def _latitude(fields: dict[str, str], match: re.Match[str]) -> None:
    fields["payload"] = fields["payload"].replace(f'"latitude": {BROKEN_PLACE[0]}', f'"latitude": {float(match[1])}', 1)


def _codec(fields: dict[str, str], match: re.Match[str]) -> None:
    fields["codec"] = match[1]


#: What a feature file may say is wrong with a report, and how to break a valid entry that way.
BREAKAGES: list[tuple[str, Callable[[dict[str, str], re.Match[str]], None]]] = [
    (r"the payload is not JSON", _not_json),
    (r"the tracker id is missing", _no_device),
    (r"the latitude is (-?[0-9]+(?:\.[0-9]+)?)", _latitude),
    (r"the codec is ([0-9A-Za-z]+)", _codec),
]


def broken_entry(problem: str, device_id: str, ts: datetime) -> dict[str, str]:
    """A valid entry for ``device_id`` at ``ts``, broken the way ``problem`` says (see :data:`BREAKAGES`)."""
    fields = position_entry(device_id, ts, *BROKEN_PLACE)
    for pattern, breakage in BREAKAGES:
        match = re.fullmatch(pattern, problem.strip())
        if match:
            breakage(fields, match)
            return fields
    raise ValueError(f"no way to break a report like {problem!r}; the suite knows: "
                     f"{', '.join(pattern for pattern, _ in BREAKAGES)}")
