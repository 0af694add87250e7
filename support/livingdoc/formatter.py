"""The behave formatter that writes the living documentation: ``-D report=html`` (support/run/reports.py).

It listens to the run only for what the finished model does not keep: which features the run was given (in a
dry run, or when ``--tags`` leaves a feature out, behave never shows the feature itself to formatters), which
step definition matched each step, and the diagnostics attached to a failing step. Everything else is read
from behave's model when the run closes (collect.py), and written as an HTML folder (render.py).
"""

from __future__ import annotations

import time
from datetime import datetime
from pathlib import Path
from typing import Any

from behave.formatter.base import Formatter
from behave.parser import parse_file

from ..run.reports import DIAGNOSTICS_TITLE
from .collect import StepNotes, attach_coverage, feature_doc
from .coverage import load_contract
from .model import RunInfo, in_story_order
from .render import write_report

TITLE = "Live telemetry: acceptance specification"
DEFAULT_DIRECTORY = "reports/html"


def without_caption(text: str) -> str:
    """Diagnostics without their ``---- What the suite saw ----`` line: the report's fold already says it."""
    first, _, rest = text.partition("\n")
    return rest if first.strip() == f"---- {DIAGNOSTICS_TITLE} ----" else text


def tag_selection(tags: list[str] | str | None) -> str:
    """behave's ``--tags`` (several are and-ed) as one line: ``@a or @b``, ``(@a) and (not @b)``."""
    if not tags:
        return ""
    if isinstance(tags, str):
        return tags
    return tags[0] if len(tags) == 1 else " and ".join(f"({tag})" for tag in tags)


class LivingDocFormatter(Formatter):  # type: ignore[misc]  # behave ships no type information
    """Collects the run and writes ``<directory>/index.html``, a page per feature, and the same under ``dev/``."""

    name = "livingdoc"
    description = "Living documentation: an HTML folder (index in story order, a page per feature, two views)"

    def __init__(self, stream_opener: Any, config: Any) -> None:
        super().__init__(stream_opener, config)
        # The "output" is a directory: the stream behave would open lazily is never opened.
        self.directory = Path(stream_opener.name or DEFAULT_DIRECTORY)
        self.started = datetime.now().astimezone()
        self._began = time.monotonic()
        self._uris: list[str] = []
        self._features: dict[str, Any] = {}
        self.notes = StepNotes()
        self._pending_match = ""
        self._pending_diagnostics: list[str] = []

    # -- behave's formatter protocol -------------------------------------------------------------------------

    def uri(self, uri: str) -> None:
        if uri not in self._uris:
            self._uris.append(uri)

    def feature(self, feature: Any) -> None:
        self._features[str(feature.filename)] = feature

    def scenario(self, scenario: Any) -> None:
        self._pending_match, self._pending_diagnostics = "", []

    def match(self, match: Any) -> None:
        # A step begins: anything attached before it belongs to no step.
        location = getattr(match, "location", None)
        self._pending_match = str(location) if location else ""
        self._pending_diagnostics = []

    def result(self, step: Any) -> None:
        """The step is over: what was noted while it ran (its match, its diagnostics) is its own."""
        if self._pending_match:
            self.notes.code_locations[id(step)] = self._pending_match
        if self._pending_diagnostics:
            self.notes.diagnostics.setdefault(id(step), []).extend(self._pending_diagnostics)
        self._pending_match, self._pending_diagnostics = "", []

    def embedding(self, mime_type: str, data: bytes | str) -> None:
        """``context.attach`` from ``after_step``, which runs before behave reports the step's result."""
        if mime_type.startswith("text/"):
            text = data.decode("utf-8", "replace") if isinstance(data, bytes) else str(data)
            self._pending_diagnostics.append(without_caption(text))

    def close(self) -> None:
        self.write()

    # -- the report ----------------------------------------------------------------------------------------------

    def write(self) -> list[Path]:
        """Build the documentation from the model behave ran and write both views; return the files."""
        dry_run = bool(self.config.dry_run)
        language = getattr(self.config, "lang", None)
        docs = []
        for uri in self._uris:
            feature = self._features.get(uri)
            if feature is None:  # left out of the run, or a dry run: the specification as written
                feature = parse_file(uri, language=language)
            if feature is not None:
                docs.append(feature_doc(feature, self.notes, dry_run))
        features = in_story_order(docs)
        contract = load_contract(Path(getattr(self.config, "base_dir", None) or "."))
        by_tag = attach_coverage(features, contract)
        run = RunInfo(title=TITLE, dry_run=dry_run, started=self.started.strftime("%Y-%m-%d %H:%M %Z"),
                      duration=None if dry_run else time.monotonic() - self._began,
                      tags=tag_selection(getattr(self.config, "tags", None)))
        return write_report(self.directory, run, features, contract, by_tag)
