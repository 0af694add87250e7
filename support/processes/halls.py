"""Services in halls: a scenario's instances named by where they stand ("the service in the north hall" is the
instance ``north``, support/processes/instances.py), what the steps about them remember, and the suite's own
connection to their live channel.

A service that only serves fans stores nothing (its consumer group starts past every entry), so every position reaches
its fans through the live channel; it reaches Redis through a :class:`~support.processes.redis_link.RedisLink` the
scenario can trouble. The channel itself is heard and spoken on with
:class:`~support.processes.live_channel.LiveChannel`.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ..scenario.world import World
from .instances import Instance, instances_of
from .live_channel import Heard, LiveChannel
from .redis_link import RedisLink

#: How the publishers the suite makes up begin (no instance's consumer name does).
MADE_UP = "nobody/"


@dataclass
class Halls:
    """What the steps about services in halls remember: which hall stores, the suite's ear on the channel, marks
    taken before a trouble."""

    storing: str | None = None
    channel: LiveChannel | None = None
    #: The publisher of each hall's messages before it restarted.
    earlier_publisher: dict[str, str] = field(default_factory=dict)
    #: How much the channel had heard when a hall restarted.
    heard_before_restart: int = 0
    #: Each instance's log size before the suite said something unreadable.
    log_marks: dict[str, int] = field(default_factory=dict)
    #: Each fan's inbox length, and the gap counter of each instance, before a trouble.
    inbox_marks: dict[str, int] = field(default_factory=dict)
    gaps_before: dict[str, float] = field(default_factory=dict)
    #: The report whose news was last seen sent, and when (``time.monotonic()``).
    told: tuple[str, float] | None = None


def halls_of(world: World) -> Halls:
    """The scenario's :class:`Halls`, made on first use."""
    return world.state(Halls, Halls)


def in_hall(world: World, hall: str) -> Instance:
    """The service in ``hall``."""
    return instances_of(world).instance(hall)


def link_of(world: World, hall: str) -> RedisLink:
    """The link to Redis of the service in ``hall`` (started ``linked``)."""
    link = in_hall(world, hall).link
    assert link is not None, f"the service in the {hall} hall reaches Redis directly, not over a link"
    return link


def channel_of_scenario(world: World) -> LiveChannel:
    """The suite's own connection to the scenario's live channel (listening only if a step asked for it)."""
    halls = halls_of(world)
    if halls.channel is None:
        endpoints = world.suite.endpoints
        assert endpoints is not None
        halls.channel = LiveChannel(endpoints.redis_url, instances_of(world).stream)
        world.cleanups.append(halls.channel.close)
    return halls.channel


def readable(heard: Heard) -> bool:
    """One of the services' own messages, not something the suite said (its made-up publishers are ``nobody/…``)."""
    try:
        return not str(heard.header().get("publisher", "")).startswith(MADE_UP)
    except (ValueError, AssertionError):
        return False
