"""The consumer-group loop (processor.ingest) against fake Redis and PostgreSQL: a batch is dead-lettered, stored,
handed to this instance's fans, published and only then acknowledged, in that order; a failure anywhere leaves
it pending and a redelivery stores and sends nothing twice. That order is what makes a crash lose nothing."""

import asyncio
import json
from typing import Any

import pytest

from processor import live_channel
from processor.config import load
from processor.ingest import Ingest

from .fakes import FakeRedis, FakeStore
from .test_config import BASE

EVENT = "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a"


def entry(entry_id, ts="2026-05-02T11:00:00.000Z", device="d1", **payload):
    body = {"latitude": 1.5, "longitude": 2.5, **payload}
    return entry_id.encode(), {b"ts": ts.encode(), b"device_id": device.encode(), b"codec": b"08",
                               b"payload": json.dumps(body).encode()}


def make(metrics, store):
    return Ingest(load(BASE), FakeRedis(), store, metrics)  # type: ignore[arg-type]  # a fake standing in for the real one


async def test_batch_order_dead_letter_store_publish_ack(metrics):
    store = FakeStore(routes={"d1": [(EVENT, "entry-1")]})
    ingest = make(metrics, store)
    bad = (b"2-0", {b"ts": b"nope", b"device_id": b"d1", b"codec": b"08", b"payload": b"{}"})
    await ingest.handle([entry("1-0"), bad, entry("3-0", device="d9"), entry("4-0"), (b"5-0", None)])
    calls = ingest.redis.calls
    assert [c[0] for c in calls] == ["xadd", "publish", "xack"]
    _, stream, fields = calls[0]
    assert stream == "telemetry:teltonika:dead"
    assert fields[b"reason"] == "bad_ts" and fields[b"source_id"] == b"2-0" and fields[b"ts"] == b"nope"
    _, channel, message = calls[1]
    assert channel == "telemetry:teltonika:live"
    live = live_channel.parse(message)
    assert [(p.event_id, p.entry_id, p.device_id, p.stream_id, p.ts) for p in live.positions()] == [
        (EVENT, "entry-1", "d1", "1-0", "2026-05-02T11:00:00.000Z")]
    assert live.publisher == ingest.publisher.id and live.seq == 1
    assert calls[2][3] == (b"1-0", b"2-0", b"3-0", b"4-0", b"5-0")
    value = metrics.registry.get_sample_value
    assert value("processor_positions_stored_total") == 2
    assert value("processor_positions_duplicate_total") == 1
    assert value("processor_live_broadcast_orphan_records_total") == 1
    assert value("processor_dead_letter_entries_total", {"reason": "bad_ts"}) == 1
    assert value("processor_ingest_batch_seconds_count") == 1


async def test_postgres_failure_retries_and_acks_only_after_store(metrics, monkeypatch):
    store = FakeStore()
    store.failures = 3
    ingest = make(metrics, store)
    real_sleep = asyncio.sleep
    monkeypatch.setattr(asyncio, "sleep", lambda delay: real_sleep(0))
    await ingest.handle([entry("1-0")])
    assert store.calls == 4 and len(store.rows) == 1
    assert [c[0] for c in ingest.redis.calls] == ["xack"]


async def test_redis_failure_leaves_the_batch_unacknowledged(metrics):
    store = FakeStore(routes={"d1": [(EVENT, "entry-1")]})
    ingest = make(metrics, store)
    ingest.redis.fail_publish = True
    with pytest.raises(ConnectionError):  # it must propagate, so the loop reconnects
        await ingest.handle([entry("1-0")])
    assert not any(c[0] == "xack" for c in ingest.redis.calls)
    # Redelivery stores nothing new and broadcasts nothing again.
    ingest.redis.fail_publish = False
    await ingest.handle([entry("1-0")])
    assert [c[0] for c in ingest.redis.calls] == ["xack"]
    assert metrics.registry.get_sample_value("processor_positions_duplicate_total") == 1


async def test_a_backlog_is_read_ahead_and_still_handled_in_order(metrics):
    """A full batch starts the next read while it is stored; batches are handled and acknowledged in order."""
    from processor.config import load as load_config

    config = load_config({**BASE, "PROCESSOR_READ_COUNT": "2"})
    store = FakeStore(routes={"d1": [(EVENT, "entry-1")]})
    batches = [[entry("1-0", ts="2026-05-02T11:00:01.000Z"), entry("2-0", ts="2026-05-02T11:00:02.000Z")],
               [entry("3-0", ts="2026-05-02T11:00:03.000Z"), entry("4-0", ts="2026-05-02T11:00:04.000Z")],
               [entry("5-0", ts="2026-05-02T11:00:05.000Z")]]

    class Stream(FakeRedis):
        def __init__(self):
            super().__init__()
            self.reads = []

        async def xreadgroup(self, group, consumer, streams, count, block):
            start = next(iter(streams.values()))
            self.reads.append((start, block))
            if start == "0" or not batches:
                if start == ">" and not batches:
                    ingest.stop()
                return []
            return [(b"s", batches.pop(0))]

        async def xautoclaim(self, *args, **kwargs):
            return [b"0-0", []]

    redis = Stream()
    ingest = Ingest(config, redis, store, metrics)  # type: ignore[arg-type]  # a fake standing in for the real one
    await ingest._consume()
    acks = [c[3] for c in redis.calls if c[0] == "xack"]
    assert acks == [(b"1-0", b"2-0"), (b"3-0", b"4-0"), (b"5-0",)]
    assert (">", None) in redis.reads  # a read ahead does not block
    assert ingest._ahead is None


