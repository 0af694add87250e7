"""Trackers reporting positions through the telemetry stream: one at a time, at the same moment, in bursts,
continuously (broken reports: steps/trackers/broken.py). The World publishes every report and records it
(support/trackers/record.py)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from behave import given, when

from support.clock import SETTLE
from support.scenario.gherkin import StepContext, positions
from support.trackers.record import Position
from support.trackers.traffic import ContinuousTraffic
from support.waiting import eventually

#: Where generated traffic starts on each tracker's clock (after every position a feature file names).
TRAFFIC_START = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)
#: Where the reports a tracker sends during an outage sit on the clock.
OUTAGE_REPORTS_START = datetime(2026, 5, 2, 14, 0, tzinfo=UTC)
#: The columns of a feature file's "reports this position" table, and the payload key each one fills.
CAR_TELEMETRY = {"speed (km/h)": "speed", "heading (°)": "angle", "altitude (m)": "altitude",
                 "satellites": "satellites"}
#: A cell of that table for a detail the tracker leaves out of its report.
NOT_SENT = "not sent"


def _next_start(context: StepContext) -> datetime:
    """Generated traffic goes on one second after the last round, so each tracker's clock keeps moving forward."""
    end = context.world.published.rounds_end()
    return TRAFFIC_START if end is None else end + timedelta(seconds=1)


# -- one at a time ----------------------------------------------------------------------------------------

@when("{tracker} reports the position {latitude:g}, {longitude:g} at {time:Time}")
def step_report(context: StepContext, tracker: str, latitude: float, longitude: float, time: datetime) -> None:
    context.suite.run(context.world.publish(tracker, time, latitude, longitude))


@when("{tracker}'s report of {time:Time} arrives once more")
def step_report_again(context: StepContext, tracker: str, time: datetime) -> None:
    """The producer retries: the very same fields, as a new stream entry."""
    context.suite.run(context.world.publish_again(tracker, time))


@when("{tracker}'s report of {time:Time} arrives {count:d} more times")
def step_report_again_times(context: StepContext, tracker: str, time: datetime, count: int) -> None:
    for _ in range(count):
        context.suite.run(context.world.publish_again(tracker, time))


@when("{tracker}'s position {latitude:g}, {longitude:g} at {time:Time} arrives twice in a row")
def step_report_twice(context: StepContext, tracker: str, latitude: float, longitude: float, time: datetime) -> None:
    """The same report twice, back to back in one round trip, so that both usually land in one batch."""
    context.suite.run(context.world.publish_twice(Position(tracker, time, latitude, longitude)))


@when("{tracker} reports the position {latitude:g}, {longitude:g} with its local clock reading {local}")
def step_report_local_time(context: StepContext, tracker: str, latitude: float, longitude: float, local: str) -> None:
    """The time exactly as the tracker writes it, offset and all (e.g. ``2026-05-02T13:02:00.000+02:00``)."""
    instant = datetime.fromisoformat(local.strip())
    assert instant.utcoffset(), f"{local!r} is not a local time with an offset from UTC"
    context.suite.run(context.world.publish(tracker, instant.astimezone(UTC), latitude, longitude,
                                            ts_text=local.strip()))


@when("{tracker} reports this position at {time:Time}:")
def step_report_with_telemetry(context: StepContext, tracker: str, time: datetime) -> None:
    """One row: latitude, longitude and the car's speed, heading, altitude and satellites (CAR_TELEMETRY); a cell
    reading ``not sent`` leaves that detail out of the report."""
    assert len(context.table.rows) == 1, "one position per step"
    row = context.table[0]
    payload: dict[str, float | int | None] = {
        key: None if row[column].strip() == NOT_SENT else float(row[column]) for column, key in CAR_TELEMETRY.items()}
    if payload["satellites"] is not None:
        payload["satellites"] = int(row["satellites"])
    context.suite.run(context.world.publish(tracker, time, float(row["latitude"]), float(row["longitude"]),
                                            payload=payload))


# -- at the same moment ------------------------------------------------------------------------------------

@when("{trackers} report these positions at the same moment:")
def step_report_together(context: StepContext, trackers: str) -> None:
    context.suite.run(context.world.publish_together(positions(context.table)))


