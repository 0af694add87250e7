"""Live messages already read go out together (processor.live.LiveReader.handle_many, _handle_ready): a busy
instance writes each fan once for the messages that arrived during its last fan-out, instead of once per message,
and so catches up instead of falling further behind. Nothing a fan sees may change but the number of writes: every
message is still checked for lag and gaps in order, and the positions of the messages before one that resyncs or
sheds fans go out before it acts (docs/processor.md section 4 "Order", section 5 "Falling behind")."""

import asyncio
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor import live as live_module
from processor.client import Client
from processor.hub import CLOSE_BEHIND, Hub
from processor.live import COALESCE_MAX, LiveReader
from processor.metrics import Metrics

from .fakes import FakeConnection, live, position, settle

EVENT = "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a"
OTHER = "11111111-1111-1111-1111-111111111111"
T = [f"2026-05-02T11:00:0{i}.000Z" for i in range(10)]


def reader(metrics: Metrics, hub: Hub, now: float, resyncs: list[Any], own: str | None = None) -> LiveReader:
    return LiveReader(None, "ch", hub, metrics, lag_limit=2.0, resync=lambda: resyncs.append(1),  # type: ignore[arg-type]  # no Redis: never connects
                      clock=lambda: now, own=own)


async def test_messages_read_together_reach_a_fan_in_one_write_in_their_order(metrics):
    hub = Hub(metrics)
    conns = [FakeConnection() for _ in range(3)]
    for conn in conns:
        hub.complete(hub.begin(Client(conn, 10, metrics), EVENT), [])
    r = reader(metrics, hub, 100.0, [])
    await r.handle_many([live(position(EVENT, f"d{i}", T[i], f"{i}-0"), seq=i + 1, published=99.9) for i in range(4)])
    for conn in conns:
        assert conn.writes == 2  # subscribed, then the four positions in one write
        assert [f["streamId"] for f in conn.frames[1:]] == ["0-0", "1-0", "2-0", "3-0"]
    assert metrics.registry.get_sample_value("processor_frames_sent_total", {"type": "position"}) == 12


async def test_before_a_gap_resyncs_the_positions_read_before_it_are_out(metrics):
    hub = Hub(metrics)
    conn = FakeConnection()
    hub.complete(hub.begin(Client(conn, 10, metrics), EVENT), [])
    seen_at_resync: list[list[str]] = []
    r = LiveReader(None, "ch", hub, metrics, lag_limit=2.0, clock=lambda: 100.0,  # type: ignore[arg-type]  # no Redis
                   resync=lambda: seen_at_resync.append([f["streamId"] for f in conn.frames[1:]]))
    await r.handle_many([live(position(EVENT, "d1", T[0], "0-0"), seq=1, published=99.9),
                         live(position(EVENT, "d1", T[1], "1-0"), seq=2, published=99.9),
                         live(position(EVENT, "d1", T[2], "2-0"), seq=5, published=99.9),  # 3 and 4 lost
                         live(position(EVENT, "d1", T[3], "3-0"), seq=6, published=99.9)])
    assert seen_at_resync == [["0-0", "1-0"]]
    assert [f["streamId"] for f in conn.frames[1:]] == ["0-0", "1-0", "2-0", "3-0"]


async def test_a_message_past_the_bound_sheds_after_the_messages_before_it_went_out(metrics):
    hub = Hub(metrics)
    old, new = FakeConnection(), FakeConnection()
    old_sub = hub.begin(Client(old, 10, metrics), EVENT)
    old_sub.since = 50.0
    hub.complete(old_sub, [])
    new_sub = hub.begin(Client(new, 10, metrics), EVENT)
    new_sub.since = 99.0
    hub.complete(new_sub, [])
    r = reader(metrics, hub, 100.0, [])
    await r.handle_many([live(position(EVENT, "d1", T[0], "0-0"), seq=1, published=99.5),
                         live(position(EVENT, "d1", T[1], "1-0"), seq=2, published=97.0),  # 3 s old: sheds `old`
                         live(position(EVENT, "d1", T[2], "2-0"), seq=3, published=99.5)])
    await settle()
    assert old.closed_with == (1013, CLOSE_BEHIND)
    assert [f["streamId"] for f in old.frames[1:]] == ["0-0"]  # what it got before it was shed
    assert [f["streamId"] for f in new.frames[1:]] == ["0-0", "1-0", "2-0"]


# -- the same frames as one message at a time -------------------------------------------------------------------

messages = st.lists(st.fixed_dictionaries({
    "publisher": st.sampled_from(["a/1", "b/2", "me/0"]),
    "skip": st.sampled_from([0, 0, 0, 1]),  # messages of this publisher lost before this one
    "age": st.sampled_from([0.1, 0.5, 3.0]),  # past the 2 s bound: sheds the older fans
    "positions": st.lists(st.tuples(st.sampled_from([EVENT, OTHER]), st.sampled_from(["d0", "d1"]),
                                    st.sampled_from(T)), max_size=4),
    "malformed": st.sampled_from([False, False, False, True]),
}), min_size=1, max_size=8)
fans = st.lists(st.tuples(st.sampled_from([EVENT, OTHER]), st.sampled_from([0.0, 98.0, 99.8]), st.integers(2, 12)),
                min_size=1, max_size=4)


