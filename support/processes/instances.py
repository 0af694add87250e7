"""Processor instances a scenario starts beside the run's main one, on a telemetry stream of its own.

Scale-out scenarios count exactly (rows, pending entries), so nothing else may read or write their stream: their
instances consume a scenario-private stream ``suite-<hex>:telemetry`` (with its own ``:dead`` stream and
``:live`` channel), which the main Processor never sees. Instances are started with
:meth:`Suite.start_processor`, the suite's one process manager; the scenario's clean-up stops them and deletes
every Redis key under the private prefix.
"""

from __future__ import annotations

import asyncio
import secrets
from collections.abc import Mapping
from dataclasses import dataclass, field

from ..run.suite import Suite
from ..scenario.world import World
from ..trackers.publisher import TelemetryPublisher
from ..trackers.stream import Pending, delete_keys, pending
from .processor_process import ProcessorProcess
from .redis_link import RedisLink
from .scrape import MetricsSnapshot, scrape

#: The name of the one service a scenario starts for what it is for ("a service that ...", then "that service").
THAT_SERVICE = "that service"
#: Batch size of scenario instances: small, so that a burst is spread over several batches (and instances)
#: and a killed instance holds only part of it.
READ_COUNT = "50"
#: Where the suite starts the consumer group of an instance that is to store nothing: past every entry id a
#: stream will hand out (ids are milliseconds since 1970; this one is in the year 2286). The instance finds its
#: group there (creating it is idempotent: docs/processor.md section 5, "Ingest") and is never given an entry.
BEYOND_EVERY_ENTRY = "9999999999999-0"


@dataclass
class Instance:
    """One extra Processor: the scenario's name for it, its process, and where it sits in the stream."""

    name: str
    process: ProcessorProcess
    group: str
    #: The variables it was started with beyond the suite's own, to start it again the same way.
    overrides: dict[str, str] = field(default_factory=dict)
    #: The relay it reaches Redis through, when the scenario troubles that link (:meth:`ScenarioInstances.start`).
    link: RedisLink | None = None

    @property
    def consumer(self) -> str:
        """Its consumer name inside the group, as ``XPENDING`` lists it."""
        return self.process.env["PROCESSOR_CONSUMER"]


