"""The outbound side of one connection (processor.client.Client), without a hub: written to at once while the
socket is free (the fan-out's cost), queued in order under the 1013 rule while it is backed up, never written to
in the middle of another message. A direct write bypasses websockets, so these are the cases where it could go
wrong."""

from processor.client import DIRECT_WRITE_LIMIT, Client

from .fakes import FakeConnection, settle


async def test_close_after_flush_sends_queued_frames_first(metrics):
    conn = FakeConnection()
    client = Client(conn, 10, metrics)
    client.send('{"type":"error"}', "error")
    client.close_after_flush(1008, "session revoked")
    await settle()
    assert conn.sent == ['{"type":"error"}'] and conn.closed_with == (1008, "session revoked")


async def test_a_backed_up_socket_queues_in_order_and_direct_writes_resume_once_drained(metrics):
    conn = FakeConnection(blocked=True)  # its write buffer reads DIRECT_WRITE_LIMIT: queue
    client = Client(conn, 10, metrics)
    client.put(b'{"n":1}')
    client.put(b'{"n":2}')
    queued = len(client.queue or ()) + (1 if client.writer is not None else 0)
    conn.unblocked.set()
    await settle()
    writer_after = client.writer
    client.put(b'{"n":3}')
    assert queued >= 2 and writer_after is None
    assert [f["n"] for f in conn.frames] == [1, 2, 3] and conn.direct == 1


async def test_no_transport_means_no_direct_write(metrics):
    conn = FakeConnection(transport=False)
    client = Client(conn, 10, metrics)
    client.send("{}", "error")
    await settle()
    assert conn.sent == ["{}"] and conn.direct == 0


async def test_a_fragmented_send_in_progress_makes_frames_wait(metrics):
    conn = FakeConnection()
    conn.send_in_progress = object()
    client = Client(conn, 10, metrics)
    client.put(b"{}")
    direct_meanwhile = conn.direct
    conn.send_in_progress = None
    await settle()
    assert direct_meanwhile == 0 and conn.sent == ["{}"]


def test_the_direct_write_limit_is_the_one_documented():
    assert DIRECT_WRITE_LIMIT == 64 * 1024


async def test_a_client_that_does_not_read_loses_the_connection_after_the_close_wait(metrics, monkeypatch):
    """websockets starts its close timeout only once the close frame is written; a stalled client never lets it be
    written, so the Processor bounds the whole close itself (docs/processor.md, ``browser.close-wait``)."""
    import processor.client

    monkeypatch.setattr(processor.client, "CLOSE_WAIT", 0.05)
    conn = FakeConnection(blocked=True)
    conn.close_waits = True
    client = Client(conn, 1, metrics)
    client.put(b'{"n":1}')
    client.put(b'{"n":2}')  # the queue of one is full: too slow
    client.put(b'{"n":3}')
    assert client.closer is not None
    await client.closer
    assert conn.aborted and conn.closed_with is None


async def test_a_client_that_reads_again_within_the_close_wait_gets_its_close_code(metrics):
    conn = FakeConnection(blocked=True)
    conn.close_waits = True
    client = Client(conn, 1, metrics)
    for n in range(3):
        client.put(b'{"n":%d}' % n)
    await settle()
    conn.unblocked.set()
    assert client.closer is not None
    await client.closer
    assert not conn.aborted and conn.closed_with == (1013, "slow consumer")


async def test_put_many_writes_once_when_free_and_otherwise_queues_each_frame_like_put(metrics):
    """``put_many`` inlines the direct write (it runs once per fan per batch): the same rules as ``put``."""
    from websockets.protocol import State

    from processor.websocket_framing import websocket_text

    items = [b'{"n":1}', b'{"n":2}']
    wire = b"".join(websocket_text(data) for data in items)
    free = FakeConnection()
    assert Client(free, 10, metrics).put_many(items, wire) == 2
    assert free.writes == 1 and [f["n"] for f in free.frames] == [1, 2]

    closing = FakeConnection()
    closing.protocol.state = State.CLOSING
    assert Client(closing, 10, metrics).put_many(items, wire) == 2  # dropped, as broadcast() does
    assert closing.writes == 0 and closing.sent == []

    for conn in (FakeConnection(transport=False), FakeConnection(blocked=True), FakeConnection()):
        if conn.transport is not None and conn.unblocked.is_set():
            conn.send_in_progress = object()
        client = Client(conn, 10, metrics)
        assert client.put_many(items, wire) == 2
        assert conn.direct == 0 and len(client.queue or ()) + (client.writer is not None) >= 1
        conn.send_in_progress = None
        conn.unblocked.set()
        await settle()
        assert [f["n"] for f in conn.frames] == [1, 2]

    small = Client(FakeConnection(blocked=True), 1, metrics)
    assert small.put_many(items, wire) == 1 and small.closed  # the second frame overflows: 1013
