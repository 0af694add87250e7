"""The fan-out (processor.hub) with fake connections: positions reach the fans of their event only, once each
across the snapshot/live boundary, one write per fan per batch and in order; a slow or fallen-behind fan is closed
without slowing the others. These are the delivery guarantees of docs/processor.md section 4, checked without
sockets so that each can be driven into its corner case."""

from processor.client import Client
from processor.hub import CLOSE_BEHIND, Hub

from .fakes import FakeConnection, item, position, settle

EVENT = "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a"
OTHER = "11111111-1111-1111-1111-111111111111"


def message(*items):
    return list(items)


def sample(metrics, name):
    return metrics.registry.get_sample_value(name) or 0


async def test_fan_out_reaches_only_subscribers_of_the_event(metrics):
    hub = Hub(metrics)
    conns = FakeConnection(), FakeConnection(), FakeConnection()
    ca, cb, cc = (Client(conn, 10, metrics) for conn in conns)
    for client, event in ((ca, EVENT), (cb, EVENT), (cc, OTHER)):
        hub.complete(hub.begin(client, event), [])
    await hub.dispatch(message(position(EVENT, "d1", "2026-05-02T11:00:00.000Z", "5-0")))
    await settle()
    a, b, c = (conn.frames for conn in conns)
    assert [f["type"] for f in a] == ["subscribed", "position"]
    assert a[1] == {"type": "position", **item(position(EVENT, "d1", "2026-05-02T11:00:00.000Z", "5-0"))}
    assert b == a and [f["type"] for f in c] == ["subscribed"]
    assert sample(metrics, "processor_positions_broadcast_total") == 1
    assert metrics.registry.get_sample_value("processor_frames_sent_total", {"type": "position"}) == 2
    assert sample(metrics, "processor_subscriptions") == 3


async def test_position_frame_is_rendered_once_per_message(metrics, monkeypatch):
    from processor import protocol

    calls = []
    original = protocol.position_frame
    monkeypatch.setattr(protocol, "position_frame", lambda item: calls.append(item) or original(item))  # type: ignore[func-returns-value]  # records the call, then delegates
    hub = Hub(metrics)
    clients = [Client(FakeConnection(), 10, metrics) for _ in range(5)]
    for client in clients:
        hub.complete(hub.begin(client, EVENT), [])
    await hub.dispatch(message(position(EVENT, "d1", "2026-05-02T11:00:00.000Z")))
    assert len(calls) == 1


async def test_snapshot_live_boundary(metrics):
    """Buffered positions not newer than the snapshot's for their device are dropped; the rest follow it."""
    hub = Hub(metrics)
    conn = FakeConnection()
    client = Client(conn, 100, metrics)
    sub = hub.begin(client, EVENT)  # buffering starts; the snapshot query would run now
    await hub.dispatch(message(
        position(EVENT, "d1", "2026-05-02T11:00:00.000Z", "1-0"),  # committed before the query: in snapshot
        position(EVENT, "d1", "2026-05-02T11:00:01.000Z", "2-0"),  # committed after: not in snapshot
        position(EVENT, "d2", "2026-05-02T10:00:00.000Z", "3-0"),  # device absent from the snapshot
        position(EVENT, "d3", "2026-05-02T09:59:59.999Z", "4-0"),  # older than d3's snapshot position
    ))
    await settle()
    assert conn.sent == []  # nothing before the snapshot
    hub.complete(sub, [
        position(EVENT, "d1", "2026-05-02T11:00:00.000Z", "1-0"),
        position(EVENT, "d3", "2026-05-02T10:00:00.000Z", "0-5"),
    ])
    await hub.dispatch(message(
        position(EVENT, "d3", "2026-05-02T10:00:00.000Z", "0-5"),  # same as snapshot: dropped
        position(EVENT, "d3", "2026-05-02T10:00:00.001Z", "5-0"),
    ))
    await settle()
    sent = conn.frames
    assert sent[0]["type"] == "subscribed" and [p["streamId"] for p in sent[0]["snapshot"]] == ["1-0", "0-5"]
    assert [f["streamId"] for f in sent[1:]] == ["2-0", "3-0", "5-0"]


