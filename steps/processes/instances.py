"""Several Processor instances on a scenario's own telemetry stream: started, killed, and what they still owe.

The instances and the stream are :class:`support.processes.instances.ScenarioInstances`; what the group owes is
read from Redis (``XPENDING``), what was stored from PostgreSQL, never from the instances themselves.
"""

from __future__ import annotations

from dataclasses import dataclass

from behave import given, then, when
from hamcrest import assert_that, equal_to, only_contains

from support.clock import CATCH_UP, SETTLE
from support.processes.instances import instances_of
from support.processes.slow_link import SlowLink
from support.scenario.gherkin import StepContext
from support.trackers.stream import Pending
from support.waiting import eventually


@given("the services in the {first} and {second} halls each store every report of the trackers")
def step_two_groups(context: StepContext, first: str, second: str) -> None:
    """One consumer group each: both instances get every entry, so both store every position."""
    instances = instances_of(context.world)
    for name in (first, second):
        instances.start(name, group=f"group-{name}")


@given("the services in the {first} and {second} halls share the trackers' reports")
def step_one_group(context: StepContext, first: str, second: str) -> None:
    """One consumer group: each entry goes to one of the two instances."""
    instances = instances_of(context.world)
    for name in (first, second):
        instances.start(name)


ORPHANS = "processor_live_broadcast_orphan_records_total"
#: How long work may sit with a dead instance before another takes it over, in the crash scenario
#: (PROCESSOR_CLAIM_IDLE_MS; the default, 30 s, would make the scenario wait that long).
QUICK_TAKEOVER_MS = 300


@given("the services in the {first} and {second} halls are set up to share the trackers' reports and to take over "
       "each other's unfinished work quickly (a test setting: after 0.3 seconds; the product waits 30 seconds)")
def step_set_up(context: StepContext, first: str, second: str) -> None:
    """Nothing runs yet: the scenario starts each instance when its story needs it."""
    instances_of(context.world).common["PROCESSOR_CLAIM_IDLE_MS"] = str(QUICK_TAKEOVER_MS)


@when("the service in the {name} hall starts")
def step_start(context: StepContext, name: str) -> None:
    instances_of(context.world).start(name)


@when("the service in the {name} hall dies suddenly")
def step_kill(context: StepContext, name: str) -> None:
    instances_of(context.world).kill(name)


@when("the service in the {name} hall has taken reports it has not stored yet")
def step_taken_not_stored(context: StepContext, name: str) -> None:
    """The moment to kill it: the group lists entries as delivered to it, and its insert waits in the database."""
    instances = instances_of(context.world)
    instance = instances.instance(name)

    async def holding() -> tuple[bool, str]:
        owed: Pending = await instances.pending(instance.group)
        waiting = await context.world.db.inserts_waiting()
        return owed.of(instance.consumer) > 0 and waiting >= 1, f"pending {owed}, inserts waiting: {waiting}"

    context.suite.run(eventually(holding, timeout=SETTLE, what=f"Processor {name} to hold reports it has not stored"))


@when("the services in the {first} and {second} halls are both about to store it")
def step_both_about_to_store(context: StepContext, first: str, second: str) -> None:
    """Both groups delivered the entry, and both instances' inserts wait for the held table: released together,
    they race on the same (device, ts)."""
    instances = instances_of(context.world)
    groups = [instances.instance(name).group for name in (first, second)]

    async def both_waiting() -> tuple[bool, str]:
        owed = [await instances.pending(group) for group in groups]
        waiting = await context.world.db.inserts_waiting()
        return all(p.total >= 1 for p in owed) and waiting >= 2, f"pending {owed}, inserts waiting: {waiting}"

    context.suite.run(eventually(both_waiting, timeout=SETTLE, what=f"{first} and {second} both storing the position"))


@then("every report has been dealt with")
def step_nothing_pending(context: StepContext) -> None:
    """Every entry was acknowledged by its group (XPENDING empty), whoever took it first."""
    instances = instances_of(context.world)

    async def settled() -> tuple[bool, dict[str, Pending]]:
        owed = {group: await instances.pending(group) for group in instances.groups()}
        return all(p.total == 0 for p in owed.values()), owed

    owed = context.suite.run(eventually(settled, timeout=CATCH_UP, what="every group's pending list to be empty"))
    assert_that({group: p.total for group, p in owed.items()}, equal_to({group: 0 for group in owed}))


