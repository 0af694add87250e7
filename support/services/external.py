"""Services someone else runs (CI service containers, a developer's own servers).

The suite must not disturb anything else there: it creates its own database (``live_suite_<random>``) and
uses its own stream key (``suite-<random>:telemetry:teltonika``), and removes both at the end.
"""

from __future__ import annotations

import asyncio
import secrets
from urllib.parse import urlsplit, urlunsplit

from ..clock import SETTLE, within
from .base import Endpoints, ServiceControl, ServiceControlUnsupported, ServicesUnavailable


def _with_database(url: str, database: str) -> str:
    parts = urlsplit(url)
    return urlunsplit(parts._replace(path=f"/{database}"))


class ExternalServices:
    """Reach ``REDIS_URL`` and ``DATABASE_URL``; own only a fresh database and key prefix there."""

    name = "external"
    def service_control(self) -> ServiceControl:
        """Declined: resilience scenarios (@needs-service-control) are skipped here."""
        raise ServiceControlUnsupported("the external provider cannot stop and restart its servers: they belong to "
                                        "someone else")

    def __init__(self, redis_url: str | None, database_url: str | None) -> None:
        self.redis_url = redis_url
        self.admin_url = database_url
        self.token = secrets.token_hex(4)
        self.database = f"live_suite_{self.token}"
        self.stream = f"suite-{self.token}:telemetry:teltonika"
        self._created = False

    def start(self) -> Endpoints:
        if not self.redis_url or not self.admin_url:
            raise ServicesUnavailable("external services unavailable: set REDIS_URL and DATABASE_URL "
                                      "(or -D redis_url=... -D database_url=...)")
        asyncio.run(self._admin(f'CREATE DATABASE "{self.database}"'))
        self._created = True
        return Endpoints(redis_url=self.redis_url, database_url=_with_database(self.admin_url, self.database),
                         stream=self.stream)

    def stop(self) -> None:
        if self._created:
            asyncio.run(self._admin(f'DROP DATABASE IF EXISTS "{self.database}" WITH (FORCE)'))
            self._created = False
        if self.redis_url:
            import redis

            client = redis.Redis.from_url(self.redis_url)
            try:
                keys = list(client.scan_iter(match=f"suite-{self.token}:*"))
                if keys:
                    client.delete(*keys)
            finally:
                client.close()

    async def _admin(self, statement: str) -> None:
        import asyncpg

        assert self.admin_url is not None
        conn = await asyncpg.connect(self.admin_url, timeout=within(SETTLE))
        try:
            await conn.execute(statement)
        finally:
            await conn.close()

    def describe(self) -> str:
        host = urlsplit(self.admin_url or "").hostname
        return f"external services: database {self.database} on {host}, stream {self.stream}"
