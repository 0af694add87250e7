"""What the Directus stand-in (:mod:`support.cms.directus_stub`) reads from a request and keeps of it: the
session token, as Directus finds it; the rate limiter that counts requests per client; the record of each
request, for assertions and failure reports."""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field

from aiohttp import web

SESSION_COOKIE = "directus_session_token"


@dataclass(frozen=True)
class SeenRequest:
    at: float
    method: str
    #: The path without its query string (an implementation may add ``?fields=id``; paths are compared).
    path: str
    session: str | None
    status: int
    query: str = ""
    code: str | None = None
    #: Requests of the same scenario open at the stand-in when this one arrived, itself included.
    open: int = 1
    #: Which window of the rate limiter it was counted in (1, 2, … per client; None: no limit was set).
    window: int | None = None

    def __str__(self) -> str:
        who = f"session …{self.session[-6:]}" if self.session else "no session"
        query = f"?{self.query}" if self.query else ""
        code = f" {self.code}" if self.code else ""
        window = f", window {self.window}" if self.window is not None else ""
        return f"{self.method} {self.path}{query} ({who}, {self.open} open{window}) -> {self.status}{code}"


@dataclass
class RateLimit:
    """Directus's IP rate limiter (rate-limiter-flexible, memory store): ``points`` requests per fixed window
    of ``window`` seconds, the window starting at the first request after the previous one ended. ``window``
    None: the limit holds until lifted (a scenario decides when it passes)."""

    points: int
    window: float | None
    started: dict[str, float] = field(default_factory=dict)
    used: dict[str, int] = field(default_factory=dict)
    #: What a client not yet seen has spent in the current window (``points``: the window is used up).
    spent: int = 0
    #: Each client's current window, numbered from 1 (the window it was first seen in).
    number: dict[str, int] = field(default_factory=dict)

    def take(self, client: str, now: float) -> float | None:
        """Count one request; return None when allowed, else the seconds until the window ends."""
        if self.window is not None and now - self.started.get(client, -math.inf) >= self.window:
            self.used[client] = 0 if client in self.started else self.spent
            self.started[client] = now
            self.number[client] = self.number.get(client, 0) + 1
        self.used[client] = self.used.get(client, self.spent) + 1
        if self.used[client] <= self.points:
            return None
        if self.window is None:
            return 1.0  # no end known: Directus would name its window; one second is what it names by default
        return self.started[client] + self.window - now


def _cookie_values(cookie_header: str, name: str) -> Iterable[str]:
    """Every value of cookie ``name`` in a ``Cookie`` header, in order (as Directus's parser sees them)."""
    for part in cookie_header.split(";"):
        key, sep, value = part.strip().partition("=")
        if sep and key.strip() == name:
            value = value.strip()
            if len(value) >= 2 and value[0] == value[-1] == '"':
                value = value[1:-1]
            yield value


def session_of(cookie_header: str) -> str | None:
    """The session token Directus reads from a ``Cookie`` header: the **first** cookie of that name."""
    return next(iter(_cookie_values(cookie_header or "", SESSION_COOKIE)), None)


def token_of(request: web.Request) -> str | None:
    """Directus's token order: ``?access_token=``, then ``Authorization: Bearer``, then the session cookie."""
    if "access_token" in request.query:
        return request.query["access_token"]
    authorization = request.headers.get("Authorization", "")
    if authorization.lower().startswith("bearer "):
        return authorization[7:].strip()
    cookies = "; ".join(request.headers.getall("Cookie", []))
    return session_of(cookies)



__all__ = ["SESSION_COOKIE", "RateLimit", "SeenRequest", "session_of", "token_of"]