@then("the two services together counted each of the {count:d} positions of {tracker} once as an orphan")
def step_orphans_once(context: StepContext, count: int, tracker: str) -> None:
    """``processor_live_broadcast_orphan_records_total`` summed over the scenario's instances (each started in it, so
    counting from 0): each orphan is counted by the instance that stored it, and by no other. Read after no report
    was left pending (every batch was counted before it was acknowledged); waited for all the same."""
    instances = instances_of(context.world)
    assert len(instances.instances) == 2, f"the scenario runs {len(instances.instances)} services, not two"

    async def counted() -> tuple[bool, float]:
        total = sum([(await instances.metrics(name)).value(ORPHANS) for name in instances.instances])
        return total >= count, total

    total = context.suite.run(eventually(counted, timeout=SETTLE, what=f"{ORPHANS} to reach {count} in all"))
    assert_that(total, equal_to(count), f"{ORPHANS}, summed over the instances")


@given("the service in the {name} hall is set up to take the trackers' reports on its own, handing unfinished work "
       "over only after {minutes:d} minutes (a test setting; the product waits 30 seconds)")
def step_set_up_alone(context: StepContext, name: str, minutes: int) -> None:
    """Nothing runs yet. The long claim idle time means that only re-reading its own pending entries at start,
    not taking over idle work, can finish what the instance left behind within the scenario."""
    instances_of(context.world).common["PROCESSOR_CLAIM_IDLE_MS"] = str(minutes * 60_000)


@when("the service in the {name} hall starts again under the same name")
def step_restart(context: StepContext, name: str) -> None:
    instances_of(context.world).restart(name)


@given("the service in the {first} hall stores the trackers' reports, and the service in the {second} hall serves "
       "fans of the same reports over a slow line to the database")
def step_slow_link_pair(context: StepContext, first: str, second: str) -> None:
    """``second`` reaches PostgreSQL through a :class:`SlowLink` the scenario can stall, and stores nothing (its
    consumer group starts past every entry): ``first`` stores every position and publishes it while ``second``'s
    answers are held. Were ``second`` to store too, its INSERT (one autocommit statement) could win the race on the
    server while the relay held its result, and ``first``, finding only duplicates, would publish nothing."""
    instances = instances_of(context.world)
    endpoints = context.suite.endpoints
    assert endpoints is not None
    link = context.world.state(SlowLink, lambda: SlowLink(endpoints.database_url))
    context.suite.run(link.start())
    context.world.cleanups.append(link.close)
    # ``first`` reaches PostgreSQL through a relay of its own that never holds anything: it only reads what the
    # storing connections say when they open (section 7, ``latest_positions.kept_by_writer``).
    writer = context.world.state(WriterLink, lambda: WriterLink(SlowLink(endpoints.database_url)))
    context.suite.run(writer.link.start())
    context.world.cleanups.append(writer.link.close)
    instances.start(first, PROCESSOR_DATABASE_URL=writer.link.url)
    instances.start(second, stores=False, PROCESSOR_DATABASE_URL=link.url)


@given("{person} is connected to the service in the {name} hall")
def step_channel_of(context: StepContext, person: str, name: str) -> None:
    process = instances_of(context.world).instance(name).process
    viewer = context.suite.run(context.world.connect(person, processor=process))
    assert viewer.refusal is None, f"{person}'s connection was refused: {viewer.refusal}"


#: The custom setting a writer that keeps ``latest_positions`` itself opens its connections with (section 7).
KEPT_BY_WRITER = "latest_positions.kept_by_writer"


@dataclass
class WriterLink:
    """The pass-through relay of the instance that stores the scenario's positions (never held)."""

    link: SlowLink


@then("every connection over the slow line that stored positions said it keeps the latest positions itself")
def step_kept_by_writer(context: StepContext) -> None:
    """The start-up parameters of each connection of the storing instance that ran an INSERT into positions."""
    link = context.world.state(WriterLink).link

    async def stored() -> tuple[bool, list[dict[str, str]]]:
        storing = [connection.parameters for connection in link.connections if connection.stores_positions]
        return bool(storing), storing

    storing = context.suite.run(eventually(stored, timeout=SETTLE, what="a connection over the link storing positions"))
    assert_that([parameters.get(KEPT_BY_WRITER) for parameters in storing], only_contains(equal_to("on")),
                f"{KEPT_BY_WRITER} in the start-up parameters of the connections that stored positions: {storing}")
