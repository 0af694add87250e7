"""The suite's service providers, with fakes instead of Docker: nothing leaks when a start fails, one
container that cannot be removed does not keep the other alive, and ``auto`` falls back saying why.

These guard the clean-up paths the acceptance lanes only meet by accident (a broken image, a registry that
does not answer)."""

from __future__ import annotations

from typing import ClassVar

import pytest

from support.services import docker as docker_module
from support.services.base import Endpoints, ServiceControl, ServiceControlUnsupported, ServicesUnavailable
from support.services.docker import DockerServices, ImagesUnavailable
from support.services.selection import start_services


class FakeContainer:
    """Records what the provider did to it; ``fail_start``/``fail_stop`` make those calls raise."""

    instances: ClassVar[list[FakeContainer]] = []

    def __init__(self, image: str, **_: object) -> None:
        self.image = image
        self.ports: dict[str, object] = {}
        self.started = self.removed = False
        self.fail_start = image.startswith("broken")
        self.fail_stop = image.startswith("sticky")
        FakeContainer.instances.append(self)

    def with_command(self, _command: str) -> FakeContainer:
        return self

    def get_docker_client(self) -> FakeContainer:
        return self

    def host(self) -> str:
        return "localhost"

    def start(self) -> FakeContainer:
        self.started = True  # created and started: from here on it exists on the daemon
        if self.fail_start:
            raise TimeoutError(f"{self.image} never became ready")
        return self

    def stop(self) -> None:
        if self.fail_stop:
            raise RuntimeError(f"{self.image} cannot be removed")
        self.removed = True

    def get_exposed_port(self, _port: int) -> int:
        return 40000

    def get_connection_url(self, host: str | None = None) -> str:
        return f"postgresql://postgres:pw@{host}:40001/live_suite"


@pytest.fixture
def fake_docker(monkeypatch: pytest.MonkeyPatch) -> type[FakeContainer]:
    import testcontainers.community.postgres as tc_postgres
    import testcontainers.community.redis as tc_redis

    FakeContainer.instances = []
    monkeypatch.setattr(docker_module, "docker_available", lambda: None)
    monkeypatch.setattr(docker_module, "images_unavailable", lambda *images: None)
    monkeypatch.setattr(tc_redis, "RedisContainer", FakeContainer)
    monkeypatch.setattr(tc_postgres, "PostgresContainer", FakeContainer)
    return FakeContainer


def test_a_container_whose_start_fails_is_removed_with_the_other(fake_docker: type[FakeContainer]) -> None:
    provider = DockerServices("redis:7", "broken-postgres:15")
    with pytest.raises(TimeoutError):
        provider.start()
    redis, postgres = fake_docker.instances
    assert redis.started and redis.removed
    assert postgres.started and postgres.removed, "the container that failed to start was leaked"


def test_ports_are_published_on_loopback_only(fake_docker: type[FakeContainer]) -> None:
    provider = DockerServices("redis:7", "postgres:15")
    endpoints = provider.start()
    redis, postgres = fake_docker.instances
    assert redis.ports == {"6379": ("127.0.0.1",)} and postgres.ports == {"5432": ("127.0.0.1",)}
    assert endpoints.redis_url == "redis://127.0.0.1:40000/0"
    provider.stop()


def test_one_container_that_cannot_be_removed_does_not_keep_the_other(fake_docker: type[FakeContainer]) -> None:
    provider = DockerServices("redis:7", "sticky-postgres:15")
    provider.start()
    with pytest.raises(RuntimeError, match="sticky-postgres"):
        provider.stop()
    redis, _postgres = fake_docker.instances
    assert redis.removed
    provider.stop()  # safe to call twice: nothing left to remove


class FakeProvider:
    def __init__(self, name: str, unavailable: str | None = None) -> None:
        self.name = name
        self.unavailable = unavailable
        self.stopped = False

    def start(self) -> Endpoints:
        if self.unavailable:
            raise ImagesUnavailable(self.unavailable)
        return Endpoints("redis://x", "postgresql://x")

    def stop(self) -> None:
        self.stopped = True

    def describe(self) -> str:
        return self.name

    def service_control(self) -> ServiceControl:
        raise ServiceControlUnsupported("a fake")


def test_auto_falls_back_and_says_why_once() -> None:
    made: dict[str, FakeProvider] = {}

    def make(name: str) -> FakeProvider:
        made[name] = FakeProvider(name, "docker services unavailable: image redis:7 cannot be pulled"
                                  if name == "docker" else None)
        return made[name]

    started = start_services("auto", redis_image="", postgres_image="", redis_url=None, database_url=None,
                             order=("docker", "embedded"), make=make)
    assert started.provider is made["embedded"]
    assert started.note == "services=auto chose embedded: docker services unavailable: image redis:7 cannot be pulled"
    assert made["docker"].stopped


def test_an_explicit_provider_does_not_fall_back() -> None:
    with pytest.raises(ServicesUnavailable, match="cannot be pulled"):
        start_services("docker", redis_image="", postgres_image="", redis_url=None, database_url=None,
                       make=lambda name: FakeProvider(name, "image redis:7 cannot be pulled"))


def test_auto_with_nothing_usable_gives_every_reason() -> None:
    with pytest.raises(ServicesUnavailable, match="no services: embedded: none; and docker: none"):
        start_services("auto", redis_image="", postgres_image="", redis_url=None, database_url=None,
                       make=lambda name: FakeProvider(name, f"{name}: none"))
