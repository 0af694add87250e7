"""Directus as the authority on who is signed in and who may watch which event.

The client's ``Cookie`` header is forwarded unchanged and never stored in a cookie jar, so one viewer's
session can never leak into another viewer's request.

Directus answers are read by their ``errors[0].extensions.code`` first and their status second, because the
status alone misleads: a session signed with another ``SECRET`` is a **403** ``INVALID_TOKEN`` (a dead session,
not a forbidden event), and an event that does not exist is a 403 ``FORBIDDEN`` (Directus hides existence).
Every answer is mapped by :func:`classify`, a pure function, so the unit lane covers each recorded answer.

A crowd arriving at once meets Directus's rate limiter, which counts per client IP: every viewer reaches
Directus through this one process. Two things keep the Processor from hammering it:

* identical checks in flight at the same moment (same ``Cookie`` header, same path) share one request
  (:class:`Directus` ``_inflight``); nothing is kept once the answer is in, so no answer is ever reused for
  another session or a later check;
* at most ``max_in_flight`` requests are in flight at once, so a crowd arriving before Directus's first 429
  wastes that many requests at most;
* a 429 holds every further request until the ``Retry-After`` it names, then one probe learns where the next
  window starts and lets through no more than the limit Directus reported (``extensions.limit``)
  (:class:`RatePacer`). A check that cannot get through within its time budget ends as ``RATE_LIMITED``.
"""

from __future__ import annotations

import asyncio
import enum
import json
import logging
import math
import time
from collections.abc import Awaitable, Callable
from datetime import datetime
from typing import Any

# The HTTP seam lives in directus_transport; its names stay importable from here (listed in __all__).
from .directus_transport import AiohttpTransport, Reply, Transport, TransportError

__all__ = [
    "DEAD_SESSION_CODES",
    "AiohttpTransport",
    "Directus",
    "Outcome",
    "RatePacer",
    "Reply",
    "Transport",
    "TransportError",
    "classify",
    "error_code",
]

logger = logging.getLogger("processor.directus")

#: Codes that mean "this session is not (or no longer) valid", whatever the status that carries them.
DEAD_SESSION_CODES = frozenset({"INVALID_CREDENTIALS", "INVALID_TOKEN", "TOKEN_EXPIRED"})
RATE_LIMIT_CODE = "REQUESTS_EXCEEDED"
#: Shortest pause after a 429 whose ``Retry-After`` is 0 or missing (Directus rounds to whole seconds).
MIN_BACKOFF = 0.1
#: Time left in a check's budget below which a request is not started (it could not be answered in time).
MIN_REQUEST_TIME = 0.05
#: A check that had to wait for Directus's limit to pass starts its request only with this much budget left:
#: a request sent at the last moment would time out here yet still cost Directus an answer.
REQUEST_RESERVE = 0.25
#: Seconds without a 429 after which the Processor stops pacing itself.
PACING_QUIET = 10.0


class Outcome(enum.Enum):
    OK = "ok"
    UNAUTHORIZED = "unauthorized"  # the session is dead: INVALID_CREDENTIALS, INVALID_TOKEN, TOKEN_EXPIRED, 401;
    # on /users/me also a 403 FORBIDDEN or a 403 without an error code
    SHARE = "share"  # a share-link session: Directus knows it, but it is no signed-in user
    FORBIDDEN = "forbidden"  # 403 FORBIDDEN (also for events that do not exist)
    NOT_FOUND = "not_found"  # 404: only from a CMS configured to reveal unknown events
    RATE_LIMITED = "rate_limited"  # 429 REQUESTS_EXCEEDED, still so after one retry within the budget
    UNAVAILABLE = "unavailable"  # unreachable, timeout, 5xx, anything else


def _json(body: bytes) -> Any:
    try:
        return json.loads(body)
    except (ValueError, UnicodeDecodeError):
        return None


