"""A routed position: one stored position on the map of one event, typed from routing to framing.

:func:`route` turns the rows of the insert-and-route statement (already in :class:`RoutedPosition`'s field order)
into :class:`RoutedPosition` values; it is pure (no I/O) so that the de-duplication rules are unit-tested. The
wire format of a position is made from one table, :data:`processor.protocol.POSITION_FIELDS` (frames, the
snapshot's columns, live-channel messages).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from .telemetry import format_ts

__all__ = ["RoutedPosition", "Routing", "from_row", "route"]


@dataclass(slots=True)
class RoutedPosition:
    """A ``<position>`` of docs/processor.md section 4: ``ts`` is the fixed-width UTC text, so that comparing two
    of them compares instants. Treated as immutable; not ``frozen`` only because a frozen dataclass costs 3 µs
    to build instead of 0.5 µs, once per stored position and once per position received live."""

    event_id: str
    entry_id: str
    device_id: str
    ts: str
    lat: float
    lon: float
    altitude: float | None
    speed: float | None
    heading: float | None
    satellites: int | None
    stream_id: str


@dataclass(frozen=True, slots=True)
class Routing:
    """What one insert did: rows inserted, how many of them routed to no event, and one item per
    (position, event)."""

    inserted: int
    orphans: int
    routed: list[RoutedPosition]


def from_row(row: Mapping[str, Any], event_id: Any, entry_id: Any) -> RoutedPosition:
    """A routed position from a row with the position columns (``ts`` a datetime or already-rendered text)."""
    ts = row["ts"]
    return RoutedPosition(
        str(event_id), str(entry_id), row["device_id"], ts if isinstance(ts, str) else format_ts(ts),
        row["latitude"], row["longitude"], row["altitude"], row["speed"], row["heading"], row["satellites"],
        row["stream_id"],
    )


def route(rows: Iterable[Sequence[Any]]) -> Routing:
    """Count and route the rows of the insert-and-route statement (``processor.store_sql.INSERT_SQL``): one row per
    newly inserted position and car it is on, in :class:`RoutedPosition`'s field order (``event_id`` and
    ``entry_id`` NULL for a position on no car), ordered by ``ts, device_id, event_id, entry id``, so that the
    rows of one position are adjacent and, within them, those of one event.

    A position counts once however many entries it joined; it is an orphan when it joined none; it is routed
    once per event, with the first (lowest-id) entry of that event, even when its device is on two cars of it.
    Positional rows and comparisons with the previous row, instead of sets and lookups by column name: this
    function went from 9 % of the Processor's CPU in a burst to under 2 % (py-spy; bench/ANALYSIS.md "Issue 21,
    item 2")."""
    inserted = orphans = 0
    routed: list[RoutedPosition] = []
    last_device = last_ts = last_event = None
    for row in rows:
        event_id, device_id, ts = row[0], row[2], row[3]
        if ts != last_ts or device_id != last_device:  # the first row of a position
            last_device, last_ts, last_event = device_id, ts, None
            inserted += 1
            if event_id is None:
                orphans += 1
                continue
        elif event_id is None or event_id == last_event:  # another car of an event it was routed to already
            continue
        last_event = event_id
        routed.append(RoutedPosition(*row))
    return Routing(inserted, orphans, routed)
