"""The HTTP endpoints and the ``/live`` frame loop (processor.server) with fakes for Directus, the store and the
socket: upgrades are refused before any WebSocket state, subscribe and unsubscribe answer as docs/processor.md
section 4 says, the rate limit and the subscription cap refuse before Directus is asked, and a crowd is served by
a bounded number of workers, so one viewer or a crowd cannot exhaust the CMS or the process."""

import asyncio
import gc
import json
import types
import uuid

import pytest
from websockets.datastructures import Headers
from websockets.http11 import Request

from processor.config import load
from processor.directus import Outcome
from processor.hub import Hub
from processor.server import Server, TokenBucket, _Inbox

from .fakes import FakeConnection, FakeDirectus, FakeHealth, FakeStore, position, settle
from .test_config import BASE

EVENT = "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a"


def make_server(metrics, directus=None, store=None, healthy=True, **env):
    config = load({**BASE, **{f"PROCESSOR_{k.upper()}": str(v) for k, v in env.items()}})
    return Server(config, metrics, Hub(metrics), directus or FakeDirectus(), store or FakeStore(), FakeHealth(healthy))  # type: ignore[arg-type]  # fakes standing in for the real ones


def request(path, **headers):
    h = Headers()
    for name, value in headers.items():
        h[name.replace("_", "-")] = value
    return Request(path, h)


async def answer(server, req):
    conn = types.SimpleNamespace()
    return conn, await server.process_request(conn, req)


async def test_healthz(metrics):
    _, response = await answer(make_server(metrics), request("/healthz"))
    assert response.status_code == 200
    assert json.loads(response.body) == {"status": "ok", "redis": "up", "postgres": "up", "consumer": "running"}
    _, response = await answer(make_server(metrics, healthy=False), request("/healthz"))
    assert response.status_code == 503 and json.loads(response.body)["redis"] == "down"


async def test_metrics_and_404(metrics):
    _, response = await answer(make_server(metrics), request("/metrics"))
    assert response.status_code == 200 and response.headers["Content-Type"].startswith("text/plain; version=0.0.4")
    assert b"processor_positions_stored_total 0.0" in response.body
    _, response = await answer(make_server(metrics), request("/other"))
    assert response.status_code == 404


@pytest.mark.parametrize("origins, origin, status", [
    ("", "https://evil.example", 403),
    ("https://map.example", "https://evil.example", 403),
    ("https://map.example", "https://map.example", None),
    ("*", "https://evil.example", None),
    ("", None, None),
])
async def test_origin_check(metrics, origins, origin, status):
    directus = FakeDirectus()
    server = make_server(metrics, directus, allowed_origins=origins)
    headers = {"Cookie": "s=1"}
    if origin:
        headers["Origin"] = origin
    _, response = await answer(server, request("/live", **headers))
    assert (response.status_code if response else None) == status
    assert directus.calls == ([] if status == 403 else ["/users/me"])


@pytest.mark.parametrize("outcome, status, reason", [
    (Outcome.OK, None, None), (Outcome.UNAUTHORIZED, 401, "invalid_cookie"),
    (Outcome.UNAVAILABLE, 503, "directus_unavailable"), (Outcome.SHARE, 401, "share_session"),
    (Outcome.RATE_LIMITED, 503, "directus_rate_limited"),
])
async def test_cookie_check(metrics, outcome, status, reason):
    server = make_server(metrics, FakeDirectus(user=outcome))
    conn, response = await answer(server, request("/live", Cookie="directus_session_token=abc"))
    assert (response.status_code if response else None) == status
    if reason:
        assert metrics.registry.get_sample_value("processor_auth_failures_total", {"reason": reason}) == 1
    else:
        assert conn.processor_cookie == "directus_session_token=abc"


async def test_rate_limited_upgrade_says_when_to_try_again(metrics):
    directus = FakeDirectus(user=Outcome.RATE_LIMITED)
    directus.retry_after = 3
    _, response = await answer(make_server(metrics, directus), request("/live", Cookie="directus_session_token=abc"))
    assert response.status_code == 503 and response.headers["Retry-After"] == "3"
    assert metrics.registry.get_sample_value("processor_auth_failures_total", {"reason": "directus_unavailable"}) == 0