def error_code(body: bytes) -> str | None:
    """``errors[0].extensions.code`` of a Directus error body, or None."""
    parsed = _json(body)
    try:
        code = parsed["errors"][0]["extensions"]["code"]
    except (KeyError, IndexError, TypeError):
        return None
    return code if isinstance(code, str) else None


def retry_after(reply: Reply) -> float | None:
    """Seconds from ``Retry-After`` (Directus sends whole seconds, possibly 0); None when absent or not a number."""
    text = reply.header("Retry-After")
    if text is None:
        return None
    try:
        seconds = float(text)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) and seconds >= 0 else None


def rate_limit(reply: Reply) -> int | None:
    """The limit a 429 names (``extensions.limit``: Directus's ``RATE_LIMITER_POINTS``), when it is usable."""
    parsed = _json(reply.body)
    try:
        limit = parsed["errors"][0]["extensions"]["limit"]
    except (KeyError, IndexError, TypeError):
        return None
    return limit if isinstance(limit, int) and not isinstance(limit, bool) and limit >= 1 else None


def window_reset(reply: Reply) -> float | None:
    """The wall-clock time (epoch seconds) a 429's ``extensions.reset`` names, when it is a valid ISO time."""
    parsed = _json(reply.body)
    try:
        text = parsed["errors"][0]["extensions"]["reset"]
        return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()
    except (KeyError, IndexError, TypeError, ValueError, AttributeError):
        return None


def classify(kind: str, reply: Reply) -> tuple[Outcome, str | None]:
    """What one Directus answer means. ``kind`` is ``"me"`` (``/users/me``) or ``"item"`` (an event).

    Returns the outcome and, for a signed-in user, the user id."""
    code = error_code(reply.body) if reply.status != 200 else None
    if reply.status == 200:
        if kind == "item":
            return Outcome.OK, None
        parsed = _json(reply.body)
        data = parsed.get("data") if isinstance(parsed, dict) else None
        user_id = data.get("id") if isinstance(data, dict) else None
        if isinstance(user_id, (str, int)) and not isinstance(user_id, bool) and str(user_id):
            return Outcome.OK, str(user_id)
        if isinstance(data, dict) and data.get("share"):
            return Outcome.SHARE, None
        return Outcome.UNAVAILABLE, None  # signed in as nobody: not an answer we can act on
    if code in DEAD_SESSION_CODES or reply.status == 401:
        return Outcome.UNAUTHORIZED, None
    if reply.status == 429 or code == RATE_LIMIT_CODE:
        return Outcome.RATE_LIMITED, None
    if reply.status == 403 and code == "FORBIDDEN":
        # /users/me never answers FORBIDDEN in Directus; if a CMS does, its caller is signed in as nobody.
        return (Outcome.FORBIDDEN if kind == "item" else Outcome.UNAUTHORIZED), None
    if reply.status == 403 and code is None and kind == "me":
        # A plain 403 on the question "who is this?" (a proxy or an auth extension in front of Directus, a
        # simple stand-in): the visitor is not accepted as signed in, so signing in is what helps.
        return Outcome.UNAUTHORIZED, None
    if reply.status == 404 and kind == "item":
        return Outcome.NOT_FOUND, None
    return Outcome.UNAVAILABLE, None


