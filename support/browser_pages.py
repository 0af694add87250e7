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

from urllib.parse import urlencode

from aiohttp import web

PAGE = r"""<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Rally live map</title></head>
<body>
<h1>Live map</h1>
<p id="status" data-state="starting">Starting…</p>
<ul id="cars"></ul>
<form id="follow"><input name="event" aria-label="event"><button>Add to the map</button></form>
<script>
"use strict";
const query = new URLSearchParams(location.search);
const live = query.get("live"), sessionUrl = query.get("session");
const followed = new Set([query.get("event")]);
let socket = null;
const protocol = query.get("protocol");
const firstDelay = Number(query.get("backoff") || 500), maxDelay = 8 * firstDelay;
const map = window.liveMap = {state: "starting", attempts: 0, opened: 0, closes: [], sessionChecks: [],
                              errors: [], log: []};
const TEXT = {
  connecting: "Connecting…",
  live: "Live",
  "sign-in": "Sign in to follow the rally live.",
  "session-ended": "Your session has ended. Sign in again to follow the rally live.",
  unavailable: "The live map is unavailable for now. Trying again…",
  reconnecting: "Connection lost. Reconnecting…",
  "not-allowed": "This page may not show the live map.",
  forbidden: "You may not watch this event.",
};
function show(state) {
  map.state = state;
  const status = document.getElementById("status");
  status.dataset.state = state;
  status.textContent = TEXT[state];
  map.log.push(state);
}
function place(p) {
  let item = document.querySelector(`#cars li[data-device="${CSS.escape(p.deviceId)}"]`);
  if (item === null) {
    item = document.createElement("li");
    item.dataset.device = p.deviceId;
    document.getElementById("cars").append(item);
  }
  if (item.dataset.ts && item.dataset.ts >= p.ts) return;  // never move a car back in time
  Object.assign(item.dataset, {lat: p.lat, lon: p.lon, ts: p.ts});
  item.textContent = `${p.deviceId}: ${p.lat}, ${p.lon} at ${p.ts}`;
}
async function whyRefused() {
  try {
    const answer = await fetch(sessionUrl, {credentials: "include", cache: "no-store"});
    map.sessionChecks.push(answer.status);
    return answer.status;
  } catch (error) {  // no CORS headers: the Processor does not let this site read the answer
    map.sessionChecks.push("unreadable");
    return "unreadable";
  }
}
let delay = firstDelay;
function retry(state) {
  show(state);
  setTimeout(connect, delay);
  delay = Math.min(2 * delay, maxDelay);
}
function connect() {
  map.attempts += 1;
  show("connecting");
  let opened = false;
  socket = protocol ? new WebSocket(live, protocol) : new WebSocket(live);
  socket.onopen = () => {
    opened = true;
    map.opened += 1;
    delay = firstDelay;
    followed.forEach((eventId) => socket.send(JSON.stringify({type: "subscribe", eventId})));
  };
  socket.onmessage = (message) => {
    const frame = JSON.parse(message.data);
    if (frame.type === "subscribed") {
      frame.snapshot.forEach(place);  // the snapshot is the recovery: it brings every car up to date
      show("live");
    } else if (frame.type === "position") {
      place(frame);
    } else if (frame.type === "error") {
      map.errors.push(frame.code);
      if (frame.code === "forbidden" || frame.code === "not_found") show("forbidden");
    }
  };
  socket.onclose = async (event) => {
    map.closes.push({code: event.code, wasClean: event.wasClean, opened});
    if (event.code === 1008) return show("session-ended");  // revoked: only signing in again helps
    if (opened) return retry("reconnecting");
    const why = await whyRefused();  // the browser hides the refusal's status: 1006 whatever happened
    if (why === 401) return show("sign-in");
    if (why === 403 || why === "unreadable") return show("not-allowed");
    retry(why === 503 ? "unavailable" : "reconnecting");
  };
}
document.getElementById("follow").onsubmit = (submitted) => {
  submitted.preventDefault();
  const eventId = submitted.target.elements.event.value;
  followed.add(eventId);
  if (socket !== null && socket.readyState === WebSocket.OPEN) socket.send(JSON.stringify({type: "subscribe", eventId}));
};
connect();
</script>
</body>
</html>
"""


class WebSite:
    """The live map page on two loopback origins: ours (allowed by the Processor) and another site's."""

    def __init__(self) -> None:
        self._runner: web.AppRunner | None = None
        self.ports: dict[str, int] = {}

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/map", self._map)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        for site_name in ("ours", "other"):
            site = web.TCPSite(self._runner, "127.0.0.1", 0)
            await site.start()
            self.ports[site_name] = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]

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
