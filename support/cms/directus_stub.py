"""A stand-in for Directus: who is signed in (``/users/me``) and who may watch what (``/items/events/<id>``),
answering as a real Directus (11.17.4 and 12.4.0) answered the same questions.

We are not testing Directus; we are testing what the Processor does with whatever Directus answers, so the
stand-in must answer like the real thing: same status, same ``errors[0].extensions.code``. The recordings in
``fixtures/directus/`` are the reference, and ``tests/suite/test_directus_replay.py`` replays every recorded question
against this stand-in. What real Directus does, and this stand-in does too:

* the token comes from ``?access_token=``, else ``Authorization: Bearer``, else the **first**
  ``directus_session_token`` cookie (quotes stripped);
* no token: ``/users/me`` 401 ``INVALID_CREDENTIALS``; ``/items/...`` 403 ``FORBIDDEN`` (the public role);
* an unknown or logged-out token: 401 ``INVALID_CREDENTIALS``; an expired one: 401 ``TOKEN_EXPIRED``; one
  signed with a ``SECRET`` since rotated: **403** ``INVALID_TOKEN``;
* an event that does not exist, or an id that is not a uuid: 403 ``FORBIDDEN``, exactly as a forbidden one
  (404 only with :attr:`DirectusStub.unknown_events_404`, for CMSs configured that way);
* a share-link session: ``/users/me`` 200 ``{"data": {"share": …}}`` with no ``id``;
* the rate limiter counts per client IP in fixed windows and answers 429 ``REQUESTS_EXCEEDED`` with
  ``Retry-After`` (whole seconds, rounded) and ``extensions.limit``.

Beyond what the recordings hold, it can play what stands around a real Directus, each mode off unless a scenario
turns it on:

* **an outage** (:meth:`DirectusStub.go_down`): every request answered 503 ``SERVICE_UNAVAILABLE``, or held
  past the Processor's timeout (``"silent"``), or 403 ``RESOURCE_RESTRICTED`` (``"restricted"``: Directus
  answers a route its licence locks with that code, directus/directus#27495); and **not running at all**
  (:meth:`DirectusStub.stop_listening`: the port refuses connections, open ones are closed);
* **a slow CMS** (:attr:`DirectusStub.delay`): every answer, 429s included, comes that many seconds late, as
  through a busy proxy; the stand-in records how many requests were open when each arrived
  (:attr:`SeenRequest.open`) and in which of the rate limiter's windows it fell (:attr:`SeenRequest.window`);
* **a plain refusal** (:meth:`DirectusStub.sign_in_refused`): a session whose every request is answered 401 or
  403 without an error code (as a proxy or an auth extension in front of Directus answers, and as simple
  stand-ins do), or with a code the recordings never show on ``/users/me`` (403 ``FORBIDDEN``).

Each scenario signs its own people in with fresh session cookies and grants them events; modes (rotated
secret, rate limit, outage, slowness, 404s) are set per scenario and undone by :meth:`DirectusStub.reset_modes`,
which the World's clean-up calls (a scenario that stops the stand-in listening starts it again itself). The
stand-in records every request it saw, for assertions ("the CMS was not consulted") and for failure reports.
"""

from __future__ import annotations

import asyncio
import itertools
import re
import secrets
import time
from collections import Counter
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from aiohttp import web

from .directus_http import SESSION_COOKIE, RateLimit, SeenRequest, session_of, token_of

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}", re.IGNORECASE | re.ASCII)

NO_ACCESS = "You don't have permission to access this."
#: How the CMS can fail as a whole (:meth:`DirectusStub.go_down`).
OUTAGES = ("503", "silent", "restricted")
#: A plain refusal's body: what a proxy in front of Directus answers (text, no Directus error object).
PLAIN_BODIES = {401: "401 Unauthorized", 403: "403 Forbidden"}
#: What a request carries from arrival to its record: requests open when it arrived, its limiter window.
OPEN_ON_ARRIVAL = web.RequestKey("open_on_arrival", int)
LIMITER_WINDOW = web.RequestKey("limiter_window", int)
#: Seconds an old session cookie stays valid after ``/auth/refresh`` (Directus: about 10 s).
REFRESH_GRACE = 10.0


