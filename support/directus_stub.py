"""A tiny stand-in for Directus: who is signed in (``/users/me``) and who may watch what
(``/items/events/<id>``).

We are not testing Directus; we are testing what the Processor does with whatever Directus answers. Each
scenario signs its own people in with fresh session cookies and grants them events; the stub records every
request it saw, for assertions ("the CMS was not consulted") and for failure reports.
"""

from __future__ import annotations

import asyncio
import secrets
import time
from dataclasses import dataclass, field
from http.cookies import CookieError, SimpleCookie

from aiohttp import web

SESSION_COOKIE = "directus_session_token"


@dataclass(frozen=True)
class SeenRequest:
    at: float
    method: str
    path: str
    session: str | None
    status: int

    def __str__(self) -> str:
        who = f"session …{self.session[-6:]}" if self.session else "no session"
        return f"{self.method} {self.path} ({who}) -> {self.status}"


@dataclass
class DirectusStub:
    """Sessions map to users, users to the events they may watch; ``known_events`` makes 403 and 404 differ."""

    sessions: dict[str, str] = field(default_factory=dict)
    grants: dict[str, set[str]] = field(default_factory=dict)
    known_events: set[str] = field(default_factory=set)
    revoked: set[str] = field(default_factory=set)
    requests: list[SeenRequest] = field(default_factory=list)
    #: ``None``: answering normally. ``"503"``: every request gets 503. ``"silent"``: every request is held
    #: for :attr:`silence` seconds (longer than the Processor's Directus timeout) before a 503, as if down.
    down: str | None = None
    silence: float = 3.0
    port: int = 0
    _runner: web.AppRunner | None = None

    # -- configuration (called by scenarios) -----------------------------------------------------------

    def sign_in(self, user_id: str) -> str:
        """Open a session for ``user_id``; return the ``Cookie`` header a browser would send."""
        token = secrets.token_urlsafe(24)
        self.sessions[token] = user_id
        return f"{SESSION_COOKIE}={token}"

    def grant(self, user_id: str, event_id: str) -> None:
        self.grants.setdefault(user_id, set()).add(event_id)

    def revoke(self, cookie: str) -> None:
        """From now on Directus answers 401 for this session."""
        token = _session_of(cookie)
        if token:
            self.revoked.add(token)

    def go_down(self, how: str) -> None:
        assert how in ("503", "silent"), how
        self.down = how

    def come_back(self) -> None:
        self.down = None

    def forget(self, *, cookies: list[str], users: list[str], events: list[str]) -> None:
        for cookie in cookies:
            token = _session_of(cookie)
            self.sessions.pop(token or "", None)
            self.revoked.discard(token or "")
        for user in users:
            self.grants.pop(user, None)
        self.known_events.difference_update(events)

    def requests_since(self, mark: int) -> list[SeenRequest]:
        return self.requests[mark:]

    # -- HTTP ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/users/me", self._users_me)
        app.router.add_get("/items/events/{event_id}", self._event)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def _user(self, request: web.Request) -> tuple[str | None, str | None]:
        token = _session_of(request.headers.get("Cookie", ""))
        if token is None or token in self.revoked:
            return token, None
        return token, self.sessions.get(token)

    def _answer(self, request: web.Request, token: str | None, status: int, data: dict | None = None) -> web.Response:
        self.requests.append(SeenRequest(time.monotonic(), request.method, request.path_qs, token, status))
        if data is None:
            return web.json_response({"errors": [{"message": "stub says no"}]}, status=status)
        return web.json_response({"data": data}, status=status)

    async def _outage(self, request: web.Request) -> web.Response | None:
        if self.down is None:
            return None
        token = _session_of(request.headers.get("Cookie", ""))
        answer = self._answer(request, token, 503)  # recorded on arrival, within the scenario that caused it
        if self.down == "silent":
            await asyncio.sleep(self.silence)  # the stub plays a CMS that does not answer in time
        return answer

    async def _users_me(self, request: web.Request) -> web.Response:
        if (outage := await self._outage(request)) is not None:
            return outage
        token, user = self._user(request)
        if user is None:
            return self._answer(request, token, 401)
        return self._answer(request, token, 200, {"id": user})

    async def _event(self, request: web.Request) -> web.Response:
        if (outage := await self._outage(request)) is not None:
            return outage
        token, user = self._user(request)
        event_id = request.match_info["event_id"]
        if user is None:
            return self._answer(request, token, 401)
        if event_id not in self.known_events:
            return self._answer(request, token, 404)
        if event_id not in self.grants.get(user, set()):
            return self._answer(request, token, 403)
        return self._answer(request, token, 200, {"id": event_id})


def _session_of(cookie_header: str) -> str | None:
    try:
        jar = SimpleCookie(cookie_header)
    except CookieError:
        return None
    morsel = jar.get(SESSION_COOKIE)
    return morsel.value if morsel else None
