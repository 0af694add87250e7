"""A second service whose way to the database the scenario controls: race windows of the corrections, opened on
purpose instead of hoped for.

The corrections of docs/processor.md (section 4) are computed by a query after a notification, and meet live
positions, other corrections and snapshots in the Processor. Whether the rules hold depends on what arrives
first. The scenario's second instance reaches PostgreSQL through a :class:`~support.processes.slow_link.SlowLink`,
so the suite can hold a query's result on its way (and let several held results go in the order it chooses), cut
the connection that carries it, cut or silence the listener's connection, or turn new connections away for a
while; the service only sees a slow or broken network.

The second service takes no reports itself: its consumer group is created by the suite before it starts,
positioned past any entry the stream will ever hold (``BUSYGROUP`` is not an error, section 5), so whatever a
tracker reports is stored and published by another instance of the scenario, and reaches the second service
through the live channel only. Its own inserts can then never race the other instance's, nor be held by the link.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

import redis.asyncio as aioredis

from ..clock import SETTLE
from ..database.postgres import Database
from ..waiting import eventually
from .instances import ScenarioInstances
from .slow_link import Relayed, SlowLink

#: The instance names behind the scenario's words.
SECOND, STORER = "second", "storer"
#: A stream entry id past any the stream will hold (milliseconds in the year 2286).
PAST_EVERY_ENTRY = "9999999999999-0"
NOTIFICATIONS = "processor_correction_notifications_total"
LISTENING = "processor_correction_listener_up"
#: What the texts of the queries the link holds mention (a snapshot's and a correction's read positions).
READS_POSITIONS = "positions"


@dataclass
class SecondService:
    """The link, and what the scenario noted when it began holding: the database's clock, the notifications the
    second service had counted, and which held connections ran which query."""

    link: SlowLink
    since: datetime | None = None
    notifications_before: float = 0.0
    #: Race control's changes before the hold began (:attr:`RaceControl.changes`).
    changes_before: int = 0
    #: Held connections that ran a query reading positions, by what the scenario calls it ("snapshot", ...).
    named: dict[str, Relayed] = field(default_factory=dict)
    #: The event each fan began opening while the link held (her answer may not have arrived yet).
    opened: dict[str, str] = field(default_factory=dict)


async def take_no_reports(redis: aioredis.Redis, stream: str, group: str) -> None:
    """Create ``group`` on ``stream`` past every entry: a service reading through it is never handed a report."""
    await redis.xgroup_create(stream, group, id=PAST_EVERY_ENTRY, mkstream=True)


async def listening(instances: ScenarioInstances, name: str) -> None:
    """Return once instance ``name`` is LISTENing for corrections (its gauge is 1)."""

    async def up() -> tuple[bool, float]:
        value = (await instances.metrics(name)).value(LISTENING)
        return value == 1, value

    await eventually(up, timeout=SETTLE, what=f"{LISTENING} = 1 on the {name} service")


async def begin_holding(service: SecondService, db: Database, instances: ScenarioInstances, changes: int) -> None:
    """Note the database's clock, the notifications counted and race control's ``changes`` so far, then hold every
    result on the link; nothing more if it holds already."""
    if service.since is not None:
        return
    service.since = await db.server_clock()
    service.notifications_before = (await instances.metrics(SECOND)).value(NOTIFICATIONS)
    service.changes_before = changes
    service.link.hold()


def stop_holding(service: SecondService) -> None:
    """Forget the hold (the link itself is released or cut by the caller)."""
    service.since = None
    service.named.clear()


async def held_query(service: SecondService, db: Database, what: str) -> Relayed:
    """Wait until one more held connection than those already named has run a query reading positions since
    the hold began; name it ``what`` and return it."""
    assert service.since is not None, "the link is not holding anything"
    since = service.since
    known = {connection.port for connection in service.named.values()}

    async def ran() -> tuple[bool, list[int]]:
        ports = await db.finished_query_ports(service.link.held_ports, since=since, mentioning=READS_POSITIONS)
        return any(port not in known for port in ports), ports

    ports = await eventually(ran, timeout=SETTLE, what=f"the query of the {what} to have run, its answer held")
    service.named[what] = service.link.by_port(next(port for port in ports if port not in known))
    return service.named[what]


async def notified(service: SecondService, instances: ScenarioInstances, changes: int) -> None:
    """Return once the second service has counted ``changes`` notifications since the hold began."""

    async def counted() -> tuple[bool, float]:
        delta = (await instances.metrics(SECOND)).value(NOTIFICATIONS) - service.notifications_before
        return delta >= changes, delta

    await eventually(counted, timeout=SETTLE, what=f"{changes} notifications counted by the second service")
