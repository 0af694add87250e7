"""HTTP endpoints and the ``/live`` WebSocket protocol on one port.

Upgrades are authenticated in ``process_request`` so that a refused viewer costs one HTTP response and no
WebSocket state. Frames of one connection are handled one at a time, in order; the rate limit is applied as
frames arrive, so a flood is refused before it costs a Directus or database call.
"""

from __future__ import annotations

import asyncio
import http
import json
import logging
import time
from collections import deque
from collections.abc import Callable
from typing import cast

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from . import protocol
from .client import Client
from .config import Config
from .directus import Directus, Outcome
from .health import Health
from .hub import Hub, Subscription
from .metrics import CONTENT_TYPE, Metrics
from .origins import AllowList
from .snapshots import SnapshotQueries
from .store import Store

__all__ = ["Server", "TokenBucket", "ViewerConnection"]

logger = logging.getLogger("processor.ws")

SNAPSHOT_TIMEOUT = 5.0
#: Seconds a subscribe's snapshot query may run ahead of its Directus check while the fan's live positions are held
#: for it: enough for a CMS that answers in milliseconds (the round trip then costs the longer of the check and the
#: query, bench/ANALYSIS.md), short enough that a slow CMS makes no busy event's positions pile up for a fan who
#: may yet be refused (past ``PROCESSOR_CLIENT_QUEUE`` held, a fan is closed with 1013).
CHECK_AHEAD = 0.05
SESSION_PATH = "/live/session"
CHALLENGE = 'Cookie realm="live"'
#: ``/live/session`` answers: the HTTP status a refused upgrade would have had, named for a page's code.
SESSION_STATES = {
    http.HTTPStatus.OK: "signed_in",
    http.HTTPStatus.UNAUTHORIZED: "sign_in",
    http.HTTPStatus.FORBIDDEN: "origin_not_allowed",
    http.HTTPStatus.SERVICE_UNAVAILABLE: "unavailable",
}

#: Subscribe refusals: Directus outcome -> (error code for the client, ``processor_auth_failures`` reason).
SUBSCRIBE_ERRORS = {
    Outcome.FORBIDDEN: ("forbidden", "forbidden"),
    Outcome.NOT_FOUND: ("not_found", "not_found"),
    Outcome.UNAUTHORIZED: ("unauthorized", "unauthorized"),
    Outcome.SHARE: ("unauthorized", "share_session"),  # cannot happen: a share session is refused at the upgrade
    Outcome.RATE_LIMITED: ("unavailable", "directus_rate_limited"),
    Outcome.UNAVAILABLE: ("unavailable", "directus_unavailable"),
}


class ViewerConnection(ServerConnection):
    """websockets' server connection, with what the upgrade's checks learnt about the viewer for the handler to
    read. :meth:`App.run <processor.app.App.run>` passes it to ``serve(create_connection=...)``, so every
    connection of the server is one (websockets still types its callbacks' argument as the base class)."""

    #: The ``Cookie`` header the CMS accepted, and whose session it is (``None``: not authenticated).
    processor_cookie: str | None = None
    processor_user: str | None = None


