"""The fans room's steps (steps/fans/): behave loads this file, importing them registers their steps."""

from steps.fans import (  # noqa: F401  # imported for their step definitions
    browser,
    deliveries,
    limits,
    loading,
    maps,
    positions,
    refusals,
    security,
    snapshots,
    web_clients,
)
