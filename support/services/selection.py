"""``-D services=auto|docker|embedded|external``: which provider runs this time."""

from __future__ import annotations

from .base import ServiceProvider, ServicesUnavailable
from .docker import DockerServices, docker_available
from .embedded import EmbeddedServices, missing_binaries
from .external import ExternalServices

CHOICES = ("auto", "docker", "embedded", "external")


def select_provider(mode: str, *, redis_image: str, postgres_image: str, redis_url: str | None,
                    database_url: str | None) -> ServiceProvider:
    """The provider for ``mode``; ``auto`` prefers Docker, then embedded binaries, else raises why neither."""
    if mode == "docker":
        return DockerServices(redis_image, postgres_image)
    if mode == "embedded":
        return EmbeddedServices()
    if mode == "external":
        return ExternalServices(redis_url, database_url)
    if mode != "auto":
        raise ValueError(f"-D services must be one of {', '.join(CHOICES)}, got {mode!r}")
    no_docker = docker_available()
    if no_docker is None:
        return DockerServices(redis_image, postgres_image)
    no_binaries = missing_binaries()
    if no_binaries is None:
        return EmbeddedServices()
    raise ServicesUnavailable(f"no services: {no_docker}, and {no_binaries}")