class TokenBucket:
    """``rate`` tokens per second, ``burst`` at most; one token per client frame."""

    __slots__ = ("burst", "clock", "last", "rate", "tokens")  # one per viewer: no per-instance dict

    def __init__(self, rate: float, burst: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.clock = clock
        self.last = clock()

    def take(self) -> bool:
        now = self.clock()
        self.tokens = min(self.burst, self.tokens + (now - self.last) * self.rate)
        self.last = now
        if self.tokens >= 1:
            self.tokens -= 1
            return True
        return False


#: Connections whose frames are handled at the same time; the frames of the others wait in their inboxes (a list
#: entry each) until a worker ends. A crowd subscribing at once then costs this many tasks, Directus checks and
#: snapshot waits, not one of each per fan: their peak was kept by the allocator as ~5 KiB per idle viewer
#: (bench/ANALYSIS.md). Four times Directus's ``max_in_flight``, so the CMS stays as busy as before.
WORKERS = 128


class _Inbox:
    """One connection's accepted frames, and the worker task handling them while some wait.

    The worker forgets itself when it ends, so an idle viewer keeps neither a finished task (with its
    coroutine and context) nor the last frame it sent (bench/ANALYSIS.md, per-viewer memory)."""

    __slots__ = ("client", "cookie", "frames", "waiting", "worker")

    def __init__(self, client: Client, cookie: str) -> None:
        self.client = client
        self.cookie = cookie
        self.frames: list[protocol.Frame] = []
        self.waiting = False  # in the server's line for a worker
        self.worker: asyncio.Task[None] | None = None


def _response(status: http.HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers()
    headers["Content-Type"] = content_type
    headers["Content-Length"] = str(len(body))
    headers["Connection"] = "close"
    return Response(status.value, status.phrase, headers, body)


def _text(status: http.HTTPStatus, text: str) -> Response:
    return _response(status, (text + "\n").encode(), "text/plain; charset=utf-8")


def _challenge(response: Response | None) -> Response | None:
    """Add the ``WWW-Authenticate`` header every 401 must carry (RFC 9110 §15.5.2).

    The credential is the CMS's session cookie, for which HTTP has no registered scheme; ``Cookie`` follows
    the (expired) draft-broyer-http-cookie-auth, and tells a client that signing in on the web site, not an
    ``Authorization`` header, is the way in.
    """
    if response is not None and response.status_code == http.HTTPStatus.UNAUTHORIZED:
        response.headers["WWW-Authenticate"] = CHALLENGE
    return response


class Server:
    """Request routing, upgrade checks and the per-connection frame loop."""

    def __init__(
        self, config: Config, metrics: Metrics, hub: Hub, directus: Directus, store: Store, health: Health
    ) -> None:
        self.config = config
        self.metrics = metrics
        self.hub = hub
        self.directus = directus
        self.store = store
        self.health = health
        self.origins = AllowList.of(config.allowed_origins)
        # One query for the fans of an event subscribing together:
        self.snapshots = SnapshotQueries(store.snapshot_frame, SNAPSHOT_TIMEOUT, metrics.snapshot_queries.inc)
        #: Frame workers running, at most ``workers``; inboxes waiting for one, in arrival order.
        self.workers = WORKERS
        self.working = 0
        self.ready: deque[_Inbox] = deque()

    # -- HTTP ------------------------------------------------------------------------------------------

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            healthy, body = self.health.report()
            status = http.HTTPStatus.OK if healthy else http.HTTPStatus.SERVICE_UNAVAILABLE
            return _response(status, json.dumps(body).encode(), "application/json")
        if path == "/metrics":
            return _response(http.HTTPStatus.OK, self.metrics.render(), CONTENT_TYPE)
        if path == SESSION_PATH:
            return await self._session(request)
        if path != "/live":
            return _text(http.HTTPStatus.NOT_FOUND, "not found")
        refusal = self._refuse_origin(request) or self._refuse_subprotocol(request)
        if refusal is not None:
            return refusal
        return _challenge(await self._authenticate(cast(ViewerConnection, connection), request))

    # -- checks that need no CMS, and what a web page can read ------------------------------------------

    def _refuse_origin(self, request: Request) -> Response | None:
        """403 for a page whose origin is not allowed, before the cookie it carries is shown to anyone."""
        origins = request.headers.get_all("Origin")
        if origins and not self.origins.allows_all(origins):
            self.metrics.auth_failures.labels("origin").inc()
            logger.info("refused %s from origin %r", request.path.split("?", 1)[0][:100], origins[0][:200])
            return _text(http.HTTPStatus.FORBIDDEN, "origin not allowed")
        return None

    def _refuse_subprotocol(self, request: Request) -> Response | None:
        """400 for an upgrade offering subprotocols: the channel speaks none, and a browser that offered one
        aborts an upgrade answered without one; refusing here spares the CMS a question whose answer is wasted."""
        offered = [p.strip() for value in request.headers.get_all("Sec-WebSocket-Protocol") for p in value.split(",")]
        if any(offered):
            self.metrics.auth_failures.labels("subprotocol").inc()
            return _text(http.HTTPStatus.BAD_REQUEST, "this channel speaks no subprotocol: open it without one")
        return None

    async def _session(self, request: Request) -> Response:
        """``GET /live/session``: why an upgrade with the same cookie would be refused, readable by a page.

        A browser hides the status of a refused upgrade (the page sees close 1006 whatever happened), so a page
        whose connection failed asks here. The answer runs the upgrade's own checks (same order, same CMS
        question, same statuses), as JSON, with the CORS headers the allow-list implies.
        """
        if getattr(request, "method", "GET") != "GET":  # no preflight either: a page's plain fetch needs none
            not_get = _text(http.HTTPStatus.METHOD_NOT_ALLOWED, "only GET")
            not_get.headers["Allow"] = "GET"
            return not_get
        foreign = self._refuse_origin(request)
        refusal = foreign or await self._authenticate(None, request)
        status = http.HTTPStatus(refusal.status_code) if refusal is not None else http.HTTPStatus.OK
        message = refusal.body.decode("utf-8", "replace").strip() if refusal is not None else "signed in"
        body = {"status": SESSION_STATES.get(status, "refused"), "message": message}
        response = _challenge(_response(status, json.dumps(body).encode(), "application/json"))
        assert response is not None
        response.headers["Cache-Control"] = "no-store"
        response.headers["Vary"] = "Origin"
        retry_after = refusal.headers.get("Retry-After") if refusal is not None else None
        if retry_after is not None:  # the upgrade's hint to a busy or unavailable CMS, for the page's back-off
            response.headers["Retry-After"] = retry_after
            response.headers["Access-Control-Expose-Headers"] = "Retry-After"
        origins = request.headers.get_all("Origin")
        if foreign is None and len(origins) == 1:  # a page of an allowed site: let it read the answer
            response.headers["Access-Control-Allow-Origin"] = origins[0]
            response.headers["Access-Control-Allow-Credentials"] = "true"
        return response

    async def _authenticate(self, connection: ViewerConnection | None, request: Request) -> Response | None:
        """``None`` if the upgrade may proceed (the viewer's cookie and user then noted on ``connection``), else the
        refusal; ``/live/session`` asks without a connection."""
        cookie = "; ".join(value for value in request.headers.get_all("Cookie") if value.strip())
        if not cookie:
            self.metrics.auth_failures.labels("no_cookie").inc()
            return _text(http.HTTPStatus.UNAUTHORIZED, "sign in first: no session cookie")
        outcome, user_id = await self.directus.current_user(cookie)
        if outcome is Outcome.UNAUTHORIZED:
            self.metrics.auth_failures.labels("invalid_cookie").inc()
            return _text(http.HTTPStatus.UNAUTHORIZED, "session not valid")
        if outcome is Outcome.SHARE:
            self.metrics.auth_failures.labels("share_session").inc()
            return _text(http.HTTPStatus.UNAUTHORIZED, "a share link does not sign you in: sign in first")
        if outcome is Outcome.RATE_LIMITED:
            self.metrics.auth_failures.labels("directus_rate_limited").inc()
            seconds = self.directus.retry_after
            response = _text(http.HTTPStatus.SERVICE_UNAVAILABLE, f"the CMS is busy: try again in {seconds} s")
            response.headers["Retry-After"] = str(seconds)
            return response
        if outcome is not Outcome.OK:
            self.metrics.auth_failures.labels("directus_unavailable").inc()
            return _text(http.HTTPStatus.SERVICE_UNAVAILABLE, "authentication service unavailable")
        if connection is not None:  # the handler reads them back after the upgrade
            connection.processor_cookie = cookie
            connection.processor_user = user_id
        return None

    # -- WebSocket -------------------------------------------------------------------------------------

    async def handler(self, connection: ServerConnection) -> None:
        viewer = cast(ViewerConnection, connection)  # serve(create_connection=ViewerConnection) made it
        cookie = viewer.processor_cookie
        if cookie is None:  # cannot happen: process_request answers every other path
            await connection.close(1008, "not authenticated")
            return
        client = Client(connection, self.config.client_queue, self.metrics, name=str(connection.id)[:8])
        bucket = TokenBucket(self.config.subscribe_rate, 2 * self.config.subscribe_rate)
        # Accepted frames wait in the inbox; a worker task handles them in order and exists only while some
        # wait, so an idle viewer costs no task (per-viewer memory, bench/ANALYSIS.md item 7).
        inbox = _Inbox(client, cookie)
        self.metrics.connections.inc()
        logger.debug("connection %s open for user %s", client.name, viewer.processor_user)
        try:
            async for message in connection:
                self._accept(bucket, inbox, message)
                del message  # an idle viewer keeps not even the text of its last frame
        except ConnectionClosed:
            logger.debug("connection closed by the client")
        finally:
            if inbox.worker is not None:
                inbox.worker.cancel()
            self.hub.remove_client(client)  # a waiting inbox of a closed client is skipped when its turn comes
            self.metrics.connections.dec()
            logger.debug("connection %s closed (%s)", client.name, connection.close_code)

    def _accept(self, bucket: TokenBucket, inbox: _Inbox, message: str | bytes) -> None:
        """Parse one client frame and queue it for the worker, unless the rate limit refuses it."""
        frame = protocol.parse(message)
        if not bucket.take():
            event_id = getattr(frame, "event_id", None)
            inbox.client.send(protocol.error("rate_limited", event_id), "error")
            return
        inbox.frames.append(frame)
        if inbox.worker is None and not inbox.waiting:
            self._start(inbox)

    def _start(self, inbox: _Inbox) -> None:
        """A worker for ``inbox`` now, or a place in line when ``workers`` are busy."""
        if self.working >= self.workers:
            inbox.waiting = True
            self.ready.append(inbox)
            return
        self.working += 1
        worker = inbox.worker = asyncio.create_task(self._work(inbox), name=f"frames-{inbox.client.name}")
        worker.add_done_callback(lambda task: self._ended(inbox, task))

    def _ended(self, inbox: _Inbox, task: asyncio.Task[None]) -> None:
        """A worker ended (done or cancelled, even before it ran): the next inbox in line gets its turn."""
        if inbox.worker is task:
            inbox.worker = None
        self.working -= 1
        while self.ready:
            waiting = self.ready.popleft()
            waiting.waiting = False
            if waiting.frames and not waiting.client.closed and waiting.worker is None:
                self._start(waiting)
                return

    async def _work(self, inbox: _Inbox) -> None:
        """Handle accepted frames one at a time, in order, until none waits; then forget this task."""
        client, cookie, pending = inbox.client, inbox.cookie, inbox.frames
        try:
            while pending:
                frame = pending.pop(0)
                if client.closed:
                    continue
                try:
                    if isinstance(frame, protocol.Subscribe):
                        await self._subscribe(client, cookie, frame.event_id)
                    elif isinstance(frame, protocol.Unsubscribe):
                        self.hub.unsubscribe(client, frame.event_id)
                        client.send(protocol.unsubscribed(frame.event_id), "unsubscribed")
                    else:
                        client.send(protocol.error("bad_request", frame.event_id, frame.message), "error")
                except asyncio.CancelledError:
                    raise
                except Exception:
                    logger.exception("handling a frame failed")
                    client.send(protocol.error("unavailable", getattr(frame, "event_id", None)), "error")
                del frame  # nothing of a handled frame stays with the worker
        finally:
            if inbox.worker is asyncio.current_task():
                inbox.worker = None  # a frame accepted from now on starts a new worker

    async def _subscribe(self, client: Client, cookie: str, event_id: str) -> None:
        """Ask Directus and, meanwhile, run the snapshot query (docs/processor.md section 4, "Snapshot/live
        boundary"): the fan waits for the longer of the two, not their sum. Nothing of the query reaches a fan
        Directus refuses, and a check slower than :data:`CHECK_AHEAD` holds no live positions for the fan while it
        runs: that early start is dropped and the query runs once Directus has said yes."""
        subscriptions = self.hub.subscriptions(client)
        if event_id not in subscriptions and len(subscriptions) >= self.config.max_subscriptions:
            client.send(protocol.error("too_many_subscriptions", event_id), "error")
            return
        check = asyncio.ensure_future(self.directus.may_watch(cookie, event_id))
        early = self.hub.begin(client, event_id)  # buffering starts before the snapshot query
        pending = self.snapshots.get(event_id)
        sub: Subscription | None = early
        try:
            if not check.done():
                await asyncio.wait((check,), timeout=CHECK_AHEAD)
            if not check.done():
                self.hub.abort(early)
                sub = None
            outcome = await check
        except BaseException:
            check.cancel()
            if sub is not None:
                self.hub.abort(sub)
            raise
        if outcome is not Outcome.OK:
            if sub is not None:
                self.hub.abort(sub)  # a new subscription is not made; one the fan already had carries on as it was
            code, reason = SUBSCRIBE_ERRORS[outcome]
            self.metrics.auth_failures.labels(reason).inc()
            if outcome is Outcome.RATE_LIMITED:
                client.send(protocol.busy(event_id, self.directus.retry_after), "error")
            else:
                client.send(protocol.error(code, event_id), "error")
            if outcome is Outcome.UNAUTHORIZED:
                client.close_after_flush(1008, "session revoked")
            return
        if sub is None:  # the check was slow: start holding now, and ask for a snapshot that starts after this
            sub = self.hub.begin(client, event_id)
            pending = self.snapshots.get(event_id)
        try:
            async with asyncio.timeout(SNAPSHOT_TIMEOUT):  # no extra task and waiter per subscriber, as wait_for
                snapshot = await asyncio.shield(pending)
        except asyncio.CancelledError:
            self.hub.abort(sub)
            raise
        except Exception as exc:
            logger.warning("snapshot of event %s failed: %s: %s", event_id, type(exc).__name__, exc)
            self.hub.abort(sub)
            client.send(protocol.error("unavailable", event_id), "error")
            return
        self.hub.complete(sub, [], snapshot.frame, snapshot.watermark, snapshot.wire)
