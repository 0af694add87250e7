"""What CMS scenarios need beyond the stand-in's own API: visitors with unusual sessions, the Processor's
counting of CMS refusals, what the CMS was asked about one person, and durations as feature files write them."""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass

from ..processes.scrape import MetricsSnapshot
from ..scenario.world import Person, World
from .directus_stub import SeenRequest, session_of

AUTH_FAILURES = "processor_auth_failures_total"
#: Durations feature files write in words.
DURATION_WORDS = {"a second": 1.0, "half a second": 0.5, "a quarter of a second": 0.25}


def add_visitor(world: World, name: str, cookie: str) -> Person:
    """Put ``name`` in the scenario with a session the stand-in made in a special way (a share link, a
    nameless session); the World forgets it at clean-up like any other."""
    person = Person(name, str(uuid.uuid4()), cookie)
    world.people[name] = person
    return person


def requests_about(world: World, name: str) -> list[SeenRequest]:
    """Every request the CMS saw in this scenario carrying ``name``'s session."""
    token = session_of(world.person(name).cookie or "")
    return [r for r in world.suite.stub.requests_since(0) if token is not None and r.session == token]


def refusals(now: MetricsSnapshot, since: MetricsSnapshot) -> dict[str, float]:
    """How much each reason of ``processor_auth_failures_total`` rose (only those that did)."""
    reasons = {dict(labels).get("reason") for (name, labels) in now.samples if name == AUTH_FAILURES}
    deltas = {r: now.delta(since, AUTH_FAILURES, reason=r) for r in reasons if r}
    return {r: d for r, d in deltas.items() if d}


def seconds_of(text: str) -> float:
    """``"1.5 seconds"``, ``"1 second"``, ``"half a second"`` -> seconds."""
    if text in DURATION_WORDS:
        return DURATION_WORDS[text]
    match = re.fullmatch(r"(\d+(?:\.\d+)?) seconds?", text)
    assert match, f"not a duration: {text!r} (e.g. '1.5 seconds', or one of {list(DURATION_WORDS)})"
    return float(match.group(1))


@dataclass
class RefusalCount:
    """The Processor's refusal counters (``processor_auth_failures_total``) when a CMS scenario began to count."""

    baseline: MetricsSnapshot


async def start_counting(world: World) -> None:
    """Remember the counters now; :func:`counted_since_start` says how each reason rose from here."""
    world.state(RefusalCount, lambda: RefusalCount(MetricsSnapshot({}))).baseline = await world.metrics()


async def counted_since_start(world: World) -> dict[str, float]:
    """How much each reason rose since :func:`start_counting` (only those that did)."""
    return refusals(await world.metrics(), world.state(RefusalCount).baseline)
