"""Trouble around the Processor: the CMS down, the database or Redis stopped and restarted, stalled fans,
shutdown. Whatever a scenario breaks it repairs in a clean-up registered before breaking it, and the clean-up
waits until the run's main Processor is healthy again, so the next scenario finds everything as it was."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from datetime import UTC, datetime

from behave import given, then, when
from behave.runner import Context
from hamcrest import assert_that, equal_to, greater_than_or_equal_to, has_entries, less_than, none, not_none

from support.clock import ANSWER, CATCH_UP, RECOVER, SETTLE
from support.fans.deliveries import bursts_until, wait_for_positions
from support.fans.matchers import an_error
from support.processes.healthz import wait_for_health
from support.processes.instances import instances_of
from support.processes.scrape import scrape
from support.services.base import service_control
from support.trackers.traffic import report_burst
from support.waiting import eventually

OUTAGE_REPORTS_START = datetime(2026, 5, 2, 14, 0, tzinfo=UTC)

CMS_OUTAGES = {"answers every request with an error": "503", "does not answer at all": "silent"}
SERVICE_NAMES = {"the database": "postgres", "Redis": "redis"}
RECOVERY_TIMEOUT = 30.0
#: WebSocket close code of a Processor shutting down (docs/processor.md, "Close codes").
CLOSE_GOING_AWAY = 1001
#: Bursts a stalled fan may survive before the slow-consumer scenario gives up.
MAX_BURSTS = 10




def _await_health(context: Context, wanted: Callable[[int, dict], bool], *, timeout: float, what: str,
                  base_url: str | None = None) -> tuple[int, dict]:
    """Wait (on the suite's loop) for the main Processor's, or ``base_url``'s, /healthz to be ``wanted``."""
    url = base_url or context.suite.processor.base_url
    return context.suite.run(wait_for_health(context.suite.http, url, wanted, timeout=timeout, what=what),
                             timeout=timeout + SETTLE)


async def _main_processor_healthy(context: Context, timeout: float = RECOVERY_TIMEOUT) -> float:
    """Wait for the main Processor's /healthz 200 and for the suite's own database pool to work again;
    return how long it took."""
    began = time.monotonic()

    await wait_for_health(context.suite.http, context.suite.processor.base_url, lambda status, _: status == 200,
                          timeout=timeout, what="the main Processor to be healthy again")

    async def suite_db() -> tuple[bool, str]:
        await context.world.db.positions_of_devices([])
        return True, "ok"

    await eventually(suite_db, timeout=timeout, what="the suite's database connection to work again")

    async def suite_redis() -> tuple[bool, str]:
        assert context.suite.publisher is not None
        await context.suite.publisher.redis.ping()
        return True, "ok"

    await eventually(suite_redis, timeout=timeout, what="the suite's Redis connection to work again")
    return time.monotonic() - began


# -- the CMS -----------------------------------------------------------------------------------------------

@given("the CMS is down and {how}")
def step_cms_down(context: Context, how: str) -> None:
    assert how in CMS_OUTAGES, f"no CMS outage called {how!r} (known: {list(CMS_OUTAGES)})"
    stub = context.suite.stub

    async def come_back() -> None:
        stub.come_back()

    context.world.cleanups.append(come_back)
    context.suite.run(_call(stub.go_down, CMS_OUTAGES[how]))


async def _call(function, *args):
    """Run a plain function on the suite's I/O loop (where the stub and the viewers live)."""
    return function(*args)


@when("the CMS is back")
def step_cms_back(context: Context) -> None:
    context.suite.run(_call(context.suite.stub.come_back))
    context.world.notes.back_at = time.monotonic()


@when("{person} tries to open the live channel")
def step_open_channel(context: Context, person: str) -> None:
    began = time.monotonic()
    context.suite.run(context.world.connect(person, processor=context.suite.processor))
    context.world.notes.upgrade_seconds = time.monotonic() - began


@then("{person} is turned away within {seconds:g} seconds because signing in is unavailable")
def step_refused_unavailable(context: Context, person: str, seconds: float) -> None:
    viewer = context.world.viewer(person)
    assert_that(viewer.refusal, not_none(), "the upgrade was accepted")
    assert_that(viewer.refusal.status, equal_to(503), f"refusal: {viewer.refusal}")
    assert_that(context.world.notes.upgrade_seconds, less_than(seconds), "seconds until the refusal")
    print(f"refused with {viewer.refusal.status} after {context.world.notes.upgrade_seconds:.2f} s")


@then('{person} can open the live map of the "{event}" again')
def step_open_again(context: Context, person: str, event: str) -> None:
    world = context.world
    world.viewers.pop(person, None)
    viewer = context.suite.run(world.connect(person))
    assert_that(viewer.refusal, none(), f"{person}'s connection was refused again")
    answer = context.suite.run(world.open_map(person, event))
    assert_that(answer, has_entries(type="subscribed"))
    notes = context.world.notes
    print(f"{person} was back on the map {time.monotonic() - notes.back_at:.2f} s after the CMS came back")


# -- the database and Redis --------------------------------------------------------------------------------

@when("{service} goes down")
def step_service_down(context: Context, service: str) -> None:
    assert service in SERVICE_NAMES, f"no service called {service!r} (known: {list(SERVICE_NAMES)})"
    provider = service_control(context.suite.provider)
    name = SERVICE_NAMES[service]

    async def restore() -> None:  # registered before breaking anything: runs even if a later step fails
        await asyncio.to_thread(provider.start_service, name)
        await _main_processor_healthy(context)

    context.world.cleanups.append(restore)
    provider.stop_service(name)
    context.world.notes.down_at = time.monotonic()


@when("Redis freezes")
def step_redis_freezes(context: Context) -> None:
    provider = service_control(context.suite.provider)

    async def thaw() -> None:  # registered before freezing: runs even if a later step fails
        provider.resume_service("redis")
        await _main_processor_healthy(context)

    context.world.cleanups.append(thaw)
    provider.pause_service("redis")
    context.world.notes.down_at = time.monotonic()


@then("the Processor reports that no positions are coming in, instead of waiting forever")
def step_reads_give_up(context: Context) -> None:
    """A read blocked on a frozen Redis must end at the Processor's socket timeout (5 s by default): /healthz
    then shows the consumer stopped, retrying."""

    status, body = _await_health(context, lambda _, body: body.get("consumer") == "stopped", timeout=RECOVER,
                                 what="/healthz to report the consumer stopped")
    print(f"/healthz {status} {body} {time.monotonic() - context.world.notes.down_at:.2f} s after Redis froze")


@when("Redis thaws")
def step_redis_thaws(context: Context) -> None:
    service_control(context.suite.provider).resume_service("redis")
    context.world.notes.back_at = time.monotonic()


@when("{service} is back, empty")
@when("{service} is back")
def step_service_back(context: Context, service: str) -> None:
    assert service in SERVICE_NAMES, f"no service called {service!r} (known: {list(SERVICE_NAMES)})"
    provider = service_control(context.suite.provider)
    provider.start_service(SERVICE_NAMES[service])
    context.world.notes.back_at = time.monotonic()


@then("the Processor reports {service} as down")
def step_reported_down(context: Context, service: str) -> None:
    key = SERVICE_NAMES[service]

    status, body = _await_health(context, lambda status, body: status == 503 and body.get(key) == "down",
                                 timeout=SETTLE, what=f"/healthz to report {key} down")
    print(f"/healthz {status} {body} {time.monotonic() - context.world.notes.down_at:.2f} s after {key} went down")


@then("the Processor is healthy again")
def step_healthy_again(context: Context) -> None:
    seconds = context.suite.run(_main_processor_healthy(context), timeout=RECOVERY_TIMEOUT + 10)
    notes = context.world.notes
    print(f"healthy again {time.monotonic() - notes.back_at:.2f} s after the restart (waited {seconds:.2f} s)")


@then("{person} is told the live map is unavailable for now")
def step_told_unavailable(context: Context, person: str) -> None:
    assert_that(context.world.answers[person], an_error("unavailable"))


# -- Processors of the scenario's own ----------------------------------------------------------------------

@given("a Processor {name} that reads {batch:d} reports at a time and lets {count:d} messages queue up for each fan")
def step_small_queue(context: Context, name: str, batch: int, count: int) -> None:
    """A small queue, but as the contract sizes it: one live message carries up to a batch of positions, so a
    queue under two batches could close a fan who reads promptly (docs/processor.md, PROCESSOR_CLIENT_QUEUE)."""
    assert count >= 2 * batch, f"the contract wants a client queue of at least 2 x the batch size ({2 * batch})"
    instances_of(context).start(name, PROCESSOR_READ_COUNT=str(batch), PROCESSOR_CLIENT_QUEUE=str(count))


@given("a Processor {name} of this scenario's own")
def step_own_processor(context: Context, name: str) -> None:
    instances_of(context).start(name)


@given("a Processor {name} that checks often whether each fan is still there")
def step_pinging_processor(context: Context, name: str) -> None:
    """Keepalive pings every half second, and half a second for the answer (defaults: 20 s each)."""
    instances_of(context).start(name, PROCESSOR_PING_INTERVAL="0.5", PROCESSOR_PING_TIMEOUT="0.5")


@when("{person} stops reading {pronoun} messages")
def step_stop_reading(context: Context, person: str, pronoun: str) -> None:
    viewer = context.world.viewer(person)
    if context.world.notes.instances is not None:
        base = next(iter(context.world.notes.instances.instances.values())).process.base_url
        context.world.notes.private_baseline = context.suite.run(scrape(base, context.suite.http))
    context.suite.run(_call(viewer.stop_reading))


def _private_metrics(context: Context, name: str):
    return scrape(context.world.notes.instances.instance(name).process.base_url, context.suite.http)


@then("Processor {name} has disconnected {count:d} fan as too slow")
def step_slow_disconnects(context: Context, name: str, count: int) -> None:
    metric = "processor_slow_consumer_disconnects_total"

    async def counted() -> tuple[bool, float]:
        delta = (await _private_metrics(context, name)).delta(context.world.notes.private_baseline, metric)
        return delta >= count, delta

    delta = context.suite.run(eventually(counted, timeout=SETTLE, what=f"{metric} to rise by {count}"))
    assert_that(delta, equal_to(count), f"{metric} moved by this much")


@when("Processor {name} is asked to shut down")
def step_sigterm(context: Context, name: str) -> None:
    process = context.world.notes.instances.instance(name).process
    assert process.running(), f"Processor {name} had already exited:\n{process.tail()}"
    began = time.monotonic()
    context.world.notes.exit_status = process.stop(timeout=SETTLE)
    context.world.notes.exit_seconds = time.monotonic() - began


@then("{person} is disconnected with a notice that the live map is going away for a moment")
def step_going_away(context: Context, person: str) -> None:
    """WebSocket close 1001 (going away): the browser may reconnect to another instance at once."""
    viewer = context.world.viewer(person)
    closed = context.suite.run(viewer.wait_closed(timeout=ANSWER))
    assert_that(closed[0], equal_to(CLOSE_GOING_AWAY), f"{person}'s connection ended with {closed}")


@then("Processor {name} exits cleanly within {seconds:g} seconds")
def step_exit_status(context: Context, name: str, seconds: float) -> None:
    """Cleanly: exit status 0 (docs/processor.md, "Shutdown")."""
    notes = context.world.notes
    print(f"Processor {name} exited with {notes.exit_status} after {notes.exit_seconds:.2f} s")
    assert_that(context.world.notes.exit_status, equal_to(0), "exit status")
    assert_that(context.world.notes.exit_seconds, less_than(seconds), "seconds from SIGTERM to exit")


@then("Processor {name} drops {person}'s connection within {seconds:g} seconds")
def step_dropped(context: Context, name: str, person: str, seconds: float) -> None:
    gauge = "processor_websocket_connections"
    began = time.monotonic()

    async def dropped() -> tuple[bool, float]:
        now = (await _private_metrics(context, name)).value(gauge)
        return now <= context.world.notes.private_baseline.value(gauge) - 1, now

    context.suite.run(eventually(dropped, timeout=seconds, what=f"{gauge} on Processor {name} to drop by 1"))
    print(f"{gauge} dropped {time.monotonic() - began:.2f} s after {person} stopped reading")
    viewer = context.world.viewer(person)
    context.suite.run(_call(viewer.resume_reading))
    closed = context.suite.run(viewer.wait_closed(timeout=ANSWER))
    print(f"{person}'s connection ended with {closed}")
    assert_that(closed[0], greater_than_or_equal_to(1000), f"{person}'s connection ended with {closed}")


@given('{person} follows the "{event}" through Processor {name} over a poor network')
def step_follow_poor_network(context: Context, person: str, event: str, name: str) -> None:
    """A small receive buffer: when the fan stalls, the Processor's queue fills after little traffic."""
    world = context.world
    viewer = context.suite.run(world.connect(person, processor=context.world.notes.instances.instance(name).process,
                                             receive_buffer=4096))
    assert_that(viewer.refusal, none(), f"{person}'s connection was refused")
    answer = context.suite.run(world.open_map(person, event))
    assert_that(answer, has_entries(type="subscribed"), f"{person} could not open the map of {event}")


@when("{tracker} reports {count:d} positions meanwhile")
def step_reports_meanwhile(context: Context, tracker: str, count: int) -> None:
    """Reports that touch nothing but the stream (the suite's own database may be down too)."""
    world = context.world
    reports = context.suite.run(report_burst(world.publisher, [(tracker, world.device(tracker))], count,
                                             OUTAGE_REPORTS_START))
    context.world.notes.reports = reports
    world.published.append((tracker, f"{reports[0].entry_id} … {reports[-1].entry_id}", {"reports": str(count)}))


@when("{tracker} reports bursts of {count:d} positions until Processor {name} gives up on {person}")
def step_bursts_until_slow(context: Context, tracker: str, count: int, name: str, person: str) -> None:
    """Burst after burst: each one must reach every fan still reading (the positive barrier) before the
    Processor's slow-consumer counter is read; stop once it has risen, or fail after a bounded number."""
    world = context.world
    readers = [v for n, v in world.viewers.items() if n != person]
    event_id = world.answers[readers[0].name]["eventId"]
    metric = "processor_slow_consumer_disconnects_total"
    start = datetime(2026, 5, 2, 15, 0, tzinfo=UTC)

    async def gave_up() -> bool:
        snapshot = await _private_metrics(context, name)
        return bool(snapshot.delta(context.world.notes.private_baseline, metric) >= 1)

    reports, bursts = context.suite.run(
        bursts_until(world.publisher, (tracker, world.device(tracker)), count, readers, event_id=event_id,
                     start=start, done=gave_up, max_bursts=MAX_BURSTS, timeout=CATCH_UP,
                     what=f"Processor {name} to give up on {person}"),
        timeout=MAX_BURSTS * (CATCH_UP + SETTLE))
    context.world.notes.reports = reports
    print(f"Processor {name} gave up on {person} during burst {bursts} ({len(reports)} positions reported)")


@then("{person} has received every one of those positions")
def step_received_all(context: Context, person: str) -> None:
    viewer = context.world.viewer(person)
    context.suite.run(wait_for_positions(viewer, [r.key for r in context.world.notes.reports],
                                         event_id=context.world.answers[person]["eventId"], timeout=CATCH_UP,
                                         what="positions reported"))


# -- limits of a Processor of the scenario's own -----------------------------------------------------------

@given("a Processor {name} that lets each fan follow {count:d} events at once")
def step_subscription_limit(context: Context, name: str, count: int) -> None:
    instances_of(context).start(name, PROCESSOR_MAX_SUBSCRIPTIONS=str(count))


# -- a telemetry stream the Processor cannot read ------------------------------------------------------------

@when("Processor {name}'s telemetry stream is overwritten with something that is not a stream")
def step_stream_overwritten(context: Context, name: str) -> None:
    """Redis and PostgreSQL keep answering; only reading the stream fails (WRONGTYPE). The key is the
    scenario's private stream, deleted in clean-up."""
    instances = instances_of(context)
    redis = instances.publisher.redis

    async def overwrite() -> None:
        async with redis.pipeline(transaction=True) as pipe:
            pipe.delete(instances.stream)
            pipe.set(instances.stream, "not a stream")
            await pipe.execute()

    context.suite.run(overwrite())
    context.world.notes.down_at = time.monotonic()


@when("Processor {name}'s telemetry stream is repaired")
def step_stream_repaired(context: Context, name: str) -> None:
    """The foreign value goes; the Processor recreates its stream and group (MKSTREAM) when it next tries."""
    instances = instances_of(context)
    context.suite.run(instances.publisher.redis.delete(instances.stream))
    context.world.notes.back_at = time.monotonic()


@then("Processor {name} reports that it cannot consume its telemetry stream, though Redis and the database are up")
def step_reports_consumer_stopped(context: Context, name: str) -> None:
    base_url = instances_of(context).instance(name).process.base_url
    wanted = {"status": "unavailable", "redis": "up", "postgres": "up", "consumer": "stopped"}

    status, body = _await_health(context, lambda status, body: status == 503 and body == wanted, timeout=SETTLE,
                                 what=f"/healthz of {name} to say {wanted}", base_url=base_url)
    notes = context.world.notes
    print(f"/healthz {status} {body} {time.monotonic() - notes.down_at:.2f} s after the stream was overwritten")


@then("Processor {name} is healthy again")
def step_private_healthy_again(context: Context, name: str) -> None:
    base_url = instances_of(context).instance(name).process.base_url

    _await_health(context, lambda status, _: status == 200, timeout=RECOVERY_TIMEOUT,
                  what=f"/healthz of {name} to answer 200", base_url=base_url)
    print(f"Processor {name} healthy again {time.monotonic() - context.world.notes.back_at:.2f} s after the repair")