async def feed(together: bool, spec: list[tuple[str, float, int]], sequence: list[dict[str, Any]]
               ) -> tuple[list[tuple[list[str], Any]], int, float | None, float | None]:
    metrics = Metrics()
    hub = Hub(metrics)
    conns = []
    for event, since, limit in spec:
        conn = FakeConnection()
        sub = hub.begin(Client(conn, limit, metrics), event)
        sub.since = since
        hub.complete(sub, [])
        conns.append(conn)
    resyncs: list[Any] = []
    r = reader(metrics, hub, 100.0, resyncs, own="me/0")
    seqs: dict[str, int] = {}
    data = []
    for n, m in enumerate(sequence):
        seq = seqs[m["publisher"]] = seqs.get(m["publisher"], 0) + 1 + m["skip"]
        body = live(*(position(e, d, ts, f"{n}-{i}") for i, (e, d, ts) in enumerate(m["positions"])),
                    publisher=m["publisher"], seq=seq, published=100.0 - m["age"])
        data.append(body.replace(b"\n[", b"\n{") if m["malformed"] and m["positions"] else body)
    if together:
        await r.handle_many(data)
    else:
        for item in data:
            await r.handle(item)
    await settle()
    registry = metrics.registry
    return ([(conn.sent, conn.closed_with) for conn in conns], len(resyncs),
            registry.get_sample_value("processor_live_gaps_total"),
            registry.get_sample_value("processor_live_dispatch_lag_seconds"))


@given(fans, messages)
def test_together_every_fan_sees_what_it_would_have_seen_one_message_at_a_time(spec, sequence):
    assert asyncio.run(feed(True, spec, sequence)) == asyncio.run(feed(False, spec, sequence))


# -- reading what is already there ------------------------------------------------------------------------------

class FakePubSub:
    """Messages already read (``get_message(timeout=0)`` hands them out without waiting, then ``None``); ``fail``:
    raise once they are handed out, as a connection lost mid-read would. It is its own ``connection``, whose
    ``can_read`` says whether anything is buffered (or the connection broke)."""

    def __init__(self, ready: list[bytes], fail: bool = False) -> None:
        self.ready = list(ready)
        self.fail = fail
        self.calls = 0
        self.connection = self

    async def can_read(self) -> bool:
        return bool(self.ready) or self.fail

    async def get_message(self, ignore_subscribe_messages: bool = False, timeout: float | None = 0.0
                          ) -> dict[str, Any] | None:
        assert timeout == 0.0  # never waits for more
        self.calls += 1
        if self.ready:
            return {"type": "message", "data": self.ready.pop(0)}
        if self.fail:
            raise ConnectionError("redis went away")
        return None


async def test_the_messages_already_read_are_handled_with_the_first_up_to_a_bound(metrics, monkeypatch):
    monkeypatch.setattr(live_module, "COALESCE_MAX", 3)
    hub = Hub(metrics)
    conn = FakeConnection()
    hub.complete(hub.begin(Client(conn, 100, metrics), EVENT), [])
    r = reader(metrics, hub, 100.0, [])
    pubsub = FakePubSub([live(position(EVENT, "d1", T[i], f"{i}-0"), seq=i + 1, published=99.9) for i in range(1, 5)])
    await r._handle_ready(pubsub, live(position(EVENT, "d1", T[0], "0-0"), seq=1, published=99.9))  # type: ignore[arg-type]  # the fake pub/sub
    assert conn.writes == 2 and [f["streamId"] for f in conn.frames[1:]] == ["0-0", "1-0", "2-0"]
    assert len(pubsub.ready) == 2  # left for the next round
    assert COALESCE_MAX >= 2 * 16


async def test_nothing_buffered_means_no_read_that_would_wait(metrics):
    hub = Hub(metrics)
    conn = FakeConnection()
    hub.complete(hub.begin(Client(conn, 100, metrics), EVENT), [])
    pubsub = FakePubSub([])
    await reader(metrics, hub, 100.0, [])._handle_ready(pubsub, live(position(EVENT, "d1", T[0], "0-0")))  # type: ignore[arg-type]  # the fake pub/sub
    assert pubsub.calls == 0 and [f["streamId"] for f in conn.frames[1:]] == ["0-0"]


async def test_a_failure_while_reading_more_still_sends_what_was_read_then_raises(metrics):
    hub = Hub(metrics)
    conn = FakeConnection()
    hub.complete(hub.begin(Client(conn, 100, metrics), EVENT), [])
    r = reader(metrics, hub, 100.0, [])
    pubsub = FakePubSub([live(position(EVENT, "d1", T[1], "1-0"), seq=2, published=99.9)], fail=True)
    with pytest.raises(ConnectionError):
        await r._handle_ready(pubsub, live(position(EVENT, "d1", T[0], "0-0"), seq=1, published=99.9))  # type: ignore[arg-type]  # the fake pub/sub
    assert [f["streamId"] for f in conn.frames[1:]] == ["0-0", "1-0"]