def subscribed_hub(metrics):
    """A hub with one fan watching EVENT, and that fan's connection."""
    from processor.client import Client
    from processor.hub import Hub

    from .fakes import FakeConnection

    hub = Hub(metrics)
    conn = FakeConnection()
    hub.complete(hub.begin(Client(conn, 10, metrics), EVENT), [])
    return hub, conn


async def test_a_stored_batch_reaches_this_instances_fans_straight_after_the_commit_then_is_published(metrics):
    from .fakes import settle

    store = FakeStore(routes={"d1": [(EVENT, "entry-1")]})
    ingest = make(metrics, store)
    ingest.hub, conn = subscribed_hub(metrics)
    hand_over = ingest._dispatch_here

    async def traced(positions):
        ingest.redis.calls.append(("hand-over", [p.stream_id for p in positions]))
        await hand_over(positions)

    ingest._dispatch_here = traced  # traced to see the order against PUBLISH
    await ingest.handle([entry("1-0"), entry("2-0", device="d9")])
    await settle()
    assert [c[0] for c in ingest.redis.calls] == ["hand-over", "publish", "xack"]
    assert ingest.redis.calls[0][1] == ["1-0"]  # the routed position only (d9 is an orphan)
    assert [(f["type"], f.get("streamId")) for f in conn.frames] == [("subscribed", None), ("position", "1-0")]
    assert metrics.registry.get_sample_value("processor_positions_broadcast_total") == 1
    # Other instances still get it: the message is published as before.
    assert [p.stream_id for p in live_channel.parse(ingest.redis.calls[1][2]).positions()] == ["1-0"]


async def test_a_redelivered_batch_is_dispatched_to_nobody_again(metrics):
    from .fakes import settle

    store = FakeStore(routes={"d1": [(EVENT, "entry-1")]})
    ingest = make(metrics, store)
    ingest.hub, conn = subscribed_hub(metrics)
    ingest.redis.fail_publish = True  # stored and dispatched, but neither published nor acknowledged
    with pytest.raises(ConnectionError):
        await ingest.handle([entry("1-0")])
    ingest.redis.fail_publish = False
    await ingest.handle([entry("1-0")])  # redelivered: a duplicate, routed nowhere
    await settle()
    assert [f["type"] for f in conn.frames] == ["subscribed", "position"]
    assert [c[0] for c in ingest.redis.calls] == ["xack"]


async def test_batches_reach_the_fans_in_the_order_they_were_stored_and_a_busy_dispatcher_holds_the_loop(metrics):
    from processor import ingest as ingest_module

    from .fakes import settle

    store = FakeStore(routes={"d1": [(EVENT, "entry-1")]})
    ingest = make(metrics, store)
    ingest.hub, conn = subscribed_hub(metrics)
    release = asyncio.Event()
    dispatch = ingest.hub.dispatch

    async def slow(positions):
        await release.wait()
        return await dispatch(positions)

    ingest.hub.dispatch = slow  # a dispatcher that cannot keep up
    stamps = [f"2026-05-02T11:00:0{i}.000Z" for i in range(ingest_module.LOCAL_BACKLOG + 3)]
    handled = []
    for i, ts in enumerate(stamps):
        task = asyncio.create_task(ingest.handle([entry(f"{i + 1}-0", ts=ts)]))
        await settle()
        handled.append(task.done())
        if not task.done():
            break
    release.set()
    await task
    await settle(20)
    # one batch in the dispatcher's hands, LOCAL_BACKLOG waiting, then the loop waits too
    assert handled == [True] * (ingest_module.LOCAL_BACKLOG + 1) + [False]
    assert [f["ts"] for f in conn.frames[1:]] == [f"2026-05-02T11:00:0{i}.000Z"
                                                  for i in range(ingest_module.LOCAL_BACKLOG + 2)]


async def test_without_fans_here_nothing_is_dispatched_but_everything_is_published(metrics):
    from processor.hub import Hub

    store = FakeStore(routes={"d1": [(EVENT, "entry-1")]})
    ingest = make(metrics, store)
    ingest.hub = Hub(metrics)

    async def boom(positions):
        raise AssertionError("dispatched with nobody watching here")

    ingest.hub.dispatch = boom  # must not be reached
    await ingest.handle([entry("1-0")])
    assert [c[0] for c in ingest.redis.calls] == ["publish", "xack"]