async def test_no_cookie_never_calls_directus(metrics):
    directus = FakeDirectus()
    _, response = await answer(make_server(metrics, directus), request("/live"))
    assert response.status_code == 401 and directus.calls == []


def test_token_bucket():
    now = [0.0]
    bucket = TokenBucket(2, 4, clock=lambda: now[0])
    assert [bucket.take() for _ in range(5)] == [True] * 4 + [False]
    now[0] = 0.5
    assert bucket.take() and not bucket.take()


class FakeWebSocket(FakeConnection):
    """A server-side connection fed by the test: ``incoming`` frames, then closed."""

    def __init__(self, cookie="s=1"):
        super().__init__()
        self.id = uuid.uuid4()
        self.processor_cookie = cookie
        self.processor_user = "u1"
        self.incoming: asyncio.Queue = asyncio.Queue()
        self.close_code = None

    def __aiter__(self):
        return self

    async def __anext__(self):
        message = await self.incoming.get()
        if message is None:
            raise StopAsyncIteration
        return message

    async def close(self, code=1000, reason=""):
        await super().close(code, reason)
        self.incoming.put_nowait(None)


async def converse(server, frames_in, *, wait=0.05):
    ws = FakeWebSocket()
    task = asyncio.create_task(server.handler(ws))
    for frame in frames_in:
        ws.incoming.put_nowait(frame if isinstance(frame, (str, bytes)) else json.dumps(frame))
    await asyncio.sleep(wait)
    await settle()
    ws.incoming.put_nowait(None)
    await task
    return ws


async def test_subscribe_flow(metrics):
    store = FakeStore()
    store.snapshots[EVENT] = [position(EVENT, "d1", "2026-05-02T11:00:00.000Z")]
    directus = FakeDirectus()
    server = make_server(metrics, directus, store)
    ws = await converse(server, ["nonsense", {"type": "subscribe", "eventId": EVENT.upper()},
                                 {"type": "unsubscribe", "eventId": EVENT}])
    assert [f["type"] for f in ws.frames] == ["error", "subscribed", "unsubscribed"]
    assert ws.frames[0]["code"] == "bad_request"
    assert ws.frames[1]["eventId"] == EVENT and ws.frames[1]["snapshot"][0]["deviceId"] == "d1"
    assert directus.calls == [f"/items/events/{EVENT}"]
    assert metrics.registry.get_sample_value("processor_websocket_connections") == 0


@pytest.mark.parametrize("outcome, code", [
    (Outcome.FORBIDDEN, "forbidden"), (Outcome.NOT_FOUND, "not_found"), (Outcome.UNAVAILABLE, "unavailable"),
])
async def test_subscribe_refusals(metrics, outcome, code):
    server = make_server(metrics, FakeDirectus(event=outcome))
    ws = await converse(server, [{"type": "subscribe", "eventId": EVENT}])
    assert ws.frames == [{"type": "error", "code": code, "eventId": EVENT, "message": ws.frames[0]["message"]}]
    assert ws.closed_with is None


async def test_rate_limited_subscribe_is_unavailable_with_a_time_to_retry(metrics):
    directus = FakeDirectus(event=Outcome.RATE_LIMITED)
    directus.retry_after = 2
    ws = await converse(make_server(metrics, directus), [{"type": "subscribe", "eventId": EVENT}])
    assert ws.frames == [{"type": "error", "code": "unavailable", "eventId": EVENT, "retryAfter": 2,
                          "message": ws.frames[0]["message"]}]
    assert ws.closed_with is None
    assert metrics.registry.get_sample_value("processor_auth_failures_total", {"reason": "directus_rate_limited"}) == 1
    assert metrics.registry.get_sample_value("processor_auth_failures_total", {"reason": "directus_unavailable"}) == 0


async def test_unauthorized_subscribe_closes_with_1008(metrics):
    server = make_server(metrics, FakeDirectus(event=Outcome.UNAUTHORIZED))
    ws = await converse(server, [{"type": "subscribe", "eventId": EVENT}])
    assert [f["code"] for f in ws.frames] == ["unauthorized"] and ws.closed_with[0] == 1008


async def test_snapshot_failure_is_unavailable_and_no_subscription(metrics):
    store = FakeStore()
    store.snapshot_error = ConnectionRefusedError("postgres down")
    server = make_server(metrics, store=store)
    ws = await converse(server, [{"type": "subscribe", "eventId": EVENT}])
    assert [f["code"] for f in ws.frames] == ["unavailable"]
    assert server.hub.events == {}


