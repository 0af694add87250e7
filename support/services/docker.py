"""Redis and TimescaleDB in Docker containers, through testcontainers."""

from __future__ import annotations

from typing import Any

from .base import Endpoints, ServiceControlUnsupported, ServicesUnavailable

REDIS_IMAGE = "redis:7"
POSTGRES_IMAGE = "timescale/timescaledb:latest-pg16"
DATABASE = "live_suite"


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


class DockerServices:
    """``redis:7`` and ``timescale/timescaledb`` containers, removed by :meth:`stop` (and Ryuk as a backstop)."""

    name = "docker"
    #: Resilience scenarios (@needs-service-control) are skipped here: testcontainers maps random host ports, which a restarted container does not keep.
    controls_services = False

    def stop_service(self, name: str) -> None:
        raise ServiceControlUnsupported(f"the docker provider cannot stop {name}: testcontainers maps random host ports, which a restarted container does not keep")

    start_service = stop_service

    def __init__(self, redis_image: str = REDIS_IMAGE, postgres_image: str = POSTGRES_IMAGE) -> None:
        self.redis_image = redis_image
        self.postgres_image = postgres_image
        self.redis: Any = None
        self.postgres: Any = None

    def start(self) -> Endpoints:
        reason = docker_available()
        if reason:
            raise ServicesUnavailable(f"docker services unavailable: {reason}")
        from testcontainers.postgres import PostgresContainer
        from testcontainers.redis import RedisContainer

        try:
            self.redis = RedisContainer(self.redis_image).start()
            self.postgres = (
                PostgresContainer(self.postgres_image, username="postgres", password="postgres", dbname=DATABASE,
                                  driver=None)
                .with_command("postgres -c fsync=off -c synchronous_commit=off -c full_page_writes=off")
                .start()
            )
        except BaseException:
            self.stop()
            raise
        redis_host = self.redis.get_container_host_ip()
        redis_port = self.redis.get_exposed_port(6379)
        return Endpoints(
            redis_url=f"redis://{redis_host}:{redis_port}/0",
            database_url=self.postgres.get_connection_url(),
        )

    def stop(self) -> None:
        for container in (self.postgres, self.redis):
            if container is not None:
                container.stop()
        self.postgres = self.redis = None

    def describe(self) -> str:
        return f"docker services: {self.redis_image} and {self.postgres_image} (testcontainers)"
