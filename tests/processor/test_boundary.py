"""The snapshot/live boundary of one subscription (processor.boundary), alone: what waits for the snapshot comes
out in arrival order, and afterwards a position or correction passes only if the snapshot did not already say
more. This is the rule that makes each position reach a viewer exactly once (docs/processor.md section 4)."""

from processor.boundary import Boundary, HeldCorrection, HeldPosition, watermarks

T0, T1, T2 = (f"2026-05-02T11:00:0{s}.000Z" for s in range(3))


def test_holds_until_the_snapshot_then_releases_in_arrival_order():
    b: Boundary[object, object] = Boundary()
    assert b.holding
    assert b.hold_position("d1", T1, "p1", limit=10)
    b.hold_correction("d1", T1, "c1", only_if_shown=False)
    assert b.hold_position("d2", T0, "p2", limit=10)
    held = b.open(watermarks([("d1", T0)]))
    assert not b.holding
    assert [h.item for h in held] == ["p1", "c1", "p2"]
    assert [type(h) for h in held] == [HeldPosition, HeldCorrection, HeldPosition]


def test_holding_is_bounded():
    b: Boundary[object, object] = Boundary()
    assert b.hold_position("d1", T0, "a", limit=1)
    assert not b.hold_position("d1", T1, "b", limit=1)


def test_a_position_not_newer_than_the_snapshot_is_dropped():
    b: Boundary[object, object] = Boundary()
    b.open(watermarks([("d1", T1), ("d1", T0)]))  # the newest per device counts
    assert not b.admits_position("d1", T0)
    assert not b.admits_position("d1", T1)
    assert b.admits_position("d1", T2)
    assert b.admits_position("d2", T0)  # a device the snapshot did not show


def test_corrections_yield_to_a_newer_snapshot_and_gone_needs_a_shown_device():
    b: Boundary[object, object] = Boundary()
    b.open(watermarks([("d1", T2)]))
    assert not b.admits_correction("d1", T1, gone=False, known=True)  # the snapshot saw more than the query
    assert b.admits_correction("d1", T2, gone=False, known=True)
    assert not b.admits_correction("d9", T1, gone=True, known=False)  # never on this map
    assert b.admits_correction("d9", T1, gone=True, known=True)
    assert b.admits_correction("d9", None, gone=False, known=False)


def test_restart_holds_again_and_abandon_keeps_the_old_watermarks():
    b: Boundary[object, object] = Boundary()
    b.open({"d1": T1})
    b.restart()
    assert b.holding
    b.hold_position("d1", T2, "x", limit=5)
    assert [h.item for h in b.abandon()] == ["x"]
    assert not b.admits_position("d1", T1) and b.admits_position("d1", T2)


def test_equal_watermarks_of_one_event_are_shared_and_not_kept_past_their_last_boundary():
    import gc

    from processor.boundary import SharedWatermarks

    shared = SharedWatermarks()
    first = shared.share("e1", watermarks([("d1", T0), ("d2", T1)]))
    again = shared.share("e1", watermarks([("d2", T1), ("d1", T0)]))
    assert again is first  # nothing moved between two snapshots: one dict for both
    moved = shared.share("e1", watermarks([("d1", T2), ("d2", T1)]))
    assert moved is not first and moved == {"d1": T2, "d2": T1}
    other = shared.share("e2", watermarks([("d1", T0), ("d2", T1)]))
    assert other is not first  # another event's fans never share this event's
    b: Boundary[object, object] = Boundary()
    b.open(moved)
    del first, again, moved, other
    gc.collect()
    assert len(shared) == 1  # only what a boundary still holds
    assert not b.admits_position("d1", T2) and b.admits_position("d1", "2026-05-02T11:00:03.000Z")
