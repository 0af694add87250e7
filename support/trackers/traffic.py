"""Trackers reporting in quantity: bursts and continuous traffic (broken reports: support/trackers/broken.py).

Every report is kept as a :class:`Report` (which tracker, which time, which stream entry it became, when it was
sent), so scenarios can compare exactly what was sent with what was stored and what each fan received.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from datetime import datetime, timedelta

from ..clock import SETTLE
from ..waiting import eventually
from .publisher import TelemetryPublisher, car_entry
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
                       start: datetime, step: timedelta = timedelta(milliseconds=100), *,
                       together: bool = False) -> list[Report]:
    """``count`` positions, the trackers ``(alias, device_id)`` taking turns, each tracker's clock advancing by
    ``step``; all sent in one round trip so they reach the Processor as a burst (``together``: in one MULTI/EXEC,
    so that all of them are in the stream before the Processor's next read)."""
    planned = []
    for index in range(count):
        alias, device_id = trackers[index % len(trackers)]
        ts = start + step * (index // len(trackers))
        planned.append((alias, device_id, ts, *_place(index)))
    sent_at = time.monotonic()
    entries = [_entry(device_id, ts, lat, lon) for _, device_id, ts, lat, lon in planned]
    ids = await publish_burst(publisher, entries, together=together)
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
