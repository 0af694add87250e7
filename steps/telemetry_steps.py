"""Trackers reporting positions through the telemetry stream: one at a time, in bursts, continuously, broken."""

from datetime import UTC, datetime, timedelta

from behave import given, then, when
from behave.runner import Context
from hamcrest import assert_that, contains_inanyorder, empty, equal_to, has_entries, is_not

from support.clock import ANSWER, SETTLE
from support.scenario.world import parse_time
from support.trackers.publisher import car_entry, render_ts
from support.trackers.stream import DeadLetter, dead_letters, delete_dead_letters, publish_burst
from support.trackers.traffic import ContinuousTraffic, Report, broken_entry, report_burst, split_names
from support.waiting import eventually

#: Where generated traffic starts on each tracker's clock (after every position a feature file names).
TRAFFIC_START = datetime(2026, 5, 2, 12, 0, tzinfo=UTC)
#: Where broken reports sit on the clock: apart from everything else, so "not stored" is unambiguous.
BROKEN_START = datetime(2026, 5, 2, 13, 0, tzinfo=UTC)
#: The reasons as the feature file words them -> the reason codes of docs/processor.md ("Dead letters").
REASONS = {
    "unreadable": "bad_json",
    "a required detail is missing": "missing_field",
    "the latitude is impossible": "latitude_out_of_range",
    "the format is unknown": "unknown_codec",
}


def _trackers(context: Context, aliases: list[str]) -> list[tuple[str, str]]:
    return [(alias, context.world.device(alias)) for alias in aliases]


def _remember(context: Context, reports: list[Report]) -> None:
    """Keep the latest round of reports (what "them" and "new positions" refer to) and all of them."""
    context.world.notes.reports = reports
    context.world.notes.all_reports = [*context.world.notes.all_reports, *reports]
    if reports:
        aliases = sorted({report.alias for report in reports})
        context.world.published.append((", ".join(aliases), f"{reports[0].entry_id} … {reports[-1].entry_id}",
                                        {"reports": str(len(reports))}))


def _next_start(context: Context) -> datetime:
    earlier = context.world.notes.all_reports
    return max((report.ts for report in earlier), default=TRAFFIC_START - timedelta(seconds=1)) + timedelta(seconds=1)


@when("{tracker} reports the position {latitude:g}, {longitude:g} at {time}")
def step_report(context, tracker, latitude, longitude, time):
    context.suite.run(context.world.report(tracker, parse_time(time), latitude, longitude))


@when("{tracker}'s report of {time} arrives once more")
def step_report_again(context: Context, tracker: str, time: str) -> None:
    """The producer retries: the very same fields, as a new stream entry."""
    world = context.world
    ts = render_ts(parse_time(time))
    earlier = [fields for alias, _, fields in world.published if alias == tracker and fields.get("ts") == ts]
    assert earlier, f"{tracker} has not reported a position at {time} in this scenario"
    entry_id = context.suite.run(world.publisher.publish(dict(earlier[0])))
    world.published.append((tracker, entry_id, dict(earlier[0])))


@when("{tracker}'s position {latitude:g}, {longitude:g} at {time} arrives twice in a row")
def step_report_twice(context: Context, tracker: str, latitude: float, longitude: float, time: str) -> None:
    """The same report twice, back to back in one round trip, so that both usually land in one batch."""
    world = context.world
    if world.baseline is None:
        world.baseline = context.suite.run(world.metrics())
    fields = car_entry(world.device(tracker), parse_time(time), latitude, longitude)
    for entry_id in context.suite.run(publish_burst(world.publisher, [fields, dict(fields)])):
        world.published.append((tracker, entry_id, dict(fields)))


@given('the trackers of the "{event}" have reported {count:d} positions in a burst')
@when('the trackers of the "{event}" report {count:d} positions in a burst')
def step_burst(context: Context, event: str, count: int) -> None:
    world = context.world
    devices = set(context.suite.run(world.db.devices_of_event(world.event(event))))
    trackers = [(alias, device_id) for alias, device_id in world.devices.items() if device_id in devices]
    assert trackers, f"no tracker is on a car of the {event}"
    reports = context.suite.run(report_burst(world.publisher, trackers, count, _next_start(context)))
    _remember(context, reports)