@dataclass
class DirectusStub:
    """Sessions map to users, users to the events they may watch; tokens can die in each way Directus knows."""

    sessions: dict[str, str] = field(default_factory=dict)
    grants: dict[str, set[str]] = field(default_factory=dict)
    #: Users whose policy reads every event (an admin; or any reader on Directus 12 without a licence).
    reads_all: set[str] = field(default_factory=set)
    known_events: set[str] = field(default_factory=set)
    revoked: set[str] = field(default_factory=set)
    expired: set[str] = field(default_factory=set)
    #: Share-link sessions: token -> share id.
    shares: dict[str, str] = field(default_factory=dict)
    #: Static tokens (a user's token field): not JWTs, so a rotated secret does not touch them.
    static: set[str] = field(default_factory=set)
    #: Sessions answered "signed in" with neither a user id nor a share (no real Directus does this).
    nameless: set[str] = field(default_factory=set)
    #: Sessions every request of which is refused: token -> (status, error code or None for a plain refusal).
    refused: dict[str, tuple[int, str | None]] = field(default_factory=dict)
    #: token -> monotonic time after which a refreshed-away cookie stops working.
    refreshed: dict[str, float] = field(default_factory=dict)
    requests: list[SeenRequest] = field(default_factory=list)
    #: ``None``: answering normally. ``"503"``: every request gets 503. ``"silent"``: every request is held
    #: for :attr:`silence` seconds (longer than the Processor's Directus timeout) before a 503, as if down.
    #: ``"restricted"``: every request gets 403 ``RESOURCE_RESTRICTED`` (a route its licence locks).
    down: str | None = None
    silence: float = 3.0
    #: Seconds every answer is late (0: answering at once).
    delay: float = 0.0
    #: Sessions issued before this sequence number were signed with a secret since rotated.
    secret_since: int = 0
    rate: RateLimit | None = None
    unknown_events_404: bool = False
    clock: Callable[[], float] = time.monotonic
    port: int = 0
    _issued: dict[str, int] = field(default_factory=dict)
    _sequence: itertools.count[int] = field(default_factory=lambda: itertools.count(1))
    _runner: web.AppRunner | None = None
    #: Requests open now, by the scenario (numbered by :meth:`reset_modes`) they arrived in: a request an earlier
    #: scenario left waiting (a silent CMS holds answers for seconds) does not count as open in a later one.
    _open: Counter[int] = field(default_factory=Counter)
    _scenario: int = 0

    # -- configuration (called by scenarios) -----------------------------------------------------------

    def _issue(self) -> str:
        token = secrets.token_urlsafe(24)
        self._issued[token] = next(self._sequence)
        return token

    def sign_in(self, user_id: str) -> str:
        """Open a session for ``user_id`` (``mode: "session"``); return the ``Cookie`` header a browser sends."""
        token = self._issue()
        self.sessions[token] = user_id
        return f"{SESSION_COOKIE}={token}"

    def static_token(self, user_id: str) -> str:
        """A static token for ``user_id`` (usable as the cookie value or as a Bearer token)."""
        token = self._issue()
        self.sessions[token] = user_id
        self.static.add(token)
        return token

    def share_session(self, share_id: str | None = None) -> str:
        """A share-link session (``POST /shares/auth``): Directus knows it, but it is no user."""
        token = self._issue()
        self.shares[token] = share_id or secrets.token_hex(8)
        return f"{SESSION_COOKIE}={token}"

    def sign_in_nameless(self) -> str:
        """A session ``/users/me`` answers 200 for without naming a user or a share (a broken or foreign CMS)."""
        token = self._issue()
        self.nameless.add(token)
        return f"{SESSION_COOKIE}={token}"

    def sign_in_forbidden(self) -> str:
        """A session ``/users/me`` answers 403 ``FORBIDDEN`` for, as for the public role on a locked-down CMS."""
        return self.sign_in_refused(403, "FORBIDDEN")

    def sign_in_refused(self, status: int, code: str | None = None) -> str:
        """A session the CMS turns away on every request with ``status`` and ``code`` (None: a plain refusal,
        no Directus error object at all, as a proxy or an auth extension in front of Directus answers)."""
        assert status in PLAIN_BODIES, status
        token = self._issue()
        self.refused[token] = (status, code)
        return f"{SESSION_COOKIE}={token}"

    def grant(self, user_id: str, event_id: str) -> None:
        self.grants.setdefault(user_id, set()).add(event_id)

    def grant_all(self, user_id: str) -> None:
        """``user_id`` reads every event that exists (an admin, or an unfiltered policy)."""
        self.reads_all.add(user_id)

    def revoke(self, cookie: str) -> None:
        """The session is logged out (or its user suspended): from now on 401 ``INVALID_CREDENTIALS``."""
        token = session_of(cookie)
        if token:
            self.revoked.add(token)

    def expire(self, cookie: str) -> None:
        """The session's lifetime is over: from now on 401 ``TOKEN_EXPIRED``."""
        token = session_of(cookie)
        if token:
            self.expired.add(token)

    def refresh(self, cookie: str, grace: float = REFRESH_GRACE) -> str:
        """``POST /auth/refresh``: a new cookie for the same user; the old one works ``grace`` seconds more."""
        token = session_of(cookie)
        assert token in self.sessions, "refreshing a session the stand-in does not know"
        self.refreshed[token] = self.clock() + grace
        return self.sign_in(self.sessions[token])

    def rotate_secret(self) -> None:
        """Directus now signs with another ``SECRET``: every session issued so far gets 403 ``INVALID_TOKEN``."""
        self.secret_since = next(self._sequence)

    def rate_limit(self, points: int, window: float | None = 1.0) -> None:
        """Limit requests per client IP to ``points`` per ``window`` seconds (None: until lifted)."""
        self.rate = RateLimit(points, window)

    def use_up_rate_limit(self) -> None:
        """Every client has spent the requests of its current window (with ``window`` None: until lifted)."""
        assert self.rate is not None, "no rate limit is set"
        self.rate.used.clear()
        self.rate.started.clear()
        self.rate.spent = self.rate.points

    def lift_rate_limit(self) -> None:
        self.rate = None

    def go_down(self, how: str) -> None:
        assert how in OUTAGES, how
        self.down = how

    def come_back(self) -> None:
        self.down = None

    def reset_modes(self) -> None:
        """Undo every mode a scenario set: the next scenario finds a healthy, unlimited, default CMS, and counts
        only its own requests as open."""
        self._scenario += 1
        self.down = None
        self.rate = None
        self.delay = 0.0
        self.secret_since = 0
        self.unknown_events_404 = False

    def forget(self, *, cookies: list[str], users: list[str], events: list[str]) -> None:
        for cookie in cookies:
            token = session_of(cookie) or ""
            for table in (self.sessions, self.shares, self.refreshed, self._issued):
                table.pop(token, None)
            for bag in (self.revoked, self.expired, self.static, self.nameless):
                bag.discard(token)
            self.refused.pop(token, None)
        for user in users:
            self.grants.pop(user, None)
            self.reads_all.discard(user)
        self.known_events.difference_update(events)

    def requests_since(self, mark: int) -> list[SeenRequest]:
        return self.requests[mark:]

    @property
    def listening(self) -> bool:
        return self._runner is not None

    # -- HTTP ------------------------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def application(self) -> web.Application:
        """The aiohttp application (served by :meth:`start`, or by a test client in the unit lane)."""
        app = web.Application()
        app.router.add_get("/users/me", self._counted(self._users_me))
        app.router.add_get("/items/{collection}/{item_id}", self._counted(self._item))
        return app

    async def start(self) -> None:
        """Listen on a free port, or on :attr:`port` again once it has been chosen (after :meth:`stop_listening`)."""
        # A short shutdown: stopping must not wait for answers the stand-in is holding back on purpose.
        self._runner = web.AppRunner(self.application(), access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", self.port)
        try:
            await site.start()
        except OSError as exc:
            await self._runner.cleanup()
            self._runner = None
            raise RuntimeError(f"the CMS stand-in could not listen on port {self.port} again: {exc}") from exc
        self.port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # aiohttp's private server: set once the site has started

    async def stop_listening(self) -> None:
        """The CMS is not running at all: its port refuses connections, and the open ones are closed (as when
        its process ends). :meth:`start` brings it back on the same port."""
        await self.close()

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    def open_at_most(self, since: int = 0) -> int:
        """The most requests open at once among those recorded from index ``since`` on (0: none recorded)."""
        return max((seen.open for seen in self.requests[since:]), default=0)

    def _counted(self, route: Callable[[web.Request], Awaitable[web.StreamResponse]]
                 ) -> Callable[[web.Request], Awaitable[web.StreamResponse]]:
        """``route``, counting the requests open at once, and answering :attr:`delay` seconds late."""

        async def handle(request: web.Request) -> web.StreamResponse:
            scenario = self._scenario
            self._open[scenario] += 1
            request[OPEN_ON_ARRIVAL] = self._open[scenario]
            try:
                if self.delay > 0:
                    await asyncio.sleep(self.delay)  # the stand-in plays a slow CMS
                return await route(request)
            finally:
                self._open[scenario] -= 1

        return handle

    def _record(self, request: web.Request, token: str | None, status: int, code: str | None) -> None:
        self.requests.append(SeenRequest(time.monotonic(), request.method, request.path, token, status,
                                         request.query_string, code, request.get(OPEN_ON_ARRIVAL, 1),
                                         request.get(LIMITER_WINDOW)))

    def _answer(self, request: web.Request, token: str | None, status: int, data: dict[str, Any] | None = None, *,
                code: str | None = None, message: str = NO_ACCESS, reason: str | None = None,
                extensions: dict[str, Any] | None = None, headers: dict[str, str] | None = None) -> web.Response:
        self._record(request, token, status, code)
        if data is not None:
            body: dict[str, Any] = {"data": data}
        else:
            ext = dict(extensions or {})
            if reason is not None:
                ext["reason"] = reason
            ext["code"] = code
            body = {"errors": [{"message": reason or message, "extensions": ext}]}
        return web.json_response(body, status=status, headers=headers)

    def _credentials(self, request: web.Request, token: str) -> web.Response | None:
        """Directus's ``authenticate``: the signature first (a rotated ``SECRET``: 403 ``INVALID_TOKEN``), then
        the expiry (401 ``TOKEN_EXPIRED``), then the session row (gone: 401 ``INVALID_CREDENTIALS``)."""
        if token in self.shares or token in self.nameless:
            return None
        if token not in self.sessions:  # never issued, or forgotten: no JWT, no static token of that value
            return self._answer(request, token, 401, code="INVALID_CREDENTIALS", message="Invalid user credentials.")
        if token not in self.static and self._issued.get(token, 0) < self.secret_since:
            return self._answer(request, token, 403, code="INVALID_TOKEN", message="Invalid token.")
        if token in self.expired:
            return self._answer(request, token, 401, code="TOKEN_EXPIRED", message="Token expired.")
        if token in self.revoked or (token in self.refreshed and self.clock() > self.refreshed[token]):
            return self._answer(request, token, 401, code="INVALID_CREDENTIALS", message="Invalid user credentials.")
        return None

    async def _gate(self, request: web.Request, token: str | None) -> web.Response | None:
        """What answers before any route: the rate limiter, an outage, dead credentials."""
        if self.rate is not None:
            client = request.remote or "?"
            wait = self.rate.take(client, self.clock())
            request[LIMITER_WINDOW] = self.rate.number.get(client, 1)
            if wait is not None:
                reset = datetime.now(UTC) + timedelta(seconds=wait)
                return self._answer(
                    request, token, 429, code="REQUESTS_EXCEEDED",
                    message=f"Too many requests, retry after {max(1, round(wait * 1000))}ms.",
                    extensions={"limit": self.rate.points, "reset": reset.isoformat().replace("+00:00", "Z")},
                    headers={"Retry-After": str(round(wait))},
                )
        if self.down == "restricted":
            return self._answer(request, token, 403, code="RESOURCE_RESTRICTED",
                                message="items is a restricted resource", extensions={"category": "items"})
        if self.down is not None:
            answer = self._answer(request, token, 503, code="SERVICE_UNAVAILABLE", message="Service unavailable.")
            if self.down == "silent":
                await asyncio.sleep(self.silence)  # the stand-in plays a CMS that does not answer in time
            return answer
        if token in self.refused:
            status, code = self.refused[token]
            if code is None:
                self._record(request, token, status, None)
                return web.Response(status=status, text=PLAIN_BODIES[status])
            return self._answer(request, token, status, code=code)
        if token is not None:
            return self._credentials(request, token)
        return None

    async def _users_me(self, request: web.Request) -> web.Response:
        token = token_of(request)
        if (refused := await self._gate(request, token)) is not None:
            return refused
        if token is None:
            return self._answer(request, token, 401, code="INVALID_CREDENTIALS", message="Invalid user credentials.")
        if token in self.shares:
            return self._answer(request, token, 200, {"share": self.shares[token]})
        if token in self.nameless:
            return self._answer(request, token, 200, {})
        return self._answer(request, token, 200, {"id": self.sessions[token]})

    async def _item(self, request: web.Request) -> web.Response:
        token = token_of(request)
        if (refused := await self._gate(request, token)) is not None:
            return refused
        collection, item_id = request.match_info["collection"], request.match_info["item_id"]
        user = self.sessions.get(token or "")
        may_read_collection = user is not None and (user in self.reads_all or bool(self.grants.get(user)))
        if collection != "events" or not may_read_collection:
            # the public role, a share of something else, or a user without any policy on the collection
            reason = (f'You don\'t have permission to access collection "{collection}" or it does not exist. '
                      "Queried in root.")
            if token in self.shares and collection == "events":
                return self._answer(request, token, 403, code="FORBIDDEN")
            return self._answer(request, token, 403, code="FORBIDDEN", reason=reason)
        if UUID.fullmatch(item_id) and item_id not in self.known_events and self.unknown_events_404:
            return self._answer(request, token, 404, code="ROUTE_NOT_FOUND",
                                message=f"Route {request.path} doesn't exist.")
        readable = self.known_events if user in self.reads_all else self.grants.get(user or "", set())
        if item_id not in self.known_events or item_id not in readable:
            return self._answer(request, token, 403, code="FORBIDDEN")
        fields = request.query.get("fields")
        data = {"id": item_id} if fields == "id" else {"id": item_id, "name": f"event {item_id[:8]}"}
        return self._answer(request, token, 200, data)


__all__ = ["SESSION_COOKIE", "DirectusStub", "RateLimit", "SeenRequest", "session_of"]
