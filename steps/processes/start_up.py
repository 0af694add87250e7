"""Starting a service of the scenario's own: with only the required settings (the defaults), with settings of its
own, with a setting that makes no sense; and what its log looks like (docs/processor.md, section 1)."""

from __future__ import annotations

import errno
import socket
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from behave import given, then, when
from hamcrest import (
    assert_that,
    contains_string,
    empty,
    equal_to,
    greater_than,
    has_item,
    has_length,
    is_in,
)

from support.clock import ANSWER, CATCH_UP, SETTLE, STEP
from support.processes.instances import instances_of
from support.processes.monitor import Command, CommandWatch, option
from support.processes.processor_process import group_members
from support.processes.startup import (
    LEVELS,
    NewService,
    delete_redis_keys,
    environment,
    launch,
    log_lines,
    redis_database,
    required_only,
    run_until_exit,
    unused_redis_database,
    with_redis_database,
)
from support.scenario.gherkin import StepContext
from support.services.ports import fixed_port, free_port

#: The documented defaults these steps check (docs/processor.md, section 1).
DEFAULT_HOST, DEFAULT_PORT, DEFAULT_STREAM, DEFAULT_GROUP = "127.0.0.1", 8080, "telemetry:teltonika", "processor"
#: Every variable that has a default, for "every other setting left empty".
OPTIONAL = ("HOST", "PORT", "STREAM", "GROUP", "CONSUMER", "GROUP_START_ID", "ALLOWED_ORIGINS", "LOG_LEVEL",
            "DIRECTUS_TIMEOUT", "READ_COUNT", "READ_BLOCK_MS", "REDIS_TIMEOUT", "CLAIM_IDLE_MS", "CLIENT_QUEUE",
            "MAX_FRAME_BYTES", "PING_INTERVAL", "PING_TIMEOUT", "SUBSCRIBE_RATE", "MAX_SUBSCRIPTIONS",
            "SHUTDOWN_TIMEOUT", "LIVE_LAG_LIMIT_MS")
#: The settings the features name, and their variables.
SETTINGS = {
    "the address of the telemetry feed": "PROCESSOR_REDIS_URL",
    "the address of the database": "PROCESSOR_DATABASE_URL",
    "the port": "PROCESSOR_PORT",
    "how far behind a map may fall": "PROCESSOR_LIVE_LAG_LIMIT_MS",
    "the allowed web sites": "PROCESSOR_ALLOWED_ORIGINS",
    "the feed's timeout": "PROCESSOR_REDIS_TIMEOUT",
    "the messages a fan's backlog may hold": "PROCESSOR_CLIENT_QUEUE",
}
#: Exit status of a configuration error (docs/processor.md, section 1).
EXIT_CONFIG = 2
#: Where tracker-A's reports before a service starts sit on the trackers' clock.
EARLY_REPORTS = datetime(2026, 5, 2, 10, 0, tzinfo=UTC)


def _new(context: StepContext) -> NewService:
    return context.world.state(NewService, NewService)


def _variable(setting: str) -> str:
    assert setting in SETTINGS, f"no setting called {setting!r} (known: {list(SETTINGS)})"
    return SETTINGS[setting]


def _healthy(context: StepContext, timeout: float) -> None:
    suite = context.suite
    assert suite.http is not None
    suite.run(_new(context).started().wait_healthy(suite.http, timeout=timeout), timeout=timeout + SETTLE)


