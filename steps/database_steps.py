"""The database room's steps (steps/database/): behave loads this file, importing them registers their steps."""

from steps.database import corrections, history, rows, schemas  # noqa: F401  # imported for their step definitions
