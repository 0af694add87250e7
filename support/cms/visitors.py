"""What CMS scenarios need beyond the stand-in's own API: visitors with unusual sessions, the Processor's
counting of CMS refusals, and what the CMS was asked about one person."""

from __future__ import annotations

import uuid

from ..processes.scrape import MetricsSnapshot
from ..scenario.world import Person, World
from .directus_stub import SeenRequest, session_of

AUTH_FAILURES = "processor_auth_failures_total"


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