@when("{trackers} each report {count:d} positions, taking turns")
def step_rounds(context: Context, trackers: str, count: int) -> None:
    aliases = split_names(trackers)
    reports = context.suite.run(report_burst(context.world.publisher, _trackers(context, aliases),
                                             count * len(aliases), _next_start(context)))
    _remember(context, reports)


# -- continuous traffic --------------------------------------------------------------------------------

@given("{trackers} keep reporting their positions")
def step_keep_reporting(context: Context, trackers: str) -> None:
    """Start the traffic and return once the Processor is visibly storing it: fans join a rally in progress."""
    world = context.world
    devices = _trackers(context, split_names(trackers))
    traffic = ContinuousTraffic(world.publisher, devices, _next_start(context))
    world.cleanups.append(traffic.stop)
    context.world.notes.traffic = traffic
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
def step_traffic_stops(context: Context, count: int) -> None:
    traffic: ContinuousTraffic = context.world.notes.traffic
    context.suite.run(traffic.wait_reported(len(traffic.reports) + count))
    context.suite.run(traffic.stop())
    _remember(context, list(traffic.reports))


# -- broken reports ------------------------------------------------------------------------------------

@when("{tracker} sends these broken reports:")
def step_broken(context: Context, tracker: str) -> None:
    """Each row breaks one otherwise valid report of ``tracker`` (support/trackers/traffic.py, BREAKAGES)."""
    world = context.world
    if world.baseline is None:
        world.baseline = context.suite.run(world.metrics())
    context.world.notes.broken = {}
    for index, row in enumerate(context.table):
        ts = BROKEN_START + timedelta(seconds=index)
        fields = broken_entry(row["problem"], world.device(tracker), ts)
        entry_id = context.suite.run(world.publisher.publish(fields))
        world.published.append((tracker, entry_id, fields))
        context.world.notes.broken[row["problem"].strip()] = (entry_id, fields, ts)
    redis, stream = world.publisher.redis, world.publisher.stream

    async def forget_dead_letters() -> None:
        ids = [entry_id for entry_id, _, _ in context.world.notes.broken.values()]
        await delete_dead_letters(redis, stream, await dead_letters(redis, stream, ids))

    world.cleanups.append(forget_dead_letters)


@then("the broken reports are set aside, untouched, with these reasons:")
def step_dead_letters(context: Context) -> None:
    """Read ``<stream>:dead`` itself: one entry per broken report, its fields intact, plus reason, detail and
    the id of the report it came from."""
    world = context.world
    unknown = [row["reason"] for row in context.table if row["reason"].strip() not in REASONS]
    assert not unknown, f"no reason called {unknown} (known: {list(REASONS)})"
    expected = {row["problem"].strip(): REASONS[row["reason"].strip()] for row in context.table}
    notes = context.world.notes
    assert_that(sorted(expected), equal_to(sorted(notes.broken)), "the table names other reports than were sent")
    by_source = {entry_id: problem for problem, (entry_id, _, _) in context.world.notes.broken.items()}
    redis, stream = world.publisher.redis, world.publisher.stream

    async def all_set_aside() -> tuple[bool, list[DeadLetter]]:
        letters = await dead_letters(redis, stream, by_source)
        return len(letters) >= len(by_source), letters

    letters = context.suite.run(eventually(all_set_aside, timeout=ANSWER,
                                           what=f"{len(by_source)} entries in {stream}:dead"))
    assert_that([letter.source_id for letter in letters], contains_inanyorder(*by_source),
                f"dead letters for each broken report once; got {[letter.fields for letter in letters]}")
    for letter in letters:
        problem = by_source[letter.source_id]
        _, fields, _ = context.world.notes.broken[problem]
        assert_that(letter.fields, has_entries({**fields, "reason": expected[problem], "source_id": letter.source_id}),
                    f"the dead letter of the report where {problem}")
        assert_that(letter.fields.get("detail", ""), is_not(empty()), f"the detail of the report where {problem}")  # type: ignore[arg-type]  # PyHamcrest's nested generic matchers: mypy infers Matcher[Never]


