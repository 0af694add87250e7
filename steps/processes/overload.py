"""An instance that falls behind the live channel: its fans are told to come back, and come back to the present.

The overload itself is :func:`support.processes.overload.overwhelm`; the instances are the scenario's own
(:class:`support.processes.instances.ScenarioInstances`), each in a consumer group of its own so that the overwhelmed
one owes nothing to the stream while it is frozen.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from behave import given, then, when
from hamcrest import (
    all_of,
    assert_that,
    equal_to,
    greater_than_or_equal_to,
    has_entries,
    has_item,
    less_than,
)

from support.clock import SETTLE
from support.fans.viewer import Frame
from support.processes.instances import ScenarioInstances, instances_of
from support.processes.overload import LAG_BOUND_MS, overwhelm
from support.scenario.gherkin import StepContext
from support.trackers.publisher import render_ts
from support.waiting import eventually

#: WebSocket close code "try again later" (docs/processor.md, "Close codes"): the fan reconnects.
TRY_AGAIN_LATER = 1013
OVERLOAD_REPORTS_START = datetime(2026, 5, 2, 16, 0, tzinfo=UTC)


#: The close reason of a fan shed because its instance fell behind (docs/processor.md, "Close codes").
BEHIND_REASON = "live map fell behind, reconnect"
DISPATCH_LAG = "processor_live_dispatch_lag_seconds"
SLOW_CONSUMERS = "processor_slow_consumer_disconnects_total"
#: More than any freeze of these scenarios lasts: a dispatch lag beyond it is in another unit, not seconds.
LONGEST_FREEZE = 60.0


@dataclass
class Overload:
    """What these steps remember: which instance was overwhelmed, and the answer a fan got on coming back."""

    frozen: str | None = None
    back: Frame | None = None


@given("the service in the {name} hall lets its fans fall only a moment behind (a test setting; the product "
       "allows 5 seconds)")
def step_bounded_processor(context: StepContext, name: str) -> None:
    """``PROCESSOR_LIVE_LAG_LIMIT_MS`` short (the default is 5 s)."""
    instances_of(context.world).start(name, group=f"group-{name}", PROCESSOR_LIVE_LAG_LIMIT_MS=str(LAG_BOUND_MS))


@given("the service in the {name} hall stores every report of the same trackers as well")
def step_storing_processor(context: StepContext, name: str) -> None:
    instances_of(context.world).start(name, group=f"group-{name}")


@when("the service in the {name} hall is overwhelmed while {tracker} reports {count:d} positions")
def step_overwhelmed(context: StepContext, name: str, tracker: str, count: int) -> None:
    instances = instances_of(context.world)
    frozen = instances.instance(name)
    storing = next(i for n, i in instances.instances.items() if n != name)
    context.world.state(Overload, Overload).frozen = name
    context.suite.run(overwhelm(context.world, instances, frozen, storing, tracker, count, OVERLOAD_REPORTS_START))


@then("{person} is told that {pronoun} live map fell behind and to come back")
def step_told_to_come_back(context: StepContext, person: str, pronoun: str) -> None:
    """Closed with 1013 and the reason of section 4 ("Close codes"), which tells it from a slow consumer's."""
    closed = context.suite.run(context.world.viewer(person).wait_closed(timeout=SETTLE))
    assert_that(closed, equal_to((TRY_AGAIN_LATER, BEHIND_REASON)), f"how {person}'s connection ended")


@then("the service in the {name} hall has counted {count:d} fan it could not keep up to date")
def step_counted_behind(context: StepContext, name: str, count: int) -> None:
    instances = context.world.state(ScenarioInstances)
    metric = "processor_live_behind_disconnects_total"

    async def counted() -> tuple[bool, float]:
        value = (await instances.metrics(name)).value(metric)
        return value >= count, value

    value = context.suite.run(eventually(counted, timeout=SETTLE,
                                         what=f"{metric} on Processor {name} to reach {count}"))
    assert_that(value, equal_to(count), f"{metric} on Processor {name}")


@then("the operator sees how late the news reached it, and that {person} was not counted as too slow")
def step_lag_seen(context: StepContext, person: str) -> None:
    """On the overwhelmed instance: ``processor_live_dispatch_lag_seconds`` shows the age of the last message it
    dispatched, at least its bound (it was frozen past it), in seconds; a fan shed for falling behind is not a
    slow consumer (``processor_slow_consumer_disconnects_total`` stays 0 on this instance of the scenario's own)."""
    name = context.world.state(Overload).frozen
    assert name is not None, "no instance was overwhelmed in this scenario"
    metrics = context.suite.run(context.world.state(ScenarioInstances).metrics(name))
    assert_that(metrics.value(DISPATCH_LAG), all_of(greater_than_or_equal_to(LAG_BOUND_MS / 1000),
                                                    less_than(LONGEST_FREEZE)),
                f"{DISPATCH_LAG} of Processor {name} (seconds; its bound is {LAG_BOUND_MS} ms)")
    assert_that(metrics.value(SLOW_CONSUMERS), equal_to(0), f"{SLOW_CONSUMERS} of Processor {name}")


@when('{person} comes back to the "{event}" through the service in the {name} hall')
def step_comes_back(context: StepContext, person: str, event: str, name: str) -> None:
    world = context.world
    context.suite.run(world.connect(person, processor=world.state(ScenarioInstances).instance(name).process))
    back = world.state(Overload, Overload).back = context.suite.run(world.open_map(person, event))
    assert_that(back, has_entries(type="subscribed"), f"{person} could not open the map of {event} again")


@then("{person} sees where {tracker} is now")
def step_sees_now(context: StepContext, person: str, tracker: str) -> None:
    """The snapshot shows the tracker's latest report, the one reported while the instance was overwhelmed."""
    device_id = context.world.device(tracker)
    latest = max((r for r in context.world.published.latest_round if r.device_id == device_id), key=lambda r: r.ts)
    back = context.world.state(Overload).back
    assert back is not None, f"{person} did not come back in this scenario"
    assert_that(back["snapshot"], has_item(has_entries(deviceId=device_id, ts=render_ts(latest.ts),  # type: ignore[arg-type]  # PyHamcrest's nested generic matchers: mypy infers Matcher[Never]
                                                       lat=latest.latitude, lon=latest.longitude)),
                f"{person}'s map after coming back")