class RatePacer:
    """Holds requests while Directus's rate limiter is known to refuse them, then paces them.

    Directus's limiter (rate-limiter-flexible) grants ``limit`` requests per fixed window that starts with the
    first request after the previous window ended, and its ``Retry-After`` is rounded to whole seconds (so it
    may end half a second earlier or later than said). After a 429 every request waits for that
    ``Retry-After``; then **one** probe goes out. A probe answered with a 429 holds everyone again; one answered
    otherwise has opened a new window, so ``limit - 1`` more requests go out before the next probe. Once no
    429 has come for :data:`PACING_QUIET` seconds, requests go out freely again. Callers that cannot get
    through before their deadline are refused without a Directus request.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep) -> None:
        self.clock = clock
        self.sleep = sleep
        self.wall: Callable[[], float] = time.time
        self.blocked_until = 0.0
        self.limited_at = -math.inf
        self.limit: int | None = None  # learned from a 429's extensions.limit
        self.left: int | None = None  # requests left in this window; None: not pacing
        self.probing = False
        self._changed = asyncio.Event()

    def _notify(self) -> None:
        self._changed.set()
        self._changed = asyncio.Event()

    async def admit(self, deadline: float) -> bool | None:
        """Wait for a turn: ``True`` (a probe), ``False`` (an ordinary request) or ``None`` (not before
        ``deadline``)."""
        waited = False
        while True:
            now = self.clock()
            reserve = REQUEST_RESERVE if waited else MIN_REQUEST_TIME
            if now >= deadline - reserve:
                return None
            if now < self.blocked_until:
                if self.blocked_until >= deadline - REQUEST_RESERVE:
                    return None
                waited = True
                await self.sleep(self.blocked_until - now)  # pacing: Directus said when it answers again
                continue
            if self.left is None:
                return False
            if self.left > 0:
                self.left -= 1
                return False
            if not self.probing:
                self.probing = True
                return True
            waited = True
            changed = self._changed
            try:
                await asyncio.wait_for(changed.wait(), max(0.0, deadline - REQUEST_RESERVE - now))
            except TimeoutError:
                return None

    def answered(self, reply: Reply | None, probe: bool) -> None:
        """Learn from an answer (``None``: no answer at all)."""
        now = self.clock()
        if reply is not None and (reply.status == 429 or error_code(reply.body) == RATE_LIMIT_CODE):
            hold = self._hold(reply)
            if now - self.limited_at > PACING_QUIET:  # once per episode, not once per refused request
                logger.warning("Directus is limiting requests (limit %s per window): holding them %.2f s, then "
                               "pacing", rate_limit(reply) or "unknown", hold)
            self.blocked_until = max(self.blocked_until, now + hold)
            self.limited_at = now
            self.limit = rate_limit(reply) or self.limit
            self.left = 0  # after the hold, a probe first: Retry-After is rounded
            self.probing = False
            self._notify()
        elif probe:
            self.probing = False
            if reply is not None:
                quiet = now - self.limited_at > PACING_QUIET
                self.left = None if quiet or self.limit is None else self.limit - 1
            self._notify()

    def blocked(self) -> bool:
        """Whether Directus is known to refuse requests right now."""
        return self.clock() < self.blocked_until

    def withdrawn(self, probe: bool) -> None:
        """An admitted request was not sent after all; a probe's turn passes to another."""
        if probe:
            self.probing = False
            self._notify()

    def _hold(self, reply: Reply) -> float:
        """How long to hold after this 429. ``Retry-After`` is rounded to whole seconds; ``extensions.reset``
        (Directus's clock) says more precisely when the window ends, and is believed within the rounding."""
        said = retry_after(reply) or 0.0
        reset = window_reset(reply)
        if reset is None:
            return max(said, MIN_BACKOFF)
        return max(MIN_BACKOFF, min(max(reset - self.wall(), said - 0.5), said + 0.5))

    def seconds_until_open(self) -> int:
        """Whole seconds (at least 1) a refused viewer should wait before trying again."""
        return max(1, math.ceil(self.blocked_until - self.clock()))