# -- what a report carries, and how reports arrive -------------------------------------------------------

#: The columns of a feature file's "reports this position" table, and the payload key each one fills.
CAR_TELEMETRY = {"speed (km/h)": "speed", "heading (°)": "angle", "altitude (m)": "altitude",
                 "satellites": "satellites"}


@when("{tracker} reports the position {latitude:g}, {longitude:g} with its local clock reading {local}")
def step_report_local_time(context: Context, tracker: str, latitude: float, longitude: float, local: str) -> None:
    """The time exactly as the tracker writes it, offset and all (e.g. ``2026-05-02T13:02:00.000+02:00``)."""
    instant = datetime.fromisoformat(local.strip())
    assert instant.utcoffset(), f"{local!r} is not a local time with an offset from UTC"
    context.suite.run(context.world.report(tracker, instant.astimezone(UTC), latitude, longitude,
                                           ts_text=local.strip()))


@when("{tracker} reports this position at {time}:")
def step_report_with_telemetry(context: Context, tracker: str, time: str) -> None:
    """One row: latitude, longitude and the car's speed, heading, altitude and satellites (CAR_TELEMETRY)."""
    assert len(context.table.rows) == 1, "one position per step"
    row = context.table[0]
    payload = {key: float(row[column]) for column, key in CAR_TELEMETRY.items()}
    payload["satellites"] = int(row["satellites"])
    notes = context.world.notes
    notes.reported_car = (tracker, parse_time(time), float(row["latitude"]), float(row["longitude"]), payload)
    context.suite.run(context.world.report(tracker, parse_time(time), float(row["latitude"]),
                                           float(row["longitude"]), **payload))


@when("{tracker}'s report of {time} arrives {count:d} more times")
def step_report_again_times(context: Context, tracker: str, time: str, count: int) -> None:
    for _ in range(count):
        step_report_again(context, tracker, time)


def _publish_together(context: Context, planned: list[tuple[str, datetime, float, float]]) -> None:
    """Send ``(tracker, ts, latitude, longitude)`` reports in one MULTI/EXEC, so they are read in one batch."""
    world = context.world
    if world.baseline is None:
        world.baseline = context.suite.run(world.metrics())
    entries = [car_entry(world.device(alias), ts, lat, lon) for alias, ts, lat, lon in planned]
    ids = context.suite.run(publish_burst(world.publisher, entries, together=True))
    for (alias, _, _, _), entry_id, fields in zip(planned, ids, entries, strict=False):
        world.published.append((alias, entry_id, fields))
    context.world.notes.together = [(world.device(alias), render_ts(ts)) for alias, ts, _, _ in planned]


@when("{trackers} report these positions at the same moment:")
def step_report_together(context: Context, trackers: str) -> None:
    _publish_together(context, [(row["tracker"], parse_time(row["time (UTC)"]), float(row["latitude"]),
                                 float(row["longitude"])) for row in context.table])


@when("{tracker} sends the positions it could not send before, all at once and out of order:")
def step_backlog(context: Context, tracker: str) -> None:
    """A tracker back in coverage uploads its backlog; the rows are sent in the order of the table, which
    must be neither oldest nor newest first, so that only sorting by time, not keeping or reversing the order
    of arrival (which a database join may do by accident), shows them in time order."""
    rows = [(tracker, parse_time(row["time (UTC)"]), float(row["latitude"]), float(row["longitude"]))
            for row in context.table]
    times = [ts for _, ts, _, _ in rows]
    assert times not in (sorted(times), sorted(times, reverse=True)), "the table must list the backlog out of order"
    _publish_together(context, rows)
