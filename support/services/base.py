"""What every service provider gives the suite."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol


class ServicesUnavailable(Exception):
    """No usable Redis/PostgreSQL: the run is skipped (or fails when services are required)."""


class ServiceControlUnsupported(Exception):
    """The provider cannot stop or pause its services (e.g. ``external``)."""


@dataclass(frozen=True)
class Endpoints:
    """Where the suite and the Processor reach the services, and the names the run may use there."""

    redis_url: str
    database_url: str
    #: Telemetry stream key; prefixed when the Redis server is shared (``external``).
    stream: str = "telemetry:teltonika"


class ServiceProvider(Protocol):
    """Starts Redis and PostgreSQL for one run and removes every trace of them afterwards."""

    name: str

    def start(self) -> Endpoints:
        """Start (or reach) the services; raise :class:`ServicesUnavailable` when there are none."""
        ...

    def stop(self) -> None:
        """Stop what :meth:`start` started and delete its files. Safe to call twice or after a failed start."""
        ...

    def describe(self) -> str:
        """One line for the run's header: what runs where."""
        ...


def service_control(provider: object | None) -> object:
    """The provider, if it can stop and start its servers in place (same ports, same data); else raise
    :class:`ServiceControlUnsupported` saying why."""
    if provider is None or not getattr(provider, "controls_services", False):
        name = getattr(provider, "name", "no provider")
        raise ServiceControlUnsupported(f"the {name} services cannot be stopped and restarted by the suite")
    return provider
