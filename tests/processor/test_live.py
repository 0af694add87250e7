"""The live-channel reader (processor.live): the lag gauge, a gap in a publisher's numbers counted and every map
resynchronised, fans shown the past closed past the bound, malformed messages ignored, and this instance's own
messages skipped. Pub/sub loses messages silently; these checks are how the Processor notices."""

import asyncio
from typing import Any

from processor.client import Client
from processor.hub import CLOSE_BEHIND, Hub
from processor.live import LiveReader

from .fakes import FakeConnection, live, position, settle

EVENT = "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a"
T0, T1 = "2026-05-02T11:00:00.000Z", "2026-05-02T11:00:01.000Z"


def value(metrics, name):
    return metrics.registry.get_sample_value(name) or 0


def reader(metrics, hub, now, resyncs):
    return LiveReader(None, "ch", hub, metrics, lag_limit=2.0, resync=lambda: resyncs.append(1),  # type: ignore[arg-type]  # no Redis: these tests never connect
                      clock=lambda: now[0])


async def test_lag_is_a_gauge_and_a_gap_is_counted_and_resyncs(metrics):
    hub, now, resyncs = Hub(metrics), [1000.5], []  # type: ignore[var-annotated]  # the resync calls, counted
    conn = FakeConnection()
    hub.complete(hub.begin(Client(conn, 10, metrics), EVENT), [])
    r = reader(metrics, hub, now, resyncs)
    await r.handle(live(position(EVENT, "d1", T0), seq=1, published=1000.0))
    lag = value(metrics, "processor_live_dispatch_lag_seconds")
    await r.handle(live(position(EVENT, "d1", T1), seq=3, published=1000.2))  # seq 2 never arrived
    await settle()
    assert lag == 0.5
    assert value(metrics, "processor_live_gaps_total") == 1 and resyncs == [1]
    assert [f["ts"] for f in conn.frames[1:]] == [T0, T1]  # nothing shed: within the bound


async def test_a_message_older_than_the_bound_closes_the_fans_it_would_show_the_past_to(metrics):
    hub, now, resyncs = Hub(metrics), [0.0], []  # type: ignore[var-annotated]  # the resync calls, counted
    before, after = FakeConnection(), FakeConnection()
    sub = hub.begin(Client(before, 10, metrics), EVENT)
    sub.since = 100.0
    hub.complete(sub, [])
    late = hub.begin(Client(after, 10, metrics), EVENT)
    late.since = 104.0  # subscribed after the message was published: its snapshot has it
    hub.complete(late, [])
    now[0] = 105.0
    r = reader(metrics, hub, now, resyncs)
    await r.handle(live(position(EVENT, "d1", T0), published=102.0))  # 3 s old, the bound is 2 s
    await settle()
    assert before.closed_with == (1013, CLOSE_BEHIND)
    assert after.closed_with is None and [f["type"] for f in after.frames] == ["subscribed", "position"]
    assert value(metrics, "processor_live_behind_disconnects_total") == 1
    assert value(metrics, "processor_live_dispatch_lag_seconds") == 3.0


async def test_malformed_live_messages_are_ignored(metrics):
    hub = Hub(metrics)
    conn = FakeConnection()
    hub.complete(hub.begin(Client(conn, 10, metrics), EVENT), [])
    r = reader(metrics, hub, [0.0], [])
    header = b'{"publisher":"p","seq":1,"published":0}\n'
    for data in (b"not json", b"[]", b'{"positions": 3}', b'{"publisher":"p","seq":"1","published":0}\n[]',
                 header + b"[[1]]", header + b"{}", header + b"[[5,\"e\",\"d\",1,0,0,null,null,null,null,\"1-0\"]]",
                 b"\xff\n[]"):
        await r.handle(data)
    await settle()
    assert [f["type"] for f in conn.frames] == ["subscribed"]