async def test_resubscribe_sends_a_fresh_snapshot_and_keeps_one_subscription(metrics):
    hub = Hub(metrics)
    conn = FakeConnection()
    client = Client(conn, 100, metrics)
    hub.complete(hub.begin(client, EVENT), [])
    hub.complete(hub.begin(client, EVENT), [position(EVENT, "d1", "2026-05-02T11:00:00.000Z")])
    await hub.dispatch(message(position(EVENT, "d1", "2026-05-02T11:00:02.000Z", "9-0")))
    await settle()
    sent = conn.frames
    assert [f["type"] for f in sent] == ["subscribed", "subscribed", "position"]
    assert sample(metrics, "processor_subscriptions") == 1


async def test_failed_snapshot_makes_no_subscription(metrics):
    hub = Hub(metrics)
    conn = FakeConnection()
    client = Client(conn, 100, metrics)
    sub = hub.begin(client, EVENT)
    await hub.dispatch(message(position(EVENT, "d1", "2026-05-02T11:00:00.000Z")))
    hub.abort(sub)
    await hub.dispatch(message(position(EVENT, "d1", "2026-05-02T11:00:01.000Z")))
    await settle()
    sent, events, subs = conn.sent, hub.events, hub.subscriptions(client)
    assert sent == [] and events == {} and subs == {}
    assert sample(metrics, "processor_subscriptions") == 0


async def test_slow_consumer_is_closed_with_1013_without_slowing_others(metrics):
    hub = Hub(metrics)
    slow, fast = FakeConnection(blocked=True), FakeConnection()
    slow_client, fast_client = Client(slow, 3, metrics), Client(fast, 3, metrics)
    for client in (slow_client, fast_client):
        hub.complete(hub.begin(client, EVENT), [])
    for second in range(6):
        await hub.dispatch(message(position(EVENT, "d1", f"2026-05-02T11:00:0{second}.000Z", f"{second}-0")))
        await settle()
    assert slow.closed_with == (1013, "slow consumer")
    assert fast.closed_with is None
    assert [f["type"] for f in fast.frames] == ["subscribed"] + ["position"] * 6
    assert sample(metrics, "processor_slow_consumer_disconnects_total") == 1


async def test_unsubscribe_and_removal(metrics):
    hub = Hub(metrics)
    conn = FakeConnection()
    client = Client(conn, 10, metrics)
    hub.complete(hub.begin(client, EVENT), [])
    hub.complete(hub.begin(client, OTHER), [])
    assert hub.unsubscribe(client, EVENT) is True
    assert hub.unsubscribe(client, EVENT) is False
    await hub.dispatch(message(position(EVENT, "d1", "2026-05-02T11:00:00.000Z")))
    await settle()
    positions = [f for f in conn.frames if f["type"] == "position"]
    hub.remove_client(client)
    assert positions == [] and hub.events == {}
    assert sample(metrics, "processor_subscriptions") == 0



async def test_direct_write_frames_once_and_skips_the_writer_task(metrics):
    """Production's path: an idle socket gets the frame at once, framed through the connection's protocol and
    flushed with send_data; no writer task is started."""
    hub = Hub(metrics)
    conns = [FakeConnection() for _ in range(3)]
    clients = [Client(conn, 10, metrics) for conn in conns]
    for client in clients:
        hub.complete(hub.begin(client, EVENT), [])
    await hub.dispatch(message(position(EVENT, "d1", "2026-05-02T11:00:00.000Z", "5-0")))
    writers = [client.writer for client in clients]
    assert [conn.direct for conn in conns] == [2, 2, 2]  # subscribed and position, both written directly
    assert writers == [None, None, None]
    assert conns[0].frames[1]["streamId"] == "5-0"
    assert metrics.registry.get_sample_value("processor_frames_sent_total", {"type": "position"}) == 3






async def test_falling_behind_sheds_fans_older_than_the_message_and_keeps_newer_ones(metrics):
    hub = Hub(metrics)
    old, new = FakeConnection(), FakeConnection()
    old_client, new_client = Client(old, 10, metrics), Client(new, 10, metrics)
    old_sub = hub.begin(old_client, EVENT)
    new_sub = hub.begin(new_client, EVENT)
    old_sub.since, new_sub.since = 100.0, 200.0
    hub.complete(old_sub, [])
    hub.complete(new_sub, [])
    shed = hub.shed_behind(150.0)
    again = hub.shed_behind(160.0)  # the same fan is not closed twice
    await settle()
    assert (shed, again) == (1, 0)
    assert old.closed_with == (1013, CLOSE_BEHIND) and new.closed_with is None
    assert sample(metrics, "processor_live_behind_disconnects_total") == 1
    assert sample(metrics, "processor_slow_consumer_disconnects_total") == 0


