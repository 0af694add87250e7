"""A scenario's own Processors started to see how they start: with bad settings (they must stop at once), with the
defaults, on a database of their own, or while a dependency is out of reach.

:func:`launch` starts one without waiting for it to be healthy; :func:`run_until_exit` starts one that must stop by
itself and returns its exit status with its stderr and its stdout apart (docs/processor.md, section 1: "one line on
stderr"). Either way the world's clean-up stops it, and a failing step's report shows its output.

The log's shape is the contract's (section 1): ``2026-11-23T10:00:00.123Z INFO processor.ws message``, one line per
event. :func:`log_lines` reads it; :func:`attempt_gaps` finds the retries in it (one line per failed attempt).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import re
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from urllib.parse import urlsplit, urlunsplit

import redis.asyncio as aioredis

from ..clock import SETTLE
from ..database.scratch import ScratchDatabase
from ..run.suite import Suite
from ..scenario.world import World
from .gate import Gate
from .monitor import CommandWatch
from .processor_process import ProcessorProcess

#: One log line (docs/processor.md, section 1, `logs.format`): UTC time with milliseconds, level, source, message.
LOG_LINE = re.compile(r"(?P<time>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3})Z (?P<level>DEBUG|INFO|WARNING|ERROR) "
                      r"(?P<source>\S+) (?P<message>.*)")
LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
#: The three variables without a default (docs/processor.md, section 1).
REQUIRED = ("PROCESSOR_REDIS_URL", "PROCESSOR_DATABASE_URL", "PROCESSOR_DIRECTUS_URL")


@dataclass
class NewService:
    """What the start-up steps remember about the scenario's new service, and what it was started with."""

    process: ProcessorProcess | None = None
    ended: Ended | None = None
    #: Commands it sends to Redis about its stream (settings visible nowhere else).
    watch: CommandWatch | None = None
    #: The dependency it cannot reach yet, and the gate that keeps it out of reach.
    dependency: str | None = None
    gate: Gate | None = None
    #: The database of its own it runs on, and what that database defined before it started.
    scratch: ScratchDatabase | None = None
    catalog: set[str] | None = None
    #: Times of positions its tracker reported before it started.
    reported_before: list[datetime] = field(default_factory=list)
    #: Leaves of the scenario's clean-up that must outlive the service (a port lock).
    holds: contextlib.ExitStack = field(default_factory=contextlib.ExitStack)

    def started(self) -> ProcessorProcess:
        assert self.process is not None, "no new service was started in this scenario"
        return self.process


@dataclass(frozen=True)
class LogLine:
    time: datetime
    level: str
    source: str
    message: str


@dataclass(frozen=True)
class Ended:
    """How a Processor that had to stop by itself ended: ``status`` ``None`` if it was still running at the deadline
    (it was stopped then)."""

    status: int | None
    stderr: list[str]
    stdout: list[str]

    def describe(self) -> str:
        said = "\n".join(f"  stderr: {line}" for line in self.stderr) or "  nothing on stderr"
        if self.stdout:
            said += "\n" + "\n".join(f"  stdout: {line}" for line in self.stdout)
        return f"exit status {self.status}\n{said}"


def environment(suite: Suite, name: str, port: int, changes: Mapping[str, str | None]) -> dict[str, str]:
    """The suite's variables for instance ``name`` on ``port``, with ``changes`` applied (``None``: left out)."""
    env: dict[str, str | None] = {**suite.processor_env(name, port), **changes}
    return {key: value for key, value in env.items() if value is not None}


def required_only(suite: Suite, **changes: str) -> dict[str, str]:
    """Only the three required variables, as the suite sets them, with ``changes`` applied."""
    full = suite.processor_env("defaults", 0)
    return {**{key: full[key] for key in REQUIRED}, **changes}


