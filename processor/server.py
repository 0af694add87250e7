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
from collections.abc import Callable

from websockets.asyncio.server import ServerConnection
from websockets.datastructures import Headers
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from . import frames
from .config import Config
from .directus import Directus, Outcome
from .health import Health
from .hub import Client, Hub
from .metrics import CONTENT_TYPE, Metrics
from .store import Store


__all__ = ["Server", "TokenBucket"]

logger = logging.getLogger("processor.ws")

SNAPSHOT_TIMEOUT = 5.0

#: Subscribe refusals: Directus outcome -> (error code for the client, ``processor_auth_failures`` reason).
SUBSCRIBE_ERRORS = {
    Outcome.FORBIDDEN: ("forbidden", "forbidden"),
    Outcome.NOT_FOUND: ("not_found", "not_found"),
    Outcome.UNAUTHORIZED: ("unauthorized", "unauthorized"),
    Outcome.SHARE: ("unauthorized", "share_session"),  # cannot happen: a share session is refused at the upgrade
    Outcome.RATE_LIMITED: ("unavailable", "directus_rate_limited"),
    Outcome.UNAVAILABLE: ("unavailable", "directus_unavailable"),
}


class TokenBucket:
    """``rate`` tokens per second, ``burst`` at most; one token per client frame."""

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


def _response(status: http.HTTPStatus, body: bytes, content_type: str) -> Response:
    headers = Headers()
    headers["Content-Type"] = content_type
    headers["Content-Length"] = str(len(body))
    headers["Connection"] = "close"
    return Response(status.value, status.phrase, headers, body)


def _text(status: http.HTTPStatus, text: str) -> Response:
    return _response(status, (text + "\n").encode(), "text/plain; charset=utf-8")


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
        self.allow_any_origin = "*" in config.allowed_origins
        self.allowed_origins = frozenset(config.allowed_origins)

    # -- HTTP ------------------------------------------------------------------------------------------

    async def process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        path = request.path.split("?", 1)[0]
        if path == "/healthz":
            healthy, body = self.health.report()
            status = http.HTTPStatus.OK if healthy else http.HTTPStatus.SERVICE_UNAVAILABLE
            return _response(status, json.dumps(body).encode(), "application/json")
        if path == "/metrics":
            return _response(http.HTTPStatus.OK, self.metrics.render(), CONTENT_TYPE)
        if path != "/live":
            return _text(http.HTTPStatus.NOT_FOUND, "not found")
        return await self._authenticate(connection, request)

    async def _authenticate(self, connection: ServerConnection, request: Request) -> Response | None:
        origins = request.headers.get_all("Origin")
        if origins and not self.allow_any_origin and any(o not in self.allowed_origins for o in origins):
            self.metrics.auth_failures.labels("origin").inc()
            logger.info("refused upgrade from origin %r", origins[0][:200])
            return _text(http.HTTPStatus.FORBIDDEN, "origin not allowed")
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
        connection.processor_cookie = cookie  # type: ignore[attr-defined]
        connection.processor_user = user_id  # type: ignore[attr-defined]
        return None

    # -- WebSocket -------------------------------------------------------------------------------------

    async def handler(self, connection: ServerConnection) -> None:
        cookie: str | None = getattr(connection, "processor_cookie", None)
        if cookie is None:  # cannot happen: process_request answers every other path
            await connection.close(1008, "not authenticated")
            return
        user = getattr(connection, "processor_user", "?")
        client = Client(connection, self.config.client_queue, self.metrics, name=str(connection.id)[:8])
        bucket = TokenBucket(self.config.subscribe_rate, 2 * self.config.subscribe_rate)
        pending: asyncio.Queue[frames.Frame] = asyncio.Queue()
        worker = asyncio.create_task(self._work(client, cookie, pending))
        self.metrics.connections.inc()
        logger.debug("connection %s open for user %s", client.name, user)
        try:
            async for message in connection:
                frame = frames.parse(message)
                if not bucket.take():
                    event_id = getattr(frame, "event_id", None)
                    client.send(frames.error("rate_limited", event_id), "error")
                    continue
                pending.put_nowait(frame)
        except ConnectionClosed:
            logger.debug("connection closed by the client")
        finally:
            worker.cancel()
            self.hub.remove_client(client)
            self.metrics.connections.dec()
            logger.debug("connection %s closed (%s)", client.name, connection.close_code)

    async def _work(self, client: Client, cookie: str, pending: asyncio.Queue[frames.Frame]) -> None:
        """Handle accepted frames one at a time, in order."""
        while True:
            frame = await pending.get()
            if client.closed:
                continue
            try:
                if isinstance(frame, frames.Subscribe):
                    await self._subscribe(client, cookie, frame.event_id)
                elif isinstance(frame, frames.Unsubscribe):
                    self.hub.unsubscribe(client, frame.event_id)
                    client.send(frames.unsubscribed(frame.event_id), "unsubscribed")
                else:
                    client.send(frames.error("bad_request", frame.event_id, frame.message), "error")
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.exception("handling a frame failed")
                client.send(frames.error("unavailable", getattr(frame, "event_id", None)), "error")

    async def _subscribe(self, client: Client, cookie: str, event_id: str) -> None:
        if event_id not in client.subscriptions and len(client.subscriptions) >= self.config.max_subscriptions:
            client.send(frames.error("too_many_subscriptions", event_id), "error")
            return
        outcome = await self.directus.may_watch(cookie, event_id)
        if outcome is not Outcome.OK:
            code, reason = SUBSCRIBE_ERRORS[outcome]
            self.metrics.auth_failures.labels(reason).inc()
            if outcome is Outcome.RATE_LIMITED:
                client.send(frames.busy(event_id, self.directus.retry_after), "error")
            else:
                client.send(frames.error(code, event_id), "error")
            if outcome is Outcome.UNAUTHORIZED:
                client.close_after_flush(1008, "session revoked")
            return
        sub = self.hub.begin(client, event_id)  # buffering starts before the snapshot query
        try:
            snapshot = await asyncio.wait_for(self.store.snapshot(event_id), SNAPSHOT_TIMEOUT)
        except asyncio.CancelledError:
            self.hub.abort(sub)
            raise
        except Exception as exc:
            logger.warning("snapshot of event %s failed: %s: %s", event_id, type(exc).__name__, exc)
            self.hub.abort(sub)
            client.send(frames.error("unavailable", event_id), "error")
            return
        self.hub.complete(sub, snapshot)
