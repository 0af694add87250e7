"""The HTTP seam to Directus: one answer as read (:class:`Reply`), and the production transport over aiohttp.

:class:`processor.directus.Directus` asks its questions through a :class:`Transport`; the unit lane replaces it
with fakes, the production one is :class:`AiohttpTransport`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Mapping
from dataclasses import dataclass, field
from typing import Protocol

import aiohttp
from yarl import URL

__all__ = ["NO_AIOHTTP_TIMEOUT", "AiohttpTransport", "Reply", "Transport", "TransportError"]


@dataclass(frozen=True)
class Reply:
    """One HTTP answer from Directus, as the transport read it."""

    status: int
    body: bytes = b""
    headers: Mapping[str, str] = field(default_factory=dict)

    def header(self, name: str) -> str | None:
        wanted = name.lower()
        return next((v for k, v in self.headers.items() if k.lower() == wanted), None)


class TransportError(Exception):
    """Directus could not be asked or did not answer (refused, reset, timed out)."""


class Transport(Protocol):
    """The HTTP seam: ``GET base_url + path`` with these headers, within ``timeout`` seconds."""

    def __call__(self, path: str, headers: Mapping[str, str], timeout: float) -> Awaitable[Reply]: ...


#: aiohttp's own timers off (its default is a 300 s total per request, one timer each): the caller's deadline,
#: one ``asyncio.timeout`` per request, is the only bound. Built once, not per request.
NO_AIOHTTP_TIMEOUT = aiohttp.ClientTimeout(total=None, connect=None, sock_read=None, sock_connect=None)

#: Request URLs parsed once per path (``/users/me`` and one per event asked about), at most this many kept.
URL_CACHE = 1024


class AiohttpTransport:
    """The production transport: one aiohttp session, no cookie jar, no redirects.

    Per request it builds as little as it can (the CMS check is on every viewer's upgrade path, profile in
    bench/ANALYSIS.md): no aiohttp timer, the URL parsed once per path, the headers passed as given, the
    answer's headers kept as aiohttp read them."""

    def __init__(self, base_url: str) -> None:
        self.base_url = base_url.rstrip("/")
        self._session: aiohttp.ClientSession | None = None
        self._urls: dict[str, URL] = {}

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(),
                connector=aiohttp.TCPConnector(limit=200, ttl_dns_cache=60),
                timeout=NO_AIOHTTP_TIMEOUT,
            )
        return self._session

    def _url(self, path: str) -> URL:
        url = self._urls.get(path)
        if url is None:
            if len(self._urls) >= URL_CACHE:
                self._urls.clear()
            url = self._urls[path] = URL(self.base_url + path)
        return url

    async def __call__(self, path: str, headers: Mapping[str, str], timeout: float) -> Reply:
        session = self._get_session()
        try:
            async with asyncio.timeout(timeout):
                async with session.get(self._url(path), headers=headers, allow_redirects=False) as r:
                    body = await r.read()
                    return Reply(r.status, body, r.headers)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            raise TransportError(f"{type(exc).__name__} {exc}") from exc

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