# -- a batch of positions per fan: one write -------------------------------------------------------------------

T = [f"2026-05-02T11:00:0{i}.000Z" for i in range(10)]


async def test_the_positions_of_one_batch_reach_each_fan_in_one_write_in_order(metrics):
    """The fan-out's cost is mostly one system call per frame per fan: a batch of an event's positions goes to
    each fan whose socket is free as one write, the frames whole and in the batch's order."""
    hub = Hub(metrics)
    conns = [FakeConnection() for _ in range(3)]
    for conn in conns:
        hub.complete(hub.begin(Client(conn, 10, metrics), EVENT), [])
    writes_before = [conn.writes for conn in conns]
    await hub.dispatch(message(*(position(EVENT, f"d{i % 2}", T[i], f"{i}-0") for i in range(5))))
    before = writes_before
    for conn, was in zip(conns, before, strict=True):
        assert conn.writes - was == 1
        assert [f["streamId"] for f in conn.frames if f["type"] == "position"] == ["0-0", "1-0", "2-0", "3-0", "4-0"]
    assert metrics.registry.get_sample_value("processor_frames_sent_total", {"type": "position"}) == 15
    assert sample(metrics, "processor_positions_broadcast_total") == 5


async def test_a_fan_gets_only_the_positions_of_a_batch_its_snapshot_did_not_show(metrics):
    """The boundary still judges each position: a fan whose snapshot showed d1 at T[2] gets d1 only after it."""
    hub = Hub(metrics)
    fresh, behind = FakeConnection(), FakeConnection()
    hub.complete(hub.begin(Client(fresh, 10, metrics), EVENT), [])
    hub.complete(hub.begin(Client(behind, 10, metrics), EVENT), [position(EVENT, "d1", T[2], "snap")])
    await hub.dispatch(message(*(position(EVENT, "d1", T[i], f"{i}-0") for i in range(1, 5))))
    assert [f["streamId"] for f in fresh.frames if f["type"] == "position"] == ["1-0", "2-0", "3-0", "4-0"]
    assert [f["streamId"] for f in behind.frames if f["type"] == "position"] == ["3-0", "4-0"]
    assert behind.writes == 2  # the subscribed frame, then the admitted two in one write


async def test_a_backed_up_fan_queues_a_batch_in_order_under_the_1013_rule(metrics):
    hub = Hub(metrics)
    slow, fine = FakeConnection(), FakeConnection()
    slow_client = Client(slow, 3, metrics)
    hub.complete(hub.begin(slow_client, EVENT), [])
    hub.complete(hub.begin(Client(fine, 10, metrics), EVENT), [])
    slow.unblocked.clear()  # its socket is backed up from here on
    await hub.dispatch(message(*(position(EVENT, "d1", T[i], f"{i}-0") for i in range(2))))
    queued = len(slow_client.queue or ()) + (1 if slow_client.writer is not None else 0)
    await hub.dispatch(message(*(position(EVENT, "d1", T[i], f"{i}-0") for i in range(2, 6))))
    await settle()
    assert queued >= 2
    assert [f["streamId"] for f in fine.frames if f["type"] == "position"] == [f"{i}-0" for i in range(6)]
    assert slow.closed_with == (1013, "slow consumer")
    assert sample(metrics, "processor_slow_consumer_disconnects_total") == 1


async def test_a_batch_of_two_events_keeps_each_events_order(metrics):
    hub = Hub(metrics)
    both = FakeConnection()
    client = Client(both, 10, metrics)
    hub.complete(hub.begin(client, EVENT), [])
    hub.complete(hub.begin(client, OTHER), [])
    batch = [position(EVENT if i % 2 else OTHER, "d1", T[i], f"{i}-0") for i in range(6)]
    await hub.dispatch(message(*batch))
    shown = [(f["eventId"], f["streamId"]) for f in both.frames if f["type"] == "position"]
    assert [s for e, s in shown if e == EVENT] == ["1-0", "3-0", "5-0"]
    assert [s for e, s in shown if e == OTHER] == ["0-0", "2-0", "4-0"]