async def test_rate_limit_skips_directus(metrics):
    directus = FakeDirectus()
    server = make_server(metrics, directus, subscribe_rate=2)  # burst of 4
    ws = await converse(server, [{"type": "subscribe", "eventId": EVENT}] * 7)
    codes = [f.get("code") for f in ws.frames]
    assert codes.count("rate_limited") == 3 and len(directus.calls) == 4


async def test_max_subscriptions(metrics):
    directus = FakeDirectus()
    server = make_server(metrics, directus, max_subscriptions=2)
    events = [str(uuid.UUID(int=i)) for i in range(1, 4)]
    ws = await converse(server, [{"type": "subscribe", "eventId": e} for e in events] + [{"type": "subscribe",
                                                                                          "eventId": events[0]}])
    assert [f["type"] for f in ws.frames] == ["subscribed", "subscribed", "error", "subscribed"]
    assert ws.frames[2]["code"] == "too_many_subscriptions" and len(directus.calls) == 3


class GatedDirectus(FakeDirectus):
    """Answers each event check only when the test opens the gate; counts the checks waiting at once."""

    def __init__(self) -> None:
        super().__init__()
        self.gate = asyncio.Event()
        self.waiting = 0
        self.most_waiting = 0

    async def may_watch(self, cookie: str, event_id: str) -> Outcome:
        self.calls.append(f"/items/events/{event_id}")
        self.waiting += 1
        self.most_waiting = max(self.most_waiting, self.waiting)
        try:
            await self.gate.wait()
        finally:
            self.waiting -= 1
        return self.event


async def test_a_crowd_is_handled_by_a_bounded_number_of_workers_and_everyone_is_answered(metrics):
    """More connections subscribing at once than there are workers: the others wait in line without a task each
    (their peak was per-viewer memory kept by the allocator), and every fan is answered in the end."""
    directus = GatedDirectus()
    server = make_server(metrics, directus)
    server.workers = 3
    sockets = [FakeWebSocket(cookie=f"s={i}") for i in range(8)]
    handlers = [asyncio.create_task(server.handler(ws)) for ws in sockets]
    for ws in sockets:
        ws.incoming.put_nowait(json.dumps({"type": "subscribe", "eventId": EVENT}))
    await settle()
    in_line = len(server.ready)
    running = server.working
    directus.gate.set()
    for _ in range(100):
        if all(ws.sent for ws in sockets):
            break
        await asyncio.sleep(0.001)
    for ws in sockets:
        ws.incoming.put_nowait(None)
    await asyncio.gather(*handlers)
    assert running == 3 and in_line == 5 and directus.most_waiting == 3
    assert all([f["type"] for f in ws.frames] == ["subscribed"] for ws in sockets)
    assert server.working == 0 and not server.ready


async def test_a_fan_who_leaves_while_in_line_is_skipped_and_the_line_moves_on(metrics):
    directus = GatedDirectus()
    server = make_server(metrics, directus)
    server.workers = 1
    first, leaving, last = (FakeWebSocket(cookie=f"s={i}") for i in range(3))
    handlers = [asyncio.create_task(server.handler(ws)) for ws in (first, leaving, last)]
    for ws in (first, leaving, last):
        ws.incoming.put_nowait(json.dumps({"type": "subscribe", "eventId": EVENT}))
    await settle()
    assert len(server.ready) == 2
    leaving.incoming.put_nowait(None)  # gone before its turn
    await handlers[1]
    directus.gate.set()
    for _ in range(100):
        if last.sent:
            break
        await asyncio.sleep(0.001)
    for ws in (first, last):
        ws.incoming.put_nowait(None)
    await asyncio.gather(*handlers)
    assert [f["type"] for f in first.frames] == ["subscribed"] and [f["type"] for f in last.frames] == ["subscribed"]
    assert leaving.sent == [] and len(directus.calls) == 2  # the fan who left cost no Directus check
    assert server.working == 0 and not server.ready


