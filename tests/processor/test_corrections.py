"""Corrections (processor.corrections, docs/processor.md section 4, "Corrections"): any notification payload is
either queued or counted and logged once, a change reaches only the fans of the events it concerns, and a
correction is ordered against live positions so that a map never goes back to a position already corrected.
Fakes only: the ordering rules are what the acceptance suite can hit only by chance."""

import json
import logging

import pytest
from hypothesis import given
from hypothesis import strategies as st

from processor.client import Client
from processor.corrections import BadNotification, Change, Corrections, parse, route
from processor.hub import Hub
from processor.store import Correction

from .fakes import FakeConnection, FakeStore, item, position, settle

EVENT = "7f0c1b9e-3c1a-4d8e-9a43-5b1f2e3d4c5a"
OTHER = "11111111-1111-1111-1111-111111111111"
ENTRY = "22222222-2222-2222-2222-222222222222"
T0, T1, T2, T3 = (f"2026-05-02T11:00:0{s}.000Z" for s in range(4))


def sample(metrics, name):
    return metrics.registry.get_sample_value(name) or 0


def message(*items):
    return list(items)


# -- the payload parser ----------------------------------------------------------------------------------------

def test_documented_payloads_parse():
    assert parse('{"op":"faulty","deviceId":"356307042441013"}') == Change("faulty", "356307042441013", None)
    for op in ("fitted", "removed", "withdrawn"):
        payload = json.dumps({"op": op, "eventId": EVENT.upper(), "entryId": ENTRY, "deviceId": "d1"})
        assert parse(payload) == Change(op, "d1", EVENT)


@pytest.mark.parametrize("payload, why", [
    ("", "not JSON"),
    ("[1]", "not a JSON object"),
    ('{"op":"moved","deviceId":"d1"}', "unknown op"),
    ('{"op":"faulty"}', "deviceId"),
    ('{"op":"faulty","deviceId":""}', "deviceId"),
    (f'{{"op":"fitted","deviceId":"d1","entryId":"{ENTRY}"}}', "eventId"),
    (f'{{"op":"removed","deviceId":"d1","eventId":"{EVENT}","entryId":"x"}}', "entryId"),
    ("[" * 100_000, "not JSON"),
])
def test_bad_payloads_say_why(payload, why):
    with pytest.raises(BadNotification, match=why):
        parse(payload)


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=20),
    lambda children: st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4),
    max_leaves=12,
)
plausible = st.fixed_dictionaries({}, optional={
    "op": st.sampled_from(["faulty", "fitted", "removed", "withdrawn", "x"]) | json_values,
    "deviceId": st.text(max_size=300) | json_values,
    "eventId": st.sampled_from([EVENT, "not-a-uuid"]) | json_values,
    "entryId": st.sampled_from([ENTRY, ""]) | json_values,
}).map(json.dumps)


@given(st.one_of(st.text(), st.binary(), json_values.map(json.dumps), plausible, json_values))
def test_any_payload_is_queued_or_counted_and_logged_once(payload):
    """Whatever arrives on the channel: no exception; either one change queued, or the bad counter +1 and exactly
    one log line (no traceback)."""
    from processor.metrics import Metrics

    metrics = Metrics()
    corrections = Corrections(FakeStore(), Hub(metrics), metrics)  # type: ignore[arg-type]  # a fake standing in for the real one
    records = []  # type: ignore[var-annotated]  # log records, filled by the handler
    handler = logging.Handler()
    handler.emit = records.append  # type: ignore[assignment, method-assign]  # the handler records instead of emitting
    logger = logging.getLogger("processor.corrections")
    logger.addHandler(handler)
    try:
        change = corrections.accept(payload)
    finally:
        logger.removeHandler(handler)
    assert sample(metrics, "processor_correction_notifications_total") == 1
    if change is None:
        assert sample(metrics, "processor_correction_notifications_bad_total") == 1
        assert len(records) == 1 and records[0].exc_info is None
        assert corrections.queue.empty()
    else:
        assert sample(metrics, "processor_correction_notifications_bad_total") == 0
        assert records == [] and corrections.queue.get_nowait() == change


