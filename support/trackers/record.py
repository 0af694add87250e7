"""What a scenario's trackers published: one typed record, in the order it was sent, kept by the World.

Every way a scenario reports goes into it (one position, several at the same moment, bursts, continuous traffic,
a load run), so a later step asks the record ("the 500 positions", "tracker-A's report of 11:02", "what it
reported") instead of keeping a list of its own, and a failing step's report shows it.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, NamedTuple

from .publisher import render_ts

Key = tuple[str, str]
"""A position's identity as frames carry it: ``(deviceId, ts rendered YYYY-MM-DDTHH:MM:SS.mmmZ)``."""


class Position(NamedTuple):
    """A position as a feature file writes it: which tracker, when (UTC) and where."""

    tracker: str
    ts: datetime
    latitude: float
    longitude: float


@dataclass(frozen=True)
class Report:
    """One position as a tracker sent it, and the stream entry it became."""

    alias: str
    device_id: str
    ts: datetime
    latitude: float
    longitude: float
    entry_id: str
    #: ``time.monotonic()`` just before the entry was sent; comparable with a frame's ``_received_at``.
    sent_at: float
    #: The stream entry's fields exactly as sent (a broken report's too).
    fields: dict[str, str] = field(default_factory=dict, compare=False)

    @property
    def key(self) -> Key:
        return (self.device_id, render_ts(self.ts))

    @property
    def payload(self) -> dict[str, Any]:
        """The AVL record the report carried (``payload``, JSON): what the car said besides where and when."""
        record: dict[str, Any] = json.loads(self.fields["payload"])
        return record


class Published:
    """Every report of one scenario, in the order sent, and which of them make its latest round.

    A *round* is what one step sent in quantity (a burst, a tracker's bursts, continuous traffic once stopped): "them"
    and "the new positions" of a feature file. Positions reported one at a time, or a few at the same moment, are
    recorded without starting a round, so a later step still finds the round it refers to.
    """

    def __init__(self) -> None:
        #: Each sending as it happened: its reports, and whether it was a round.
        self._sendings: list[tuple[list[Report], bool]] = []
        self.latest_round: list[Report] = []

    def add(self, reports: Iterable[Report]) -> None:
        """Record reports sent one at a time or at the same moment."""
        self._sendings.append((list(reports), False))

    def add_round(self, reports: Iterable[Report]) -> None:
        """Record a round: these reports become the scenario's latest round."""
        self.latest_round = list(reports)
        self._sendings.append((self.latest_round, True))

    @property
    def reports(self) -> list[Report]:
        """Every report of the scenario, in the order sent."""
        return [report for reports, _ in self._sendings for report in reports]

    @property
    def last_sent(self) -> list[Report]:
        """The reports of the latest sending ("those positions"): one, several at the same moment, or a round."""
        return list(self._sendings[-1][0]) if self._sendings else []

    def sent_as(self, alias: str, ts_text: str) -> list[Report]:
        """``alias``'s reports whose ``ts`` field reads ``ts_text``, in the order sent."""
        return [report for report in self.reports if report.alias == alias and report.fields.get("ts") == ts_text]

    def sent_at(self, alias: str, ts: datetime) -> list[Report]:
        """``alias``'s reports of the instant ``ts``, however their ``ts`` field spelt it, in the order sent."""
        return [report for report in self.reports if report.alias == alias and report.ts == ts]

    def last_of(self, alias: str) -> Report | None:
        """``alias``'s latest report, if it has reported."""
        return next((report for report in reversed(self.reports) if report.alias == alias), None)

    def rounds_end(self) -> datetime | None:
        """The latest time any round reported (``None`` before the first round): where generated traffic goes on."""
        return max((report.ts for reports, is_round in self._sendings if is_round for report in reports), default=None)

    def describe(self) -> list[str]:
        """One line per report, and one per round (a round can be thousands), for a failing step's report."""
        lines = []
        for reports, is_round in self._sendings:
            if is_round and reports:
                aliases = ", ".join(sorted({report.alias for report in reports}))
                lines.append(f"  {reports[0].entry_id} … {reports[-1].entry_id} {aliases}: {len(reports)} reports")
            elif not is_round:
                lines += [f"  {report.entry_id} {report.alias}: {report.fields}" for report in reports]
        return lines
