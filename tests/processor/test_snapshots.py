"""Coalesced snapshot queries (processor.snapshots): one query per group of subscribers, and nobody joins a query
that already started (a position committed after it started but before they began holding would reach them
neither way), so a thousand fans opening one map cost a few queries without breaking the snapshot/live boundary."""

import asyncio

from processor.snapshots import SnapshotQueries

EVENT = "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a"
T0 = "2026-05-02T11:00:00.000Z"
#: What Store.snapshot_frame returns: the encoded frame (its content does not matter here) and the watermarks.
FRAME = b'{"type":"subscribed","eventId":"%s","snapshot":[{"deviceId":"d1"}]}' % EVENT.encode()
EMPTY = b'{"type":"subscribed","eventId":"%s","snapshot":[]}' % EVENT.encode()


async def test_concurrent_askers_share_a_query_and_latecomers_wait_for_the_next_one():
    started: list[int] = []
    release = asyncio.Event()

    async def fetch(event_id):
        started.append(len(started) + 1)
        await release.wait()
        return FRAME, [("d1", T0)]

    queries = SnapshotQueries(fetch)
    first = [queries.get(EVENT) for _ in range(100)]  # asked before any query started
    await asyncio.sleep(0)
    await asyncio.sleep(0)
    assert started == [1]  # the first query runs now: nobody may join it any more
    later = [queries.get(EVENT) for _ in range(50)]
    assert all(f is first[0] for f in first) and all(f is later[0] for f in later) and later[0] is not first[0]
    release.set()
    answers = await asyncio.gather(*first, *later)
    assert queries.queries == 2 and started == [1, 2]
    assert answers[0].frame.startswith(b'{"type":"subscribed"') and answers[0].watermark == {"d1": T0}


async def test_a_failed_query_fails_its_group_only():
    calls = []

    async def fetch(event_id):
        calls.append(event_id)
        if len(calls) == 1:
            raise ConnectionError("down")
        return EMPTY, []

    queries = SnapshotQueries(fetch)
    failed = queries.get(EVENT)
    try:
        await failed
    except ConnectionError as exc:
        error = exc
    ok = await queries.get(EVENT)
    assert isinstance(error, ConnectionError) and ok.watermark == {} and queries.waiting == {}
    assert ok.frame == EMPTY


async def test_queries_of_an_event_whose_positions_did_not_move_share_one_watermark():
    async def fetch(event_id):
        return FRAME, [("d1", T0)]

    queries = SnapshotQueries(fetch)
    first = await queries.get(EVENT)
    second = await queries.get(EVENT)
    assert queries.queries == 2 and second.watermark is first.watermark
