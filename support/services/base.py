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


class ServiceControl(Protocol):
    """Stopping, starting, freezing and thawing one of the run's servers in place (same port, same data), for
    the resilience scenarios (@needs-service-control). ``name`` is ``redis`` or ``postgres``."""

    def stop_service(self, name: str) -> None: ...

    def start_service(self, name: str) -> None: ...

    def pause_service(self, name: str) -> None: ...

    def resume_service(self, name: str) -> None: ...


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

    def service_control(self) -> ServiceControl:
        """Control of the servers (often the provider itself), or raise :class:`ServiceControlUnsupported` saying
        why this provider declines."""
        ...


def service_control(provider: ServiceProvider | None) -> ServiceControl:
    """The provider's control of its servers in place (same ports, same data); else raise
    :class:`ServiceControlUnsupported` saying why."""
    if provider is None:
        raise ServiceControlUnsupported("no services were started, so none can be stopped and restarted")
    return provider.service_control()
