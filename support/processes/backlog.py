"""The service under test of a backlog scenario (the run's main Processor, or one of the scenario's own) and what
its consumer group owes, read from Redis itself (``XPENDING``, ``XINFO GROUPS``) and from the service's gauges."""

from __future__ import annotations

from dataclasses import dataclass

from ..scenario.world import World
from ..trackers.stream import group_lag, group_of, pending
from .processor_process import ProcessorProcess
from .scrape import scrape


@dataclass
class ServiceUnderTest:
    """Which Processor a scenario watches, and where it reads."""

    process: ProcessorProcess
    stream: str

    @property
    def consumer(self) -> str:
        return self.process.env["PROCESSOR_CONSUMER"]


@dataclass(frozen=True)
class Backlog:
    """What the group owes, as Redis counts it and as the service's gauges say."""

    taken: int
    waiting: int | None
    gauge_taken: float
    gauge_waiting: float


async def backlog(world: World, service: ServiceUnderTest) -> Backlog:
    """Entries delivered to the service's consumer and not acknowledged, entries not yet delivered to its group,
    and the service's ``processor_stream_pending`` and ``processor_stream_lag``."""
    assert world.publisher is not None and world.suite.http is not None
    redis = world.publisher.redis
    group = await group_of(redis, service.stream, service.consumer)
    owed = await pending(redis, service.stream, group)
    lag = await group_lag(redis, service.stream, group)
    metrics = await scrape(service.process.base_url, world.suite.http)
    return Backlog(owed.of(service.consumer), lag, metrics.value("processor_stream_pending"),
                   metrics.value("processor_stream_lag"))