class Backlog(FakeRedis):
    """A stream holding ``batches`` (then nothing: the loop stops); every call, and each INSERT's start and end
    (from :class:`TimedStore`), on one timeline."""

    def __init__(self, batches, ingest_ref):
        super().__init__()
        self.batches = batches
        self.ingest_ref = ingest_ref

    async def xreadgroup(self, group, consumer, streams, count, block):
        start = next(iter(streams.values()))
        if start == "0" or not self.batches:
            if start == ">" and not self.batches:
                self.ingest_ref[0].stop()
            return []
        return [(b"s", self.batches.pop(0))]

    async def xautoclaim(self, *args, **kwargs):
        return [b"0-0", []]


class TimedStore(FakeStore):
    """A FakeStore whose INSERT takes a few loop turns, and which fails the test if two run at once (the Processor
    has one writer connection)."""

    def __init__(self, timeline, **kwargs):
        super().__init__(**kwargs)
        self.timeline = timeline
        self.running = False

    async def insert(self, positions):
        assert not self.running, "two INSERTs at once"
        self.running = True
        self.timeline.append(("insert", [p.stream_id for p in positions]))
        for _ in range(3):
            await asyncio.sleep(0)
        result = await super().insert(positions)
        self.timeline.append(("committed", [p.stream_id for p in positions]))
        self.running = False
        return result


def backlog(n):
    return [[entry(f"{2 * i + 1}-0", ts=f"2026-05-02T11:00:{2 * i:02d}.000Z"),
             entry(f"{2 * i + 2}-0", ts=f"2026-05-02T11:00:{2 * i + 1:02d}.000Z")] for i in range(n)]


async def test_a_backlog_stores_the_next_batch_while_the_committed_one_is_published_and_acknowledged(metrics):
    """Section 5: the next batch's INSERT goes out as soon as the previous one committed; each batch is still
    stored after the one before it, and published and acknowledged after its own commit, in stream order."""
    config = load({**BASE, "PROCESSOR_READ_COUNT": "2"})
    ref: list[Ingest] = []
    redis = Backlog([*backlog(3), [entry("7-0", ts="2026-05-02T11:00:06.000Z")]], ref)
    store = TimedStore(redis.calls, routes={"d1": [(EVENT, "entry-1")]})
    ingest = Ingest(config, redis, store, metrics)  # type: ignore[arg-type]  # fakes standing in for the real ones
    ref.append(ingest)
    await ingest._consume()
    timeline: list[tuple[str, Any]] = [(c[0], c[3] if c[0] == "xack" else c[1])
                                       for c in redis.calls if c[0] in ("insert", "committed", "xack")]
    ids = [["1-0", "2-0"], ["3-0", "4-0"], ["5-0", "6-0"], ["7-0"]]
    # stored one after another, in order
    assert [t[1] for t in timeline if t[0] == "insert"] == ids
    assert [t[1] for t in timeline if t[0] == "committed"] == ids
    # acknowledged in order, each after its own commit
    acks = [[i.decode() for i in t[1]] for t in timeline if t[0] == "xack"]
    assert acks == ids
    for batch in ids:
        assert timeline.index(("committed", batch)) < timeline.index(("xack", tuple(i.encode() for i in batch)))
    # the next INSERT went out before the committed batch was acknowledged: the overlap this is for
    assert timeline.index(("insert", ids[1])) < timeline.index(("xack", (b"1-0", b"2-0")))
    live = [live_channel.parse(c[2]) for c in redis.calls if c[0] == "publish"]
    assert [m.seq for m in live] == [1, 2, 3, 4]
    assert [[p.stream_id for p in m.positions()] for m in live] == ids
    assert ingest._storing is None and ingest._ahead is None


async def test_a_failure_while_publishing_still_finishes_the_batch_stored_ahead(metrics):
    """Redis fails while batch 1 is published; batch 2 was already being stored. It is not dropped: its positions
    reach this instance's fans and its message is numbered (others see the gap and resync); nothing is
    acknowledged, so both are read again (as duplicates), and the error still ends the loop for a reconnect."""
    from .fakes import settle

    config = load({**BASE, "PROCESSOR_READ_COUNT": "2"})
    ref: list[Ingest] = []
    redis = Backlog(backlog(2), ref)
    store = TimedStore(redis.calls, routes={"d1": [(EVENT, "entry-1")]})
    ingest = Ingest(config, redis, store, metrics)  # type: ignore[arg-type]  # fakes standing in for the real ones
    ref.append(ingest)
    ingest.hub, conn = subscribed_hub(metrics)
    redis.fail_publish = True
    with pytest.raises(ConnectionError):
        await ingest._consume()
    await settle()
    assert [c[1] for c in redis.calls if c[0] == "committed"] == [["1-0", "2-0"], ["3-0", "4-0"]]
    assert not any(c[0] == "xack" for c in redis.calls)
    assert [f.get("streamId") for f in conn.frames] == [None, "1-0", "2-0", "3-0", "4-0"]
    assert ingest.publisher.seq == 2
    assert ingest._storing is None and ingest._ahead is None