def launch(world: World, name: str, env: Mapping[str, str], *, host: str = "127.0.0.1",
           port: int | None = None) -> ProcessorProcess:
    """Start a Processor with exactly ``env`` and return at once; it answers (if at all) on ``host`` and ``port``
    (``None``: one that does not listen, e.g. misconfigured). Its output goes to ``processor-<name>-<hex>.log`` (and
    ``.stdout``) in the run's folder. The world's clean-up stops it."""
    suite = world.suite
    log = suite.run_dir / f"processor-{name}-{secrets.token_hex(3)}.log"
    process = ProcessorProcess(suite.settings.processor_cmd, env, log, port if port is not None else 0, host=host)
    suite.processors.append(process)  # stopped by the run at the latest; its output in a failing step's report

    async def stop() -> None:
        await asyncio.to_thread(process.stop)
        suite.processors[:] = [p for p in suite.processors if p is not process]

    world.cleanups.append(stop)
    process.start()
    return process


def run_until_exit(world: World, name: str, env: Mapping[str, str], *, timeout: float = SETTLE) -> Ended:
    """Start a Processor that must stop by itself, and wait up to ``timeout`` for it to end."""
    process = launch(world, name, env)
    status = process.wait_exit(timeout)
    if status is None:
        process.stop()
    return Ended(status, process.stderr_lines(), process.stdout_lines())


def redis_database(url: str) -> int:
    """The database number of a Redis URL (0 when it names none)."""
    path = urlsplit(url).path.strip("/")
    return int(path) if path.isdigit() else 0


def with_redis_database(url: str, number: int) -> str:
    return urlunsplit(urlsplit(url)._replace(path=f"/{number}"))


async def unused_redis_database(url: str, *, avoid: int) -> int:
    """A Redis database number that holds no key (so a Processor's default stream name collides with nothing)."""
    for number in range(1, 16):
        if number == avoid:
            continue
        client = aioredis.Redis.from_url(with_redis_database(url, number))
        try:
            if await client.dbsize() == 0:
                return number
        finally:
            await client.aclose()
    raise AssertionError(f"every Redis database 1-15 of {urlsplit(url).hostname} holds keys: none is free for a "
                         "Processor that uses the default stream name")


async def delete_redis_keys(url: str, *keys: str) -> None:
    """Delete ``keys`` from the Redis database of ``url``."""
    client = aioredis.Redis.from_url(url)
    try:
        await client.delete(*keys)
    finally:
        await client.aclose()


def log_lines(lines: list[str]) -> tuple[list[LogLine], list[str]]:
    """The lines in the contract's format, parsed; and the lines that are not."""
    parsed, other = [], []
    for line in lines:
        match = LOG_LINE.fullmatch(line)
        if match is None:
            other.append(line)
        else:
            parsed.append(LogLine(datetime.fromisoformat(match["time"]), match["level"], match["source"],
                                  match["message"]))
    return parsed, other


def attempt_gaps(lines: list[LogLine]) -> dict[str, list[float]]:
    """The retries in a log: the warnings and errors of each source, taken as one line per failed attempt, and the
    seconds between one attempt's line and the next (sources with at least three such lines)."""
    by_source: dict[str, list[datetime]] = {}
    for line in lines:
        if line.level in ("WARNING", "ERROR"):
            by_source.setdefault(line.source, []).append(line.time)
    return {source: [(later - earlier).total_seconds() for earlier, later in itertools.pairwise(times)]
            for source, times in by_source.items() if len(times) >= 3}


def backoff_problems(gaps: list[float], *, first: float, factor: float, cap: float, slack: float) -> list[str]:
    """How ``gaps`` differ from a backoff of ``first`` seconds multiplied by ``factor`` up to ``cap``: each gap at
    least 90 % of its delay (never sooner) and at most ``slack`` seconds more (the attempt itself, a busy machine)."""
    problems = []
    delay = first
    for number, gap in enumerate(gaps, start=1):
        if not delay * 0.9 <= gap <= delay + slack:
            problems.append(f"wait {number} was {gap:.3f} s, not {delay:g} s")
        delay = min(delay * factor, cap)
    return problems