# -- routing ----------------------------------------------------------------------------------------------------

def test_route_keeps_watched_events_only_and_spreads_faulty_over_them():
    changes = [Change("fitted", "d1", EVENT), Change("removed", "d2", "33333333-3333-3333-3333-333333333333"),
               Change("faulty", "d3", None), Change("withdrawn", "d1", EVENT)]
    assert route(changes, [EVENT, OTHER]) == [(EVENT, "d1"), (EVENT, "d3"), (OTHER, "d3")]
    assert route(changes, []) == []


class CorrectionStore(FakeStore):
    """Answers the corrections query from a table of truths: (event, device) -> (position or None, horizon)."""

    def __init__(self, truths):
        super().__init__()
        self.dsn = "postgresql://unused"
        self.truths = truths
        self.asked = []
        self.fail = 0

    async def corrections(self, pairs):
        self.asked.append(list(pairs))
        if self.fail:
            self.fail -= 1
            raise ConnectionResetError("postgres went away")
        return [Correction(e, d, *self.truths.get((e, d), (None, None))) for e, d in pairs]


def subscribed(hub, metrics, event, snapshot=()):
    connection = FakeConnection()
    client = Client(connection, 100, metrics)
    hub.complete(hub.begin(client, event), list(snapshot))
    return connection


async def test_a_change_reaches_the_fans_of_the_affected_event_only(metrics):
    hub = Hub(metrics)
    a, b = (subscribed(hub, metrics, EVENT, [position(EVENT, "d1", T1)]) for _ in range(2))
    other = subscribed(hub, metrics, OTHER, [position(OTHER, "d9", T1)])
    store = CorrectionStore({(EVENT, "d1"): (position(EVENT, "d1", T0), T1)})
    corrections = Corrections(store, hub, metrics)
    sent = await corrections.apply([Change("faulty", "d1", None)])
    await settle()
    a, b, other, asked = a.frames, b.frames, other.frames, store.asked
    assert sent == 2 and a == b
    assert a[-1] == {"type": "correction", "eventId": EVENT, "deviceId": "d1", "position": item(position(EVENT, "d1",
                                                                                                         T0))}
    assert [f["type"] for f in other] == ["subscribed"]  # asked about d1 on OTHER too, but d1 was never there
    assert sorted(asked[0]) == sorted([(EVENT, "d1"), (OTHER, "d1")])
    assert sample(metrics, "processor_corrections_sent_total") == 2
    assert metrics.registry.get_sample_value("processor_frames_sent_total", {"type": "correction"}) == 2


async def test_changes_to_unwatched_events_cost_no_query(metrics):
    hub = Hub(metrics)
    store = CorrectionStore({})
    sent = await Corrections(store, hub, metrics).apply([Change("withdrawn", "d1", EVENT),
                                                         Change("faulty", "d2", None)])
    assert (sent, store.asked) == (0, [])


# -- ordering against live positions ------------------------------------------------------------------------------

async def test_a_correction_older_than_a_live_position_already_delivered_is_dropped(metrics):
    """The query ran before the live position at T2 was committed (horizon T1): the fan already sees newer."""
    hub = Hub(metrics)
    fan = subscribed(hub, metrics, EVENT, [position(EVENT, "d1", T1)])
    await hub.dispatch(message(position(EVENT, "d1", T2)))
    assert hub.correct(EVENT, "d1", position(EVENT, "d1", T0), T1) == 0
    await settle()
    assert [(f["type"], f.get("ts")) for f in fan.frames] == [("subscribed", None), ("position", T2)]