async def test_without_fans_the_positions_are_not_decoded_but_lag_and_gaps_are_still_checked(metrics, monkeypatch):
    from processor import live_channel

    def boom(self):
        raise AssertionError("positions decoded with nobody watching")

    monkeypatch.setattr(live_channel.LiveMessage, "positions", boom)
    r = reader(metrics, Hub(metrics), [10.0], resyncs := [])  # type: ignore[var-annotated]  # the resync calls, counted
    await r.handle(live(position(EVENT, "d1", T0), seq=1, published=9.0))
    await r.handle(live(position(EVENT, "d1", T1), seq=5, published=9.5))
    assert resyncs == [1]
    assert value(metrics, "processor_live_gaps_total") == 1
    assert value(metrics, "processor_live_dispatch_lag_seconds") == 0.5


async def test_this_instances_own_messages_are_skipped_it_dispatched_them_already(metrics):
    """Its own positions reached its fans from the ingest loop; from the channel they are neither dispatched again,
    nor measured for lag, nor checked for gaps, nor a reason to shed anyone."""
    hub, now = Hub(metrics), [100.0]
    resyncs: list[int] = []
    conn = FakeConnection()
    sub = hub.begin(Client(conn, 10, metrics), EVENT)
    sub.since = 0.0
    hub.complete(sub, [])
    r = LiveReader(None, "ch", hub, metrics, lag_limit=2.0,  # type: ignore[arg-type]  # no Redis: never connects
                   resync=lambda: resyncs.append(1), clock=lambda: now[0], own="me/0001")
    await r.handle(live(position(EVENT, "d1", T0), publisher="me/0001", seq=1, published=10.0))  # 90 s old
    await r.handle(live(position(EVENT, "d1", T1), publisher="me/0001", seq=7, published=10.0))  # a "gap"
    await r.handle(live(position(EVENT, "d2", T1), publisher="other/0002", seq=1, published=99.5))
    await settle()
    assert conn.closed_with is None and resyncs == []
    assert [(f["type"], f.get("deviceId")) for f in conn.frames] == [("subscribed", None), ("position", "d2")]
    assert value(metrics, "processor_live_gaps_total") == 0
    assert value(metrics, "processor_live_dispatch_lag_seconds") == 0.5  # the other publisher's message only


class _ReconnectingConnection:
    """redis-py's pub/sub connection as the reader sees it: callbacks run on every reconnect, which redis-py does by
    itself (and subscribes again) when the connection breaks while the reader waits for a message."""

    def __init__(self) -> None:
        self.callbacks: list[Any] = []

    def register_connect_callback(self, callback: Any) -> None:
        self.callbacks.append(callback)

    def deregister_connect_callback(self, callback: Any) -> None:
        self.callbacks.remove(callback)

    async def reconnect(self) -> None:
        for callback in list(self.callbacks):
            result = callback(self)
            if result is not None:
                await result


class _PubSub:
    def __init__(self, connection: _ReconnectingConnection) -> None:
        self.connection = connection

    async def subscribe(self, channel: str) -> None:
        return None

    async def get_message(self, **_: Any) -> None:
        await asyncio.sleep(0.001)

    async def aclose(self) -> None:
        return None


class _Redis:
    def __init__(self) -> None:
        self.connection = _ReconnectingConnection()

    def pubsub(self, **_: Any) -> _PubSub:
        return _PubSub(self.connection)


async def test_a_subscription_redis_py_restores_by_itself_is_counted_as_a_loss_and_resyncs(metrics):
    """The connection breaks and redis-py reconnects and subscribes again without telling the reader: what was
    published meanwhile is lost all the same (docs/processor.md section 5, "Gaps")."""
    redis, resyncs = _Redis(), list[int]()
    r = LiveReader(redis, "ch", Hub(metrics), metrics, resync=lambda: resyncs.append(1))  # type: ignore[arg-type]  # a fake with only what the reader uses
    task = asyncio.create_task(r.run())
    while not r.subscribed:
        await asyncio.sleep(0.001)
    assert value(metrics, "processor_live_gaps_total") == 0 and resyncs == []
    await redis.connection.reconnect()
    assert value(metrics, "processor_live_gaps_total") == 1 and resyncs == [1]
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    assert redis.connection.callbacks == []  # a pooled connection keeps no callback of a reader that stopped
