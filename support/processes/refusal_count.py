"""Counting refusals: how much each reason of ``processor_auth_failures_total`` rose on one instance since a step
said "count from now" (docs/processor.md, section 6), named as the feature files name them."""

from __future__ import annotations

from dataclasses import dataclass

from ..scenario.world import World
from .processor_process import ProcessorProcess
from .scrape import MetricsSnapshot, scrape

AUTH_FAILURES = "processor_auth_failures_total"

#: The feature files' words for each reason (docs/processor.md, section 4 and 6).
REASONS = {
    "a foreign web site": "origin",
    "a request in a language the live map does not speak": "subprotocol",
    "a fan who is not signed in": "no_cookie",
    "a session the CMS does not know": "invalid_cookie",
    "a session that has ended": "unauthorized",
    "a CMS outage": "directus_unavailable",
    "the CMS limiting requests": "directus_rate_limited",
}


@dataclass
class RefusalCount:
    """Where refusals are counted in this scenario, and what the counter said when counting began."""

    process: ProcessorProcess
    baseline: MetricsSnapshot


def rises(now: MetricsSnapshot, since: MetricsSnapshot) -> dict[str, float]:
    """How much each reason of ``processor_auth_failures_total`` rose (only those that did)."""
    reasons = {dict(labels).get("reason") for (name, labels) in now.samples if name == AUTH_FAILURES}
    deltas = {r: now.delta(since, AUTH_FAILURES, reason=r) for r in reasons if r}
    return {r: d for r, d in deltas.items() if d}


def reason_of(kind: str) -> str:
    assert kind in REASONS, f"no refusal called {kind!r} (known: {list(REASONS)})"
    return REASONS[kind]


async def metrics_of(world: World, process: ProcessorProcess | None = None) -> MetricsSnapshot:
    assert world.suite.http is not None
    return await scrape((process or world.suite.processor).base_url, world.suite.http)


async def count_from_now(world: World, process: ProcessorProcess | None = None) -> None:
    """Remember ``process``'s counter (default: the main Processor) for a later "counts one refusal" step."""
    process = process or world.suite.processor
    world.state(RefusalCount, lambda: RefusalCount(process, MetricsSnapshot({})))
    counting = world.state(RefusalCount)
    counting.process, counting.baseline = process, await metrics_of(world, process)


async def counted_since(world: World) -> dict[str, float]:
    """What rose since :func:`count_from_now`, by reason."""
    counting = world.state_if_any(RefusalCount)
    assert counting is not None, "no step of this scenario began counting refusals"
    return rises(await metrics_of(world, counting.process), counting.baseline)
