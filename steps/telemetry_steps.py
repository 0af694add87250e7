"""Trackers reporting positions through the telemetry stream."""

from behave import when

from support.world import parse_time


@when("{tracker} reports the position {latitude:g}, {longitude:g} at {time}")
def step_report(context, tracker, latitude, longitude, time):
    context.suite.run(context.world.report(tracker, parse_time(time), latitude, longitude))