class ScenarioInstances:
    """The scenario's private stream and the Processor instances reading it.

    Creating it points the scenario's tracker reports (:attr:`World.publisher`) at the private stream and
    registers the clean-up with the world.
    """

    def __init__(self, suite: Suite, world: World) -> None:
        assert suite.endpoints is not None
        self.suite = suite
        self.token = secrets.token_hex(4)
        self.prefix = f"suite-{self.token}:"
        self.stream = f"{self.prefix}telemetry"
        self.publisher = TelemetryPublisher(suite.endpoints.redis_url, self.stream)
        self.instances: dict[str, Instance] = {}
        self._processes: list[ProcessorProcess] = []
        self._links: list[RedisLink] = []
        #: Variables every instance of this scenario gets (e.g. a short claim idle time).
        self.common: dict[str, str] = {"PROCESSOR_READ_COUNT": READ_COUNT}
        world.publisher = self.publisher
        world.cleanups.append(self.clean_up)

    # -- instances (called from steps, on the steps' thread: starting waits for health) ----------------

    def start(self, name: str, *, group: str = "processor", without: tuple[str, ...] = (), stores: bool = True,
              linked: bool = False, settings: Mapping[str, str] | None = None, **overrides: str) -> Instance:
        """Start instance ``name`` in consumer ``group`` of the private stream; return once it is healthy.

        ``settings`` and ``overrides``: its environment beyond the suite's (``settings`` for a mapping a step
        built; the two are merged, ``overrides`` last).
        ``without``: variables the suite would set that this instance does not get (their defaults apply).
        ``stores=False``: in a group of its own that the suite creates past every entry (:data:`BEYOND_EVERY_ENTRY`),
        so it stores nothing and only serves fans, from the live channel. ``linked``: it reaches Redis through a
        :class:`RedisLink` the scenario can trouble (:attr:`Instance.link`)."""
        assert name not in self.instances, f"an instance called {name!r} already runs in this scenario"
        overrides = {**(settings or {}), **overrides}
        if not stores:
            group = f"group-{name}"
            self.suite.run(self._group_past_every_entry(group))
        link = None
        if linked:
            assert self.suite.endpoints is not None
            link = RedisLink(self.suite.endpoints.redis_url)
            self._links.append(link)
            self.suite.run(link.start())
            overrides = {"PROCESSOR_REDIS_URL": link.url, **overrides}
        env = {**self.common, "PROCESSOR_STREAM": self.stream, "PROCESSOR_GROUP": group, **overrides}
        already = len(self.suite.processors)
        try:
            process = self.suite.start_processor(f"{name}-{self.token}".replace(" ", "-"), without=without, **env)
        finally:  # stopped in clean-up even when it never became healthy
            self._processes.extend(self.suite.processors[already:])
        self.instances[name] = Instance(name, process, group, env, link)
        return self.instances[name]

    async def _group_past_every_entry(self, group: str) -> None:
        await self.publisher.redis.xgroup_create(self.stream, group, id=BEYOND_EVERY_ENTRY, mkstream=True)

    def restart(self, name: str) -> Instance:
        """Start instance ``name`` again after it died, with the same variables: the same consumer name in
        the same group (so it owns the entries its predecessor read), on a new port."""
        old = self.instance(name)
        assert not old.process.running(), f"Processor {name} is still running"
        already = len(self.suite.processors)
        try:
            process = self.suite.start_processor(f"{name}-{self.token}", **old.overrides)
        finally:
            self._processes.extend(self.suite.processors[already:])
        assert process.env["PROCESSOR_CONSUMER"] == old.consumer, "the restarted instance has another consumer name"
        self.instances[name] = Instance(name, process, old.group, old.overrides, old.link)
        return self.instances[name]

    def instance(self, name: str) -> Instance:
        assert name in self.instances, f"no Processor called {name!r} in this scenario (known: {list(self.instances)})"
        return self.instances[name]

    def stop(self, name: str) -> int | None:
        """SIGTERM, as a redeployment does; return its exit status."""
        process = self.instance(name).process
        assert process.running(), f"Processor {name} had already exited:\n{process.tail()}"
        return process.stop()

    def kill(self, name: str) -> None:
        """SIGKILL: the instance dies mid-work, acknowledging nothing and closing nothing."""
        process = self.instance(name).process
        assert process.running(), f"Processor {name} had already exited:\n{process.tail()}"
        process.kill()

    def groups(self) -> list[str]:
        return sorted({instance.group for instance in self.instances.values()})

    async def metrics(self, name: str) -> MetricsSnapshot:
        """Instance ``name``'s ``/metrics`` (a scenario counts on its own instances, never on the main one)."""
        assert self.suite.http is not None
        return await scrape(self.instance(name).process.base_url, self.suite.http)

    # -- the stream ------------------------------------------------------------------------------------

    async def pending(self, group: str) -> Pending:
        return await pending(self.publisher.redis, self.stream, group)

    # -- clean-up --------------------------------------------------------------------------------------

    async def clean_up(self) -> None:
        """Stop every instance (in parallel, off the I/O loop: stopping blocks), forget them, close their links,
        delete the keys."""
        await asyncio.gather(*(asyncio.to_thread(process.stop) for process in self._processes))
        self.suite.processors[:] = [p for p in self.suite.processors if p not in self._processes]
        await asyncio.gather(*(link.close() for link in self._links), return_exceptions=True)
        try:
            await delete_keys(self.publisher.redis, self.prefix)
        finally:
            await self.publisher.close()


def instances_of(world: World) -> ScenarioInstances:
    """The scenario's private stream and instances, made on first use and kept in the world's state for the rest
    of the scenario (the world cleans them up). One helper for every step module that starts instances."""
    return world.state(ScenarioInstances, lambda: ScenarioInstances(world.suite, world))


def that_service(world: World) -> ProcessorProcess:
    """The service the scenario started for its purpose (:data:`THAT_SERVICE`)."""
    return instances_of(world).instance(THAT_SERVICE).process
