"""Reports written in the less common ways the contract accepts (another codec, another spelling of the time, a
detail the service does not know, the edges of the ranges, a tracker id as long as allowed), and sensor readings
that plain numbers cannot carry exactly: how they are sent (support/trackers/formats.py) and what is stored."""

from __future__ import annotations

import json
from datetime import datetime

from behave import given, then, when
from hamcrest import assert_that, equal_to

from support.clock import ANSWER
from support.scenario.gherkin import StepContext
from support.trackers.formats import SensorReadings, longest_device_id, rewrite_for, sensor_readings, stored_io, with_io
from support.waiting import eventually


@when("{tracker} sends the position {latitude:g}, {longitude:g} at {time:Time}, written {how}")
def step_report_written(context: StepContext, tracker: str, latitude: float, longitude: float, time: datetime,
                        how: str) -> None:
    """A car's ordinary report, rewritten the way ``how`` says (support/trackers/formats.py, WRITINGS)."""
    context.suite.run(context.world.publish(tracker, time, latitude, longitude, rewrite=rewrite_for(how)))


@given("{tracker}'s id is as long as allowed, made of letters, digits and the signs _ . : -")
def step_longest_id(context: StepContext, tracker: str) -> None:
    """Named before anything else mentions the tracker, so every later step uses this id."""
    world = context.world
    assert tracker not in world.devices, f"{tracker} already has an id in this scenario: {world.devices[tracker]}"
    world.devices[tracker] = longest_device_id()


@when("{tracker} reports its sensor readings with the position {latitude:g}, {longitude:g} at {time:Time}:")
def step_report_sensors(context: StepContext, tracker: str, latitude: float, longitude: float,
                        time: datetime) -> None:
    """Each row: ``sensor`` (its IO element id), ``reading`` and how it is ``written as``: a plain number, a big
    number (``$bigint``), bytes (hex in the table, ``$bytes`` on the stream) or a record, as is."""
    rows = [(row["sensor"].strip(), row["reading"].strip(), row["written as"]) for row in context.table]
    readings = context.world.state(SensorReadings, lambda: sensor_readings(rows))
    context.suite.run(context.world.publish(tracker, time, latitude, longitude, rewrite=with_io(readings.written)))


@then("the position of {tracker} at {time:Time} is stored with exactly those sensor readings")
def step_stored_sensors(context: StepContext, tracker: str, time: datetime) -> None:
    """``positions.io`` holds the readings in the sentinel encoding, spelt canonically (docs/processor.md,
    section 7): what the suite's own encoder writes for the values they stand for."""
    world = context.world
    device_id = world.device(tracker)
    expected = stored_io(world.state(SensorReadings).values)

    async def stored() -> tuple[bool, str | None]:
        text = await world.db.io_of(device_id, time)
        return text is not None, text

    text = context.suite.run(eventually(stored, timeout=ANSWER, what=f"{tracker}'s position at {time} with its io"))
    assert text is not None
    assert_that(json.loads(text), equal_to(expected), f"positions.io of {tracker} at {time} (as stored: {text})")
