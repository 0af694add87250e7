"""Directus as the authority on who is signed in and who may watch which event.

The client's ``Cookie`` header is forwarded unchanged and never stored in a cookie jar, so one viewer's
session can never leak into another viewer's request.
"""

from __future__ import annotations

import asyncio
import enum
import logging
from typing import Any

import aiohttp


__all__ = ["Directus", "Outcome"]

logger = logging.getLogger("processor.directus")


class Outcome(enum.Enum):
    OK = "ok"
    UNAUTHORIZED = "unauthorized"  # 401
    FORBIDDEN = "forbidden"  # 403
    NOT_FOUND = "not_found"  # 404
    UNAVAILABLE = "unavailable"  # unreachable, timeout, 5xx, anything else


class Directus:
    """A small aiohttp client for ``/users/me`` and ``/items/events/<id>``."""

    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout
        self._session: aiohttp.ClientSession | None = None

    def _get_session(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(
                cookie_jar=aiohttp.DummyCookieJar(),
                timeout=aiohttp.ClientTimeout(total=self.timeout),
                connector=aiohttp.TCPConnector(limit=200, ttl_dns_cache=60),
            )
        return self._session

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()

    async def _get(self, path: str, cookie: str, *, want_body: bool) -> tuple[int | None, Any]:
        """Status and (optionally) parsed JSON body; ``None`` status when Directus could not be reached."""
        session = self._get_session()
        try:
            async with asyncio.timeout(self.timeout):
                async with session.get(
                    self.base_url + path, headers={"Cookie": cookie}, allow_redirects=False
                ) as response:
                    body = None
                    if want_body and response.status == 200:
                        try:
                            body = await response.json(content_type=None)
                        except (ValueError, aiohttp.ContentTypeError):
                            body = None
                    return response.status, body
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            logger.warning("GET %s failed: %s %s", path, type(exc).__name__, exc)
            return None, None

    async def current_user(self, cookie: str) -> tuple[Outcome, str | None]:
        """Who the cookie belongs to: ``(OK, user_id)``, ``(UNAUTHORIZED, None)`` or ``(UNAVAILABLE, None)``."""
        status, body = await self._get("/users/me", cookie, want_body=True)
        if status == 200:
            data = body.get("data") if isinstance(body, dict) else None
            user_id = data.get("id") if isinstance(data, dict) else None
            if user_id is None:
                logger.warning("GET /users/me answered 200 without data.id")
                return Outcome.UNAVAILABLE, None
            return Outcome.OK, str(user_id)
        if status in (401, 403):
            return Outcome.UNAUTHORIZED, None
        if status is not None:
            logger.warning("GET /users/me answered %d", status)
        return Outcome.UNAVAILABLE, None

    async def may_watch(self, cookie: str, event_id: str) -> Outcome:
        """Whether the cookie's user may read event ``event_id`` (a validated, lower-case UUID)."""
        status, _ = await self._get(f"/items/events/{event_id}", cookie, want_body=False)
        if status == 200:
            return Outcome.OK
        if status == 401:
            return Outcome.UNAUTHORIZED
        if status == 403:
            return Outcome.FORBIDDEN
        if status == 404:
            return Outcome.NOT_FOUND
        if status is not None:
            logger.warning("GET /items/events/%s answered %d", event_id, status)
        return Outcome.UNAVAILABLE
