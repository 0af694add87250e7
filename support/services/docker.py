"""Redis and TimescaleDB in Docker containers, through testcontainers.

Opt-in (``-D services=docker``), or ``auto``'s second choice when the embedded binaries are missing (see
:mod:`support.services.selection` for why). What this provider guarantees:

* **Nothing leaks.** Each container object is created and kept *before* it is started, so a start or a
  readiness wait that fails still leaves the suite holding the container, and :meth:`DockerServices.stop`
  removes it. :meth:`stop` removes each container independently: one that cannot be removed does not keep
  the other alive.
* **Nothing is exposed.** With a local daemon the ports are published on 127.0.0.1 only, and PostgreSQL gets
  a random password per run (testcontainers' default publishes on every interface).
* **No surprise mid-run.** Both images are looked up (and pulled if absent) before any container starts, so
  an image that cannot be had is one clear :class:`ImagesUnavailable` line, on which ``auto`` falls back to
  the embedded services and ``services=docker`` skips (or fails, with ``require_services=true``).
"""

from __future__ import annotations

import secrets
from typing import Any

from ..run.settings import POSTGRES_IMAGE, REDIS_IMAGE
from .base import Endpoints, ServiceControl, ServiceControlUnsupported, ServicesUnavailable

DATABASE = "live_suite"
LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1"}


class ImagesUnavailable(ServicesUnavailable):
    """A Docker daemon answers, but an image the suite needs cannot be had (no registry, a typo)."""


def docker_available() -> str | None:
    """``None`` when a Docker daemon answers, else why not (one line)."""
    try:
        import docker  # installed with testcontainers
    except ImportError:
        return "the docker package is not installed"
    try:
        client = docker.from_env(timeout=3)
        client.ping()
        client.close()
    except Exception as exc:  # any failure to reach the daemon means "no Docker here"
        return f"no Docker daemon answered ({type(exc).__name__})"
    return None


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0] if text else ''}".rstrip(": ")


def images_unavailable(*images: str) -> str | None:
    """``None`` when every image is present locally or could be pulled, else why not (one line).

    Pulling here, before any container exists, is what lets ``auto`` fall back cleanly instead of dying in
    the middle of ``before_all`` with ``ImageNotFound``."""
    import docker

    client = docker.from_env(timeout=600)  # a first pull of TimescaleDB takes minutes on a slow link
    try:
        for image in images:
            try:
                client.images.get(image)
                continue
            except docker.errors.ImageNotFound:
                pass  # not here yet: pulled just below
            except docker.errors.APIError as exc:
                return f"image {image} cannot be looked up ({_first_line(exc)})"
            try:
                client.images.pull(image)
            except Exception as exc:  # ImageNotFound, registry unreachable, bad name: all "cannot be had"
                return f"image {image} is not present and cannot be pulled ({_first_line(exc)})"
    finally:
        client.close()
    return None


class DockerServices:
    """``redis:7`` and ``timescale/timescaledb`` containers, removed by :meth:`stop` (Ryuk as a backstop
    where it runs)."""

    name = "docker"
    def service_control(self) -> ServiceControl:
        """Declined: resilience scenarios (@needs-service-control) are skipped here."""
        raise ServiceControlUnsupported("the docker provider cannot stop and restart its servers: testcontainers "
                                        "maps random host ports, which a restarted container does not keep")

    def __init__(self, redis_image: str = REDIS_IMAGE, postgres_image: str = POSTGRES_IMAGE) -> None:
        self.redis_image = redis_image
        self.postgres_image = postgres_image
        self.redis: Any = None
        self.postgres: Any = None
        self.host = "127.0.0.1"

    def start(self) -> Endpoints:
        reason = docker_available()
        if reason:
            raise ServicesUnavailable(f"docker services unavailable: {reason}")
        reason = images_unavailable(self.redis_image, self.postgres_image)
        if reason:
            raise ImagesUnavailable(f"docker services unavailable: {reason}")
        from testcontainers.community.postgres import PostgresContainer
        from testcontainers.community.redis import RedisContainer

        password = secrets.token_hex(12)
        # Assign first, start second: whatever start() got as far as creating, stop() can remove.
        self.redis = RedisContainer(self.redis_image)
        self.postgres = (
            PostgresContainer(self.postgres_image, username="postgres", password=password, dbname=DATABASE,
                              driver=None)
            .with_command("postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off"
                          " -c track_activity_query_size=16384")
        )
        try:
            self._bind_locally(self.redis, 6379)
            self._bind_locally(self.postgres, 5432)
            self.redis.start()
            self.postgres.start()
            redis_port = self.redis.get_exposed_port(6379)
            database_url = self.postgres.get_connection_url(host=self.host)
        except BaseException:
            self.stop()
            raise
        return Endpoints(redis_url=f"redis://{self.host}:{redis_port}/0", database_url=database_url)

    def _bind_locally(self, container: Any, port: int) -> None:
        """Publish ``port`` on 127.0.0.1 only when the daemon is on this machine; a remote daemon's ports
        must stay reachable from here, so they keep testcontainers' default (every interface)."""
        daemon_host = container.get_docker_client().host()
        if daemon_host in LOCAL_HOSTS:
            container.ports[str(port)] = ("127.0.0.1",)  # docker-py: host IP only, random host port
            self.host = "127.0.0.1"
        else:
            self.host = daemon_host

    def stop(self) -> None:
        """Remove both containers, each on its own: a failure removing one is reported after the other is
        removed too."""
        errors: list[str] = []
        for attribute in ("postgres", "redis"):
            container = getattr(self, attribute)
            setattr(self, attribute, None)
            if container is None:
                continue
            try:
                container.stop()
            except Exception as exc:  # keep going: the other container must still be removed
                errors.append(f"{attribute}: {_first_line(exc)}")
        if errors:
            raise RuntimeError(f"docker services: could not remove every container: {'; '.join(errors)}")

    def describe(self) -> str:
        return (f"docker services: {self.redis_image} and {self.postgres_image} (testcontainers), "
                f"published on {self.host}")
