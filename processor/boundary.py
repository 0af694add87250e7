"""The snapshot/live boundary of one subscription (docs/processor.md section 4), free of I/O.

A subscription holds live items from *before* its snapshot query starts. Once the snapshot is out, the held
items and every later one pass unless their ``ts`` is not newer than the snapshot's position of the same device.
Positions are published only after they are committed, so each position reaches a subscriber exactly once: in
the snapshot or live. Corrections wait in line with held positions and are judged by their own rule.
"""

from __future__ import annotations

import weakref
from collections.abc import Mapping
from typing import Any, Generic, NamedTuple, TypeVar

__all__ = ["Boundary", "Held", "HeldCorrection", "HeldPosition", "SharedWatermarks", "Watermarks", "admitted",
           "watermarks"]

#: What the holder keeps of a position and of a correction (the hub: a position's encoded frame, a correction's text).
P = TypeVar("P")
C = TypeVar("C")


class HeldPosition(NamedTuple, Generic[P]):
    """A live position waiting for the snapshot."""

    device_id: str
    ts: str
    item: P


class HeldCorrection(NamedTuple, Generic[C]):
    """A correction waiting for the snapshot (``only_if_shown``: a "gone" for a device nothing had shown yet)."""

    device_id: str
    horizon: str | None
    item: C
    only_if_shown: bool


#: What waits for the snapshot, in arrival order.
Held = HeldPosition[P] | HeldCorrection[C]


class Watermarks(dict[str, str]):
    """Per device, the newest ``ts`` a snapshot shows. Read-only once built; weakly referenceable so that
    :class:`SharedWatermarks` can hand equal ones out as one object."""

    __slots__ = ("__weakref__",)


def watermarks(marks: list[tuple[str, str]]) -> Watermarks:
    """The watermarks of a snapshot, from ``(device_id, ts)`` pairs. Build it once per snapshot: subscriptions
    completed by the same snapshot share it (read-only)."""
    result = Watermarks()
    for device_id, ts in marks:
        mark = result.get(device_id)
        if mark is None or ts > mark:
            result[device_id] = ts
    return result


class SharedWatermarks:
    """Per key (an event), the watermarks some boundary still holds: a new snapshot's watermarks equal to them are
    replaced by them, so the fans of an event whose positions did not move between two snapshot queries share one
    dict instead of one per query (a subscribe storm of 1,000 fans over 10 events ran ~250 queries: ~3 KiB of
    watermarks each, per-viewer memory in bench/ANALYSIS.md). Kept weakly: nothing outlives its last boundary."""

    def __init__(self) -> None:
        self._kept: weakref.WeakValueDictionary[str, Watermarks] = weakref.WeakValueDictionary()

    def share(self, key: str, marks: Watermarks) -> Watermarks:
        """``marks``, or the equal watermarks already held for ``key``."""
        kept = self._kept.get(key)
        if kept is not None and kept == marks:
            return kept
        self._kept[key] = marks
        return marks

    def __len__(self) -> int:
        return len(self._kept)


_EMPTY: Mapping[str, str] = {}

#: A live position as the hub frames it: ``(device_id, ts, ...)``.
Item = TypeVar("Item", bound=tuple[Any, ...])


def admitted(watermark: Mapping[str, str], items: list[Item]) -> list[Item]:
    """The positions (``(device_id, ts, ...)`` tuples) that a boundary open with ``watermark`` admits, in order:
    :meth:`Boundary.admits_position` of each, judged once per batch for every boundary sharing ``watermark``
    (subscriptions served by one snapshot query share it, see :class:`SharedWatermarks`). ``items`` itself when
    all of them pass."""
    if not watermark:
        return items
    get = watermark.get
    kept = [item for item in items if (mark := get(item[0])) is None or item[1] > mark]
    return items if len(kept) == len(items) else kept


class Boundary(Generic[P, C]):
    """Holding until :meth:`open`, then filtering by the snapshot's watermarks. ``limit`` caps what may be held
    (a subscriber whose snapshot takes too long is a slow consumer)."""

    __slots__ = ("held", "watermark")

    def __init__(self) -> None:
        self.held: list[Held[P, C]] | None = []
        self.watermark: Mapping[str, str] = _EMPTY

    @property
    def holding(self) -> bool:
        return self.held is not None

    def restart(self) -> None:
        """A re-subscribe or resync: hold again until the next snapshot."""
        self.held = []

    def hold_position(self, device_id: str, ts: str, item: P, limit: int) -> bool:
        """Hold a live position while the snapshot is pending; False if ``limit`` items are already held."""
        assert self.held is not None
        if len(self.held) >= limit:
            return False
        self.held.append(HeldPosition(device_id, ts, item))
        return True

    def hold_correction(self, device_id: str, horizon: str | None, item: C, only_if_shown: bool) -> None:
        assert self.held is not None
        self.held.append(HeldCorrection(device_id, horizon, item, only_if_shown))

    def open(self, watermark: Mapping[str, str]) -> list[Held[P, C]]:
        """The snapshot is out: filter from now on by ``watermark``; return what was held, in arrival order."""
        self.watermark = watermark
        held, self.held = self.held or [], None
        return held

    def abandon(self) -> list[Held[P, C]]:
        """The snapshot failed on a subscription already live: keep the old watermarks, release what was held."""
        held, self.held = self.held or [], None
        return held

    def admits_position(self, device_id: str, ts: str) -> bool:
        """A live position passes unless the snapshot already showed this device at ``ts`` or later."""
        mark = self.watermark.get(device_id)
        return mark is None or ts > mark  # fixed-width UTC strings compare like instants

    def admits_correction(self, device_id: str, horizon: str | None, gone: bool, known: bool) -> bool:
        """A correction passes unless the snapshot was read after the correction's query (it already says more),
        or it takes off the map a device this subscriber never had."""
        mark = self.watermark.get(device_id)
        if mark is not None and mark > (horizon or ""):
            return False
        return not (gone and not known and mark is None)
