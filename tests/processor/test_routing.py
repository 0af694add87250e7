"""Routing and de-duplication of the insert's rows (processor.routing.route), pure, no database: a position counts
once however many cars it joined, goes once to each event with its first entry, and is an orphan on none, which
is what the metrics and the live maps rely on."""

from datetime import UTC, datetime

from processor.routing import RoutedPosition, route

EVENT, OTHER = "e-1", "e-2"
T0 = "2026-05-02T11:00:00.000Z"
T1 = "2026-05-02T11:00:01.000Z"


def row(device, ts, event_id, entry_id, **extra):
    return {"device_id": device, "ts": ts, "latitude": 1.0, "longitude": 2.0, "altitude": None, "speed": None,
            "heading": None, "satellites": None, "stream_id": "1-0", "event_id": event_id, "entry_id": entry_id,
            **extra}


def test_one_item_per_position_and_event_with_the_first_entry():
    routing = route([
        row("d1", T0, EVENT, "entry-1"),
        row("d1", T0, EVENT, "entry-2"),  # the same device on a second car of the same event
        row("d1", T0, OTHER, "entry-9"),  # and on a car of another event
        row("d2", T1, EVENT, "entry-3"),
    ])
    assert routing.inserted == 2 and routing.orphans == 0
    assert [(p.event_id, p.entry_id, p.device_id, p.ts) for p in routing.routed] == [
        (EVENT, "entry-1", "d1", T0), (OTHER, "entry-9", "d1", T0), (EVENT, "entry-3", "d2", T1)]
    assert all(isinstance(p, RoutedPosition) for p in routing.routed)


def test_a_position_on_no_car_is_an_orphan_counted_once_and_not_routed():
    routing = route([row("d9", T0, None, None), row("d1", T1, EVENT, "entry-1")])
    assert (routing.inserted, routing.orphans, len(routing.routed)) == (2, 1, 1)


def test_nothing_inserted_routes_nothing():
    assert route([]) == route(iter(()))
    assert route([]).inserted == 0 and route([]).routed == []


def test_a_datetime_ts_is_rendered_in_the_fixed_width_utc_form():
    ts = datetime(2026, 5, 2, 11, 0, 0, 123456, tzinfo=UTC)
    (p,) = route([row("d1", ts, EVENT, "entry-1")]).routed
    assert p.ts == "2026-05-02T11:00:00.123Z"
