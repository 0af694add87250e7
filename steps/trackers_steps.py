"""The trackers room's steps (steps/trackers/): behave loads this file, importing them registers their steps."""

from steps.trackers import broken, formats, load, reports  # noqa: F401  # imported for their step definitions
