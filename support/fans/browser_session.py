"""What a web page learns from ``GET /live/session`` (docs/processor.md, "What a browser sees"), asked the way
a page's ``fetch(url, {credentials: "include"})`` asks: with the page's ``Origin`` and the fan's cookie."""

from __future__ import annotations

import json
from dataclasses import dataclass

import aiohttp

from ..clock import ANSWER, within


@dataclass(frozen=True)
class SessionAnswer:
    """The answer, and whether the page may read it (CORS) at all."""

    status: int
    state: str
    headers: dict[str, str]
    #: The body's ``message``: the reason the upgrade would give (``None`` if the body has none).
    message: str | None = None

    @property
    def readable_by(self) -> str | None:
        """The origin the answer is released to (``None``: no page may read it), credentials included."""
        if self.headers.get("Access-Control-Allow-Credentials") != "true":
            return None
        return self.headers.get("Access-Control-Allow-Origin")

    def __str__(self) -> str:
        return f"HTTP {self.status} {self.state!r} {self.headers}"


async def ask_session(http: aiohttp.ClientSession, base_url: str, *, origin: str, cookie: str | None) -> SessionAnswer:
    headers = {"Origin": origin, **({"Cookie": cookie} if cookie else {})}
    limit = aiohttp.ClientTimeout(total=within(ANSWER))
    async with http.get(f"{base_url}/live/session", headers=headers, timeout=limit) as r:
        text = await r.text()
        message = None
        try:
            body = json.loads(text)
            state = body.get("status", "<none>")
            message = body.get("message")
        except (ValueError, AttributeError):
            state = f"<not JSON: {text[:100]!r}>"
        return SessionAnswer(r.status, state, dict(r.headers), message)