async def test_a_live_position_the_correction_already_knew_is_dropped_after_it(metrics):
    """T1 was flagged; its live frame arrives late (after the correction): it must not put the car back."""
    hub = Hub(metrics)
    fan = subscribed(hub, metrics, EVENT, [position(EVENT, "d1", T0)])
    assert hub.correct(EVENT, "d1", position(EVENT, "d1", T0), T1) == 1
    await hub.dispatch(message(position(EVENT, "d1", T1), position(EVENT, "d1", T2)))
    await settle()
    frames = fan.frames
    assert [f["type"] for f in frames] == ["subscribed", "correction", "position"]
    assert frames[2]["ts"] == T2


async def test_gone_is_sent_only_to_fans_who_had_the_device(metrics):
    hub = Hub(metrics)
    had = subscribed(hub, metrics, EVENT, [position(EVENT, "d1", T0)])
    hub.correct(EVENT, "d2", None, T0)  # d2 never on any map of the event
    hub.correct(EVENT, "d1", None, T0)
    await settle()
    frames = had.frames
    assert frames[1:] == [{"type": "correction", "eventId": EVENT, "deviceId": "d1", "position": None}]


async def test_a_correction_waits_for_the_snapshot_and_yields_to_a_newer_one(metrics):
    hub = Hub(metrics)
    connection = FakeConnection()
    client = Client(connection, 100, metrics)
    sub = hub.begin(client, EVENT)  # the snapshot query is in flight
    hub.correct(EVENT, "d1", position(EVENT, "d1", T0), T1)  # computed from an older state
    hub.correct(EVENT, "d2", position(EVENT, "d2", T0), T2)  # computed from a newer state
    await settle()
    assert connection.sent == []
    hub.complete(sub, [position(EVENT, "d1", T2), position(EVENT, "d2", T1)])
    await settle()
    frames = connection.frames
    assert [(f["type"], f.get("deviceId")) for f in frames] == [("subscribed", None), ("correction", "d2")]


async def test_after_a_failed_query_every_open_map_gets_a_fresh_snapshot(metrics):
    hub = Hub(metrics)
    fan = subscribed(hub, metrics, EVENT, [position(EVENT, "d1", T1)])
    store = CorrectionStore({})
    store.fail = 1
    store.snapshots[EVENT] = [position(EVENT, "d1", T0)]
    corrections = Corrections(store, hub, metrics)
    worker = __import__("asyncio").create_task(corrections.work())
    corrections.accept(json.dumps({"op": "faulty", "deviceId": "d1"}))
    for _ in range(100):
        await __import__("asyncio").sleep(0.01)  # pacing: the worker's first backoff is 0.1 s
        if len(fan.sent) >= 2:
            break
    worker.cancel()
    frames = fan.frames
    assert [f["type"] for f in frames] == ["subscribed", "subscribed"]
    assert frames[1]["snapshot"] == [item(position(EVENT, "d1", T0))]


def test_the_correction_frame_carries_the_position_or_null():
    from processor import protocol

    assert json.loads(protocol.correction(EVENT, "d1", None)) == {
        "type": "correction", "eventId": EVENT, "deviceId": "d1", "position": None}
    assert json.loads(protocol.correction(EVENT, "d1", position(EVENT, "d1", T0)))["position"]["ts"] == T0


async def test_missing_triggers_are_a_warning_not_an_exit(caplog):
    """Live positions still flow without the triggers; the log names what is missing (docs section 7)."""
    from types import SimpleNamespace

    from processor.app import App

    class Store:
        async def missing_triggers(self):
            return ["entries.live_corrections_entries"]

    app = SimpleNamespace(store=Store(), exit_code=0)
    with caplog.at_level(logging.WARNING, logger="processor.app"):
        await App._check_triggers(app)  # type: ignore[arg-type]  # a fake standing in for the real one
    assert app.exit_code == 0
    assert [r.getMessage() for r in caplog.records] == [
        "corrections will not reach open maps: the database lacks the trigger(s) entries.live_corrections_entries"]
