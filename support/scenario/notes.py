"""What one scenario remembers between its steps: typed, owned by its :class:`~support.scenario.world.World`.

Steps keep nothing on behave's ``context`` but the world and the run's fixtures; a later step reads here what
an earlier one noted ("them", "the answer", when the outage began). A fresh :class:`Notes` per scenario, so
nothing leaks from one scenario into the next."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from ..fans.viewer import Frame
from ..processes.scrape import MetricsSnapshot

if TYPE_CHECKING:  # only for annotations: these modules import the world themselves
    from ..database.announcements import Announcements
    from ..database.postgres import InsertHold
    from ..fans.browser import FanBrowser
    from ..fans.browser_session import SessionAnswer
    from ..processes.instances import ScenarioInstances
    from ..processes.slow_link import SlowLink
    from ..trackers.load_run import LoadRun
    from ..trackers.traffic import ContinuousTraffic, Report


@dataclass
class Notes:
    """One field per thing a step remembers for a later step (``None``: not noted in this scenario)."""

    #: The latest round of reports ("them", "the new positions") and every report of the scenario.
    reports: list[Report] = field(default_factory=list)
    all_reports: list[Report] = field(default_factory=list)
    #: Broken reports by problem: (stream entry id, fields, time).
    broken: dict[str, tuple[str, dict[str, str], datetime]] = field(default_factory=dict)
    #: The car's report as written in the table: (tracker, time, latitude, longitude, payload).
    reported_car: tuple[str, datetime, float, float, dict[str, Any]] | None = None
    #: Positions published together: (device id, rendered time).
    together: list[tuple[str, str]] = field(default_factory=list)
    loading_window: list[tuple[str, str]] = field(default_factory=list)
    traffic: ContinuousTraffic | None = None
    #: Answers a later step checks.
    answer: Frame | None = None
    left: Frame | None = None
    back: Frame | None = None
    nowhere_answer: Frame | None = None
    opened: dict[str, Frame] = field(default_factory=dict)
    session_answer: SessionAnswer | None = None
    #: A flood of requests: (inbox length before, count, event id).
    flood: tuple[int, int, str] | None = None
    made_up_cookies: list[str] = field(default_factory=list)
    #: Metrics before a step, to count what it changed.
    cms_baseline: MetricsSnapshot | None = None
    private_baseline: MetricsSnapshot | None = None
    reconnects_before: float | None = None
    #: Moments (time.monotonic()) and durations in seconds.
    down_at: float | None = None
    back_at: float | None = None
    changed_at: float | None = None
    upgrade_seconds: float | None = None
    exit_seconds: float | None = None
    exit_status: int | None = None
    #: Things the scenario set up (each also registered for clean-up with the world).
    hold: InsertHold | None = None
    slow_link: SlowLink | None = None
    announcements: Announcements | None = None
    instances: ScenarioInstances | None = None
    browsers: dict[str, FanBrowser] = field(default_factory=dict)
    load: LoadRun | None = None