async def test_an_idle_viewer_keeps_no_worker(metrics):
    """Once its frames are handled, a viewer holds no task (and so no coroutine or context): per-viewer memory."""
    server = make_server(metrics)
    ws = FakeWebSocket()
    handler = asyncio.create_task(server.handler(ws))
    ws.incoming.put_nowait(json.dumps({"type": "subscribe", "eventId": EVENT}))
    await asyncio.sleep(0.01)
    await settle()
    inboxes = [o for o in gc.get_objects() if isinstance(o, _Inbox)]
    kept = [(inbox.worker, list(inbox.frames)) for inbox in inboxes]
    ws.incoming.put_nowait(None)
    await handler
    assert [f["type"] for f in ws.frames] == ["subscribed"] and kept == [(None, [])] and server.working == 0


async def _until(condition, what: str) -> None:
    """Let the loop run until ``condition()`` holds (at most a second of fake time slices)."""
    for _ in range(1000):
        if condition():
            return
        await asyncio.sleep(0.001)
    raise AssertionError(f"never happened: {what}")


def _subscribing(server):
    """A fan on ``server`` who has just asked to subscribe to ``EVENT``, and its handler task."""
    ws = FakeWebSocket()
    handler = asyncio.create_task(server.handler(ws))
    ws.incoming.put_nowait(json.dumps({"type": "subscribe", "eventId": EVENT}))
    return ws, handler


async def test_the_snapshot_query_runs_while_directus_is_asked_and_nothing_is_sent_before_its_yes(metrics):
    """The round trip costs the longer of the check and the query, not their sum (bench/ANALYSIS.md)."""
    directus, store = GatedDirectus(), FakeStore()
    server = make_server(metrics, directus, store)
    ws, handler = _subscribing(server)
    await _until(lambda: store.snapshot_calls == 1, "the snapshot query, while Directus is asked")
    await settle()
    sent_before_yes = list(ws.sent)
    directus.gate.set()
    await _until(lambda: ws.sent, "an answer once Directus said yes")
    ws.incoming.put_nowait(None)
    await handler
    assert sent_before_yes == [] and directus.waiting == 0
    assert [f["type"] for f in ws.frames] == ["subscribed"] and store.snapshot_calls == 1


async def test_a_check_slower_than_the_head_start_holds_nothing_and_the_map_is_read_after_the_yes(metrics, monkeypatch):
    monkeypatch.setattr("processor.server.CHECK_AHEAD", 0.005)
    directus, store = GatedDirectus(), FakeStore()
    server = make_server(metrics, directus, store)
    ws, handler = _subscribing(server)
    await _until(lambda: store.snapshot_calls == 1, "the early snapshot query")
    await _until(lambda: not server.hub.events, "the early start dropped once the check outlasted its head start")
    store.snapshots[EVENT] = [position(EVENT, "dev-1", "2026-12-08T00:00:01.000Z")]  # stored during the check
    directus.gate.set()
    await _until(lambda: ws.sent, "an answer once Directus said yes")
    ws.incoming.put_nowait(None)
    await handler
    assert store.snapshot_calls == 2  # read again, after the yes: it shows what was stored during the check
    assert [(f["type"], len(f["snapshot"])) for f in ws.frames] == [("subscribed", 1)]


async def test_a_refused_fan_gets_its_error_alone_though_the_map_was_being_read(metrics):
    store = FakeStore()
    store.snapshots[EVENT] = [position(EVENT, "dev-1", "2026-12-08T00:00:01.000Z")]
    server = make_server(metrics, FakeDirectus(event=Outcome.FORBIDDEN), store)
    ws = await converse(server, [{"type": "subscribe", "eventId": EVENT}])
    assert [(f["type"], f.get("code")) for f in ws.frames] == [("error", "forbidden")]
    assert not server.hub.events and not server.hub.clients


async def test_a_refused_subscribe_again_leaves_the_map_the_fan_had(metrics):
    directus = FakeDirectus()
    server = make_server(metrics, directus)
    ws, handler = _subscribing(server)
    await _until(lambda: ws.sent, "the first map")
    directus.event = Outcome.FORBIDDEN
    ws.incoming.put_nowait(json.dumps({"type": "subscribe", "eventId": EVENT}))
    await _until(lambda: len(ws.sent) == 2, "the refusal")
    await server.hub.dispatch([position(EVENT, "dev-1", "2026-12-08T00:00:02.000Z")])
    await _until(lambda: len(ws.sent) == 3, "the next live position")
    ws.incoming.put_nowait(None)
    await handler
    assert [f["type"] for f in ws.frames] == ["subscribed", "error", "position"]