def _refused(host: str, port: int) -> str | None:
    """``None`` if nothing listens on ``host``:``port``; else what answered. An address this machine does not have
    (no IPv6) counts as refused."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        with socket.socket(family, socket.SOCK_STREAM) as sock:
            sock.settimeout(ANSWER)
            sock.connect((host, port))
            return f"a connection was accepted on {host}:{port}"
    except OSError as exc:
        if exc.errno in (errno.ECONNREFUSED, errno.EADDRNOTAVAIL, errno.ENETUNREACH, errno.EAFNOSUPPORT):
            return None
        return f"{host}:{port}: {exc}"


def _watch(context: StepContext, redis_url: str, key: str) -> CommandWatch:
    """Watch what the new service will ask Redis about ``key``, from before it starts."""
    watch = CommandWatch(redis_url, key, redis_database(redis_url))
    context.suite.run(watch.start())
    context.world.cleanups.append(watch.close)
    _new(context).watch = watch
    return watch


def _reads(context: StepContext) -> list[Command]:
    """Its reads of new entries (``XREADGROUP … >``), once it made one."""
    watch = _new(context).watch
    assert watch is not None
    context.suite.run(watch.first("XREADGROUP", lambda c: c[-1] == ">", timeout=SETTLE,
                                  what="the new service to read new entries of its stream"))
    return [c for c in watch.commands if c[0] == "XREADGROUP" and c[-1] == ">"]


# -- the defaults --------------------------------------------------------------------------------------------

@when("a new service is started with nothing but the addresses of the database, the telemetry feed and the CMS, "
      "every other setting {how}")
def step_start_defaults(context: StepContext, how: str) -> None:
    """On a Redis database of its own (its default stream name must collide with nothing there), on the default port,
    held for the scenario under a machine-wide lock (support/services/ports.py)."""
    assert how in ("left out", "left empty"), f"every other setting is either left out or left empty, not {how!r}"
    suite, new = context.suite, _new(context)
    assert suite.endpoints is not None
    run_redis = suite.endpoints.redis_url
    number = suite.run(unused_redis_database(run_redis, avoid=redis_database(run_redis)))
    redis_url = with_redis_database(run_redis, number)

    async def forget_keys() -> None:  # registered first: runs after the service stopped
        await delete_redis_keys(redis_url, DEFAULT_STREAM, f"{DEFAULT_STREAM}:dead")

    async def let_go() -> None:
        new.holds.close()

    context.world.cleanups += [forget_keys, let_go]
    new.holds.enter_context(fixed_port(DEFAULT_PORT, wait=STEP))
    _watch(context, redis_url, DEFAULT_STREAM)
    env = required_only(suite, PROCESSOR_REDIS_URL=redis_url)
    if how == "left empty":
        env.update({f"PROCESSOR_{name}": "" for name in OPTIONAL})
    new.process = launch(context.world, "defaults", env, host=DEFAULT_HOST, port=DEFAULT_PORT)


@then("the new service answers on 127.0.0.1 at port 8080, and on no other address of the machine")
def step_default_address(context: StepContext) -> None:
    """Healthy on 127.0.0.1:8080; nothing on 127.0.0.2 (reached through the same loopback, so a service listening
    on every address would answer there) nor on ::1."""
    _healthy(context, CATCH_UP)
    answered = [seen for host in ("127.0.0.2", "::1") if (seen := _refused(host, DEFAULT_PORT))]
    assert_that(answered, empty(), "other addresses of the machine that answered on port 8080")


@then('it reads the telemetry feed "{stream}" in the group "{group}", under its host name and process number')
def step_default_names(context: StepContext, stream: str, group: str) -> None:
    """Its ``XREADGROUP GROUP <group> <consumer> … STREAMS <stream> >``: the watch keeps only commands naming
    ``stream``; the consumer is ``<hostname>-<pid>`` of a process of its group (a launcher's child, maybe)."""
    read = _reads(context)[0]
    print("its first read of new entries:", " ".join(read))
    process = _new(context).started()
    assert process.proc is not None
    names = {f"{socket.gethostname()}-{pid}" for pid in group_members(process.proc.pid)}
    assert_that(read[read.index("STREAMS") + 1], equal_to(stream), f"the stream it reads: {read}")
    assert_that(option(read, "GROUP"), equal_to(group), f"its group: {read}")
    assert_that(read[read.index("GROUP") + 2], is_in(sorted(names)), f"its consumer name: {read}")


@then("it waits up to {seconds:g} second at a time for new positions, and takes at most {count:d} at a time")
@then("it waits up to {seconds:g} seconds at a time for new positions, and takes at most {count:d} at a time")
def step_read_block(context: StepContext, seconds: float, count: int) -> None:
    """The ``BLOCK`` of its reads (``PROCESSOR_READ_BLOCK_MS``; a read due just before a claim blocks less, since it
    never blocks past the claim, so the longest one seen counts) and their ``COUNT`` (``PROCESSOR_READ_COUNT``)."""
    reads = _reads(context)
    blocks = [int(value) for read in reads if (value := option(read, "BLOCK")) is not None]
    assert_that(len(blocks), greater_than(0), f"reads with a BLOCK among its reads {reads[:3]}")
    assert_that(max(blocks), equal_to(round(seconds * 1000)), f"the BLOCK of its reads (ms): {blocks[:10]}")
    counts = sorted({option(read, "COUNT") for read in reads}, key=str)
    assert_that(counts, equal_to([str(count)]), f"the COUNT of its reads {reads[:3]}")


@then("it takes over work that another service left unfinished once that work has waited {seconds:d} seconds")
def step_claim_idle(context: StepContext, seconds: int) -> None:
    """The minimum idle time of its ``XAUTOCLAIM`` (or ``XCLAIM``): the fourth argument of either. It claims every
    ``PROCESSOR_CLAIM_IDLE_MS / 2`` (15 s), its first claim at the latest then."""
    watch = _new(context).watch
    assert watch is not None
    claim = context.suite.run(watch.first(("XAUTOCLAIM", "XCLAIM"), timeout=CATCH_UP,
                                          what="the new service to claim idle work"), timeout=CATCH_UP + SETTLE)
    print("its first claim:", " ".join(claim))
    assert_that(claim[4], equal_to(str(seconds * 1000)), f"the minimum idle time of its claim: {claim}")


@then("its log has lines of information but none for debugging")
def step_default_log_level(context: StepContext) -> None:
    lines, other = log_lines(_new(context).started().stderr_lines())
    levels = sorted({line.level for line in lines})
    assert_that(levels, has_item("INFO"), f"the levels of its log lines (lines not in the log format: {other[:5]})")
    assert_that([level for level in levels if level == "DEBUG"], empty(), f"the levels of its log lines: {levels}")


@then("its log has no line less important than a warning")
def step_warnings_only(context: StepContext) -> None:
    lines, _ = log_lines(_new(context).started().stderr_lines())
    assert_that([f"{line.level} {line.source} {line.message}" for line in lines if line.level in ("DEBUG", "INFO")],
                empty(), "its log lines below WARNING")


@then("it logs one line per event, each with the time, the level and where it comes from, and writes nothing else")
def step_log_format(context: StepContext) -> None:
    """Every line on stderr in the contract's format (a traceback folded into its line); nothing on stdout."""
    process = _new(context).started()
    lines, other = log_lines(process.stderr_lines())
    assert_that(other, empty(), f"lines on stderr not in the format 'time level source message' ({LEVELS})")
    assert_that(len(lines), greater_than(0), f"lines in its log; on stdout it wrote {process.stdout_lines()[:5]}")
    assert_that(process.stdout_lines(), empty(), "what it wrote on stdout")


# -- settings of its own ---------------------------------------------------------------------------------------

@given("{tracker} has already reported {count:d} positions to the telemetry feed of a new service")
def step_reported_before(context: StepContext, tracker: str, count: int) -> None:
    """On the scenario's own stream, before the service (and its consumer group) exists."""
    instances_of(context.world)  # the scenario's own stream: the world's reports go there from now on
    times = [EARLY_REPORTS + timedelta(seconds=n) for n in range(count)]
    for n, ts in enumerate(times):
        context.suite.run(context.world.publish(tracker, ts, 41.3275 + n / 10_000, 19.8187))
    _new(context).reported_before = times


#: The settings of "started with these settings", and how their values are written for the service.
OWN_SETTINGS: dict[str, tuple[str, Callable[[str], str]]] = {
    "the address it listens on": ("PROCESSOR_HOST", lambda value: value),
    "the least important lines it logs": ("PROCESSOR_LOG_LEVEL", lambda value: {"warnings": "WARNING"}[value]),
    "the longest it waits for new positions at a time":
        ("PROCESSOR_READ_BLOCK_MS", lambda value: str(round(float(value.removesuffix(" seconds")) * 1000))),
    "the most positions it takes at a time": ("PROCESSOR_READ_COUNT", lambda value: value),
    "where it starts reading a feed it has never read":
        ("PROCESSOR_GROUP_START_ID", lambda value: {"after the last position": "$", "at the beginning": "0"}[value]),
}


@when("the new service is started with these settings:")
def step_start_with_settings(context: StepContext) -> None:
    suite, instances = context.suite, instances_of(context.world)
    assert suite.endpoints is not None
    changes = {"PROCESSOR_STREAM": instances.stream, "PROCESSOR_GROUP": DEFAULT_GROUP}
    for row in context.table:
        assert row["setting"] in OWN_SETTINGS, f"no setting called {row['setting']!r} (known: {list(OWN_SETTINGS)})"
        variable, written = OWN_SETTINGS[row["setting"]]
        changes[variable] = written(row["value"])
    _watch(context, suite.endpoints.redis_url, instances.stream)
    port = free_port()
    env = environment(suite, f"own-{instances.token}", port, changes)
    _new(context).process = launch(context.world, f"own-{instances.token}", env,
                                   host=changes.get("PROCESSOR_HOST", DEFAULT_HOST), port=port)


@then("the new service answers on {host} and not on {other}")
def step_answers_on(context: StepContext, host: str, other: str) -> None:
    process = _new(context).started()
    assert_that(process.host, equal_to(host), "the address it was started with")
    _healthy(context, CATCH_UP)
    assert_that(_refused(other, process.port), equal_to(None), f"{other}:{process.port}")


@then("none of the {count:d} positions {tracker} reported before the new service started is stored")
def step_none_stored(context: StepContext, count: int, tracker: str) -> None:
    """Checked after a later position of the same stream was stored (the barrier: entries are read in order)."""
    times = _new(context).reported_before
    assert_that(times, has_length(count), "positions reported before the service started")
    rows = context.suite.run(context.world.db.positions_of(context.world.device(tracker)))
    assert_that([row.ts for row in rows if row.ts in times], empty(), f"stored positions of {tracker}")


# -- a setting that makes no sense -------------------------------------------------------------------------

@when("a new service is started with {setting} left out")
def step_start_without(context: StepContext, setting: str) -> None:
    _start_misconfigured(context, _variable(setting), None)


@when("a new service is started with {setting} left empty")
def step_start_empty(context: StepContext, setting: str) -> None:
    _start_misconfigured(context, _variable(setting), "")


@when('a new service is started with {setting} set to "{value}"')
def step_start_set_to(context: StepContext, setting: str, value: str) -> None:
    _start_misconfigured(context, _variable(setting), value)


def _start_misconfigured(context: StepContext, variable: str, value: str | None) -> None:
    """On a stream of its own: should it not stop, it reads nothing of the run's until the deadline stops it."""
    stream = instances_of(context.world).stream
    env = environment(context.suite, "misconfigured", free_port(), {"PROCESSOR_STREAM": stream, variable: value})
    _new(context).ended = run_until_exit(context.world, "misconfigured", env, timeout=SETTLE)


@then("it stops at once as misconfigured, with one line naming {setting}")
def step_stops_misconfigured(context: StepContext, setting: str) -> None:
    """Exit status 2 and exactly one line on stderr, naming the variable (docs/processor.md, section 1)."""
    ended = _new(context).ended
    assert ended is not None, "no new service was started in this scenario"
    variable = _variable(setting)
    print(ended.describe())
    assert_that(ended.status, equal_to(EXIT_CONFIG), f"its exit status; it said:\n{ended.describe()}")
    assert_that(ended.stderr, has_length(1), "its lines on stderr")
    assert_that(ended.stderr[0], contains_string(variable), f"its line on stderr names {variable}")
