"""Routing and de-duplication of the insert's rows (processor.routing.route), pure, no database: a position counts
once however many cars it joined, goes once to each event with its first entry, and is an orphan on none, which
is what the metrics and the live maps rely on. Rows come as the statement returns them: in RoutedPosition's field
order, sorted by ts, device, event, entry."""

from processor.routing import RoutedPosition, route

EVENT, OTHER = "e-1", "e-2"
T0 = "2026-05-02T11:00:00.000Z"
T1 = "2026-05-02T11:00:01.000Z"


def row(device, ts, event_id, entry_id, stream_id="1-0"):
    return (event_id, entry_id, device, ts, 1.0, 2.0, None, None, None, None, stream_id)


def test_one_item_per_position_and_event_with_the_first_entry():
    routing = route([
        row("d1", T0, EVENT, "entry-1"),
        row("d1", T0, EVENT, "entry-2"),  # the same device on a second car of the same event
        row("d1", T0, OTHER, "entry-9"),  # and on a car of another event
        row("d2", T0, EVENT, "entry-3"),  # another device at the same instant
        row("d2", T1, EVENT, "entry-3"),  # and later
    ])
    assert routing.inserted == 3 and routing.orphans == 0
    assert [(p.event_id, p.entry_id, p.device_id, p.ts) for p in routing.routed] == [
        (EVENT, "entry-1", "d1", T0), (OTHER, "entry-9", "d1", T0), (EVENT, "entry-3", "d2", T0),
        (EVENT, "entry-3", "d2", T1)]
    assert all(isinstance(p, RoutedPosition) for p in routing.routed)


def test_every_value_of_a_row_lands_in_the_field_of_its_name():
    (p,) = route([("e", "n", "d", T0, 41.5, 19.5, 110.0, 80.5, 270.0, 12, "9-0")]).routed
    assert p == RoutedPosition(event_id="e", entry_id="n", device_id="d", ts=T0, lat=41.5, lon=19.5, altitude=110.0,
                               speed=80.5, heading=270.0, satellites=12, stream_id="9-0")


def test_a_position_on_no_car_is_an_orphan_counted_once_and_not_routed():
    routing = route([row("d9", T0, None, None), row("d1", T1, EVENT, "entry-1"), row("d9", T1, None, None)])
    assert (routing.inserted, routing.orphans, len(routing.routed)) == (3, 2, 1)


def test_the_same_event_again_for_the_next_position_is_routed_again():
    """Adjacency, not a set: the second position of a device on the same event is a new item."""
    routing = route([row("d1", T0, EVENT, "entry-1"), row("d1", T1, EVENT, "entry-1")])
    assert [(p.device_id, p.ts) for p in routing.routed] == [("d1", T0), ("d1", T1)]
    assert routing.inserted == 2


def test_nothing_inserted_routes_nothing():
    assert route([]) == route(iter(()))
    assert route([]).inserted == 0 and route([]).routed == []