class Directus:
    """The Processor's questions to Directus: ``/users/me`` and ``/items/events/<id>``."""

    def __init__(self, base_url: str, timeout: float, transport: Transport | None = None, *,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], Awaitable[None]] = asyncio.sleep, max_in_flight: int = 32) -> None:
        self.timeout = timeout
        self.clock = clock
        #: Requests in flight at most: a crowd arriving before Directus's first 429 costs this many wasted
        #: requests at most, not one per fan (Directus answers in a few ms, so 32 still carry thousands/s).
        self.max_in_flight = max_in_flight
        self._slots = asyncio.Semaphore(max_in_flight)
        self.transport: Transport = transport if transport is not None else AiohttpTransport(base_url)
        self.pacer = RatePacer(clock, sleep)
        self._inflight: dict[tuple[str, str], asyncio.Future[tuple[Outcome, str | None]]] = {}
        #: Directus requests actually sent (for tests and the bench; coalesced checks count once).
        self.requests_sent = 0

    async def close(self) -> None:
        close = getattr(self.transport, "close", None)
        if close is not None:
            await close()

    @property
    def retry_after(self) -> int:
        """Whole seconds a viewer refused as ``RATE_LIMITED`` should wait before trying again."""
        return self.pacer.seconds_until_open()

    async def _ask(self, kind: str, path: str, cookie: str) -> tuple[Outcome, str | None]:
        """One check within one time budget: at most two requests (the second only after a 429)."""
        deadline = self.clock() + self.timeout
        for _attempt in (1, 2):
            while True:
                probe = await self.pacer.admit(deadline)
                if probe is None:
                    return Outcome.RATE_LIMITED, None
                if not await self._take_slot(deadline - MIN_REQUEST_TIME - self.clock()):
                    self.pacer.withdrawn(probe)
                    logger.warning("GET %s not sent: %d requests to Directus already waiting for answers",
                                   _loggable(path), self.max_in_flight)
                    return Outcome.UNAVAILABLE, None
                if not self.pacer.blocked():
                    break
                self._slots.release()  # a 429 came while this request waited for a free slot: wait again
                self.pacer.withdrawn(probe)
            self.requests_sent += 1
            try:
                reply = await self.transport(path, {"Cookie": cookie}, max(MIN_REQUEST_TIME, deadline - self.clock()))
            except TransportError as exc:
                self.pacer.answered(None, probe)
                logger.warning("GET %s failed: %s", _loggable(path), exc)
                return Outcome.UNAVAILABLE, None
            except BaseException:  # cancelled (shutdown): a probe's turn must pass on, or every check would wait
                self.pacer.withdrawn(probe)
                raise
            finally:
                self._slots.release()
            self.pacer.answered(reply, probe)
            outcome, user_id = classify(kind, reply)
            if outcome is Outcome.UNAVAILABLE:
                logger.warning("GET %s answered %d (%s)", _loggable(path), reply.status,
                               error_code(reply.body) or "no error code")
            if outcome is not Outcome.RATE_LIMITED:
                return outcome, user_id
        return Outcome.RATE_LIMITED, None

    async def _take_slot(self, budget: float) -> bool:
        """One of the ``max_in_flight`` slots within ``budget`` seconds (False: none came in time).

        A free slot is taken at once; only a crowd waits, under one timer and without the task per waiter
        that ``asyncio.wait_for`` would start (per-viewer memory and connect time, bench/ANALYSIS.md)."""
        if budget <= 0:
            return False
        if not self._slots.locked():
            await self._slots.acquire()  # returns at once: a slot is free
            return True
        try:
            async with asyncio.timeout(budget):
                await self._slots.acquire()
        except TimeoutError:
            return False
        return True

    async def _coalesced(self, kind: str, path: str, cookie: str) -> tuple[Outcome, str | None]:
        """Share the answer of an identical check already in flight (same cookie, same path); keep nothing
        after it is answered."""
        key = (cookie, path)
        pending = self._inflight.get(key)
        if pending is None:
            pending = asyncio.ensure_future(self._ask(kind, path, cookie))
            self._inflight[key] = pending
            pending.add_done_callback(lambda done: self._inflight.pop(key, None) if self._inflight.get(key)
                                      is done else None)
        return await asyncio.shield(pending)

    async def current_user(self, cookie: str) -> tuple[Outcome, str | None]:
        """Who the cookie belongs to: ``(OK, user_id)`` or another outcome and ``None``."""
        return await self._coalesced("me", "/users/me", cookie)

    async def may_watch(self, cookie: str, event_id: str) -> Outcome:
        """Whether the cookie's user may read event ``event_id`` (a validated, lower-case UUID)."""
        outcome, _ = await self._coalesced("item", f"/items/events/{event_id}", cookie)
        return outcome


def _loggable(path: str) -> str:
    return path[:80]
