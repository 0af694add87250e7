"""What behave hands a step, typed: its context, its table, and the parameter types its pattern names.

Steps annotate ``context: StepContext``, so mypy checks them: a step sees the run (``context.suite``), its scenario
(``context.world``) and its table, nothing else; what it remembers goes in the world's state.

Parameter types are registered with behave (``register_type``) when this module is imported, so a step writes
``{time:Time}`` and receives a ``datetime``:

* ``Time``: ``2026-05-02 11:00:00``, a time in UTC as feature files write it;
* ``Names``: ``tracker-A, tracker-B and tracker-C`` (or ``Alice nor Carol``), the names in order;
* ``Quoted``: ``"Rally of Durres" and "Rally of Shkodra"``, the quoted names in order (at least one);
* ``Count``: ``1,200``, a whole number as the feature files write it, thousands grouped by commas;
* ``Site``: ``evil.example.test``, a web site as the feature files name it -> the origin a browser sends
  (``https://evil.example.test``); an address written with its scheme is kept as it is.

Each matches what a plain ``{name}`` matches (parse's ``.+?``): a type converts, it never changes which step
definition a step finds.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Protocol

from behave import register_type

from ..run.suite import Suite
from ..trackers.record import Position
from .world import World


class Row(Protocol):
    """One row of a step's table, read by column heading."""

    def __getitem__(self, column: str) -> str: ...


class Table(Protocol):
    """A step's table (behave's ``Table``): its rows, in order."""

    @property
    def rows(self) -> Sequence[Row]: ...

    def __iter__(self) -> Iterator[Row]: ...

    def __getitem__(self, index: int) -> Row: ...


class StepContext(Protocol):
    """What a step may use of behave's context. ``table`` is there for steps whose text ends with a colon."""

    suite: Suite
    world: World
    table: Table


def parse_time(text: str) -> datetime:
    """``2026-05-02 11:00:00`` (UTC, as feature files write it) -> an aware datetime."""
    return datetime.fromisoformat(text.strip()).replace(tzinfo=UTC)


def split_names(text: str) -> list[str]:
    """``"tracker-A, tracker-B and tracker-C"`` (or ``"Alice and Carol"``) -> the names, in order."""
    return [name.strip() for name in re.split(r",|\band\b|\bnor\b", text) if name.strip()]


def quoted(text: str) -> list[str]:
    """``"Rally of Durres" and "Rally of Shkodra"`` -> the quoted names, in order (there must be one)."""
    names = re.findall(r'"([^"]+)"', text)
    if not names:
        raise ValueError(f"no quoted names in {text!r}")  # behave's parse types report a bad value this way
    return names


def count(text: str) -> int:
    """``1,200`` (or ``1200``) -> 1200."""
    return int(text.strip().replace(",", ""))


def web_site(text: str) -> str:
    """``evil.example.test`` -> ``https://evil.example.test``: browsers send a page's origin with its scheme, the
    specification names the site without it (features/GLOSSARY.md, "web site")."""
    return text if "://" in text else f"https://{text}"


def positions(table: Table, tracker: str | None = None) -> list[Position]:
    """A table of positions (``tracker``, ``time (UTC)``, ``latitude``, ``longitude``); without a tracker
    column, every row is ``tracker``'s."""
    return [Position(tracker or row["tracker"], parse_time(row["time (UTC)"]), float(row["latitude"]),
                     float(row["longitude"])) for row in table]


register_type(Time=parse_time, Names=split_names, Quoted=quoted, Count=count,
              Site=web_site)
