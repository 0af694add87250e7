"""The fan-out's fast path (processor.hub.Hub._deliver) against the per-fan path it replaces: for any mix of fans
(sharing a snapshot's watermarks or not, still loading their snapshot, backed up, with small queues) and any
batches, every fan gets the very same frames, in the same writes, and is closed the same way, as when each
subscription judges each position itself (Subscription.deliver_many). The fast path judges the snapshot/live
boundary once per batch per watermarks and joins the admitted frames once for all the fans sharing them; these
tests are what says that this changes nothing a fan can see (docs/processor.md section 4, "Snapshot/live
boundary", "Order")."""

import asyncio
from typing import Any

from hypothesis import given
from hypothesis import strategies as st

from processor import boundary as boundary_module
from processor.boundary import Boundary, admitted, watermarks
from processor.client import Client
from processor.hub import Hub, Watched, render_snapshot
from processor.metrics import Metrics

from .fakes import FakeConnection, position, settle

EVENT = "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a"
OTHER = "11111111-1111-1111-1111-111111111111"
DEVICES = ["d0", "d1", "d2"]
TS = [f"2026-05-02T11:00:0{i}.000Z" for i in range(6)]


def per_fan(watched: Watched, batch: list[Any]) -> int:
    """The path before the fast one: every subscription judges every position of the batch itself."""
    joined = b"".join(item[3] for item in batch)
    return sum(sub.deliver_many(batch, joined) for sub in tuple(watched.subs))


marks = st.lists(st.tuples(st.sampled_from(DEVICES), st.sampled_from(TS)), max_size=4)
fans = st.lists(st.fixed_dictionaries({
    "event": st.sampled_from([EVENT, OTHER]),
    "snapshot": marks,
    "shared": st.none() | st.integers(0, 2),  # one of three snapshot queries served several fans, or its own
    "loading_until": st.none() | st.integers(0, 3),  # the snapshot goes out after that batch
    "blocked": st.booleans(),  # its socket is backed up: frames queue under the 1013 rule
    "limit": st.integers(1, 8),
}), min_size=1, max_size=8)
batches = st.lists(st.lists(st.tuples(st.sampled_from([EVENT, OTHER]), st.sampled_from(DEVICES),
                                      st.sampled_from(TS)), min_size=1, max_size=7), min_size=1, max_size=4)
pools = st.lists(marks, min_size=3, max_size=3)


async def scenario(fast: bool, spec: list[dict[str, Any]], pool: list[list[tuple[str, str]]],
                   steps: list[list[tuple[str, str, str]]]) -> list[tuple[list[str], int, Any, int]]:
    """Run the fans and batches; return per fan what it saw: its texts, writes, close, and the frames counted."""
    metrics = Metrics()
    hub = Hub(metrics)
    if not fast:
        hub._deliver = per_fan  # type: ignore[method-assign]  # the reference path, for comparison
    shared = [render_snapshot(EVENT, [position(EVENT, d, ts, f"s{i}") for d, ts in snap]) for i, snap in
              enumerate(pool)]
    conns, subs = [], []
    for fan in spec:
        conn = FakeConnection(blocked=fan["blocked"])
        sub = hub.begin(Client(conn, fan["limit"], metrics), fan["event"])
        conns.append(conn)
        subs.append(sub)

    def complete(k: int) -> None:
        fan = spec[k]
        if fan["shared"] is not None:
            frame, mark = shared[fan["shared"]]
            hub.complete(subs[k], [], frame, mark)
        else:
            hub.complete(subs[k], [position(fan["event"], d, ts, "own") for d, ts in fan["snapshot"]])

    for k, fan in enumerate(spec):
        if fan["loading_until"] is None:
            complete(k)
    for n, step in enumerate(steps):
        await hub.dispatch([position(event, d, ts, f"{n}-{i}") for i, (event, d, ts) in enumerate(step)])
        for k, fan in enumerate(spec):
            if fan["loading_until"] == n:
                complete(k)
    await settle()
    for conn in conns:  # the backed-up fans drain: what they had queued comes out
        conn.unblocked.set()
    await settle(20)
    counted = metrics.registry.get_sample_value("processor_frames_sent_total", {"type": "position"}) or 0
    return [(conn.sent, conn.writes, conn.closed_with, int(counted)) for conn in conns]


@given(fans, pools, batches)
def test_every_fan_sees_what_the_per_fan_path_would_have_sent(spec, pool, steps):
    fast = asyncio.run(scenario(True, spec, pool, steps))
    slow = asyncio.run(scenario(False, spec, pool, steps))
    assert fast == slow


@given(st.lists(st.tuples(st.sampled_from(DEVICES), st.sampled_from(TS)), max_size=5),
       st.lists(st.tuples(st.sampled_from(DEVICES), st.sampled_from(TS)), max_size=6))
def test_admitted_is_admits_position_of_each(snapshot, batch):
    b: Boundary[object, object] = Boundary()
    b.open(watermarks(snapshot))
    items = [(device_id, ts, i) for i, (device_id, ts) in enumerate(batch)]
    assert admitted(b.watermark, items) == [item for item in items if b.admits_position(item[0], item[1])]


async def test_a_shared_watermark_is_judged_once_per_batch_not_per_fan(metrics, monkeypatch):
    from processor import hub as hub_module

    calls = []

    def counting(mark, items):
        calls.append(len(items))
        return boundary_module.admitted(mark, items)

    monkeypatch.setattr(hub_module, "admitted", counting)
    hub = Hub(metrics)
    frame, mark = render_snapshot(EVENT, [position(EVENT, "d1", TS[2], "snap")])
    conns = [FakeConnection() for _ in range(50)]
    for conn in conns:
        hub.complete(hub.begin(Client(conn, 10, metrics), EVENT), [], frame, mark)
    await hub.dispatch([position(EVENT, "d1", TS[i], f"{i}-0") for i in range(1, 5)])
    assert calls == [4]  # one judgement for the 50 fans
    assert all([f["streamId"] for f in conn.frames[1:]] == ["3-0", "4-0"] for conn in conns)
    assert all(conn.writes == 2 for conn in conns)  # subscribed, then the admitted two in one write


async def test_a_fan_whose_snapshot_showed_every_position_gets_no_write(metrics):
    hub = Hub(metrics)
    conn = FakeConnection()
    hub.complete(hub.begin(Client(conn, 10, metrics), EVENT), [position(EVENT, "d1", TS[5], "snap")])
    await hub.dispatch([position(EVENT, "d1", TS[i], f"{i}-0") for i in range(3)])
    assert conn.writes == 1 and [f["type"] for f in conn.frames] == ["subscribed"]
    assert metrics.registry.get_sample_value("processor_frames_sent_total", {"type": "position"}) in (None, 0)
