"""The fans' web site, served by the suite: a small live map page whose own JavaScript is the live channel's
client, as the real site's would be.

The same page is served on two loopback ports, i.e. two origins of the same host: "our web site" (whose
origin the Processor allows) and "another web site" (not allowed). Cookies ignore ports, so a fan's session
cookie for ``127.0.0.1`` reaches the Processor from either page: exactly the situation in which only the
``Origin`` check stands between another site and a fan's session.

The page implements the client's rules of docs/processor.md ("What a browser sees"): subscribe on open;
after a refused upgrade ask ``/live/session`` why; stop on "sign in", on a foreign origin and on close 1008;
otherwise back off and reconnect. It shows its state in ``#status`` (``data-state`` for steps, text for
people) and the cars in ``#cars``; ``window.liveMap`` keeps a log of what happened, for failure reports.
"""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from aiohttp import web

#: The page (HTML and its JavaScript). Kept in a file of its own so that editors treat it as what it is.
PAGE = (Path(__file__).resolve().parent / "browser_map.html").read_text(encoding="utf-8")


class WebSite:
    """The live map page on two loopback origins: ours (allowed by the Processor) and another site's."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.ports: dict[str, int] = {}

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/map", self._map)
        app.router.add_get("/favicon.ico", self._no_icon)  # else every page logs a 404 to its console
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        for site_name in ("ours", "other"):
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.ports[site_name] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]  # aiohttp's private server: set once the site has started

    async def close(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    @property
    def origin(self) -> str:
        """Our web site's origin, as the browser sends it (the Processor must allow it)."""
        return self.origin_of("ours")

    def origin_of(self, site_name: str) -> str:
        return f"http://127.0.0.1:{self.ports[site_name]}"

    def map_url(self, site_name: str, *, processor_url: str, event_id: str, backoff_ms: int,
                protocol: str | None = None) -> str:
        """The live map page of ``event_id`` on ``site_name``, talking to the Processor at ``processor_url``."""
        params = {"live": processor_url.replace("http://", "ws://", 1) + "/live",
                  "session": processor_url + "/live/session", "event": event_id, "backoff": str(backoff_ms)}
        if protocol:
            params["protocol"] = protocol
        return f"{self.origin_of(site_name)}/map?{urlencode(params)}"

    async def _map(self, request: web.Request) -> web.Response:
        return web.Response(text=PAGE, content_type="text/html", headers={"Cache-Control": "no-store"})

    async def _no_icon(self, request: web.Request) -> web.Response:
        return web.Response(status=204)