@when("{tracker} sends the positions it could not send before, all at once and out of order:")
def step_backlog(context: StepContext, tracker: str) -> None:
    """A tracker back in coverage uploads its backlog; the rows are sent in the order of the table, which
    must be neither oldest nor newest first, so that only sorting by time, not keeping or reversing the order
    of arrival (which a database join may do by accident), shows them in time order."""
    rows = positions(context.table, tracker)
    times = [row.ts for row in rows]
    assert times not in (sorted(times), sorted(times, reverse=True)), "the table must list the backlog out of order"
    context.suite.run(context.world.publish_together(rows))


@when("{trackers:Names} send {count:d} positions they could not send before, all at once and out of order")
def step_backlog_generated(context: StepContext, trackers: list[str], count: int) -> None:
    """Trackers back in coverage upload their backlogs together: ``count`` positions, the trackers taking turns a
    second apart, sent in one round trip in a scrambled order (neither oldest nor newest first), so that only
    sorting by time shows them in time order."""
    start = _next_start(context)
    planned = [Position(trackers[index % len(trackers)], start + timedelta(seconds=index),
                        round(41.30 + index * 1e-4, 6), round(19.80 + index * 1e-4, 6)) for index in range(count)]
    order = list(range(count))
    random.Random(count).shuffle(order)  # the same scrambled order every run
    assert order not in (sorted(order), sorted(order, reverse=True)), "the backlog must be sent out of order"
    context.suite.run(context.world.publish_together([planned[index] for index in order]))


# -- in bursts ---------------------------------------------------------------------------------------------

def _burst(context: StepContext, event: str, count: int, *, together: bool = False) -> None:
    world = context.world
    devices = set(context.suite.run(world.db.devices_of_event(world.event(event))))
    aliases = [alias for alias, device_id in world.devices.items() if device_id in devices]
    assert aliases, f"no tracker is on a car of the {event}"
    context.suite.run(world.publish_burst(aliases, count, _next_start(context), together=together))


@given('the trackers of the "{event}" have reported {count:d} positions in a burst')
@when('the trackers of the "{event}" report {count:d} positions in a burst')
def step_burst(context: StepContext, event: str, count: int) -> None:
    _burst(context, event, count)


@when('the trackers of the "{event}" report {count:Count} positions at the same moment')
def step_burst_together(context: StepContext, event: str, count: int) -> None:
    """In one MULTI/EXEC: all of them are in the stream before the Processor's next read, a backlog."""
    _burst(context, event, count, together=True)


@when("{tracker} reports {count:d} positions in a burst")
def step_tracker_burst(context: StepContext, tracker: str, count: int) -> None:
    context.suite.run(context.world.publish_burst([tracker], count, _next_start(context)))


@when("{trackers:Names} each report {count:d} positions, taking turns")
def step_rounds(context: StepContext, trackers: list[str], count: int) -> None:
    context.suite.run(context.world.publish_burst(trackers, count * len(trackers), _next_start(context)))


@when("{tracker} reports {count:d} positions meanwhile")
def step_reports_meanwhile(context: StepContext, tracker: str, count: int) -> None:
    """Reports that touch nothing but the stream (the suite's own database may be down too)."""
    context.suite.run(context.world.publish_burst([tracker], count, OUTAGE_REPORTS_START))


# -- continuous traffic --------------------------------------------------------------------------------

@given("{trackers:Names} keep reporting their positions")
def step_keep_reporting(context: StepContext, trackers: list[str]) -> None:
    """Start the traffic and return once the Processor is visibly storing it: fans join a rally in progress."""
    world = context.world
    assert world.publisher is not None
    publisher, devices = world.publisher, [(alias, world.device(alias)) for alias in trackers]
    start = _next_start(context)
    traffic = world.state(ContinuousTraffic, lambda: ContinuousTraffic(publisher, devices, start, world.published))
    world.cleanups.append(traffic.stop)
    context.suite.run(traffic.start())
    minimum = 10 * len(devices)
    context.suite.run(traffic.wait_reported(minimum))

    async def flowing() -> tuple[bool, int]:
        rows = await world.db.positions_of_devices([device_id for _, device_id in devices])
        stored = sum(1 for row in rows if row.ts >= traffic.start_ts)
        return stored >= minimum // 2, stored

    context.suite.run(eventually(flowing, timeout=SETTLE,
                                 what=f"at least {minimum // 2} positions of the traffic stored"))


@when("the trackers report {count:d} more positions and stop")
def step_traffic_stops(context: StepContext, count: int) -> None:
    """Once stopped, everything the traffic reported is the scenario's latest round."""
    traffic = context.world.state(ContinuousTraffic)
    context.suite.run(traffic.wait_reported(len(traffic.reports) + count))
    context.suite.run(traffic.stop())
