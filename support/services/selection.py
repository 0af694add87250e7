"""``-D services=auto|docker|embedded|external``: which provider runs this time.

``auto`` tries the providers of :data:`AUTO_ORDER` in turn and uses the first that starts; one that is
unavailable (binaries not installed, no Docker daemon, Docker's images cannot be had) is passed over, and
the reason is said once in the run's header. It prefers **embedded** over Docker because:

* it is what CI proves on every run (``.ci/lanes/embedded.sh``), so a green run on a laptop means what a
  green CI means;
* it runs every scenario, the ``@needs-service-control`` ones included (Docker skips them: restarted
  containers do not keep their random host ports);
* it starts in a quarter of a second, with no registry and no image pull (TimescaleDB's image is ~1 GB).

Docker stays one option away (``-D services=docker``) for what only it gives: TimescaleDB (positions become
a hypertable), closer to production.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

from ..run.settings import CHOICES
from .base import Endpoints, ServiceProvider, ServicesUnavailable
from .docker import DockerServices
from .embedded import EmbeddedServices
from .external import ExternalServices

#: The providers ``auto`` tries, best first (see the module's docstring for why embedded comes first).
AUTO_ORDER = ("embedded", "docker")


def select_provider(mode: str, *, redis_image: str, postgres_image: str, redis_url: str | None,
                    database_url: str | None) -> ServiceProvider:
    """The provider for ``mode``; for ``auto`` the first of :data:`AUTO_ORDER` (use :func:`start_services`
    to fall back to the next one when it cannot start)."""
    if mode == "auto":
        mode = AUTO_ORDER[0]
    if mode == "docker":
        return DockerServices(redis_image, postgres_image)
    if mode == "embedded":
        return EmbeddedServices()
    if mode == "external":
        return ExternalServices(redis_url, database_url)
    raise ValueError(f"-D services must be one of {', '.join(CHOICES)}, got {mode!r}")


@dataclass
class Started:
    """A provider whose services run, where to reach them, and why ``auto`` passed over others (if it did)."""

    provider: ServiceProvider
    endpoints: Endpoints
    note: str | None = None


def start_services(mode: str, *, redis_image: str, postgres_image: str, redis_url: str | None,
                   database_url: str | None, order: Sequence[str] = AUTO_ORDER,
                   make: Callable[[str], ServiceProvider] | None = None) -> Started:
    """Start the services of ``mode``. For ``auto``, fall back along ``order`` when a provider raises
    :class:`ServicesUnavailable`; raise it (with every reason) when none can start. A provider that fails
    any other way is stopped and the error propagates: a broken provider must not hide behind another."""
    if make is None:
        def make(name: str) -> ServiceProvider:
            return select_provider(name, redis_image=redis_image, postgres_image=postgres_image,
                                   redis_url=redis_url, database_url=database_url)
    if mode not in CHOICES:
        raise ValueError(f"-D services must be one of {', '.join(CHOICES)}, got {mode!r}")
    candidates = list(order) if mode == "auto" else [mode]
    passed_over: list[str] = []
    for name in candidates:
        provider = make(name)
        try:
            endpoints = provider.start()
        except ServicesUnavailable as exc:
            provider.stop()
            if mode != "auto":
                raise
            passed_over.append(str(exc))
            continue
        except BaseException:
            provider.stop()
            raise
        note = f"services=auto chose {provider.name}: {'; '.join(passed_over)}" if passed_over else None
        return Started(provider, endpoints, note)
    raise ServicesUnavailable(f"no services: {'; and '.join(passed_over)}")
